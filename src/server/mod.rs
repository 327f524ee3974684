//! Wiring: providers, the gRPC services, health, reflection and graceful shutdown.

mod connection;
mod tls;

use std::{collections::BTreeMap, future::Future, sync::Arc};

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use self::connection::{Incoming, OpenCallsLayer};
pub use self::tls::{Tls, TlsError};
use crate::{
    admin,
    api::{AuthLayer, DeadlineLayer, IntakeLayer, OcrApi, TelemetryLayer, pb},
    auth::Callers,
    config::Config,
    enrich::BinTable,
    limits::LimitsConfig,
    provider::{BankCardRecognizer, InvoiceTitleParser},
    providers::{BuildError, Built, Capability, Registration},
    result_cache::ResultCache,
    routing::{Policy, Route, Routed, Routes},
    telemetry::{Metrics, Telemetry},
};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the `{name}` provider: {source}")]
    Provider {
        name: &'static str,
        source: BuildError,
    },
    #[error("the `{name}` provider built no service for {capability:?}")]
    NotBuilt {
        name: &'static str,
        capability: Capability,
    },
    #[error("invalid configuration: {0}")]
    Routing(String),
    #[error("invalid configuration: {0}")]
    Limits(String),
    #[error("invalid configuration: {0}")]
    Callers(String),
    #[error("invalid configuration: {0}")]
    Cache(String),
    #[error("could not draw the result cache's key: {0}")]
    Random(#[from] getrandom::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("could not build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("could not read the listener's address: {0}")]
    Io(#[from] std::io::Error),
    #[error("the built-in BIN table is broken: {0}")]
    BinTable(#[from] crate::enrich::BinTableError),
}

/// Where the server listens: gRPC, and the admin HTTP port (metrics, probes).
pub struct Listeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses `config` names.
    pub async fn bind(config: &Config) -> Result<Self, std::io::Error> {
        let bind = |address| async move {
            TcpListener::bind(address).await.map_err(|err| {
                std::io::Error::new(err.kind(), format!("cannot listen on {address}: {err}"))
            })
        };
        Ok(Self {
            grpc: bind(config.listen).await?,
            admin: bind(config.admin_listen).await?,
        })
    }
}

/// A configuration checked as serving needs it, before anything heavy is loaded: what `serve`
/// builds from, and what `check-config` reports.
pub struct Plan {
    pub callers: Callers,
    pub tls: Option<Tls>,
    pub routes: Routes,
    /// Every provider a route uses, in registry order.
    pub providers: Vec<CheckedProvider>,
}

/// A provider a route uses, its section checked.
pub struct CheckedProvider {
    pub registration: &'static Registration,
    /// One line on what it is configured with, never a secret.
    pub summary: String,
    /// Whether it can answer; a provider that cannot fails its calls with FAILED_PRECONDITION.
    pub set_up: bool,
}

/// Checks `config` as serving needs it: limits, cache, callers, TLS files, routes and each routed
/// provider's section. `serve` and `check-config` both start here.
pub fn plan(config: &Config, metrics: &Metrics) -> Result<Plan, ServeError> {
    config.limits.check().map_err(ServeError::Limits)?;
    config.cache.check().map_err(ServeError::Cache)?;
    let callers = Callers::new(
        &config.auth,
        &config.callers,
        &config.store,
        metrics.clone(),
    )
    .map_err(ServeError::Callers)?;
    let tls = config.tls.as_ref().map(Tls::new).transpose()?;
    let routes = config
        .routing
        .resolve(|registration| registration.is_set_up(&config.providers))
        .map_err(ServeError::Routing)?;
    let providers = routes
        .providers()
        .map(|registration| {
            let summary =
                registration
                    .checked(&config.providers)
                    .map_err(|source| ServeError::Provider {
                        name: registration.name,
                        source,
                    })?;
            Ok(CheckedProvider {
                registration,
                summary,
                set_up: registration.is_set_up(&config.providers),
            })
        })
        .collect::<Result<_, ServeError>>()?;
    Ok(Plan {
        callers,
        tls,
        routes,
        providers,
    })
}

/// The providers the routes use, built, and the API over them.
async fn api(
    config: &Config,
    routes: &Routes,
    providers: &[CheckedProvider],
    metrics: &Metrics,
) -> Result<OcrApi, ServeError> {
    let mut built = BTreeMap::new();
    for CheckedProvider {
        registration,
        summary,
        set_up,
    } in providers
    {
        if !set_up {
            tracing::warn!(
                provider = registration.name,
                "a route names the `{}` provider, which is not set up: its calls fail with \
                 FAILED_PRECONDITION until you {}",
                registration.name,
                registration.set_up_hint
            );
        }
        tracing::info!(provider = registration.name, %summary, "provider configured");
        built.insert(
            registration.name,
            registration
                .build_layered(&config.providers, metrics)
                .await
                .map_err(|source| ServeError::Provider {
                    name: registration.name,
                    source,
                })?,
        );
    }
    tracing::info!(
        bank_card = ?routes.bank_card,
        invoice_title = ?routes.invoice_title,
        failover_on = ?config.routing.failover_on,
        escalate_below = config.routing.escalate_below,
        "routes"
    );

    let policy = Policy {
        failover_on: config.routing.failover_on.clone().into(),
        escalate_below: config.routing.escalate_below,
    };
    let bank_card_providers = services(&routes.bank_card, &built, Capability::BankCard, |built| {
        built.bank_card.clone()
    })?;
    let invoice_title_providers = services(
        &routes.invoice_title,
        &built,
        Capability::InvoiceTitle,
        |built| built.invoice_title.clone(),
    )?;
    let bank_card_route = Arc::new(Route::new(
        "RecognizeBankCard",
        bank_card_providers,
        policy.clone(),
        metrics.clone(),
    ));
    let invoice_title_route = Arc::new(Route::new(
        "ParseInvoiceTitle",
        invoice_title_providers,
        policy,
        metrics.clone(),
    ));
    // The layers over the routes: bank card answers are kept for identical uploads.
    let bank_cards: Routed<dyn BankCardRecognizer> = Routed {
        providers: bank_card_route.names(),
        service: Arc::new(ResultCache::new(
            bank_card_route,
            &config.cache,
            metrics.clone(),
        )?),
    };
    let invoice_titles: Routed<dyn InvoiceTitleParser> = Routed {
        providers: invoice_title_route.names(),
        service: invoice_title_route,
    };
    let bins = Arc::new(BinTable::embedded()?);
    tracing::debug!(prefixes = bins.len(), "BIN table loaded");
    Ok(OcrApi::new(
        bank_cards,
        invoice_titles,
        bins,
        metrics.clone(),
        config.limits.clone(),
    ))
}

/// The services of a route's providers, in its order, each taken by `service` from what its
/// provider built.
fn services<P: ?Sized>(
    route: &[&'static str],
    built: &BTreeMap<&'static str, Built>,
    capability: Capability,
    service: impl Fn(&Built) -> Option<Arc<P>>,
) -> Result<Vec<(&'static str, Arc<P>)>, ServeError> {
    route
        .iter()
        .map(|&name| {
            built
                .get(name)
                .and_then(&service)
                .map(|provider| (name, provider))
                .ok_or(ServeError::NotBuilt { name, capability })
        })
        .collect()
}

/// HTTP/2 flow-control windows: a stream's fits the largest message and its framing, so a photo
/// goes in one flight; a connection's fits one such stream, or several smaller ones.
fn windows(limits: &LimitsConfig) -> (u32, u32) {
    let stream = u32::try_from(limits.max_message_bytes() + 64 * 1024).unwrap_or(MAX_WINDOW);
    (
        stream.min(MAX_WINDOW),
        stream.clamp(MIN_CONNECTION_WINDOW, MAX_WINDOW),
    )
}

/// The largest window HTTP/2 allows (2^31 - 1).
const MAX_WINDOW: u32 = (1 << 31) - 1;
/// The least connection window: several ordinary photos at once.
const MIN_CONNECTION_WINDOW: u32 = 8 << 20;
/// Largest header block a client may send: metadata is small, and h2 would otherwise take 16 MiB.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// Serves until `shutdown` completes, then drains: health and `/readyz` turn NOT_SERVING, new
/// connections stop after `drain_delay`, in-flight calls get `shutdown_grace` to finish.
pub async fn serve(
    config: &Config,
    listeners: Listeners,
    telemetry: &Telemetry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let metrics = telemetry.metrics().clone();
    let limits = &config.limits;
    let Plan {
        callers,
        tls,
        routes,
        providers,
    } = plan(config, &metrics)?;
    announce(&callers);
    if let Some(tls) = &tls {
        tls.spawn_reloader();
    }
    let api = api(config, &routes, &providers, &metrics).await?;
    let (mut health, health_service) = tonic_health::server::health_reporter();
    set_serving(&mut health, true).await;
    let (ready, ready_for_admin) = tokio::sync::watch::channel(true);
    let admin = Admin::start(listeners.admin, telemetry, ready_for_admin)?;

    let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
    let address = listeners.grpc.local_addr()?;
    let (stream_window, connection_window) = windows(limits);
    let server = Server::builder()
        // HTTP/2's default 64 KiB windows make a client stop and wait for WINDOW_UPDATEs several
        // times per photo, and 16 uploads on one connection share one window. A stream window
        // fits the largest image; the connection window fits several. What a client sends is
        // taken off the connection at once, against the request memory budget (IntakeLayer).
        .initial_stream_window_size(stream_window)
        .initial_connection_window_size(connection_window)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .layer(OpenCallsLayer)
        .layer(TelemetryLayer::new(metrics.clone()))
        .layer(DeadlineLayer::new(limits.max_call_duration))
        // Who calls is settled before a byte of its request body is taken in.
        .layer(AuthLayer::new(Arc::new(callers)))
        .layer(IntakeLayer::new(limits, metrics.clone()))
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(api.into_server())
        .serve_with_incoming_shutdown(
            Incoming::new(listeners.grpc, tls.map(|tls| tls.acceptor), limits, metrics),
            async {
                stopped.await.ok();
            },
        );
    tokio::pin!(server);
    tracing::info!(%address, "listening");

    tokio::select! {
        result = &mut server => {
            admin.stop().await;
            return Ok(result?);
        }
        () = shutdown => {}
    }
    // Draining: health says NOT_SERVING for `drain_delay` so that load balancers stop sending
    // calls, then the listener closes and the calls in flight get `shutdown_grace` to finish.
    ready.send_replace(false);
    tracing::info!(drain_delay = ?config.drain_delay, "shutting down: health is NOT_SERVING");
    set_serving(&mut health, false).await;
    tokio::time::sleep(config.drain_delay).await;
    stop_accepting.send(()).ok();
    match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!(
            grace = ?config.shutdown_grace,
            "in-flight calls did not finish within the shutdown grace; exiting anyway"
        ),
    }
    admin.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Says who may call: a warning when anyone may.
fn announce(callers: &Callers) {
    let names = callers.names();
    if callers.anonymous_allowed() {
        tracing::warn!(
            callers = ?names,
            "calls without an API key are served (auth.anonymous): any client that reaches the \
             port may use every account and provider"
        );
    } else {
        tracing::info!(callers = ?names, "only configured callers are served");
    }
}

/// The gRPC health of the API and of the server as a whole.
async fn set_serving(health: &mut tonic_health::server::HealthReporter, serving: bool) {
    type Api = pb::ocr_service_server::OcrServiceServer<OcrApi>;
    if serving {
        health.set_serving::<Api>().await;
        health.set_service_status("", ServingStatus::Serving).await;
    } else {
        health.set_not_serving::<Api>().await;
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
    }
}

/// Server reflection of the API, health, and the error details clients decode.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // So reflection clients can decode the ErrorInfo and BadRequest details of errors.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// The admin HTTP port (`/metrics`, `/healthz`, `/readyz`), served until stopped.
struct Admin {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Admin {
    fn start(
        listener: tokio::net::TcpListener,
        telemetry: &Telemetry,
        ready: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Self, ServeError> {
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(
            axum::serve(listener, admin::router(telemetry.registry().clone(), ready))
                .with_graceful_shutdown(async {
                    stopped.await.ok();
                })
                .into_future(),
        );
        tracing::info!(%address, "admin port listening (/metrics, /healthz, /readyz)");
        Ok(Self { stop, task })
    }

    async fn stop(self) {
        self.stop.send(()).ok();
        if let Ok(Err(err)) = self.task.await {
            tracing::warn!(%err, "admin port failed");
        }
    }
}
