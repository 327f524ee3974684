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
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use bytesize::ByteSize;
use hmac::{Hmac, Mac};
use moka::future::Cache;
use serde::Deserialize;
use sha2::Sha256;

use crate::{
    provider::{
        BankCard, BankCardRecognizer, BankCardRequest, Cached, CallContext, ErrorKind, ImageSource,
        ImageWarning, ProviderError, RecognitionMode,
    },
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

/// An answer as it is kept: the card, and the provider that read it.
#[derive(Debug, Clone)]
struct Kept {
    card: BankCard,
    provider: &'static str,
}

/// A bank card service with the answers of the one it wraps kept, by request: the layer over a
/// bank card route.
pub struct ResultCache {
    inner: Arc<dyn BankCardRecognizer>,
    answers: Option<Cache<Key, Kept>>,
    hasher: Hmac<Sha256>,
    metrics: Metrics,
}

impl ResultCache {
    /// `inner`'s answers kept as `config` says.
    pub fn new(
        inner: Arc<dyn BankCardRecognizer>,
        config: &CacheConfig,
        metrics: Metrics,
    ) -> Result<Self, getrandom::Error> {
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
                .weigher(move |_: &Key, kept: &Kept| {
                    u32::try_from(weight(kept).max(least)).unwrap_or(u32::MAX)
                })
                .time_to_live(config.ttl)
                .build()
        });
        Ok(Self {
            inner,
            answers,
            hasher,
            metrics,
        })
    }

    /// The key of `request`, or `None` when it is not kept.
    fn key(&self, request: &BankCardRequest) -> Option<Key> {
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
        field(request.provider.as_deref().unwrap_or_default().as_bytes());
        Some(hasher.finalize().into_bytes().into())
    }

    /// The answer kept for `key`, or else the one `serve` gives, kept for next time; identical
    /// calls at once share one. An answer kept for want of a better one (marked low confidence:
    /// a provider that might have replaced it failed) is shared but not kept, so the same photo
    /// sent again asks again. A call that shared an identical call's deadline running out makes
    /// its own, once.
    async fn answer<F, Fut>(
        &self,
        key: Option<Key>,
        serve: F,
    ) -> (Result<Kept, ProviderError>, Cached)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Kept, ProviderError>>,
    {
        let (Some(answers), Some(key)) = (&self.answers, key) else {
            return (serve().await, Cached::Bypassed);
        };
        if let Some(kept) = answers.get(&key).await {
            return (Ok(kept), Cached::Hit);
        }
        // Set when this call's own `serve` runs: a call that waited on another's shares its result.
        let ran = AtomicBool::new(false);
        let own = async {
            ran.store(true, Ordering::Relaxed);
            match serve().await {
                Ok(kept) if kept.card.warnings.contains(&ImageWarning::LowConfidence) => {
                    Err(NotKept::Doubtful(kept))
                }
                Ok(kept) => Ok(kept),
                Err(err) => Err(NotKept::Failed(err)),
            }
        };
        let entry = answers.entry(key).or_try_insert_with(own).await;
        let own = ran.load(Ordering::Relaxed);
        let outcome = if own { Cached::Miss } else { Cached::Shared };
        match entry {
            Ok(entry) if entry.is_fresh() => (Ok(entry.into_value()), Cached::Miss),
            Ok(entry) => (Ok(entry.into_value()), Cached::Shared),
            Err(not_kept) => match &*not_kept {
                NotKept::Doubtful(kept) => (Ok(kept.clone()), outcome),
                NotKept::Failed(err) if !own && err.kind == ErrorKind::DeadlineExceeded => {
                    (serve().await, Cached::Miss)
                }
                NotKept::Failed(err) => (Err(err.clone()), outcome),
            },
        }
    }
}

