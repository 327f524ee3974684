//! The container image, run as the Helm chart runs it. `scripts/check-image.sh` builds the image
//! and runs this test with `OCRGATE_TEST_IMAGE` naming it; a plain `cargo test` leaves it out
//! (ignored), as it needs the image and podman.
//!
//! The chart is rendered with `helm/ocrgate/ci/image-values.yaml` and its Deployment's pod is run
//! with podman as a kubelet runs it: the pod's user and group, a read-only root, every capability
//! dropped, no privilege escalation, the memory limit, the environment (field references and
//! `$(VAR)` expanded), the arguments, and the ConfigMap and Secrets mounted read-only as files
//! owned by root and the pod's fsGroup, on the host's network. Then, from outside, as a client:
//! health, `/metrics`, a card photo read by the local provider inside the image, a title through
//! the simulator, and SIGTERM with calls in flight.

mod common;

use std::{
    collections::{BTreeMap, HashMap},
    net::{SocketAddr, TcpListener},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use common::{APP_ID, APP_SECRET, key_hash, ordinary_cards, sample, tool, upload, with_key};
use ocrgate::api::pb::{self, ocr_service_client::OcrServiceClient};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use vendor_sim::{Endpoint, Fault, SimConfig, Simulator};

/// The caller the test adds in the Secret the values name (`auth.callersSecret`).
const CALLERS_SECRET: &str = "ocrgate-callers";
const API_KEY: &str = "image-check-api-key-0123456789";
const SCAN_TEXT: &str =
    "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?action=list_auth&invoice_key=image";
const POD_NAME: &str = "ocrgate-image-check";
const NAMESPACE: &str = "ocrgate";

#[tokio::test]
#[ignore = "needs the image and podman: run by scripts/check-image.sh"]
async fn the_image_serves_as_the_chart_runs_it_and_drains_on_sigterm() {
    let image = std::env::var("OCRGATE_TEST_IMAGE")
        .expect("OCRGATE_TEST_IMAGE names the image to check (scripts/check-image.sh sets it)");
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim.add_invoice_title(
        SCAN_TEXT,
        serde_json::json!({"title_type": 1, "title": "张三"}),
    );
    let (grpc, metrics) = (free_port(), free_port());
    let manifests = render(&image, &sim, grpc, metrics);
    let pod = ChartPod::from_manifests(&manifests);
    pod.expect_image_user(&image);

    let mounts = tempfile::tempdir().expect("a folder for the mounted volumes");
    let started = Instant::now();
    let mut running = pod.run(&image, mounts.path());
    running.wait_until_listening().await;
    let address = SocketAddr::from(([127, 0, 0, 1], grpc));
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connects to the container");
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health answers")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    let to_serving = started.elapsed();
    let idle_rss = running.rss_bytes();

    let metrics_page = format!("http://127.0.0.1:{metrics}/metrics");
    let page = reqwest::get(&metrics_page).await.expect("/metrics answers");
    assert_eq!(page.status(), 200);
    assert!(
        page.text().await.expect("a page").contains("ocrgate_"),
        "/metrics carries the gateway's metrics"
    );

    let mut client = OcrServiceClient::new(channel);
    let cards = ordinary_cards(9000, 3);
    let read = client
        .recognize_bank_card(with_key(upload(cards[0].jpeg.clone()), API_KEY))
        .await
        .unwrap_or_else(|status| panic!("the card was not read in the image: {status:?}"))
        .into_inner();
    assert_eq!(read.card_number, cards[0].number);
    assert_eq!(
        read.provider, "local",
        "read by the models inside the image"
    );
    let title = client
        .parse_invoice_title(with_key(
            pb::ParseInvoiceTitleRequest {
                scan_text: SCAN_TEXT.into(),
                ..Default::default()
            },
            API_KEY,
        ))
        .await
        .expect("the title comes back from the simulator")
        .into_inner();
    assert_eq!(title.title, "张三");
    let refused = client
        .parse_invoice_title(pb::ParseInvoiceTitleRequest {
            scan_text: SCAN_TEXT.into(),
            ..Default::default()
        })
        .await
        .expect_err("no API key, and the chart serves configured callers only");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let busy_rss = running.rss_bytes();

    // SIGTERM with calls in flight: titles the simulator holds, and card reads queued at the
    // local provider. Every one is answered, and the process exits 0.
    const HELD: usize = 3;
    sim.inject(Endpoint::ScanTitle, Fault::Hold, HELD);
    let mut in_flight = Vec::new();
    for _ in 0..HELD {
        let mut client = client.clone();
        in_flight.push(tokio::spawn(async move {
            let title = client
                .parse_invoice_title(with_key(
                    pb::ParseInvoiceTitleRequest {
                        scan_text: SCAN_TEXT.into(),
                        ..Default::default()
                    },
                    API_KEY,
                ))
                .await?
                .into_inner();
            Ok::<_, tonic::Status>(title.title)
        }));
    }
    sim.wait_for_requests(Endpoint::ScanTitle, 1 + HELD).await;
    for card in &cards[1..] {
        let mut client = client.clone();
        let (number, jpeg) = (card.number.clone(), card.jpeg.clone());
        in_flight.push(tokio::spawn(async move {
            let read = client
                .recognize_bank_card(with_key(upload(jpeg), API_KEY))
                .await?
                .into_inner();
            assert_eq!(read.card_number, number);
            Ok(read.provider)
        }));
    }
    // Every card read has reached the gateway (the first one, read above, and these).
    wait_for_calls(&metrics_page, "RecognizeBankCard", cards.len()).await;

    running.terminate();
    let ready = format!("http://127.0.0.1:{metrics}/readyz");
    wait_for_status(&ready, 503).await;
    sim.release_held(HELD);
    for call in in_flight {
        call.await
            .expect("task")
            .expect("a call in flight at SIGTERM is answered");
    }
    let (code, logs) = running.wait().await;
    assert_eq!(
        code,
        0,
        "the container exited with {code} after SIGTERM; its last log lines:\n{}",
        tail(&logs)
    );

    println!(
        "image check: SERVING {} ms after `podman run`; RSS {:.1} MiB idle, {:.1} MiB after a card \
         read and a title",
        to_serving.as_millis(),
        mib(idle_rss),
        mib(busy_rss)
    );
}

/// A port free on loopback now (the container takes it on the host's network).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The chart rendered with the image check's values, as a list of manifests, with the callers
/// Secret the values name added.
fn render(image: &str, sim: &Simulator, grpc: u16, metrics: u16) -> Vec<Value> {
    let helm = tool("helm").expect("helm, from scripts/test.sh");
    let python = tool("python").expect("python with PyYAML, from scripts/test.sh");
    let (repository, tag) = image.rsplit_once(':').expect("the image has a tag");
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rendered = run(Command::new(helm)
        .args([
            "template",
            POD_NAME,
            "helm/ocrgate",
            "--namespace",
            NAMESPACE,
        ])
        .args(["-f", "helm/ocrgate/ci/image-values.yaml"])
        .args(["--set", &format!("image.repository={repository}")])
        .args(["--set", &format!("image.tag={tag}")])
        .args(["--set", &format!("wechat.baseUrl={}", sim.base_url())])
        .args(["--set", &format!("wechat.appId={APP_ID}")])
        .args(["--set", &format!("wechat.appSecret={APP_SECRET}")])
        .args(["--set", &format!("service.grpcPort={grpc}")])
        .args(["--set", &format!("service.metricsPort={metrics}")])
        .current_dir(project));
    let json = run_with_input(
        Command::new(python).args([
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)",
        ]),
        &rendered,
    );
    let mut manifests: Vec<Value> = serde_json::from_slice(&json).expect("the rendering as JSON");
    let callers = format!(
        "[callers.image-check]\napi_key_sha256 = \"{}\"\n",
        key_hash(API_KEY)
    );
    manifests.push(serde_json::json!({
        "kind": "Secret",
        "metadata": {"name": CALLERS_SECRET},
        "data": {"callers.toml": base64::engine::general_purpose::STANDARD.encode(callers)},
    }));
    manifests
}

