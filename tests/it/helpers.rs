//! Starts iorelay in-process on an ephemeral loopback port.

use std::net::SocketAddr;

use clap::Parser;
use iorelay::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server and the means to stop it.
pub struct TestApp {
    /// Where it listens.
    pub address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), iorelay::app::ServeError>>,
}

impl TestApp {
    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Triggers a graceful shutdown and waits for the server to return.
    pub async fn stop(mut self) -> Result<(), iorelay::app::ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.expect("server task panicked")
    }
}

/// Starts iorelay with the given extra command-line flags.
pub async fn spawn_app(flags: &[&str]) -> TestApp {
    let args = [
        "iorelay",
        "--static-dir",
        "tests/it/fixtures/site",
        "--tick-interval-ms",
        "0",
    ]
    .into_iter()
    .chain(flags.iter().copied());
    let config = Config::parse_from(args)
        .validated()
        .expect("test config is valid");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(iorelay::serve(listener, config, async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        shutdown: Some(tx),
        task,
    }
}
