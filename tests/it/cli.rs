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
    let cases: [(&[&str], &str); 6] = [
        (&["--port", "70000"], "--port"),
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
