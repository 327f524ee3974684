//! The Tencent Cloud adapter: bank card OCR through `BankCardOCR` (API 3.0, version 2018-11-19),
//! signed with TC3-HMAC-SHA256.

mod client;
mod errcode;
pub mod sign;

use std::{path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use self::client::{CardReply, TencentClient};
use crate::{
    provider::{
        BankCard, BankCardRecognizer, BankCardRequest, CallContext, CardExpiry, CardNumber,
        CardType, ErrorKind, ImageFormat, ImageSource, ImageWarning, ProviderError,
    },
    providers::{
        Built, Capability, Fitting, Registration, RetryPolicy, images,
        vendor::{Codes, VendorError},
    },
    secret::SecretSource,
    telemetry::Metrics,
};

const PROVIDER: &str = "tencent";

/// The one account a Tencent provider has: its credentials are the `[tencent]` section's.
const ACCOUNT: &str = "default";

/// Tencent Cloud in the provider registry: bank cards only.
pub const REGISTRATION: Registration = Registration {
    name: PROVIDER,
    section: "tencent",
    capabilities: &[Capability::BankCard],
    env: &[
        ("tencent_secret_id", "tencent.secret_id"),
        ("tencent_secret_key", "tencent.secret_key"),
        ("tencent_secret_key_file", "tencent.secret_key_file"),
        ("tencent_endpoint", "tencent.endpoint"),
        ("tencent_region", "tencent.region"),
    ],
    read: |section| section.read::<TencentConfig>().map(drop),
    set_up: |section| {
        section
            .read::<TencentConfig>()
            .is_ok_and(|tencent| tencent.secret_id().is_some())
    },
    set_up_hint: "set OCRGATE_TENCENT_SECRET_ID and OCRGATE_TENCENT_SECRET_KEY (or \
                  OCRGATE_TENCENT_SECRET_KEY_FILE), or [tencent] in the config file",
    check: |section| {
        let tencent: TencentConfig = section.read()?;
        tencent.check()?;
        Ok(format!(
            "{}, endpoint {}{}",
            if tencent.secret_id().is_some() {
                "credentials set"
            } else {
                "no credentials"
            },
            tencent.endpoint,
            tencent
                .region
                .as_deref()
                .map(|region| format!(", region {region}"))
                .unwrap_or_default()
        ))
    },
    build: |section, metrics| {
        let built = section
            .read::<TencentConfig>()
            .map_err(Into::into)
            .and_then(|tencent| {
                let provider = TencentProvider::new(&tencent, metrics.clone())?;
                Ok(Built {
                    bank_card: Some(Arc::new(provider)),
                    invoice_title: None,
                    fits: Some(Fitting {
                        accepts: ACCEPTS,
                        max_pixels: tencent.max_image_pixels,
                    }),
                    retries: Some(RetryPolicy::new(tencent.retries, tencent.retry_backoff)),
                })
            });
        Box::pin(std::future::ready(built))
    },
};

/// The `[tencent]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TencentConfig {
    /// The API key's SecretId (an identifier, not a secret).
    pub secret_id: Option<String>,
    /// The API key's SecretKey; or give `secret_key_file`.
    pub secret_key: Option<SecretString>,
    /// A file holding the SecretKey, such as a mounted Kubernetes Secret; read at every call, so
    /// a rotated key takes effect without a restart.
    pub secret_key_file: Option<PathBuf>,
    /// A file holding the session token of temporary credentials (STS, a CAM role), read at every
    /// call; sent as `X-TC-Token`.
    pub token_file: Option<PathBuf>,
    /// Sent as `X-TC-Region` when set, e.g. `ap-guangzhou`.
    pub region: Option<String>,
    pub endpoint: Url,
    pub proxy: Option<Url>,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Upper bound for one HTTP exchange; the client's deadline may cut it shorter.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Retries after a rate limit, an internal error or a broken connection.
    pub retries: usize,
    /// First backoff before such a retry; it doubles each time, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Largest reply read from Tencent; a longer one is an error, never buffered whole.
    pub max_reply_bytes: bytesize::ByteSize,
    /// Largest upload decoded to fit it to Tencent (a GIF or WebP, which it does not take, or one
    /// over 7 MB in base64), in pixels; a larger one is refused before it is decoded.
    pub max_image_pixels: u64,
}

