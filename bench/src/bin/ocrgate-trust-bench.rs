//! `ocrgate-trust-bench`: accuracy against cost when the local reader goes first and a cloud
//! vendor is asked only on doubt.
//!
//! Serves a real gateway on loopback routed `["local", "wechat"]`, whose WeChat is the simulator
//! playing a perfect vendor: it answers each photo's true number, looked up by the photo's bytes.
//! Renders `--count` synthetic card photos (ocrgate-cardgen, seeds `--from` on, one `--set`) and
//! sends each three times over gRPC: to the local reader alone, along the route (escalating below
//! `--escalate-below`, and on NOT_FOUND), and to the vendor alone. Prints, for each, the share of
//! numbers read exactly, the share of calls that reached the vendor, wrong answers, and p50/p95
//! latency; then the local reader's reliability table. One engine, one inference thread.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use hdrhistogram::Histogram;
use ocrgate::{
    api::pb::{self, ocr_service_client::OcrServiceClient},
    config::Config,
    provider::ErrorKind,
    server::Listeners,
    telemetry::Telemetry,
};
use ocrgate_cardgen::CardGenerator;
use tokio::{net::TcpListener, time::Instant};
use vendor_sim::{Endpoint, SimConfig, Simulator};

#[derive(Debug, Parser)]
#[command(about = "Accuracy against vendor calls: the local reader first, a vendor on doubt")]
struct Args {
    /// Cards to render and read.
    #[arg(long, default_value_t = 200)]
    count: u64,
    /// The first card's seed.
    #[arg(long, default_value_t = 20_000)]
    from: u64,
    /// Which of the generator's sets.
    #[arg(long, value_enum, default_value_t = Set::Standard)]
    set: Set,
    /// The routing threshold: local answers under this confidence go on to the vendor.
    #[arg(long, default_value_t = 0.9)]
    escalate_below: f32,
    /// The directory scripts/fetch-models.sh filled.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Fonts for the generator (scripts/fetch-fonts.sh).
    #[arg(long)]
    fonts: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Set {
    Standard,
    Hard,
    Wild,
}

const APP_ID: &str = "wx-bench";
const APP_SECRET: &str = "bench-app-secret";

/// One way of serving the photos, and how it did.
struct Tally {
    name: &'static str,
    /// Sent as the request's `provider`; empty follows the route.
    provider: &'static str,
    exact: u64,
    wrong: u64,
    vendor_calls: u64,
    warned: u64,
    latency: Histogram<u64>,
}

impl Tally {
    fn new(
        name: &'static str,
        provider: &'static str,
    ) -> Result<Self, hdrhistogram::CreationError> {
        Ok(Self {
            name,
            provider,
            exact: 0,
            wrong: 0,
            vendor_calls: 0,
            warned: 0,
            latency: Histogram::new_with_bounds(1, 120_000_000, 3)?,
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let generator =
        CardGenerator::new(&args.fonts.unwrap_or_else(CardGenerator::default_fonts_dir))?;
    let sim = Simulator::start(SimConfig::default()).await?;
    sim.add_app(APP_ID, APP_SECRET);

    let mut config = Config::default();
    config.providers.set("wechat.base_url", sim.base_url());
    config.providers.set("wechat.app_id", APP_ID);
    config.providers.set("wechat.app_secret", APP_SECRET);
    config.providers.set("local.models_dir", args.models);
    config.providers.set("local.concurrency", 1);
    config.providers.set("local.threads_per_image", 1);
    config.routing.bank_card = Some(vec!["local".into(), "wechat".into()]);
    config.routing.failover_on = vec![
        ErrorKind::Unavailable,
        ErrorKind::QuotaExhausted,
        ErrorKind::NotFound,
    ];
    config.routing.escalate_below = Some(args.escalate_below);
    // Each photo is sent once a way: nothing to keep.
    config.cache.ttl = Duration::ZERO;
    config.limits.max_call_duration = Duration::from_secs(120);
    let listeners = Listeners {
        grpc: TcpListener::bind("127.0.0.1:0").await?,
        admin: TcpListener::bind("127.0.0.1:0").await?,
    };
    let address = listeners.grpc.local_addr()?;
    let telemetry = Telemetry::without_exporters()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        ocrgate::server::serve(&config, listeners, &telemetry, async {
            stopped.await.ok();
        })
        .await
    });
    let mut client = OcrServiceClient::connect(format!("http://{address}")).await?;

    let mut ways = [
        Tally::new("local alone", "local")?,
        Tally::new("local, vendor on doubt", "")?,
        Tally::new("vendor alone", "wechat")?,
    ];
    let mut confidences = Vec::new();
    for seed in args.from..args.from + args.count {
        let card = match args.set {
            Set::Standard => generator.card(seed),
            Set::Hard => generator.hard_card(seed),
            Set::Wild => generator.wild_card(seed),
        };
        sim.add_card_image(card.jpeg.clone(), &card.number);
        for way in &mut ways {
            let before = sim.count(Endpoint::BankCard);
            let started = Instant::now();
            let reply = client
                .recognize_bank_card(pb::RecognizeBankCardRequest {
                    source: Some(pb::recognize_bank_card_request::Source::Image(
                        card.jpeg.clone().into(),
                    )),
                    provider: way.provider.into(),
                    ..Default::default()
                })
                .await;
            way.latency
                .record(started.elapsed().as_micros().max(1) as u64)?;
            way.vendor_calls += u64::from(sim.count(Endpoint::BankCard) > before);
            let Ok(reply) = reply.map(tonic::Response::into_inner) else {
                continue;
            };
            let exact = reply.card_number == card.number;
            way.exact += u64::from(exact);
            way.wrong += u64::from(!exact);
            way.warned += u64::from(
                reply
                    .warnings()
                    .any(|warning| warning == pb::ImageWarning::LowConfidence),
            );
            if way.provider == "local" {
                confidences.push((reply.confidence.unwrap_or_default(), exact));
            }
        }
    }
    let _ = stop.send(());
    server.await??;

    let set = format!("{:?}", args.set).to_lowercase();
    println!(
        "{} {set} photos (seeds {}-{}), escalating below {}, one engine:",
        args.count,
        args.from,
        args.from + args.count - 1,
        args.escalate_below
    );
    println!(
        "  {:<24} {:>7} {:>7} {:>6} {:>7} {:>9} {:>9}",
        "way", "exact", "vendor", "wrong", "warned", "p50_ms", "p95_ms"
    );
    let share = |n: u64| 100.0 * n as f64 / args.count.max(1) as f64;
    let ms = |latency: &Histogram<u64>, q| latency.value_at_quantile(q) as f64 / 1000.0;
    for way in &ways {
        println!(
            "  {:<24} {:>6.1}% {:>6.1}% {:>6} {:>7} {:>9.1} {:>9.1}",
            way.name,
            share(way.exact),
            share(way.vendor_calls),
            way.wrong,
            way.warned,
            ms(&way.latency, 0.5),
            ms(&way.latency, 0.95)
        );
    }
    println!("the local reader's answers:");
    ocrgate_bench::print_reliability(&confidences);
    let routed = &ways[1];
    println!(
        "summary set={set} n={} threshold={} exact={:.1} vendor={:.1} wrong={} p50_ms={:.1} \
         p95_ms={:.1} local_exact={:.1}",
        args.count,
        args.escalate_below,
        share(routed.exact),
        share(routed.vendor_calls),
        routed.wrong,
        ms(&routed.latency, 0.5),
        ms(&routed.latency, 0.95),
        share(ways[0].exact)
    );
    Ok(())
}
