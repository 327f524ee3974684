//! Shared by the integration tests: the real server on loopback, the simulator, a real client.
#![allow(
    dead_code,
    clippy::expect_used,
    reason = "test support: a failed expectation is a failed test"
)]

use std::{
    collections::HashMap,
    io::Cursor,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use base64::Engine as _;
use ocrgate::{
    api::pb::{self, ocr_service_client::OcrServiceClient},
    config::Config,
    server::Listeners,
    telemetry::Telemetry,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt as _;
use vendor_sim::{Endpoint, RecordedRequest, SimConfig, Simulator};

pub const APP_ID: &str = "wx-test-app";
pub const APP_SECRET: &str = "s3cr3t-app-secret-value-0123456789";
pub const TENCENT_SECRET_ID: &str = "AKIDtest0123456789abcdefghijklmnop";
pub const TENCENT_SECRET_KEY: &str = "tencent-s3cr3t-key-9876543210zyxw";

/// A gateway serving on loopback in this process, talking to its own simulator.
pub struct Gateway {
    pub sim: Simulator,
    pub address: SocketAddr,
    pub admin_address: SocketAddr,
    pub client: OcrServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// The configuration of a gateway that uses `sim` with the test app as its default account. The
/// local provider is off (its models directory does not exist) unless a test turns it on with
/// [`with_local_models`], and Tencent is not set up unless a test gives it a key with
/// [`with_tencent`].
pub fn config_for(sim: &Simulator) -> Config {
    let mut config = Config::default();
    config.providers.set(
        "local.models_dir",
        std::env::temp_dir().join("ocrgate-tests-have-no-models-here"),
    );
    config.providers.set("wechat.base_url", sim.base_url());
    config.providers.set("wechat.app_id", APP_ID);
    config.providers.set("wechat.app_secret", APP_SECRET);
    // Short backoffs keep the retry tests quick; the policy is the same.
    config.providers.set("wechat.busy_backoff", "10ms");
    // Many tests send one image again and again and count what reaches the vendor: the result
    // cache is off unless a test turns it on (tests/trust.rs does).
    config.cache.ttl = Duration::ZERO;
    config
}

/// Gives `config` the Tencent key the simulators of [`Gateway::start_with`] accept. Without it,
/// Tencent is not set up, so default routes keep to WeChat or the local provider.
pub fn with_tencent(config: &mut Config, sim: &Simulator) {
    config.providers.set("tencent.endpoint", sim.base_url());
    config.providers.set("tencent.secret_id", TENCENT_SECRET_ID);
    config
        .providers
        .set("tencent.secret_key", TENCENT_SECRET_KEY);
    config.providers.set("tencent.retry_backoff", "10ms");
}

/// Where `scripts/fetch-models.sh` puts the local provider's files, if it has run. Without them the
/// tests of the local provider skip, unless `TEST_REQUIRE_TOOLS` is set (as `scripts/test.sh`
/// does): then they fail.
pub fn local_models() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let config = ocrgate::providers::local::LocalConfig {
        models_dir: dir.clone(),
        ..Default::default()
    };
    let missing = config.missing_files();
    if missing.is_empty() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("TEST_REQUIRE_TOOLS").is_none(),
        "the local provider's files are missing ({missing:?}): run scripts/fetch-models.sh"
    );
    eprintln!("skipped: no local models; run scripts/fetch-models.sh");
    None
}

/// The audit lines (target `ocrgate::audit`) among a gateway process's JSON log lines, in order.
pub fn audit_lines(logs: &[String]) -> Vec<serde_json::Value> {
    logs.iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["target"] == "ocrgate::audit")
        .collect()
}

/// A route as the configuration writes it: provider names, first choice first.
pub fn route(providers: &[&str]) -> Option<Vec<String>> {
    Some(providers.iter().map(|name| (*name).to_owned()).collect())
}

/// Points `config` at the local provider's models.
pub fn with_local_models(config: &mut Config, models: &Path) {
    config.providers.set("local.models_dir", models);
}

/// A gateway whose bank card route is WeChat (the simulator), then the local provider.
pub async fn wechat_then_local(models: &Path) -> Gateway {
    Gateway::start_with(SimConfig::default(), |config| {
        config.routing.bank_card = route(&["wechat", "local"]);
        with_local_models(config, models);
    })
    .await
}

