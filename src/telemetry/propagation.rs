//! W3C trace context in and out: from incoming gRPC metadata, into outgoing HTTP requests.

use opentelemetry::{Context, global};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The remote parent a client sent in `traceparent` / `tracestate`, if any.
pub fn extract(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// `traceparent` / `tracestate` headers naming `span` as the parent of whatever they reach. When
/// `span` is not built (with no exporter only the server span is), the nearest span that is, the
/// current one, stands for it.
pub fn inject(span: &tracing::Span) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    let context = if span.is_disabled() {
        tracing::Span::current().context()
    } else {
        span.context()
    };
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(&mut headers));
    });
    headers
}
