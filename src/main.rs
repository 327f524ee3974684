use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use ocrgate::{
    config::{Config, LogFormat},
    server::{Listeners, serve},
    telemetry::Telemetry,
};

/// ocrgate: bank card OCR and invoice titles over gRPC, whichever vendor is behind it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; `OCRGATE_*` environment variables override what it sets.
    #[arg(long, global = true, env = "OCRGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format (default: text; also `OCRGATE_LOG_FORMAT` or `log.format` in the file).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve {
        /// Address to listen on (default 0.0.0.0:50051; also `OCRGATE_LISTEN`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ocrgate: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    let telemetry = Telemetry::from_env()?;
    telemetry.install(config.log.format, &config.log.level)?;
    match cli.command {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            let listeners = Listeners::bind(&config).await?;
            let served = serve(&config, listeners, &telemetry, shutdown_signal()).await;
            // Flushing blocks until the exporters are done: keep it off the async workers.
            tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
            served?;
        }
    }
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM; only SIGINT stops the server");
                interrupt.await.ok();
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.ok();
}
