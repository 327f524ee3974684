//! WeChat's HTTP API: one method per endpoint, replies parsed tolerantly.
//!
//! Access tokens and app secrets travel in URLs and bodies here, so no URL, body or
//! `reqwest::Error` with its URL ever leaves this module.

use std::time::Duration;

use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_with::{DisplayFromStr, PickFirst, serde_as};
use tokio::time::Instant;
use tracing::{Instrument as _, field::Empty};
use url::Url;

use super::{
    Account, PROVIDER, TokenEndpoint, WechatConfig, WechatError,
    token::{AccessToken, FreshToken},
};
use crate::{
    provider::{CallContext, ImageSource, InvoiceTitle, RecognitionMode, TitleType, vendor_text},
    telemetry::{Metrics, propagation},
};

pub(super) struct WechatClient {
    http: reqwest::Client,
    base_url: Url,
    token_endpoint: TokenEndpoint,
    request_timeout: Duration,
    max_reply_bytes: usize,
    metrics: Metrics,
}

impl WechatClient {
    pub(super) fn new(config: &WechatConfig, metrics: Metrics) -> Result<Self, reqwest::Error> {
        let mut http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // WeChat never redirects; following one would hand the token in the URL to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ocrgate/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &config.proxy {
            http = http.proxy(reqwest::Proxy::all(proxy.as_str())?);
        }
        let mut base_url = config.base_url.clone();
        if !base_url.path().ends_with('/') {
            // Url::join would otherwise replace the last path segment.
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        Ok(Self {
            http: http.build()?,
            base_url,
            token_endpoint: config.token_endpoint,
            request_timeout: config.request_timeout,
            max_reply_bytes: usize::try_from(config.max_reply_bytes.as_u64()).unwrap_or(usize::MAX),
            metrics,
        })
    }

    /// Fetches the account's current access token, in normal mode: never forces a new one.
    pub(super) async fn fetch_token(
        &self,
        account: &Account,
        call: &CallContext,
    ) -> Result<FreshToken, WechatError> {
        let (endpoint, request) = match self.token_endpoint {
            TokenEndpoint::Stable => {
                let request =
                    self.http
                        .post(self.endpoint(STABLE_TOKEN)?)
                        .json(&StableTokenRequest {
                            grant_type: "client_credential",
                            appid: &account.app_id,
                            secret: account.app_secret.expose_secret(),
                            force_refresh: false,
                        });
                (STABLE_TOKEN, request)
            }
            TokenEndpoint::Legacy => {
                let mut url = self.endpoint(LEGACY_TOKEN)?;
                url.query_pairs_mut()
                    .append_pair("grant_type", "client_credential")
                    .append_pair("appid", &account.app_id)
                    .append_pair("secret", account.app_secret.expose_secret());
                (LEGACY_TOKEN, self.http.get(url))
            }
        };
        let reply: TokenReply = self.send(endpoint, request, call).await?;
        check(reply.errcode, reply.errmsg)?;
        match reply.access_token {
            Some(token) if !token.is_empty() => Ok(FreshToken {
                token: AccessToken::new(SecretString::from(token)),
                expires_in: Duration::from_secs(
                    reply.expires_in.unwrap_or(0).max(0).unsigned_abs(),
                ),
            }),
            _ => Err(WechatError::Malformed(
                "token reply without access_token".into(),
            )),
        }
    }

    /// Returns the card number as WeChat wrote it (it may hold spaces or dashes).
    pub(super) async fn recognize_bank_card(
        &self,
        token: &AccessToken,
        image: &ImageSource,
        mode: RecognitionMode,
        call: &CallContext,
    ) -> Result<String, WechatError> {
        let mut url = self.endpoint_with_token(BANK_CARD, token)?;
        let mode = match mode {
            RecognitionMode::Photo => "photo",
            RecognitionMode::Scan => "scan",
        };
        url.query_pairs_mut().append_pair("type", mode);
        let request = match image {
            ImageSource::Url(image_url) => {
                url.query_pairs_mut()
                    .append_pair("img_url", image_url.as_str());
                self.http.post(url)
            }
            ImageSource::Upload { bytes, format } => {
                // A stream part over the same `Bytes`: the upload is not copied again.
                let part = Part::stream_with_length(Bytes::clone(bytes), bytes.len() as u64)
                    .file_name(format!("image.{}", format.extension()))
                    .mime_str(format.mime_type())
                    .map_err(|err| WechatError::Transport(err.without_url().to_string()))?;
                self.http.post(url).multipart(Form::new().part("img", part))
            }
        };
        let reply: BankCardReply = self.send(BANK_CARD, request, call).await?;
        check(reply.errcode, reply.errmsg)?;
        reply
            .number
            .or(reply.id)
            .map(|number| number.text())
            .filter(|number| !number.trim().is_empty())
            .ok_or_else(|| WechatError::Malformed("bank card reply without a number".into()))
    }

