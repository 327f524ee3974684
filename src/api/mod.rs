//! The gRPC edge: validate, call the provider, convert. No business logic lives here.

mod audit;
mod auth;
pub mod codec;
mod convert;
mod deadline;
mod intake;
mod shares;
pub mod status;
mod telemetry;
pub mod validate;

use std::{future::Future, sync::Arc};

use tonic::{Request, Response, Status};

use self::telemetry::CallNotes;
pub use self::{
    auth::{AuthLayer, CallerLabel},
    deadline::{Deadline, DeadlineLayer},
    intake::IntakeLayer,
    telemetry::TelemetryLayer,
};
use crate::{
    auth::{Caller, Rpc},
    enrich::BinTable,
    limits::LimitsConfig,
    provider::{
        BankCard, BankCardRecognizer, BankCardRequest, CallContext, ErrorKind, Escalation, Graded,
        InvoiceTitle, InvoiceTitleParser, InvoiceTitleRequest, Provenance, ProviderError,
    },
    qr,
    routing::Routed,
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
    bank_cards: Routed<dyn BankCardRecognizer>,
    invoice_titles: Routed<dyn InvoiceTitleParser>,
    bins: Arc<BinTable>,
    metrics: Metrics,
    limits: LimitsConfig,
}

impl OcrApi {
    pub fn new(
        bank_cards: Routed<dyn BankCardRecognizer>,
        invoice_titles: Routed<dyn InvoiceTitleParser>,
        bins: Arc<BinTable>,
        metrics: Metrics,
        limits: LimitsConfig,
    ) -> Self {
        Self {
            bank_cards,
            invoice_titles,
            bins,
            metrics,
            limits,
        }
    }

    pub fn into_server(self) -> pb::ocr_service_server::OcrServiceServer<Self> {
        let max_message = self.limits.max_message_bytes();
        pb::ocr_service_server::OcrServiceServer::new(self).max_decoding_message_size(max_message)
    }
}

#[tonic::async_trait]
impl pb::ocr_service_server::OcrService for OcrApi {
    async fn recognize_bank_card(
        &self,
        request: Request<pb::RecognizeBankCardRequest>,
    ) -> Result<Response<pb::RecognizeBankCardResponse>, Status> {
        self.serve::<BankCards>(request).await
    }

    async fn parse_invoice_title(
        &self,
        request: Request<pb::ParseInvoiceTitleRequest>,
    ) -> Result<Response<pb::ParseInvoiceTitleResponse>, Status> {
        self.serve::<InvoiceTitles>(request).await
    }
}

impl OcrApi {
    /// The one path every call takes: validate the request, check that the caller may bill its
    /// account and name its provider, ask the capability's service, convert the answer. What the
    /// call's audit line will say is noted on the way; the telemetry layer writes it as the call
    /// ends.
    async fn serve<Op: Operation>(
        &self,
        request: Request<Op::Request>,
    ) -> Result<Response<Op::Response>, Status> {
        let call = CallContext {
            deadline: request.extensions().get::<Deadline>().map(|d| d.0),
            caller: request
                .extensions()
                .get::<CallerLabel>()
                .map(|label| Arc::clone(&label.0)),
            ..CallContext::default()
        };
        let caller = request.extensions().get::<Arc<Caller>>().cloned();
        let notes = request.extensions().get::<CallNotes>().cloned();
        let audit = |note: &dyn Fn(&mut audit::Entry)| {
            if let Some(notes) = &notes {
                notes.audit(note);
            }
        };
        let request = request.into_inner();
        let account = validate::optional(Op::account(&request).to_owned());
        audit(&|entry| entry.account(account.clone()));
        let answered = async {
            let request = Op::validate(self, request, &call).await?;
            let provider = Op::provider(&request);
            if let Some(caller) = &caller {
                caller
                    .may_use(account.as_deref(), provider)
                    .map_err(|refusal| status::caller_refused(&refusal, &caller.name))?;
            }
            if let Some(why) = provider.and_then(|provider| Op::routed(self).refuses(provider)) {
                return Err(status::InvalidRequest::new("provider", why).into());
            }
            Op::ask(self, request, &call)
                .await
                .map_err(|err| self.provider_failed(Op::RPC, &err))
        }
        .await;
        // Served or failed, the call's span says how it went: how the cache served it, the
        // providers it was passed on from.
        let provenance = call.trail.take();
        match answered {
            Ok(answer) => {
                record(&provenance, answer.confidence());
                audit(&|entry| Op::served(&answer, &provenance, entry));
                let provider = provenance.provider.unwrap_or_default();
                Ok(Response::new(Op::respond(self, answer, provider)))
            }
            Err(status) => {
                record(&provenance, None);
                audit(&|entry| entry.failed(&status));
                Err(status)
            }
        }
    }

    fn provider_failed(&self, rpc: Rpc, err: &ProviderError) -> Status {
        if err.kind == ErrorKind::QuotaExhausted {
            self.metrics.quota_exhausted(err.provider, rpc.as_str());
        }
        // The call's audit line says why it failed: one line for one failure.
        status::provider_error(err)
    }
}

