//! The HTTP endpoints.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State as AxumState},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::state::{
    Endpoint, Fault, RecordedRequest, ReplyShape, State, TokenRefusal, UploadedFile,
};

/// WeChat refuses images of 2 MB or more.
const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

type Shared = AxumState<Arc<State>>;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/cgi-bin/stable_token", post(stable_token))
        .route("/cgi-bin/token", get(legacy_token))
        .route("/cv/ocr/bankcard", post(bank_card))
        .route("/card/invoice/scantitle", post(scan_title))
        .route("/", post(crate::tencent::api))
        // Room for a 2 MiB WeChat upload with its multipart framing, or Tencent's 7 MB of base64;
        // each endpoint applies its own limit.
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(state)
}

/// A request read whole: query, headers and body (JSON or multipart), recorded before anything
/// else happens.
struct Received {
    record: RecordedRequest,
    image: Option<Bytes>,
}

async fn receive(state: &State, endpoint: Endpoint, request: Request) -> Received {
    let method = request.method().to_string();
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(url_decode_pairs)
        .unwrap_or_default();
    let headers = request.headers().clone();
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let mut json = None;
    let mut files = Vec::new();
    let mut image = None;
    if content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("multipart/form-data"))
    {
        if let Ok(mut multipart) = Multipart::from_request(request, &()).await {
            while let Ok(Some(field)) = multipart.next_field().await {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let field_type = field.content_type().map(str::to_owned);
                let Ok(bytes) = field.bytes().await else {
                    break;
                };
                files.push(UploadedFile {
                    field: name.clone(),
                    file_name,
                    content_type: field_type,
                    len: bytes.len(),
                });
                if name == "img" && image.is_none() {
                    image = Some(bytes);
                }
            }
        }
    } else if let Ok(body) = axum::body::to_bytes(request.into_body(), 8 * 1024 * 1024).await {
        json = serde_json::from_slice::<Value>(&body).ok();
    }
    let record = RecordedRequest {
        endpoint,
        method,
        query,
        content_type,
        traceparent: header_str(&headers, "traceparent"),
        json,
        files,
        headers: all_headers(&headers),
    };
    state.record(record.clone());
    Received { record, image }
}

/// Every header, names in lower case, values as text.
pub(crate) fn all_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Applies the next injected fault: `Some(response)` when it replaces the normal answer.
pub(crate) async fn fault(state: &State, endpoint: Endpoint) -> Option<Response> {
    match state.next_fault(endpoint)? {
        Fault::Errcode { errcode, errmsg } => Some(errcode_reply(errcode, &errmsg)),
        Fault::TencentError { code, message } => Some(crate::tencent::error_reply(&code, &message)),
        Fault::HttpStatus(code) => Some(
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "simulated server error",
            )
                .into_response(),
        ),
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        Fault::Hold => {
            state.hold().await;
            None
        }
        Fault::DropConnection => {
            let broken = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("simulated dropped connection"))
            });
            Some(
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(broken))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
            )
        }
        Fault::MalformedJson => Some(
            (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"errcode":0,"errmsg":"ok","#,
            )
                .into_response(),
        ),
        Fault::Body(body) => {
            Some(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        Fault::OversizedBody(len) => {
            const CHUNK: usize = 64 * 1024;
            let opening = Bytes::from_static(br#"{"errcode":0,"errmsg":"ok","title":""#);
            let filler = Bytes::from(vec![b'A'; CHUNK]);
            let chunks = (0..len.div_ceil(CHUNK)).map(move |i| {
                Ok::<_, std::io::Error>(if i == 0 {
                    opening.clone()
                } else {
                    filler.clone()
                })
            });
            Some(
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(futures_util::stream::iter(chunks)))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
            )
        }
    }
}

