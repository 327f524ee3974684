//! Who may call: configured callers, each known by an API key, limited to the RPCs, vendor
//! accounts and providers it may use, at a rate and a daily budget.

mod budget;

use std::{
    collections::BTreeMap,
    fmt,
    num::NonZeroU32,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter, clock::Clock as _};
use secrecy::SecretString;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

pub use self::budget::{BudgetError, BudgetStore};
use crate::telemetry::Metrics;

/// The `[auth]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether calls without a credential are served. Default: only when no caller is configured.
    pub anonymous: Option<bool>,
    /// A TOML file of `[callers.NAME]` tables, such as a mounted Kubernetes Secret.
    pub callers_file: Option<PathBuf>,
}

/// The service's full name, spelled once; a test holds it to the proto's.
macro_rules! service {
    () => {
        "ocrgate.v1.OcrService"
    };
}

/// The RPCs of `ocrgate.v1.OcrService`, as callers' `rpcs` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Rpc {
    RecognizeBankCard,
    ParseInvoiceTitle,
}

impl Rpc {
    /// The service's full name, as the proto declares it.
    pub const SERVICE: &str = service!();

    /// What the path of every call of the service starts with.
    pub const PATH_PREFIX: &str = concat!("/", service!(), "/");

    /// The full name of a method that is none of the service's, as spans name it.
    pub const OTHER: &str = concat!(service!(), "/other");

    /// The RPC a request path names; `None` for other services and unknown methods.
    pub fn from_path(path: &str) -> Option<Self> {
        Self::from_method(path.strip_prefix(Self::PATH_PREFIX)?)
    }

    /// The RPC a method name (the path's last segment) names.
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "RecognizeBankCard" => Some(Self::RecognizeBankCard),
            "ParseInvoiceTitle" => Some(Self::ParseInvoiceTitle),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecognizeBankCard => "RecognizeBankCard",
            Self::ParseInvoiceTitle => "ParseInvoiceTitle",
        }
    }

    /// Its full name, `service/method`, as the server span is named after it.
    pub fn full_name(self) -> &'static str {
        match self {
            Self::RecognizeBankCard => concat!(service!(), "/RecognizeBankCard"),
            Self::ParseInvoiceTitle => concat!(service!(), "/ParseInvoiceTitle"),
        }
    }
}

/// One `[callers.NAME]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// Hex SHA-256 of the key the caller sends as `authorization: Bearer <key>`.
    #[serde(default)]
    pub api_key_sha256: Option<String>,
    /// A URI or DNS subject alternative name of the client certificate it presents (mTLS),
    /// e.g. `spiffe://cluster.local/ns/billing/sa/billing`.
    #[serde(default)]
    pub identity: Option<String>,
    /// RPCs it may call; default: all.
    #[serde(default)]
    pub rpcs: Option<Vec<Rpc>>,
    /// Vendor accounts it may bill, as requests name them (a request naming none counts as
    /// `default`); default: `["default"]`.
    #[serde(default)]
    pub accounts: Option<Vec<String>>,
    /// Providers it may name in a request's `provider`; default: none (it follows routing).
    #[serde(default)]
    pub providers: Vec<String>,
    /// Calls a second, with bursts of as many; default: unlimited.
    #[serde(default)]
    pub rate_per_second: Option<NonZeroU32>,
    /// Calls a UTC day, shared by every replica when `[store]` names Redis; default: unlimited.
    #[serde(default)]
    pub daily_budget: Option<u64>,
}

/// What a store failure does to a call that has a daily budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Refuse the call (UNAVAILABLE): a budget is a promise to someone who pays.
    #[default]
    Deny,
    /// Serve the call uncounted.
    Allow,
}

/// The `[store]` section: where daily budgets are counted.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `redis://host:6379/0`: budgets shared by every replica. Unset: counted in this process.
    pub redis_url: Option<SecretString>,
    /// A file holding that URL instead (it may carry a password), such as a mounted Secret.
    pub redis_url_file: Option<PathBuf>,
    pub on_error: OnStoreError,
    /// The longest one budget update may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_url_file: None,
            on_error: OnStoreError::Deny,
            timeout: Duration::from_millis(500),
        }
    }
}

