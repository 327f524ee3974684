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
use url::Url;

use super::{Account, BuildError, PROVIDER, TokenEndpoint, WechatConfig, WechatError, errcode};
use crate::{
    provider::{CallContext, ImageSource, InvoiceTitle, RecognitionMode, TitleType, vendor_text},
    providers::{
        credentials::{AccessToken, FreshToken},
        http::{HttpSettings, Outcome, VendorHttp, unexpected_json},
    },
    telemetry::Metrics,
};

pub(super) struct WechatClient {
    http: VendorHttp,
    endpoints: Endpoints,
    token_endpoint: TokenEndpoint,
}

/// Each endpoint's URL, joined to the base URL once: a call only appends its query.
struct Endpoints {
    stable_token: Url,
    legacy_token: Url,
    bank_card: Url,
    scan_title: Url,
}

impl Endpoints {
    fn new(base_url: &Url) -> Result<Self, BuildError> {
        let mut base_url = base_url.clone();
        if !base_url.path().ends_with('/') {
            // Url::join would otherwise replace the last path segment.
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        let join = |path| {
            base_url
                .join(path)
                .map_err(|err| BuildError::Config(format!("bad wechat.base_url: {err}")))
        };
        Ok(Self {
            stable_token: join(STABLE_TOKEN)?,
            legacy_token: join(LEGACY_TOKEN)?,
            bank_card: join(BANK_CARD)?,
            scan_title: join(SCAN_TITLE)?,
        })
    }
}

impl WechatClient {
    pub(super) fn new(config: &WechatConfig, metrics: Metrics) -> Result<Self, BuildError> {
        let settings = HttpSettings {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            proxy: config.proxy.clone(),
            max_reply_bytes: config.max_reply_bytes.as_u64(),
        };
        Ok(Self {
            http: VendorHttp::new(PROVIDER, &settings, metrics)?,
            endpoints: Endpoints::new(&config.base_url)?,
            token_endpoint: config.token_endpoint,
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
                let request = self
                    .http
                    .client()
                    .post(self.endpoints.stable_token.clone())
                    .json(&StableTokenRequest {
                        grant_type: "client_credential",
                        appid: &account.app_id,
                        secret: account.app_secret.expose_secret(),
                        force_refresh: false,
                    });
                (STABLE_TOKEN, request)
            }
            TokenEndpoint::Legacy => {
                let mut url = self.endpoints.legacy_token.clone();
                url.query_pairs_mut()
                    .append_pair("grant_type", "client_credential")
                    .append_pair("appid", &account.app_id)
                    .append_pair("secret", account.app_secret.expose_secret());
                (LEGACY_TOKEN, self.http.client().get(url))
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
        let mut url = with_token(&self.endpoints.bank_card, token);
        let mode = match mode {
            RecognitionMode::Photo => "photo",
            RecognitionMode::Scan => "scan",
        };
        url.query_pairs_mut().append_pair("type", mode);
        let request = match image {
            ImageSource::Url(image_url) => {
                url.query_pairs_mut()
                    .append_pair("img_url", image_url.as_str());
                self.http.client().post(url)
            }
            ImageSource::Upload { bytes, format } => {
                // A stream part over the same `Bytes`: the upload is not copied again.
                let part = Part::stream_with_length(Bytes::clone(bytes), bytes.len() as u64)
                    .file_name(format!("image.{}", format.extension()))
                    .mime_str(format.mime_type())
                    .map_err(|err| WechatError::Transport(err.without_url().to_string()))?;
                self.http
                    .client()
                    .post(url)
                    .multipart(Form::new().part("img", part))
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
        let url = with_token(&self.endpoints.scan_title, token);
        let request = self
            .http
            .client()
            .post(url)
            .json(&ScanTitleRequest { scan_text });
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

    /// Sends within the call's deadline and decodes the JSON reply, whatever its content type.
    async fn send<T: Reply>(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
        call: &CallContext,
    ) -> Result<T, WechatError> {
        let exchange = self.http.exchange(endpoint, request, call).await?;
        if !exchange.status.is_success() {
            let status = exchange.status;
            exchange.finish(Outcome::Unreadable);
            return Err(WechatError::Http(status));
        }
        match serde_json::from_slice::<T>(&exchange.body) {
            Ok(reply) => {
                let code = reply.errcode().to_string();
                exchange.finish(match reply.errcode() {
                    0 => Outcome::Success { code: &code },
                    errcode => Outcome::Error {
                        code: &code,
                        known: errcode::is_known(errcode),
                    },
                });
                Ok(reply)
            }
            Err(err) => {
                exchange.finish(Outcome::Unreadable);
                Err(WechatError::Malformed(unexpected_json(&err)))
            }
        }
    }
}

/// `endpoint` with the access token in its query.
fn with_token(endpoint: &Url, token: &AccessToken) -> Url {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("access_token", token.expose());
    url
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

fn check(errcode: i64, errmsg: String) -> Result<(), WechatError> {
    if errcode == 0 {
        Ok(())
    } else {
        Err(WechatError::Api {
            code: errcode,
            message: vendor_text(&errmsg),
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
    fn endpoints_are_joined_under_the_base_urls_path_once() {
        let endpoints =
            Endpoints::new(&Url::parse("http://sim:8090/wechat").expect("url")).expect("joins");
        assert_eq!(
            endpoints.scan_title.as_str(),
            "http://sim:8090/wechat/card/invoice/scantitle"
        );
        let token = AccessToken::new(SecretString::from("t&1"));
        assert_eq!(
            with_token(&endpoints.bank_card, &token).as_str(),
            "http://sim:8090/wechat/cv/ocr/bankcard?access_token=t%261"
        );
        // A base that is no base fails when the provider is built, not on each call.
        assert!(matches!(
            Endpoints::new(&Url::parse("mailto:ops@example.com").expect("url")),
            Err(BuildError::Config(_))
        ));
    }

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
            .map_err(|err| unexpected_json(&err))
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
