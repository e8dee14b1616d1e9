//! Start-up as an operator meets it: a start that fails creates nothing,
//! names resolve, contradictory flags are refused with a clear error, each
//! fatal error is printed once, and `--log-format json` writes one JSON
//! object per line.

mod common;

use common::*;
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn a_start_without_its_port_creates_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("startup-nothing");
    let data = dir.path().join("data");
    let run = run_cli(
        &["--listen", &port, "--data", data.to_str().unwrap()],
        Duration::from_secs(20),
    );
    let status = run.status.expect("gotalk exits when the port is taken");
    assert!(!status.success(), "{run:?}");
    assert!(!data.exists(), "nothing is created: {run:?}");
    assert_eq!(
        run.stderr.matches("cannot listen on").count(),
        1,
        "the fatal error is printed once: {run:?}"
    );
}

#[test]
fn memory_and_data_together_are_refused() {
    let run = run_cli(
        &["--memory", "--data", "somewhere"],
        Duration::from_secs(20),
    );
    let status = run.status.expect("exits at once");
    assert_eq!(status.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("--memory"), "{run:?}");
}

#[test]
fn a_listen_name_is_resolved() {
    // Find a free port, then name it by host name.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = run_cli(
        &["--listen", &format!("localhost:{port}"), "--version"],
        Duration::from_secs(20),
    );
    assert!(run.status.expect("exits").success(), "{run:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let server = TestServer::start(&["--log-format", "json"]);
    let mut c = server.connect();
    assert_eq!(c.text("PING")["pong"], true);
    let log = server.stderr_text();
    let mut saw_ready = false;
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["ts"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert!(
            value["level"].is_string() && value["msg"].is_string(),
            "{line}"
        );
        saw_ready |= value["msg"].as_str().unwrap().contains("listening on");
    }
    assert!(saw_ready, "{log}");
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("startup-shared-key");
    let key = dir.path().join("shared.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = run_cli(
        &[
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--key-file",
            key.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    let status = run.status.expect("exits at once");
    assert!(!status.success(), "{run:?}");
    assert!(run.stderr.contains("chmod 600"), "{run:?}");
    assert!(!run.stderr.contains("listening on"), "{run:?}");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = TestServer::start(&["--memory", "--key-file", key.to_str().unwrap()]);
    assert_eq!(server.connect().text("PING")["pong"], true);
}