/// The name metrics, spans and logs give calls made without a credential.
pub const ANONYMOUS: &str = "anonymous";
/// The account a request naming none bills, as callers' `accounts` name it.
pub const DEFAULT_ACCOUNT: &str = "default";

/// A caller the gateway knows, and what it may do.
pub struct Caller {
    pub name: String,
    rpcs: Option<Vec<Rpc>>,
    /// `None`: any account (the anonymous caller, as before callers existed).
    accounts: Option<Vec<String>>,
    /// `None`: any provider.
    providers: Option<Vec<String>>,
    rate: Option<DefaultDirectRateLimiter>,
    daily_budget: Option<u64>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a caller may not make a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no credential: send `authorization: Bearer <API key>`")]
    MissingCredential,
    #[error("the API key is not one this gateway knows")]
    UnknownCredential,
    #[error("caller `{caller}` may not call {rpc}")]
    Rpc { caller: String, rpc: &'static str },
    #[error("caller `{caller}` may not bill account `{account}`")]
    Account { caller: String, account: String },
    #[error("caller `{caller}` may not name provider `{provider}`")]
    Provider { caller: String, provider: String },
    #[error("caller `{caller}` is over its rate of calls a second")]
    RateLimited {
        caller: String,
        retry_after: Duration,
    },
    #[error("caller `{caller}` has used its daily budget of {budget} calls")]
    BudgetExhausted {
        caller: String,
        budget: u64,
        retry_after: Duration,
    },
    #[error("the budget store could not count this call; it is refused (store.on_error = deny)")]
    StoreUnavailable,
}

impl Caller {
    fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.into(),
            rpcs: None,
            accounts: None,
            providers: None,
            rate: None,
            daily_budget: None,
        }
    }

    fn new(name: &str, config: &CallerConfig) -> Self {
        Self {
            name: name.to_owned(),
            rpcs: config.rpcs.clone(),
            accounts: Some(
                config
                    .accounts
                    .clone()
                    .unwrap_or_else(|| vec![DEFAULT_ACCOUNT.into()]),
            ),
            providers: Some(config.providers.clone()),
            rate: config
                .rate_per_second
                .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
            daily_budget: config.daily_budget,
        }
    }

    /// Whether the caller may bill `account` (`None`: the default) and name `provider`.
    pub fn may_use(&self, account: Option<&str>, provider: Option<&str>) -> Result<(), Refusal> {
        let account = account.unwrap_or(DEFAULT_ACCOUNT);
        if let Some(accounts) = &self.accounts
            && !accounts.iter().any(|allowed| allowed == account)
        {
            return Err(Refusal::Account {
                caller: self.name.clone(),
                account: account.to_owned(),
            });
        }
        if let (Some(provider), Some(providers)) = (provider, &self.providers)
            && !providers.iter().any(|allowed| allowed == provider)
        {
            return Err(Refusal::Provider {
                caller: self.name.clone(),
                provider: provider.to_owned(),
            });
        }
        Ok(())
    }
}

/// Every configured caller, found by the hash of its key or its certificate's identity.
pub struct Callers {
    by_key: Vec<([u8; 32], Arc<Caller>)>,
    by_identity: BTreeMap<String, Arc<Caller>>,
    anonymous: Option<Arc<Caller>>,
    budgets: BudgetStore,
    on_store_error: OnStoreError,
    metrics: Metrics,
}

