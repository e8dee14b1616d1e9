//! Messages across the two doors and the HTTP shim's acknowledgement rules:
//! a message sent over HTTP is pushed to a line-protocol connection and the
//! reverse reaches `/sync`; `/sync` without `after` acknowledges what it
//! returned once the response is written, with `after` up to `after`; a
//! `/sync` long-poll returns the moment a message arrives.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::*;
use serde_json::{json, Value};
use std::thread;
use std::time::{Duration, Instant};

/// The messages of a `/sync` reply.
#[track_caller]
fn array(body: &Value) -> Vec<Value> {
    body.as_array()
        .unwrap_or_else(|| panic!("/sync reply is not an array: {body}"))
        .clone()
}

#[test]
fn a_message_sent_over_http_is_pushed_to_the_line_protocol() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (mut bob_line, _, bob_id) = register_and_login(&server, "bob", "pw-b-secret");
    let (alice, alice_id) = http_user(addr, "alice", "pw-a-secret");

    let sent = post(
        addr,
        "/send",
        &[
            ("token", &alice),
            ("id", &alice_id.to_string()),
            ("sendToId", &bob_id.to_string()),
            ("content", "hi over \"http\"\n"),
            ("client_id", "web-1"),
        ],
    )
    .expect_json(200);
    let id = sent["id"].as_u64().unwrap();

    let pushed = assert_message_event(&bob_line.read_event());
    let expected = Expected {
        from: "alice",
        from_id: alice_id,
        to: "bob",
        to_id: bob_id,
        content: "hi over \"http\"\n",
        client_id: Some("web-1"),
    };
    assert_eq!(assert_message(&pushed, &expected), id);
    assert_eq!(pushed["ts"], sent["ts"]);
}

