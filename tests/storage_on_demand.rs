//! RAM holds what is active: accounts outside a cache of one are read from
//! the store, and a backlog far larger than the mailbox window comes back
//! complete, once and in id order, through SYNC/ACK and across a restart.

mod common;

use common::*;
use serde_json::{json, Value};

const BACKLOG: usize = 5000;

fn ids_of(reply: &Value) -> Vec<u64> {
    reply["messages"]
        .as_array()
        .map(|m| m.iter().map(|m| m["id"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn a_backlog_beyond_the_window_and_the_cache_comes_back_whole_and_in_order() {
    let dir = TempDir::new("on-demand");
    let args: [&str; 8] = [
        "--data",
        dir.arg(),
        "--account-cache",
        "1",
        "--mailbox-window",
        "100",
        "--metrics",
        "127.0.0.1:0",
    ];
    let mut server = TestServer::start(&args);
    let mut setup = server.connect();
    register(&mut setup, "bob-offline", "bob-password-1");
    register(&mut setup, "carol-sender", "carol-password-1");
    let (mut carol, _, _) = register_and_login(&server, "alice-other", "alice-password-1");
    drop(carol);
    carol = server.connect();
    login(&mut carol, "carol-sender", "carol-password-1");
    // Pipelined: every SEND names a user the cache of one may not hold.
    for n in 0..BACKLOG {
        carol.send_line(
            &json!({"cmd": "send", "to": "bob-offline", "content": format!("m{n}")}).to_string(),
        );
    }
    let sent: Vec<u64> = (0..BACKLOG)
        .map(|_| {
            let reply = carol.read_reply();
            assert_ok(&reply);
            reply["id"].as_u64().unwrap()
        })
        .collect();
    assert!(
        sent.windows(2).all(|w| w[0] < w[1]),
        "replies in request order"
    );

    // A restart reads no message; the first SYNC still finds the oldest.
    server.restart();
    let mut bob = server.connect();
    bob.send_line(
        &json!({"cmd": "login", "username": "bob-offline", "password": "bob-password-1"})
            .to_string(),
    );
    bob.send_line(&json!({"cmd": "sync", "limit": 3}).to_string());
    bob.send_line(&json!({"cmd": "ping"}).to_string());
    assert_ok(&bob.read_reply());
    assert_eq!(
        ids_of(&bob.read_reply()),
        sent[..3].to_vec(),
        "replies keep their order"
    );
    assert_eq!(bob.read_reply()["pong"], json!(true), "PING answered last");
    let stats = server.stats();
    let resident = stats["core"]["resident_messages"].as_u64().unwrap();
    assert!(
        resident <= 100,
        "{resident} messages in RAM, the window is 100"
    );

    // SYNC/ACK drains it all: complete, once, in id order.
    assert_eq!(sync_all_ids(&mut bob), sent);
    let last = *sent.last().unwrap();
    assert_ok(&bob.request(&json!({"cmd": "ack", "upto": last})));
    assert!(ids_of(&bob.request(&json!({"cmd": "sync"}))).is_empty());

    // A message to the logged-in user is pushed.
    let mut carol = server.connect();
    login(&mut carol, "carol-sender", "carol-password-1");
    let reply = carol.request(&json!({"cmd": "send", "to": "bob-offline", "content": "live"}));
    assert_ok(&reply);
    assert_eq!(bob.read_event()["message"]["content"], "live");
}

/// What AUTH does with a backlog larger than the window: nothing of it is
/// pushed (a push is for a message stored while the connection is bound,
/// as the contract says); SYNC and ACK drain it, complete, once and in id
/// order, while RAM holds at most the window.
#[test]
fn after_auth_a_backlog_is_not_pushed_and_sync_ack_drain_it_once_in_order() {
    let dir = TempDir::new("on-demand-auth");
    let args = [
        "--data",
        dir.arg(),
        "--mailbox-window",
        "100",
        "--metrics",
        "127.0.0.1:0",
    ];
    let server = TestServer::start(&args);
    let (bob, bob_token, _) = register_and_login(&server, "bob-offline", "bob-password-1");
    drop(bob);
    let (mut carol, _, _) = register_and_login(&server, "carol-sender", "carol-password-1");
    for n in 0..BACKLOG {
        carol.send_line(
            &json!({"cmd": "send", "to": "bob-offline", "content": format!("m{n}")}).to_string(),
        );
    }
    let sent: Vec<u64> = (0..BACKLOG).map(|_| sent_id(&carol.read_reply())).collect();

    let mut bob = server.connect();
    assert_ok(&bob.text(&format!("AUTH {bob_token}")));
    bob.expect_nothing_before_pong();
    let mut got = Vec::new();
    loop {
        let ids = ids_of(&bob.request(&json!({"cmd": "sync", "limit": 1000})));
        let Some(&last) = ids.last() else { break };
        got.extend(ids);
        assert_ok(&bob.request(&json!({"cmd": "ack", "upto": last})));
        let stats = server.stats();
        let resident = stats["core"]["resident_messages"].as_u64().unwrap();
        assert!(resident <= 100, "{resident} messages in RAM: {stats}");
    }
    assert_eq!(got, sent, "complete, once, in order");
    assert!(bob.take_events().is_empty(), "no push for the backlog");
    assert_eq!(server.stats()["core"]["pending_messages"], 0);

    // A message stored while bob is bound is pushed.
    assert_ok(&carol.request(&json!({"cmd": "send", "to": "bob-offline", "content": "live"})));
    assert_eq!(bob.read_event()["message"]["content"], "live");
}

/// The database's unique key decides a repeated client_id, also after the
/// server was killed and started again with nothing in RAM: the repeat stores
/// nothing and is answered with the first message's id and time.
#[test]
fn a_client_id_is_refused_across_a_restart_with_the_first_message_named() {
    let dir = TempDir::new("on-demand-cid");
    let mut server = TestServer::start(&["--data", dir.arg()]);
    let mut setup = server.connect();
    register(&mut setup, "bob-receiver", "bob-password-1");
    drop(setup);
    let (mut alice, _, _) = register_and_login(&server, "alice-sender", "alice-password-1");
    let send = |c: &mut LineClient, content: &str| {
        c.request(
            &json!({"cmd": "send", "to": "bob-receiver", "content": content,
                          "client_id": "draft-1"}),
        )
    };
    let first = send(&mut alice, "first");
    let (first_id, first_ts) = (sent_id(&first), first["ts"].as_u64().unwrap());
    drop(alice);

    server.kill();
    server.start_again();
    let mut alice = server.connect();
    login(&mut alice, "alice-sender", "alice-password-1");
    let again = send(&mut alice, "second try");
    assert_eq!(sent_id(&again), first_id, "{again}");
    assert_eq!(again["ts"].as_u64(), Some(first_ts), "{again}");

    let mut bob = server.connect();
    login(&mut bob, "bob-receiver", "bob-password-1");
    let messages = bob.request(&json!({"cmd": "sync"}));
    assert_eq!(ids_of(&messages), [first_id], "stored once");
    assert_eq!(messages["messages"][0]["content"], "first");
}
