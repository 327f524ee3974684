//! What the server knows of a client connection, and how the gRPC port's TLS is configured: facts
//! the gRPC layers read and the configuration names, kept below both so neither imports the server.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde::Deserialize;
use tokio::time::Instant;

/// The `[tls]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM CA certificates: when set, every client must present a certificate they signed.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// How often the certificate and key files are checked for a change.
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(10)
}

/// What a connection is doing, shared between its I/O and the calls it carries.
#[derive(Debug)]
pub(crate) struct Activity {
    open_calls: AtomicUsize,
    idle_since: Mutex<Instant>,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            open_calls: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        }
    }

    pub(crate) fn call_started(self: &Arc<Self>) -> OpenCall {
        self.open_calls.fetch_add(1, Ordering::AcqRel);
        OpenCall(Arc::clone(self))
    }

    /// When the connection will have been idle for `timeout`; `None` while a call is open.
    pub(crate) fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.open_calls.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = *self
            .idle_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(since + timeout)
    }
}

/// A call in progress on a connection; the connection is idle again once every one is dropped.
pub(crate) struct OpenCall(Arc<Activity>);

impl Drop for OpenCall {
    fn drop(&mut self) {
        if self.0.open_calls.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self
                .0
                .idle_since
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        }
    }
}

/// What the server knows of a connection, in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Tells this connection from every other the process accepted.
    pub id: u64,
    pub remote: Option<SocketAddr>,
    /// The URI and DNS names of the client's TLS certificate; empty without one.
    pub identities: Arc<[String]>,
    pub(crate) activity: Arc<Activity>,
}
