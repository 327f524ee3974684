//! Errors as gRPC statuses: the one place that decides codes, reasons and details.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    provider::{ErrorKind, ProviderError},
    qr::QrError,
};

/// The `domain` of every `google.rpc.ErrorInfo` ocrgate sends.
pub const ERROR_DOMAIN: &str = "ocrgate";

/// `reason` of a request that broke a documented rule, before any provider was called.
pub const REASON_INVALID_REQUEST: &str = "INVALID_REQUEST";

/// `reason` when the client's deadline ran out.
pub const REASON_DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";

/// The gRPC code for each kind of provider error.
pub fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidInput => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::QuotaExhausted => Code::ResourceExhausted,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Misconfigured => Code::FailedPrecondition,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Busy => Code::ResourceExhausted,
        ErrorKind::Unknown => Code::Unknown,
    }
}

/// A provider's failure as the client sees it: code, message, and an `ErrorInfo` whose reason is
/// `<PROVIDER>_<KIND>` and whose metadata carries the provider, the vendor errcode and whether a
/// retry may help. A deadline is the client's, not the provider's: its reason is always
/// `DEADLINE_EXCEEDED`, whichever timer noticed first.
pub fn provider_error(err: &ProviderError) -> Status {
    let mut metadata = HashMap::from([
        ("provider".to_owned(), err.provider.to_owned()),
        ("retryable".to_owned(), err.retryable.to_string()),
    ]);
    if let Some(vendor) = &err.vendor {
        metadata.insert("errcode".to_owned(), vendor.code.clone());
    }
    let reason = match err.kind {
        ErrorKind::DeadlineExceeded => REASON_DEADLINE_EXCEEDED.to_owned(),
        kind => format!("{}_{}", err.provider.to_ascii_uppercase(), kind.as_str()),
    };
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
    if let Some(delay) = err.retry_after {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details(code_for(err.kind), err.to_string(), details)
}

/// A request field that breaks the API's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct InvalidRequest {
    pub field: &'static str,
    pub description: String,
}

impl InvalidRequest {
    pub fn new(field: &'static str, description: impl Into<String>) -> Self {
        Self {
            field,
            description: description.into(),
        }
    }
}

impl From<InvalidRequest> for Status {
    fn from(err: InvalidRequest) -> Self {
        let mut details = ErrorDetails::with_error_info(
            REASON_INVALID_REQUEST,
            ERROR_DOMAIN,
            HashMap::from([("field".to_owned(), err.field.to_owned())]),
        );
        details.add_bad_request_violation(err.field, err.description.clone());
        Status::with_error_details(Code::InvalidArgument, err.to_string(), details)
    }
}

/// The status for a call whose deadline ran out inside the gateway.
pub fn deadline_exceeded() -> Status {
    Status::with_error_details(
        Code::DeadlineExceeded,
        "the call's deadline ran out before an answer",
        ErrorDetails::with_error_info(REASON_DEADLINE_EXCEEDED, ERROR_DOMAIN, HashMap::new()),
    )
}

/// `reason` of a failure of the gateway's own, such as a decoding task that died.
pub const REASON_INTERNAL: &str = "INTERNAL";

/// `reason` of a QR image in which no code was found.
pub const REASON_QR_NOT_FOUND: &str = "QR_NOT_FOUND";

/// `reason` of a QR image whose codes are none of them an invoice title's.
pub const REASON_QR_NOT_INVOICE_TITLE: &str = "QR_NOT_INVOICE_TITLE";

/// Why no invoice title was read from `qr_image`. The message never holds a decoded text.
impl From<QrError> for Status {
    fn from(err: QrError) -> Self {
        let message = err.to_string();
        match err {
            QrError::NotFound => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_error_info(REASON_QR_NOT_FOUND, ERROR_DOMAIN, HashMap::new()),
            ),
            QrError::NotInvoiceTitle { codes } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_error_info(
                    REASON_QR_NOT_INVOICE_TITLE,
                    ERROR_DOMAIN,
                    HashMap::from([("codes".to_owned(), codes.to_string())]),
                ),
            ),
            QrError::Image(err) if err.kind() == ErrorKind::InvalidInput => {
                InvalidRequest::new("qr_image", message).into()
            }
            QrError::Image(_) => Status::with_error_details(
                Code::Internal,
                message,
                ErrorDetails::with_error_info(REASON_INTERNAL, ERROR_DOMAIN, HashMap::new()),
            ),
            QrError::DeadlineExceeded => deadline_exceeded(),
        }
    }
}

