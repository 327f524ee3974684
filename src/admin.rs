//! The admin HTTP port: Prometheus metrics and probes for platforms that cannot speak gRPC.

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus::{Encoder as _, TextEncoder};
use tokio::sync::watch;

#[derive(Clone)]
struct Admin {
    registry: prometheus::Registry,
    ready: watch::Receiver<bool>,
}

/// `/metrics`, `/healthz` (the process is up) and `/readyz` (it takes new calls: false while
/// draining).
pub fn router(registry: prometheus::Registry, ready: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Admin { registry, ready })
}

async fn metrics(State(admin): State<Admin>) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&admin.registry.gather(), &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")).into_response(),
    }
}

async fn readyz(State(admin): State<Admin>) -> (StatusCode, &'static str) {
    if *admin.ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    }
}
