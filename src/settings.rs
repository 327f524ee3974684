//! Reading the configuration: each provider reads its own section by name, so the configuration
//! holds no provider's settings, and no error ever quotes a value (it may be a secret).

use std::fmt;

use figment::{Figment, providers::Serialized, value::Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub(crate) String);

/// The configuration as it was loaded (file and environment), from which each provider reads its
/// own section.
#[derive(Clone, Default)]
pub struct Sections {
    figment: Figment,
}

impl Sections {
    pub(crate) fn new(figment: Figment) -> Self {
        Self { figment }
    }

    /// The section called `name`, e.g. `wechat` for `[wechat]` and `OCRGATE_WECHAT__*`.
    pub fn section(&self, name: &'static str) -> Section<'_> {
        Section {
            name,
            figment: &self.figment,
        }
    }

    /// Sets `key` (dotted, as in the file: `wechat.app_id`) as the file or a variable would, for
    /// configurations built in code. `None` unsets an optional key.
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        self.figment = std::mem::take(&mut self.figment).merge(Serialized::default(key, value));
    }
}

/// Sections hold secrets: their values are never printed.
impl fmt::Debug for Sections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sections").finish_non_exhaustive()
    }
}

/// One provider's section of the configuration.
#[derive(Clone, Copy)]
pub struct Section<'a> {
    name: &'static str,
    figment: &'a Figment,
}

impl Section<'_> {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The section read as `T`, its keys reported as `name.key`; an absent section reads as an
    /// empty one (`T`'s defaults). Numbers and booleans are read from text, as variables give them.
    pub fn read<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ConfigError> {
        self.figment
            .focus(self.name)
            .extract_lossy()
            .map_err(|errors| {
                let errors = errors.into_iter().map(|mut err| {
                    err.path.insert(0, self.name.to_owned());
                    err
                });
                ConfigError(describe(self.figment, errors))
            })
    }
}

/// Figment's messages quote the offending value, which may be a secret: each message is rewritten
/// to name the key and what it expects, and a value a custom error quotes is cut out. Only the name
/// of an unknown enum variant or field is kept: those are never secrets.
pub(crate) fn describe(
    figment: &Figment,
    errors: impl IntoIterator<Item = figment::Error>,
) -> String {
    use figment::error::Kind;
    errors
        .into_iter()
        .map(|err| {
            let path = err.path.join(".");
            match &err.kind {
                Kind::InvalidType(_, expected) => {
                    format!("{path}: invalid type, expected {expected}")
                }
                Kind::InvalidValue(_, expected) => {
                    format!("{path}: invalid value, expected {expected}")
                }
                Kind::UnknownVariant(..) | Kind::UnknownField(..) | Kind::MissingField(_) => {
                    err.to_string()
                }
                _ => {
                    let message = err.to_string();
                    match figment
                        .find_value(&path)
                        .ok()
                        .and_then(|value| value_text(&value))
                    {
                        Some(value) if !value.is_empty() => message.replace(&value, "…"),
                        _ => message,
                    }
                }
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A scalar value as a message would quote it.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(_, text) => Some(text.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => n
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| n.to_i128().map(|n| n.to_string()))
            .or_else(|| n.to_f64().map(|n| n.to_string())),
        _ => None,
    }
}
