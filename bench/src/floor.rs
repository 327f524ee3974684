//! The floor: the gateway against `ocrgate-passthrough` (the same API on the same stack with
//! nothing else), both driven by h2load over the same gRPC bodies, side by side in one run.
//!
//! Three servers run at once, pointed at the same simulator: the passthrough, the gateway with
//! its default configuration (anonymous callers), and the gateway serving only an API-key caller
//! (every call sends `authorization: Bearer`). Each round measures every RPC on each of them in
//! turn, so that a drift of the machine touches all three alike.

use std::{path::Path, process::Stdio, time::Duration};

use procfs::process::Process;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use vendor_sim::{Endpoint, Simulator};

use crate::{APP_ID, APP_SECRET, Args, Gateway, SCAN_TEXT, process_of};

/// The key the API-key caller sends.
const API_KEY: &str = "bench-caller-key";
const SERVICE: &str = "/ocrgate.v1.OcrService/";

/// Which server a cell measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Passthrough,
    Gateway,
    GatewayWithKeys,
}

impl Target {
    const ALL: [Self; 3] = [Self::Passthrough, Self::Gateway, Self::GatewayWithKeys];

    fn name(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Gateway => "gateway",
            Self::GatewayWithKeys => "gateway (API key)",
        }
    }
}

/// One h2load run against one server.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    pub rpc: &'static str,
    pub target: Target,
    pub rps: f64,
    /// The server's CPU microseconds per call that reached the vendor, warm-up included.
    pub cpu_us: f64,
    pub failed: u64,
}

/// The measured cells of every round, in order.
pub struct Floor {
    pub concurrency: usize,
    pub cells: Vec<Cell>,
}

impl Floor {
    /// Median over the rounds of `target`'s throughput over the passthrough's, for `rpc`.
    pub fn ratio(&self, rpc: &str, target: Target) -> f64 {
        let of = |wanted: Target| {
            self.cells
                .iter()
                .filter(move |cell| cell.rpc == rpc && cell.target == wanted)
        };
        let mut ratios: Vec<f64> = of(target)
            .zip(of(Target::Passthrough))
            .map(|(cell, floor)| cell.rps / floor.rps.max(f64::MIN_POSITIVE))
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len() / 2).copied().unwrap_or_default()
    }

    /// One headline line per RPC and gateway: its median ratio over the passthrough.
    pub fn print_ratios(&self) {
        for rpc in ["RecognizeBankCard", "ParseInvoiceTitle"] {
            for (target, label) in [
                (Target::Gateway, "gateway"),
                (Target::GatewayWithKeys, "gateway with API keys"),
            ] {
                println!(
                    "ratio throughput {label}/passthrough {rpc} c={}: {:.2}",
                    self.concurrency,
                    self.ratio(rpc, target)
                );
            }
        }
    }

    pub fn failed(&self) -> u64 {
        self.cells.iter().map(|cell| cell.failed).sum()
    }

    pub fn print(&self) {
        println!();
        println!(
            "floor: h2load c={} against the passthrough and the gateway, in turn:",
            self.concurrency
        );
        println!(
            "{:<18} {:<18} | {:>9} {:>8} {:>7} | {:>6}",
            "rpc", "server", "req/s", "cpu us", "ratio", "failed"
        );
        let mut floor = 0.0;
        for cell in &self.cells {
            if cell.target == Target::Passthrough {
                floor = cell.rps;
            }
            println!(
                "{:<18} {:<18} | {:>9.0} {:>8.0} {:>7.2} | {:>6}",
                cell.rpc,
                cell.target.name(),
                cell.rps,
                cell.cpu_us,
                cell.rps / f64::max(floor, f64::MIN_POSITIVE),
                cell.failed
            );
        }
        println!(
            "(cpu: the server process's CPU microseconds per call, user + system; ratio: req/s over \
             the passthrough's in the same round)"
        );
    }
}

/// A server under test: its process, its address and what h2load sends it.
struct Server {
    target: Target,
    process: Process,
    address: String,
    headers: Vec<String>,
    /// Killed when the server is dropped.
    _child: tokio::process::Child,
}

