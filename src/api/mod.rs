//! The gRPC edge: validate, call the provider, convert. No business logic lives here.

mod auth;
pub mod codec;
mod convert;
mod deadline;
mod intake;
mod shares;
pub mod status;
mod telemetry;
pub mod validate;

use std::sync::Arc;

use tonic::{Request, Response, Status};

pub use self::{
    auth::{AuthLayer, CallerLabel},
    deadline::{Deadline, DeadlineLayer},
    intake::IntakeLayer,
    telemetry::TelemetryLayer,
};
use crate::{
    auth::{ANONYMOUS, Caller, DEFAULT_ACCOUNT, Rpc},
    enrich::BinTable,
    limits::LimitsConfig,
    provider::{
        BankCard, BankCardRecognizer, CallContext, ErrorKind, InvoiceTitleParser, ProviderError,
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
        let (call, mut audit) = call_context(&request, Rpc::RecognizeBankCard);
        let mut request = request.into_inner();
        audit.account = validate::optional(request.account.clone());
        let provider = validate::optional(std::mem::take(&mut request.provider));
        let result = async {
            let request = validate::bank_card_request(request, self.limits.max_image_bytes())?;
            audit.permit(provider.as_deref())?;
            let route = || {
                let (request, provider) = (&request, provider.as_deref());
                self.bank_cards.call(provider, &call, |service, call| {
                    let request = request.clone();
                    async move { service.recognize_bank_card(request, &call).await }
                })
            };
            let key = self.results.key(&request, provider.as_deref());
            let (card, outcome) = self.results.answer(key, route).await;
            audit.result_cache = Some(outcome);
            tracing::Span::current().record("ocrgate.result_cache", outcome.as_str());
            card.map_err(|err| self.failed("RecognizeBankCard", err))
        }
        .await;
        match result {
            Ok(card) => {
                let span = tracing::Span::current();
                if let Some(confidence) = card.value.confidence {
                    span.record("ocrgate.confidence", f64::from(confidence));
                }
                if !card.escalations.is_empty() {
                    span.record(
                        "ocrgate.escalations",
                        Escalation::describe(&card.escalations),
                    );
                }
                audit.served_card(&card);
                Ok(Response::new(convert::bank_card_response(
                    &card.value,
                    card.provider,
                    &self.bins,
                )))
            }
            Err(status) => Err(audit.failed(status)),
        }
    }

    async fn parse_invoice_title(
        &self,
        request: Request<pb::ParseInvoiceTitleRequest>,
    ) -> Result<Response<pb::ParseInvoiceTitleResponse>, Status> {
        let (call, mut audit) = call_context(&request, Rpc::ParseInvoiceTitle);
        let mut request = request.into_inner();
        audit.account = validate::optional(request.account.clone());
        let provider = validate::optional(std::mem::take(&mut request.provider));
        let result = async {
            let request = validate::invoice_title_request(request)?;
            audit.permit(provider.as_deref())?;
            let title = self
                .invoice_titles
                .call(provider.as_deref(), &call, |provider, call| {
                    let request = request.clone();
                    async move { provider.parse_invoice_title(request, &call).await }
                })
                .await
                .map_err(|err| self.failed("ParseInvoiceTitle", err))?;
            Ok(title)
        }
        .await;
        match result {
            Ok(title) => {
                // Never the title's tax number or bank account: the caller, the call, its cost.
                audit.served(title.provider);
                Ok(Response::new(convert::invoice_title_response(
                    title.value,
                    title.provider,
                )))
            }
            Err(status) => Err(audit.failed(status)),
        }
    }
}

/// The call's deadline, and its audit record: who called, what, and when it started.
fn call_context<T>(request: &Request<T>, rpc: Rpc) -> (CallContext, Audit) {
    let call = CallContext {
        deadline: request.extensions().get::<Deadline>().map(|d| d.0),
        caller: request
            .extensions()
            .get::<CallerLabel>()
            .map(|label| Arc::clone(&label.0)),
    };
    let audit = Audit {
        caller: request.extensions().get::<Arc<Caller>>().cloned(),
        rpc,
        account: None,
        result_cache: None,
        started: tokio::time::Instant::now(),
        deadline: call.deadline,
        written: false,
    };
    (call, audit)
}

/// One line a call in the `ocrgate::audit` log: caller, RPC, provider, account, status, latency,
/// and the card number masked. A call dropped before it was answered is written when its record
/// is dropped: as ended at its deadline once that has passed, else as cancelled by its client
/// (who reset the stream or closed the connection).
struct Audit {
    /// `None` only when the server was built without the auth layer (as some tests build it).
    caller: Option<Arc<Caller>>,
    rpc: Rpc,
    /// The account the request names; `None` bills the default one.
    account: Option<String>,
    /// How the result cache served a bank card call.
    result_cache: Option<Outcome>,
    started: tokio::time::Instant,
    /// When the deadline layer ends the call, dropping it unanswered.
    deadline: Option<tokio::time::Instant>,
    /// Whether the call's line is written.
    written: bool,
}

