//! `gotalk admin` on two nodes sharing one PostgreSQL database, through
//! the real binaries: any node's socket acts for the whole cluster. A
//! disable on A unbinds bob's connection on B and B refuses his LOGIN;
//! a reset on B voids a token A issued; a delete on A ends the account
//! on B, and every subcommand answers on both.

mod admin_common;
mod common;

use admin_common::*;
use common::postgres::Postgres;
use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct-horse-battery";

/// Node `name`, with the cluster's key file and an admin socket in `dir`.
fn node(pg: &Postgres, url: &str, name: &str, dir: &TempDir) -> (TestServer, PathBuf) {
    let key = pg.key_file();
    let socket = dir.path().join(format!("{name}.sock"));
    let server = TestServer::start(&[
        "--postgres",
        url,
        "--key-file",
        key.to_str().unwrap(),
        "--node-id",
        name,
        "--admin-socket",
        socket.to_str().unwrap(),
    ]);
    (server, socket)
}

/// Waits until `user` has a bound connection recorded on node `name`.
fn wait_present(pg: &Postgres, name: &str, user: &str) {
    let sql = format!(
        "SELECT count(*) FROM presence p JOIN users u ON u.id = p.user_id \
         WHERE p.node = '{name}' AND u.username = '{user}'"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.psql(&sql) != "1" {
        assert!(Instant::now() < deadline, "{user} never recorded on {name}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// LOGIN on `server` succeeds before long (a change made through another
/// node reaches it with that node's wake-up).
fn eventually_logs_in(server: &TestServer, name: &str, password: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while login_reply(server, name, password)["ok"] != true {
        assert!(Instant::now() < deadline, "{name} never logged in");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn login_reply(server: &TestServer, name: &str, password: &str) -> Value {
    let mut c = server.connect();
    with_timeout(&mut c, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "login", "username": name, "password": password}))
    })
}

#[test]
fn any_nodes_socket_acts_for_the_whole_cluster() {
    let pg = Postgres::start();
    let url = pg.url();
    let dir = TempDir::new("admin-pg");
    let (a, sock_a) = node(&pg, &url, "a", &dir);
    let (b, sock_b) = node(&pg, &url, "b", &dir);

    // Added on A, logged in on B; both nodes list and show it.
    let bob_id = add_user(&sock_a, "bob", PASSWORD);
    add_user(&sock_b, "alice", PASSWORD);
    let mut bob = b.connect();
    let (token, _) = login(&mut bob, "bob", PASSWORD);
    wait_present(&pg, "b", "bob");
    let (mut alice, _, _) = {
        let mut c = a.connect();
        let (t, id) = login(&mut c, "alice", PASSWORD);
        (c, t, id)
    };
    for socket in [&sock_a, &sock_b] {
        let list = admin(socket, &["user", "list"]);
        assert_eq!(list.stdout.lines().count(), 2, "{}", list.stdout);
        let shown = admin(socket, &["user", "show", "bob"]).json();
        assert_eq!(shown["id"], bob_id);
        assert!(shown["last_login"].is_string(), "{shown}");
        assert!(admin(socket, &["stats"]).json()["core"].is_object());
    }
    assert_eq!(
        admin(&sock_b, &["user", "show", "bob"]).json()["sessions_online"],
        1
    );

    // Disabled through A: B unbinds bob and refuses his LOGIN.
    admin(&sock_a, &["user", "disable", "bob"]);
    assert_eq!(bob.read_event(), json!({"event": "revoked"}));
    assert_error(&login_reply(&b, "bob", PASSWORD), "unauthorized");
    assert_error(&login_reply(&a, "bob", PASSWORD), "unauthorized");
    let mut c = b.connect();
    assert_error(&c.text(&format!("AUTH {token}")), "unauthorized");
    // Kept for him meanwhile.
    assert_ok(&alice.text("SEND bob kept for you"));
    admin(&sock_b, &["user", "enable", "bob"]);
    // A hears of it through its wake-up.
    eventually_logs_in(&a, "bob", PASSWORD);
    let mut bob = b.connect();
    let (token, _) = login(&mut bob, "bob", PASSWORD);
    assert_eq!(messages(&bob.text("SYNC"))[0]["content"], "kept for you");
    wait_present(&pg, "b", "bob");

    // A new password through A: B's session of bob ends, the old
    // password and token fail on both nodes.
    let run = admin_with(
        &sock_a,
        &["user", "reset-password", "bob"],
        Some("another-password\n"),
    );
    assert!(run.ok, "{run:?}");
    assert_eq!(bob.read_event(), json!({"event": "revoked"}));
    let mut c = b.connect();
    assert_error(&c.text(&format!("AUTH {token}")), "unauthorized");
    assert_error(&login_reply(&b, "bob", PASSWORD), "unauthorized");
    eventually_logs_in(&a, "bob", "another-password");
    let mut bob = b.connect();
    let (token, _) = login(&mut bob, "bob", "another-password");
    wait_present(&pg, "b", "bob");

    // Logged out through A.
    admin(&sock_a, &["user", "logout", "bob"]);
    assert_eq!(bob.read_event(), json!({"event": "revoked"}));
    let mut bob = b.connect();
    let (token2, _) = login(&mut bob, "bob", "another-password");
    assert_ne!(token, token2);
    wait_present(&pg, "b", "bob");

    // Exported and deleted through A: B ends the session and forgets him.
    assert_ok(&bob.text("SEND alice from bob"));
    let export = admin(&sock_a, &["user", "export", "bob"]).json();
    assert_eq!(export["messages_sent"][0]["content"], "from bob");
    admin(&sock_a, &["user", "delete", "bob", "--yes"]);
    assert_eq!(bob.read_event(), json!({"event": "revoked"}));
    assert_error(&login_reply(&b, "bob", "another-password"), "unauthorized");
    let count = |sql: &str| pg.psql(&sql.replace("$1", &bob_id.to_string()));
    assert_eq!(count("SELECT count(*) FROM users WHERE id = $1"), "0");
    assert_eq!(count("SELECT count(*) FROM messages WHERE to_id = $1"), "0");
    assert_eq!(
        count("SELECT count(*) FROM client_ids WHERE sender = $1"),
        "0"
    );
    assert_eq!(
        count("SELECT count(*) FROM mailboxes WHERE user_id = $1"),
        "0"
    );
    let why = admin_fails(&sock_b, &["user", "show", "bob"]);
    assert!(why.contains("not_found"), "{why}");
    // alice still holds his message, from a deleted sender.
    let mut alice = a.connect();
    login(&mut alice, "alice", PASSWORD);
    let held = messages(&alice.text("SYNC"));
    assert_eq!(held[0]["from"], "(deleted)");
    // The name again, through B: a new identity; the old token fails.
    let mut c = b.connect();
    let new_id = register(&mut c, "bob", PASSWORD);
    assert_ne!(new_id, bob_id);
    assert_error(&c.text(&format!("AUTH {token2}")), "unauthorized");
}
