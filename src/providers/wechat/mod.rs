//! The WeChat adapter: bank card OCR and invoice titles through the WeChat server API.

mod client;
mod errcode;

use std::{collections::BTreeMap, fmt, future::Future, path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Deserialize;
use tracing::{Instrument as _, field::Empty};
use url::Url;

use self::client::WechatClient;
use crate::{
    provider::{
        BankCard, BankCardRecognizer, BankCardRequest, CallContext, CardNumber, ErrorKind,
        ImageFormat, InvoiceTitle, InvoiceTitleParser, InvoiceTitleRequest, ProviderError,
    },
    providers::{
        Built, Capability, Fitting, Registration, RetryPolicy,
        credentials::{AccessToken, Lookup, TokenCache},
        images::Accepts,
        vendor::{Codes, VendorError},
    },
    secret::SecretSource,
    telemetry::Metrics,
};

const PROVIDER: &str = "wechat";

/// WeChat in the provider registry: bank cards and invoice titles, for any number of accounts.
pub const REGISTRATION: Registration = Registration {
    name: PROVIDER,
    section: "wechat",
    capabilities: &[Capability::BankCard, Capability::InvoiceTitle],
    env: &[
        ("wechat_app_id", "wechat.app_id"),
        ("wechat_app_secret", "wechat.app_secret"),
        ("wechat_app_secret_file", "wechat.app_secret_file"),
        ("wechat_base_url", "wechat.base_url"),
    ],
    read: |section| section.read::<WechatConfig>().map(drop),
    set_up: |section| {
        section.read::<WechatConfig>().is_ok_and(|wechat| {
            wechat
                .all_accounts()
                .is_ok_and(|accounts| !accounts.is_empty())
        })
    },
    set_up_hint: "set OCRGATE_WECHAT_APP_ID and OCRGATE_WECHAT_APP_SECRET, or [wechat] app_id \
                  and app_secret in the config file",
    check: |section| {
        let provider = WechatProvider::new(&section.read()?, Metrics::disabled())?;
        Ok(format!("accounts: {}", provider.known_accounts()))
    },
    build: |section, metrics| {
        let built = section
            .read::<WechatConfig>()
            .map_err(Into::into)
            .and_then(|wechat| {
                let provider = Arc::new(WechatProvider::new(&wechat, metrics.clone())?);
                Ok(Built {
                    bank_card: Some(provider.clone()),
                    invoice_title: Some(provider),
                    fits: Some(Fitting {
                        accepts: ACCEPTS,
                        max_pixels: wechat.max_image_pixels,
                    }),
                    retries: Some(RetryPolicy::new(wechat.busy_retries, wechat.busy_backoff)),
                })
            });
        Box::pin(std::future::ready(built))
    },
};

/// Name of the account that `app_id` / `app_secret` (and their environment variables) define.
pub const DEFAULT_ACCOUNT: &str = "default";

/// Which endpoint hands out access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenEndpoint {
    /// `cgi-bin/stable_token`: every replica gets the same token. Use this.
    #[default]
    Stable,
    /// `cgi-bin/token`: each fetch invalidates the previous token for everybody after 5 minutes.
    /// Only for accounts that cannot use the stable endpoint.
    Legacy,
}

/// The `[wechat]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatConfig {
    /// The app id of the account named `default`.
    pub app_id: Option<String>,
    /// The app secret of the account named `default`.
    pub app_secret: Option<SecretString>,
    /// A file holding that app secret instead, such as a mounted Kubernetes Secret.
    pub app_secret_file: Option<PathBuf>,
    /// More accounts, by name; a request picks one with its `account` field.
    pub accounts: BTreeMap<String, AccountConfig>,
    /// The account used when a request names none.
    pub default_account: Option<String>,
    pub base_url: Url,
    pub token_endpoint: TokenEndpoint,
    pub proxy: Option<Url>,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Upper bound for one HTTP exchange; the client's deadline may cut it shorter.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long before WeChat's expiry a cached token is dropped and fetched again.
    #[serde(with = "humantime_serde")]
    pub token_refresh_margin: Duration,
    /// Retries after "system busy" (errcode -1), HTTP 5xx or a broken connection.
    pub busy_retries: usize,
    /// First backoff before such a retry; it doubles each time, with jitter.
    #[serde(with = "humantime_serde")]
    pub busy_backoff: Duration,
    /// Largest reply read from WeChat; a longer one is an error, never buffered whole.
    pub max_reply_bytes: bytesize::ByteSize,
    /// Largest upload decoded to fit it under WeChat's 2 MB, in pixels; a larger one over 2 MB
    /// is refused before it is decoded.
    pub max_image_pixels: u64,
}

