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
        BankCard, BankCardRecognizer, BankCardRequest, CallContext, ErrorKind, InvoiceTitle,
        InvoiceTitleParser, InvoiceTitleRequest, ProviderError,
    },
    result_cache::{Outcome, ResultCache},
    routing::{Answer, Escalation, Route, RouteError},
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
    /// Bank card answers kept for identical uploads.
    results: ResultCache,
    bins: Arc<BinTable>,
    metrics: Metrics,
    limits: LimitsConfig,
}

impl OcrApi {
    pub fn new(
        bank_cards: Route<dyn BankCardRecognizer>,
        invoice_titles: Route<dyn InvoiceTitleParser>,
        results: ResultCache,
        bins: Arc<BinTable>,
        metrics: Metrics,
        limits: LimitsConfig,
    ) -> Self {
        Self {
            bank_cards,
            invoice_titles,
            results,
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
    /// account and name its provider, ask the route, convert the answer. What the call's audit
    /// line will say is noted on the way; the telemetry layer writes it as the call ends.
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
        };
        let caller = request.extensions().get::<Arc<Caller>>().cloned();
        let notes = request.extensions().get::<CallNotes>().cloned();
        let audit = |note: &dyn Fn(&mut audit::Entry)| {
            if let Some(notes) = &notes {
                notes.audit(note);
            }
        };
        let mut request = request.into_inner();
        let account = validate::optional(Op::account(&request).to_owned());
        let provider = validate::optional(Op::take_provider(&mut request));
        audit(&|entry| entry.account(account.clone()));
        let answered = async {
            let request = Op::validate(self, request)?;
            if let Some(caller) = &caller {
                caller
                    .may_use(account.as_deref(), provider.as_deref())
                    .map_err(|refusal| status::caller_refused(&refusal, &caller.name))?;
            }
            Op::answer(self, request, provider.as_deref(), &call)
                .await
                .map_err(|err| self.failed(Op::RPC, err))
        }
        .await;
        match answered {
            Ok(answer) => {
                audit(&|entry| Op::served(&answer, entry));
                Ok(Response::new(Op::respond(self, answer)))
            }
            Err(status) => {
                audit(&|entry| entry.failed(&status));
                Err(status)
            }
        }
    }
}

/// One RPC of the service, as [`OcrApi::serve`] serves it.
trait Operation {
    const RPC: Rpc;
    type Request: Send;
    type Response;
    /// The request, validated: what the providers are asked.
    type Validated: Send;
    type Answer: Send;

    /// The account the request names, as sent.
    fn account(request: &Self::Request) -> &str;
    /// The provider the request names, as sent.
    fn take_provider(request: &mut Self::Request) -> String;
    fn validate(api: &OcrApi, request: Self::Request) -> Result<Self::Validated, Status>;
    /// Asks the route (`provider` when the request names one).
    fn answer(
        api: &OcrApi,
        request: Self::Validated,
        provider: Option<&str>,
        call: &CallContext,
    ) -> impl Future<Output = Result<Self::Answer, RouteError>> + Send;
    /// Notes the answer for the audit line.
    fn served(answer: &Self::Answer, entry: &mut audit::Entry);
    fn respond(api: &OcrApi, answer: Self::Answer) -> Self::Response;
}

/// `RecognizeBankCard`: through the result cache to the bank card route.
struct BankCards;

impl Operation for BankCards {
    const RPC: Rpc = Rpc::RecognizeBankCard;
    type Request = pb::RecognizeBankCardRequest;
    type Response = pb::RecognizeBankCardResponse;
    type Validated = BankCardRequest;
    type Answer = (Answer<BankCard>, Outcome);

    fn account(request: &Self::Request) -> &str {
        &request.account
    }

    fn take_provider(request: &mut Self::Request) -> String {
        std::mem::take(&mut request.provider)
    }

    fn validate(api: &OcrApi, request: Self::Request) -> Result<Self::Validated, Status> {
        Ok(validate::bank_card_request(
            request,
            api.limits.max_image_bytes(),
        )?)
    }

    async fn answer(
        api: &OcrApi,
        request: Self::Validated,
        provider: Option<&str>,
        call: &CallContext,
    ) -> Result<Self::Answer, RouteError> {
        let route = || {
            let request = &request;
            api.bank_cards.call(provider, call, |service, call| {
                let request = request.clone();
                async move { service.recognize_bank_card(request, &call).await }
            })
        };
        let key = api.results.key(&request, provider);
        let (card, outcome) = api.results.answer(key, route).await;
        let span = tracing::Span::current();
        span.record("ocrgate.result_cache", outcome.as_str());
        let card = card?;
        if let Some(confidence) = card.value.confidence {
            span.record("ocrgate.confidence", f64::from(confidence));
        }
        if !card.escalations.is_empty() {
            span.record(
                "ocrgate.escalations",
                Escalation::describe(&card.escalations),
            );
        }
        Ok((card, outcome))
    }

    fn served((card, outcome): &Self::Answer, entry: &mut audit::Entry) {
        entry.served_card(card, *outcome);
    }

    fn respond(api: &OcrApi, (card, _): Self::Answer) -> Self::Response {
        convert::bank_card_response(&card.value, card.provider, &api.bins)
    }
}

/// `ParseInvoiceTitle`: to the invoice title route.
struct InvoiceTitles;

impl Operation for InvoiceTitles {
    const RPC: Rpc = Rpc::ParseInvoiceTitle;
    type Request = pb::ParseInvoiceTitleRequest;
    type Response = pb::ParseInvoiceTitleResponse;
    type Validated = InvoiceTitleRequest;
    type Answer = Answer<InvoiceTitle>;

    fn account(request: &Self::Request) -> &str {
        &request.account
    }

    fn take_provider(request: &mut Self::Request) -> String {
        std::mem::take(&mut request.provider)
    }

    fn validate(_: &OcrApi, request: Self::Request) -> Result<Self::Validated, Status> {
        Ok(validate::invoice_title_request(request)?)
    }

    async fn answer(
        api: &OcrApi,
        request: Self::Validated,
        provider: Option<&str>,
        call: &CallContext,
    ) -> Result<Self::Answer, RouteError> {
        api.invoice_titles
            .call(provider, call, |service, call| {
                let request = request.clone();
                async move { service.parse_invoice_title(request, &call).await }
            })
            .await
    }

    /// Never the title's tax number or bank account: the caller, the call, its cost.
    fn served(title: &Self::Answer, entry: &mut audit::Entry) {
        entry.served(title.provider);
    }

    fn respond(_: &OcrApi, title: Self::Answer) -> Self::Response {
        convert::invoice_title_response(title.value, title.provider)
    }
}

impl OcrApi {
    fn failed(&self, rpc: Rpc, err: RouteError) -> Status {
        match err {
            RouteError::Provider(err) => self.provider_failed(rpc.as_str(), &err),
            unknown @ RouteError::UnknownProvider { .. } => {
                status::InvalidRequest::new("provider", unknown.to_string()).into()
            }
        }
    }

    fn provider_failed(&self, method: &'static str, err: &ProviderError) -> Status {
        if err.kind == ErrorKind::QuotaExhausted {
            self.metrics.quota_exhausted(err.provider, method);
        }
        // The call's audit line says why it failed: one line for one failure.
        status::provider_error(err)
    }
}
