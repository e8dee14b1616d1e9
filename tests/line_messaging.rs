//! SEND over the line protocol and what it delivers: the reply (`id`, `ts`),
//! every field of a stored message, recipients by name or `to_id`, text-form
//! content taken verbatim, `not_found` and empty- or blank-content errors, push events
//! to every connection bound to the recipient, and `client_id` idempotency.

mod common;

use common::*;
use serde_json::{json, Value};

#[test]
fn send_replies_with_a_growing_id_and_a_millisecond_ts() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");

    let mut last = 0;
    for i in 0..5 {
        let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": format!("n{i}")}));
        let id = sent_id(&reply); // also checks ts is epoch milliseconds
        assert!(id > last, "ids must grow: {last} then {id}");
        last = id;
    }
}

#[test]
fn a_stored_message_carries_every_contract_field() {
    let server = TestServer::start(&[]);
    let (mut alice, _, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, bob_id) = register_and_login(&server, "bob", "pw-b-secret");

    let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": "hello there"}));
    let id = sent_id(&reply);
    let got = messages(&bob.text("SYNC"));
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(
        assert_message(
            m,
            &Expected {
                from: "alice",
                from_id: alice_id,
                to: "bob",
                to_id: bob_id,
                content: "hello there",
                client_id: None,
            }
        ),
        id
    );
    assert_eq!(
        m["ts"], reply["ts"],
        "stored ts differs from SEND's: {m} vs {reply}"
    );
}

#[test]
fn send_by_to_id_reaches_the_same_user() {
    let server = TestServer::start(&[]);
    let (mut alice, _, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, bob_id) = register_and_login(&server, "bob", "pw-b-secret");

    let id = sent_id(&alice.request(&json!({"cmd": "send", "to_id": bob_id, "content": "by id"})));
    let got = messages(&bob.text("SYNC"));
    assert_eq!(got.len(), 1);
    let expected = Expected {
        from: "alice",
        from_id: alice_id,
        to: "bob",
        to_id: bob_id,
        content: "by id",
        client_id: None,
    };
    assert_eq!(assert_message(&got[0], &expected), id);
}

#[test]
fn an_unknown_recipient_is_not_found() {
    let server = TestServer::start(&[]);
    let (mut alice, _, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, bob_id) = register_and_login(&server, "bob", "pw-b-secret");

    let reply = alice.request(&json!({"cmd": "send", "to": "nobody", "content": "x"}));
    assert_error(&reply, "not_found");
    assert_error(&alice.text("SEND nobody x"), "not_found");
    let unused_id = alice_id.max(bob_id) + 1000;
    let reply = alice.request(&json!({"cmd": "send", "to_id": unused_id, "content": "x"}));
    assert_error(&reply, "not_found");
    // Names are looked up as given, not as some similar name.
    let reply = alice.request(&json!({"cmd": "send", "to": "bobby", "content": "x"}));
    assert_error(&reply, "not_found");

    assert_eq!(message_ids(&bob.text("SYNC")), Vec::<u64>::new());
}

#[test]
fn empty_or_blank_content_is_a_bad_request_in_both_forms() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");

    assert_error(
        &alice.request(&json!({"cmd": "send", "to": "bob", "content": ""})),
        "bad_request",
    );
    assert_error(&alice.text("SEND bob"), "bad_request");
    assert_error(&alice.text("SEND bob "), "bad_request");
    // Content of white space alone is as empty to the reader.
    for blank in [" ", "   \t ", "\n\r\n", "\u{a0}\u{2003}"] {
        let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": blank}));
        assert_error(&reply, "bad_request");
        assert!(
            error_message(&reply).contains("white space"),
            "{blank:?}: {reply}"
        );
    }
    assert_error(&alice.text("SEND bob    "), "bad_request");
    assert_error(&alice.text("SEND bob \t \t"), "bad_request");
    assert_eq!(message_ids(&bob.text("SYNC")), Vec::<u64>::new());
}