    pub(super) async fn scan_invoice_title(
        &self,
        token: &AccessToken,
        scan_text: &str,
        call: &CallContext,
    ) -> Result<InvoiceTitle, WechatError> {
        let url = self.endpoint_with_token(SCAN_TITLE, token)?;
        let request = self.http.post(url).json(&ScanTitleRequest { scan_text });
        let reply: ScanTitleReply = self.send(SCAN_TITLE, request, call).await?;
        check(reply.errcode, reply.errmsg)?;
        Ok(InvoiceTitle {
            title_type: match reply.title_type {
                Some(0) => TitleType::Organization,
                Some(1) => TitleType::Individual,
                _ => TitleType::Unspecified,
            },
            title: reply.title,
            phone: reply.phone,
            tax_number: reply.tax_no,
            address: reply.addr,
            bank_name: reply.bank_type,
            bank_account: reply.bank_no,
        })
    }

    fn endpoint(&self, path: &str) -> Result<Url, WechatError> {
        self.base_url
            .join(path)
            .map_err(|err| WechatError::NotConfigured(format!("bad WeChat base URL: {err}")))
    }

    fn endpoint_with_token(&self, path: &str, token: &AccessToken) -> Result<Url, WechatError> {
        let mut url = self.endpoint(path)?;
        url.query_pairs_mut()
            .append_pair("access_token", token.expose());
        Ok(url)
    }

    /// Sends within the call's deadline and decodes the JSON reply, whatever its content type,
    /// inside a client span that carries the trace context to WeChat.
    async fn send<T: Reply>(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
        call: &CallContext,
    ) -> Result<T, WechatError> {
        let timeout = match call.remaining() {
            Some(left) if left.is_zero() => return Err(WechatError::DeadlineExceeded),
            Some(left) => left.min(self.request_timeout),
            None => self.request_timeout,
        };
        let mut request = request
            .timeout(timeout)
            .build()
            .map_err(|err| WechatError::Transport(err.without_url().to_string()))?;
        let (method, url) = (request.method().clone(), request.url());
        // The query holds the access token or the secret: only the path is recorded.
        let span = tracing::info_span!(
            "http client",
            otel.name = %format_args!("{method} {}", url.path()),
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = %method,
            server.address = url.host_str().unwrap_or_default(),
            server.port = url.port_or_known_default().unwrap_or_default(),
            url.path = url.path(),
            http.response.status_code = Empty,
            wechat.errcode = Empty,
        );
        request.headers_mut().extend(propagation::inject(&span));
        let started = Instant::now();
        let exchange = async {
            let mut response = self.http.execute(request).await?;
            let status = response.status();
            let body = read_capped(&mut response, self.max_reply_bytes).await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .instrument(span.clone())
        .await;
        let reply = match exchange {
            Ok((status, body)) => {
                span.record("http.response.status_code", status.as_u16());
                match body {
                    _ if !status.is_success() => Err(WechatError::Http(status)),
                    None => Err(WechatError::Malformed(format!(
                        "the reply is longer than {} bytes",
                        self.max_reply_bytes
                    ))),
                    Some(body) => serde_json::from_slice::<T>(&body).map_err(unexpected_json),
                }
            }
            Err(err)
                if err.is_timeout() && call.deadline.is_some_and(|d| d <= started + timeout) =>
            {
                Err(WechatError::DeadlineExceeded)
            }
            Err(err) => Err(WechatError::Transport(err.without_url().to_string())),
        };
        let errcode = match &reply {
            Ok(reply) => {
                span.record("wechat.errcode", reply.errcode());
                reply.errcode().to_string()
            }
            Err(_) => "none".to_owned(),
        };
        if reply.as_ref().map_or(true, |reply| reply.errcode() != 0) {
            span.record("otel.status_code", "ERROR");
        }
        self.metrics.upstream_call(
            PROVIDER,
            endpoint,
            &errcode,
            started.elapsed().as_secs_f64(),
        );
        reply
    }
}

const STABLE_TOKEN: &str = "cgi-bin/stable_token";
const LEGACY_TOKEN: &str = "cgi-bin/token";
const BANK_CARD: &str = "cv/ocr/bankcard";
const SCAN_TITLE: &str = "card/invoice/scantitle";

/// A WeChat reply: whatever else it holds, it has an errcode (0 when absent).
trait Reply: for<'de> Deserialize<'de> {
    fn errcode(&self) -> i64;
}

impl Reply for TokenReply {
    fn errcode(&self) -> i64 {
        self.errcode
    }
}

impl Reply for BankCardReply {
    fn errcode(&self) -> i64 {
        self.errcode
    }
}

impl Reply for ScanTitleReply {
    fn errcode(&self) -> i64 {
        self.errcode
    }
}

/// The reply body, read as it arrives; `None` as soon as it passes `cap` bytes.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Option<Bytes>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// A reply that is not the JSON expected, described by where it broke: serde's own message
/// quotes the offending value, which may be a card number.
fn unexpected_json(err: serde_json::Error) -> WechatError {
    WechatError::Malformed(format!(
        "the reply is not the JSON expected ({:?} error at line {}, column {})",
        err.classify(),
        err.line(),
        err.column()
    ))
}

fn check(errcode: i64, errmsg: String) -> Result<(), WechatError> {
    if errcode == 0 {
        Ok(())
    } else {
        Err(WechatError::Api {
            errcode,
            errmsg: vendor_text(&errmsg),
        })
    }
}

#[derive(serde::Serialize)]
struct StableTokenRequest<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

#[derive(serde::Serialize)]
struct ScanTitleRequest<'a> {
    scan_text: &'a str,
}

