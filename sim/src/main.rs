//! `vendor-sim`: the vendor simulators as a process, for local runs and benchmarks.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use serde_json::json;
use vendor_sim::{SimConfig, Simulator};

/// A WeChat server API simulator on loopback, with Tencent Cloud's BankCardOCR at `POST /`. Any decodable image reads as the demo card number
/// and any scan text as the demo invoice title.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090", env = "WECHAT_SIM_LISTEN")]
    listen: SocketAddr,
    /// App id that may fetch tokens.
    #[arg(long, default_value = "wxsimulator", env = "WECHAT_SIM_APP_ID")]
    app_id: String,
    /// Its app secret.
    #[arg(
        long,
        default_value = "simulator-secret",
        env = "WECHAT_SIM_APP_SECRET"
    )]
    app_secret: String,
    /// Tencent Cloud SecretId whose signatures `POST /` (BankCardOCR) accepts.
    #[arg(long, default_value = "AKIDsimulator", env = "TENCENT_SIM_SECRET_ID")]
    tencent_secret_id: String,
    /// Its SecretKey.
    #[arg(
        long,
        default_value = "simulator-tencent-key",
        env = "TENCENT_SIM_SECRET_KEY"
    )]
    tencent_secret_key: String,
    /// The number every image reads as.
    #[arg(long, default_value = "6222020200112345678")]
    card_number: String,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 7200)]
    token_lifetime: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let sim = Simulator::serve(
        listener,
        SimConfig {
            token_lifetime: Duration::from_secs(args.token_lifetime),
            default_card_number: Some(args.card_number),
            default_invoice_title: Some(json!({
                "title_type": 0,
                "title": "Example Technology Co., Ltd.",
                "tax_no": "91440300708461136T",
                "addr": "1 Example Road, Shenzhen",
                "phone": "0755-12345678",
                "bank_type": "Example Bank Shenzhen Branch",
                "bank_no": "4000023009200123456",
            })),
            ..SimConfig::default()
        },
    )
    .await?;
    sim.add_app(&args.app_id, &args.app_secret);
    sim.add_tencent_key(&args.tencent_secret_id, &args.tencent_secret_key, None);
    tracing::info!(address = %sim.address(), app_id = %args.app_id, "WeChat simulator listening");
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    Ok(())
}
