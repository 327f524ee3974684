//! Retries with backoff inside the call's deadline: a layer around every provider that declares
//! a policy (`Built::retries`). It reads only the error's `retryable` flag, never a vendor's
//! codes: the adapter's classifier has already said which of them are worth another try.

use std::{future::Future, sync::Arc, time::Duration};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};

use crate::provider::{
    BankCard, BankCardRecognizer, BankCardRequest, CallContext, InvoiceTitle, InvoiceTitleParser,
    InvoiceTitleRequest, ProviderError,
};

/// How a provider backs off: `retries` more tries at most, the first after about `first` (it
/// doubles each time, with jitter, up to eight times `first`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    backoff: ExponentialBuilder,
}

impl RetryPolicy {
    pub fn new(retries: usize, first: Duration) -> Self {
        Self {
            backoff: ExponentialBuilder::default()
                .with_min_delay(first)
                .with_max_delay(first * 8)
                .with_max_times(retries)
                .with_jitter(),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the next backoff would pass the call's
    /// deadline; counts retries on the current span's `provider.retries`.
    async fn run<T, Fut>(
        &self,
        call: &CallContext,
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T, ProviderError>
    where
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut backoff = self.backoff.build();
        let mut retries = 0_u32;
        loop {
            let err = match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) if err.retryable => err,
                Err(err) => return Err(err),
            };
            match backoff.next() {
                Some(delay) if call.remaining().is_none_or(|left| left > delay) => {
                    tracing::info!(provider = err.provider, error = %err, ?delay, "vendor call failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(err),
            }
            retries += 1;
            tracing::Span::current().record("provider.retries", retries);
        }
    }
}

/// A provider's service whose transient failures are tried again.
pub(super) struct Retried<P: ?Sized> {
    pub(super) inner: Arc<P>,
    pub(super) policy: RetryPolicy,
}

#[async_trait]
impl BankCardRecognizer for Retried<dyn BankCardRecognizer> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn recognize_bank_card(
        &self,
        request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError> {
        // A clone shares the image's bytes.
        self.policy
            .run(call, || {
                self.inner.recognize_bank_card(request.clone(), call)
            })
            .await
    }
}

#[async_trait]
impl InvoiceTitleParser for Retried<dyn InvoiceTitleParser> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn parse_invoice_title(
        &self,
        request: InvoiceTitleRequest,
        call: &CallContext,
    ) -> Result<InvoiceTitle, ProviderError> {
        self.policy
            .run(call, || {
                self.inner.parse_invoice_title(request.clone(), call)
            })
            .await
    }
}
