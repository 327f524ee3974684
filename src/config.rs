//! Configuration: defaults, overlaid by an optional TOML file, overlaid by `OCRGATE_*` variables.

use std::{net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
    value::{Uncased, UncasedStr},
};
use serde::{Deserialize, Serialize};

use crate::providers::wechat::WechatConfig;

/// Prefix of every environment variable ocrgate reads.
pub const ENV_PREFIX: &str = "OCRGATE_";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the gRPC server.
    pub listen: SocketAddr,
    /// After SIGTERM, how long health reports NOT_SERVING before the listener closes, so load
    /// balancers stop sending new calls first.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// After the listener closes, how long in-flight calls get to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    pub log: LogConfig,
    pub wechat: WechatConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 50051)),
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
            log: LogConfig::default(),
            wechat: WechatConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `ocrgate=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
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
        let env = Env::prefixed(ENV_PREFIX).ignore(&["config"]).map(env_key);
        figment = figment.merge(env.clone().filter(|name| !is_secret(name.as_str())));
        // Secrets go in as strings, never parsed: an all-digit secret must not become a number.
        for (key, value) in env.iter().filter(|(key, _)| is_secret(key.as_str())) {
            figment = figment.merge(Serialized::default(key.as_str(), value));
        }
        figment.extract().map_err(|err| ConfigError(describe(err)))
    }
}

fn is_secret(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("app_secret")
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
        "wechat_base_url" => "wechat.base_url".to_owned(),
        "log_format" => "log.format".to_owned(),
        "log_level" => "log.level".to_owned(),
        _ => name.replace("__", "."),
    };
    key.into()
}