impl Audit {
    fn caller(&self) -> &str {
        self.caller
            .as_ref()
            .map_or(ANONYMOUS, |caller| caller.name.as_str())
    }

    /// Whether the caller may bill the request's account and name `provider`.
    fn permit(&self, provider: Option<&str>) -> Result<(), Status> {
        match &self.caller {
            Some(caller) => caller
                .may_use(self.account.as_deref(), provider)
                .map_err(|refusal| status::caller_refused(&refusal, &caller.name)),
            None => Ok(()),
        }
    }

    fn account(&self) -> &str {
        self.account.as_deref().unwrap_or(DEFAULT_ACCOUNT)
    }

    fn served(&mut self, provider: &str) {
        self.written = true;
        tracing::info!(
            target: "ocrgate::audit",
            caller = self.caller(),
            rpc = self.rpc.as_str(),
            provider,
            account = self.account(),
            code = ?tonic::Code::Ok,
            latency_ms = self.started.elapsed().as_millis() as u64,
            "call served"
        );
    }

    /// A bank card answered: also its number masked, its confidence, how the result cache
    /// served it and the providers the call was passed on from.
    fn served_card(&mut self, card: &Answer<BankCard>) {
        self.written = true;
        tracing::info!(
            target: "ocrgate::audit",
            caller = self.caller(),
            rpc = self.rpc.as_str(),
            provider = card.provider,
            account = self.account(),
            code = ?tonic::Code::Ok,
            latency_ms = self.started.elapsed().as_millis() as u64,
            card_number = card.value.number.masked(),
            confidence = card.value.confidence,
            result_cache = self.result_cache.map(Outcome::as_str),
            escalations = (!card.escalations.is_empty())
                .then(|| Escalation::describe(&card.escalations)),
            "call served"
        );
    }

    /// The call's line at WARN when the gateway or its vendor failed it, at INFO when the
    /// outcome is the caller's (a bad request, no card, a refusal): the one line a failure has.
    fn failed(&mut self, status: Status) -> Status {
        self.written = true;
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "ocrgate::audit",
                    $level,
                    caller = self.caller(),
                    rpc = self.rpc.as_str(),
                    provider = status_metadata(&status, "provider"),
                    account = self.account(),
                    code = ?status.code(),
                    reason = error_reason(&status),
                    error = status.message(),
                    latency_ms = self.started.elapsed().as_millis() as u64,
                    "call failed"
                )
            };
        }
        if is_the_gateways_failure(status.code()) {
            line!(tracing::Level::WARN);
        } else {
            line!(tracing::Level::INFO);
        }
        status
    }
}

/// Whether a call that ended with `code` failed for the gateway's or its vendor's reasons, not
/// the caller's.
fn is_the_gateways_failure(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unknown
            | Code::Internal
            | Code::Unavailable
            | Code::DeadlineExceeded
            | Code::FailedPrecondition
            | Code::Unimplemented
            | Code::DataLoss
    )
}

/// The reason of the status's `ErrorInfo`, if it has one.
fn error_reason(status: &Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    Some(status.get_details_error_info()?.reason)
}

impl Drop for Audit {
    fn drop(&mut self) {
        if self.written {
            return;
        }
        let latency_ms = self.started.elapsed().as_millis() as u64;
        if self
            .deadline
            .is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
        {
            tracing::warn!(
                target: "ocrgate::audit",
                caller = self.caller(),
                rpc = self.rpc.as_str(),
                account = self.account(),
                code = ?tonic::Code::DeadlineExceeded,
                latency_ms,
                "call ended at its deadline"
            );
        } else {
            tracing::info!(
                target: "ocrgate::audit",
                caller = self.caller(),
                rpc = self.rpc.as_str(),
                account = self.account(),
                code = ?tonic::Code::Cancelled,
                latency_ms,
                "call cancelled by the client"
            );
        }
    }
}

/// A metadata value of the status's `ErrorInfo`, if it has one.
fn status_metadata(status: &Status, key: &str) -> Option<String> {
    use tonic_types::StatusExt as _;
    status.get_details_error_info()?.metadata.remove(key)
}

impl OcrApi {
    fn failed(&self, method: &'static str, err: RouteError) -> Status {
        match err {
            RouteError::Provider(err) => self.provider_failed(method, &err),
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
