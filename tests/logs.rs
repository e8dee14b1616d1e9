//! What the log says: the limits in force at start, logins and failed
//! logins (never a password or a token), limits reached (once per while,
//! not once per request), and the stop.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn logins_limits_and_the_start_are_logged_without_secrets() {
    let mut server = TestServer::start(&["--mailbox-limit", "2"]);
    let (mut alice, token, _) = register_and_login(&server, "alice", "alice-secret-pw");
    let mut intruder = server.connect();
    let reply = with_timeout(&mut intruder, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "login", "username": "alice", "password": "guess-one-two"}))
    });
    assert_error(&reply, "unauthorized");
    register(&mut server.connect(), "bob", "bob-secret-pw");
    for i in 0..5 {
        alice.text(&format!("SEND bob message {i}"));
    }
    assert_eq!(alice.text("PING")["pong"], true);

    // The log is read from the server's stderr by a thread of the harness:
    // wait until it has the refusal's line before reading it all.
    assert!(
        server.wait_for_stderr("(--mailbox-limit)", Duration::from_secs(10)),
        "no limit line:\n{}",
        server.stderr_text()
    );
    let log = server.stderr_text();
    assert!(
        log.contains("limits: "),
        "the start line names the limits:\n{log}"
    );
    assert!(log.contains("login: alice (id 1) from 127.0.0.1"), "{log}");
    assert!(
        log.contains("failed login for alice from 127.0.0.1"),
        "{log}"
    );
    assert_eq!(
        log.matches("limit reached:").count(),
        1,
        "three refusals, one line:\n{log}"
    );
    assert!(log.contains("(--mailbox-limit)"), "{log}");
    for secret in [
        "alice-secret-pw",
        "guess-one-two",
        "bob-secret-pw",
        token.as_str(),
    ] {
        assert!(!log.contains(secret), "the log shows a secret:\n{log}");
    }

    server.signal(libc::SIGTERM);
    assert!(server
        .wait_exit(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    let log = server.stderr_text();
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert!(log.contains("gotalk stopped"), "{log}");
}
