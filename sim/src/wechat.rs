//! WeChat's server API: `cgi-bin/stable_token`, `cgi-bin/token`, `cv/ocr/bankcard` and
//! `card/invoice/scantitle`, behaving as the real API does, quirks included.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Request, State},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rand::{Rng, distr::Alphanumeric};
use serde_json::{Value, json};

use crate::{
    SimConfig, Simulator, Vendor,
    shared::{Endpoint, Fault, RecordedRequest, Shared, fault, receive},
};

/// WeChat refuses images of 2 MB or more.
const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

impl Fault {
    /// HTTP 200 with this errcode and errmsg, as WeChat reports its errors.
    pub fn errcode(errcode: i64, errmsg: &str) -> Self {
        Self::Reply(json!({"errcode": errcode, "errmsg": errmsg}))
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
enum TokenRefusal {
    Invalid,
    Expired,
}

/// What WeChat knows: apps and their tokens, invoice titles, how it shapes replies.
pub(crate) struct Wechat {
    token_lifetime: Duration,
    token_overlap: Duration,
    default_invoice_title: Option<Value>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    apps: HashMap<String, App>,
    /// App id of each token ever issued.
    token_owner: HashMap<String, String>,
    issued: Vec<String>,
    titles: HashMap<String, Value>,
    reply_shape: ReplyShape,
}

impl Vendor for Wechat {
    fn new(config: &SimConfig) -> Self {
        Self {
            token_lifetime: config.token_lifetime,
            token_overlap: config.token_overlap,
            default_invoice_title: config.default_invoice_title.clone(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn routes(self: Arc<Self>, shared: Arc<Shared>) -> Router {
        Router::new()
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/token", get(legacy_token))
            .route("/cv/ocr/bankcard", post(bank_card))
            .route("/card/invoice/scantitle", post(scan_title))
            .with_state(Api {
                shared,
                wechat: self,
            })
    }
}

/// What WeChat's endpoints see.
#[derive(Clone)]
struct Api {
    shared: Arc<Shared>,
    wechat: Arc<Wechat>,
}

/// Tests' controls of the WeChat API.
impl Simulator {
    /// Registers an app that may fetch tokens.
    pub fn add_app(&self, app_id: &str, secret: &str) {
        self.vendors.wechat.lock().apps.insert(
            app_id.to_owned(),
            App {
                secret: secret.to_owned(),
                ..App::default()
            },
        );
    }

    /// The reply fields `card/invoice/scantitle` returns for this scan text.
    pub fn add_invoice_title(&self, scan_text: &str, title: Value) {
        self.vendors
            .wechat
            .lock()
            .titles
            .insert(scan_text.to_owned(), title);
    }

    /// How `cv/ocr/bankcard` shapes a successful reply.
    pub fn set_reply_shape(&self, shape: ReplyShape) {
        self.vendors.wechat.lock().reply_shape = shape;
    }

    /// Invalidates every token of `app_id` at once, as a force refresh elsewhere would: calls with
    /// them get 40001 and the next token fetch mints a new one.
    pub fn revoke_tokens(&self, app_id: &str) {
        if let Some(app) = self.vendors.wechat.lock().apps.get_mut(app_id) {
            // Revoked tokens are unknown to WeChat from now on: 40001, not 42001.
            app.current = None;
            app.superseded.clear();
        }
    }

    /// Lets every token of `app_id` expire now: calls with them get 42001.
    pub fn expire_tokens(&self, app_id: &str) {
        let now = Instant::now();
        if let Some(app) = self.vendors.wechat.lock().apps.get_mut(app_id) {
            for token in app.current.iter_mut().chain(app.superseded.iter_mut()) {
                token.expires_at = now;
            }
        }
    }

    /// Every token the simulator has handed out.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.vendors.wechat.lock().issued.clone()
    }
}

impl Wechat {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take the simulator down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn reply_shape(&self) -> ReplyShape {
        self.lock().reply_shape
    }

    /// Checks an app's credentials: `Err((errcode, errmsg))` as WeChat would answer.
    fn check_credentials(&self, app_id: &str, secret: &str) -> Result<(), (i64, &'static str)> {
        match self.lock().apps.get(app_id) {
            None => Err((40013, "invalid appid")),
            Some(app) if app.secret != secret => Err((40125, "invalid appsecret")),
            Some(_) => Ok(()),
        }
    }

    /// `stable_token`: the current token while it is valid, otherwise a new one. With
    /// `force_refresh` always a new one, and every older token dies at once.
    fn stable_token(&self, app_id: &str, force_refresh: bool) -> (String, u64) {
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
    fn legacy_token(&self, app_id: &str) -> (String, u64) {
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
            previous.expires_at = previous.expires_at.min(now + self.token_overlap);
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
        let reply = (token.value.clone(), self.token_lifetime.as_secs());
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
            expires_at: now + self.token_lifetime,
        }
    }

    /// Whether `token` may call the API now.
    fn check_token(&self, token: &str) -> Result<(), TokenRefusal> {
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

    fn title_for(&self, scan_text: &str) -> Option<Value> {
        self.lock()
            .titles
            .get(scan_text)
            .cloned()
            .or_else(|| self.default_invoice_title.clone())
    }
}

async fn stable_token(State(api): State<Api>, request: Request) -> Response {
    let received = receive(&api.shared, Endpoint::StableToken, request).await;
    if let Some(response) = fault(&api.shared, Endpoint::StableToken).await {
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
        &api,
        Endpoint::StableToken,
        field("grant_type"),
        app_id,
        secret,
        || api.wechat.stable_token(app_id, force),
    )
}

async fn legacy_token(State(api): State<Api>, request: Request) -> Response {
    let received = receive(&api.shared, Endpoint::Token, request).await;
    if let Some(response) = fault(&api.shared, Endpoint::Token).await {
        return response;
    }
    let param = |name: &str| received.record.query_param(name).unwrap_or_default();
    let (app_id, secret) = (param("appid"), param("secret"));
    grant(
        &api,
        Endpoint::Token,
        param("grant_type"),
        app_id,
        secret,
        || api.wechat.legacy_token(app_id),
    )
}

/// A token endpoint's checks, in WeChat's order, then the token `issue` hands out.
fn grant(
    api: &Api,
    endpoint: Endpoint,
    grant_type: &str,
    app_id: &str,
    secret: &str,
    issue: impl FnOnce() -> (String, u64),
) -> Response {
    if grant_type != "client_credential" {
        return errcode_reply(40002, "invalid grant_type");
    }
    if let Err((errcode, errmsg)) = api.wechat.check_credentials(app_id, secret) {
        return errcode_reply(errcode, errmsg);
    }
    if !api.shared.take_quota(endpoint) {
        return errcode_reply(45009, "reach max api daily quota limit");
    }
    let (token, expires_in) = issue();
    Json(json!({"access_token": token, "expires_in": expires_in})).into_response()
}

async fn bank_card(State(api): State<Api>, request: Request) -> Response {
    let received = receive(&api.shared, Endpoint::BankCard, request).await;
    if let Some(response) = fault(&api.shared, Endpoint::BankCard).await {
        return response;
    }
    if let Some(refused) = check_token(&api.wechat, &received.record) {
        return refused;
    }
    if !api.shared.take_quota(Endpoint::BankCard) {
        return errcode_reply(101003, "not enough market quota");
    }
    let number = if let Some(url) = received.record.query_param("img_url") {
        match api.shared.card_for_url(url) {
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
        match api.shared.card_for_image(image) {
            Some(number) => number,
            None => return errcode_reply(101001, "certificate not found"),
        }
    };
    let reply = match api.wechat.reply_shape() {
        ReplyShape::Documented => json!({"errcode": 0, "errmsg": "ok", "number": number}),
        ReplyShape::Example => json!({"errcode": "0", "errmsg": "ok", "id": number}),
    };
    Json(reply).into_response()
}

async fn scan_title(State(api): State<Api>, request: Request) -> Response {
    let received = receive(&api.shared, Endpoint::ScanTitle, request).await;
    if let Some(response) = fault(&api.shared, Endpoint::ScanTitle).await {
        return response;
    }
    if let Some(refused) = check_token(&api.wechat, &received.record) {
        return refused;
    }
    if received.record.query_param("scan_text").is_some() {
        return errcode_reply(72031, "invalid params");
    }
    if !api.shared.take_quota(Endpoint::ScanTitle) {
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
    let Some(title) = api.wechat.title_for(scan_text) else {
        return errcode_reply(40097, "invalid args");
    };
    let mut reply = json!({"errcode": 0, "errmsg": "ok"});
    if let (Some(reply), Some(title)) = (reply.as_object_mut(), title.as_object()) {
        reply.extend(title.clone());
    }
    Json(reply).into_response()
}

fn check_token(wechat: &Wechat, request: &RecordedRequest) -> Option<Response> {
    let Some(token) = request.query_param("access_token") else {
        return Some(errcode_reply(41001, "access_token missing"));
    };
    match wechat.check_token(token) {
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
