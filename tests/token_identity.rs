//! A token opens the account it was issued for, not whichever account now
//! has the same id. The scenarios an operator can walk into: a `--memory`
//! server restarted with the same `--key-file`, and a durable server whose
//! database was moved aside (its documented recovery) while `secret.key`
//! stayed. In both, the first account after the reset gets id 1 again.

mod common;

use common::*;
use std::time::Duration;

/// Mallory's old token must not open alice's account, over either door.
fn assert_token_opens_nothing(server: &TestServer, mallory_token: &str) {
    let (mut alice, _, alice_id) = register_and_login(server, "alice", "alice-password");
    assert_eq!(alice_id, 1, "the reset gave the id to a new account");
    assert_ok(&alice.text("SEND alice a note to self"));

    let mut mallory = server.connect();
    assert_error(
        &mallory.text(&format!("AUTH {mallory_token}")),
        "unauthorized",
    );
    let send = mallory.request(&serde_json::json!({
        "cmd": "send", "to": "alice", "content": "from mallory", "token": mallory_token,
    }));
    assert_error(&send, "unauthorized");
    let sync = mallory.request(&serde_json::json!({"cmd": "sync", "token": mallory_token}));
    assert_error(&sync, "unauthorized");

    // Alice's own token still works, and her message is still hers.
    let synced = alice.request(&serde_json::json!({"cmd": "sync"}));
    assert_eq!(message_contents(&synced), ["a note to self"]);
}

#[test]
fn a_token_from_before_a_memory_restart_opens_nothing() {
    let dir = TempDir::new("token-identity-memory");
    let key = dir.path().join("secret.key");
    let key = key.to_str().unwrap();
    let mut server = TestServer::start(&["--memory", "--key-file", key]);
    let (_, mallory_token, mallory_id) = register_and_login(&server, "mallory", "mallory-pw");
    assert_eq!(mallory_id, 1);
    server.restart(); // same key file, every account gone
    assert_token_opens_nothing(&server, &mallory_token);
}

#[test]
fn a_token_from_before_the_database_was_moved_aside_opens_nothing() {
    let data = TempDir::new("token-identity-durable");
    let mut server = TestServer::start(&["--data", data.arg()]);
    let (_, mallory_token, _) = register_and_login(&server, "mallory", "mallory-pw");
    server.kill();
    for file in ["gotalk.db", "gotalk.db-wal", "gotalk.db-shm"] {
        let path = data.path().join(file);
        if path.exists() {
            std::fs::rename(&path, data.path().join(format!("{file}.aside"))).unwrap();
        }
    }
    assert!(data.path().join("secret.key").exists(), "the key stays");
    server.start_again();
    assert_token_opens_nothing(&server, &mallory_token);
}

#[test]
fn tokens_still_work_across_an_ordinary_restart() {
    let data = TempDir::new("token-identity-restart");
    let mut server = TestServer::start(&["--data", data.arg()]);
    let (_, token, id) = register_and_login(&server, "carol", "carol-password");
    server.restart();
    let mut again = server.connect();
    let reply = with_timeout(&mut again, Duration::from_secs(10), |c| {
        c.text(&format!("AUTH {token}"))
    });
    assert_eq!(assert_ok(&reply)["user"]["id"], id);
}
