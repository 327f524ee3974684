//! A WeChat server API simulator: `cgi-bin/stable_token`, `cgi-bin/token`, `cv/ocr/bankcard` and
//! `card/invoice/scantitle`, behaving as the real API does, quirks included. Beside it, on the
//! same port, Tencent Cloud's `BankCardOCR` (`POST /`), which checks every TC3-HMAC-SHA256
//! signature byte for byte and refuses stale timestamps.
//!
//! Tests drive it through this library: register apps, cards and titles, inject faults, revoke
//! tokens, then read back what it received. The `wechat-sim` binary serves the same thing for
//! local runs and benchmarks.

mod handlers;
mod state;
mod tencent;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::serve::ListenerExt as _;
use bytes::Bytes;
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use state::State;
pub use state::{Endpoint, Fault, RecordedRequest, ReplyShape, UploadedFile};

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
    state: Arc<State>,
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
        let state = Arc::new(State::new(config));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = handlers::router(state.clone());
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
            state,
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

    /// Registers an app that may fetch tokens.
    pub fn add_app(&self, app_id: &str, secret: &str) {
        self.state.add_app(app_id, secret);
    }

    /// Lets Tencent's `BankCardOCR` accept requests signed with this key. With `token`, the key is
    /// a temporary one and every request must carry that session token in `X-TC-Token`.
    pub fn add_tencent_key(&self, secret_id: &str, secret_key: &str, token: Option<&str>) {
        self.state.add_tencent_key(secret_id, secret_key, token);
    }

    /// Fields every successful `BankCardOCR` reply carries besides `CardNo`, e.g. `ValidDate`,
    /// `WarningCode`, `QualityValue`.
    pub fn set_tencent_extras(&self, extras: Value) {
        self.state
            .set_tencent_extras(extras.as_object().cloned().unwrap_or_default());
    }

    /// Moves the simulated Tencent clock `seconds` ahead of this machine's (negative: behind).
    pub fn set_tencent_clock_offset(&self, seconds: i64) {
        self.state.set_tencent_clock_offset(seconds);
    }

    /// The number `cv/ocr/bankcard` (and Tencent's `BankCardOCR`) returns for exactly these image
    /// bytes.
    pub fn add_card_image(&self, image: impl Into<Bytes>, number: &str) {
        self.state.add_card_image(image.into(), number);
    }

    /// The number `cv/ocr/bankcard` returns for this `img_url`. Unregistered URLs get 101000.
    pub fn add_card_url(&self, url: &str, number: &str) {
        self.state.add_card_url(url, number);
    }

    /// The reply fields `card/invoice/scantitle` returns for this scan text.
    pub fn add_invoice_title(&self, scan_text: &str, title: Value) {
        self.state.add_invoice_title(scan_text, title);
    }

    /// The next `times` requests to `endpoint` meet `fault` instead of (or before) the normal reply.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        self.state.inject(endpoint, fault, times);
    }

    /// How `cv/ocr/bankcard` shapes a successful reply.
    pub fn set_reply_shape(&self, shape: ReplyShape) {
        self.state.set_reply_shape(shape);
    }

    /// Calls to `endpoint` allowed from now on; later ones get the endpoint's quota errcode.
    pub fn set_quota(&self, endpoint: Endpoint, calls: u64) {
        self.state.set_quota(endpoint, calls);
    }

    /// Invalidates every token of `app_id` at once, as a force refresh elsewhere would: calls with
    /// them get 40001 and the next token fetch mints a new one.
    pub fn revoke_tokens(&self, app_id: &str) {
        self.state.revoke_tokens(app_id);
    }

    /// Lets every token of `app_id` expire now: calls with them get 42001.
    pub fn expire_tokens(&self, app_id: &str) {
        self.state.expire_tokens(app_id);
    }

    /// Lets `n` requests held by [`Fault::Hold`] go on.
    pub fn release_held(&self, n: usize) {
        self.state.release_held(n);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// How many requests `endpoint` has received.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.state.count(endpoint)
    }

    /// Every token the simulator has handed out.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.issued_tokens()
    }

    /// Waits until `endpoint` has received at least `n` requests.
    pub async fn wait_for_requests(&self, endpoint: Endpoint, n: usize) {
        self.state.wait_for(endpoint, n).await;
    }

    /// Stops serving and waits until the server is down.
    pub async fn stop(mut self) {
        self.stop.take().map(|stop| stop.send(()));
        self.state.release_all_held();
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
        self.state.release_all_held();
    }
}