impl Default for TencentConfig {
    #[allow(
        clippy::expect_used,
        reason = "a constant URL, checked by every test run"
    )]
    fn default() -> Self {
        Self {
            secret_id: None,
            secret_key: None,
            secret_key_file: None,
            token_file: None,
            region: None,
            endpoint: Url::parse("https://ocr.tencentcloudapi.com/").expect("static URL is valid"),
            proxy: None,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            retries: 2,
            retry_backoff: Duration::from_millis(100),
            max_reply_bytes: bytesize::ByteSize::mib(1),
            max_image_pixels: 16_000_000,
        }
    }
}

impl TencentConfig {
    /// The SecretId; an empty one, as deployment templates leave behind, counts as unset.
    fn secret_id(&self) -> Option<&str> {
        self.secret_id.as_deref().filter(|id| !id.trim().is_empty())
    }

    fn secret_key(&self) -> SecretSource<'_> {
        SecretSource::new(
            "tencent.secret_key",
            self.secret_key.as_ref(),
            self.secret_key_file.as_deref(),
        )
    }

    fn session_token(&self) -> SecretSource<'_> {
        SecretSource::new("tencent.token", None, self.token_file.as_deref())
    }

    /// What building and every call need, checked now: a key for the id, files readable.
    fn check(&self) -> Result<(), String> {
        let key = self.secret_key().read()?;
        match (self.secret_id(), key) {
            (Some(_), None) => {
                return Err("tencent.secret_id is set but tencent.secret_key is not \
                     (OCRGATE_TENCENT_SECRET_KEY or OCRGATE_TENCENT_SECRET_KEY_FILE)"
                    .into());
            }
            (None, Some(_)) => {
                return Err(
                    "tencent.secret_key is set but tencent.secret_id is not (OCRGATE_TENCENT_SECRET_ID)"
                        .into(),
                );
            }
            _ => {}
        }
        self.session_token().read()?;
        if !matches!(self.endpoint.scheme(), "http" | "https") || self.endpoint.host().is_none() {
            return Err(format!(
                "tencent.endpoint must be an http(s) URL, not {}",
                self.endpoint
            ));
        }
        Ok(())
    }
}

/// The credentials one call signs with.
struct Credentials {
    secret_id: String,
    secret_key: SecretString,
    token: Option<SecretString>,
}

/// Tencent Cloud's error codes, for the errors every cloud adapter shares.
#[derive(Debug, Clone)]
struct ErrorCodes;

impl Codes for ErrorCodes {
    const PROVIDER: &'static str = PROVIDER;
    const VENDOR: &'static str = "Tencent Cloud";
    type Code = String;

    fn classify(code: &String, _message: &str) -> ErrorKind {
        errcode::classify(code).unwrap_or(ErrorKind::Unknown)
    }

    fn is_transient(code: &String) -> bool {
        errcode::is_transient(code)
    }

    fn noticed(code: &String, message: &str) {
        if errcode::is_request_malformed(code) {
            tracing::error!(%code, %message, "Tencent Cloud says our request is malformed: a gateway bug");
        }
    }
}

/// What can go wrong talking to Tencent Cloud. Never holds a key, a token or a signature.
type TencentError = VendorError<ErrorCodes>;

impl TencentError {
    fn is_signature_expired(&self) -> bool {
        self.code()
            .is_some_and(|code| errcode::is_signature_expired(code))
    }
}

