//! The history scenarios (issue 18), each a function of a running server,
//! so `history_sqlite.rs`, `history_memory.rs` and `history_postgres.rs`
//! run the same bodies on each store: two devices of alice and one of bob
//! (push, `sent`, HISTORY after ACK, `read` events, unread counts), pages
//! walking back across 1,000 messages while more arrive, retention, bad
//! input, and the HTTP endpoints.

#![allow(dead_code)]

use super::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub const PW: &str = "pw-history-secret";

fn ok(reply: &Value) -> &Value {
    assert_eq!(reply["ok"], true, "expected ok: {reply}");
    reply
}

fn ids(reply: &Value) -> Vec<u64> {
    ok(reply)["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages: {reply}"))
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply["ok"], false, "expected an error: {reply}");
    reply["error"]["code"].as_str().unwrap()
}

/// A second connection of `name`, logged in.
pub fn device(server: &TestServer, name: &str) -> LineClient {
    let mut c = server.connect();
    login(&mut c, name, PW);
    c
}

/// Sends `n` messages from `from` to `to` pipelined; returns their ids.
pub fn send_many(from: &mut LineClient, to: &str, n: usize) -> Vec<u64> {
    let mut lines = String::new();
    for i in 0..n {
        lines.push_str(&json!({"cmd": "send", "to": to, "content": format!("m{i}")}).to_string());
        lines.push('\n');
    }
    from.send_raw(lines.as_bytes());
    (0..n)
        .map(|_| ok(&from.read_reply())["id"].as_u64().unwrap())
        .collect()
}

