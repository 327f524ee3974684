//! Tencent Cloud's HTTP API: one signed `POST /` per call, the reply read tolerantly.
//!
//! Keys and signatures travel in headers here, so no request or header leaves this module.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use url::Url;

use super::{Credentials, PROVIDER, TencentConfig, TencentError, errcode, sign::Signing};
use crate::{
    provider::{CallContext, vendor_text},
    providers::http::{HttpSettings, Outcome, VendorHttp, unexpected_json},
    telemetry::Metrics,
};

const ACTION: &str = "BankCardOCR";
const VERSION: &str = "2018-11-19";
/// The service of the credential scope: the product, whichever regional host serves it.
const SERVICE: &str = "ocr";
const JSON: &str = "application/json; charset=utf-8";

pub(super) struct TencentClient {
    http: VendorHttp,
    endpoint: Url,
    /// The `Host` header as reqwest sends it (with the port when the URL names one): signed.
    host: String,
    region: Option<HeaderValue>,
}

impl TencentClient {
    pub(super) fn new(
        config: &TencentConfig,
        metrics: Metrics,
    ) -> Result<Self, super::super::BuildError> {
        let settings = HttpSettings {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            proxy: config.proxy.clone(),
            max_reply_bytes: config.max_reply_bytes.as_u64(),
        };
        let endpoint = config.endpoint.clone();
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(format!("tencent.endpoint {endpoint} has no host").into()),
        };
        let region = config
            .region
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| "tencent.region is not a valid header value")?;
        Ok(Self {
            http: VendorHttp::new(PROVIDER, &settings, metrics)?,
            endpoint,
            host,
            region,
        })
    }

    /// Calls `BankCardOCR` with `body`, signed now with `credentials`.
    pub(super) async fn bank_card_ocr(
        &self,
        credentials: &Credentials,
        body: &Bytes,
        call: &CallContext,
    ) -> Result<CardReply, TencentError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let authorization = Signing {
            secret_id: &credentials.secret_id,
            secret_key: &credentials.secret_key,
            service: SERVICE,
            host: &self.host,
            content_type: JSON,
            timestamp,
            body,
        }
        .authorization();
        let mut authorization = HeaderValue::from_str(&authorization).map_err(|_| {
            TencentError::NotConfigured("tencent.secret_id is not a valid header value".into())
        })?;
        authorization.set_sensitive(true);
        let mut request = self
            .http
            .client()
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, JSON)
            .header(AUTHORIZATION, authorization)
            .header("X-TC-Action", ACTION)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", timestamp.to_string())
            .body(body.clone());
        if let Some(region) = &self.region {
            request = request.header("X-TC-Region", region.clone());
        }
        if let Some(token) = &credentials.token {
            let mut token = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                TencentError::NotConfigured(
                    "the session token in tencent.token_file is not a valid header value".into(),
                )
            })?;
            token.set_sensitive(true);
            request = request.header("X-TC-Token", token);
        }
        let exchange = self.http.exchange(ACTION, request, call).await?;
        if !exchange.status.is_success() {
            let status = exchange.status;
            exchange.finish(Outcome::Unreadable);
            return Err(TencentError::Http(status));
        }
        match parse_reply(&exchange.body) {
            Ok(reply) => {
                exchange.finish(Outcome::Success { code: "ok" });
                Ok(reply)
            }
            Err(err @ TencentError::Api { .. }) => {
                if let TencentError::Api { code, .. } = &err {
                    exchange.finish(Outcome::Error {
                        code,
                        known: errcode::classify(code).is_some(),
                    });
                }
                Err(err)
            }
            Err(err) => {
                exchange.finish(Outcome::Unreadable);
                Err(err)
            }
        }
    }
}

/// The image of a request.
pub(super) enum Image {
    Base64(Bytes),
    Url(Url),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BankCardRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    image_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_url: Option<&'a str>,
    enable_copy_check: bool,
    enable_reshoot_check: bool,
    enable_border_check: bool,
    enable_quality_value: bool,
}

/// The JSON body of a `BankCardOCR` call: these exact bytes are signed and sent.
pub(super) fn request_body(image: &Image) -> Vec<u8> {
    let (image_base64, image_url) = match image {
        Image::Base64(bytes) => (
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            None,
        ),
        Image::Url(url) => (None, Some(url.as_str())),
    };
    let request = BankCardRequest {
        image_base64,
        image_url,
        enable_copy_check: true,
        enable_reshoot_check: true,
        enable_border_check: true,
        enable_quality_value: true,
    };
    // Serialising strings and booleans into a Vec cannot fail.
    serde_json::to_vec(&request).unwrap_or_default()
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: ReplyBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplyBody {
    error: Option<ApiError>,
    #[serde(flatten)]
    card: CardReply,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What `BankCardOCR` read; Tencent sends null or empty for what it could not.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CardReply {
    pub(super) card_no: Option<String>,
    pub(super) bank_info: Option<String>,
    pub(super) valid_date: Option<String>,
    pub(super) card_type: Option<String>,
    pub(super) card_name: Option<String>,
    pub(super) warning_code: Option<Vec<i64>>,
    pub(super) quality_value: Option<i64>,
}

/// A reply body: the card, or the error it holds.
pub(super) fn parse_reply(body: &[u8]) -> Result<CardReply, TencentError> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|err| TencentError::Malformed(unexpected_json(&err)))?;
    match envelope.response.error {
        Some(error) => Err(TencentError::Api {
            code: vendor_text(&error.code),
            message: vendor_text(&error.message),
        }),
        None => Ok(envelope.response.card),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reply_is_the_vendors_code_and_message() {
        let err = parse_reply(
            br#"{"Response": {"Error": {"Code": "FailedOperation.OcrFailed", "Message": "no card"}, "RequestId": "r"}}"#,
        )
        .expect_err("an error");
        assert!(
            matches!(&err, TencentError::Api { code, message } if code == "FailedOperation.OcrFailed" && message == "no card"),
            "{err:?}"
        );
    }

    #[test]
    fn an_upload_is_sent_as_base64_with_every_check_asked_for() {
        let body = request_body(&Image::Base64(Bytes::from_static(b"\xff\xd8\xff")));
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["ImageBase64"], "/9j/");
        assert!(json.get("ImageUrl").is_none());
        for check in [
            "EnableCopyCheck",
            "EnableReshootCheck",
            "EnableBorderCheck",
            "EnableQualityValue",
        ] {
            assert_eq!(json[check], true, "{check}");
        }
    }
}