async fn stable_token(AxumState(state): Shared, request: Request) -> Response {
    let received = receive(&state, Endpoint::StableToken, request).await;
    if let Some(response) = fault(&state, Endpoint::StableToken).await {
        return response;
    }
    let Some(body) = received.record.json.as_ref() else {
        return errcode_reply(47001, "data format error");
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let force = body
        .get("force_refresh")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (app_id, secret) = (field("appid"), field("secret"));
    grant(
        &state,
        Endpoint::StableToken,
        field("grant_type"),
        app_id,
        secret,
        || state.stable_token(app_id, force),
    )
}

async fn legacy_token(AxumState(state): Shared, request: Request) -> Response {
    let received = receive(&state, Endpoint::Token, request).await;
    if let Some(response) = fault(&state, Endpoint::Token).await {
        return response;
    }
    let param = |name: &str| received.record.query_param(name).unwrap_or_default();
    let (app_id, secret) = (param("appid"), param("secret"));
    grant(
        &state,
        Endpoint::Token,
        param("grant_type"),
        app_id,
        secret,
        || state.legacy_token(app_id),
    )
}

/// A token endpoint's checks, in WeChat's order, then the token `issue` hands out.
fn grant(
    state: &State,
    endpoint: Endpoint,
    grant_type: &str,
    app_id: &str,
    secret: &str,
    issue: impl FnOnce() -> (String, u64),
) -> Response {
    if grant_type != "client_credential" {
        return errcode_reply(40002, "invalid grant_type");
    }
    if let Err((errcode, errmsg)) = state.check_credentials(app_id, secret) {
        return errcode_reply(errcode, errmsg);
    }
    if !state.take_quota(endpoint) {
        return errcode_reply(45009, "reach max api daily quota limit");
    }
    let (token, expires_in) = issue();
    Json(json!({"access_token": token, "expires_in": expires_in})).into_response()
}

async fn bank_card(AxumState(state): Shared, request: Request) -> Response {
    let received = receive(&state, Endpoint::BankCard, request).await;
    if let Some(response) = fault(&state, Endpoint::BankCard).await {
        return response;
    }
    if let Some(refused) = check_token(&state, &received.record) {
        return refused;
    }
    if !state.take_quota(Endpoint::BankCard) {
        return errcode_reply(101003, "not enough market quota");
    }
    let number = if let Some(url) = received.record.query_param("img_url") {
        match state.card_for_url(url) {
            Some(number) => number,
            None => return errcode_reply(101000, "invalid image url"),
        }
    } else {
        let Some(image) = &received.image else {
            return errcode_reply(41005, "media data missing");
        };
        if image.len() >= MAX_IMAGE_BYTES {
            return errcode_reply(101002, "image size too large");
        }
        match state.card_for_image(image) {
            Some(number) => number,
            None => return errcode_reply(101001, "certificate not found"),
        }
    };
    let reply = match state.reply_shape() {
        ReplyShape::Documented => json!({"errcode": 0, "errmsg": "ok", "number": number}),
        ReplyShape::Example => json!({"errcode": "0", "errmsg": "ok", "id": number}),
    };
    Json(reply).into_response()
}

async fn scan_title(AxumState(state): Shared, request: Request) -> Response {
    let received = receive(&state, Endpoint::ScanTitle, request).await;
    if let Some(response) = fault(&state, Endpoint::ScanTitle).await {
        return response;
    }
    if let Some(refused) = check_token(&state, &received.record) {
        return refused;
    }
    if received.record.query_param("scan_text").is_some() {
        return errcode_reply(72031, "invalid params");
    }
    if !state.take_quota(Endpoint::ScanTitle) {
        return errcode_reply(45009, "reach max api daily quota limit");
    }
    let Some(scan_text) = received
        .record
        .json
        .as_ref()
        .and_then(|body| body.get("scan_text"))
        .and_then(Value::as_str)
    else {
        return errcode_reply(47001, "data format error");
    };
    let Some(title) = state.title_for(scan_text) else {
        return errcode_reply(40097, "invalid args");
    };
    let mut reply = json!({"errcode": 0, "errmsg": "ok"});
    if let (Some(reply), Some(title)) = (reply.as_object_mut(), title.as_object()) {
        reply.extend(title.clone());
    }
    Json(reply).into_response()
}

fn check_token(state: &State, request: &RecordedRequest) -> Option<Response> {
    let Some(token) = request.query_param("access_token") else {
        return Some(errcode_reply(41001, "access_token missing"));
    };
    match state.check_token(token) {
        Ok(()) => None,
        Err(TokenRefusal::Invalid) => Some(errcode_reply(
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
        Err(TokenRefusal::Expired) => Some(errcode_reply(42001, "access_token expired")),
    }
}

fn errcode_reply(errcode: i64, errmsg: &str) -> Response {
    Json(json!({"errcode": errcode, "errmsg": errmsg})).into_response()
}

pub(crate) fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}
