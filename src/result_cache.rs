//! Answers kept for identical bank card uploads: the same photo sent again within `cache.ttl`
//! costs no vendor call, and identical uploads in flight at once share one call.
//!
//! Kept in memory only, bounded by entries and bytes, gone at shutdown. An entry is found by a
//! keyed hash of the request (HMAC-SHA256 under a key drawn at random when the process starts),
//! so neither the cache nor a metric lets anyone test whether a given card was seen. Errors are
//! never kept.

use std::{
    future::Future,
    mem::size_of,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use bytesize::ByteSize;
use hmac::{Hmac, Mac};
use moka::future::Cache;
use serde::Deserialize;
use sha2::Sha256;

use crate::{
    provider::{BankCard, BankCardRequest, ErrorKind, ImageSource, ImageWarning, RecognitionMode},
    routing::{Answer, RouteError},
    telemetry::Metrics,
};

/// The `[cache]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How long an answer is kept; `0s` turns the cache off.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Answers kept at most.
    pub max_entries: u64,
    /// Memory the answers kept may take at most.
    pub max_memory: ByteSize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            max_entries: 10_000,
            max_memory: ByteSize::mib(8),
        }
    }
}

impl CacheConfig {
    /// Whether the values can work: a cache that is on holds at least one answer.
    pub fn check(&self) -> Result<(), String> {
        if !self.ttl.is_zero() && (self.max_entries == 0 || self.max_memory.as_u64() == 0) {
            return Err(
                "cache.max_entries and cache.max_memory must be above 0 while cache.ttl is set; \
                 set cache.ttl = \"0s\" to turn the cache off"
                    .into(),
            );
        }
        Ok(())
    }
}

/// What an entry is found by: a keyed hash of the image, mode, account and provider asked.
pub type Key = [u8; 32];

/// How the cache served a call, as metrics and spans label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from an earlier identical call.
    Hit,
    /// Served by the route, and kept if it answered.
    Miss,
    /// Answered by an identical call that was in flight.
    Shared,
    /// Not looked up: the cache is off, or the image is a URL (its content may change).
    Bypassed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Shared => "shared",
            Self::Bypassed => "bypassed",
        }
    }
}

/// The bank card answers kept, by request.
pub struct ResultCache {
    answers: Option<Cache<Key, Answer<BankCard>>>,
    hasher: Hmac<Sha256>,
    metrics: Metrics,
}

impl ResultCache {
    pub fn new(config: &CacheConfig, metrics: Metrics) -> Result<Self, getrandom::Error> {
        // As long as SHA-256's block: HMAC's whole key.
        let mut secret = [0; 64];
        getrandom::fill(&mut secret)?;
        let hasher = <Hmac<Sha256> as Mac>::new(&secret.into());
        let answers = (!config.ttl.is_zero()).then(|| {
            let max_memory = config.max_memory.as_u64();
            // Each entry weighs at least its share of `max_memory` by `max_entries`, so that the
            // one bound moka keeps holds both.
            let least = (max_memory / config.max_entries.max(1)).max(1);
            Cache::builder()
                .max_capacity(max_memory)
                .weigher(move |_: &Key, answer: &Answer<BankCard>| {
                    u32::try_from(weight(answer).max(least)).unwrap_or(u32::MAX)
                })
                .time_to_live(config.ttl)
                .build()
        });
        Ok(Self {
            answers,
            hasher,
            metrics,
        })
    }

    /// The key of `request` asking `provider` (`None`: the route), or `None` when it is not kept.
    pub fn key(&self, request: &BankCardRequest, provider: Option<&str>) -> Option<Key> {
        self.answers.as_ref()?;
        let ImageSource::Upload { bytes, .. } = &request.image else {
            return None;
        };
        let mut hasher = self.hasher.clone();
        let mut field = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        field(bytes);
        field(match request.mode {
            RecognitionMode::Photo => b"photo",
            RecognitionMode::Scan => b"scan",
        });
        field(request.account.as_deref().unwrap_or_default().as_bytes());
        field(provider.unwrap_or_default().as_bytes());
        Some(hasher.finalize().into_bytes().into())
    }