// WeChat sends numbers sometimes as JSON numbers, sometimes as strings ("errcode":"0").
#[serde_as]
#[derive(Deserialize)]
struct TokenReply {
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    access_token: Option<String>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    expires_in: Option<i64>,
}

#[serde_as]
#[derive(Deserialize)]
struct BankCardReply {
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    number: Option<JsonNumberText>,
    /// Where the vendor's own example puts the number.
    id: Option<JsonNumberText>,
}

/// A field WeChat sends as a JSON string or a JSON number. A card number has up to 19 digits,
/// more than an `i64` or an `f64` holds exactly, so a number is kept as the text it was sent as.
#[derive(Deserialize)]
#[serde(transparent)]
struct JsonNumberText(Box<serde_json::value::RawValue>);

impl JsonNumberText {
    fn text(&self) -> String {
        let raw = self.0.get();
        serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned())
    }
}

#[serde_as]
#[derive(Deserialize)]
struct ScanTitleReply {
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    title_type: Option<i64>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    tax_no: String,
    #[serde(default)]
    addr: String,
    #[serde(default)]
    bank_type: String,
    #[serde(default)]
    bank_no: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_card_reply_accepts_string_errcode_and_id_field() {
        let reply: BankCardReply =
            serde_json::from_str(r#"{"errcode":"0","errmsg":"ok","id":"6222 1234"}"#)
                .expect("parses");
        assert_eq!(reply.errcode, 0);
        assert_eq!(
            reply.number.or(reply.id).map(|n| n.text()).as_deref(),
            Some("6222 1234")
        );
    }

    #[test]
    fn bank_card_number_sent_as_a_json_integer_keeps_every_digit() {
        let reply: BankCardReply =
            serde_json::from_str(r#"{"errcode":0,"number":9999020200112345678}"#).expect("parses");
        assert_eq!(
            reply.number.map(|n| n.text()).as_deref(),
            Some("9999020200112345678")
        );
    }

    #[test]
    fn an_unexpected_reply_is_described_without_its_values() {
        let err = serde_json::from_str::<ScanTitleReply>(r#"{"title":6222020200112345678}"#)
            .map(|_| ())
            .map_err(unexpected_json)
            .expect_err("a number is not a title");
        let message = err.to_string();
        assert!(!message.contains("6222020200112345678"), "{message}");
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn bank_card_reply_accepts_numeric_errcode_and_number_field() {
        let reply: BankCardReply =
            serde_json::from_str(r#"{"errcode":101001,"errmsg":"certificate not found"}"#)
                .expect("parses");
        assert_eq!(reply.errcode, 101001);
        assert!(reply.number.is_none());
    }

    #[test]
    fn title_reply_tolerates_missing_fields_and_string_title_type() {
        let reply: ScanTitleReply =
            serde_json::from_str(r#"{"errcode":0,"title":"ACME","title_type":"1"}"#)
                .expect("parses");
        assert_eq!(reply.title_type, Some(1));
        assert_eq!(reply.tax_no, "");
        let reply: ScanTitleReply =
            serde_json::from_str(r#"{"errcode":0,"title":"ACME"}"#).expect("parses");
        assert_eq!(reply.title_type, None);
    }

    #[test]
    fn token_reply_without_errcode_is_success() {
        let reply: TokenReply =
            serde_json::from_str(r#"{"access_token":"abc","expires_in":7200}"#).expect("parses");
        assert_eq!(reply.errcode, 0);
        assert_eq!(reply.expires_in, Some(7200));
    }
}
