//! What the simulator knows: apps, tokens, registered cards and titles, faults, quotas, records.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use bytes::Bytes;
use rand::{Rng, distr::Alphanumeric};
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

/// A misbehaviour to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 200 with this errcode and errmsg.
    Errcode { errcode: i64, errmsg: String },
    /// HTTP 200 with Tencent Cloud's error envelope: this code and message.
    TencentError { code: String, message: String },
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

impl Fault {
    pub fn errcode(errcode: i64, errmsg: &str) -> Self {
        Self::Errcode {
            errcode,
            errmsg: errmsg.to_owned(),
        }
    }

    pub fn tencent(code: &str, message: &str) -> Self {
        Self::TencentError {
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// How a successful bank card reply looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyShape {
    /// As the reference documents it: `{"errcode":0,"errmsg":"ok","number":"…"}`.
    #[default]
    Documented,
    /// As the document's own example shows it: `{"errcode":"0","errmsg":"ok","id":"…"}`.
    Example,
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

struct IssuedToken {
    value: String,
    expires_at: Instant,
}

#[derive(Default)]
struct App {
    secret: String,
    current: Option<IssuedToken>,
    /// Superseded tokens that still work until their `expires_at` (the overlap window).
    superseded: Vec<IssuedToken>,
    /// Tokens that expired or were revoked: calls with them get 42001 or 40001.
    expired: Vec<String>,
}

/// Why a presented access token is refused.
pub(crate) enum TokenRefusal {
    Invalid,
    Expired,
}

pub(crate) struct State {
    config: SimConfig,
    inner: Mutex<Inner>,
    held: Semaphore,
    changes: watch::Sender<usize>,
}

#[derive(Default)]
struct Inner {
    apps: HashMap<String, App>,
    /// App id of each token ever issued.
    token_owner: HashMap<String, String>,
    issued: Vec<String>,
    cards_by_image: HashMap<Bytes, String>,
    cards_by_url: HashMap<String, String>,
    titles: HashMap<String, Value>,
    faults: HashMap<Endpoint, VecDeque<(Fault, usize)>>,
    quotas: HashMap<Endpoint, u64>,
    reply_shape: ReplyShape,
    requests: Vec<RecordedRequest>,
    /// Tencent Cloud keys: SecretId to (SecretKey, the session token it needs, if temporary).
    tencent_keys: HashMap<String, (String, Option<String>)>,
    /// Fields every successful Tencent reply carries besides `CardNo`.
    tencent_extras: serde_json::Map<String, Value>,
    /// How far the simulated Tencent clock is ahead of this machine's, in seconds.
    tencent_clock_offset: i64,
}

impl State {
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

    pub(crate) fn add_app(&self, app_id: &str, secret: &str) {
        self.lock().apps.insert(
            app_id.to_owned(),
            App {
                secret: secret.to_owned(),
                ..App::default()
            },
        );
    }

    pub(crate) fn add_card_image(&self, image: Bytes, number: &str) {
        self.lock().cards_by_image.insert(image, number.to_owned());
    }

    pub(crate) fn add_card_url(&self, url: &str, number: &str) {
        self.lock()
            .cards_by_url
            .insert(url.to_owned(), number.to_owned());
    }

    pub(crate) fn add_invoice_title(&self, scan_text: &str, title: Value) {
        self.lock().titles.insert(scan_text.to_owned(), title);
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

    pub(crate) fn set_reply_shape(&self, shape: ReplyShape) {
        self.lock().reply_shape = shape;
    }

    pub(crate) fn reply_shape(&self) -> ReplyShape {
        self.lock().reply_shape
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

    pub(crate) fn issued_tokens(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    /// Checks an app's credentials: `Err((errcode, errmsg))` as WeChat would answer.
    pub(crate) fn check_credentials(
        &self,
        app_id: &str,
        secret: &str,
    ) -> Result<(), (i64, &'static str)> {
        match self.lock().apps.get(app_id) {
            None => Err((40013, "invalid appid")),
            Some(app) if app.secret != secret => Err((40125, "invalid appsecret")),
            Some(_) => Ok(()),
        }
    }

    /// `stable_token`: the current token while it is valid, otherwise a new one. With
    /// `force_refresh` always a new one, and every older token dies at once.
    pub(crate) fn stable_token(&self, app_id: &str, force_refresh: bool) -> (String, u64) {
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner {
            apps,
            token_owner,
            issued,
            ..
        } = &mut *inner;
        let Some(app) = apps.get_mut(app_id) else {
            return (String::new(), 0);
        };
        if force_refresh {
            // Older tokens become unknown, not expired: calls with them get 40001.
            app.current = None;
            app.superseded.clear();
        }
        if let Some(current) = app.current.as_ref().filter(|token| token.expires_at > now) {
            return (
                current.value.clone(),
                current.expires_at.duration_since(now).as_secs(),
            );
        }
        if let Some(old) = app.current.take() {
            app.expired.push(old.value);
        }
        self.issue(app, app_id, token_owner, issued, now)
    }

    /// Legacy `cgi-bin/token`: always a new token; the previous one works for the overlap only.
    pub(crate) fn legacy_token(&self, app_id: &str) -> (String, u64) {
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner {
            apps,
            token_owner,
            issued,
            ..
        } = &mut *inner;
        let Some(app) = apps.get_mut(app_id) else {
            return (String::new(), 0);
        };
        if let Some(mut previous) = app.current.take() {
            previous.expires_at = previous.expires_at.min(now + self.config.token_overlap);
            app.superseded.push(previous);
        }
        self.issue(app, app_id, token_owner, issued, now)
    }

    /// Mints a token, records who owns it, and makes it `app`'s current one.
    fn issue(
        &self,
        app: &mut App,
        app_id: &str,
        token_owner: &mut HashMap<String, String>,
        issued: &mut Vec<String>,
        now: Instant,
    ) -> (String, u64) {
        let token = self.mint(now);
        token_owner.insert(token.value.clone(), app_id.to_owned());
        issued.push(token.value.clone());
        let reply = (token.value.clone(), self.config.token_lifetime.as_secs());
        app.current = Some(token);
        reply
    }

    fn mint(&self, now: Instant) -> IssuedToken {
        let suffix: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(48)
            .map(char::from)
            .collect();
        IssuedToken {
            value: format!("SIMTOKEN_{suffix}"),
            expires_at: now + self.config.token_lifetime,
        }
    }

    /// Whether `token` may call the API now.
    pub(crate) fn check_token(&self, token: &str) -> Result<(), TokenRefusal> {
        let now = Instant::now();
        let inner = self.lock();
        let Some(app) = inner
            .token_owner
            .get(token)
            .and_then(|app_id| inner.apps.get(app_id))
        else {
            return Err(TokenRefusal::Invalid);
        };
        let live = app
            .current
            .iter()
            .chain(&app.superseded)
            .find(|issued| issued.value == token);
        match live {
            Some(issued) if issued.expires_at > now => Ok(()),
            Some(_) => Err(TokenRefusal::Expired),
            None if app.expired.iter().any(|t| t == token) => Err(TokenRefusal::Expired),
            None => Err(TokenRefusal::Invalid),
        }
    }

    pub(crate) fn revoke_tokens(&self, app_id: &str) {
        let mut inner = self.lock();
        if let Some(app) = inner.apps.get_mut(app_id) {
            // Revoked tokens are unknown to WeChat from now on: 40001, not 42001.
            app.current = None;
            app.superseded.clear();
        }
    }

    pub(crate) fn expire_tokens(&self, app_id: &str) {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(app) = inner.apps.get_mut(app_id) {
            for token in app.current.iter_mut().chain(app.superseded.iter_mut()) {
                token.expires_at = now;
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

    pub(crate) fn add_tencent_key(&self, secret_id: &str, secret_key: &str, token: Option<&str>) {
        self.lock().tencent_keys.insert(
            secret_id.to_owned(),
            (secret_key.to_owned(), token.map(str::to_owned)),
        );
    }

    pub(crate) fn tencent_key(&self, secret_id: &str) -> Option<(String, Option<String>)> {
        self.lock().tencent_keys.get(secret_id).cloned()
    }

    pub(crate) fn set_tencent_extras(&self, extras: serde_json::Map<String, Value>) {
        self.lock().tencent_extras = extras;
    }

    pub(crate) fn tencent_extras(&self) -> serde_json::Map<String, Value> {
        self.lock().tencent_extras.clone()
    }

    pub(crate) fn set_tencent_clock_offset(&self, seconds: i64) {
        self.lock().tencent_clock_offset = seconds;
    }

    pub(crate) fn tencent_clock_offset(&self) -> i64 {
        self.lock().tencent_clock_offset
    }

    pub(crate) fn card_for_url(&self, url: &str) -> Option<String> {
        self.lock().cards_by_url.get(url).cloned()
    }

    pub(crate) fn title_for(&self, scan_text: &str) -> Option<Value> {
        self.lock()
            .titles
            .get(scan_text)
            .cloned()
            .or_else(|| self.config.default_invoice_title.clone())
    }
}
