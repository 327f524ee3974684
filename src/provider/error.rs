use std::{fmt, sync::LazyLock};

use regex::Regex;

/// What went wrong, in words every provider shares. The gRPC edge maps each kind to one status
/// code; providers map their own codes to a kind in one place each. In the configuration
/// (`routing.failover_on`) kinds are written in snake case, e.g. `quota_exhausted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The vendor rejected the input: an unreadable image, a bad URL, bad scan text.
    InvalidInput,
    /// The input was fine but held nothing to recognise, e.g. no card in the image.
    NotFound,
    /// The account's quota is used up.
    QuotaExhausted,
    /// The vendor kept rejecting the credentials the gateway presented.
    Unauthenticated,
    /// The account may not call this API, or the gateway's address is not allowed.
    PermissionDenied,
    /// The gateway is set up wrongly: no account, an unknown account, a bad app id or secret.
    Misconfigured,
    /// The vendor is busy or unreachable.
    Unavailable,
    /// The call's deadline ran out.
    DeadlineExceeded,
    /// The provider has more work ahead of the call than it could do before the call's deadline:
    /// refused at once rather than held until the deadline passes.
    Busy,
    /// The vendor answered with an error the gateway does not know.
    Unknown,
}

impl ErrorKind {
    /// Upper-snake name, used in the stable `reason` of error details.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "INVALID_INPUT",
            Self::NotFound => "NOT_FOUND",
            Self::QuotaExhausted => "QUOTA_EXHAUSTED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Misconfigured => "MISCONFIGURED",
            Self::Unavailable => "UNAVAILABLE",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Busy => "BUSY",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Snake-case name, as the configuration writes it and metrics label it.
    pub fn config_name(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::NotFound => "not_found",
            Self::QuotaExhausted => "quota_exhausted",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::Misconfigured => "misconfigured",
            Self::Unavailable => "unavailable",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Busy => "busy",
            Self::Unknown => "unknown",
        }
    }
}

/// The vendor's own error code and message, kept for the client and the operator. The code is
/// text as the vendor writes it: WeChat's are numbers (`40001`), other vendors' are names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorCode {
    pub code: String,
    pub message: String,
}

/// The one error type every provider returns.
///
/// Its message must never hold a secret, an access token or a full card number: it reaches
/// clients and logs as it is.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// Which provider failed, e.g. `wechat`.
    pub provider: &'static str,
    pub message: String,
    pub vendor: Option<VendorCode>,
    /// Whether the same call may succeed if tried again later.
    pub retryable: bool,
    /// When trying again may succeed, if the provider knows.
    pub retry_after: Option<std::time::Duration>,
}

impl ProviderError {
    pub fn new(provider: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            provider,
            message: message.into(),
            vendor: None,
            retryable: matches!(kind, ErrorKind::Unavailable | ErrorKind::Busy),
            retry_after: None,
        }
    }

    pub fn with_vendor_code(mut self, code: impl ToString, message: impl Into<String>) -> Self {
        self.vendor = Some(VendorCode {
            code: code.to_string(),
            message: message.into(),
        });
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Says when trying again may succeed: a `google.rpc.RetryInfo` for the client.
    pub fn retry_after(mut self, delay: std::time::Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Longest vendor message passed on; vendors' own messages are a sentence.
const MAX_VENDOR_TEXT_CHARS: usize = 200;

/// A vendor's free text made safe to show a client or a log: anything that looks like a card
/// number (13 or more digits, spaces or dashes between them allowed) is masked to its first six
/// and last four digits, control characters become spaces, and the text is cut to 200 characters.
pub fn vendor_text(raw: &str) -> String {
    static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| {
        #[allow(
            clippy::expect_used,
            reason = "a constant pattern, checked by the unit tests"
        )]
        Regex::new(r"\d(?:[ -]?\d){12,}").expect("valid pattern")
    });
    let cut: String = raw
        .chars()
        .take(MAX_VENDOR_TEXT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    DIGIT_RUN
        .replace_all(&cut, |run: &regex::Captures<'_>| {
            let digits: String = run[0].chars().filter(char::is_ascii_digit).collect();
            super::mask_digits(&digits)
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::{ErrorKind, vendor_text};

    #[test]
    fn an_error_kinds_metric_name_is_the_one_the_configuration_reads() {
        use ErrorKind::*;
        for kind in [
            InvalidInput,
            NotFound,
            QuotaExhausted,
            Unauthenticated,
            PermissionDenied,
            Misconfigured,
            Unavailable,
            DeadlineExceeded,
            Busy,
            Unknown,
        ] {
            let name = serde_json::Value::String(kind.config_name().into());
            assert_eq!(
                serde_json::from_value::<ErrorKind>(name).ok(),
                Some(kind),
                "{kind:?}"
            );
            assert_eq!(kind.config_name().to_ascii_uppercase(), kind.as_str());
        }
    }

    #[test]
    fn card_numbers_in_vendor_text_are_masked() {
        assert_eq!(
            vendor_text("card 6222020200112345678 rejected"),
            "card 622202*********5678 rejected"
        );
        assert_eq!(
            vendor_text("card 6222 0202-0011 2345 rejected"),
            "card 622202******2345 rejected"
        );
    }

    #[test]
    fn short_numbers_stay_and_long_text_is_cut() {
        assert_eq!(
            vendor_text("errcode 101001, rid 123456789012"),
            "errcode 101001, rid 123456789012"
        );
        assert_eq!(vendor_text(&"x".repeat(500)).len(), 200);
        assert_eq!(vendor_text("a\nb\u{1b}[31m"), "a b [31m");
    }
}
