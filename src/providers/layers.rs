//! What every provider gets, whoever wrote it: its services are wrapped once, as they are built,
//! so an adapter holds only what is its own.
//!
//! - each call to a provider runs in a span named `{provider} {operation}`, marked ERROR with
//!   an event saying why when the call fails, and is timed in `ocrgate.provider.call.duration`
//!   by its outcome;
//! - an upload the provider would not take as it is (see [`Fitting`]) is fitted first, once;
//! - a failure the provider calls retryable is tried again after a backoff, while the deadline
//!   allows, when the provider declares a [`RetryPolicy`](super::RetryPolicy).

use std::{future::Future, sync::Arc, time::Instant};

use async_trait::async_trait;
use tracing::Instrument as _;

use super::{Built, Fitting, images, retry::Retried};
use crate::{
    provider::{
        BankCard, BankCardRecognizer, BankCardRequest, CallContext, ImageSource, InvoiceTitle,
        InvoiceTitleParser, InvoiceTitleRequest, ProviderError,
    },
    telemetry::{Metrics, TRACE_ONLY},
};

impl Built {
    /// Every service wrapped in the layers every provider gets.
    pub(super) fn layered(self, metrics: &Metrics) -> Self {
        let Self {
            bank_card,
            invoice_title,
            fits,
            retries,
        } = self;
        Self {
            bank_card: bank_card.map(|inner| {
                let inner: Arc<dyn BankCardRecognizer> = match retries {
                    Some(policy) => Arc::new(Retried { inner, policy }),
                    None => inner,
                };
                let inner: Arc<dyn BankCardRecognizer> = match fits {
                    Some(fitting) => Arc::new(Fitted { inner, fitting }),
                    None => inner,
                };
                Arc::new(Observed::new(inner, metrics)) as Arc<dyn BankCardRecognizer>
            }),
            invoice_title: invoice_title.map(|inner| {
                let inner: Arc<dyn InvoiceTitleParser> = match retries {
                    Some(policy) => Arc::new(Retried { inner, policy }),
                    None => inner,
                };
                Arc::new(Observed::new(inner, metrics)) as Arc<dyn InvoiceTitleParser>
            }),
            fits,
            retries,
        }
    }
}

/// A bank card service that is sent only uploads it takes: others are fitted first.
struct Fitted {
    inner: Arc<dyn BankCardRecognizer>,
    fitting: Fitting,
}

#[async_trait]
impl BankCardRecognizer for Fitted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn recognize_bank_card(
        &self,
        mut request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError> {
        if let ImageSource::Upload { bytes, format } = request.image {
            let (bytes, format) =
                images::fit(bytes, format, self.fitting.accepts, self.fitting.max_pixels)
                    .await
                    .map_err(|err| err.into_provider_error(self.inner.name()))?;
            request.image = ImageSource::Upload { bytes, format };
        }
        self.inner.recognize_bank_card(request, call).await
    }
}

/// A provider's service, each call in the provider's span and timed.
struct Observed<P: ?Sized> {
    inner: Arc<P>,
    metrics: Metrics,
}

impl<P: ?Sized> Observed<P> {
    fn new(inner: Arc<P>, metrics: &Metrics) -> Self {
        Self {
            inner,
            metrics: metrics.clone(),
        }
    }

    /// Runs `call` in the provider span (`provider.account` and `provider.retries` are recorded
    /// inside it by the adapter and the retry layer), marking the span as failed, with an event
    /// saying why, when the call fails; then records its duration by outcome.
    async fn observe<T>(
        &self,
        provider: &'static str,
        operation: &'static str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let span = tracing::info_span!(
            "provider call",
            otel.name = %format_args!("{provider} {operation}"),
            otel.status_code = tracing::field::Empty,
            provider.name = provider,
            provider.operation = operation,
            provider.account = tracing::field::Empty,
            provider.retries = 0,
        );
        let started = Instant::now();
        let result = call.instrument(span.clone()).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) => {
                span.record("otel.status_code", "ERROR");
                // For the trace only: the call's audit line logs the failure the caller sees.
                span.in_scope(|| {
                    tracing::info!(target: TRACE_ONLY, provider, operation, error = %err, "provider call failed");
                });
                err.kind.config_name()
            }
        };
        self.metrics.provider_call(
            provider,
            operation,
            outcome,
            started.elapsed().as_secs_f64(),
        );
        result
    }
}

#[async_trait]
impl BankCardRecognizer for Observed<dyn BankCardRecognizer> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn recognize_bank_card(
        &self,
        request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError> {
        self.observe(
            self.inner.name(),
            "RecognizeBankCard",
            self.inner.recognize_bank_card(request, call),
        )
        .await
    }
}

#[async_trait]
impl InvoiceTitleParser for Observed<dyn InvoiceTitleParser> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn parse_invoice_title(
        &self,
        request: InvoiceTitleRequest,
        call: &CallContext,
    ) -> Result<InvoiceTitle, ProviderError> {
        self.observe(
            self.inner.name(),
            "ParseInvoiceTitle",
            self.inner.parse_invoice_title(request, call),
        )
        .await
    }
}