    /// The answer kept for `key`, or else the one `route` gives, kept for next time; identical
    /// calls at once share one. An answer kept for want of a better one (marked low confidence:
    /// a provider that might have replaced it failed) is shared but not kept, so the same photo
    /// sent again asks again. A call that shared an identical call's deadline running out makes
    /// its own, once.
    pub async fn answer<F, Fut>(
        &self,
        key: Option<Key>,
        route: F,
    ) -> (Result<Answer<BankCard>, RouteError>, Outcome)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Answer<BankCard>, RouteError>>,
    {
        let (Some(answers), Some(key)) = (&self.answers, key) else {
            return (route().await, Outcome::Bypassed);
        };
        if let Some(answer) = answers.get(&key).await {
            return self.served(Ok(answer), Outcome::Hit);
        }
        // Set when this call's own route runs: a call that waited on another's shares its result.
        let ran = AtomicBool::new(false);
        let own = async {
            ran.store(true, Ordering::Relaxed);
            match route().await {
                Ok(answer) if answer.value.warnings.contains(&ImageWarning::LowConfidence) => {
                    Err(NotKept::Doubtful(answer))
                }
                Ok(answer) => Ok(answer),
                Err(err) => Err(NotKept::Failed(err)),
            }
        };
        let entry = answers.entry(key).or_try_insert_with(own).await;
        let own = ran.load(Ordering::Relaxed);
        let outcome = if own { Outcome::Miss } else { Outcome::Shared };
        match entry {
            Ok(entry) if entry.is_fresh() => self.served(Ok(entry.into_value()), Outcome::Miss),
            Ok(entry) => self.served(Ok(entry.into_value()), Outcome::Shared),
            Err(not_kept) => match &*not_kept {
                NotKept::Doubtful(answer) => self.served(Ok(answer.clone()), outcome),
                NotKept::Failed(err) if !own && is_deadline(err) => {
                    self.served(route().await, Outcome::Miss)
                }
                NotKept::Failed(err) => self.served(Err(err.clone()), outcome),
            },
        }
    }

    fn served(
        &self,
        result: Result<Answer<BankCard>, RouteError>,
        outcome: Outcome,
    ) -> (Result<Answer<BankCard>, RouteError>, Outcome) {
        self.metrics.result_cache(outcome.as_str());
        // The providers an earlier call passed on from are that call's, not this one's.
        let result = result.map(|mut answer| {
            if matches!(outcome, Outcome::Hit | Outcome::Shared) {
                answer.escalations.clear();
            }
            answer
        });
        (result, outcome)
    }
}

/// Why a route's result is not kept.
enum NotKept {
    /// It failed.
    Failed(RouteError),
    /// It answered for want of a better answer.
    Doubtful(Answer<BankCard>),
}

/// Whether an error is a deadline running out: another call's deadline, when shared.
fn is_deadline(err: &RouteError) -> bool {
    matches!(err, RouteError::Provider(err) if err.kind == ErrorKind::DeadlineExceeded)
}

