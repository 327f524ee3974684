//! Configuration: defaults, overlaid by an optional TOML file, overlaid by `OCRGATE_*` variables.

use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
    value::{Uncased, UncasedStr, Value},
};
use serde::{Deserialize, de::IgnoredAny};

pub use crate::settings::{ConfigError, Section, Sections};
use crate::{
    auth::{AuthConfig, CallerConfig, StoreConfig},
    limits::LimitsConfig,
    providers::{REGISTRY, known_sections},
    result_cache::CacheConfig,
    routing::RoutingConfig,
    settings::describe,
    telemetry::LogConfig,
};

/// Prefix of every environment variable ocrgate reads.
pub const ENV_PREFIX: &str = "OCRGATE_";

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address of the gRPC server.
    pub listen: SocketAddr,
    /// Address of the admin HTTP server: `/metrics`, `/healthz`, `/readyz`.
    pub admin_listen: SocketAddr,
    /// After SIGTERM, how long health reports NOT_SERVING before the listener closes, so load
    /// balancers stop sending new calls first.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// After the listener closes, how long in-flight calls get to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    /// TLS on the gRPC port; plaintext when absent.
    pub tls: Option<crate::transport::TlsConfig>,
    pub auth: AuthConfig,
    /// Callers by name; see [`crate::auth`].
    pub callers: std::collections::BTreeMap<String, CallerConfig>,
    pub store: StoreConfig,
    pub routing: RoutingConfig,
    /// Bank card answers kept for identical uploads.
    pub cache: CacheConfig,
    /// Each provider's section (`[wechat]`, `[tencent]`, ...), which the provider reads itself.
    #[serde(skip)]
    pub providers: Sections,
    /// Keys no field above takes: each must be a provider's section.
    #[serde(flatten)]
    unclaimed: BTreeMap<String, IgnoredAny>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 50051)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
            log: LogConfig::default(),
            limits: LimitsConfig::default(),
            tls: None,
            auth: AuthConfig::default(),
            callers: std::collections::BTreeMap::new(),
            store: StoreConfig::default(),
            routing: RoutingConfig::default(),
            cache: CacheConfig::default(),
            providers: Sections::default(),
            unclaimed: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Loads the configuration from `file` (if any) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // OCRGATE_CONFIG names the file; OCRGATE_ADDR is the CLI's.
        let env = Env::prefixed(ENV_PREFIX)
            .ignore(&["config", "addr"])
            .map(env_key);
        // A variable's value stays the text it is (an all-digit secret keeps its leading zeros);
        // numbers and booleans are read from that text when a field wants one (`extract_lossy`).
        // Only lists and tables, such as `OCRGATE_ROUTING__BANK_CARD='["tencent"]'`, are parsed.
        for (key, value) in env.iter() {
            let value = match value.trim_start().chars().next() {
                Some('[' | '{') => value
                    .parse::<Value>()
                    .unwrap_or_else(|never| match never {}),
                _ => Value::from(value),
            };
            figment = figment.merge(Serialized::default(key.as_str(), value));
        }
        let mut config: Self = figment
            .extract_lossy()
            .map_err(|err| ConfigError(describe(&figment, err)))?;
        if let Some(key) = config
            .unclaimed
            .keys()
            .find(|key| !REGISTRY.iter().any(|r| r.section == key.as_str()))
        {
            return Err(ConfigError(format!(
                "unknown key `{key}`: neither a setting nor a provider's section ({})",
                known_sections()
            )));
        }
        config.providers = Sections::new(figment);
        for registration in REGISTRY {
            (registration.read)(config.providers.section(registration.section))?;
        }
        Ok(config)
    }
}

