//! `ocrgate-bench`: what the gateway costs on top of the vendor, measured side by side.
//!
//! One run starts the WeChat simulator (in this process) and the real `ocrgate` binary (its own
//! process), then for both RPCs and each concurrency sends the same workload through the gateway
//! and straight to the simulator with a pre-fetched token. It also measures a cold-cache stampede
//! the gateway's peak memory with 10 MiB phone photos in flight (each fitted under WeChat's 2 MB on
//! the way), and the CPU time of one such fit, and prints one line per headline figure at the end.
//! The floor (`floor`) sets the gateway beside `ocrgate-passthrough`, the same API on the same stack
//! with nothing else, both driven by h2load. The flood (`flood`) measures well-behaved calls while
//! another client on their address holds unfinished uploads, beside an earlier build if given one.

use std::{
    future::Future,
    path::PathBuf,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use ocrgate::api::pb::{
    ParseInvoiceTitleRequest, RecognizeBankCardRequest, ocr_service_client::OcrServiceClient,
    recognize_bank_card_request::Source,
};
use ocrgate_cardgen::CardGenerator;
use procfs::process::Process;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tonic::transport::Channel;
use vendor_sim::{Endpoint, Fault, SimConfig, Simulator};

mod flood;
mod floor;

type Error = Box<dyn std::error::Error>;

const APP_ID: &str = "wxbenchmark";
const APP_SECRET: &str = "benchmark-secret";
const SCAN_TEXT: &str = "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?invoice_key=bench";
const MIB: usize = 1024 * 1024;

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The gateway binary (build it with `cargo build --release -p ocrgate`).
    #[arg(long, default_value = "target/release/ocrgate")]
    gateway: PathBuf,
    /// Seconds of measurement per cell (after a short warm-up).
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Concurrencies to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Concurrent first calls in the cold-cache stampede.
    #[arg(long, default_value_t = 1000)]
    stampede: usize,
    /// Concurrent 10 MiB phone photos held in flight for the memory measurement.
    #[arg(long, default_value_t = 64)]
    uploads: usize,
    /// Fonts for the card generator (default: where scripts/fetch-fonts.sh puts them).
    #[arg(long)]
    fonts: Option<PathBuf>,
    /// The gateway's runtime worker threads (default: one per core).
    #[arg(long)]
    gateway_workers: Option<usize>,
    /// The passthrough the gateway is measured against (default: beside this binary).
    #[arg(long)]
    passthrough: Option<PathBuf>,
    /// h2load, the load generator of the floor (Debian's nghttp2-client).
    #[arg(long, default_value = "h2load")]
    h2load: PathBuf,
    /// h2load's clients (one stream each) in the floor.
    #[arg(long, default_value_t = 16)]
    floor_concurrency: usize,
    /// Rounds of the floor (each measures every server in turn).
    #[arg(long, default_value_t = 3)]
    floor_rounds: usize,
    /// Measure the floor alone: no direct table, stampede or memory figures.
    #[arg(long)]
    floor_only: bool,
    /// Measure the flood alone: well-behaved calls while another client on their address holds
    /// unfinished uploads.
    #[arg(long)]
    flood_only: bool,
    /// An earlier gateway build to measure beside this one in the flood.
    #[arg(long)]
    flood_baseline: Option<PathBuf>,
}