/// A simulator started with `sim_config` that knows the test app and the test Tencent key.
pub async fn simulator(sim_config: SimConfig) -> Simulator {
    let sim = Simulator::start(sim_config)
        .await
        .expect("simulator starts");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_tencent_key(TENCENT_SECRET_ID, TENCENT_SECRET_KEY, None);
    sim
}

/// A gateway whose bank cards go to Tencent alone: its simulator, with the test key.
pub async fn tencent_gateway(sim_config: SimConfig) -> Gateway {
    let sim = simulator(sim_config).await;
    let mut config = config_for(&sim);
    with_tencent(&mut config, &sim);
    config.routing.bank_card = route(&["tencent"]);
    Gateway::serve(sim, config).await
}

/// The requests `sim` received at `endpoint`, in order.
pub fn calls(sim: &Simulator, endpoint: Endpoint) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|request| request.endpoint == endpoint)
        .collect()
}

/// The image of each upload Tencent's simulator received, decoded from its `ImageBase64`.
pub fn sent_to_tencent(sim: &Simulator) -> Vec<Vec<u8>> {
    calls(sim, Endpoint::TencentBankCard)
        .into_iter()
        .map(|call| {
            let body = call.json.expect("a JSON body");
            let encoded = body["ImageBase64"].as_str().expect("an upload");
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("valid base64")
        })
        .collect()
}

/// The hex SHA-256 of an API key, as a caller's `api_key_sha256` holds it.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// A caller known by `key`, otherwise with the defaults.
pub fn caller(key: &str) -> ocrgate::auth::CallerConfig {
    ocrgate::auth::CallerConfig {
        api_key_sha256: Some(key_hash(key)),
        identity: None,
        rpcs: None,
        accounts: None,
        providers: Vec::new(),
        rate_per_second: None,
        daily_budget: None,
    }
}

/// `message` as a request from the caller whose API key is `key` (`authorization: Bearer`).
pub fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("metadata"),
    );
    request
}

/// The synthetic card generator, with the fonts `scripts/fetch-fonts.sh` fetched.
pub fn cards() -> ocrgate_cardgen::CardGenerator {
    ocrgate_cardgen::CardGenerator::new(&ocrgate_cardgen::CardGenerator::default_fonts_dir())
        .expect("fonts for the card generator: run scripts/fetch-fonts.sh")
}

/// The first `n` generated cards from `first_seed` on that are not among the deliberately hard ones.
pub fn ordinary_cards(first_seed: u64, n: usize) -> Vec<ocrgate_cardgen::Card> {
    let generator = cards();
    (first_seed..)
        .map(|seed| generator.card(seed))
        .filter(|card| !card.hard)
        .take(n)
        .collect()
}