/// Maps an environment variable (less the prefix) to a configuration key: the documented short
/// names first, then `__` as the separator of nested keys
/// (`OCRGATE_WECHAT__TOKEN_ENDPOINT` is `wechat.token_endpoint`).
fn env_key(name: &UncasedStr) -> Uncased<'_> {
    let name = name.as_str().to_ascii_lowercase();
    let short = [("log_format", "log.format"), ("log_level", "log.level")]
        .iter()
        .chain(REGISTRY.iter().flat_map(|registration| registration.env))
        .find(|(variable, _)| *variable == name);
    match short {
        Some((_, key)) => (*key).into(),
        None => name.replace("__", ".").into(),
    }
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error"
)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::{
        providers::{
            tencent::TencentConfig,
            wechat::{TokenEndpoint, WechatConfig},
        },
        telemetry::LogFormat,
    };

    fn wechat(config: &Config) -> WechatConfig {
        config.providers.section("wechat").read().expect("reads")
    }

    fn tencent(config: &Config) -> TencentConfig {
        config.providers.section("tencent").read().expect("reads")
    }

    #[test]
    fn environment_overrides_the_file_and_the_documented_names_work() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "ocrgate.toml",
                r#"
                listen = "127.0.0.1:7000"
                [log]
                format = "json"
                [wechat]
                request_timeout = "4s"
                [wechat.accounts.shop]
                app_id = "wx-shop"
                app_secret = "shop-secret"
                "#,
            )?;
            jail.set_env("OCRGATE_LISTEN", "127.0.0.1:7001");
            jail.set_env("OCRGATE_WECHAT_APP_ID", "wx-main");
            jail.set_env("OCRGATE_WECHAT_APP_SECRET", "main-secret");
            jail.set_env("OCRGATE_WECHAT_BASE_URL", "http://127.0.0.1:9/");
            jail.set_env("OCRGATE_WECHAT__TOKEN_ENDPOINT", "legacy");
            jail.set_env("OCRGATE_CONFIG", "ignored-here.toml");
            jail.set_env("OCRGATE_ADDR", "http://127.0.0.1:1");

            let config = Config::load(Some(Path::new("ocrgate.toml"))).expect("loads");

            assert_eq!(config.listen, "127.0.0.1:7001".parse().expect("addr"));
            assert_eq!(config.log.format, LogFormat::Json);
            assert_eq!(wechat(&config).request_timeout, Duration::from_secs(4));
            assert_eq!(wechat(&config).app_id.as_deref(), Some("wx-main"));
            assert_eq!(
                wechat(&config)
                    .app_secret
                    .as_ref()
                    .map(|s| s.expose_secret()),
                Some("main-secret")
            );
            assert_eq!(wechat(&config).base_url.as_str(), "http://127.0.0.1:9/");
            assert_eq!(wechat(&config).token_endpoint, TokenEndpoint::Legacy);
            assert_eq!(wechat(&config).accounts["shop"].app_id, "wx-shop");
            Ok(())
        });
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        figment::Jail::expect_with(|_| {
            let config = Config::load(None).expect("loads");
            assert_eq!(config.listen, "0.0.0.0:50051".parse().expect("addr"));
            assert_eq!(
                wechat(&config).base_url.as_str(),
                "https://api.weixin.qq.com/"
            );
            assert_eq!(wechat(&config).token_endpoint, TokenEndpoint::Stable);
            assert!(wechat(&config).app_id.is_none());
            Ok(())
        });
    }

    #[test]
    fn all_digit_secret_from_the_environment_stays_a_string() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OCRGATE_WECHAT_APP_SECRET", "0012345678901234");
            let config = Config::load(None).expect("loads");
            assert_eq!(
                wechat(&config)
                    .app_secret
                    .as_ref()
                    .map(|s| s.expose_secret()),
                Some("0012345678901234")
            );
            Ok(())
        });
    }

    #[test]
    fn every_secret_and_id_from_the_environment_stays_the_text_it_was() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OCRGATE_TENCENT_SECRET_ID", "000123");
            jail.set_env("OCRGATE_TENCENT_SECRET_KEY", "0012345678901234");
            jail.set_env("OCRGATE_STORE__REDIS_URL", "redis://:007@127.0.0.1/0");
            jail.set_env("OCRGATE_TENCENT__RETRIES", "5");
            jail.set_env("OCRGATE_AUTH__ANONYMOUS", "false");
            jail.set_env("OCRGATE_ROUTING__BANK_CARD", r#"["tencent", "local"]"#);
            let config = Config::load(None).expect("loads");
            assert_eq!(tencent(&config).secret_id.as_deref(), Some("000123"));
            assert_eq!(
                tencent(&config)
                    .secret_key
                    .as_ref()
                    .map(|s| s.expose_secret()),
                Some("0012345678901234")
            );
            assert_eq!(
                config.store.redis_url.as_ref().map(|s| s.expose_secret()),
                Some("redis://:007@127.0.0.1/0")
            );
            assert_eq!(tencent(&config).retries, 5);
            assert!(!config.auth.anonymous.unwrap_or(true));
            assert_eq!(
                config.routing.bank_card,
                Some(vec!["tencent".to_owned(), "local".to_owned()])
            );
            Ok(())
        });
    }

    #[test]
    fn a_value_of_the_wrong_type_is_never_quoted_whatever_its_key() {
        for (line, key, value) in [
            (
                "secret_key = 98765432123",
                "tencent.secret_key",
                "98765432123",
            ),
            (
                "retries = \"many-3141592653\"",
                "tencent.retries",
                "3141592653",
            ),
            (
                "endpoint = \"not a url 2718281828\"",
                "tencent.endpoint",
                "2718281828",
            ),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.create_file("ocrgate.toml", &format!("[tencent]\n{line}\n"))?;
                let err = Config::load(Some(Path::new("ocrgate.toml"))).expect_err("wrong type");
                let message = err.to_string();
                assert!(message.contains(key), "{message}");
                assert!(!message.contains(value), "{message}");
                Ok(())
            });
        }
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ocrgate.toml", "[wechat]\nrequest_timout = \"4s\"\n")?;
            let err = Config::load(Some(Path::new("ocrgate.toml"))).expect_err("typo");
            assert!(err.to_string().contains("request_timout"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_key_that_is_neither_a_setting_nor_a_providers_section_is_rejected_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ocrgate.toml", "[wechta]\napp_id = \"wx\"\n")?;
            let err = Config::load(Some(Path::new("ocrgate.toml"))).expect_err("typo");
            assert!(err.to_string().contains("`wechta`"), "{err}");
            assert!(err.to_string().contains("wechat, tencent"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_printed_configuration_shows_no_providers_secret() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OCRGATE_WECHAT_APP_SECRET", "printed-nowhere-5551");
            jail.set_env("OCRGATE_TENCENT_SECRET_KEY", "printed-nowhere-5552");
            let config = Config::load(None).expect("loads");
            let printed = format!("{config:?}");
            assert!(!printed.contains("printed-nowhere"), "{printed}");
            Ok(())
        });
    }

    #[test]
    fn mistyped_secret_is_reported_without_its_value() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ocrgate.toml", "[wechat]\napp_secret = 98765432123\n")?;
            let err = Config::load(Some(Path::new("ocrgate.toml"))).expect_err("not a string");
            let message = err.to_string();
            assert!(message.contains("app_secret"), "{message}");
            assert!(!message.contains("98765432123"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn missing_config_file_is_an_error() {
        figment::Jail::expect_with(|_| {
            let err = Config::load(Some(Path::new("nowhere.toml"))).expect_err("missing");
            assert!(err.to_string().contains("nowhere.toml"), "{err}");
            Ok(())
        });
    }
}
