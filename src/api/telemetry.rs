//! One span and one duration sample per `OcrService` call, parented to the client's trace.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tokio::time::Instant;
use tower::{Layer, Service};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    auth::Rpc,
    telemetry::{Metrics, SERVER_SPAN, propagation},
};

/// The gRPC service this layer instruments; health checks and reflection pass through untouched.
const SERVICE: &str = "ocrgate.v1.OcrService";

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
        let Some((method, span_name)) = request
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
        let record = CallRecord::start(self.metrics.clone(), method, notes, span.clone());
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
/// them even when it is dropped: who the caller is (set by the auth layer), and whether the
/// client went away before its request was whole (it reset its stream, or its connection went),
/// marked by the intake layer. A call whose client went away is recorded as CANCELLED, whatever
/// status the transport made of the broken body.
#[derive(Debug, Clone, Default)]
pub struct CallNotes(Arc<Notes>);

#[derive(Debug, Default)]
struct Notes {
    caller: std::sync::OnceLock<Arc<str>>,
    client_gone: std::sync::atomic::AtomicBool,
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

/// The method as spans and metrics name it, one of the service's methods or `other` (so a
/// client inventing paths cannot grow the label set), and the server span's name for it.
fn known_method(method: &str) -> (&'static str, &'static str) {
    Rpc::from_method(method).map_or(("other", "ocrgate.v1.OcrService/other"), |rpc| {
        (rpc.as_str(), rpc.full_name())
    })
}

/// Counts a call as in flight until it finishes or is dropped, and records how it ended: its
/// duration sample and its span's status. A call dropped before it finished (its client reset
/// the stream or closed the connection while it was served) is recorded as CANCELLED.
struct CallRecord {
    metrics: Metrics,
    method: &'static str,
    notes: CallNotes,
    span: tracing::Span,
    started: Instant,
    finished: bool,
}

impl CallRecord {
    fn start(
        metrics: Metrics,
        method: &'static str,
        notes: CallNotes,
        span: tracing::Span,
    ) -> Self {
        metrics.rpc_in_flight(method, 1);
        Self {
            metrics,
            method,
            notes,
            span,
            started: Instant::now(),
            finished: false,
        }
    }

    fn finish(mut self, code: i32) {
        self.record(code);
    }

    fn record(&mut self, code: i32) {
        self.finished = true;
        let caller = self.notes.caller();
        self.span.record("rpc.grpc.status_code", code);
        self.span.record("ocrgate.caller", &*caller);
        if code != 0 {
            self.span.record("otel.status_code", "ERROR");
        }
        self.metrics.rpc_finished(
            SERVICE,
            self.method,
            caller,
            code,
            self.started.elapsed().as_secs_f64(),
        );
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if !self.finished {
            self.record(tonic::Code::Cancelled as i32);
        }
        self.metrics.rpc_in_flight(self.method, -1);
    }
}