impl Gateway {
    /// A gateway with the test app registered at a fresh simulator.
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default(), |_| {}).await
    }

    /// A gateway over a simulator started with `sim_config`, its configuration adjusted by `tweak`.
    pub async fn start_with(sim_config: SimConfig, tweak: impl FnOnce(&mut Config)) -> Self {
        let sim = simulator(sim_config).await;
        let mut config = config_for(&sim);
        tweak(&mut config);
        Self::serve(sim, config).await
    }

    /// A gateway with no WeChat account configured at all.
    pub async fn start_without_credentials() -> Self {
        Self::start_with(SimConfig::default(), |config| {
            config.providers.set("wechat.app_id", None::<String>);
            config.providers.set("wechat.app_secret", None::<String>);
        })
        .await
    }

    pub async fn serve(sim: Simulator, config: Config) -> Self {
        let telemetry = Telemetry::without_exporters().expect("telemetry");
        Self::serve_with_telemetry(sim, config, Arc::new(telemetry)).await
    }

    pub async fn serve_with_telemetry(
        sim: Simulator,
        config: Config,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let listeners = Listeners {
            grpc: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            admin: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        };
        let address = listeners.grpc.local_addr().expect("address");
        let admin_address = listeners.admin.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            ocrgate::server::serve(&config, listeners, &telemetry, async {
                stopped.await.ok();
            })
            .await
            .expect("server runs");
        });
        let client = OcrServiceClient::connect(format!("http://{address}"))
            .await
            .expect("client connects");
        Self {
            sim,
            address,
            admin_address,
            client,
            stop: Some(stop),
            task,
        }
    }

    /// GETs a path of the admin port: (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{}{path}", self.admin_address))
            .await
            .expect("admin port answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// Returns once the gateway counts `n` calls of `method` in flight (its own gauge, read from
    /// `/metrics`); fails the test after 10 s.
    pub async fn wait_for_in_flight(&self, method: &str, n: u32) {
        let counted = async {
            loop {
                let (_, page) = self.admin_get("/metrics").await;
                if sample(&page, "ocrgate_rpc_in_flight", &[("rpc_method", method)])
                    == Some(f64::from(n))
                {
                    return;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), counted)
            .await
            .unwrap_or_else(|_| panic!("{n} {method} calls were never in flight at once"));
    }

    /// A client whose transport does not enforce `grpc-timeout` itself: see
    /// [`client_without_local_deadline`].
    pub fn client_without_local_deadline(&self) -> UntimedClient {
        client_without_local_deadline(self.address)
    }

    pub fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("uri")
            .connect_lazy()
    }

    pub async fn recognize(
        &self,
        request: pb::RecognizeBankCardRequest,
    ) -> Result<pb::RecognizeBankCardResponse, Status> {
        self.client
            .clone()
            .recognize_bank_card(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Uploads `card`'s photo and expects an answer, naming the card's seed if there is none.
    pub async fn read_card(&self, card: &ocrgate_cardgen::Card) -> pb::RecognizeBankCardResponse {
        self.recognize(upload(card.jpeg.clone()))
            .await
            .unwrap_or_else(|status| panic!("seed {}: {status:?}", card.seed))
    }

    pub async fn parse_title(
        &self,
        scan_text: &str,
    ) -> Result<pb::ParseInvoiceTitleResponse, Status> {
        self.client
            .clone()
            .parse_invoice_title(pb::ParseInvoiceTitleRequest {
                scan_text: scan_text.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn stop(mut self) {
        self.stop.take().map(|stop| stop.send(()));
        self.task.await.expect("server task ends cleanly");
    }
}

pub fn upload(image: Vec<u8>) -> pb::RecognizeBankCardRequest {
    pb::RecognizeBankCardRequest {
        source: Some(pb::recognize_bank_card_request::Source::Image(image.into())),
        ..Default::default()
    }
}

pub fn by_url(url: &str) -> pb::RecognizeBankCardRequest {
    pb::RecognizeBankCardRequest {
        source: Some(pb::recognize_bank_card_request::Source::ImageUrl(
            url.into(),
        )),
        ..Default::default()
    }
}

/// A real PNG, different for every `seed`.
pub fn png(seed: u8) -> Vec<u8> {
    encode(seed, image::ImageFormat::Png)
}

/// A real JPEG, different for every `seed`.
pub fn jpeg(seed: u8) -> Vec<u8> {
    encode(seed, image::ImageFormat::Jpeg)
}

fn encode(seed: u8, format: image::ImageFormat) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(32, 20, |x, y| {
        image::Rgb([seed, (x * 8) as u8, (y * 12) as u8])
    });
    let mut bytes = Cursor::new(Vec::new());
    picture.write_to(&mut bytes, format).expect("encodes");
    bytes.into_inner()
}

/// The `google.rpc.ErrorInfo` of a status, as (reason, metadata).
/// Expects `status` to carry `code` and the ErrorInfo `reason`.
pub fn assert_reason(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(error_info(status).0, reason, "{status:?}");
}

pub fn error_info(status: &Status) -> (String, HashMap<String, String>) {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, "ocrgate");
    (info.reason, info.metadata)
}

/// The value of the sample `name{labels…}` in a Prometheus text page, all `labels` matching.
pub fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name).then_some((rest, value))
        })
        .find(|(rest, _)| {
            labels
                .iter()
                .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

/// Asserts `status` is INVALID_ARGUMENT naming `field` in its message and its BadRequest detail.
pub fn assert_invalid_field(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with(&format!("{field}: ")),
        "message should name `{field}`: {}",
        status.message()
    );
    let (reason, metadata) = error_info(status);
    assert_eq!(reason, "INVALID_REQUEST");
    assert_eq!(metadata.get("field").map(String::as_str), Some(field));
    let bad_request = status.get_details_bad_request().expect("BadRequest detail");
    assert_eq!(bad_request.field_violations[0].field, field);
}

/// A gRPC client over a plain HTTP/2 connection.
pub type UntimedClient = OcrServiceClient<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
>;

/// A client of the server at `address` whose transport does not enforce `grpc-timeout` itself
/// (tonic's `Channel` does, answering CANCELLED on its own), so tests see the deadline status the
/// server sends.
pub fn client_without_local_deadline(address: SocketAddr) -> UntimedClient {
    let http2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let origin = format!("http://{address}").parse().expect("uri");
    OcrServiceClient::with_origin(http2, origin)
}

/// The `ocrgate` binary running as its own process, configured through the environment only.
pub struct GatewayProcess {
    pub child: tokio::process::Child,
    pub address: SocketAddr,
    pub admin_address: SocketAddr,
    logs: tokio::task::JoinHandle<Vec<String>>,
}

impl GatewayProcess {
    /// Starts `ocrgate serve` with JSON logs against `sim`, plus the extra `env`.
    pub async fn start(sim: &Simulator, env: &[(&str, &str)]) -> Self {
        use tokio::io::{AsyncBufReadExt as _, BufReader};

        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ocrgate"))
            .args(["serve", "--log-format", "json"])
            .env_clear()
            .env("OCRGATE_LISTEN", "127.0.0.1:0")
            .env("OCRGATE_ADMIN_LISTEN", "127.0.0.1:0")
            .env("OCRGATE_WECHAT_APP_ID", APP_ID)
            .env("OCRGATE_WECHAT_APP_SECRET", APP_SECRET)
            .env("OCRGATE_WECHAT_BASE_URL", sim.base_url())
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ocrgate starts");
        let stderr = child.stderr.take().expect("stderr");
        let (found_grpc, grpc) = oneshot::channel();
        let (found_admin, admin) = oneshot::channel();
        let logs = tokio::spawn(async move {
            let (mut found_grpc, mut found_admin) = (Some(found_grpc), Some(found_admin));
            let mut lines = BufReader::new(stderr).lines();
            let mut all = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                let found = match logged_address(&line) {
                    Some(("listening", address)) => found_grpc.take().zip(Some(address)),
                    Some((_, address)) => found_admin.take().zip(Some(address)),
                    None => None,
                };
                if let Some((found, address)) = found {
                    found.send(address).ok();
                }
                all.push(line);
            }
            all
        });
        let admin_address = admin.await.expect("ocrgate logs its admin address");
        let address = grpc.await.expect("ocrgate logs its listening address");
        Self {
            child,
            address,
            admin_address,
            logs,
        }
    }

    pub async fn client(&self) -> OcrServiceClient<Channel> {
        OcrServiceClient::connect(format!("http://{}", self.address))
            .await
            .expect("connects")
    }

    pub fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("uri")
            .connect_lazy()
    }

    pub fn terminate(&self) {
        let pid = self.child.id().expect("running") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM sent");
    }

    /// Sends SIGTERM, expects a clean exit (showing the status and the last log lines if not)
    /// and returns every log line.
    pub async fn stop(self) -> Vec<String> {
        self.terminate();
        let (status, logs) = self.wait().await;
        assert!(
            status.success(),
            "ocrgate exited with {status:?}; its last log lines:\n{}",
            logs[logs.len().saturating_sub(20)..].join("\n")
        );
        logs
    }

    /// Waits for the process to exit by itself and returns its status and every log line.
    pub async fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits within 30 s")
            .expect("exit status");
        let logs = self.logs.await.expect("log reader");
        (status, logs)
    }
}

/// The address in a JSON log line that announces a listener, with its message.
fn logged_address(line: &str) -> Option<(&'static str, SocketAddr)> {
    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
    let message = entry["message"].as_str()?;
    let kind = if message == "listening" {
        "listening"
    } else if message.starts_with("admin port listening") {
        "admin"
    } else {
        return None;
    };
    Some((kind, entry["address"].as_str()?.parse().ok()?))
}

/// A tool `scripts/test.sh` installed in `TEST_TOOLS_BIN`. Without it the test skips, unless
/// `TEST_REQUIRE_TOOLS` is set (as `scripts/test.sh` does): then it fails.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("TEST_TOOLS_BIN")
        .map(|dir| Path::new(&dir).join(name))
        .filter(|path| path.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("TEST_REQUIRE_TOOLS").is_none(),
            "{name} is not installed in TEST_TOOLS_BIN"
        );
        eprintln!("skipped: {name} not installed; run scripts/test.sh");
    }
    found
}
