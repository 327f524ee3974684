//! The gRPC edge: validate, call the provider, convert. No business logic lives here.

pub mod codec;
mod convert;
mod deadline;
pub mod status;
mod telemetry;
pub mod validate;

use std::sync::Arc;

use tonic::{Request, Response, Status};

pub use self::{
    deadline::{Deadline, DeadlineLayer},
    telemetry::TelemetryLayer,
};
use crate::{
    enrich::BinTable,
    provider::{BankCardRecognizer, CallContext, ErrorKind, InvoiceTitleParser, ProviderError},
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

/// `ocrgate.v1.OcrService` over the provider traits.
pub struct OcrApi {
    bank_cards: Arc<dyn BankCardRecognizer>,
    invoice_titles: Arc<dyn InvoiceTitleParser>,
    bins: Arc<BinTable>,
    metrics: Metrics,
}

impl OcrApi {
    pub fn new(
        bank_cards: Arc<dyn BankCardRecognizer>,
        invoice_titles: Arc<dyn InvoiceTitleParser>,
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
    }
}

#[tonic::async_trait]
impl pb::ocr_service_server::OcrService for OcrApi {
    async fn recognize_bank_card(
        &self,
        request: Request<pb::RecognizeBankCardRequest>,
    ) -> Result<Response<pb::RecognizeBankCardResponse>, Status> {
        let call = call_context(&request);
        let request = validate::bank_card_request(request.into_inner())?;
        let card = self
            .bank_cards
            .recognize_bank_card(request, &call)
            .await
            .map_err(|err| self.failed("RecognizeBankCard", &err))?;
        tracing::debug!(card_number = %card.number, "bank card recognised");
        Ok(Response::new(convert::bank_card_response(
            &card,
            self.bank_cards.name(),
            &self.bins,
        )))
    }

    async fn parse_invoice_title(
        &self,
        request: Request<pb::ParseInvoiceTitleRequest>,
    ) -> Result<Response<pb::ParseInvoiceTitleResponse>, Status> {
        let call = call_context(&request);
        let request = validate::invoice_title_request(request.into_inner())?;
        let title = self
            .invoice_titles
            .parse_invoice_title(request, &call)
            .await
            .map_err(|err| self.failed("ParseInvoiceTitle", &err))?;
        Ok(Response::new(convert::invoice_title_response(
            title,
            self.invoice_titles.name(),
        )))
    }
}

fn call_context<T>(request: &Request<T>) -> CallContext {
    CallContext {
        deadline: request.extensions().get::<Deadline>().map(|d| d.0),
    }
}

impl OcrApi {
    fn failed(&self, method: &'static str, err: &ProviderError) -> Status {
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
