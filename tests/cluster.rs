//! Several goTalk nodes on one PostgreSQL database (`docs/cluster.md`),
//! through the real binaries: alice on node A and bob on node B get live
//! pushes both ways; SYNC and ACK work across nodes and an ACK on one
//! ends custody on the other; a long-poll on B is woken by a SEND on A;
//! a token from A opens B; a `client_id` sent through both is stored
//! once; a LOGOUT on A unbinds bob's connection on B; kill -9 of a node
//! loses nothing acknowledged; and PostgreSQL restarting mid-stream makes
//! both nodes answer `unavailable` and come back by themselves.
//!
//! No timed assertion: where a test must know that B has announced bob
//! (so A's commit wakes B), it waits for the `presence` row itself, and
//! for a long-poll to wait, for B's own figures to say so.

mod common;
#[path = "common/http.rs"]
mod http;

use common::postgres::Postgres;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct-horse-battery";

/// Node `name` on `url`, with the cluster's shared key file.
fn node(pg: &Postgres, url: &str, name: &str) -> TestServer {
    let key = pg.key_file();
    TestServer::start(&[
        "--postgres",
        url,
        "--key-file",
        key.to_str().unwrap(),
        "--node-id",
        name,
        "--metrics",
        "127.0.0.1:0",
    ])
}

/// Waits until `user` has a bound connection recorded on node `name`
/// (the node writes it on its store thread, after the bind).
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

fn push_content(event: &Value) -> &str {
    assert_eq!(event["event"], "message", "{event}");
    event["message"]["content"].as_str().unwrap_or_default()
}

fn two_nodes() -> (Postgres, TestServer, TestServer) {
    let pg = Postgres::start();
    let url = pg.url();
    let a = node(&pg, &url, "a");
    let b = node(&pg, &url, "b");
    (pg, a, b)
}

#[test]
fn live_push_both_ways_and_a_token_from_a_opens_b() {
    let (pg, a, b) = two_nodes();
    let (mut alice, alice_token, _) = register_and_login(&a, "alice", PASSWORD);
    let (mut bob, _, _) = register_and_login(&b, "bob", PASSWORD);
    wait_present(&pg, "a", "alice");
    wait_present(&pg, "b", "bob");

    let sent = sent_id(&alice.text("SEND bob hello from A"));
    let event = bob.read_event();
    assert_eq!(push_content(&event), "hello from A");
    assert_eq!(event["message"]["id"], sent);
    assert_eq!(event["message"]["from"], "alice");
    sent_id(&bob.text("SEND alice hello from B"));
    assert_eq!(push_content(&alice.read_event()), "hello from B");
    alice.expect_nothing_before_pong();
    bob.expect_nothing_before_pong();

    // LOGIN on A, AUTH on B: one key file.
    let mut elsewhere = b.connect();
    assert_ok(&elsewhere.text(&format!("AUTH {alice_token}")));
    sent_id(&bob.text("SEND alice both connections"));
    assert_eq!(push_content(&alice.read_event()), "both connections");
    assert_eq!(push_content(&elsewhere.read_event()), "both connections");
}

#[test]
fn sync_and_ack_across_nodes_and_an_ack_on_b_ends_custody_on_a() {
    let (pg, a, b) = two_nodes();
    let (mut alice, _, _) = register_and_login(&a, "alice", PASSWORD);
    let mut setup = b.connect();
    register(&mut setup, "bob", PASSWORD);
    let sent: Vec<u64> = (0..3)
        .map(|i| sent_id(&alice.text(&format!("SEND bob m{i}"))))
        .collect();

    // Bob, on both nodes; SYNC on B sees what A stored.
    let mut bob_b = b.connect();
    login(&mut bob_b, "bob", PASSWORD);
    let mut bob_a = a.connect();
    login(&mut bob_a, "bob", PASSWORD);
    wait_present(&pg, "a", "bob");
    wait_present(&pg, "b", "bob");
    let reply = bob_b.request(&json!({"cmd": "sync"}));
    assert_eq!(message_ids(&reply), sent);
    let reply = bob_a.request(&json!({"cmd": "sync"}));
    assert_eq!(message_ids(&reply), sent);

    // A fourth, pushed to both; ACK everything on B.
    let fourth = sent_id(&alice.text("SEND bob m3"));
    assert_eq!(push_content(&bob_a.read_event()), "m3");
    assert_eq!(push_content(&bob_b.read_event()), "m3");
    assert_ok(&bob_b.request(&json!({"cmd": "ack", "upto": fourth})));
    // A's SYNC: nothing is in custody any more.
    let reply = bob_a.request(&json!({"cmd": "sync"}));
    assert_eq!(message_ids(&reply), Vec::<u64>::new(), "{reply}");
    let left = pg.psql("SELECT count(*) FROM messages");
    assert_eq!(left, "0");
    bob_a.expect_nothing_before_pong();
}

