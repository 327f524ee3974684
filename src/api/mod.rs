//! The gRPC edge: validate, call the provider, convert. No business logic lives here.

pub mod codec;
mod convert;
mod deadline;
mod intake;
pub mod status;
mod telemetry;
pub mod validate;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use self::status::InvalidRequest;
pub use self::{
    deadline::{Deadline, DeadlineLayer},
    intake::IntakeLayer,
    telemetry::TelemetryLayer,
};
use crate::{
    enrich::BinTable,
    provider::{BankCardRecognizer, CallContext, ErrorKind, InvoiceTitleParser, ProviderError},
    routing::{Route, RouteError},
    telemetry::Metrics,
};

/// Code generated from `proto/ocrgate/v1/ocrgate.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("ocrgate.v1");

    /// The encoded descriptors of the API, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/ocrgate_descriptor.bin"));
}

/// `ocrgate.v1.OcrService` over the provider traits, each RPC routed to its providers.
pub struct OcrApi {
    bank_cards: Route<dyn BankCardRecognizer>,
    invoice_titles: Route<dyn InvoiceTitleParser>,
    bins: Arc<BinTable>,
    metrics: Metrics,
}

impl OcrApi {
    pub fn new(
        bank_cards: Route<dyn BankCardRecognizer>,
        invoice_titles: Route<dyn InvoiceTitleParser>,
        bins: Arc<BinTable>,
        metrics: Metrics,
    ) -> Self {
        Self {
            bank_cards,
            invoice_titles,
            bins,
            metrics,
        }
    }

    pub fn into_server(self) -> pb::ocr_service_server::OcrServiceServer<Self> {
        pb::ocr_service_server::OcrServiceServer::new(self)
            .max_decoding_message_size(validate::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl pb::ocr_service_server::OcrService for OcrApi {
    async fn recognize_bank_card(
        &self,
        request: Request<pb::RecognizeBankCardRequest>,
    ) -> Result<Response<pb::RecognizeBankCardResponse>, Status> {
        let call = call_context(&request);
        let mut request = request.into_inner();
        let provider = validate::optional(std::mem::take(&mut request.provider));
        let request = validate::bank_card_request(request)?;
        let card = self
            .bank_cards
            .call(provider.as_deref(), &call, |provider| {
                let request = request.clone();
                async move { provider.recognize_bank_card(request, &call).await }
            })
            .await
            .map_err(|err| self.failed("RecognizeBankCard", err))?;
        tracing::debug!(card_number = %card.value.number, provider = card.provider, "bank card recognised");
        Ok(Response::new(convert::bank_card_response(
            &card.value,
            card.provider,
            &self.bins,
        )))
    }

    async fn parse_invoice_title(
        &self,
        request: Request<pb::ParseInvoiceTitleRequest>,
    ) -> Result<Response<pb::ParseInvoiceTitleResponse>, Status> {
        let call = call_context(&request);
        let mut request = request.into_inner();
        let provider = validate::optional(std::mem::take(&mut request.provider));
        let request = validate::invoice_title_request(request)?;
        let title = self
            .invoice_titles
            .call(provider.as_deref(), &call, |provider| {
                let request = request.clone();
                async move { provider.parse_invoice_title(request, &call).await }
            })
            .await
            .map_err(|err| self.failed("ParseInvoiceTitle", err))?;
        Ok(Response::new(convert::invoice_title_response(
            title.value,
            title.provider,
        )))
    }
}

fn call_context<T>(request: &Request<T>) -> CallContext {
    CallContext {
        deadline: request.extensions().get::<Deadline>().map(|d| d.0),
    }
}

impl OcrApi {
    fn failed(&self, method: &'static str, err: RouteError) -> Status {
        match err {
            RouteError::Provider(err) => self.provider_failed(method, &err),
            unknown @ RouteError::UnknownProvider { .. } => {
                InvalidRequest::new("provider", unknown.to_string()).into()
            }
        }
    }

    fn provider_failed(&self, method: &'static str, err: &ProviderError) -> Status {
        if err.kind == ErrorKind::QuotaExhausted {
            self.metrics.quota_exhausted(err.provider, method);
        }
        let status = status::provider_error(err);
        tracing::warn!(
            method,
            provider = err.provider,
            kind = err.kind.as_str(),
            code = ?status.code(),
            error = %err,
            "call failed"
        );
        status
    }
}
