//! What every simulated vendor shares: the cards tests show, injected faults, quotas, held
//! requests and the record of every request received; and reading a request and applying a fault,
//! as each vendor's endpoints do first.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, Multipart, Request},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use crate::SimConfig;

/// One of the simulated endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /cgi-bin/stable_token`
    StableToken,
    /// `GET /cgi-bin/token` (legacy)
    Token,
    /// `POST /cv/ocr/bankcard`
    BankCard,
    /// `POST /card/invoice/scantitle`
    ScanTitle,
    /// Tencent Cloud's `POST /` with `X-TC-Action: BankCardOCR`
    TencentBankCard,
}

/// A misbehaviour to inject. Each vendor's module makes its own errors as replies
/// (`Fault::errcode` for WeChat, `Fault::tencent` for Tencent Cloud).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 200 with this JSON body: an error as the vendor answers it.
    Reply(Value),
    /// This HTTP status with a plain-text body.
    HttpStatus(u16),
    /// Answer normally, this much later.
    Delay(Duration),
    /// Answer normally once released with [`crate::Simulator::release_held`].
    Hold,
    /// Send the headers, then break the connection mid-body.
    DropConnection,
    /// HTTP 200 with a body that is not JSON.
    MalformedJson,
    /// HTTP 200 with exactly this body, as `application/json`.
    Body(String),
    /// HTTP 200 with a JSON-looking body of this many bytes, streamed with no length announced
    /// and never held in memory at once.
    OversizedBody(usize),
}

/// A file part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    pub field: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub len: usize,
}

/// A request as the simulator received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub endpoint: Endpoint,
    pub method: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub traceparent: Option<String>,
    /// The JSON body, when there was one.
    pub json: Option<Value>,
    /// The file parts of a multipart body.
    pub files: Vec<UploadedFile>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

pub(crate) struct Shared {
    config: SimConfig,
    inner: Mutex<Inner>,
    held: Semaphore,
    changes: watch::Sender<usize>,
}

#[derive(Default)]
struct Inner {
    cards_by_image: HashMap<Bytes, String>,
    cards_by_url: HashMap<String, String>,
    faults: HashMap<Endpoint, VecDeque<(Fault, usize)>>,
    quotas: HashMap<Endpoint, u64>,
    requests: Vec<RecordedRequest>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
            held: Semaphore::new(0),
            changes: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take the simulator down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn add_card_image(&self, image: Bytes, number: &str) {
        self.lock().cards_by_image.insert(image, number.to_owned());
    }

    pub(crate) fn add_card_url(&self, url: &str, number: &str) {
        self.lock()
            .cards_by_url
            .insert(url.to_owned(), number.to_owned());
    }

    pub(crate) fn inject(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        if times > 0 {
            self.lock()
                .faults
                .entry(endpoint)
                .or_default()
                .push_back((fault, times));
        }
    }

    pub(crate) fn set_quota(&self, endpoint: Endpoint, calls: u64) {
        self.lock().quotas.insert(endpoint, calls);
    }

    /// Takes one call from the endpoint's quota; `false` when none is left.
    pub(crate) fn take_quota(&self, endpoint: Endpoint) -> bool {
        match self.lock().quotas.get_mut(&endpoint) {
            None => true,
            Some(0) => false,
            Some(left) => {
                *left -= 1;
                true
            }
        }
    }

    /// The next injected fault for `endpoint`, if any.
    pub(crate) fn next_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut inner = self.lock();
        let queue = inner.faults.get_mut(&endpoint)?;
        let (fault, left) = queue.front_mut()?;
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    pub(crate) async fn hold(&self) {
        // Closed on shutdown: then everything held goes on.
        if let Ok(permit) = self.held.acquire().await {
            permit.forget();
        }
    }

    pub(crate) fn release_held(&self, n: usize) {
        self.held.add_permits(n);
    }

    pub(crate) fn release_all_held(&self) {
        self.held.close();
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let count = {
            let mut inner = self.lock();
            inner.requests.push(request);
            inner.requests.len()
        };
        self.changes.send_replace(count);
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub(crate) fn count(&self, endpoint: Endpoint) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .count()
    }

    pub(crate) async fn wait_for(&self, endpoint: Endpoint, n: usize) {
        let mut changes = self.changes.subscribe();
        while self.count(endpoint) < n {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    pub(crate) fn card_for_image(&self, image: &Bytes) -> Option<String> {
        self.lock()
            .cards_by_image
            .get(image)
            .cloned()
            .or_else(|| self.config.default_card_number.clone())
    }

    pub(crate) fn card_for_url(&self, url: &str) -> Option<String> {
        self.lock().cards_by_url.get(url).cloned()
    }
}

/// A request read whole: query, headers and body (JSON or multipart), recorded before anything
/// else happens.
pub(crate) struct Received {
    pub(crate) record: RecordedRequest,
    /// The `img` part of a multipart upload.
    pub(crate) image: Option<Bytes>,
}

pub(crate) async fn receive(shared: &Shared, endpoint: Endpoint, request: Request) -> Received {
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
    shared.record(record.clone());
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
pub(crate) async fn fault(shared: &Shared, endpoint: Endpoint) -> Option<Response> {
    match shared.next_fault(endpoint)? {
        Fault::Reply(body) => Some(axum::Json(body).into_response()),
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
            shared.hold().await;
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