impl Default for WechatConfig {
    #[allow(
        clippy::expect_used,
        reason = "a constant URL, checked by every test run"
    )]
    fn default() -> Self {
        Self {
            app_id: None,
            app_secret: None,
            app_secret_file: None,
            accounts: BTreeMap::new(),
            default_account: None,
            base_url: Url::parse("https://api.weixin.qq.com/").expect("static URL is valid"),
            token_endpoint: TokenEndpoint::Stable,
            proxy: None,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            token_refresh_margin: Duration::from_secs(300),
            busy_retries: 2,
            busy_backoff: Duration::from_millis(100),
            max_reply_bytes: bytesize::ByteSize::mib(1),
            max_image_pixels: 16_000_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub app_id: String,
    /// The app secret; or give `app_secret_file`.
    #[serde(default)]
    pub app_secret: Option<SecretString>,
    /// A file holding the app secret, such as a mounted Kubernetes Secret.
    #[serde(default)]
    pub app_secret_file: Option<PathBuf>,
}

impl WechatConfig {
    /// Every configured account by name, the `default` one included, secrets read.
    fn all_accounts(&self) -> Result<BTreeMap<String, Account>, String> {
        let mut accounts = BTreeMap::new();
        for (name, account) in &self.accounts {
            let secret = SecretSource::new(
                format!("wechat.accounts.{name}.app_secret"),
                account.app_secret.as_ref(),
                account.app_secret_file.as_deref(),
            )
            .read()?
            .ok_or_else(|| {
                format!("account `{name}` has neither app_secret nor app_secret_file")
            })?;
            accounts.insert(name.clone(), Account::new(name, &account.app_id, secret));
        }
        // An empty variable, as deployment templates leave behind, counts as unset.
        let app_id = self.app_id.as_ref().filter(|id| !id.trim().is_empty());
        let app_secret = SecretSource::new(
            "wechat.app_secret",
            self.app_secret.as_ref(),
            self.app_secret_file.as_deref(),
        )
        .read()?;
        match (app_id, app_secret) {
            (Some(app_id), Some(app_secret)) => {
                if accounts
                    .insert(
                        DEFAULT_ACCOUNT.into(),
                        Account::new(DEFAULT_ACCOUNT, app_id, app_secret),
                    )
                    .is_some()
                {
                    return Err(format!(
                        "account `{DEFAULT_ACCOUNT}` is defined twice: by wechat.app_id and in wechat.accounts"
                    ));
                }
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(
                    "wechat.app_id is set but wechat.app_secret is not (OCRGATE_WECHAT_APP_SECRET)"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "wechat.app_secret is set but wechat.app_id is not (OCRGATE_WECHAT_APP_ID)"
                        .into(),
                );
            }
        }
        if let Some((name, _)) = accounts
            .iter()
            .find(|(_, account)| account.app_id.trim().is_empty())
        {
            return Err(format!("account `{name}` has an empty app_id"));
        }
        Ok(accounts)
    }

    fn default_account_name(
        &self,
        accounts: &BTreeMap<String, Account>,
    ) -> Result<Option<String>, String> {
        match &self.default_account {
            Some(name) if accounts.contains_key(name) => Ok(Some(name.clone())),
            Some(name) => Err(format!(
                "wechat.default_account `{name}` is not a configured account"
            )),
            None if accounts.contains_key(DEFAULT_ACCOUNT) => Ok(Some(DEFAULT_ACCOUNT.into())),
            None if accounts.len() == 1 => Ok(accounts.keys().next().cloned()),
            None => Ok(None),
        }
    }
}

/// One WeChat official account the gateway may bill.
struct Account {
    name: String,
    app_id: String,
    app_secret: SecretString,
}

impl Account {
    fn new(name: &str, app_id: &str, app_secret: SecretString) -> Self {
        Self {
            name: name.to_owned(),
            app_id: app_id.to_owned(),
            app_secret,
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// WeChat's errcodes, for the errors every cloud adapter shares.
#[derive(Debug, Clone)]
struct Errcodes;

impl Codes for Errcodes {
    const PROVIDER: &'static str = PROVIDER;
    const VENDOR: &'static str = "WeChat";
    const CODE_LABEL: &'static str = "errcode ";
    type Code = i64;

    fn classify(errcode: &i64, errmsg: &str) -> ErrorKind {
        errcode::classify(*errcode, errmsg)
    }

    /// A busy platform.
    fn is_transient(errcode: &i64) -> bool {
        errcode::is_busy(*errcode)
    }
}

/// What can go wrong talking to WeChat.
type WechatError = VendorError<Errcodes>;

impl WechatError {
    fn is_token_rejected(&self) -> bool {
        self.code()
            .is_some_and(|errcode| errcode::is_token_rejected(*errcode))
    }
}

/// Why a WeChat provider could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid [wechat] configuration: {0}")]
    Config(String),
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// What WeChat takes as it is: a file "less than 2 M", read as 2,000,000 bytes to be safe, in
/// any of the formats ocrgate accepts (WeChat names none it refuses).
const ACCEPTS: Accepts = Accepts {
    max_bytes: 2_000_000,
    formats: &[
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Bmp,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ],
};

/// Bank cards and invoice titles through WeChat, for any number of configured accounts.
pub struct WechatProvider {
    client: WechatClient,
    tokens: TokenCache<WechatError>,
    metrics: Metrics,
    accounts: BTreeMap<String, Account>,
    default_account: Option<String>,
}

impl WechatProvider {
    pub fn new(config: &WechatConfig, metrics: Metrics) -> Result<Self, BuildError> {
        let accounts = config.all_accounts().map_err(BuildError::Config)?;
        let default_account = config
            .default_account_name(&accounts)
            .map_err(BuildError::Config)?;
        Ok(Self {
            client: WechatClient::new(config, metrics.clone())?,
            tokens: TokenCache::new(config.token_refresh_margin),
            metrics,
            accounts,
            default_account,
        })
    }

    /// Names of the configured accounts.
    pub fn account_names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    fn account(&self, name: Option<&str>) -> Result<&Account, WechatError> {
        let name = match name.or(self.default_account.as_deref()) {
            Some(name) => name,
            None if self.accounts.is_empty() => {
                return Err(WechatError::NotConfigured(
                    "no WeChat account is configured: set OCRGATE_WECHAT_APP_ID and \
                     OCRGATE_WECHAT_APP_SECRET, or [wechat] app_id and app_secret in the config file"
                        .into(),
                ));
            }
            None => {
                return Err(WechatError::NotConfigured(format!(
                    "the request names no account and no default is configured \
                     (wechat.default_account); configured accounts: {}",
                    self.known_accounts()
                )));
            }
        };
        self.accounts.get(name).ok_or_else(|| {
            WechatError::NotConfigured(format!(
                "no WeChat account named `{name}` is configured; configured accounts: {}",
                self.known_accounts()
            ))
        })
    }

    fn known_accounts(&self) -> String {
        if self.accounts.is_empty() {
            return "none".into();
        }
        self.account_names().collect::<Vec<_>>().join(", ")
    }

    /// Runs `api` with the account's token, noting the account on the provider span. A rejected
    /// token is dropped (if still current), fetched again and the call tried once more; the
    /// retry layer tries transient failures again.
    async fn with_token<T, F, Fut>(
        &self,
        account: Option<&str>,
        call: &CallContext,
        api: F,
    ) -> Result<T, WechatError>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, WechatError>>,
    {
        let account = self.account(account)?;
        tracing::Span::current().record("provider.account", account.name.as_str());
        let attempt = || async {
            let token = self.token(account, call).await?;
            let result = api(token.clone()).await;
            if let Err(err) = &result
                && err.is_token_rejected()
            {
                // Dropped only if still current: another call may have replaced it.
                self.tokens
                    .invalidate_if_current(&account.app_id, &token)
                    .await;
            }
            result
        };
        match attempt().await {
            Err(err) if err.is_token_rejected() => {
                tracing::info!(account = %account.name, "WeChat rejected the access token; fetching a new one");
                attempt().await
            }
            answered => answered,
        }
    }

    /// The account's access token, from the cache or fetched, in a span that says which.
    async fn token(
        &self,
        account: &Account,
        call: &CallContext,
    ) -> Result<AccessToken, WechatError> {
        let span = tracing::info_span!(
            "token lookup",
            wechat.app_id = %account.app_id,
            token.cache_hit = Empty,
            otel.status_code = Empty,
        );
        let fetch = || async {
            let fetched = self
                .client
                .fetch_token(account, call)
                .instrument(tracing::info_span!(
                    "token fetch",
                    wechat.app_id = %account.app_id,
                    otel.status_code = Empty,
                ))
                .await;
            self.metrics.token_fetch(&account.name, fetched.is_ok());
            fetched
        };
        let lookup = self
            .tokens
            .get_or_fetch(&account.app_id, fetch)
            .instrument(span.clone())
            .await;
        match lookup {
            Ok((token, lookup)) => {
                let hit = lookup == Lookup::Hit;
                span.record("token.cache_hit", hit);
                self.metrics.token_lookup(&account.name, hit);
                Ok(token)
            }
            Err(err) => {
                span.record("otel.status_code", "ERROR");
                self.metrics.token_lookup(&account.name, false);
                Err(err)
            }
        }
    }
}

#[async_trait]
impl BankCardRecognizer for WechatProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn recognize_bank_card(
        &self,
        request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError> {
        let (image, mode) = (&request.image, request.mode);
        let raw = self
            .with_token(request.account.as_deref(), call, |token| async move {
                self.client
                    .recognize_bank_card(&token, image, mode, call)
                    .await
            })
            .await?;
        let number = CardNumber::parse(&raw).ok_or_else(|| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Unknown,
                format!(
                    "WeChat returned a card number that is not digits ({} characters)",
                    raw.len()
                ),
            )
        })?;
        Ok(BankCard::new(number))
    }
}

#[async_trait]
impl InvoiceTitleParser for WechatProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn parse_invoice_title(
        &self,
        request: InvoiceTitleRequest,
        call: &CallContext,
    ) -> Result<InvoiceTitle, ProviderError> {
        let scan_text = request.scan_text.as_str();
        Ok(self
            .with_token(request.account.as_deref(), call, |token| async move {
                self.client
                    .scan_invoice_title(&token, scan_text, call)
                    .await
            })
            .await?)
    }
}
