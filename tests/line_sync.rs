//! SYNC and ACK over the line protocol: oldest first, `limit`, `after`
//! (which also acknowledges), ACK up to an id, acknowledged messages never
//! coming back, acknowledgements above the newest id not swallowing later
//! messages, and long-polling with `wait_ms`.

mod common;

use common::*;
use serde_json::json;
use std::thread;
use std::time::{Duration, Instant};

/// A server with alice (sender) and bob (receiver), both logged in, and
/// `n` messages from alice to bob already stored. Returns their ids.
struct Mailbox {
    server: TestServer,
    alice: LineClient,
    bob: LineClient,
    bob_token: String,
    ids: Vec<u64>,
}

fn mailbox_with(n: usize) -> Mailbox {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (bob_token, _) = login(&mut bob, "bob", "pw-b-secret");
    let ids = (0..n)
        .map(|i| sent_id(&alice.text(&format!("SEND bob m{i}"))))
        .collect();
    Mailbox {
        server,
        alice,
        bob,
        bob_token,
        ids,
    }
}

#[test]
fn sync_returns_unacknowledged_messages_oldest_first_and_does_not_ack() {
    let mut m = mailbox_with(5);
    let reply = m.bob.text("SYNC");
    assert_eq!(message_ids(&reply), m.ids);
    assert_eq!(
        message_contents(&reply),
        (0..5).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    // A plain SYNC acknowledges nothing.
    assert_eq!(message_ids(&m.bob.request(&json!({"cmd": "sync"}))), m.ids);
}

#[test]
fn limit_caps_the_count_and_keeps_the_oldest() {
    let mut m = mailbox_with(5);
    let reply = m.bob.request(&json!({"cmd": "sync", "limit": 2}));
    assert_eq!(message_ids(&reply), m.ids[..2].to_vec());
    let reply = m.bob.request(&json!({"cmd": "sync", "limit": 1}));
    assert_eq!(message_ids(&reply), m.ids[..1].to_vec());
    let reply = m.bob.request(&json!({"cmd": "sync", "limit": 100}));
    assert_eq!(message_ids(&reply), m.ids);
    // Paging: limit plus after walks the mailbox.
    let reply = m
        .bob
        .request(&json!({"cmd": "sync", "after": m.ids[1], "limit": 2}));
    assert_eq!(message_ids(&reply), m.ids[2..4].to_vec());
    let reply = m
        .bob
        .request(&json!({"cmd": "sync", "after": m.ids[3], "limit": 2}));
    assert_eq!(message_ids(&reply), m.ids[4..].to_vec());
}

#[test]
fn after_returns_newer_messages_and_acknowledges_up_to_it() {
    let mut m = mailbox_with(5);
    let reply = m.bob.request(&json!({"cmd": "sync", "after": m.ids[1]}));
    assert_eq!(message_ids(&reply), m.ids[2..].to_vec());
    // The first two are now acknowledged: gone for good, even with after 0.
    assert_eq!(message_ids(&m.bob.text("SYNC")), m.ids[2..].to_vec());
    assert_eq!(message_ids(&m.bob.text("SYNC 0")), m.ids[2..].to_vec());
    // after 0 acknowledged nothing.
    assert_eq!(message_ids(&m.bob.text("SYNC")), m.ids[2..].to_vec());
}

#[test]
fn after_between_ids_acknowledges_only_those_at_or_below_it() {
    let mut m = mailbox_with(3);
    // Ids grow but need not be consecutive; pick a value just below the
    // second id so that only the first is covered.
    let after = m.ids[1] - 1;
    assert!(after >= m.ids[0]);
    let reply = m.bob.request(&json!({"cmd": "sync", "after": after}));
    assert_eq!(message_ids(&reply), m.ids[1..].to_vec());
    assert_eq!(message_ids(&m.bob.text("SYNC")), m.ids[1..].to_vec());
}

#[test]
fn ack_acknowledges_everything_up_to_and_including_upto() {
    let mut m = mailbox_with(5);
    assert_ok(&m.bob.request(&json!({"cmd": "ack", "upto": m.ids[2]})));
    assert_eq!(message_ids(&m.bob.text("SYNC")), m.ids[3..].to_vec());
    assert_ok(&m.bob.text(&format!("ACK {}", m.ids[4])));
    assert_eq!(message_ids(&m.bob.text("SYNC")), Vec::<u64>::new());
}

#[test]
fn acknowledged_messages_never_come_back() {
    let mut m = mailbox_with(4);
    assert_ok(&m.bob.text(&format!("ACK {}", m.ids[2])));
    // A lower ACK un-acknowledges nothing.
    assert_ok(&m.bob.text(&format!("ACK {}", m.ids[0])));
    assert_ok(&m.bob.text("ACK 0"));
    assert_eq!(message_ids(&m.bob.text("SYNC")), vec![m.ids[3]]);
    assert_eq!(message_ids(&m.bob.text("SYNC 0")), vec![m.ids[3]]);
    let reply = m
        .bob
        .request(&json!({"cmd": "sync", "after": 0, "limit": 100}));
    assert_eq!(message_ids(&reply), vec![m.ids[3]]);

    // Nor on another connection of the same user.
    let mut again = m.server.connect();
    assert_ok(&again.request(&json!({"cmd": "auth", "token": m.bob_token})));
    assert_eq!(message_ids(&again.text("SYNC")), vec![m.ids[3]]);
    // Nor to a per-request token.
    let mut other = m.server.connect();
    let reply = other.request(&json!({"cmd": "sync", "token": m.bob_token}));
    assert_eq!(message_ids(&reply), vec![m.ids[3]]);
}

#[test]
fn ack_above_the_newest_id_does_not_swallow_later_messages() {
    let mut m = mailbox_with(3);
    let far = m.ids[2] + 1_000_000;
    assert_ok(&m.bob.text(&format!("ACK {far}")));
    assert_eq!(message_ids(&m.bob.text("SYNC")), Vec::<u64>::new());

    let later = sent_id(&m.alice.text("SEND bob arrives later"));
    let reply = m.bob.text("SYNC");
    assert_eq!(message_ids(&reply), vec![later]);
    assert_eq!(message_contents(&reply), vec!["arrives later".to_string()]);
}

#[test]
fn sync_after_above_the_newest_id_does_not_swallow_later_messages() {
    let mut m = mailbox_with(2);
    let far = m.ids[1] + 1_000_000;
    let reply = m.bob.request(&json!({"cmd": "sync", "after": far}));
    assert_eq!(message_ids(&reply), Vec::<u64>::new());
    assert_eq!(message_ids(&m.bob.text("SYNC")), Vec::<u64>::new());

    let later = sent_id(&m.alice.text("SEND bob arrives later"));
    assert_eq!(message_ids(&m.bob.text("SYNC")), vec![later]);
    // And a text-form SYNC above it behaves the same way.
    assert_eq!(
        message_ids(&m.bob.text(&format!("SYNC {}", later + 1_000_000))),
        Vec::<u64>::new()
    );
    let last = sent_id(&m.alice.text("SEND bob and another"));
    assert_eq!(message_ids(&m.bob.text("SYNC")), vec![last]);
}

#[test]
fn acknowledgements_survive_reconnecting() {
    let m = mailbox_with(3);
    let Mailbox {
        server,
        mut bob,
        bob_token,
        ids,
        ..
    } = m;
    assert_ok(&bob.text(&format!("ACK {}", ids[1])));
    assert_ok(&bob.text("QUIT"));
    bob.expect_eof();

    let mut again = server.connect();
    let reply = again.text(&format!("AUTH {bob_token}"));
    assert_ok(&reply);
    assert_eq!(message_ids(&again.text("SYNC")), vec![ids[2]]);
}

#[test]
fn long_poll_returns_as_soon_as_a_message_arrives() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (bob_token, _) = login(&mut bob, "bob", "pw-b-secret");

    // An unbound connection polling with bob's token: the reply is the only
    // way it can learn of the message.
    let mut poller = server.connect();
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        sent_id(&alice.text("SEND bob wake up"))
    });
    let started = Instant::now();
    let reply = poller.request(&json!({"cmd": "sync", "token": bob_token, "wait_ms": 5000}));
    let elapsed = started.elapsed();
    let id = sender.join().unwrap();

    assert_eq!(message_ids(&reply), vec![id], "{reply}");
    assert_eq!(message_contents(&reply), vec!["wake up".to_string()]);
    assert!(
        elapsed < Duration::from_millis(3000),
        "long poll should end when the message arrives (~200 ms), took {elapsed:?}"
    );
}