pub async fn measure(args: &Args, sim: &Simulator, card: &[u8]) -> Result<Floor, crate::Error> {
    let mut servers = Vec::new();
    for target in Target::ALL {
        servers.push(start(args, sim, target).await?);
    }
    let bodies = [
        (
            "RecognizeBankCard",
            Endpoint::BankCard,
            grpc_body(&ocrgate::api::pb::RecognizeBankCardRequest {
                source: Some(
                    ocrgate::api::pb::recognize_bank_card_request::Source::Image(
                        card.to_vec().into(),
                    ),
                ),
                ..Default::default()
            }),
        ),
        (
            "ParseInvoiceTitle",
            Endpoint::ScanTitle,
            grpc_body(&ocrgate::api::pb::ParseInvoiceTitleRequest {
                scan_text: SCAN_TEXT.into(),
                ..Default::default()
            }),
        ),
    ];
    let directory = std::env::temp_dir().join(format!("ocrgate-floor-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let mut files = Vec::new();
    for (rpc, endpoint, body) in bodies {
        let file = directory.join(format!("{rpc}.bin"));
        std::fs::write(&file, body)?;
        files.push((rpc, endpoint, file));
    }
    let mut cells = Vec::new();
    for _round in 0..args.floor_rounds {
        for (rpc, endpoint, file) in &files {
            for server in &servers {
                cells.push(run(args, sim, server, rpc, *endpoint, file).await?);
            }
        }
    }
    std::fs::remove_dir_all(&directory).ok();
    Ok(Floor {
        concurrency: args.floor_concurrency,
        cells,
    })
}

/// A gRPC message as it goes on the wire: uncompressed flag, big-endian length, the message.
fn grpc_body(message: &impl prost::Message) -> Vec<u8> {
    let encoded = message.encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(
        &u32::try_from(encoded.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    body.extend_from_slice(&encoded);
    body
}

async fn start(args: &Args, sim: &Simulator, target: Target) -> Result<Server, crate::Error> {
    let mut headers = vec![
        "content-type: application/grpc".to_owned(),
        "te: trailers".to_owned(),
    ];
    match target {
        Target::Passthrough => {
            let binary = args.passthrough()?;
            let mut child = tokio::process::Command::new(&binary)
                .args(["--base-url", &sim.base_url()])
                .args(["--app-id", APP_ID, "--app-secret", APP_SECRET])
                .envs(
                    args.gateway_workers
                        .map(|workers| ("TOKIO_WORKER_THREADS", workers.to_string())),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|err| format!("{}: {err}", binary.display()))?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let line = BufReader::new(stdout)
                .lines()
                .next_line()
                .await?
                .ok_or("the passthrough exited before listening")?;
            let address = line
                .strip_prefix("listening ")
                .ok_or_else(|| format!("the passthrough printed `{line}`"))?
                .to_owned();
            let process = process_of(&child, "the passthrough")?;
            Ok(Server {
                target,
                process,
                address,
                headers,
                _child: child,
            })
        }
        Target::Gateway | Target::GatewayWithKeys => {
            // The default configuration, pointed at the simulator; the result cache is off since
            // every call sends the same image (with it on, no card call would reach the vendor).
            // Logs at the default level, `info`: every call writes its audit line.
            let mut env = vec![
                ("OCRGATE_CACHE__TTL".to_owned(), "0s".to_owned()),
                ("RUST_LOG".to_owned(), "info".to_owned()),
            ];
            if target == Target::GatewayWithKeys {
                let hash = hex::encode(Sha256::digest(API_KEY));
                env.push(("OCRGATE_CALLERS__BENCH__API_KEY_SHA256".to_owned(), hash));
                env.push(("OCRGATE_AUTH__ANONYMOUS".to_owned(), "false".to_owned()));
                headers.push(format!("authorization: Bearer {API_KEY}"));
            }
            let gateway = Gateway::spawn(args, sim, env).await?;
            Ok(Server {
                target,
                process: gateway.process,
                address: gateway.address,
                headers,
                _child: gateway.child,
            })
        }
    }
}

/// One h2load run of `rpc` against `server`, with a warm-up of a fifth of the window.
async fn run(
    args: &Args,
    sim: &Simulator,
    server: &Server,
    rpc: &'static str,
    endpoint: Endpoint,
    body: &Path,
) -> Result<Cell, crate::Error> {
    let window = Duration::from_secs_f64(args.seconds);
    let cpu = || {
        server.process.stat().map_or(0.0, |stat| {
            (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
        })
    };
    let (cpu_before, vendor_before) = (cpu(), sim.count(endpoint));
    let mut command = tokio::process::Command::new(&args.h2load);
    command
        .arg(format!("--clients={}", args.floor_concurrency))
        .arg("--max-concurrent-streams=1")
        .arg(format!("--duration={}ms", window.as_millis()))
        .arg(format!("--warm-up-time={}ms", (window / 5).as_millis()))
        .arg("--data")
        .arg(body);
    for header in &server.headers {
        command.args(["--header", header]);
    }
    let output = command
        .arg(format!("http://{}{SERVICE}{rpc}", server.address))
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|err| {
            format!(
                "{}: {err} (h2load is in Debian's nghttp2-client)",
                args.h2load.display()
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("h2load failed: {stdout}").into());
    }
    let cpu_seconds = cpu() - cpu_before;
    let vendor_calls = sim.count(endpoint) - vendor_before;
    let report = H2loadReport::parse(&stdout)
        .ok_or_else(|| format!("h2load printed no figures:\n{stdout}"))?;
    // h2load counts an HTTP 200 as a success, and a gRPC error is also sent with 200: the calls
    // done beyond those that reached the vendor failed. (The vendor's count includes the
    // warm-up's calls, so this catches a server that refuses calls, as a gateway that does not
    // know the key would, not one that fails a call after the vendor answered.)
    let failed = report.done.saturating_sub(vendor_calls as u64) + report.failed;
    Ok(Cell {
        rpc,
        target: server.target,
        rps: report.rps,
        cpu_us: cpu_seconds * 1e6 / vendor_calls.max(1) as f64,
        failed,
    })
}

/// The figures of h2load's summary.
#[derive(Debug, PartialEq)]
struct H2loadReport {
    rps: f64,
    done: u64,
    failed: u64,
}

impl H2loadReport {
    /// Reads `finished in 4.00s, 12345.67 req/s, 1.23MB/s` and
    /// `requests: 100 total, 100 started, 100 done, 99 succeeded, 1 failed, 0 errored, 0 timeout`.
    fn parse(stdout: &str) -> Option<Self> {
        let rps = stdout
            .lines()
            .find_map(|line| line.strip_prefix("finished in "))?
            .split(", ")
            .find_map(|part| part.strip_suffix(" req/s"))?
            .parse()
            .ok()?;
        let requests = stdout
            .lines()
            .find_map(|line| line.strip_prefix("requests: "))?;
        let count = |what: &str| {
            requests
                .split(", ")
                .find_map(|part| part.strip_suffix(what))
                .and_then(|number| number.trim().parse::<u64>().ok())
        };
        Some(Self {
            rps,
            done: count(" done")?,
            failed: count(" failed")? + count(" errored")? + count(" timeout")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_h2loads_summary() {
        let stdout = "starting benchmark...\n\
            finished in 4.00s, 12345.67 req/s, 1.23MB/s\n\
            requests: 49382 total, 49398 started, 49382 done, 49380 succeeded, 2 failed, 1 errored, 0 timeout\n";
        assert_eq!(
            H2loadReport::parse(stdout),
            Some(H2loadReport {
                rps: 12345.67,
                done: 49382,
                failed: 3
            })
        );
        assert_eq!(H2loadReport::parse("starting benchmark...\n"), None);
    }

    #[test]
    fn frames_a_grpc_message() {
        let body = grpc_body(&ocrgate::api::pb::ParseInvoiceTitleRequest {
            scan_text: "abc".into(),
            ..Default::default()
        });
        // Field 1, length-delimited, 3 bytes.
        assert_eq!(body, [0, 0, 0, 0, 5, 0x0a, 3, b'a', b'b', b'c']);
    }
}