/// What the kubelet would run of the Deployment's pod.
#[derive(Debug)]
struct ChartPod {
    user: u64,
    group: u64,
    fs_group: u64,
    read_only_root: bool,
    drop_all: bool,
    no_new_privileges: bool,
    memory_limit: Option<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    /// Mount path -> (file name -> (contents, mode)).
    volumes: BTreeMap<String, BTreeMap<String, (Vec<u8>, u32)>>,
}

impl ChartPod {
    fn from_manifests(manifests: &[Value]) -> Self {
        let of_kind = |kind: &'static str| manifests.iter().filter(move |m| m["kind"] == kind);
        let deployment = of_kind("Deployment").next().expect("a Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        let [container] = pod["containers"].as_array().expect("containers").as_slice() else {
            panic!("one container in the pod");
        };
        let security = &container["securityContext"];
        let number = |value: &Value, what: &str| value.as_u64().unwrap_or_else(|| panic!("{what}"));
        let capabilities = &security["capabilities"]["drop"];

        let mut env: Vec<(String, String)> = Vec::new();
        for var in container["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().expect("env name").to_owned();
            let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => POD_NAME.to_owned(),
                Some("metadata.namespace") => NAMESPACE.to_owned(),
                Some(other) => panic!("field reference {other} is not known to the image check"),
                None => expand(var["value"].as_str().expect("env value"), &env),
            };
            env.push((name, value));
        }