impl Args {
    fn passthrough(&self) -> Result<PathBuf, Error> {
        match &self.passthrough {
            Some(path) => Ok(path.clone()),
            None => Ok(std::env::current_exe()?.with_file_name(format!(
                "ocrgate-passthrough{}",
                std::env::consts::EXE_SUFFIX
            ))),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    if !args.gateway.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release -p ocrgate` first",
            args.gateway.display()
        )
        .into());
    }
    let sim = Simulator::start(SimConfig {
        default_card_number: Some("6222020200112345679".into()),
        default_invoice_title: Some(
            json!({"title_type": 0, "title": "Bench Co.", "tax_no": "91440300708461136T"}),
        ),
        ..SimConfig::default()
    })
    .await?;
    sim.add_app(APP_ID, APP_SECRET);
    let card = Bytes::from(small_png());
    println!(
        "ocrgate-bench: {} s per cell, {} cores, card image {} bytes",
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        card.len()
    );

    if args.flood_only {
        return flood::measure_all(&args, &sim).await;
    }
    if args.floor_only {
        let floor = floor::measure(&args, &sim, &card).await?;
        floor.print();
        floor.print_ratios();
        return match floor.failed() {
            0 => Ok(()),
            failed => Err(format!("{failed} call(s) of the floor failed").into()),
        };
    }

    let gateway = Gateway::spawn(&args, &sim, Gateway::measuring(&args)).await?;
    let direct = Direct::new(&sim).await?;
    let window = Duration::from_secs_f64(args.seconds);
    let mut rows = Vec::new();
    for &concurrency in &args.concurrency {
        let client = gateway.client.clone();
        let image = card.clone();
        let through = measure(concurrency, window, Some(&gateway.process), move || {
            let mut client = client.clone();
            let request = RecognizeBankCardRequest {
                source: Some(Source::Image(image.clone())),
                ..Default::default()
            };
            async move { client.recognize_bank_card(request).await.is_ok() }
        })
        .await;
        let (direct_client, image) = (direct.clone(), card.clone());
        let straight = measure(concurrency, window, None, move || {
            let (direct, image) = (direct_client.clone(), image.clone());
            async move { direct.bank_card(image).await }
        })
        .await;
        rows.push(Row::new(
            "RecognizeBankCard",
            concurrency,
            through,
            straight,
        ));

        let client = gateway.client.clone();
        let through = measure(concurrency, window, Some(&gateway.process), move || {
            let mut client = client.clone();
            let request = ParseInvoiceTitleRequest {
                scan_text: SCAN_TEXT.into(),
                ..Default::default()
            };
            async move { client.parse_invoice_title(request).await.is_ok() }
        })
        .await;
        let direct_client = direct.clone();
        let straight = measure(concurrency, window, None, move || {
            let direct = direct_client.clone();
            async move { direct.scan_title().await }
        })
        .await;
        rows.push(Row::new(
            "ParseInvoiceTitle",
            concurrency,
            through,
            straight,
        ));
    }
    gateway.stop().await;
    let floor = floor::measure(&args, &sim, &card).await?;

    let stampede = stampede(&args, &sim, &card).await?;
    let photo = phone_photo(args.fonts.as_deref())?;
    // Blocking, while nothing else in this process runs, so that its CPU time is the fit's alone.
    let downscale = downscale(&photo)?;
    let memory = upload_memory(&args, &sim, &photo).await?;

    print_table(&rows);
    floor.print();
    flood::measure_all(&args, &sim).await?;
    println!();
    println!(
        "stampede: {} concurrent first calls, {} failed, {} token fetch(es); all answered within {:.1} ms (p50 {:.1} ms)",
        args.stampede, stampede.errors, stampede.token_fetches, stampede.max_ms, stampede.p50_ms
    );
    println!(
        "memory: gateway peak RSS {:.1} MiB with {} x 10 MiB photos in flight (idle {:.1} MiB; limit {} MiB)",
        memory.peak_mib,
        args.uploads,
        memory.idle_mib,
        memory.limit_mib(args.uploads)
    );
    println!(
        "downscale: a {:.1} MiB {}x{} photo to a {} byte {}x{} JPEG for WeChat: {:.0} ms CPU, {:.0} ms wall (mean of {})",
        photo.len() as f64 / MIB as f64,
        downscale.from.0,
        downscale.from.1,
        downscale.bytes,
        downscale.to.0,
        downscale.to.1,
        downscale.cpu_ms,
        downscale.wall_ms,
        DOWNSCALE_RUNS
    );
    println!();
    for row in &rows {
        println!(
            "ratio throughput gateway/direct {} c={}: {:.2}",
            row.rpc,
            row.concurrency,
            row.ratio()
        );
    }
    floor.print_ratios();
    for row in &rows {
        println!(
            "added latency p50 {} c={}: {} us",
            row.rpc,
            row.concurrency,
            row.added_p50_us()
        );
    }
    println!(
        "stampede token fetches c={}: {}",
        args.stampede, stampede.token_fetches
    );
    println!(
        "peak RSS MiB {} x 10 MiB uploads: {:.1} (target < {})",
        args.uploads,
        memory.peak_mib,
        memory.limit_mib(args.uploads)
    );
    println!("downscale CPU ms 10 MiB photo: {:.0}", downscale.cpu_ms);
    // Figures are reported, never judged here (this machine is noisy); a failed call or a second
    // token fetch is a bug, not a figure.
    let failed: u64 = rows
        .iter()
        .map(|row| row.gateway.errors + row.direct.errors)
        .sum();
    let failed = failed + floor.failed();
    if failed > 0 || stampede.errors > 0 || stampede.token_fetches != 1 {
        return Err(format!(
            "{failed} measured call(s) and {} stampede call(s) failed; the stampede fetched {} token(s)",
            stampede.errors, stampede.token_fetches
        )
        .into());
    }
    Ok(())
}

/// A minimal valid PNG header padded to a typical compressed card photo's size is enough: the
/// simulator reads any image as the default card.
fn small_png() -> Vec<u8> {
    let mut image = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    image.resize(48 * 1024, 7);
    image
}

/// Latency and throughput of one cell.
struct Stats {
    requests: u64,
    errors: u64,
    seconds: f64,
    latency_us: Histogram<u64>,
    cpu: CpuTime,
}

impl Stats {
    /// CPU microseconds per request: the gateway's, and this process's (load generator and
    /// simulator).
    fn cpu_per_request(&self) -> (Option<f64>, f64) {
        let per_request = |seconds: f64| seconds * 1e6 / self.requests.max(1) as f64;
        (
            self.cpu.gateway.map(per_request),
            per_request(self.cpu.local),
        )
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn p50(&self) -> u64 {
        self.latency_us.value_at_quantile(0.5)
    }

    fn p99(&self) -> u64 {
        self.latency_us.value_at_quantile(0.99)
    }
}

/// Runs `call` from `concurrency` tasks for `window` (after a warm-up of a fifth of it), and
/// reads the CPU time the gateway (when there is one) and this process spent in the window.
async fn measure<F, Fut>(
    concurrency: usize,
    window: Duration,
    gateway: Option<&Process>,
    call: F,
) -> Stats
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let warm_up = window / 5;
    let start = Instant::now() + warm_up;
    let end = start + window;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut histogram = new_histogram();
                let (mut requests, mut errors) = (0, 0);
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let ok = call().await;
                    if sent >= start {
                        histogram.saturating_record(sent.elapsed().as_micros() as u64);
                        requests += 1;
                        errors += u64::from(!ok);
                    }
                }
                (histogram, requests, errors)
            })
        })
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let before = CpuTime::read(gateway);
    tokio::time::sleep_until(end.into()).await;
    let cpu = CpuTime::read(gateway).since(&before);
    let mut stats = Stats {
        requests: 0,
        errors: 0,
        seconds: window.as_secs_f64(),
        latency_us: new_histogram(),
        cpu,
    };
    for task in tasks {
        if let Ok((histogram, requests, errors)) = task.await {
            stats.latency_us.add(histogram).ok();
            stats.requests += requests;
            stats.errors += errors;
        }
    }
    stats
}

/// CPU seconds (user and system) used so far, or in an interval.
#[derive(Debug, Default)]
struct CpuTime {
    gateway: Option<f64>,
    local: f64,
}

impl CpuTime {
    fn read(gateway: Option<&Process>) -> Self {
        let seconds = |process: &Process| {
            process.stat().map_or(0.0, |stat| {
                (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
            })
        };
        Self {
            gateway: gateway.map(seconds),
            local: Process::myself().as_ref().map_or(0.0, seconds),
        }
    }

    fn since(&self, earlier: &Self) -> Self {
        Self {
            gateway: self
                .gateway
                .zip(earlier.gateway)
                .map(|(now, then)| now - then),
            local: self.local - earlier.local,
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

struct Row {
    rpc: &'static str,
    concurrency: usize,
    gateway: Stats,
    direct: Stats,
}

impl Row {
    fn new(rpc: &'static str, concurrency: usize, gateway: Stats, direct: Stats) -> Self {
        Self {
            rpc,
            concurrency,
            gateway,
            direct,
        }
    }

    fn ratio(&self) -> f64 {
        self.gateway.rps() / self.direct.rps().max(f64::MIN_POSITIVE)
    }

    fn added_p50_us(&self) -> i64 {
        self.gateway.p50() as i64 - self.direct.p50() as i64
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<18} {:>3} | {:>8} {:>7} {:>7} {:>6} {:>6} | {:>8} {:>7} {:>7} {:>6} | {:>5} {:>9} | {:>6}",
        "rpc",
        "c",
        "gw req/s",
        "p50 us",
        "p99 us",
        "gw cpu",
        "ld cpu",
        "direct/s",
        "p50 us",
        "p99 us",
        "ld cpu",
        "ratio",
        "added p50",
        "errors"
    );
    for row in rows {
        let (gateway_cpu, load_cpu) = row.gateway.cpu_per_request();
        let (_, direct_load_cpu) = row.direct.cpu_per_request();
        println!(
            "{:<18} {:>3} | {:>8.0} {:>7} {:>7} {:>6.0} {:>6.0} | {:>8.0} {:>7} {:>7} {:>6.0} | {:>5.2} {:>6} us | {:>6}",
            row.rpc,
            row.concurrency,
            row.gateway.rps(),
            row.gateway.p50(),
            row.gateway.p99(),
            gateway_cpu.unwrap_or_default(),
            load_cpu,
            row.direct.rps(),
            row.direct.p50(),
            row.direct.p99(),
            direct_load_cpu,
            row.ratio(),
            row.added_p50_us(),
            row.gateway.errors + row.direct.errors,
        );
    }
    println!(
        "(cpu: CPU microseconds per request, user + system; gw = the gateway process, ld = this \
         process: load generator and simulator)"
    );
}

struct Stampede {
    token_fetches: usize,
    errors: usize,
    p50_ms: f64,
    max_ms: f64,
}

/// A fresh gateway (cold token cache) takes `args.stampede` concurrent first calls.
async fn stampede(args: &Args, sim: &Simulator, card: &Bytes) -> Result<Stampede, Error> {
    let gateway = Gateway::spawn(args, sim, Gateway::measuring(args)).await?;
    let fetches_before = sim.count(Endpoint::StableToken);
    let started = Instant::now();
    let calls: Vec<_> = (0..args.stampede)
        .map(|_| {
            let mut client = gateway.client.clone();
            let request = RecognizeBankCardRequest {
                source: Some(Source::Image(card.clone())),
                ..Default::default()
            };
            tokio::spawn(async move {
                let ok = client.recognize_bank_card(request).await.is_ok();
                (ok, started.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for call in calls {
        let (ok, latency) = call.await?;
        errors += usize::from(!ok);
        latencies.push(latency.as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    let token_fetches = sim.count(Endpoint::StableToken) - fetches_before;
    gateway.stop().await;
    Ok(Stampede {
        token_fetches,
        errors,
        p50_ms: latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or_default(),
        max_ms: latencies.last().copied().unwrap_or_default(),
    })
}

struct Memory {
    idle_mib: f64,
    peak_mib: f64,
}

impl Memory {
    /// Two copies of each upload at most, plus 50 MiB.
    fn limit_mib(&self, uploads: usize) -> usize {
        uploads * PHOTO_MIB * 2 + 50
    }
}

/// The size of the phone photos of the memory measurement: the largest upload by default.
const PHOTO_MIB: usize = 10;
/// How long the memory measurement waits for its uploads; the gateway's calls may last as long.
const UPLOADS_TIMEOUT: Duration = Duration::from_secs(300);
/// Fits timed for the downscale figure.
const DOWNSCALE_RUNS: u32 = 3;

/// A phone photo of a synthetic card (4000×2800, with grain, JPEG quality 95), padded after its
/// end marker (decoders ignore what follows it) to exactly 10 MiB.
fn phone_photo(fonts: Option<&std::path::Path>) -> Result<Bytes, Error> {
    let fonts = fonts.map_or_else(CardGenerator::default_fonts_dir, ToOwned::to_owned);
    let card = CardGenerator::new(&fonts)?.card(0);
    let mut photo = ocrgate_cardgen::phone_photo(&card.jpeg, 4000, 8.0, 0);
    if photo.len() > PHOTO_MIB * MIB {
        return Err(format!("the phone photo is {} bytes, over 10 MiB", photo.len()).into());
    }
    photo.resize(PHOTO_MIB * MIB, 0);
    Ok(Bytes::from(photo))
}

struct Downscale {
    from: (u32, u32),
    to: (u32, u32),
    bytes: usize,
    cpu_ms: f64,
    wall_ms: f64,
}

/// Fits `photo` under WeChat's 2 MB as the gateway does, `DOWNSCALE_RUNS` times, and reads the
/// process's CPU time around it (nothing else in this process is busy meanwhile).
fn downscale(photo: &[u8]) -> Result<Downscale, Error> {
    let dimensions = |image: &[u8]| {
        image::ImageReader::new(std::io::Cursor::new(image))
            .with_guessed_format()
            .map_err(image::ImageError::from)
            .and_then(image::ImageReader::into_dimensions)
    };
    let me = Process::myself()?;
    let cpu = || -> Result<f64, procfs::ProcError> {
        let stat = me.stat()?;
        Ok((stat.utime + stat.stime) as f64 * 1000.0 / procfs::ticks_per_second() as f64)
    };
    let (cpu_before, started) = (cpu()?, Instant::now());
    let mut fitted = Bytes::new();
    for _ in 0..DOWNSCALE_RUNS {
        fitted = ocrgate::providers::images::fit_as_jpeg(photo, 2_000_000, 16_000_000)?;
    }
    let runs = f64::from(DOWNSCALE_RUNS);
    Ok(Downscale {
        cpu_ms: (cpu()? - cpu_before) / runs,
        wall_ms: started.elapsed().as_secs_f64() * 1000.0 / runs,
        from: dimensions(photo)?,
        to: dimensions(&fitted)?,
        bytes: fitted.len(),
    })
}

/// A fresh gateway holds `args.uploads` concurrent 10 MiB phone photos, each fitted under WeChat's
/// 2 MB on the way, until the simulator has every one of them; then its peak RSS is read.
async fn upload_memory(args: &Args, sim: &Simulator, image: &Bytes) -> Result<Memory, Error> {
    let gateway = Gateway::spawn(args, sim, Gateway::measuring(args)).await?;
    // Warm the token and the connection first, so the peak is the uploads' alone.
    let mut warm = gateway.client.clone();
    warm.parse_invoice_title(ParseInvoiceTitleRequest {
        scan_text: SCAN_TEXT.into(),
        ..Default::default()
    })
    .await?;
    let idle_mib = gateway.peak_rss_mib()?;
    let before = sim.count(Endpoint::BankCard);
    sim.inject(Endpoint::BankCard, Fault::Hold, args.uploads);
    let calls: Vec<_> = (0..args.uploads)
        .map(|_| {
            let mut client = gateway.client.clone();
            let request = RecognizeBankCardRequest {
                source: Some(Source::Image(image.clone())),
                ..Default::default()
            };
            tokio::spawn(async move { client.recognize_bank_card(request).await.is_ok() })
        })
        .collect();
    // Every photo is fitted on the way, one per core at a time: the slowest waits for the others.
    tokio::time::timeout(
        UPLOADS_TIMEOUT,
        sim.wait_for_requests(Endpoint::BankCard, before + args.uploads),
    )
    .await
    .map_err(|_| {
        format!(
            "{} of {} uploads reached the simulator within {UPLOADS_TIMEOUT:?}",
            sim.count(Endpoint::BankCard) - before,
            args.uploads
        )
    })?;
    let peak_mib = gateway.peak_rss_mib()?;
    sim.release_held(args.uploads);
    for call in calls {
        call.await?;
    }
    gateway.stop().await;
    Ok(Memory { idle_mib, peak_mib })
}

/// The running `child`'s process, for its CPU time and memory.
fn process_of(child: &tokio::process::Child, what: &str) -> Result<Process, Error> {
    let pid = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .ok_or_else(|| format!("{what} exited"))?;
    Ok(Process::new(pid)?)
}

/// The real gateway binary as a child process, configured for the simulator.
struct Gateway {
    child: tokio::process::Child,
    process: Process,
    address: String,
    client: OcrServiceClient<Channel>,
}

impl Gateway {
    /// The configuration of the main table, the stampede and the memory measurement, beside the
    /// simulator's address and credentials.
    fn measuring(args: &Args) -> Vec<(String, String)> {
        // The memory measurement holds `uploads` 10 MiB messages from one client at once: the
        // budget, and the client's share of it, must fit them all.
        let request_memory = format!("{} MiB", (PHOTO_MIB + 1) * args.uploads + 16);
        [
            ("OCRGATE_LIMITS__REQUEST_MEMORY", request_memory.clone()),
            ("OCRGATE_LIMITS__REQUEST_MEMORY_PER_CLIENT", request_memory),
            // Every call sends the same image: with the result cache on, the gateway would answer
            // from memory instead of calling the vendor, which is not what is measured here.
            ("OCRGATE_CACHE__TTL", "0s".to_owned()),
            // The photos queue to be fitted, one per core at a time; none may time out meanwhile.
            (
                "OCRGATE_LIMITS__MAX_CALL_DURATION",
                format!("{}s", UPLOADS_TIMEOUT.as_secs()),
            ),
        ]
        .map(|(name, value)| (name.to_owned(), value))
        .into()
    }

    /// The gateway pointed at the simulator, with `env` on top of its defaults.
    async fn spawn(
        args: &Args,
        sim: &Simulator,
        env: Vec<(String, String)>,
    ) -> Result<Self, Error> {
        Self::spawn_binary(args, sim, &args.gateway, env).await
    }

    /// The gateway `binary`, pointed at the simulator, with `env` on top of its defaults.
    async fn spawn_binary(
        args: &Args,
        sim: &Simulator,
        binary: &std::path::Path,
        env: Vec<(String, String)>,
    ) -> Result<Self, Error> {
        let mut child = tokio::process::Command::new(binary)
            .args(["serve", "--log-format", "json"])
            .env_clear()
            .envs(
                args.gateway_workers
                    .map(|workers| ("TOKIO_WORKER_THREADS", workers.to_string())),
            )
            .env("RUST_LOG", "warn,ocrgate::server=info")
            .env("OCRGATE_LISTEN", "127.0.0.1:0")
            .env("OCRGATE_ADMIN_LISTEN", "127.0.0.1:0")
            .env("OCRGATE_WECHAT_APP_ID", APP_ID)
            .env("OCRGATE_WECHAT_APP_SECRET", APP_SECRET)
            .env("OCRGATE_WECHAT_BASE_URL", sim.base_url())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let address = loop {
            let line = lines
                .next_line()
                .await?
                .ok_or("the gateway exited before listening")?;
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if entry["message"] == "listening" {
                break entry["address"].as_str().unwrap_or_default().to_owned();
            }
        };
        // Keep draining its logs so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let client = OcrServiceClient::connect(format!("http://{address}"))
            .await?
            .max_decoding_message_size(16 * MIB)
            .max_encoding_message_size(16 * MIB);
        let process = process_of(&child, "the gateway")?;
        Ok(Self {
            child,
            process,
            address,
            client,
        })
    }

    /// The process's peak resident set size so far (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> Result<f64, Error> {
        let kib = self
            .process
            .status()?
            .vmhwm
            .ok_or("no VmHWM for the gateway")?;
        Ok(kib as f64 / 1024.0)
    }

    async fn stop(mut self) {
        self.child.kill().await.ok();
    }
}

/// The same workload sent straight to the simulator, as a client of WeChat would, with a token
/// fetched once beforehand.
#[derive(Clone)]
struct Direct {
    http: reqwest::Client,
    bank_card: Arc<str>,
    scan_title: Arc<str>,
}

impl Direct {
    async fn new(sim: &Simulator) -> Result<Self, Error> {
        let http = reqwest::Client::new();
        let base = sim.base_url();
        let reply: serde_json::Value = http
            .post(format!("{base}cgi-bin/stable_token"))
            .json(&json!({"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET, "force_refresh": false}))
            .send()
            .await?
            .json()
            .await?;
        let token = reply["access_token"].as_str().ok_or("no token")?;
        Ok(Self {
            http,
            bank_card: format!("{base}cv/ocr/bankcard?access_token={token}&type=photo").into(),
            scan_title: format!("{base}card/invoice/scantitle?access_token={token}").into(),
        })
    }

    async fn bank_card(&self, image: Bytes) -> bool {
        let length = image.len() as u64;
        let Ok(part) = reqwest::multipart::Part::stream_with_length(image, length)
            .file_name("image.png")
            .mime_str("image/png")
        else {
            return false;
        };
        let form = reqwest::multipart::Form::new().part("img", part);
        self.answered(self.http.post(&*self.bank_card).multipart(form))
            .await
    }

    async fn scan_title(&self) -> bool {
        self.answered(
            self.http
                .post(&*self.scan_title)
                .json(&json!({"scan_text": SCAN_TEXT})),
        )
        .await
    }

    async fn answered(&self, request: reqwest::RequestBuilder) -> bool {
        match request.send().await {
            Ok(response) => response
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|reply| reply["errcode"] == 0),
            Err(_) => false,
        }
    }
}
