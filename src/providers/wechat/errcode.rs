//! The one place that knows WeChat's error codes and what each means for the caller.

use crate::provider::ErrorKind;

/// The token the call presented was rejected: refresh it and retry once.
pub(super) fn is_token_rejected(errcode: i64) -> bool {
    matches!(errcode, 40001 | 40014 | 42001)
}

/// The platform is busy: retry with backoff inside the deadline.
pub(super) fn is_busy(errcode: i64) -> bool {
    matches!(errcode, -1 | -1000)
}

/// Whether this table knows the errcode (the upstream metric counts unknown ones as `other`).
pub(super) fn is_known(errcode: i64) -> bool {
    errcode == 0 || classify(errcode, "") != ErrorKind::Unknown
}

/// What a non-zero errcode means for the caller. `errmsg` settles the one ambiguous code.
pub(super) fn classify(errcode: i64, errmsg: &str) -> ErrorKind {
    match errcode {
        -1 | -1000 => ErrorKind::Unavailable,
        40001 | 40014 | 42001 => ErrorKind::Unauthenticated,
        40013 | 40125 | 40243 | 41002 | 41004 => ErrorKind::Misconfigured,
        40164 | 89501 | 89503 | 89506 | 89507 => ErrorKind::PermissionDenied,
        48001 | 50001 | 61024 => ErrorKind::PermissionDenied,
        45009 | 45011 | 101003 => ErrorKind::QuotaExhausted,
        41005 | 40006 | 47001 | 40097 | 72031 => ErrorKind::InvalidInput,
        101000 => ErrorKind::InvalidInput,
        101001 => ErrorKind::NotFound,
        // Some accounts see 101002 for an exhausted quota instead of 101003.
        101002 if errmsg.to_ascii_lowercase().contains("quota") => ErrorKind::QuotaExhausted,
        101002 => ErrorKind::InvalidInput,
        _ => ErrorKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_101002_is_quota_only_when_errmsg_says_so() {
        assert_eq!(
            classify(101002, "not enough market quota"),
            ErrorKind::QuotaExhausted
        );
        assert_eq!(
            classify(101002, "image decode failed"),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn unlisted_errcodes_are_unknown() {
        assert_eq!(classify(12345, "what"), ErrorKind::Unknown);
    }
}