/// About what an answer kept takes in memory: the entry, its key, the text it holds and the
/// cache's own bookkeeping for it.
fn weight(answer: &Answer<BankCard>) -> u64 {
    const BOOKKEEPING: usize = 128;
    let card = &answer.value;
    let text = card.number.digits().len()
        + card.card_name.as_ref().map_or(0, String::len)
        + card.bank_name.as_ref().map_or(0, String::len)
        + card.warnings.capacity() * size_of::<ImageWarning>()
        + answer.escalations.capacity() * size_of::<crate::routing::Escalation>();
    (size_of::<Answer<BankCard>>() + size_of::<Key>() + text + BOOKKEEPING) as u64
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::provider::{CardNumber, ImageFormat, ProviderError};

    fn upload(bytes: &'static [u8], account: Option<&str>) -> BankCardRequest {
        BankCardRequest {
            image: ImageSource::Upload {
                bytes: Bytes::from_static(bytes),
                format: ImageFormat::Jpeg,
            },
            mode: RecognitionMode::Photo,
            account: account.map(str::to_owned),
        }
    }

    fn cache(config: &CacheConfig) -> ResultCache {
        ResultCache::new(config, Metrics::disabled()).expect("random key")
    }

    fn answer() -> Answer<BankCard> {
        Answer {
            value: BankCard::new(CardNumber::parse("6222020200112345678").expect("digits")),
            provider: "local",
            escalations: Vec::new(),
        }
    }

    #[test]
    fn keys_differ_by_image_account_and_provider_and_by_process() {
        let one = cache(&CacheConfig::default());
        let key = |request: &BankCardRequest, provider| one.key(request, provider);
        let photo = upload(b"photo", None);
        assert_eq!(key(&photo, None), key(&upload(b"photo", None), None));
        assert_ne!(key(&photo, None), key(&upload(b"photo2", None), None));
        assert_ne!(
            key(&photo, None),
            key(&upload(b"photo", Some("shop")), None)
        );
        assert_ne!(key(&photo, None), key(&photo, Some("local")));
        let mut scan = upload(b"photo", None);
        scan.mode = RecognitionMode::Scan;
        assert_ne!(key(&photo, None), key(&scan, None));
        // Another process draws another key: a hash seen in one says nothing in the other.
        let other = cache(&CacheConfig::default());
        assert_ne!(key(&photo, None), other.key(&photo, None));
    }

    #[test]
    fn urls_and_a_cache_turned_off_keep_nothing() {
        let on = cache(&CacheConfig::default());
        let url = BankCardRequest {
            image: ImageSource::Url("https://example.com/card.jpg".parse().expect("url")),
            mode: RecognitionMode::Photo,
            account: None,
        };
        assert_eq!(on.key(&url, None), None);
        let off = cache(&CacheConfig {
            ttl: Duration::ZERO,
            ..CacheConfig::default()
        });
        assert_eq!(off.key(&upload(b"photo", None), None), None);
    }

    #[tokio::test]
    async fn an_answer_is_kept_and_an_error_is_not() {
        let cache = cache(&CacheConfig::default());
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let key = cache.key(&upload(b"photo", None), None);
        let failing = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(RouteError::Provider(ProviderError::new(
                "local",
                ErrorKind::NotFound,
                "no card",
            )))
        };
        for _ in 0..2 {
            let (result, outcome) = cache.answer(key, failing).await;
            assert!(result.is_err());
            assert_eq!(outcome, Outcome::Miss);
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);

        let answering = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(answer())
        };
        let (_, first) = cache.answer(key, answering).await;
        let (again, second) = cache.answer(key, answering).await;
        assert_eq!((first, second), (Outcome::Miss, Outcome::Hit));
        assert_eq!(again.expect("kept").value.number, answer().value.number);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_answer_kept_for_want_of_a_better_one_is_not_kept_for_the_next_call() {
        let cache = cache(&CacheConfig::default());
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let key = cache.key(&upload(b"photo", None), None);
        let doubtful = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut answer = answer();
            answer.value.warn(ImageWarning::LowConfidence);
            Ok(answer)
        };
        for _ in 0..2 {
            let (result, outcome) = cache.answer(key, doubtful).await;
            assert!(
                result
                    .expect("answered")
                    .value
                    .warnings
                    .contains(&ImageWarning::LowConfidence)
            );
            assert_eq!(outcome, Outcome::Miss);
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_cache_that_is_on_must_hold_something() {
        assert!(CacheConfig::default().check().is_ok());
        let empty = CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        };
        assert!(empty.check().is_err());
        let off = CacheConfig {
            ttl: Duration::ZERO,
            ..empty
        };
        assert!(off.check().is_ok());
    }
}
