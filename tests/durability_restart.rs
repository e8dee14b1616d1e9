//! The durable store across restarts, and the ways it refuses to start:
//! pending messages, acknowledgements, accounts and the token key survive a
//! kill and a restart on the same `--data` directory; ids keep growing even
//! when every message was acknowledged; a second server on the same
//! directory, an unusable directory, a damaged database file and a database
//! from a newer gotalk are clear errors with a non-zero exit.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

/// How long a server that must refuse to start may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends `content` from `client` to `to`; returns the new id.
#[track_caller]
fn send(client: &mut LineClient, to: &str, content: &str) -> u64 {
    sent_id(&client.request(&json!({"cmd": "send", "to": to, "content": content})))
}

/// Runs `gotalk --listen 127.0.0.1:0 <args>`, which must exit non-zero
/// without ever listening; returns its stderr.
#[track_caller]
fn refused_start(args: &[&str]) -> String {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let run = run_cli(&all, EXIT_TIMEOUT);
    let status = run.status.unwrap_or_else(|| {
        panic!(
            "gotalk {args:?} should refuse to start but was still running after {EXIT_TIMEOUT:?}\n{}",
            run.stderr
        )
    });
    assert!(
        !status.success(),
        "gotalk {args:?} should exit non-zero, got {status}\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("listening on"),
        "gotalk {args:?} listened before refusing:\n{}",
        run.stderr
    );
    run.stderr
}

#[test]
fn pending_messages_acks_accounts_and_the_token_key_survive_a_restart() {
    let dir = TempDir::new("restart");
    let mut server = TestServer::start(&["--data", dir.arg()]);
    let (mut alice, _, alice_id) = register_and_login(&server, "alice", "pw-alice-secret");
    let (mut bob, bob_token, bob_id) = register_and_login(&server, "bob", "pw-bob-secret");
    let ids: Vec<u64> = (0..5)
        .map(|i| send(&mut alice, "bob", &format!("before restart {i}")))
        .collect();
    assert_ok(&bob.request(&json!({"cmd": "ack", "upto": ids[1]})));
    drop((alice, bob));

    server.restart();

    // The token from before the restart still works: the key was kept.
    let mut bob = server.connect();
    let reply = bob.request(&json!({"cmd": "auth", "token": bob_token}));
    assert_ok(&reply);
    assert_eq!(reply["user"]["id"], bob_id, "AUTH reply: {reply}");
    let got = messages(&bob.request(&json!({"cmd": "sync"})));
    assert_eq!(got.len(), 3, "exactly the unacknowledged ones: {got:?}");
    for (m, (i, id)) in got.iter().zip(ids.iter().enumerate().skip(2)) {
        let content = format!("before restart {i}");
        let expected = Expected {
            from: "alice",
            from_id: alice_id,
            to: "bob",
            to_id: bob_id,
            content: &content,
            client_id: None,
        };
        assert_eq!(assert_message(m, &expected), *id);
    }

    // Passwords were stored too, and new ids continue above the old ones.
    let mut alice = server.connect();
    login(&mut alice, "alice", "pw-alice-secret");
    let after = send(&mut alice, "bob", "after restart");
    assert!(after > ids[4], "new id {after} must exceed {}", ids[4]);

    // Acknowledge everything: the ids must still grow after a restart,
    // although no stored message remembers the highest one.
    assert_ok(&bob.request(&json!({"cmd": "ack", "upto": after})));
    drop((alice, bob));
    server.restart();
    let mut alice = server.connect();
    login(&mut alice, "alice", "pw-alice-secret");
    let mut bob = server.connect();
    login(&mut bob, "bob", "pw-bob-secret");
    assert!(
        messages(&bob.request(&json!({"cmd": "sync"}))).is_empty(),
        "acknowledged messages must not come back"
    );
    let newest = send(&mut alice, "bob", "after the second restart");
    assert!(newest > after, "new id {newest} must exceed {after}");
}

#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = TempDir::new("lock");
    let server = TestServer::start(&["--data", dir.arg()]);
    let stderr = refused_start(&["--data", dir.arg()]);
    assert!(
        stderr.contains("another gotalk is using") && stderr.contains(dir.arg()),
        "the refusal should name the directory and say why:\n{stderr}"
    );
    // The first server was not disturbed.
    let mut client = server.connect();
    assert_ok(&client.text("PING"));
}

#[test]
fn a_data_directory_that_cannot_be_created_is_a_clear_error() {
    let dir = TempDir::new("baddir");
    let file = dir.path().join("a-regular-file");
    std::fs::write(&file, b"not a directory").unwrap();

    // Under a regular file nothing can be created, not even by root.
    let under = file.join("data");
    let stderr = refused_start(&["--data", under.to_str().unwrap()]);
    assert!(
        stderr.contains("cannot create the data directory")
            && stderr.contains(under.to_str().unwrap()),
        "the error should name the directory:\n{stderr}"
    );

    let stderr = refused_start(&["--data", file.to_str().unwrap()]);
    assert!(
        stderr.contains("not a directory") && stderr.contains(file.to_str().unwrap()),
        "a regular file given as --data should be named as such:\n{stderr}"
    );
}

#[test]
fn a_damaged_database_file_is_a_clear_error() {
    let dir = TempDir::new("garbage");
    let garbage: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let db = dir.path().join("gotalk.db");
    std::fs::write(&db, &garbage).unwrap();
    let stderr = refused_start(&["--data", dir.arg()]);
    assert!(
        stderr.contains(db.to_str().unwrap()) && stderr.contains("not a database"),
        "the error should name the file and the problem:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        garbage,
        "the damaged file must be left as it was, for inspection"
    );
}

#[test]
fn a_database_written_by_a_newer_gotalk_is_refused() {
    let dir = TempDir::new("newer");
    drop(TestServer::start(&["--data", dir.arg()]));
    let conn = rusqlite::Connection::open(dir.path().join("gotalk.db")).unwrap();
    conn.pragma_update(None, "user_version", 9999).unwrap();
    drop(conn);
    let stderr = refused_start(&["--data", dir.arg()]);
    assert!(
        stderr.contains("9999") && stderr.contains("newer"),
        "the error should say the schema is newer:\n{stderr}"
    );
}
