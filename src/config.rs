//! Configuration: defaults, overlaid by an optional TOML file, overlaid by `OCRGATE_*` variables.

use std::{net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
    value::{Uncased, UncasedStr},
};
use serde::Deserialize;

use crate::{
    auth::{AuthConfig, CallerConfig, StoreConfig},
    limits::LimitsConfig,
    providers::{local::LocalConfig, wechat::WechatConfig},
    routing::RoutingConfig,
    telemetry::LogConfig,
};

/// Prefix of every environment variable ocrgate reads.
pub const ENV_PREFIX: &str = "OCRGATE_";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    pub tls: Option<crate::server::TlsConfig>,
    pub auth: AuthConfig,
    /// Callers by name; see [`crate::auth`].
    pub callers: std::collections::BTreeMap<String, CallerConfig>,
    pub store: StoreConfig,
    pub wechat: WechatConfig,
    pub local: LocalConfig,
    pub routing: RoutingConfig,
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
            wechat: WechatConfig::default(),
            local: LocalConfig::default(),
            routing: RoutingConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

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
        figment = figment.merge(env.clone().filter(|name| !is_secret(name.as_str())));
        // Secrets go in as strings, never parsed: an all-digit secret must not become a number.
        for (key, value) in env.iter().filter(|(key, _)| is_secret(key.as_str())) {
            figment = figment.merge(Serialized::default(key.as_str(), value));
        }
        figment.extract().map_err(|err| ConfigError(describe(err)))
    }
}

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.ends_with("app_secret") || key == "store.redis_url"
}

/// Figment's messages quote the offending value, so a mistyped secret would be printed.
fn describe(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|err| {
            let path = err.path.join(".");
            if is_secret(&path) {
                format!("{path}: must be a string")
            } else {
                err.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Maps an environment variable (less the prefix) to a configuration key: the documented short
/// names first, then `__` as the separator of nested keys
/// (`OCRGATE_WECHAT__TOKEN_ENDPOINT` is `wechat.token_endpoint`).
fn env_key(name: &UncasedStr) -> Uncased<'_> {
    let name = name.as_str().to_ascii_lowercase();
    let key = match name.as_str() {
        "wechat_app_id" => "wechat.app_id".to_owned(),
        "wechat_app_secret" => "wechat.app_secret".to_owned(),
        "wechat_app_secret_file" => "wechat.app_secret_file".to_owned(),
        "wechat_base_url" => "wechat.base_url".to_owned(),
        "log_format" => "log.format".to_owned(),
        "log_level" => "log.level".to_owned(),
        _ => name.replace("__", "."),
    };
    key.into()
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error"
)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::{providers::wechat::TokenEndpoint, telemetry::LogFormat};

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
            assert_eq!(config.wechat.request_timeout, Duration::from_secs(4));
            assert_eq!(config.wechat.app_id.as_deref(), Some("wx-main"));
            assert_eq!(
                config.wechat.app_secret.as_ref().map(|s| s.expose_secret()),
                Some("main-secret")
            );
            assert_eq!(config.wechat.base_url.as_str(), "http://127.0.0.1:9/");
            assert_eq!(config.wechat.token_endpoint, TokenEndpoint::Legacy);
            assert_eq!(config.wechat.accounts["shop"].app_id, "wx-shop");
            Ok(())
        });
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        figment::Jail::expect_with(|_| {
            let config = Config::load(None).expect("loads");
            assert_eq!(config.listen, "0.0.0.0:50051".parse().expect("addr"));
            assert_eq!(
                config.wechat.base_url.as_str(),
                "https://api.weixin.qq.com/"
            );
            assert_eq!(config.wechat.token_endpoint, TokenEndpoint::Stable);
            assert!(config.wechat.app_id.is_none());
            Ok(())
        });
    }

    #[test]
    fn all_digit_secret_from_the_environment_stays_a_string() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OCRGATE_WECHAT_APP_SECRET", "0012345678901234");
            let config = Config::load(None).expect("loads");
            assert_eq!(
                config.wechat.app_secret.as_ref().map(|s| s.expose_secret()),
                Some("0012345678901234")
            );
            Ok(())
        });
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
