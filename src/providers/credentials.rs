//! Access tokens of vendors that hand them out, cached per credential id (never per secret): one
//! fetch per id however many calls miss at once, dropped a margin before the vendor's expiry.

use std::{fmt, future::Future, marker::PhantomData, time::Duration};

use moka::{Expiry, future::Cache, ops::compute::Op};
use secrecy::{ExposeSecret, SecretString};

/// An access token. Its `Debug` is redacted; only the adapters' clients expose it.
#[derive(Clone)]
pub(crate) struct AccessToken(SecretString);

impl AccessToken {
    pub(crate) fn new(token: SecretString) -> Self {
        Self(token)
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// A token as the token endpoint returned it, with its remaining life.
pub(crate) struct FreshToken {
    pub(crate) token: AccessToken,
    pub(crate) expires_in: Duration,
}

#[derive(Clone)]
struct CachedToken {
    token: AccessToken,
    ttl: Duration,
}

struct TokenExpiry;

impl Expiry<String, CachedToken> for TokenExpiry {
    fn expire_after_create(
        &self,
        _id: &String,
        value: &CachedToken,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Shortest time a token stays cached, even when the vendor says it is about to expire.
const MIN_TTL: Duration = Duration::from_secs(1);

/// Tokens keyed by credential id (an app id, never a secret), each expiring `margin` before the
/// vendor's own expiry; `E` is the adapter's error.
pub(crate) struct TokenCache<E> {
    cache: Cache<String, CachedToken>,
    margin: Duration,
    error: PhantomData<fn() -> E>,
}

/// Whether a token came from the cache or was fetched for this very call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Hit,
    Miss,
}

impl<E: Clone + Send + Sync + 'static> TokenCache<E> {
    pub(crate) fn new(margin: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(10_000)
                .expire_after(TokenExpiry)
                .build(),
            margin,
            error: PhantomData,
        }
    }

    /// The cached token for `id`, or the one `fetch` gets. Concurrent misses for one id share a
    /// single `fetch`; a failed fetch is not cached.
    pub(crate) async fn get_or_fetch<F: Future<Output = Result<FreshToken, E>>>(
        &self,
        id: &str,
        fetch: impl FnOnce() -> F,
    ) -> Result<(AccessToken, Lookup), E> {
        // Almost every call finds its token: a plain read. The entry API, for a miss, is a
        // future of some 13 KB, and the fetch another 2 KB; made only on a miss and boxed, the
        // futures of every call around them stay small instead of moving them whole at each
        // level.
        if let Some(cached) = self.cache.get(id).await {
            return Ok((cached.token, Lookup::Hit));
        }
        let entry = Box::pin(self.cache.entry_by_ref(id).or_try_insert_with(async {
            let fresh = fetch().await?;
            Ok(CachedToken {
                ttl: self.ttl(fresh.expires_in),
                token: fresh.token,
            })
        }))
        .await
        .map_err(|err: std::sync::Arc<E>| E::clone(&err))?;
        let lookup = if entry.is_fresh() {
            Lookup::Miss
        } else {
            Lookup::Hit
        };
        Ok((entry.into_value().token, lookup))
    }

    /// Drops the cached token for `id` only if it is still `rejected`: another call may have
    /// replaced it already, and that newer token must stay.
    pub(crate) async fn invalidate_if_current(&self, id: &str, rejected: &AccessToken) {
        self.cache
            .entry_by_ref(id)
            .and_compute_with(|current| {
                let op = match current {
                    Some(entry) if entry.value().token == *rejected => Op::Remove,
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
    }

    /// How long to keep a token the vendor says lives `expires_in` more: `margin` less, but never
    /// less than half its life (vendors may hand out tokens with only minutes left) nor zero.
    fn ttl(&self, expires_in: Duration) -> Duration {
        expires_in
            .saturating_sub(self.margin)
            .max(expires_in / 2)
            .max(MIN_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_keeps_margin_before_expiry() {
        let cache = TokenCache::<()>::new(Duration::from_secs(300));
        assert_eq!(
            cache.ttl(Duration::from_secs(7200)),
            Duration::from_secs(6900)
        );
    }

    #[test]
    fn ttl_of_short_lived_token_is_clamped_to_half_its_life() {
        let cache = TokenCache::<()>::new(Duration::from_secs(300));
        assert_eq!(
            cache.ttl(Duration::from_secs(300)),
            Duration::from_secs(150)
        );
        assert_eq!(
            cache.ttl(Duration::from_secs(200)),
            Duration::from_secs(100)
        );
    }

    #[test]
    fn ttl_never_reaches_zero() {
        let cache = TokenCache::<()>::new(Duration::from_secs(300));
        assert_eq!(cache.ttl(Duration::ZERO), MIN_TTL);
        assert_eq!(cache.ttl(Duration::from_secs(1)), MIN_TTL);
    }

    #[test]
    fn access_token_debug_is_redacted() {
        let token = AccessToken::new(SecretString::from("very-secret-token"));
        assert!(!format!("{token:?}").contains("very-secret-token"));
    }
}
