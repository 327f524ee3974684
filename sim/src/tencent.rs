//! Tencent Cloud's `BankCardOCR` (API 3.0, version 2018-11-19) as the vendor's reference describes
//! it: every request's TC3-HMAC-SHA256 signature recomputed from the headers it names and the exact
//! body bytes, timestamps more than five minutes off refused, errors in Tencent's envelope.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Request, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    SimConfig, Simulator, Vendor,
    shared::{Endpoint, Fault, RecordedRequest, Shared, all_headers, fault, header_str},
};

/// Tencent refuses more than 7 MB of base64.
const MAX_BASE64_BYTES: usize = 7_000_000;
/// How far a request's timestamp may be from the server's clock.
const MAX_SKEW_SECONDS: i64 = 300;

impl Fault {
    /// HTTP 200 with Tencent Cloud's error envelope: this code and message.
    pub fn tencent(code: &str, message: &str) -> Self {
        Self::Reply(error_body(code, message))
    }
}

/// What Tencent Cloud knows: keys, the fields its replies carry, its clock.
#[derive(Default)]
pub(crate) struct Tencent {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// SecretId to (SecretKey, the session token it needs, if temporary).
    keys: HashMap<String, (String, Option<String>)>,
    /// Fields every successful reply carries besides `CardNo`.
    extras: serde_json::Map<String, Value>,
    /// How far the simulated clock is ahead of this machine's, in seconds.
    clock_offset: i64,
}

impl Vendor for Tencent {
    fn new(_: &SimConfig) -> Self {
        Self::default()
    }

    fn routes(self: Arc<Self>, shared: Arc<Shared>) -> Router {
        Router::new().route("/", post(api)).with_state(Api {
            shared,
            tencent: self,
        })
    }
}

/// What the endpoint sees.
#[derive(Clone)]
struct Api {
    shared: Arc<Shared>,
    tencent: Arc<Tencent>,
}

impl Tencent {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take the simulator down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Tests' controls of the Tencent Cloud API.
impl Simulator {
    /// Lets `BankCardOCR` accept requests signed with this key. With `token`, the key is a
    /// temporary one and every request must carry that session token in `X-TC-Token`.
    pub fn add_tencent_key(&self, secret_id: &str, secret_key: &str, token: Option<&str>) {
        self.vendors.tencent.lock().keys.insert(
            secret_id.to_owned(),
            (secret_key.to_owned(), token.map(str::to_owned)),
        );
    }

    /// Fields every successful `BankCardOCR` reply carries besides `CardNo`, e.g. `ValidDate`,
    /// `WarningCode`, `QualityValue`.
    pub fn set_tencent_extras(&self, extras: Value) {
        self.vendors.tencent.lock().extras = extras.as_object().cloned().unwrap_or_default();
    }

    /// Moves the simulated Tencent clock `seconds` ahead of this machine's (negative: behind).
    pub fn set_tencent_clock_offset(&self, seconds: i64) {
        self.vendors.tencent.lock().clock_offset = seconds;
    }
}

async fn api(State(Api { shared, tencent }): State<Api>, request: Request) -> Response {
    let headers = request.headers().clone();
    let Ok(body) = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024).await else {
        return error_reply("InvalidParameter", "the body could not be read");
    };
    let json = serde_json::from_slice::<Value>(&body).ok();
    shared.record(RecordedRequest {
        endpoint: Endpoint::TencentBankCard,
        method: "POST".into(),
        query: Vec::new(),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        traceparent: header_str(&headers, "traceparent"),
        json: json.clone(),
        files: Vec::new(),
        headers: all_headers(&headers),
    });
    if let Some(response) = fault(&shared, Endpoint::TencentBankCard).await {
        return response;
    }
    if let Err((code, message)) = authenticate(&tencent, &headers, &body) {
        return error_reply(code, &message);
    }
    match header_str(&headers, "x-tc-action").as_deref() {
        Some("BankCardOCR") => {}
        _ => return error_reply("InvalidAction", "the action does not exist"),
    }
    if header_str(&headers, "x-tc-version").as_deref() != Some("2018-11-19") {
        return error_reply("NoSuchVersion", "the API version does not exist");
    }
    let Some(json) = json else {
        return error_reply("InvalidParameter", "the body is not JSON");
    };
    if !shared.take_quota(Endpoint::TencentBankCard) {
        return error_reply(
            "FailedOperation.CountLimitError",
            "today's call limit is reached",
        );
    }
    let number = if let Some(url) = json.get("ImageUrl").and_then(Value::as_str) {
        match shared.card_for_url(url) {
            Some(number) => number,
            None => {
                return error_reply(
                    "FailedOperation.DownLoadError",
                    "the image could not be downloaded",
                );
            }
        }
    } else if let Some(encoded) = json.get("ImageBase64").and_then(Value::as_str) {
        if encoded.len() > MAX_BASE64_BYTES {
            return error_reply("LimitExceeded.TooLargeFileError", "the image is too large");
        }
        let Ok(image) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return error_reply(
                "FailedOperation.ImageDecodeFailed",
                "the image could not be decoded",
            );
        };
        if !accepted_format(&image) {
            return error_reply(
                "FailedOperation.ImageDecodeFailed",
                "the image could not be decoded",
            );
        }
        match shared.card_for_image(&Bytes::from(image)) {
            Some(number) => number,
            None => return error_reply("FailedOperation.OcrFailed", "no bank card was recognised"),
        }
    } else {
        return error_reply("InvalidParameter.ImageEmpty", "no image was given");
    };
    let mut reply = json!({
        "CardNo": number,
        "BankInfo": null,
        "ValidDate": null,
        "CardType": null,
        "CardName": null,
        "BorderCutImage": null,
        "CardNoImage": null,
        "WarningCode": null,
        "QualityValue": null,
        "RequestId": request_id(),
    });
    if let Some(fields) = reply.as_object_mut() {
        fields.extend(tencent.lock().extras.clone());
    }
    Json(json!({ "Response": reply })).into_response()
}

