use std::{path::PathBuf, process::ExitCode};

mod cli;

use clap::{Parser, Subcommand};
use ocrgate::{
    config::Config,
    server::{Listeners, plan, serve},
    telemetry::{LogFormat, Telemetry},
};

/// ocrgate: bank card OCR and invoice titles over gRPC, whichever vendor is behind it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve {
        /// TOML configuration file; `OCRGATE_*` environment variables override what it sets.
        #[arg(long, env = "OCRGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (default 0.0.0.0:50051; also `OCRGATE_LISTEN`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Log format (default text; also `OCRGATE_LOG_FORMAT` or `log.format`).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Check a configuration (file and environment) as `serve` would read it, then exit.
    CheckConfig {
        /// TOML configuration file; `OCRGATE_*` environment variables override what it sets.
        #[arg(long, env = "OCRGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Ask a running server for the card number in an image file or at a URL.
    Card {
        /// A JPEG, PNG, BMP, GIF or WebP file, or an http(s) URL the vendor fetches.
        image_or_url: String,
        /// How the image was taken.
        #[arg(long, value_enum, default_value = "photo")]
        mode: cli::Mode,
        #[command(flatten)]
        call: cli::CallOptions,
    },
    /// Ask a running server for the invoice title behind a QR code: its text, or (with --image) a
    /// photo or screenshot of it that the server decodes.
    Title {
        /// The text of the QR code, typically a https://mp.weixin.qq.com/... URL.
        #[arg(required_unless_present = "image", conflicts_with = "image")]
        scan_text: Option<String>,
        /// A JPEG, PNG, BMP, GIF or WebP file holding the QR code, instead of its text.
        #[arg(long)]
        image: Option<std::path::PathBuf>,
        #[command(flatten)]
        call: cli::CallOptions,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            log_format,
        } => match run_server(config, log_format, listen).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("ocrgate: {err}");
                ExitCode::FAILURE
            }
        },
        Command::CheckConfig { config } => match check_config(config.as_deref()) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("ocrgate: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Card {
            image_or_url,
            mode,
            call,
        } => cli::card(&image_or_url, mode, &call).await,
        Command::Title {
            scan_text,
            image,
            call,
        } => cli::title(scan_text, image.as_deref(), &call).await,
    }
}

async fn run_server(
    config_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
    listen: Option<std::net::SocketAddr>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::load(config_file.as_deref())?;
    if let Some(format) = log_format {
        config.log.format = format;
    }
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let mut telemetry = Telemetry::from_env()?;
    telemetry.install(config.log.format, &config.log.level)?;
    let shutdown =
        shutdown_signal().map_err(|err| format!("cannot listen for SIGTERM and SIGINT: {err}"))?;
    let listeners = Listeners::bind(&config).await?;
    let served = serve(&config, listeners, &telemetry, shutdown).await;
    // Flushing blocks until the exporters are done: keep it off the async workers.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    Ok(served?)
}

/// Loads the configuration and checks it as `serve` does (`server::plan`), without loading models
/// or serving, and sums it up.
fn check_config(file: Option<&std::path::Path>) -> Result<String, Box<dyn std::error::Error>> {
    let config = Config::load(file)?;
    let telemetry = Telemetry::without_exporters()?;
    let plan = plan(&config, telemetry.metrics())?;
    let tls = match &config.tls {
        Some(tls) if tls.client_ca_file.is_some() => "TLS with client certificates",
        Some(_) => "TLS",
        None => "plaintext",
    };
    let callers = match (plan.callers.names(), plan.callers.anonymous_allowed()) {
        (names, true) if names.is_empty() => "anonymous only".to_owned(),
        (names, false) if names.is_empty() => "none (every call is refused)".to_owned(),
        (names, anonymous) => format!(
            "{}{}",
            names.join(", "),
            if anonymous { " and anonymous" } else { "" }
        ),
    };
    let providers: Vec<String> = plan
        .providers
        .iter()
        .map(|provider| {
            let set_up = if provider.set_up {
                ""
            } else {
                " (not set up: its calls fail)"
            };
            format!(
                "{} ({}){set_up}",
                provider.registration.name, provider.summary
            )
        })
        .collect();
    let routes = &plan.routes;
    Ok(format!(
        "configuration is valid: gRPC on {} ({tls}), admin on {}, request memory {} ({} per client), \
         callers: {callers}, providers: {}; bank cards: {}{}, invoice titles: {}; {}",
        config.listen,
        config.admin_listen,
        config.limits.request_memory,
        config.limits.request_memory_per_client,
        providers.join(", "),
        routes.bank_card.join(" -> "),
        config
            .routing
            .escalate_below
            .map(|threshold| format!(" (escalating below confidence {threshold})"))
            .unwrap_or_default(),
        routes.invoice_title.join(" -> "),
        if config.cache.ttl.is_zero() {
            "result cache off".to_owned()
        } else {
            format!(
                "result cache {} for {} answers or {}",
                humantime::format_duration(config.cache.ttl),
                config.cache.max_entries,
                config.cache.max_memory
            )
        },
    ))
}

/// Listens for SIGTERM and SIGINT from now on, and returns what completes on the first. The
/// handlers are in place before the port opens: a signal that comes early still drains the
/// server, rather than killing the process with the default action.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
