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
    task: JoinHandle<Result<(), iorelay::ServeError>>,
}

impl TestApp {
    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Opens an Engine.IO long-polling session and returns its URL (with `sid`).
    pub async fn open_polling_session(&self, client: &reqwest::Client) -> String {
        self.open_polling_session_on(client, "/socket.io/").await
    }

    /// Opens an Engine.IO long-polling session on the Engine.IO route at `path` and returns
    /// its URL (with `sid`).
    pub async fn open_polling_session_on(&self, client: &reqwest::Client, path: &str) -> String {
        let base = format!("{}{path}?EIO=4&transport=polling", self.url());
        format!("{base}&sid={}", self.polling_sid(client, path).await)
    }

    /// Opens an Engine.IO long-polling session at `path` and returns its sid.
    pub async fn polling_sid(&self, client: &reqwest::Client, path: &str) -> String {
        let open = client
            .get(format!("{}{path}?EIO=4&transport=polling", self.url()))
            .send()
            .await
            .expect("handshake")
            .text()
            .await
            .expect("body");
        let open: serde_json::Value = serde_json::from_str(&open[1..]).expect("open packet");
        open["sid"].as_str().expect("sid").to_owned()
    }

    /// Triggers a graceful shutdown and waits for the server to return.
    pub async fn stop(mut self) -> Result<(), iorelay::ServeError> {
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
        "--max-connections-per-ip",
        "1000000",
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

/// The iorelay binary running as its own process, for tests that signal it or read its memory.
pub struct ServerProcess {
    /// Where it listens.
    pub address: SocketAddr,
    flags: Vec<String>,
    descriptor_limit: Option<u64>,
    child: std::process::Child,
}

impl ServerProcess {
    /// Starts the binary on a free port with `flags` and waits for `/healthz`.
    pub async fn start(flags: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], port)), flags, None).await
    }

    /// Like [`ServerProcess::start`], the process limited to `limit` file descriptors (its
    /// soft and hard `RLIMIT_NOFILE`), so that a test reaches the limit with a few hundred
    /// connections.
    pub async fn start_with_descriptor_limit(limit: u64, flags: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], port)), flags, Some(limit)).await
    }

    async fn start_on(
        address: SocketAddr,
        flags: Vec<String>,
        descriptor_limit: Option<u64>,
    ) -> Self {
        // IORELAY_BIN points the process tests at another build (the release one in CI).
        let binary = std::env::var("IORELAY_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_iorelay").to_owned());
        let mut command = std::process::Command::new(binary);
        command
            .args(["--host", "127.0.0.1", "--port", &address.port().to_string()])
            .args([
                "--tick-interval-ms",
                "0",
                "--static-dir",
                "tests/it/fixtures/site",
                // Every test client comes from loopback; the tests of the per-address limit
                // set their own.
                "--max-connections-per-ip",
                "1000000",
            ])
            .args(&flags)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(limit) = descriptor_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec the closure only calls setrlimit, which is
            // async-signal-safe, on a struct of its own.
            unsafe {
                command.pre_exec(move || {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command.spawn().expect("start iorelay");
        let server = ServerProcess {
            address,
            flags,
            descriptor_limit,
            child,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while reqwest::get(format!("{}/healthz", server.url()))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "iorelay did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        server
    }

    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Resident memory of the process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_number("VmRSS:")
    }

    /// Threads the process runs.
    pub fn threads(&self) -> u64 {
        self.status_number("Threads:")
    }

    /// The number on the `/proc/PID/status` line that starts with `field`, without its unit.
    fn status_number(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no number on the {field} line"))
    }

    /// `connections` from `/healthz`.
    pub async fn connections(&self) -> u64 {
        let health: serde_json::Value = reqwest::get(format!("{}/healthz", self.url()))
            .await
            .expect("healthz")
            .json()
            .await
            .expect("json");
        health["connections"].as_u64().expect("connections")
    }

    /// Sends SIGTERM and waits up to `limit` for the exit; returns the exit code.
    pub fn terminate(&mut self, limit: std::time::Duration) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "SIGTERM sent");
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Starts the same binary with the same flags on the same port (after [`terminate`]).
    ///
    /// [`terminate`]: ServerProcess::terminate
    pub async fn restart(self) -> Self {
        let address = self.address;
        let flags = self.flags.clone();
        let descriptor_limit = self.descriptor_limit;
        drop(self);
        Self::start_on(address, flags, descriptor_limit).await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