#[test]
fn long_poll_on_a_bound_connection_gets_the_reply_and_the_push() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");

    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        sent_id(&alice.text("SEND bob wake up"))
    });
    let started = Instant::now();
    let reply = bob.request(&json!({"cmd": "sync", "wait_ms": 5000, "tag": "poll"}));
    let elapsed = started.elapsed();
    let id = sender.join().unwrap();

    assert_eq!(reply["tag"], "poll");
    assert_eq!(message_ids(&reply), vec![id], "{reply}");
    assert!(
        elapsed < Duration::from_millis(3000),
        "long poll should end when the message arrives (~200 ms), took {elapsed:?}"
    );
    let pushed = assert_message_event(&bob.read_event());
    assert_eq!(pushed["id"], id);
}

#[test]
fn long_poll_with_after_acknowledges_then_waits_for_something_new() {
    let mut m = mailbox_with(2);
    let mut poller = m.server.connect();
    let token = m.bob_token.clone();
    let mut alice = m.alice;
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        sent_id(&alice.text("SEND bob newer"))
    });
    let started = Instant::now();
    let reply = poller.request(&json!({
        "cmd": "sync", "token": token, "after": m.ids[1], "wait_ms": 5000
    }));
    let elapsed = started.elapsed();
    let id = sender.join().unwrap();
    assert_eq!(message_ids(&reply), vec![id], "{reply}");
    assert!(
        elapsed < Duration::from_millis(3000),
        "long poll should end when the message arrives (~200 ms), took {elapsed:?}"
    );
    assert_eq!(message_ids(&m.bob.text("SYNC")), vec![id]);
}