/// Two devices of alice and one of bob: push, `sent`, HISTORY after ACK
/// (not SYNC), `read` events on alice's devices and bob's other one, and
/// `conversations` before and after.
pub fn two_devices_of_alice_and_one_of_bob(server: &TestServer) {
    let (mut alice1, _, alice_id) = register_and_login(server, "alice", PW);
    let mut alice2 = device(server, "alice");
    let (mut bob, _, bob_id) = register_and_login(server, "bob", PW);

    let reply = alice1.request(&json!({"cmd": "send", "to": "bob", "content": "hello bob"}));
    let id = ok(&reply)["id"].as_u64().unwrap();
    let pushed = bob.read_event();
    assert_eq!(
        (pushed["event"].as_str(), pushed["message"]["id"].as_u64()),
        (Some("message"), Some(id))
    );
    let sent = alice2.read_event();
    assert_eq!(sent["event"], "sent", "{sent}");
    assert_eq!(
        sent["message"], pushed["message"],
        "the stored message as pushed"
    );
    assert!(sent.get("ok").is_none());
    alice1.expect_nothing_before_pong();

    // Before: one unread from alice.
    let list = ok(&bob.request(&json!({"cmd": "conversations"}))).clone();
    assert_eq!(list["more"], false);
    let first = &list["conversations"][0];
    assert_eq!(
        (first["with"].as_str(), first["with_id"].as_u64()),
        (Some("alice"), Some(alice_id))
    );
    assert_eq!(
        (first["unread"].as_u64(), first["read_upto"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(first["last"]["id"].as_u64(), Some(id));

    // ACK ends custody; the conversation keeps it.
    ok(&bob.request(&json!({"cmd": "ack", "upto": id})));
    let mut bob2 = device(server, "bob");
    assert!(
        ids(&bob2.text("SYNC")).is_empty(),
        "acknowledged: not in SYNC"
    );
    let page = bob2.request(&json!({"cmd": "history", "with": "alice"}));
    assert_eq!(ids(&page), [id]);
    assert_eq!(page["more"], false);
    assert_eq!(
        page["messages"][0], pushed["message"],
        "the same object as SYNC's"
    );
    let by_id = bob2.request(&json!({"cmd": "history", "with_id": alice_id}));
    assert_eq!(ids(&by_id), [id]);
    assert_eq!(ids(&bob2.text("HISTORY alice")), [id], "text form");
    // History works both ways and reading it changes no custody.
    assert_eq!(
        ids(&alice1.request(&json!({"cmd": "history", "with": "bob"}))),
        [id]
    );

    // READ: alice's devices and bob's other connection hear of it.
    let read = bob.request(&json!({"cmd": "read", "with": "alice", "upto": id}));
    assert_eq!(ok(&read)["upto"].as_u64(), Some(id));
    let expected = json!({"event": "read", "by": "bob", "by_id": bob_id, "with": "alice", "with_id": alice_id, "upto": id});
    assert_eq!(alice1.read_event(), expected);
    assert_eq!(alice2.read_event(), expected);
    assert_eq!(bob2.read_event(), expected);
    bob.expect_nothing_before_pong();
    // Again, or lower: the marker stays, and nobody is told.
    assert_eq!(ok(&bob.text("READ alice 1"))["upto"].as_u64(), Some(id));
    alice1.expect_nothing_before_pong();

    // After: nothing unread for bob; alice sees bob's marker.
    let list = ok(&bob.request(&json!({"cmd": "conversations"}))).clone();
    assert_eq!(list["conversations"][0]["unread"].as_u64(), Some(0));
    let list = ok(&alice2.text("CONVERSATIONS")).clone();
    let entry = &list["conversations"][0];
    assert_eq!(
        (entry["with"].as_str(), entry["read_upto"].as_u64()),
        (Some("bob"), Some(id))
    );
    assert_eq!(entry["unread"].as_u64(), Some(0));
}

/// Pages of 50 walk back across 1,000 messages (both directions) while
/// more arrive, without gaps or repeats.
pub fn pages_walk_back_without_gaps(server: &TestServer) {
    let (mut alice, _, _) = register_and_login(server, "alice", PW);
    let (mut bob, _, _) = register_and_login(server, "bob", PW);
    let mut sent: BTreeSet<u64> = send_many(&mut alice, "bob", 600).into_iter().collect();
    sent.extend(send_many(&mut bob, "alice", 400));
    let mut reader = device(server, "alice");
    let mut seen = Vec::new();
    let mut before: Option<u64> = None;
    let mut first = true;
    loop {
        let mut request = json!({"cmd": "history", "with": "bob", "limit": 50});
        if let Some(b) = before {
            request["before"] = json!(b);
        }
        let page = reader.request(&request);
        let page_ids = ids(&page);
        assert!(
            page_ids.windows(2).all(|w| w[0] < w[1]),
            "ascending: {page_ids:?}"
        );
        if first {
            // Newer messages arrive while the walk goes on.
            send_many(&mut alice, "bob", 30);
            first = false;
        }
        seen.splice(0..0, page_ids.iter().copied());
        if page["more"] == false {
            break;
        }
        assert_eq!(page_ids.len(), 50, "a full page when more follow");
        before = Some(page_ids[0]);
    }
    let walked: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(walked.len(), seen.len(), "no repeats");
    assert_eq!(
        walked, sent,
        "no gaps, and nothing newer than the first page"
    );
}

/// `--history-seconds 5`: an acknowledged message older than that goes;
/// a younger one stays.
pub fn retention_prunes_the_older_and_keeps_the_rest(server: &TestServer) {
    let (mut alice, _, _) = register_and_login(server, "alice", PW);
    let (mut bob, _, _) = register_and_login(server, "bob", PW);
    let old = send_many(&mut alice, "bob", 1)[0];
    std::thread::sleep(Duration::from_secs(3));
    let young = send_many(&mut alice, "bob", 1)[0];
    ok(&bob.request(&json!({"cmd": "ack", "upto": young})));
    let started = Instant::now();
    loop {
        let page = ids(&bob.text("HISTORY alice"));
        if !page.contains(&old) {
            assert_eq!(page, [young], "the younger one stays");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never pruned: {page:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--no-history`: the commands are refused, a message leaves after ACK,
/// and another device of the sender gets no `sent` copy.
pub fn no_history_behaves_as_before(server: &TestServer) {
    let (mut alice1, _, _) = register_and_login(server, "alice", PW);
    let mut alice2 = device(server, "alice");
    let (mut bob, _, _) = register_and_login(server, "bob", PW);
    let id = send_many(&mut alice1, "bob", 1)[0];
    assert_eq!(bob.read_event()["message"]["id"].as_u64(), Some(id));
    alice2.expect_nothing_before_pong();
    for line in ["HISTORY alice", "READ alice 1", "CONVERSATIONS"] {
        assert_eq!(error_code(&bob.text(line)), "unavailable", "{line}");
    }
    ok(&bob.request(&json!({"cmd": "ack", "upto": id})));
    assert!(ids(&bob.text("SYNC")).is_empty());
}

/// Unknown partner, limits 0 and 10,000, READ above the newest.
pub fn bad_input_is_refused_or_clamped(server: &TestServer) {
    let (mut alice, _, _) = register_and_login(server, "alice", PW);
    let (mut bob, _, bob_id) = register_and_login(server, "bob", PW);
    let sent = send_many(&mut alice, "bob", 201);
    assert_eq!(
        error_code(&bob.request(&json!({"cmd": "history", "with": "nobody"}))),
        "not_found"
    );
    assert_eq!(
        error_code(&bob.request(&json!({"cmd": "history", "with_id": 999_999}))),
        "not_found"
    );
    assert_eq!(
        error_code(&bob.request(&json!({"cmd": "read", "with": "nobody", "upto": 1}))),
        "not_found"
    );
    assert_eq!(
        error_code(&bob.request(&json!({"cmd": "history", "with": "alice", "limit": 0}))),
        "bad_request"
    );
    assert_eq!(
        error_code(&bob.request(&json!({"cmd": "history", "with": "alice", "limit": -1}))),
        "bad_request"
    );
    assert_eq!(
        error_code(&bob.request(&json!({"cmd": "history", "with": "alice", "limit": "x"}))),
        "bad_request"
    );
    assert_eq!(
        error_code(&bob.request(&json!({"cmd": "history"}))),
        "bad_request"
    );
    assert_eq!(error_code(&bob.text("HISTORY")), "bad_request");
    assert_eq!(error_code(&bob.text("READ alice")), "bad_request");
    let page = bob.request(&json!({"cmd": "history", "with": "alice", "limit": 10_000}));
    assert_eq!(ids(&page), sent[1..], "clamped to 200");
    assert_eq!(page["more"], true);
    let newest = *sent.last().unwrap();
    let read = bob.request(&json!({"cmd": "read", "with": "alice", "upto": newest + 1000}));
    assert_eq!(
        ok(&read)["upto"].as_u64(),
        Some(newest),
        "clamped to the newest"
    );
    assert_eq!(alice.read_event()["upto"].as_u64(), Some(newest));
    // Nobody to talk to: nothing to read, marker 0.
    let carol = register(&mut server.connect(), "carol", PW);
    let read = bob.request(&json!({"cmd": "read", "with_id": carol, "upto": 5}));
    assert_eq!(ok(&read)["upto"].as_u64(), Some(0));
    let _ = bob_id;
}

/// The HTTP endpoints translate to the same commands and bodies.
pub fn http_endpoints_answer_like_the_line(server: &TestServer) {
    use super::http::post;
    let (mut alice, token, alice_id) = register_and_login(server, "alice", PW);
    let (_bob, bob_token, bob_id) = register_and_login(server, "bob", PW);
    let id = send_many(&mut alice, "bob", 1)[0];
    let (t, i) = (bob_token.as_str(), bob_id.to_string());
    let page = post(
        server.addr(),
        "/history",
        &[("token", t), ("id", &i), ("with", "alice")],
    )
    .expect_json(200);
    assert_eq!(ids(&page), [id]);
    assert_eq!(page["more"], false);
    let by_id = alice_id.to_string();
    let page = post(
        server.addr(),
        "/history",
        &[("token", t), ("id", &i), ("withId", &by_id), ("limit", "1")],
    )
    .expect_json(200);
    assert_eq!(ids(&page), [id]);
    let list = post(server.addr(), "/conversations", &[("token", t), ("id", &i)]).expect_json(200);
    assert_eq!(list["conversations"][0]["unread"].as_u64(), Some(1));
    let upto = id.to_string();
    let read = post(
        server.addr(),
        "/read",
        &[("token", t), ("id", &i), ("with", "alice"), ("upto", &upto)],
    )
    .expect_json(200);
    assert_eq!(read, json!({"ok": true, "upto": id}));
    assert_eq!(alice.read_event()["by"], "bob");
    post(
        server.addr(),
        "/history",
        &[("token", t), ("id", &i), ("with", "alice"), ("limit", "0")],
    )
    .expect_error(400, "bad_request");
    post(
        server.addr(),
        "/history",
        &[("token", &token), ("with", "nobody")],
    )
    .expect_error(404, "not_found");
}
