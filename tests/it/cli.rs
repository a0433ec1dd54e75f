//! The binary's answer to configurations it cannot serve.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_iorelay"))
        .args(args)
        .env_remove("PORT")
        .output()
        .expect("run iorelay");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn invalid_values_exit_2_naming_the_option() {
    let cases: [(&[&str], &str); 7] = [
        (&["--port", "70000"], "--port"),
        (&["--worker-threads", "5000"], "--worker-threads"),
        (&["--ping-timeout-ms", "0"], "--ping-timeout-ms"),
        (&["--ping-interval-ms", "soon"], "--ping-interval-ms"),
        (&["--transports", "carrier-pigeon"], "--transports"),
        (&["--cors-origin", "not an origin"], "--cors-origin"),
        (
            &["--cors-origin", "*", "--cors-credentials"],
            "--cors-origin",
        ),
    ];
    for (args, option) in cases {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?} should exit 2; stderr: {stderr}");
        assert!(
            stderr.contains(option),
            "{args:?}: stderr should name {option}: {stderr}"
        );
        let first_line = stderr.lines().next().unwrap_or_default();
        assert!(first_line.starts_with("error:"), "{args:?}: {stderr}");
    }
}

#[test]
fn unbindable_address_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port().to_string();
    let (code, stderr) = run(&["--host", "127.0.0.1", "--port", &port]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn unreachable_redis_is_a_clear_error_without_the_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    let (code, stderr) = run(&["--host", "127.0.0.1", "--port", "0", "--redis-url", &url]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot reach Redis at redis://:***@127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

/// Secrets given on the command line never show in logs, health or refusals.
#[test]
fn secrets_stay_out_of_logs_health_and_errors() {
    use std::io::Read;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let closed_redis = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let redis_url = format!("redis://:redis-pass-42@127.0.0.1:{closed_redis}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iorelay"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--auth-token",
            "token-secret-17",
            "--redis-url",
            &redis_url,
            "--redis-optional",
        ])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start iorelay");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let health = runtime.block_on(async {
        let url = format!("http://127.0.0.1:{port}/healthz");
        for _ in 0..200 {
            if let Ok(response) = reqwest::get(&url).await {
                return response.text().await.expect("body");
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("iorelay did not start");
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut output = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut output)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut output)
        .expect("read");
    for secret in ["token-secret-17", "redis-pass-42"] {
        assert!(!health.contains(secret), "{secret} in /healthz: {health}");
        assert!(!output.contains(secret), "{secret} in the logs:\n{output}");
    }
    assert!(
        output.contains("redis://:***@127.0.0.1"),
        "the URL is logged redacted:\n{output}"
    );
}