#[test]
fn long_poll_with_messages_waiting_returns_them_at_once() {
    let mut m = mailbox_with(2);
    let started = Instant::now();
    let reply = m.bob.request(&json!({"cmd": "sync", "wait_ms": 5000}));
    assert_eq!(message_ids(&reply), m.ids);
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "nothing to wait for, yet SYNC took {:?}",
        started.elapsed()
    );
}

#[test]
fn long_poll_times_out_with_an_empty_list() {
    let server = TestServer::start(&[]);
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let started = Instant::now();
    let reply = bob.request(&json!({"cmd": "sync", "wait_ms": 500, "tag": 1}));
    let elapsed = started.elapsed();
    assert_eq!(reply["tag"], 1);
    assert_eq!(messages(&reply), Vec::<serde_json::Value>::new());
    assert!(
        elapsed >= Duration::from_millis(250),
        "wait_ms 500 with nothing to return answered after only {elapsed:?}"
    );
    // The connection is as good as before.
    assert_eq!(bob.text("PING")["pong"], true);
}

#[test]
fn long_poll_ignores_messages_for_other_users() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let mut carol = server.connect();
    register(&mut carol, "carol", "pw-c-secret");

    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        sent_id(&alice.text("SEND carol not for bob"));
        alice
    });
    let reply = bob.request(&json!({"cmd": "sync", "wait_ms": 1000}));
    sender.join().unwrap();
    assert_eq!(
        messages(&reply),
        Vec::<serde_json::Value>::new(),
        "bob's long poll returned someone else's message"
    );
    bob.expect_nothing_before_pong();
}

#[test]
fn a_waiting_sync_still_answers_in_request_order() {
    let server = TestServer::start(&[]);
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    bob.send_raw(
        b"{\"cmd\":\"sync\",\"wait_ms\":400,\"tag\":\"sync\"}\n{\"cmd\":\"ping\",\"tag\":\"ping\"}\n",
    );
    let first = bob.read_reply();
    let second = bob.read_reply();
    assert_eq!(
        first["tag"], "sync",
        "replies out of order: {first} then {second}"
    );
    assert_eq!(messages(&first), Vec::<serde_json::Value>::new());
    assert_eq!(second["tag"], "ping");
    assert_eq!(second["pong"], true);
}

#[test]
fn a_long_poller_that_hangs_up_loses_nothing() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (bob_token, _) = login(&mut bob, "bob", "pw-b-secret");
    drop(bob);

    // Start a long poll, then close the connection while it waits.
    let mut poller = server.connect();
    poller.send_line(&json!({"cmd": "sync", "token": bob_token, "wait_ms": 5000}).to_string());
    thread::sleep(Duration::from_millis(200));
    drop(poller);
    thread::sleep(Duration::from_millis(100));

    // The message that would have answered it is still there for bob.
    let id = sent_id(&alice.text("SEND bob are you there"));
    let mut again = server.connect();
    let reply = again.request(&json!({"cmd": "sync", "token": bob_token}));
    assert_eq!(message_ids(&reply), vec![id]);
    assert_eq!(alice.text("PING")["pong"], true);
}
