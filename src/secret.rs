//! Secrets the configuration gives as a value or in a file (a mounted Kubernetes Secret):
//! `key = "…"` or `key_file = "/path"`, never both. A file's trailing line break is not part of
//! the secret, and an empty value counts as unset, as deployment templates leave them behind.

use std::{borrow::Cow, path::Path};

use secrecy::{ExposeSecret as _, SecretString};

/// One secret's two keys, as configured.
#[derive(Debug, Clone)]
pub struct SecretSource<'a> {
    /// The value's key, as messages name it: `tencent.secret_key`.
    key: Cow<'a, str>,
    value: Option<&'a SecretString>,
    file: Option<&'a Path>,
}

/// Where a secret is to be read from.
enum Given<'a> {
    Value(&'a SecretString),
    File(&'a Path),
}

impl<'a> SecretSource<'a> {
    pub fn new(
        key: impl Into<Cow<'a, str>>,
        value: Option<&'a SecretString>,
        file: Option<&'a Path>,
    ) -> Self {
        Self {
            key: key.into(),
            value: value.filter(|value| !value.expose_secret().is_empty()),
            file,
        }
    }

    /// Whether the value or the file is set.
    pub fn is_set(&self) -> bool {
        self.value.is_some() || self.file.is_some()
    }

    /// The secret, its file read now; `None` when neither key is set.
    pub fn read(&self) -> Result<Option<SecretString>, String> {
        match self.given()? {
            Some(Given::Value(value)) => Ok(Some(value.clone())),
            Some(Given::File(path)) => std::fs::read_to_string(path)
                .map(|text| Some(secret(&text)))
                .map_err(|err| self.unreadable(path, &err)),
            None => Ok(None),
        }
    }

    /// [`read`](Self::read), without blocking the runtime on the file.
    pub async fn read_async(&self) -> Result<Option<SecretString>, String> {
        match self.given()? {
            Some(Given::Value(value)) => Ok(Some(value.clone())),
            Some(Given::File(path)) => tokio::fs::read_to_string(path)
                .await
                .map(|text| Some(secret(&text)))
                .map_err(|err| self.unreadable(path, &err)),
            None => Ok(None),
        }
    }

    fn given(&self) -> Result<Option<Given<'a>>, String> {
        match (self.value, self.file) {
            (Some(_), Some(_)) => Err(format!("set {key} or {key}_file, not both", key = self.key)),
            (Some(value), None) => Ok(Some(Given::Value(value))),
            (None, Some(path)) => Ok(Some(Given::File(path))),
            (None, None) => Ok(None),
        }
    }

    fn unreadable(&self, path: &Path, err: &std::io::Error) -> String {
        format!("cannot read {}_file {}: {err}", self.key, path.display())
    }
}

/// A secret file's content, less its trailing line break.
fn secret(text: &str) -> SecretString {
    SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_holding(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), text).expect("written");
        file
    }

    #[test]
    fn a_value_or_a_file_less_its_line_break_is_the_secret() {
        let value = SecretString::from("s3cret");
        let read = SecretSource::new("x.key", Some(&value), None).read();
        assert_eq!(read.expect("read").expect("set").expose_secret(), "s3cret");

        let file = file_holding("from-a-file\r\n");
        let read = SecretSource::new("x.key", None, Some(file.path())).read();
        assert_eq!(
            read.expect("read").expect("set").expose_secret(),
            "from-a-file"
        );
    }

    #[test]
    fn an_empty_value_is_unset_and_both_keys_at_once_are_refused() {
        let empty = SecretString::from("");
        let source = SecretSource::new("x.key", Some(&empty), None);
        assert!(!source.is_set());
        assert!(source.read().expect("no error").is_none());

        let (value, file) = (SecretString::from("v"), file_holding("f"));
        let both = SecretSource::new("x.key", Some(&value), Some(file.path())).read();
        assert_eq!(
            both.expect_err("refused"),
            "set x.key or x.key_file, not both"
        );
    }

    #[tokio::test]
    async fn an_unreadable_file_is_named_with_its_key() {
        let value = SecretString::from("");
        let missing = Path::new("/nonexistent/secret");
        let err = SecretSource::new("x.key", Some(&value), Some(missing))
            .read_async()
            .await
            .expect_err("unreadable");
        assert!(
            err.starts_with("cannot read x.key_file /nonexistent/secret: "),
            "{err}"
        );
    }
}