/// `reason` of a message larger than its method accepts.
pub const REASON_MESSAGE_TOO_LARGE: &str = "MESSAGE_TOO_LARGE";

/// `reason` of a call refused because the request bytes in flight would pass the budget.
pub const REASON_REQUEST_MEMORY_EXHAUSTED: &str = "REQUEST_MEMORY_EXHAUSTED";

/// `reason` of a request body that stopped arriving.
pub const REASON_REQUEST_BODY_TIMEOUT: &str = "REQUEST_BODY_TIMEOUT";

/// `reason` of a request whose gRPC framing or protobuf is broken.
pub const REASON_MALFORMED_REQUEST: &str = "MALFORMED_REQUEST";

/// How long a caller refused for load should wait before trying again.
const OVERLOAD_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// A message over the method's limit, refused before it is read (RESOURCE_EXHAUSTED, as the
/// gRPC spec asks for messages past the receiver's limit).
pub fn message_too_large(length: usize, limit: usize) -> Status {
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("the request message is {length} bytes; this method accepts at most {limit}"),
        ErrorDetails::with_error_info(
            REASON_MESSAGE_TOO_LARGE,
            ERROR_DOMAIN,
            HashMap::from([("limit_bytes".to_owned(), limit.to_string())]),
        ),
    )
}

/// The process holds as many request bytes as it may; the caller should retry shortly.
pub fn request_memory_exhausted() -> Status {
    let mut details = ErrorDetails::with_error_info(
        REASON_REQUEST_MEMORY_EXHAUSTED,
        ERROR_DOMAIN,
        HashMap::new(),
    );
    details.set_retry_info(Some(OVERLOAD_RETRY_DELAY));
    Status::with_error_details(
        Code::ResourceExhausted,
        "the server holds as many request bytes as it may; retry shortly",
        details,
    )
}

/// The request body sent nothing for `timeout`.
pub fn body_timeout(timeout: std::time::Duration) -> Status {
    Status::with_error_details(
        Code::DeadlineExceeded,
        format!("the request body sent nothing for {timeout:?}"),
        ErrorDetails::with_error_info(REASON_REQUEST_BODY_TIMEOUT, ERROR_DOMAIN, HashMap::new()),
    )
}

/// A request whose framing or protobuf encoding is broken: the client's mistake.
pub fn malformed_request(description: impl Into<String>) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        description,
        ErrorDetails::with_error_info(REASON_MALFORMED_REQUEST, ERROR_DOMAIN, HashMap::new()),
    )
}

/// A caller refused before its call was served: who it is not, or what it may not do.
pub fn caller_refused(refusal: &crate::auth::Refusal, caller: &str) -> Status {
    use crate::auth::Refusal;
    let (code, reason, retry_after) = match refusal {
        Refusal::MissingCredential | Refusal::UnknownCredential => {
            (Code::Unauthenticated, "UNAUTHENTICATED", None)
        }
        Refusal::Rpc { .. } | Refusal::Account { .. } | Refusal::Provider { .. } => {
            (Code::PermissionDenied, "CALLER_PERMISSION_DENIED", None)
        }
        Refusal::RateLimited { retry_after, .. } => (
            Code::ResourceExhausted,
            "CALLER_RATE_LIMITED",
            Some(*retry_after),
        ),
        Refusal::BudgetExhausted { retry_after, .. } => (
            Code::ResourceExhausted,
            "CALLER_BUDGET_EXHAUSTED",
            Some(*retry_after),
        ),
        Refusal::StoreUnavailable => (Code::Unavailable, "BUDGET_STORE_UNAVAILABLE", None),
    };
    let mut details = ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        HashMap::from([("caller".to_owned(), caller.to_owned())]),
    );
    if let Some(delay) = retry_after {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details(code, refusal.to_string(), details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vendor_code_reaches_the_errcode_metadata_as_the_vendor_wrote_it() {
        for code in ["40001", "FailedOperation.OcrFailed"] {
            let err = ProviderError::new("vendor", ErrorKind::InvalidInput, "refused")
                .with_vendor_code(code, "refused");
            let info = provider_error(&err)
                .get_details_error_info()
                .expect("ErrorInfo");
            assert_eq!(info.metadata.get("errcode").map(String::as_str), Some(code));
            assert_eq!(info.reason, "VENDOR_INVALID_INPUT");
        }
    }
}