#[test]
fn text_form_content_is_the_rest_of_the_line_verbatim() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");

    let contents = [
        "hello there",
        "many   spaces\tand a tab",
        "{\"looks\":\"like json\"} and \"quotes\" \\ backslash",
        "ünïcødé ✓ 😀 日本語",
        "SEND alice not a command",
        "1",
    ];
    for content in contents {
        sent_id(&alice.text(&format!("SEND bob {content}")));
    }
    let reply = bob.text("SYNC");
    assert_eq!(
        message_contents(&reply),
        contents.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
}

#[test]
fn text_form_content_keeps_trailing_spaces() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    sent_id(&alice.text("SEND bob trailing  "));
    assert_eq!(
        message_contents(&bob.text("SYNC")),
        vec!["trailing  ".to_string()]
    );
}

#[test]
fn json_content_round_trips_exactly() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let contents = [
        "line one\nline two\r\nline three",
        "  leading and trailing  ",
        "\"quoted\" \\ {}[]",
        "😀",
    ];
    for content in contents {
        sent_id(&alice.request(&json!({"cmd": "send", "to": "bob", "content": content})));
    }
    assert_eq!(
        message_contents(&bob.text("SYNC")),
        contents.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
}

#[test]
fn a_bound_receiver_gets_a_push_event_with_the_whole_message() {
    let server = TestServer::start(&[]);
    let (mut alice, _, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, bob_id) = register_and_login(&server, "bob", "pw-b-secret");

    let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": "pushed"}));
    let id = sent_id(&reply);

    let event = bob.read_event();
    let m = assert_message_event(&event);
    let expected = Expected {
        from: "alice",
        from_id: alice_id,
        to: "bob",
        to_id: bob_id,
        content: "pushed",
        client_id: None,
    };
    assert_eq!(assert_message(&m, &expected), id);
    assert_eq!(m["ts"], reply["ts"]);

    // The sender is not pushed its own outgoing message.
    alice.expect_nothing_before_pong();
    // One push per message.
    bob.expect_nothing_before_pong();
}

#[test]
fn every_connection_of_the_recipient_gets_the_push() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob1, bob_token, bob_id) = register_and_login(&server, "bob", "pw-b-secret");
    let mut bob2 = server.connect();
    assert_ok(&bob2.request(&json!({"cmd": "auth", "token": bob_token})));
    let mut bob3 = server.connect();
    login(&mut bob3, "bob", "pw-b-secret");

    let first = sent_id(&alice.text("SEND bob to all of you"));
    let second =
        sent_id(&alice.request(&json!({"cmd": "send", "to_id": bob_id, "content": "again"})));
    for bob in [&mut bob1, &mut bob2, &mut bob3] {
        let a = assert_message_event(&bob.read_event());
        let b = assert_message_event(&bob.read_event());
        assert_eq!(
            (a["id"].as_u64(), b["id"].as_u64()),
            (Some(first), Some(second))
        );
        assert_eq!(a["content"], "to all of you");
        assert_eq!(b["content"], "again");
        bob.expect_nothing_before_pong();
    }
}

#[test]
fn a_pushed_message_stays_until_acknowledged_across_reconnects() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, bob_token, _) = register_and_login(&server, "bob", "pw-b-secret");

    let id = sent_id(&alice.text("SEND bob keep me"));
    let pushed = assert_message_event(&bob.read_event());
    assert_eq!(pushed["id"], id);

    // Still there for SYNC, on this connection and on a new one.
    assert_eq!(message_ids(&bob.text("SYNC")), vec![id]);
    drop(bob);
    let mut again = server.connect();
    assert_ok(&again.text(&format!("AUTH {bob_token}")));
    let got = messages(&again.text("SYNC"));
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0], pushed,
        "SYNC and push must describe the message alike"
    );

    assert_ok(&again.text(&format!("ACK {id}")));
    assert_eq!(message_ids(&again.text("SYNC")), Vec::<u64>::new());
}

