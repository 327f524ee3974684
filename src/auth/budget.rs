//! Daily budgets: calls counted per caller and UTC day, in this process or in Redis, where every
//! replica counts against the same number.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret as _;
use tokio::sync::OnceCell;

use super::StoreConfig;
use crate::secret::SecretSource;

const DAY_SECONDS: u64 = 24 * 60 * 60;

/// A UTC day, as days since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UtcDay(u64);

impl UtcDay {
    pub fn today() -> Self {
        Self(unix_seconds() / DAY_SECONDS)
    }

    /// Seconds since the epoch at which the day ends.
    fn end(self) -> u64 {
        (self.0 + 1) * DAY_SECONDS
    }

    /// How long until the next day begins.
    pub fn time_left(self) -> Duration {
        Duration::from_secs(self.end().saturating_sub(unix_seconds()))
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Why a budget could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis failed: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Where budgets are counted.
pub enum BudgetStore {
    Memory(Mutex<HashMap<(String, UtcDay), u64>>),
    Redis {
        client: redis::Client,
        /// Made on first use, so the gateway starts (and follows `on_error`) while Redis is down.
        connection: OnceCell<ConnectionManager>,
        timeout: Duration,
    },
}

impl BudgetStore {
    pub fn new(config: &StoreConfig) -> Result<Self, String> {
        let url = SecretSource::new(
            "store.redis_url",
            config.redis_url.as_ref(),
            config.redis_url_file.as_deref(),
        )
        .read()?;
        match url {
            None => Ok(Self::Memory(Mutex::new(HashMap::new()))),
            Some(url) => Ok(Self::Redis {
                // The URL may hold a password: its parse error is not quoted.
                client: redis::Client::open(url.expose_secret().trim())
                    .map_err(|_| "store.redis_url is not a redis:// URL".to_owned())?,
                connection: OnceCell::new(),
                timeout: config.timeout,
            }),
        }
    }

    /// Counts one call of `caller` on `day`; returns the day's count, this call included.
    pub async fn spend(&self, caller: &str, day: UtcDay) -> Result<u64, BudgetError> {
        match self {
            Self::Memory(counts) => {
                let mut counts = counts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                counts.retain(|(_, counted), _| *counted == day);
                let spent = counts.entry((caller.to_owned(), day)).or_default();
                *spent += 1;
                Ok(*spent)
            }
            Self::Redis {
                client,
                connection,
                timeout,
            } => tokio::time::timeout(*timeout, async {
                let connection = connection
                    .get_or_try_init(|| {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(*timeout))
                            .set_response_timeout(Some(*timeout))
                            .set_number_of_retries(1);
                        ConnectionManager::new_with_config(client.clone(), config)
                    })
                    .await?;
                let key = format!("ocrgate:budget:{caller}:{}", day.0);
                // One transaction: the count and its expiry an hour after the day ends.
                let (spent,): (u64,) = redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .expire_at(&key, (day.end() + 3600) as i64)
                    .ignore()
                    .query_async(&mut connection.clone())
                    .await?;
                Ok(spent)
            })
            .await
            .map_err(|_| BudgetError::Timeout(*timeout))?,
        }
    }
}