/// What Tencent takes: JPEG, PNG or BMP, of at most 7 MB once in base64 (4 bytes for every 3).
const ACCEPTS: images::Accepts = images::Accepts {
    max_bytes: 7_000_000 / 4 * 3,
    formats: &[ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Bmp],
};

/// Bank cards through Tencent Cloud's `BankCardOCR`, with every check it offers.
pub struct TencentProvider {
    client: TencentClient,
    config: TencentConfig,
}

impl TencentProvider {
    pub fn new(config: &TencentConfig, metrics: Metrics) -> Result<Self, super::BuildError> {
        config.check()?;
        Ok(Self {
            client: TencentClient::new(config, metrics)?,
            config: config.clone(),
        })
    }

    /// The credentials as they are now: files are read afresh, so rotated ones take effect.
    async fn credentials(&self) -> Result<Credentials, TencentError> {
        let secret_id = self.config.secret_id().ok_or_else(|| {
            TencentError::NotConfigured(
                "no Tencent Cloud credentials are configured: set OCRGATE_TENCENT_SECRET_ID and \
                 OCRGATE_TENCENT_SECRET_KEY, or [tencent] secret_id and secret_key in the config file"
                    .into(),
            )
        })?;
        let secret_key = self
            .config
            .secret_key()
            .read_async()
            .await
            .map_err(TencentError::NotConfigured)?
            .ok_or_else(|| TencentError::NotConfigured("tencent.secret_key is not set".into()))?;
        let token = self
            .config
            .session_token()
            .read_async()
            .await
            .map_err(TencentError::NotConfigured)?;
        Ok(Credentials {
            secret_id: secret_id.to_owned(),
            secret_key,
            token,
        })
    }

    /// The request body for `image`: an upload as `ImageBase64` (the fitting layer has made it
    /// one Tencent takes), a URL as `ImageUrl`, and every check asked for.
    fn body(image: ImageSource) -> Vec<u8> {
        let image = match image {
            ImageSource::Url(url) => client::Image::Url(url),
            ImageSource::Upload { bytes, .. } => client::Image::Base64(bytes),
        };
        client::request_body(&image)
    }
}

