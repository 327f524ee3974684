//! Logs, traces and metrics.
//!
//! - Logs go through `tracing` to stderr, as text or JSON. A thread of their own writes them, as
//!   many lines a write as are waiting, so a call never waits on the pipe its line goes to.
//! - Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set,
//!   spans are exported over OTLP/gRPC, sampled parent-based (`OTEL_TRACES_SAMPLER`), described by
//!   `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`. Without an endpoint nothing is exported,
//!   but a client's trace context still passes through to the vendor.
//! - Metrics: always kept for the Prometheus `/metrics` page; also pushed over OTLP when an endpoint
//!   (or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is set.

mod metrics;
pub mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource,
    metrics::SdkMeterProvider,
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, SpanExporter},
};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::{FilterExt as _, Targets},
    layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

pub use self::metrics::Metrics;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `ocrgate=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("could not build the OTLP exporter: {0}")]
    Otlp(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("could not build the Prometheus exporter: {0}")]
    Prometheus(#[from] opentelemetry_sdk::error::OTelSdkError),
    #[error("a global subscriber is already installed: {0}")]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// The process's telemetry pipeline. Call [`Telemetry::shutdown`] before exit to flush spans;
/// log lines still waiting are written when it is dropped.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: SdkMeterProvider,
    metrics: Metrics,
    registry: prometheus::Registry,
    /// Set by [`Telemetry::install`]: dropping it writes the lines still queued.
    log_writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

const SERVICE_NAME: &str = "ocrgate";

/// The most log bytes one `write` to stderr carries.
const LOG_BUFFER: usize = 64 * 1024;
/// Log lines that may wait for the writer: a second or two of calls at full rate, a few MiB, when
/// whatever reads stderr falls behind (`tracing-appender`'s default, 128k lines, would hold tens).
const LOG_QUEUE: usize = 16 * 1024;

/// The name of the span of each `OcrService` call, the root of ocrgate's part of a trace.
pub const SERVER_SPAN: &str = "grpc server";

impl Telemetry {
    /// Exporters as the standard `OTEL_*` variables configure them.
    pub fn from_env() -> Result<Self, TelemetryError> {
        let tracer_provider = if otlp_configured("TRACES") {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource())
                    .with_batch_exporter(exporter)
                    .build(),
            )
        } else {
            None
        };
        let otlp_metrics = if otlp_configured("METRICS") {
            Some(
                opentelemetry_otlp::MetricExporter::builder()
                    .with_tonic()
                    .build()?,
            )
        } else {
            None
        };
        Self::build(tracer_provider, otlp_metrics)
    }

    /// Spans go to `exporter` as they end (for tests); metrics only to the Prometheus page.
    pub fn with_span_exporter(
        exporter: impl SpanExporter + 'static,
    ) -> Result<Self, TelemetryError> {
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource())
            .with_simple_exporter(exporter)
            .build();
        Self::build(Some(tracer_provider), None)
    }

    /// No span exporter; metrics only to the Prometheus page.
    pub fn without_exporters() -> Result<Self, TelemetryError> {
        Self::build(None, None)
    }

    fn build(
        tracer_provider: Option<SdkTracerProvider>,
        otlp_metrics: Option<opentelemetry_otlp::MetricExporter>,
    ) -> Result<Self, TelemetryError> {
        let registry = prometheus::Registry::new();
        let prometheus = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()?;
        let mut meters = SdkMeterProvider::builder()
            .with_resource(resource())
            .with_reader(prometheus);
        if let Some(exporter) = otlp_metrics {
            meters = meters.with_periodic_exporter(exporter);
        }
        let meter_provider = meters.build();
        let metrics = Metrics::new(&meter_provider);
        Ok(Self {
            tracer_provider,
            meter_provider,
            metrics,
            registry,
            log_writer: None,
        })
    }

    /// Installs the global `tracing` subscriber (logs, and spans to OpenTelemetry when a tracer
    /// is configured) and the W3C trace-context propagator. `RUST_LOG` overrides `level`.
    pub fn install(&mut self, format: LogFormat, level: &str) -> Result<(), TelemetryError> {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let filter = match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.is_empty() => log_filter(&directives)?,
            _ => log_filter(level)?,
        };
        // A call hands its formatted line to the writer's thread and goes on; the thread writes
        // what has queued up in one `write` and flushes whenever the queue is empty. Not lossy: a
        // full queue holds the callers back rather than dropping audit lines.
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(LOG_QUEUE)
            .lossy(false)
            .thread_name("ocrgate-logs")
            .finish(std::io::BufWriter::with_capacity(
                LOG_BUFFER,
                std::io::stderr(),
            ));
        self.log_writer = Some(guard);
        let logs = tracing_subscriber::fmt::layer().with_writer(writer);
        let logs = match format {
            LogFormat::Text => logs.boxed(),
            LogFormat::Json => logs.json().flatten_event(true).boxed(),
        };
        // A `Vec`, not an `Option`: a `None` layer counts as one that wants every span, so the
        // registry would build spans (h2's and hyper's too) that no layer records.
        // One filter, not three nested ones: nested per-layer filters add their interests up as
        // if they were separate layers, so a callsite one of them never wants and another always
        // does (every h2 trace event) would be asked about on every call.
        let mut layers = vec![
            logs.with_filter(filter.and(logged()).and(events_only()))
                .boxed(),
        ];
        match &self.tracer_provider {
            Some(provider) => layers.push(
                spans()
                    .with_tracer(provider.tracer(SERVICE_NAME))
                    .with_error_records_to_exceptions(true)
                    .with_filter(traced())
                    .boxed(),
            ),
            // No exporter: the no-op tracer records nothing, and only the server span is built,
            // for the client's trace context it carries: `traceparent` still reaches the vendor
            // (`propagation::inject`), and the spans inside a call cost nothing.
            None => layers.push(
                spans()
                    .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
                        metadata.is_span() && metadata.name() == SERVER_SPAN
                    }))
                    .boxed(),
            ),
        }
        tracing_subscriber::registry().with(layers).try_init()?;
        Ok(())
    }

    /// The instruments the server and providers record into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The registry behind the Prometheus `/metrics` page.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// Flushes and stops the exporters.
    pub fn shutdown(&self) {
        if let Some(Err(err)) = self
            .tracer_provider
            .as_ref()
            .map(SdkTracerProvider::shutdown)
        {
            tracing::warn!(%err, "could not flush spans");
        }
        if let Err(err) = self.meter_provider.shutdown() {
            tracing::warn!(%err, "could not flush metrics");
        }
    }
}

/// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` win; `ocrgate` is the default name.
fn resource() -> Resource {
    let builder = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        builder.build()
    } else {
        builder.with_service_name(SERVICE_NAME).build()
    }
}

