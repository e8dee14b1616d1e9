//! goTalk on PostgreSQL (`--postgres`), through the real binary: a SEND
//! answered `ok` survives kill -9 of its node; PostgreSQL restarting
//! mid-stream makes requests answer `unavailable` meanwhile, loses nothing
//! acknowledged, and the node recovers without a restart; and two nodes on
//! one database store a `client_id` sent through both once, and give a
//! username registered through both to one of them.

mod common;

use common::postgres::Postgres;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct-horse-battery";

/// A node on `url`, with the cluster's shared key file.
fn node(pg: &Postgres, url: &str) -> TestServer {
    let key = pg.key_file();
    TestServer::start(&["--postgres", url, "--key-file", key.to_str().unwrap()])
}

fn ok_id(reply: &Value) -> Option<u64> {
    (reply["ok"] == true)
        .then(|| reply["id"].as_u64())
        .flatten()
}

#[test]
fn a_send_answered_ok_survives_kill_9_of_the_node() {
    let pg = Postgres::start();
    let url = pg.url();
    let mut server = node(&pg, &url);
    let (mut alice, _, _) = register_and_login(&server, "alice", PASSWORD);
    let mut bob = server.connect();
    register(&mut bob, "bob", PASSWORD);
    let mut sent = Vec::new();
    for i in 0..50 {
        let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": format!("m{i}")}));
        sent.push(ok_id(&reply).unwrap_or_else(|| panic!("SEND: {reply}")));
    }
    server.restart(); // SIGKILL, then a new process on the same database
    let mut bob = server.connect();
    login(&mut bob, "bob", PASSWORD);
    assert_eq!(sync_all_ids(&mut bob), sent);
    let stored = pg.psql("SELECT count, bytes > 0 FROM mailboxes m JOIN users u ON u.id = m.user_id WHERE u.username = 'bob'");
    assert_eq!(stored, "0|f", "the ACKs emptied bob's mailbox row");
}

#[test]
fn a_postgres_restart_mid_stream_answers_unavailable_then_recovers_and_loses_nothing() {
    let pg = Postgres::start();
    let url = pg.url();
    let server = node(&pg, &url);
    let (mut alice, _, _) = register_and_login(&server, "alice", PASSWORD);
    let (mut bob, _, _) = register_and_login(&server, "bob", PASSWORD);

    // Alice sends with client_ids; a SEND answered unavailable is sent
    // again with the same client_id until it is answered ok.
    let mut acknowledged = BTreeSet::new();
    let mut unavailable = 0;
    let mut send = |alice: &mut LineClient, i: usize| -> bool {
        let reply = alice.request(&json!({"cmd": "send", "to": "bob",
            "content": format!("m{i}"), "client_id": format!("c{i}")}));
        if let Some(id) = ok_id(&reply) {
            acknowledged.insert(id);
            return true;
        }
        assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
        false
    };
    for i in 0..20 {
        assert!(send(&mut alice, i));
    }
    pg.stop_immediate();
    // While PostgreSQL is down every SEND is refused, none hangs.
    for i in 20..25 {
        let reply = alice.request(&json!({"cmd": "send", "to": "bob",
            "content": format!("m{i}"), "client_id": format!("c{i}")}));
        assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
        unavailable += 1;
    }
    pg.start_again();
    // The node reconnects by itself: the same SENDs go through.
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 20..40 {
        while !send(&mut alice, i) {
            assert!(Instant::now() < deadline, "the node did not recover");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(unavailable > 0);
    // Everything acknowledged reached bob, once: through the pushes he
    // got, and what SYNC still holds.
    let mut received: Vec<u64> = bob
        .take_events()
        .iter()
        .filter_map(|e| e["message"]["id"].as_u64())
        .collect();
    received.extend(sync_all_retrying(&mut bob));
    received.sort_unstable();
    received.dedup();
    let received: BTreeSet<u64> = received.into_iter().collect();
    assert_eq!(received, acknowledged);
    assert_eq!(acknowledged.len(), 40);
    assert!(
        server
            .stderr_text()
            .contains("connected to the database again"),
        "{}",
        server.stderr_text()
    );
    let lost_lines = server
        .stderr_text()
        .matches("database connection is lost")
        .count();
    assert!(
        lost_lines <= 3,
        "one line per thread (writer, reader, listener) and outage: {lost_lines}"
    );
}

#[test]
fn two_nodes_store_a_client_id_once_and_give_a_name_to_one_of_them() {
    let pg = Postgres::start();
    let url = pg.url();
    let a = node(&pg, &url);
    let b = node(&pg, &url);
    let (mut alice_a, _, _) = register_and_login(&a, "alice", PASSWORD);
    let mut alice_b = b.connect();
    login(&mut alice_b, "alice", PASSWORD);
    let mut bob = b.connect();
    register(&mut bob, "bob", PASSWORD);

    let send = json!({"cmd": "send", "to": "bob", "content": "once", "client_id": "k-1"});
    let first = alice_a.request(&send);
    let again = alice_b.request(&send);
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(
        first["id"], again["id"],
        "the retry names the first message"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM messages"), "1");

    // One name through both nodes at once: one account, one conflict.
    let mut on_a = a.connect();
    let mut on_b = b.connect();
    let register = json!({"cmd": "register", "username": "zed", "password": PASSWORD});
    on_a.send_line(&register.to_string());
    on_b.send_line(&register.to_string());
    let replies = [
        with_timeout(&mut on_a, HASH_TIMEOUT, |c| c.read_reply()),
        with_timeout(&mut on_b, HASH_TIMEOUT, |c| c.read_reply()),
    ];
    assert_one_registered_one_conflict(&replies);
    assert_eq!(
        pg.psql("SELECT count(*) FROM users WHERE username = 'zed'"),
        "1"
    );
    // Both nodes still serve, and the account works through either.
    login(&mut on_a, "zed", PASSWORD);
    login(&mut on_b, "zed", PASSWORD);
}