#[test]
fn pushes_interleave_with_replies_without_breaking_them() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");

    // Bob keeps talking while alice writes to him; every reply of bob's is
    // still a reply, and every push an event.
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(sent_id(&alice.text(&format!("SEND bob m{i}"))));
        let pong = bob.request(&json!({"cmd": "ping", "tag": i}));
        assert_eq!(pong["tag"], i);
        assert_eq!(pong["pong"], true);
    }
    let mut pushed = Vec::new();
    while pushed.len() < sent.len() {
        let m = assert_message_event(&bob.read_event());
        pushed.push(m["id"].as_u64().unwrap());
    }
    assert_eq!(pushed, sent, "pushes arrive once each, in order");
}

#[test]
fn a_repeated_client_id_stores_nothing_new_and_returns_the_first_id() {
    let server = TestServer::start(&[]);
    let (mut alice, _, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, bob_id) = register_and_login(&server, "bob", "pw-b-secret");

    let first = sent_id(&alice.request(&json!({
        "cmd": "send", "to": "bob", "content": "first", "client_id": "c-1"
    })));
    let pushed = assert_message_event(&bob.read_event());
    assert_eq!(pushed["client_id"], "c-1");

    let again = sent_id(&alice.request(&json!({
        "cmd": "send", "to": "bob", "content": "first", "client_id": "c-1"
    })));
    assert_eq!(again, first, "same client_id must give the first id back");
    let changed = sent_id(&alice.request(&json!({
        "cmd": "send", "to": "bob", "content": "different content", "client_id": "c-1"
    })));
    assert_eq!(changed, first, "same client_id must give the first id back");
    bob.expect_nothing_before_pong(); // no second push either

    let got = messages(&bob.text("SYNC"));
    assert_eq!(got.len(), 1, "stored twice: {got:?}");
    let expected = Expected {
        from: "alice",
        from_id: alice_id,
        to: "bob",
        to_id: bob_id,
        content: "first",
        client_id: Some("c-1"),
    };
    assert_eq!(assert_message(&got[0], &expected), first);

    // Still deduplicated after the message was acknowledged.
    assert_ok(&bob.text(&format!("ACK {first}")));
    let after_ack = sent_id(&alice.request(&json!({
        "cmd": "send", "to": "bob", "content": "first", "client_id": "c-1"
    })));
    assert_eq!(after_ack, first);
    assert_eq!(message_ids(&bob.text("SYNC 0")), Vec::<u64>::new());

    // A new client_id is a new message.
    let other = sent_id(&alice.request(&json!({
        "cmd": "send", "to": "bob", "content": "second", "client_id": "c-2"
    })));
    assert!(other > first);
    assert_eq!(message_ids(&bob.text("SYNC")), vec![other]);
}

#[test]
fn client_ids_belong_to_their_sender() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let (mut carol, _, _) = register_and_login(&server, "carol", "pw-c-secret");

    let from_alice = sent_id(&alice.request(&json!({
        "cmd": "send", "to": "carol", "content": "from alice", "client_id": "same"
    })));
    let from_bob = sent_id(&bob.request(&json!({
        "cmd": "send", "to": "carol", "content": "from bob", "client_id": "same"
    })));
    assert_ne!(from_alice, from_bob);
    let reply = carol.text("SYNC");
    assert_eq!(message_ids(&reply), vec![from_alice, from_bob]);
    assert_eq!(
        message_contents(&reply),
        vec!["from alice".to_string(), "from bob".to_string()]
    );
}

#[test]
fn a_client_id_may_be_128_bytes_but_not_more() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");

    let ascii_128 = "k".repeat(128);
    let utf8_128 = "é".repeat(64); // 64 two-byte characters
    let mut ids = Vec::new();
    for cid in [&ascii_128, &utf8_128] {
        let reply =
            alice.request(&json!({"cmd": "send", "to": "bob", "content": "ok", "client_id": cid}));
        ids.push(sent_id(&reply));
    }
    for cid in ["k".repeat(129), "é".repeat(65)] {
        let reply =
            alice.request(&json!({"cmd": "send", "to": "bob", "content": "no", "client_id": cid}));
        assert_error(&reply, "bad_request");
    }
    let got = messages(&bob.text("SYNC"));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["client_id"], Value::String(ascii_128));
    assert_eq!(got[1]["client_id"], Value::String(utf8_128));
}