        let secret = |name: &str| {
            of_kind("Secret")
                .find(|s| s["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("the Secret {name} the pod mounts"))
        };
        let mut volumes = BTreeMap::new();
        for mount in container["volumeMounts"].as_array().expect("volumeMounts") {
            let name = &mount["name"];
            let volume = pod["volumes"]
                .as_array()
                .and_then(|all| all.iter().find(|v| &v["name"] == name))
                .expect("the mounted volume");
            let files = if let Some(map) = volume["configMap"]["name"].as_str() {
                let map = of_kind("ConfigMap")
                    .find(|m| m["metadata"]["name"] == map)
                    .expect("the ConfigMap the pod mounts");
                let mode = volume["configMap"]["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                entries(&map["data"], &volume["configMap"]["items"], mode, |text| {
                    text.as_bytes().to_vec()
                })
            } else {
                let source = &volume["secret"];
                let data = &secret(source["secretName"].as_str().expect("secretName"))["data"];
                let mode = source["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                entries(data, &source["items"], mode, |text| {
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .expect("base64 Secret data")
                })
            };
            let path = mount["mountPath"].as_str().expect("mountPath").to_owned();
            volumes.insert(path, files);
        }

        Self {
            user: number(&security["runAsUser"], "runAsUser"),
            group: number(&security["runAsGroup"], "runAsGroup"),
            fs_group: number(&pod["securityContext"]["fsGroup"], "fsGroup"),
            read_only_root: security["readOnlyRootFilesystem"] == true,
            drop_all: capabilities
                .as_array()
                .is_some_and(|d| d.contains(&"ALL".into())),
            no_new_privileges: security["allowPrivilegeEscalation"] == false,
            memory_limit: container["resources"]["limits"]["memory"]
                .as_str()
                .map(podman_size),
            env,
            args: container["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|arg| arg.as_str().expect("an argument").to_owned())
                .collect(),
            volumes,
        }
    }

    /// A broken image fails here with a clear message rather than somewhere in the checks.
    fn expect_image_user(&self, image: &str) {
        let user = podman(&["image", "inspect", "--format", "{{.Config.User}}", image]);
        let wanted = format!("{}:{}", self.user, self.group);
        assert_eq!(
            user.trim(),
            wanted,
            "the image {image} runs as user {user:?}, but the chart runs it as {wanted}: files \
             the image's own user can read may be unreadable in the pod"
        );
    }

    fn run(&self, image: &str, mounts: &Path) -> Running {
        let mut args: Vec<String> = ["run", "--rm", "--name", POD_NAME, "--pull", "never"]
            .map(String::from)
            .into();
        args.extend(["--network".into(), "host".into()]);
        args.extend(["--hostname".into(), POD_NAME.into()]);
        args.push(format!("--user={}:{}", self.user, self.group));
        if self.fs_group != self.group {
            args.push(format!("--group-add={}", self.fs_group));
        }
        if self.read_only_root {
            // A pod's read-only root has no writable /tmp either.
            args.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
        }
        if self.drop_all {
            args.push("--cap-drop=ALL".into());
        }
        if self.no_new_privileges {
            args.push("--security-opt=no-new-privileges".into());
        }
        if let Some(limit) = &self.memory_limit {
            args.push(format!("--memory={limit}"));
        }
        for (name, value) in &self.env {
            args.push(format!("--env={name}={value}"));
        }
        for (index, (path, files)) in self.volumes.iter().enumerate() {
            let dir = mounts.join(format!("volume-{index}"));
            std::fs::create_dir(&dir).expect("volume folder");
            for (name, (contents, mode)) in files {
                let file = dir.join(name);
                std::fs::write(&file, contents).expect("mounted file");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode))
                    .expect("file mode");
                std::os::unix::fs::chown(&file, Some(0), Some(self.fs_group as u32))
                    .expect("owned by root and the pod's fsGroup (run as root, as podman is)");
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .expect("folder mode");
            args.push(format!("--volume={}:{path}:ro", dir.display()));
        }
        args.push(image.to_owned());
        args.extend(self.args.iter().cloned());

        let mut child = tokio::process::Command::new("podman")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("podman runs");
        let stderr = child.stderr.take().expect("stderr");
        let (listening, heard) = tokio::sync::oneshot::channel();
        let logs = tokio::spawn(async move {
            let mut listening = Some(listening);
            let mut all = Vec::new();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let entry: Value = serde_json::from_str(&line).unwrap_or_default();
                if entry["message"] == "listening" {
                    listening.take().map(|found| found.send(()));
                }
                all.push(line);
            }
            all
        });
        Running {
            child: Some(child),
            logs: Some(logs),
            listening: Some(heard),
        }
    }
}