impl Callers {
    /// The callers `config` names (inline and in `auth.callers_file`), checked.
    pub fn new(
        auth: &AuthConfig,
        inline: &BTreeMap<String, CallerConfig>,
        store: &StoreConfig,
        metrics: Metrics,
    ) -> Result<Self, String> {
        let mut callers = inline.clone();
        if let Some(file) = &auth.callers_file {
            for (name, caller) in read_callers_file(file)? {
                if callers.insert(name.clone(), caller).is_some() {
                    return Err(format!(
                        "caller `{name}` is defined both in the configuration and in {}",
                        file.display()
                    ));
                }
            }
        }
        let mut by_key: Vec<([u8; 32], Arc<Caller>)> = Vec::new();
        let mut by_identity = BTreeMap::new();
        for (name, config) in &callers {
            if name == ANONYMOUS {
                return Err(format!(
                    "`{ANONYMOUS}` is reserved: name the caller otherwise"
                ));
            }
            let caller = Arc::new(Caller::new(name, config));
            if config.api_key_sha256.is_none() && config.identity.is_none() {
                return Err(format!(
                    "callers.{name} has neither api_key_sha256 nor identity: nobody could be it"
                ));
            }
            if let Some(hex_digits) = &config.api_key_sha256 {
                let hash = parse_hash(hex_digits)
                    .ok_or_else(|| format!("callers.{name}.api_key_sha256 is not 64 hex digits"))?;
                if let Some((_, other)) = by_key.iter().find(|(key, _)| *key == hash) {
                    return Err(format!(
                        "callers `{}` and `{name}` have the same API key",
                        other.name
                    ));
                }
                by_key.push((hash, Arc::clone(&caller)));
            }
            if let Some(identity) = &config.identity
                && let Some(other) = by_identity.insert(identity.clone(), caller)
            {
                return Err(format!(
                    "callers `{}` and `{name}` have the same identity",
                    other.name
                ));
            }
        }
        let anonymous = auth.anonymous.unwrap_or(callers.is_empty());
        Ok(Self {
            by_key,
            by_identity,
            anonymous: anonymous.then(|| Arc::new(Caller::anonymous())),
            budgets: BudgetStore::new(store)?,
            on_store_error: store.on_error,
            metrics,
        })
    }

