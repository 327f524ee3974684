//! What can go wrong talking to a vendor's API, as one type for every cloud adapter. The only
//! vendor-specific part is its [`Codes`]: what the vendor's error codes mean.

use std::fmt;

use reqwest::StatusCode;

use super::{http::HttpFailure, images::ImageError};
use crate::provider::{ErrorKind, ProviderError};

/// A vendor's error codes, and what each means for the caller.
pub(crate) trait Codes: fmt::Debug + Clone + 'static {
    /// The provider's name, as errors, metrics and routes name it.
    const PROVIDER: &'static str;
    /// The vendor as messages name it.
    const VENDOR: &'static str;
    /// What messages put before a code: WeChat's are `errcode 40001`.
    const CODE_LABEL: &'static str = "";
    /// How the vendor tells one error from another.
    type Code: fmt::Display + fmt::Debug + Clone + Send + Sync + 'static;

    /// What an error with `code` and `message` means for the caller.
    fn classify(code: &Self::Code, message: &str) -> ErrorKind;

    /// Whether trying again after a backoff may succeed: the vendor is busy or failed inside.
    fn is_transient(code: &Self::Code) -> bool;

    /// Told of every vendor error as it becomes the caller's: for codes that mean the gateway
    /// itself is at fault, which deserve a log line of their own.
    fn noticed(_code: &Self::Code, _message: &str) {}
}

/// What can go wrong talking to the vendor `C`. Never holds a URL, a token or a secret.
#[derive(Debug, Clone)]
pub(crate) enum VendorError<C: Codes> {
    /// The vendor answered with an error of its own.
    Api {
        code: C::Code,
        message: String,
    },
    Http(StatusCode),
    Transport(String),
    DeadlineExceeded,
    /// The reply could not be read.
    Malformed(String),
    /// The gateway's configuration lacks what the call needs; the message says what to set.
    NotConfigured(String),
    /// The image could not be made into one the vendor takes.
    Image(ImageError),
}

impl<C: Codes> VendorError<C> {
    /// The vendor's code, when the vendor answered with an error of its own.
    pub(crate) fn code(&self) -> Option<&C::Code> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Worth another try after a backoff: a busy vendor, a server error, a broken connection.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Api { code, .. } => C::is_transient(code),
            Self::Http(status) => status.is_server_error(),
            Self::Transport(_) => true,
            Self::DeadlineExceeded
            | Self::Malformed(_)
            | Self::NotConfigured(_)
            | Self::Image(_) => false,
        }
    }
}

impl<C: Codes> fmt::Display for VendorError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vendor = C::VENDOR;
        match self {
            Self::Api { code, message } => {
                write!(f, "{vendor} answered {}{code}: {message}", C::CODE_LABEL)
            }
            Self::Http(status) => write!(f, "{vendor} answered HTTP {status}"),
            Self::Transport(message) => write!(f, "could not reach {vendor}: {message}"),
            Self::DeadlineExceeded => write!(f, "{vendor} did not answer before the deadline"),
            Self::Malformed(message) => {
                write!(f, "{vendor} sent a reply that could not be read: {message}")
            }
            Self::NotConfigured(message) => f.write_str(message),
            Self::Image(err) => err.fmt(f),
        }
    }
}

impl<C: Codes> std::error::Error for VendorError<C> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Image(err) => err.source(),
            _ => None,
        }
    }
}

impl<C: Codes> From<HttpFailure> for VendorError<C> {
    fn from(failure: HttpFailure) -> Self {
        match failure {
            HttpFailure::Transport(message) => Self::Transport(message),
            HttpFailure::DeadlineExceeded => Self::DeadlineExceeded,
            too_large @ HttpFailure::TooLarge(_) => Self::Malformed(too_large.to_string()),
        }
    }
}

impl<C: Codes> From<ImageError> for VendorError<C> {
    fn from(err: ImageError) -> Self {
        Self::Image(err)
    }
}

impl<C: Codes> From<VendorError<C>> for ProviderError {
    fn from(err: VendorError<C>) -> Self {
        let retryable = err.is_transient();
        let message = err.to_string();
        let kind = match &err {
            VendorError::Api { code, message } => C::classify(code, message),
            VendorError::Http(_) | VendorError::Transport(_) => ErrorKind::Unavailable,
            VendorError::DeadlineExceeded => ErrorKind::DeadlineExceeded,
            VendorError::Malformed(_) => ErrorKind::Unknown,
            VendorError::NotConfigured(_) => ErrorKind::Misconfigured,
            VendorError::Image(err) => err.kind(),
        };
        let error = ProviderError::new(C::PROVIDER, kind, message).retryable(retryable);
        match err {
            VendorError::Api { code, message } => {
                C::noticed(&code, &message);
                error.with_vendor_code(code, message)
            }
            _ => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vendor whose code 7 means "busy" and every other code "not found".
    #[derive(Debug, Clone)]
    struct Numbers;

    impl Codes for Numbers {
        const PROVIDER: &'static str = "numbers";
        const VENDOR: &'static str = "Numbers Inc.";
        const CODE_LABEL: &'static str = "code ";
        type Code = i64;

        fn classify(code: &i64, _message: &str) -> ErrorKind {
            if *code == 7 {
                ErrorKind::Busy
            } else {
                ErrorKind::NotFound
            }
        }

        fn is_transient(code: &i64) -> bool {
            *code == 7
        }
    }

    fn provider_error(err: VendorError<Numbers>) -> ProviderError {
        err.into()
    }

    #[test]
    fn a_vendors_error_keeps_its_code_and_takes_its_meaning_from_the_codes() {
        let busy = provider_error(VendorError::Api {
            code: 7,
            message: "slow down".into(),
        });
        assert_eq!(busy.kind, ErrorKind::Busy);
        assert!(busy.retryable);
        assert_eq!(busy.provider, "numbers");
        assert_eq!(busy.message, "Numbers Inc. answered code 7: slow down");
        let vendor = busy.vendor.expect("the vendor's code");
        assert_eq!(
            (vendor.code.as_str(), vendor.message.as_str()),
            ("7", "slow down")
        );

        let missing = provider_error(VendorError::Api {
            code: 3,
            message: "no card".into(),
        });
        assert_eq!(missing.kind, ErrorKind::NotFound);
        assert!(!missing.retryable);
    }

    #[test]
    fn a_failed_exchange_is_unavailable_and_transient_but_a_deadline_or_bad_reply_is_neither() {
        let cases = [
            (
                VendorError::Http(StatusCode::BAD_GATEWAY),
                ErrorKind::Unavailable,
                true,
            ),
            (
                VendorError::Http(StatusCode::FORBIDDEN),
                ErrorKind::Unavailable,
                false,
            ),
            (
                HttpFailure::Transport("reset".into()).into(),
                ErrorKind::Unavailable,
                true,
            ),
            (
                HttpFailure::DeadlineExceeded.into(),
                ErrorKind::DeadlineExceeded,
                false,
            ),
            (HttpFailure::TooLarge(10).into(), ErrorKind::Unknown, false),
            (
                VendorError::NotConfigured("set numbers.key".into()),
                ErrorKind::Misconfigured,
                false,
            ),
        ];
        for (err, kind, retryable) in cases {
            let text = err.to_string();
            let err = provider_error(err);
            assert_eq!((err.kind, err.retryable), (kind, retryable), "{text}");
            assert!(err.vendor.is_none(), "{text}");
        }
    }
}