/// Records on the call's span how its answer came about.
fn record(provenance: &Provenance, confidence: Option<f32>) {
    let span = tracing::Span::current();
    if let Some(cached) = provenance.cached {
        span.record("ocrgate.result_cache", cached.as_str());
    }
    if let Some(confidence) = confidence {
        span.record("ocrgate.confidence", f64::from(confidence));
    }
    if !provenance.escalations.is_empty() {
        span.record(
            "ocrgate.escalations",
            Escalation::describe(&provenance.escalations),
        );
    }
}

/// One RPC of the service, as [`OcrApi::serve`] serves it.
trait Operation {
    const RPC: Rpc;
    type Request: Send;
    type Response;
    /// The request, validated: what the providers are asked.
    type Validated: Send;
    type Answer: Graded + Send;
    /// What serves the RPC: the layers over its route.
    type Service: ?Sized;

    /// The account the request names, as sent.
    fn account(request: &Self::Request) -> &str;
    /// The request checked, and completed where the gateway reads part of it itself (a title's
    /// QR code from its image), within the call's deadline.
    fn validate(
        api: &OcrApi,
        request: Self::Request,
        call: &CallContext,
    ) -> impl Future<Output = Result<Self::Validated, Status>> + Send;
    /// The provider the request names.
    fn provider(request: &Self::Validated) -> Option<&str>;
    /// The providers that serve this RPC.
    fn routed(api: &OcrApi) -> &Routed<Self::Service>;
    /// Asks the RPC's service.
    fn ask(
        api: &OcrApi,
        request: Self::Validated,
        call: &CallContext,
    ) -> impl Future<Output = Result<Self::Answer, ProviderError>> + Send;
    /// Notes the answer for the audit line.
    fn served(answer: &Self::Answer, provenance: &Provenance, entry: &mut audit::Entry);
    /// The response, `provider` having answered.
    fn respond(api: &OcrApi, answer: Self::Answer, provider: &str) -> Self::Response;
}

/// `RecognizeBankCard`: to the bank card service (the result cache over the route).
struct BankCards;

impl Operation for BankCards {
    const RPC: Rpc = Rpc::RecognizeBankCard;
    type Request = pb::RecognizeBankCardRequest;
    type Response = pb::RecognizeBankCardResponse;
    type Validated = BankCardRequest;
    type Answer = BankCard;
    type Service = dyn BankCardRecognizer;

    fn account(request: &Self::Request) -> &str {
        &request.account
    }

    async fn validate(
        api: &OcrApi,
        request: Self::Request,
        _: &CallContext,
    ) -> Result<Self::Validated, Status> {
        Ok(validate::bank_card_request(
            request,
            api.limits.max_image_bytes(),
        )?)
    }

    fn provider(request: &Self::Validated) -> Option<&str> {
        request.provider.as_deref()
    }

    fn routed(api: &OcrApi) -> &Routed<Self::Service> {
        &api.bank_cards
    }

    async fn ask(
        api: &OcrApi,
        request: Self::Validated,
        call: &CallContext,
    ) -> Result<Self::Answer, ProviderError> {
        api.bank_cards
            .service
            .recognize_bank_card(request, call)
            .await
    }

    fn served(card: &Self::Answer, provenance: &Provenance, entry: &mut audit::Entry) {
        entry.served_card(card, provenance);
    }

    fn respond(api: &OcrApi, card: Self::Answer, provider: &str) -> Self::Response {
        convert::bank_card_response(&card, provider, &api.bins)
    }
}

/// `ParseInvoiceTitle`: to the invoice title service (the route).
struct InvoiceTitles;

impl Operation for InvoiceTitles {
    const RPC: Rpc = Rpc::ParseInvoiceTitle;
    type Request = pb::ParseInvoiceTitleRequest;
    type Response = pb::ParseInvoiceTitleResponse;
    type Validated = InvoiceTitleRequest;
    type Answer = InvoiceTitle;
    type Service = dyn InvoiceTitleParser;

    fn account(request: &Self::Request) -> &str {
        &request.account
    }

    /// A QR image is read here, so that every provider gets the code's text.
    async fn validate(
        api: &OcrApi,
        request: Self::Request,
        call: &CallContext,
    ) -> Result<Self::Validated, Status> {
        match validate::invoice_title_request(request, api.limits.max_image_bytes())? {
            validate::TitleRequest::Ready(request) => Ok(request),
            validate::TitleRequest::QrImage(image, mut request) => {
                request.scan_text = qr::invoice_title_text(image, call.deadline).await?;
                Ok(request)
            }
        }
    }

    fn provider(request: &Self::Validated) -> Option<&str> {
        request.provider.as_deref()
    }

    fn routed(api: &OcrApi) -> &Routed<Self::Service> {
        &api.invoice_titles
    }

    async fn ask(
        api: &OcrApi,
        request: Self::Validated,
        call: &CallContext,
    ) -> Result<Self::Answer, ProviderError> {
        api.invoice_titles
            .service
            .parse_invoice_title(request, call)
            .await
    }

    /// Never the title's tax number or bank account: the caller, the call, its cost.
    fn served(_: &Self::Answer, provenance: &Provenance, entry: &mut audit::Entry) {
        entry.served(provenance);
    }

    fn respond(_: &OcrApi, title: Self::Answer, provider: &str) -> Self::Response {
        convert::invoice_title_response(title, provider)
    }
}
