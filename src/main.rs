use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use iorelay::{Config, runtime, shutdown, telemetry};

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
    let threads = runtime::worker_threads(config.worker_threads);
    let result = runtime::build(threads)
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(config, threads)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, threads: usize) -> anyhow::Result<()> {
    let address = SocketAddr::new(config.host, config.port());
    let listener =
        iorelay::listen(address).with_context(|| format!("cannot listen on {address}"))?;
    let local = listener
        .local_addr()
        .context("listening socket has no address")?;
    tracing::info!(
        address = %local,
        path = %config.path,
        profile = ?config.profile,
        threads,
        "listening"
    );
    iorelay::serve(listener, config, shutdown::signal()).await?;
    Ok(())
}