/// JPEG, PNG and BMP, by their magic bytes: Tencent takes no GIF and no WebP.
fn accepted_format(image: &[u8]) -> bool {
    image.starts_with(b"\xFF\xD8\xFF")
        || image.starts_with(b"\x89PNG\r\n\x1a\n")
        || image.starts_with(b"BM")
}

/// Checks the request's signature as Tencent does; `Err((code, message))` as it would answer.
fn authenticate(
    tencent: &Tencent,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), (&'static str, String)> {
    let failure = |message: &str| ("AuthFailure.SignatureFailure", message.to_owned());
    let authorization = header_str(headers, header::AUTHORIZATION)
        .ok_or_else(|| failure("no Authorization header"))?;
    let rest = authorization
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or_else(|| failure("the algorithm is not TC3-HMAC-SHA256"))?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(", ") {
        match part.split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => return Err(failure("the Authorization header is malformed")),
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(failure("the Authorization header is incomplete"));
    };
    let mut scope = credential.splitn(4, '/');
    let (Some(secret_id), Some(date), Some(service), Some("tc3_request")) =
        (scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(failure("the credential scope is malformed"));
    };
    let Some((secret_key, token)) = tencent.lock().keys.get(secret_id).cloned() else {
        return Err((
            "AuthFailure.SecretIdNotFound",
            "the SecretId does not exist".into(),
        ));
    };
    let timestamp: i64 = header_str(headers, "x-tc-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| ("MissingParameter", "X-TC-Timestamp is missing".to_owned()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        + tencent.lock().clock_offset;
    if (now - timestamp).abs() > MAX_SKEW_SECONDS {
        return Err((
            "AuthFailure.SignatureExpire",
            "the signature has expired".into(),
        ));
    }
    if service != "ocr" || date != utc_date(timestamp) {
        return Err(failure("the credential scope does not match the request"));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"content-type") || !names.contains(&"host") || !names.is_sorted() {
        return Err(failure("content-type and host must be signed, in order"));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let value =
            header_str(headers, *name).ok_or_else(|| failure("a signed header is missing"))?;
        let value = if *name == "x-tc-action" {
            value.to_lowercase()
        } else {
            value
        };
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let canonical_request = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    if hex::encode(hmac(&k_signing, string_to_sign.as_bytes())) != signature {
        return Err(failure("the signature does not match"));
    }
    if let Some(token) = token
        && header_str(headers, "x-tc-token").as_deref() != Some(token.as_str())
    {
        return Err((
            "AuthFailure.TokenFailure",
            "the session token is invalid".into(),
        ));
    }
    Ok(())
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `YYYY-MM-DD` of a Unix timestamp, in UTC.
fn utc_date(timestamp: i64) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_secs(timestamp.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(time).to_string()[..10].to_owned()
}

fn request_id() -> String {
    use rand::Rng as _;
    format!("{:032x}", rand::rng().random::<u128>())
}

fn error_reply(code: &str, message: &str) -> Response {
    Json(error_body(code, message)).into_response()
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id()}})
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_798_761_599), "2026-12-31");
    }
}
