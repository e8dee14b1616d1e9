//! History (issue 18) on PostgreSQL (`--postgres`), through the real
//! binary: the scenarios of `tests/history/mod.rs` on a fresh database
//! each, and two nodes on one database, where a `sent` copy and a `read`
//! event reach a device bound on the other node.

mod common;
mod history;
#[path = "common/http.rs"]
mod http;

use common::postgres::Postgres;
use common::*;
use history::{device, PW};
use serde_json::json;
use std::time::{Duration, Instant};

/// A node on `url` with the cluster's shared key file and `extra`.
fn node(url: &str, extra: &[&str]) -> TestServer {
    let pg = Postgres::shared();
    let key = pg.ready_key_file();
    let mut args = vec!["--postgres", url, "--key-file", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

fn run(extra: &[&str], body: fn(&TestServer)) {
    let url = Postgres::shared().fresh_database();
    body(&node(&url, extra));
}

#[test]
fn two_devices_of_alice_and_one_of_bob() {
    run(&[], history::two_devices_of_alice_and_one_of_bob);
}

#[test]
fn pages_walk_back_without_gaps_while_messages_arrive() {
    run(&[], history::pages_walk_back_without_gaps);
}

#[test]
fn retention_prunes_the_older_and_keeps_the_rest() {
    run(
        &["--history-seconds", "5"],
        history::retention_prunes_the_older_and_keeps_the_rest,
    );
}

#[test]
fn no_history_behaves_as_before() {
    run(&["--no-history"], history::no_history_behaves_as_before);
}

#[test]
fn bad_input_is_refused_or_clamped() {
    run(&[], history::bad_input_is_refused_or_clamped);
}

#[test]
fn http_endpoints_answer_like_the_line() {
    run(&[], history::http_endpoints_answer_like_the_line);
}

/// Waits until `user` has a bound connection recorded on node `name`
/// (the node writes it on its store thread, after the bind).
fn wait_present(name: &str, user: &str) {
    let sql = format!(
        "SELECT count(*) FROM presence p JOIN users u ON u.id = p.user_id \
         WHERE p.node = '{name}' AND u.username = '{user}'"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while Postgres::shared().psql(&sql) != "1" {
        assert!(Instant::now() < deadline, "{user} never recorded on {name}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sent_and_read_events_reach_the_other_node() {
    // The cluster's own database (the others here use fresh ones), so
    // `psql` sees the presence rows.
    let url = Postgres::shared().url();
    let a = node(&url, &["--node-id", "a"]);
    let b = node(&url, &["--node-id", "b"]);
    let (mut alice_a, _, alice_id) = register_and_login(&a, "alice", PW);
    let (mut bob_a, _, bob_id) = register_and_login(&a, "bob", PW);
    let mut alice_b = device(&b, "alice");
    let mut bob_b = device(&b, "bob");
    wait_present("b", "alice");
    wait_present("b", "bob");

    let reply = alice_a.request(&json!({"cmd": "send", "to": "bob", "content": "across"}));
    let id = reply["id"].as_u64().expect("sent");
    assert_eq!(bob_a.read_event()["message"]["id"].as_u64(), Some(id));
    assert_eq!(bob_b.read_event()["message"]["id"].as_u64(), Some(id));
    let sent = alice_b.read_event();
    assert_eq!(sent["event"], "sent", "{sent}");
    assert_eq!(sent["message"]["id"].as_u64(), Some(id));
    assert_eq!(sent["message"]["content"], "across");

    let read = bob_a.request(&json!({"cmd": "read", "with": "alice", "upto": id}));
    assert_eq!(read["upto"].as_u64(), Some(id), "{read}");
    let expected = json!({"event": "read", "by": "bob", "by_id": bob_id, "with": "alice", "with_id": alice_id, "upto": id});
    assert_eq!(alice_a.read_event(), expected);
    assert_eq!(alice_b.read_event(), expected, "on the other node");
    assert_eq!(
        bob_b.read_event(),
        expected,
        "bob's device on the other node"
    );
    let list = bob_b.request(&json!({"cmd": "conversations"}));
    assert_eq!(
        list["conversations"][0]["unread"].as_u64(),
        Some(0),
        "{list}"
    );
}