/// Our answer from Tencent's reply: its warning codes mapped, its dates and labels read.
fn bank_card(reply: CardReply) -> Result<BankCard, TencentError> {
    let raw = reply.card_no.unwrap_or_default();
    let number = CardNumber::parse(&raw).ok_or_else(|| {
        TencentError::Malformed(format!(
            "the card number is not digits ({} characters)",
            raw.chars().count()
        ))
    })?;
    let mut card = BankCard::new(number);
    let text = |field: Option<String>| {
        field
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    if let Some(valid_date) = text(reply.valid_date) {
        match CardExpiry::parse(&valid_date) {
            Some(expiry) => card.expiry = Some(expiry),
            None => card.warn(ImageWarning::ExpiryInvalid),
        }
    }
    for code in reply.warning_code.unwrap_or_default() {
        let warning = match code {
            -9110 => ImageWarning::ExpiryInvalid,
            -9111 => ImageWarning::BorderIncomplete,
            -9112 => ImageWarning::Glare,
            -9113 => ImageWarning::Photocopy,
            -9114 => ImageWarning::Reshoot,
            other => {
                tracing::debug!(
                    code = other,
                    "Tencent Cloud sent a warning code we do not know"
                );
                continue;
            }
        };
        card.warn(warning);
    }
    card.quality = reply
        .quality_value
        .and_then(|quality| u8::try_from(quality.clamp(0, 100)).ok());
    card.card_name = text(reply.card_name).map(|name| crate::provider::vendor_text(&name));
    // `招商银行(03080000)`: the name, then its bank code.
    card.bank_name = text(reply.bank_info).map(|info| {
        let name = info.split_once('(').map_or(info.as_str(), |(name, _)| name);
        crate::provider::vendor_text(name.trim())
    });
    card.card_type = text(reply.card_type).and_then(|label| match label.as_str() {
        "借记卡" => Some(CardType::Debit),
        "贷记卡" => Some(CardType::Credit),
        "准贷记卡" => Some(CardType::SemiCredit),
        "预付费卡" => Some(CardType::Prepaid),
        _ => None,
    });
    Ok(card.with_own_rules())
}

#[async_trait]
impl BankCardRecognizer for TencentProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn recognize_bank_card(
        &self,
        request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError> {
        let recognized = async {
            if let Some(account) = request.account.as_deref().filter(|name| *name != ACCOUNT) {
                return Err(TencentError::NotConfigured(format!(
                    "no Tencent Cloud account named `{account}` is configured; the provider has \
                     one account, `{ACCOUNT}`"
                )));
            }
            tracing::Span::current().record("provider.account", ACCOUNT);
            let body = &Bytes::from(Self::body(request.image));
            // Signed at each attempt, with the credentials as they are now.
            let attempt = || async {
                let credentials = self.credentials().await?;
                self.client.bank_card_ocr(&credentials, body, call).await
            };
            match attempt().await {
                // A signature Tencent thinks too old is signed afresh once, at once.
                Err(err) if err.is_signature_expired() => attempt().await,
                answered => answered,
            }
        }
        .await?;
        Ok(bank_card(recognized)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(json: &str) -> CardReply {
        client::parse_reply(json.as_bytes()).expect("a card reply")
    }

    #[test]
    fn everything_tencent_gives_is_kept() {
        let card = bank_card(reply(
            r#"{"Response": {"CardNo": "6225768888888888", "BankInfo": "招商银行(03080000)",
                "ValidDate": "07/2023", "CardType": "借记卡", "CardName": "招商银行一卡通",
                "BorderCutImage": null, "CardNoImage": null, "WarningCode": [-9113, -9112],
                "QualityValue": 87, "RequestId": "6c5e1c5e"}}"#,
        ))
        .expect("a card");
        assert_eq!(card.number.digits(), "6225768888888888");
        assert_eq!(
            card.expiry,
            Some(CardExpiry {
                month: 7,
                year: 2023
            })
        );
        assert_eq!(
            card.warnings,
            [ImageWarning::Photocopy, ImageWarning::Glare]
        );
        assert_eq!(card.quality, Some(87));
        assert_eq!(card.card_name.as_deref(), Some("招商银行一卡通"));
        assert_eq!(card.bank_name.as_deref(), Some("招商银行"));
        assert_eq!(card.card_type, Some(CardType::Debit));
    }

    #[test]
    fn what_tencent_leaves_out_stays_unset_and_low_quality_is_blurry() {
        let card = bank_card(reply(
            r#"{"Response": {"CardNo": "6225 7688 8888 8888", "BankInfo": null, "ValidDate": "",
                "CardType": "", "CardName": null, "WarningCode": null, "QualityValue": 31,
                "RequestId": "x"}}"#,
        ))
        .expect("a card");
        assert_eq!(card.number.digits(), "6225768888888888");
        assert_eq!(card.expiry, None);
        assert_eq!(card.bank_name, None);
        assert_eq!(card.card_type, None);
        assert_eq!(card.warnings, [ImageWarning::Blurry]);
    }

    #[test]
    fn an_impossible_date_is_a_warning_not_an_expiry() {
        let card = bank_card(reply(
            r#"{"Response": {"CardNo": "6225768888888888", "ValidDate": "13/2023"}}"#,
        ))
        .expect("a card");
        assert_eq!(card.expiry, None);
        assert_eq!(card.warnings, [ImageWarning::ExpiryInvalid]);
    }

    #[test]
    fn a_number_that_is_not_digits_is_refused_without_quoting_it() {
        let err = bank_card(reply(r#"{"Response": {"CardNo": "6225x68888888888"}}"#))
            .expect_err("not digits");
        assert!(!err.to_string().contains("6225x68888888888"), "{err}");
    }
}