#[async_trait]
impl BankCardRecognizer for ResultCache {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// The trail notes how the cache served the call, and, for an answer another call got, the
    /// provider that gave it; the providers that call passed on from are its own, not this one's.
    async fn recognize_bank_card(
        &self,
        request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError> {
        let key = self.key(&request);
        let serve = || async {
            let card = self
                .inner
                .recognize_bank_card(request.clone(), call)
                .await?;
            let provider = call.trail.provider().unwrap_or_else(|| self.inner.name());
            Ok(Kept { card, provider })
        };
        let (result, outcome) = self.answer(key, serve).await;
        self.metrics.result_cache(outcome.as_str());
        call.trail.cached(outcome);
        let kept = result?;
        call.trail.answered(kept.provider);
        Ok(kept.card)
    }
}

/// Why a result is not kept.
enum NotKept {
    /// It failed.
    Failed(ProviderError),
    /// It answered for want of a better answer.
    Doubtful(Kept),
}

/// About what an answer kept takes in memory: the entry, its key, the text it holds and the
/// cache's own bookkeeping for it.
fn weight(kept: &Kept) -> u64 {
    const BOOKKEEPING: usize = 128;
    let card = &kept.card;
    let text = card.number.digits().len()
        + card.card_name.as_ref().map_or(0, String::len)
        + card.bank_name.as_ref().map_or(0, String::len)
        + card.warnings.capacity() * size_of::<ImageWarning>();
    (size_of::<Kept>() + size_of::<Key>() + text + BOOKKEEPING) as u64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;

    use super::*;
    use crate::provider::{CardNumber, ImageFormat};

    fn upload(bytes: &'static [u8], account: Option<&str>) -> BankCardRequest {
        BankCardRequest {
            image: ImageSource::Upload {
                bytes: Bytes::from_static(bytes),
                format: ImageFormat::Jpeg,
            },
            mode: RecognitionMode::Photo,
            account: account.map(str::to_owned),
            provider: None,
        }
    }

    /// A provider that counts its calls and gives each the same reply.
    struct Counting {
        calls: AtomicUsize,
        reply: fn() -> Result<BankCard, ProviderError>,
    }

    #[async_trait]
    impl BankCardRecognizer for Counting {
        fn name(&self) -> &'static str {
            "local"
        }

        async fn recognize_bank_card(
            &self,
            _: BankCardRequest,
            _: &CallContext,
        ) -> Result<BankCard, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            (self.reply)()
        }
    }

    fn counting(reply: fn() -> Result<BankCard, ProviderError>) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            reply,
        })
    }

    fn cache(inner: Arc<dyn BankCardRecognizer>, config: &CacheConfig) -> ResultCache {
        ResultCache::new(inner, config, Metrics::disabled()).expect("random key")
    }

    fn card() -> Result<BankCard, ProviderError> {
        Ok(BankCard::new(
            CardNumber::parse("6222020200112345678").expect("digits"),
        ))
    }

    /// Asks `cache` about `request`: the reply, and how the cache served it.
    async fn ask(
        cache: &ResultCache,
        request: &BankCardRequest,
    ) -> (Result<BankCard, ProviderError>, Option<Cached>) {
        let call = CallContext::default();
        let reply = cache.recognize_bank_card(request.clone(), &call).await;
        (reply, call.trail.take().cached)
    }

    #[test]
    fn keys_differ_by_image_account_and_provider_and_by_process() {
        let one = cache(counting(card), &CacheConfig::default());
        let key = |request: &BankCardRequest| one.key(request);
        let photo = upload(b"photo", None);
        assert_eq!(key(&photo), key(&upload(b"photo", None)));
        assert_ne!(key(&photo), key(&upload(b"photo2", None)));
        assert_ne!(key(&photo), key(&upload(b"photo", Some("shop"))));
        let mut named = photo.clone();
        named.provider = Some("local".into());
        assert_ne!(key(&photo), key(&named));
        let mut scan = upload(b"photo", None);
        scan.mode = RecognitionMode::Scan;
        assert_ne!(key(&photo), key(&scan));
        // Another process draws another key: a hash seen in one says nothing in the other.
        let other = cache(counting(card), &CacheConfig::default());
        assert_ne!(key(&photo), other.key(&photo));
    }

    #[tokio::test]
    async fn urls_and_a_cache_turned_off_keep_nothing() {
        let url = BankCardRequest {
            image: ImageSource::Url("https://example.com/card.jpg".parse().expect("url")),
            mode: RecognitionMode::Photo,
            account: None,
            provider: None,
        };
        let off = CacheConfig {
            ttl: Duration::ZERO,
            ..CacheConfig::default()
        };
        for (request, config) in [(url, CacheConfig::default()), (upload(b"photo", None), off)] {
            let provider = counting(card);
            let cache = cache(provider.clone(), &config);
            for _ in 0..2 {
                let (reply, cached) = ask(&cache, &request).await;
                assert!(reply.is_ok());
                assert_eq!(cached, Some(Cached::Bypassed));
            }
            assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
        }
    }

    #[tokio::test]
    async fn an_answer_is_kept_and_an_error_is_not() {
        let failing = counting(|| Err(ProviderError::new("local", ErrorKind::NotFound, "no card")));
        let photo = upload(b"photo", None);
        let cache_of_failures = cache(failing.clone(), &CacheConfig::default());
        for _ in 0..2 {
            let (reply, cached) = ask(&cache_of_failures, &photo).await;
            assert!(reply.is_err());
            assert_eq!(cached, Some(Cached::Miss));
        }
        assert_eq!(failing.calls.load(Ordering::SeqCst), 2);

        let answering = counting(card);
        let cache = cache(answering.clone(), &CacheConfig::default());
        let call = CallContext::default();
        let first = cache.recognize_bank_card(photo.clone(), &call).await;
        assert_eq!(first.expect("read").number, card().expect("card").number);
        let (again, second) = ask(&cache, &photo).await;
        assert_eq!(
            (call.trail.take().cached, second),
            (Some(Cached::Miss), Some(Cached::Hit))
        );
        assert_eq!(again.expect("kept").number, card().expect("card").number);
        assert_eq!(answering.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_hit_names_the_provider_that_read_the_card() {
        let cache = cache(counting(card), &CacheConfig::default());
        let photo = upload(b"photo", None);
        for _ in 0..2 {
            let call = CallContext::default();
            cache
                .recognize_bank_card(photo.clone(), &call)
                .await
                .expect("read");
            assert_eq!(call.trail.provider(), Some("local"));
        }
    }

    #[tokio::test]
    async fn an_answer_kept_for_want_of_a_better_one_is_not_kept_for_the_next_call() {
        let doubtful = counting(|| {
            let mut card = card()?;
            card.warn(ImageWarning::LowConfidence);
            Ok(card)
        });
        let cache = cache(doubtful.clone(), &CacheConfig::default());
        for _ in 0..2 {
            let (reply, cached) = ask(&cache, &upload(b"photo", None)).await;
            assert!(
                reply
                    .expect("answered")
                    .warnings
                    .contains(&ImageWarning::LowConfidence)
            );
            assert_eq!(cached, Some(Cached::Miss));
        }
        assert_eq!(doubtful.calls.load(Ordering::SeqCst), 2);
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