/// The files a ConfigMap's or Secret's `data` gives a volume: every key, or only `items`.
fn entries(
    data: &Value,
    items: &Value,
    mode: u32,
    decode: impl Fn(&str) -> Vec<u8>,
) -> BTreeMap<String, (Vec<u8>, u32)> {
    let data = data.as_object().expect("data");
    let value = |key: &str| decode(data[key].as_str().expect("a text value"));
    match items.as_array() {
        Some(items) => items
            .iter()
            .map(|item| {
                let key = item["key"].as_str().expect("key");
                let path = item["path"].as_str().expect("path").to_owned();
                (path, (value(key), mode))
            })
            .collect(),
        None => data
            .keys()
            .map(|key| (key.clone(), (value(key), mode)))
            .collect(),
    }
}

/// `$(NAME)` replaced by an earlier variable's value, as Kubernetes expands `env`.
fn expand(value: &str, env: &[(String, String)]) -> String {
    let known: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')').map(|end| (&after[..end], end)) {
            Some((name, end)) if known.contains_key(name) => {
                out.push_str(known[name]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out + rest
}

/// A Kubernetes quantity (`512Mi`, `1Gi`) as podman takes it (`512m`, `1g`: binary units).
fn podman_size(quantity: &str) -> String {
    for (suffix, unit) in [("Ki", "k"), ("Mi", "m"), ("Gi", "g")] {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return format!("{number}{unit}");
        }
    }
    panic!("memory limit {quantity}: only Ki, Mi and Gi are known to the image check")
}

/// The pod's container, running under `podman run`.
struct Running {
    child: Option<tokio::process::Child>,
    logs: Option<tokio::task::JoinHandle<Vec<String>>>,
    listening: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Running {
    /// Until the gateway logs that it is listening; a container that exits first fails the test
    /// with its last log lines.
    async fn wait_until_listening(&mut self) {
        let heard = self.listening.take().expect("waited once");
        if tokio::time::timeout(Duration::from_secs(60), heard)
            .await
            .is_ok_and(|heard| heard.is_ok())
        {
            return;
        }
        let (code, logs) = self.wait().await;
        panic!(
            "the container exited with {code} before it was listening; its last log lines:\n{}",
            tail(&logs)
        );
    }

    /// The resident memory of the gateway process inside the container.
    fn rss_bytes(&self) -> u64 {
        let pid = podman(&["inspect", "--format", "{{.State.Pid}}", POD_NAME]);
        let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
            .expect("the container's process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kib| kib.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }

    /// SIGTERM, as the kubelet stops a pod.
    fn terminate(&self) {
        podman(&["kill", "--signal", "TERM", POD_NAME]);
    }

    async fn wait(&mut self) -> (i32, Vec<String>) {
        let mut child = self.child.take().expect("waited once");
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("the container exits within 60 s")
            .expect("exit status");
        let logs = self.logs.take().expect("logs").await.expect("log reader");
        (status.code().unwrap_or(-1), logs)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.is_some() {
            Command::new("podman")
                .args(["rm", "--force", "--time", "0", POD_NAME])
                .output()
                .ok();
        }
    }
}

/// Until the gateway has received `n` `method` calls since it started: those in flight and those
/// answered OK.
async fn wait_for_calls(metrics: &str, method: &str, n: usize) {
    let counted = async {
        loop {
            let page = reqwest::get(metrics)
                .await
                .expect("/metrics")
                .text()
                .await
                .expect("page");
            let in_flight = sample(&page, "ocrgate_rpc_in_flight", &[("rpc_method", method)]);
            let answered = sample(
                &page,
                "rpc_server_call_duration_seconds_count",
                &[("rpc_method", method), ("rpc_grpc_status_code", "0")],
            );
            if in_flight.unwrap_or(0.0) + answered.unwrap_or(0.0) >= n as f64 {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), counted)
        .await
        .unwrap_or_else(|_| panic!("the gateway never received {n} {method} calls"));
}

async fn wait_for_status(url: &str, status: u16) {
    let answered = async {
        while reqwest::get(url).await.expect(url).status() != status {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), answered)
        .await
        .unwrap_or_else(|_| panic!("{url} never answered {status}"));
}

fn podman(args: &[&str]) -> String {
    String::from_utf8(run(Command::new("podman").args(args))).expect("utf-8")
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn run_with_input(command: &mut Command, input: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the command runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("input");
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success(), "{command:?} failed");
    output.stdout
}

fn tail(logs: &[String]) -> String {
    logs[logs.len().saturating_sub(20)..].join("\n")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}
