//! The one place that knows Tencent Cloud's error codes and what each means for the caller, as
//! the vendor reference's table gives them.

use crate::provider::ErrorKind;

/// What Tencent's error `code` means for the caller; `None` when this table does not know it.
pub(super) fn classify(code: &str) -> Option<ErrorKind> {
    let kind = match code {
        "FailedOperation.OcrFailed"
        | "FailedOperation.IllegalBankCardError"
        | "FailedOperation.DetectFailed" => ErrorKind::NotFound,
        "FailedOperation.ImageDecodeFailed"
        | "InvalidParameter.EngineImageDecodeFailed"
        | "FailedOperation.EmptyImageError"
        | "FailedOperation.ImageSizeTooLarge"
        | "LimitExceeded.TooLargeFileError"
        | "FailedOperation.DownLoadError"
        | "FailedOperation.ImageBlur" => ErrorKind::InvalidInput,
        "FailedOperation.CountLimitError"
        | "FailedOperation.ArrearsError"
        | "ResourceUnavailable.InArrears"
        | "ResourceUnavailable.ResourcePackageRunOut"
        | "ResourcesSoldOut.ChargeStatusException" => ErrorKind::QuotaExhausted,
        code if is_rate_limited(code) => ErrorKind::QuotaExhausted,
        "FailedOperation.UnOpenError"
        | "AuthFailure.UnauthorizedOperation"
        | "UnauthorizedOperation"
        | "IpNotInWhitelist"
        | "IpInBlacklist" => ErrorKind::PermissionDenied,
        "AuthFailure.SignatureFailure"
        | "AuthFailure.SecretIdNotFound"
        | "AuthFailure.InvalidSecretId"
        | "AuthFailure.SignatureExpire" => ErrorKind::Misconfigured,
        "AuthFailure.TokenFailure" => ErrorKind::Unauthenticated,
        "InternalError"
        | "FailedOperation.EngineRecognizeTimeout"
        | "FailedOperation.UnKnowError"
        | "ServiceUnavailable" => ErrorKind::Unavailable,
        code if is_request_malformed(code) => ErrorKind::Unknown,
        _ => return None,
    };
    Some(kind)
}

/// Over the per-second rate limit: worth another try after a short wait.
pub(super) fn is_rate_limited(code: &str) -> bool {
    code == "RequestLimitExceeded" || code.starts_with("RequestLimitExceeded.")
}

/// The vendor failed: worth another try, within the retries and the deadline.
pub(super) fn is_transient(code: &str) -> bool {
    is_rate_limited(code) || classify(code) == Some(ErrorKind::Unavailable)
}

/// The request's timestamp is too far from Tencent's clock: sign afresh and try once more.
pub(super) fn is_signature_expired(code: &str) -> bool {
    code == "AuthFailure.SignatureExpire"
}

/// Our own request was malformed: a gateway bug, logged as such.
pub(super) fn is_request_malformed(code: &str) -> bool {
    code.starts_with("InvalidParameter")
        || matches!(
            code,
            "MissingParameter" | "UnknownParameter" | "InvalidAction" | "NoSuchVersion"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_as_the_reference_says() {
        assert_eq!(
            classify("FailedOperation.OcrFailed"),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            classify("RequestLimitExceeded.UinLimitExceeded"),
            Some(ErrorKind::QuotaExhausted)
        );
        assert_eq!(
            classify("InvalidParameter.EngineImageDecodeFailed"),
            Some(ErrorKind::InvalidInput)
        );
        assert_eq!(classify("InvalidParameterValue"), Some(ErrorKind::Unknown));
        assert_eq!(
            classify("AuthFailure.SignatureFailure"),
            Some(ErrorKind::Misconfigured)
        );
        assert_eq!(classify("Something.New"), None);
        assert!(is_transient("InternalError"));
        assert!(is_transient("RequestLimitExceeded"));
        assert!(!is_transient("FailedOperation.ImageBlur"));
    }
}