#[test]
fn a_long_poll_on_b_is_woken_by_a_send_on_a() {
    let (pg, a, b) = two_nodes();
    let (mut alice, _, _) = register_and_login(&a, "alice", PASSWORD);
    let (mut bob, _, _) = register_and_login(&b, "bob", PASSWORD);
    wait_present(&pg, "b", "bob");
    bob.send_line(&json!({"cmd": "sync", "wait_ms": 60000, "tag": "poll"}).to_string());
    // The long-poll waits on B before A's SEND.
    let stats = b.stats_when(|s| s["core"]["waiters"] == 1);
    assert_eq!(stats["core"]["waiters"], 1, "{stats}");
    let sent = sent_id(&alice.text("SEND bob wake up"));
    // The push and the long-poll's reply, in either order.
    let mut got_reply = None;
    let mut got_push = None;
    while got_reply.is_none() || got_push.is_none() {
        let line = bob.read_json();
        if is_event(&line) {
            got_push = Some(line);
        } else {
            got_reply = Some(line);
        }
    }
    let reply = got_reply.unwrap();
    assert_eq!(reply["tag"], "poll");
    assert_eq!(message_ids(&reply), [sent]);
    assert_eq!(push_content(&got_push.unwrap()), "wake up");
}

#[test]
fn an_http_long_poll_on_b_is_woken_by_a_send_on_a() {
    let (pg, a, b) = two_nodes();
    let (mut alice, _, _) = register_and_login(&a, "alice", PASSWORD);
    register(&mut a.connect(), "bob", PASSWORD);
    let (token, _) = http::http_login(b.addr(), "bob", PASSWORD);
    let addr = b.addr();
    let poll = std::thread::spawn(move || {
        http::post(addr, "/sync", &[("token", &token), ("wait", "60000")]).expect_json(200)
    });
    // The poll waits on B, and B has recorded bob for it.
    let stats = b.stats_when(|s| s["core"]["waiters"] == 1);
    assert_eq!(stats["core"]["waiters"], 1, "{stats}");
    wait_present(&pg, "b", "bob");
    let sent = sent_id(&alice.text("SEND bob over http"));
    let body = poll.join().unwrap();
    assert_eq!(body[0]["id"], sent, "{body}");
    assert_eq!(body[0]["content"], "over http", "{body}");
}

#[test]
fn a_client_id_through_a_and_through_b_is_stored_once() {
    let (_pg, a, b) = two_nodes();
    let (mut via_a, token, _) = register_and_login(&a, "alice", PASSWORD);
    register(&mut b.connect(), "bob", PASSWORD);
    let mut via_b = b.connect();
    assert_ok(&via_b.text(&format!("AUTH {token}")));
    let send = json!({"cmd": "send", "to": "bob", "content": "once", "client_id": "c-1"});
    let first = sent_id(&via_a.request(&send));
    let again = sent_id(&via_b.request(&send));
    assert_eq!(first, again);
    let mut bob = a.connect();
    login(&mut bob, "bob", PASSWORD);
    assert_eq!(sync_all_ids(&mut bob), [first]);
}

#[test]
fn logout_on_a_unbinds_the_connection_on_b() {
    let (pg, a, b) = two_nodes();
    let (mut bob_a, token, _) = register_and_login(&a, "bob", PASSWORD);
    let mut bob_b = b.connect();
    assert_ok(&bob_b.text(&format!("AUTH {token}")));
    let mut other_b = b.connect();
    let (other_token, _) = login(&mut other_b, "bob", PASSWORD);
    wait_present(&pg, "b", "bob");

    assert_ok(&bob_a.request(&json!({"cmd": "logout"})));
    assert_eq!(bob_b.read_event(), json!({"event": "revoked"}));
    assert_error(&bob_b.request(&json!({"cmd": "sync"})), "unauthorized");
    assert_error(&b.connect().text(&format!("AUTH {token}")), "unauthorized");
    other_b.expect_nothing_before_pong();

    // LOGOUT all through B reaches a connection on A.
    let mut again_a = a.connect();
    assert_ok(&again_a.text(&format!("AUTH {other_token}")));
    wait_present(&pg, "a", "bob");
    assert_ok(&other_b.request(&json!({"cmd": "logout", "all": true})));
    assert_eq!(again_a.read_event(), json!({"event": "revoked"}));
}

