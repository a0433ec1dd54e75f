use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use iorelay::{Config, shutdown, telemetry};

fn main() -> ExitCode {
    let config = match Config::parse().validated() {
        Ok(config) => config,
        Err(error) => {
            // Same exit code and shape as clap's own usage errors.
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    let address = SocketAddr::new(config.host, config.port());
    let listener =
        iorelay::app::listen(address).with_context(|| format!("cannot listen on {address}"))?;
    let local = listener
        .local_addr()
        .context("listening socket has no address")?;
    tracing::info!(address = %local, path = %config.path, profile = ?config.profile, "listening");
    iorelay::serve(listener, config, shutdown::signal()).await?;
    Ok(())
}