fn otlp_configured(signal: &str) -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
        format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"),
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The OpenTelemetry layer, doing only what a trace uses: the trace context is read from each
/// span when a request is sent, never made current on entry, and a span's busy and idle times
/// (taken on every poll) are not kept.
fn spans<S>() -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry::trace::noop::NoopTracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_context_activation(false)
        .with_tracked_inactivity(false)
}

/// What a trace holds: ocrgate's spans and the events in them, but not the audit line, whose
/// facts the server span already carries as attributes.
fn traced() -> Targets {
    Targets::new()
        .with_target("ocrgate", LevelFilter::INFO)
        .with_target("ocrgate::audit", LevelFilter::OFF)
}

/// Logs are events: each line carries its own fields, and the spans around it are left to traces.
/// A log layer that saw spans would format every span's fields as it opens and at every `record`,
/// for each call, whether or not a line is ever written inside it: a third of a call's CPU.
fn events_only() -> tracing_subscriber::filter::FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    tracing_subscriber::filter::filter_fn(|metadata| metadata.is_event())
}

/// What never reaches a log, whatever the filter asks for: HTTP/2 frame logs below INFO (they
/// print request paths, and an outgoing path carries the access token in its query), and events
/// meant for traces only.
fn logged() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("h2", LevelFilter::INFO)
        .with_target(TRACE_ONLY, LevelFilter::OFF)
}

/// The target of events that belong in a trace but not in the logs: a span's reason for failing,
/// which the call's audit line already logs.
pub const TRACE_ONLY: &str = "ocrgate::trace";

/// The log filter `directives` ask for, with ONNX Runtime kept at WARN (it logs every arena
/// allocation at INFO) unless a directive names the `ort` target itself: a later directive for the
/// same target replaces an earlier one.
fn log_filter(directives: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    EnvFilter::try_new(format!("ort=warn,{directives}"))
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::log_filter;

    /// Whether `directives` let an INFO event of `target` through.
    fn logs_info(directives: &str, target: &str) -> bool {
        let subscriber =
            tracing_subscriber::registry().with(log_filter(directives).expect("filter"));
        tracing::subscriber::with_default(subscriber, || match target {
            "ort::logging" => tracing::enabled!(target: "ort::logging", Level::INFO),
            "ocrgate" => tracing::enabled!(target: "ocrgate", Level::INFO),
            other => panic!("no call site for {other}"),
        })
    }

    #[test]
    fn onnx_runtime_is_quiet_at_info_unless_a_directive_names_it() {
        assert!(logs_info("info", "ocrgate"));
        assert!(!logs_info("info", "ort::logging"));
        // `transport` holds the letters `ort`, but names another target.
        assert!(!logs_info("info,tonic::transport=debug", "ort::logging"));
        assert!(logs_info("info,ort=info", "ort::logging"));
        assert!(logs_info("warn,ort::logging=debug", "ort::logging"));
    }
}