    /// Names of the configured callers.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .by_key
            .iter()
            .map(|(_, caller)| caller)
            .chain(self.by_identity.values())
            .map(|caller| caller.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    pub fn anonymous_allowed(&self) -> bool {
        self.anonymous.is_some()
    }

    /// The caller presenting `key` (the bearer token), or else the identities of its client
    /// certificate; the anonymous caller, where allowed, when it presents neither. Every key hash
    /// is compared, in constant time, whichever matches.
    pub fn identify(
        &self,
        key: Option<&str>,
        identities: &[String],
    ) -> Result<Arc<Caller>, Refusal> {
        if let Some(key) = key {
            let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            let mut found = None;
            for (candidate, caller) in &self.by_key {
                if bool::from(candidate.ct_eq(&hash)) {
                    found = Some(caller);
                }
            }
            return found.cloned().ok_or(Refusal::UnknownCredential);
        }
        if let Some(caller) = identities
            .iter()
            .find_map(|identity| self.by_identity.get(identity))
        {
            return Ok(Arc::clone(caller));
        }
        self.anonymous.clone().ok_or(if identities.is_empty() {
            Refusal::MissingCredential
        } else {
            Refusal::UnknownCredential
        })
    }

    /// Admits one call of `rpc` by `caller`: its RPCs, its rate, then its daily budget.
    pub async fn admit(&self, caller: &Caller, rpc: Rpc) -> Result<(), Refusal> {
        if let Some(rpcs) = &caller.rpcs
            && !rpcs.contains(&rpc)
        {
            return Err(Refusal::Rpc {
                caller: caller.name.clone(),
                rpc: rpc.as_str(),
            });
        }
        if let Some(rate) = &caller.rate
            && let Err(not_until) = rate.check()
        {
            return Err(Refusal::RateLimited {
                caller: caller.name.clone(),
                retry_after: not_until
                    .wait_time_from(governor::clock::DefaultClock::default().now()),
            });
        }
        let Some(budget) = caller.daily_budget else {
            return Ok(());
        };
        let day = budget::UtcDay::today();
        match self.budgets.spend(&caller.name, day).await {
            Ok(spent) if spent <= budget => Ok(()),
            Ok(_) => Err(Refusal::BudgetExhausted {
                caller: caller.name.clone(),
                budget,
                retry_after: day.time_left(),
            }),
            Err(err) => {
                let allowed = self.on_store_error == OnStoreError::Allow;
                tracing::warn!(%err, caller = %caller.name, allowed, "the budget store failed");
                self.metrics.budget_store_failed(allowed);
                if allowed {
                    Ok(())
                } else {
                    Err(Refusal::StoreUnavailable)
                }
            }
        }
    }
}

fn parse_hash(hex_digits: &str) -> Option<[u8; 32]> {
    let mut hash = [0; 32];
    hex::decode_to_slice(hex_digits.trim(), &mut hash).ok()?;
    Some(hash)
}

fn read_callers_file(path: &Path) -> Result<BTreeMap<String, CallerConfig>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        callers: BTreeMap<String, CallerConfig>,
    }
    use figment::providers::Format as _;
    figment::Figment::from(figment::providers::Toml::file_exact(path))
        .extract::<File>()
        .map(|file| file.callers)
        // Figment's messages may quote a value; a file of key hashes is named by its path only.
        .map_err(|err| format!("auth.callers_file {}: {}", path.display(), err.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_is_named_as_the_proto_names_it() {
        use crate::api::pb::ocr_service_server::SERVICE_NAME;
        assert_eq!(Rpc::SERVICE, SERVICE_NAME);
        for rpc in [Rpc::RecognizeBankCard, Rpc::ParseInvoiceTitle] {
            let path = format!("/{SERVICE_NAME}/{}", rpc.as_str());
            assert_eq!(Rpc::from_path(&path), Some(rpc));
            assert_eq!(format!("/{}", rpc.full_name()), path);
        }
    }

    fn callers(toml_text: &str) -> Callers {
        #[derive(Deserialize)]
        struct Section {
            callers: BTreeMap<String, CallerConfig>,
        }
        use figment::providers::Format as _;
        let section: Section = figment::Figment::from(figment::providers::Toml::string(toml_text))
            .extract()
            .expect("callers");
        let telemetry = crate::telemetry::Telemetry::without_exporters().expect("telemetry");
        Callers::new(
            &AuthConfig::default(),
            &section.callers,
            &StoreConfig::default(),
            telemetry.metrics().clone(),
        )
        .expect("valid")
    }

    fn sha256_hex(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    #[test]
    fn a_caller_is_known_by_its_key_or_its_certificate_and_nobody_else_is() {
        let callers = callers(&format!(
            "[callers.billing]\napi_key_sha256 = \"{}\"\n\
             [callers.shop]\nidentity = \"spiffe://cluster.local/ns/shop/sa/shop\"\n",
            sha256_hex("billing-key")
        ));
        let name = |found: Result<Arc<Caller>, Refusal>| found.map(|caller| caller.name.clone());
        assert_eq!(
            name(callers.identify(Some("billing-key"), &[])),
            Ok("billing".into())
        );
        assert_eq!(
            name(callers.identify(Some("guess"), &[])),
            Err(Refusal::UnknownCredential)
        );
        let shop = ["spiffe://cluster.local/ns/shop/sa/shop".to_owned()];
        assert_eq!(name(callers.identify(None, &shop)), Ok("shop".into()));
        let stranger = ["spiffe://elsewhere".to_owned()];
        assert_eq!(
            name(callers.identify(None, &stranger)),
            Err(Refusal::UnknownCredential)
        );
        // With callers configured, anonymous calls are off unless asked for.
        assert_eq!(
            name(callers.identify(None, &[])),
            Err(Refusal::MissingCredential)
        );
    }

    #[test]
    fn a_caller_bills_the_default_account_only_and_names_no_provider_by_default() {
        let callers = callers(&format!(
            "[callers.billing]\napi_key_sha256 = \"{}\"\n",
            sha256_hex("k")
        ));
        let caller = callers.identify(Some("k"), &[]).expect("known");
        assert_eq!(caller.may_use(None, None), Ok(()));
        assert_eq!(caller.may_use(Some("default"), None), Ok(()));
        assert!(matches!(
            caller.may_use(Some("shop"), None),
            Err(Refusal::Account { .. })
        ));
        assert!(matches!(
            caller.may_use(None, Some("wechat")),
            Err(Refusal::Provider { .. })
        ));
    }
}
