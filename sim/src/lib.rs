//! Simulators of the vendor APIs ocrgate calls, all on one port, one module each:
//! - `wechat`: WeChat's server API (`cgi-bin/stable_token`, `cgi-bin/token`, `cv/ocr/bankcard`,
//!   `card/invoice/scantitle`), behaving as the real API does, quirks included;
//! - `tencent`: Tencent Cloud's `BankCardOCR` (`POST /`), which checks every TC3-HMAC-SHA256
//!   signature byte for byte and refuses stale timestamps.
//!
//! What they share (`shared`): the cards tests show them (any vendor reads a shown photo as its
//! number), injected faults, quotas, held requests and the record of every request. A vendor's
//! module holds its own state, its routes (a [`Vendor`]) and its own controls on [`Simulator`].
//!
//! Tests drive it through this library: register apps, keys, cards and titles, inject faults,
//! revoke tokens, then read back what it received. The `vendor-sim` binary serves the same thing
//! for local runs and benchmarks.

mod shared;
mod tencent;
mod wechat;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit, serve::ListenerExt as _};
use bytes::Bytes;
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use shared::Shared;
pub use shared::{Endpoint, Fault, RecordedRequest, UploadedFile};
pub use wechat::ReplyShape;

/// One simulated vendor API: its own state, and the routes it serves on the simulator's port.
trait Vendor: Send + Sync + Sized + 'static {
    fn new(config: &SimConfig) -> Self;

    /// Its routes, given what every vendor shares.
    fn routes(self: Arc<Self>, shared: Arc<Shared>) -> Router;
}

/// Every simulated vendor.
struct Vendors {
    wechat: Arc<wechat::Wechat>,
    tencent: Arc<tencent::Tencent>,
}

impl Vendors {
    fn new(config: &SimConfig) -> Self {
        Self {
            wechat: Arc::new(Vendor::new(config)),
            tencent: Arc::new(Vendor::new(config)),
        }
    }

    fn router(&self, shared: &Arc<Shared>) -> Router {
        Router::new()
            .merge(self.wechat.clone().routes(shared.clone()))
            .merge(self.tencent.clone().routes(shared.clone()))
            // Room for a 2 MiB WeChat upload with its multipart framing, or Tencent's 7 MB of
            // base64; each endpoint applies its own limit.
            .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
    }
}

/// Settings fixed when the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long a freshly minted token lives (WeChat: 7200 s).
    pub token_lifetime: Duration,
    /// How long a superseded token keeps working (WeChat: about 5 minutes).
    pub token_overlap: Duration,
    /// The card number for any decodable image not registered with [`Simulator::add_card_image`];
    /// `None` answers such images with errcode 101001 (no card found).
    pub default_card_number: Option<String>,
    /// The title for any scan text not registered with [`Simulator::add_invoice_title`].
    pub default_invoice_title: Option<Value>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(7200),
            token_overlap: Duration::from_secs(300),
            default_card_number: None,
            default_invoice_title: None,
        }
    }
}

/// A running simulator. Stops when dropped.
pub struct Simulator {
    address: SocketAddr,
    shared: Arc<Shared>,
    vendors: Vendors,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Starts on an ephemeral loopback port.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::serve(TcpListener::bind("127.0.0.1:0").await?, config).await
    }

    /// Serves on `listener`.
    pub async fn serve(listener: TcpListener, config: SimConfig) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        let vendors = Vendors::new(&config);
        let shared = Arc::new(Shared::new(config));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = vendors.router(&shared);
        let task = tokio::spawn(async move {
            // As a real vendor's front end would: no Nagle delay on small replies.
            let listener = listener.tap_io(|stream| {
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::warn!(%err, "could not set TCP_NODELAY");
                }
            });
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    stopped.await.ok();
                })
                .await;
            if let Err(err) = served {
                tracing::error!(%err, "simulator stopped");
            }
        });
        Ok(Self {
            address,
            shared,
            vendors,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The base URL to configure as ocrgate's `wechat.base_url` and `tencent.endpoint`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// The number every vendor's bank card endpoint returns for exactly these image bytes.
    pub fn add_card_image(&self, image: impl Into<Bytes>, number: &str) {
        self.shared.add_card_image(image.into(), number);
    }

    /// The number every vendor's bank card endpoint returns for this image URL; a vendor answers
    /// an unregistered one as it answers a URL it cannot download.
    pub fn add_card_url(&self, url: &str, number: &str) {
        self.shared.add_card_url(url, number);
    }

    /// The next `times` requests to `endpoint` meet `fault` instead of (or before) the normal reply.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        self.shared.inject(endpoint, fault, times);
    }

    /// Calls to `endpoint` allowed from now on; later ones get the endpoint's quota errcode.
    pub fn set_quota(&self, endpoint: Endpoint, calls: u64) {
        self.shared.set_quota(endpoint, calls);
    }

    /// Lets `n` requests held by [`Fault::Hold`] go on.
    pub fn release_held(&self, n: usize) {
        self.shared.release_held(n);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// How many requests `endpoint` has received.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.shared.count(endpoint)
    }

    /// Waits until `endpoint` has received at least `n` requests.
    pub async fn wait_for_requests(&self, endpoint: Endpoint, n: usize) {
        self.shared.wait_for(endpoint, n).await;
    }

    /// Stops serving and waits until the server is down.
    pub async fn stop(mut self) {
        self.stop.take().map(|stop| stop.send(()));
        self.shared.release_all_held();
        if let Some(task) = self.task.take() {
            task.await.ok();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        self.shared.release_all_held();
    }
}