/// Alice on A sends `count` messages with client_ids, retrying each one
/// answered `unavailable`; returns the ids acknowledged `ok`.
fn send_all(alice: &mut LineClient, range: std::ops::Range<usize>) -> (BTreeSet<u64>, usize) {
    let mut ok = BTreeSet::new();
    let mut unavailable = 0;
    for i in range {
        loop {
            let reply = alice.request(&json!({"cmd": "send", "to": "bob",
                "content": format!("m{i}"), "client_id": format!("c{i}")}));
            if reply["ok"] == true {
                ok.insert(reply["id"].as_u64().unwrap());
                break;
            }
            assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
            unavailable += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (ok, unavailable)
}

#[test]
fn kill_9_of_a_node_mid_stream_loses_nothing_and_bob_drains_it_on_the_other() {
    let (pg, a, mut b) = two_nodes();
    let (mut alice, _, _) = register_and_login(&a, "alice", PASSWORD);
    let (mut bob, _, _) = register_and_login(&b, "bob", PASSWORD);
    wait_present(&pg, "b", "bob");
    let (before, _) = send_all(&mut alice, 0..100);
    // Bob has taken some of them on B when B dies.
    let first: Vec<u64> = before.iter().copied().take(10).collect();
    assert_ok(&bob.request(&json!({"cmd": "ack", "upto": first[9]})));
    b.kill();
    let (after, _) = send_all(&mut alice, 100..150);
    // Bob reconnects to A: every acknowledged SEND not ACKed, once, in order.
    let mut bob = a.connect();
    login(&mut bob, "bob", PASSWORD);
    let got = sync_all_ids(&mut bob);
    let expected: Vec<u64> = before.iter().chain(&after).copied().skip(10).collect();
    assert_eq!(got, expected);
    assert_eq!(
        sync_all_ids(&mut bob),
        Vec::<u64>::new(),
        "ACKed by the SYNCs"
    );
}

#[test]
fn a_postgres_restart_mid_stream_is_unavailable_then_both_nodes_recover() {
    let (pg, a, b) = two_nodes();
    let (mut alice, _, _) = register_and_login(&a, "alice", PASSWORD);
    let (mut bob, bob_token, _) = register_and_login(&b, "bob", PASSWORD);
    wait_present(&pg, "b", "bob");
    let (mut acknowledged, _) = send_all(&mut alice, 0..20);
    pg.stop_immediate();
    for i in 20..23 {
        let reply = alice.request(&json!({"cmd": "send", "to": "bob",
            "content": format!("m{i}"), "client_id": format!("c{i}")}));
        assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    }
    assert_eq!(
        bob.request(&json!({"cmd": "sync"}))["error"]["code"],
        "unavailable"
    );
    pg.start_again();
    // Retried with their client_ids until PostgreSQL is back.
    let (more, _) = send_all(&mut alice, 20..40);
    acknowledged.extend(more);
    // B comes back by itself too (its connections after their backoff):
    // a new connection binds, and gets live pushes.
    let mut bob2 = b.connect();
    loop {
        let reply = bob2.text(&format!("AUTH {bob_token}"));
        if reply["ok"] == true {
            break;
        }
        assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_present(&pg, "b", "bob");
    let got: BTreeSet<u64> = sync_all_retrying(&mut bob2).into_iter().collect();
    assert_eq!(got, acknowledged, "every SEND answered ok, once");
    let live = sent_id(&alice.text("SEND bob after the restart"));
    let mut seen = Vec::new();
    loop {
        let event = bob2.read_event();
        let id = event["message"]["id"].as_u64().unwrap();
        seen.push(id);
        if id == live {
            break;
        }
    }
    assert_eq!(seen.last(), Some(&live));
}

/// `--mailbox-limit` holds for one receiver written to through two nodes:
/// B learned bob's figures with its first SEND and hears nothing of what A
/// stores for him (bob is bound nowhere), so only the database, which
/// counts his mailbox in the row every writer locks, can refuse B's SENDs
/// past the cap. Each refusal is `rate_limited` naming the cap, and
/// exactly the cap is stored.
#[test]
fn the_mailbox_cap_holds_across_nodes() {
    let pg = Postgres::start();
    let url = pg.url();
    let start = |name: &str| {
        let key = pg.key_file();
        TestServer::start(&[
            "--postgres",
            &url,
            "--key-file",
            key.to_str().unwrap(),
            "--node-id",
            name,
            "--mailbox-limit",
            "5",
        ])
    };
    let a = start("a");
    let b = start("b");
    register(&mut a.connect(), "bob", PASSWORD);
    let (mut alice, _, _) = register_and_login(&a, "alice", PASSWORD);
    let (mut carol, _, _) = register_and_login(&b, "carol", PASSWORD);

    assert_ok(&carol.text("SEND bob one from B"));
    for n in 0..4 {
        assert_ok(&alice.text(&format!("SEND bob {n} from A")));
    }
    for n in 0..3 {
        let reply = carol.text(&format!("SEND bob {n} more from B"));
        assert_error(&reply, "rate_limited");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("--mailbox-limit"), "{reply}");
    }
    assert_eq!(
        pg.psql("SELECT count(*) FROM messages m JOIN users u ON u.id = m.to_id WHERE u.username = 'bob'"),
        "5"
    );
    // A SEND refused for a full mailbox keeps nothing of its client_id:
    // sent again once there is room, it is stored.
    let retry = json!({"cmd": "send", "to": "bob", "content": "retry", "client_id": "r-1"});
    assert_error(&carol.request(&retry), "rate_limited");
    let mut bob = b.connect();
    login(&mut bob, "bob", PASSWORD);
    let ids = message_ids(&bob.request(&json!({"cmd": "sync", "limit": 100})));
    assert_eq!(ids.len(), 5);
    assert_ok(&bob.request(&json!({"cmd": "ack", "upto": ids[4]})));
    assert_ok(&carol.request(&retry));
}
