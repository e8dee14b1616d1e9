//! Usernames are compared folded (ASCII case, and `.`, `-`, `_` as one),
//! over real sockets: a look-alike of a taken name is `conflict`, a new
//! name with a separator at an end or two in a row is `bad_request`, and
//! LOGIN, SEND and `/getuseridbyname` find an account by any spelling of
//! its name. A SQLite database from before the rule with clashing names is
//! migrated: the clash is reported, no account is merged, and each logs in
//! by its exact name.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use serde_json::json;

fn register_reply(c: &mut LineClient, name: &str) -> serde_json::Value {
    with_timeout(c, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "register", "username": name, "password": "a-long-password"}))
    })
}

fn login_reply(c: &mut LineClient, name: &str, password: &str) -> serde_json::Value {
    with_timeout(c, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "login", "username": name, "password": password}))
    })
}

#[test]
fn look_alikes_are_refused_and_any_spelling_finds_the_account() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let alice = register(&mut c, "alice", "a-long-password");
    register(&mut c, "john.smith", "a-long-password");
    for look_alike in ["Alice", "ALICE", "John_Smith", "JOHN-SMITH"] {
        let reply = register_reply(&mut c, look_alike);
        assert_error(&reply, "conflict");
        assert!(error_message(&reply).contains("case"), "{reply}");
    }
    for odd in ["alice.", ".alice", "al..ice", "bob_", "b-_b"] {
        assert_error(&register_reply(&mut c, odd), "bad_request");
    }

    // LOGIN by another spelling logs in the account, named as registered.
    let mut a = server.connect();
    let reply = login_reply(&mut a, "ALICE", "a-long-password");
    assert_eq!(
        assert_ok(&reply)["user"],
        json!({"id": alice, "username": "alice"})
    );
    // SEND to another spelling reaches it.
    let (mut bob, _, _) = register_and_login(&server, "bob", "a-long-password");
    assert_ok(&bob.text("SEND Alice hello"));
    let event = a.read_event();
    assert_eq!(event["message"]["to"], "alice", "{event}");
    assert_eq!(event["message"]["content"], "hello", "{event}");
    // And the HTTP lookup.
    let body =
        http::post(server.addr(), "/getuseridbyname", &[("username", "aLiCe")]).expect_json(200);
    assert_eq!(body, json!({"Id": alice, "Name": "alice"}));
}

#[test]
fn a_database_with_clashing_names_starts_reports_them_and_keeps_both_accounts() {
    let data = TempDir::new("name-clash");
    let mut server = TestServer::start(&["--data", data.arg()]);
    server.kill();
    // Back to the schema before names were folded (version 7), with
    // accounts it allowed.
    {
        let conn = rusqlite::Connection::open(data.path().join("gotalk.db")).unwrap();
        conn.execute_batch(
            "DROP INDEX users_by_name_key; ALTER TABLE users DROP COLUMN name_key; \
             ALTER TABLE users DROP COLUMN last_login; \
             DROP TABLE pairs; DROP TABLE conversations; PRAGMA user_version = 7;",
        )
        .unwrap();
        for (id, name, password) in [
            (1, "alice", "first-alice-pw"),
            (2, "Alice", "second-alice-pw"),
            (3, "carol", "carol-password"),
        ] {
            conn.execute(
                "INSERT INTO users (id, username, password_hash, created, identity) \
                 VALUES (?1, ?2, ?3, 0, randomblob(16))",
                rusqlite::params![id, name, old_hash(password)],
            )
            .unwrap();
        }
    }
    server.start_again();
    assert!(
        server.wait_for_stderr("username clash", std::time::Duration::from_secs(5)),
        "{}",
        server.stderr_text()
    );
    let log = server.stderr_text();
    assert!(log.contains("'Alice' and 'alice'"), "{log}");
    assert!(!log.contains("'carol'"), "{log}");

    // Both log in by their exact names, each with its own password.
    let mut c = server.connect();
    let reply = login_reply(&mut c, "alice", "first-alice-pw");
    assert_eq!(assert_ok(&reply)["user"]["id"], 1, "{reply}");
    let reply = login_reply(&mut c, "Alice", "second-alice-pw");
    assert_eq!(assert_ok(&reply)["user"]["id"], 2, "{reply}");
    // Another spelling reaches the older account.
    let reply = login_reply(&mut c, "ALICE", "first-alice-pw");
    assert_eq!(assert_ok(&reply)["user"]["username"], "alice", "{reply}");
    assert_error(
        &login_reply(&mut c, "ALICE", "second-alice-pw"),
        "unauthorized",
    );
    // No third look-alike.
    assert_error(&register_reply(&mut c, "aLiCe"), "conflict");
    assert_error(&register_reply(&mut c, "CAROL"), "conflict");

    // The same after another start (nothing was merged).
    server.restart();
    let mut c = server.connect();
    let reply = login_reply(&mut c, "Alice", "second-alice-pw");
    assert_eq!(assert_ok(&reply)["user"]["id"], 2, "{reply}");
    assert!(server.stderr_text().contains("username clash"));
}
