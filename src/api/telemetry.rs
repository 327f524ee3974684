//! One span and one duration sample per `OcrService` call, parented to the client's trace.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, PoisonError},
    task::{Context, Poll},
};

use http::{Request, Response};
use tokio::time::Instant;
use tower::{Layer, Service};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::audit;
use crate::{
    auth::Rpc,
    telemetry::{Metrics, SERVER_SPAN, propagation},
};

/// The gRPC service this layer instruments; health checks and reflection pass through untouched.
const SERVICE: &str = Rpc::SERVICE;

#[derive(Clone)]
pub struct TelemetryLayer {
    metrics: Metrics,
}

impl TelemetryLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = TelemetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TelemetryService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct TelemetryService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TelemetryService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let Some((rpc, method, span_name)) = request
            .uri()
            .path()
            .strip_prefix(Rpc::PATH_PREFIX)
            .map(known_method)
        else {
            return Box::pin(self.inner.call(request));
        };
        let span = tracing::info_span!(
            SERVER_SPAN,
            otel.name = span_name,
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = SERVICE,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
            ocrgate.caller = Empty,
            ocrgate.result_cache = Empty,
            ocrgate.confidence = Empty,
            ocrgate.escalations = Empty,
        );
        // The parent must be set before the span is first entered.
        if let Err(err) = span.set_parent(propagation::extract(request.headers())) {
            tracing::debug!(%err, "trace context not attached");
        }
        let notes = CallNotes::default();
        request.extensions_mut().insert(notes.clone());
        let record = CallRecord::start(self.metrics.clone(), rpc, method, notes, span.clone());
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let result = response.await;
                // Unary errors travel as trailers-only responses: grpc-status is in the headers.
                let code = match &result {
                    _ if record.notes.client_gone() => tonic::Code::Cancelled as i32,
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok()?.parse().ok())
                        .unwrap_or(0),
                    Err(_) => tonic::Code::Unknown as i32,
                };
                record.finish(code);
                result
            }
            .instrument(span),
        )
    }
}

/// The caller of a call whose response names none (the call failed before it was settled).
static UNKNOWN_CALLER: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| "unknown".into());

/// What the layers under this one learn of a call, kept here so that the call is recorded with
/// them even when it is dropped: who the caller is (set by the auth layer); whether the client
/// went away before its request was whole (it reset its stream, or its connection went), marked
/// by the intake layer; and what its audit line will say (the auth layer's refusal, the
/// handler's answer or failure). A call whose client went away is recorded as CANCELLED,
/// whatever status the transport made of the broken body.
#[derive(Debug, Clone, Default)]
pub struct CallNotes(Arc<Notes>);

#[derive(Debug, Default)]
struct Notes {
    caller: std::sync::OnceLock<Arc<str>>,
    client_gone: std::sync::atomic::AtomicBool,
    audit: std::sync::Mutex<audit::Entry>,
}

impl CallNotes {
    /// Names the caller; the first name set is kept.
    pub fn set_caller(&self, caller: &Arc<str>) {
        let _ = self.0.caller.set(Arc::clone(caller));
    }

    pub fn mark_client_gone(&self) {
        self.0
            .client_gone
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Notes what the call's audit line will say.
    pub(super) fn audit(&self, note: impl FnOnce(&mut audit::Entry)) {
        note(&mut self.0.audit.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn caller(&self) -> Arc<str> {
        self.0
            .caller
            .get()
            .map_or_else(|| UNKNOWN_CALLER.clone(), Arc::clone)
    }

    fn client_gone(&self) -> bool {
        self.0
            .client_gone
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The method, as spans and metrics name it: one of the service's methods or `other` (so a
/// client inventing paths cannot grow the label set), and the server span's name for it.
fn known_method(method: &str) -> (Option<Rpc>, &'static str, &'static str) {
    match Rpc::from_method(method) {
        Some(rpc) => (Some(rpc), rpc.as_str(), rpc.full_name()),
        None => (None, "other", Rpc::OTHER),
    }
}

/// Counts a call as in flight until it finishes or is dropped, and records how it ended: its
/// duration sample, its span's status and its audit line. A call dropped before it finished (its
/// client reset the stream or closed the connection while it was served) is recorded as
/// CANCELLED.
struct CallRecord {
    metrics: Metrics,
    rpc: Option<Rpc>,
    method: &'static str,
    notes: CallNotes,
    span: tracing::Span,
    started: Instant,
    finished: bool,
}

impl CallRecord {
    fn start(
        metrics: Metrics,
        rpc: Option<Rpc>,
        method: &'static str,
        notes: CallNotes,
        span: tracing::Span,
    ) -> Self {
        metrics.rpc_in_flight(method, 1);
        Self {
            metrics,
            rpc,
            method,
            notes,
            span,
            started: Instant::now(),
            finished: false,
        }
    }

    fn finish(mut self, code: i32) {
        self.record(code, false);
    }

    fn record(&mut self, code: i32, dropped: bool) {
        self.finished = true;
        let caller = self.notes.caller();
        let elapsed = self.started.elapsed();
        self.span.record("rpc.grpc.status_code", code);
        self.span.record("ocrgate.caller", &*caller);
        if code != 0 {
            self.span.record("otel.status_code", "ERROR");
        }
        if let Some(rpc) = self.rpc {
            self.notes.audit(|entry| {
                entry.write(
                    &caller,
                    rpc,
                    tonic::Code::from_i32(code),
                    dropped,
                    elapsed.as_millis() as u64,
                );
            });
        }
        self.metrics
            .rpc_finished(SERVICE, self.method, caller, code, elapsed.as_secs_f64());
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if !self.finished {
            self.record(tonic::Code::Cancelled as i32, true);
        }
        self.metrics.rpc_in_flight(self.method, -1);
    }
}