#[test]
fn a_message_sent_on_the_line_protocol_reaches_http_sync() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (mut alice_line, _, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (bob, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let id = sent_id(&alice_line.text("SEND bob héllo <b>there</b>"));

    let body = post(
        addr,
        "/sync",
        &[("token", &bob), ("id", &bob_id.to_string())],
    )
    .expect_json(200);
    let list = array(&body);
    assert_eq!(list.len(), 1, "{body}");
    let m = &list[0];
    assert_eq!(m["Content"], "héllo <b>there</b>");
    assert_eq!(m["UserIdSend"], alice_id);
    assert_eq!(m["UserIdReceive"], bob_id);
    let expected = Expected {
        from: "alice",
        from_id: alice_id,
        to: "bob",
        to_id: bob_id,
        content: "héllo <b>there</b>",
        client_id: None,
    };
    assert_eq!(assert_message(m, &expected), id);
}

#[test]
fn sync_without_after_acknowledges_what_it_returned() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (bob, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let ids: Vec<u64> = (0..3)
        .map(|i| http_send(addr, &alice, bob_id, &format!("m{i}")))
        .collect();

    let first = post(addr, "/sync", &[("token", &bob)]).expect_json(200);
    assert_eq!(array_ids(&first), ids);
    // Once the response was written, they are acknowledged: a second
    // /sync (another connection) and the line protocol see none of them.
    let second = post(addr, "/sync", &[("token", &bob)]).expect_json(200);
    assert_eq!(second, json!([]));
    let mut line = server.connect();
    let (_, _) = login(&mut line, "bob", "pw-b-secret");
    assert!(messages(&line.text("SYNC")).is_empty());

    // A later message is still delivered.
    let later = http_send(addr, &alice, bob_id, "later");
    let third = post(addr, "/sync", &[("token", &bob)]).expect_json(200);
    assert_eq!(array_ids(&third), [later]);
}

#[test]
fn sync_without_after_and_a_limit_acknowledges_only_what_it_returned() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (bob, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let ids: Vec<u64> = (0..3)
        .map(|i| http_send(addr, &alice, bob_id, &format!("m{i}")))
        .collect();
    let mut c = HttpClient::connect(addr);
    for &id in &ids {
        let body = c
            .post("/sync", &[("token", &bob), ("limit", "1")])
            .expect_json(200);
        assert_eq!(array_ids(&body), [id]);
    }
    assert_eq!(
        c.post("/sync", &[("token", &bob)]).expect_json(200),
        json!([])
    );
}

#[test]
fn pipelined_syncs_without_after_do_not_return_a_message_twice() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (bob, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let id = http_send(addr, &alice, bob_id, "once");
    let mut c = HttpClient::connect(addr);
    let mut bytes = post_bytes("/sync", &[("token", &bob)], &[]);
    bytes.extend(post_bytes("/sync", &[("token", &bob)], &[]));
    c.send_raw(&bytes);
    assert_eq!(array_ids(&c.read_response().expect_json(200)), [id]);
    assert_eq!(c.read_response().expect_json(200), json!([]));
}

#[test]
fn with_durable_storage_the_acknowledgement_is_stored_before_the_next_sync() {
    let dir = TempDir::new("http-ack");
    let mut server = TestServer::start(&["--data", dir.arg()]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (bob, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let ids: Vec<u64> = (0..5)
        .map(|i| http_send(addr, &alice, bob_id, &format!("m{i}")))
        .collect();
    let mut c = HttpClient::connect(addr);
    assert_eq!(
        array_ids(&c.post("/sync", &[("token", &bob)]).expect_json(200)),
        ids
    );
    // Straight away on the same connection: the commit comes first.
    assert_eq!(
        c.post("/sync", &[("token", &bob)]).expect_json(200),
        json!([])
    );
    server.restart();
    let body = post(server.addr(), "/sync", &[("token", &bob)]).expect_json(200);
    assert_eq!(
        body,
        json!([]),
        "acknowledged messages came back after a restart"
    );
}

#[test]
fn sync_with_after_acknowledges_up_to_after_only() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (bob, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let ids: Vec<u64> = (0..3)
        .map(|i| http_send(addr, &alice, bob_id, &format!("m{i}")))
        .collect();
    let after = ids[0].to_string();
    let mut c = HttpClient::connect(addr);
    let body = c
        .post("/sync", &[("token", &bob), ("after", &after)])
        .expect_json(200);
    assert_eq!(array_ids(&body), ids[1..]);
    // Returned with `after` is not acknowledged; only up to `after` is.
    let body = c
        .post("/sync", &[("token", &bob), ("after", "0")])
        .expect_json(200);
    assert_eq!(array_ids(&body), ids[1..]);
    let body = c.post("/sync", &[("token", &bob)]).expect_json(200);
    assert_eq!(array_ids(&body), ids[1..]);
}

#[test]
fn a_long_poll_returns_the_moment_a_message_arrives() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (mut alice_line, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (bob, _) = http_user(addr, "bob", "pw-b-secret");

    let mut c = HttpClient::connect(addr);
    c.send_post(
        "/sync",
        &[("token", &bob), ("after", "0"), ("wait", "20000")],
    );
    c.expect_nothing_within(300);
    let started = Instant::now();
    let id = sent_id(&alice_line.text("SEND bob wake up"));
    c.set_timeout(Duration::from_secs(5));
    let body = c.read_response().expect_json(200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the long-poll took {:?} after the message",
        started.elapsed()
    );
    assert_eq!(array_ids(&body), [id]);
    assert_eq!(array(&body)[0]["Content"], "wake up");
    // The same connection goes on working.
    assert_eq!(c.get("GET", "/healthz").status, 200);
}

#[test]
fn a_long_poll_without_after_acknowledges_what_woke_it() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (bob, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let waiter = {
        let bob = bob.clone();
        thread::spawn(move || {
            post(addr, "/sync", &[("token", &bob), ("wait", "20000")]).expect_json(200)
        })
    };
    thread::sleep(Duration::from_millis(300));
    let id = http_send(addr, &alice, bob_id, "ping");
    assert_eq!(array_ids(&waiter.join().unwrap()), [id]);
    assert_eq!(
        post(addr, "/sync", &[("token", &bob)]).expect_json(200),
        json!([])
    );
}

#[test]
fn a_long_poll_with_nothing_to_return_ends_empty_when_its_time_is_up() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (bob, _) = http_user(addr, "bob", "pw-b-secret");
    let started = Instant::now();
    let body = post(addr, "/sync", &[("token", &bob), ("wait", "400")]).expect_json(200);
    let waited = started.elapsed();
    assert_eq!(body, json!([]));
    assert!(
        waited >= Duration::from_millis(350),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
}
