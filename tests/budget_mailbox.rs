//! Mailbox budgets over the line protocol: a mailbox filled to its byte cap
//! (`--mailbox-bytes`, counted as stored, so control characters cost their
//! escaped size) refuses SEND with `rate_limited` until its owner
//! acknowledges; a pipelined burst of SENDs cannot overshoot the message
//! cap (`--mailbox-limit`), because SENDs in flight count; and other users
//! are served all along.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::thread;

/// `n` control characters: one byte each as sent, six as stored (`\u0001`).
fn control_chars(n: usize) -> String {
    "\u{1}".repeat(n)
}

#[test]
fn a_mailbox_full_to_its_byte_cap_refuses_sends_until_acknowledged() {
    let server = TestServer::start(&["--mailbox-bytes", "8192", "--metrics", "127.0.0.1:0"]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let (mut carol, _, _) = register_and_login(&server, "carol", "pw-c-secret");

    // 1000 control characters are 1000 bytes on the wire, about 6000 as
    // stored: the first fits in 8192 bytes, the second does not.
    let content = control_chars(1000);
    let send = json!({"cmd": "send", "to": "bob", "content": content, "tag": "big"});
    let first = sent_id(&alice.request(&send));
    let held = server.stats()["core"]["pending_bytes"].as_u64().unwrap();
    assert!(
        held > 6000,
        "the message is counted as stored: {held} bytes"
    );
    let refused = alice.request(&send);
    assert_error(&refused, "rate_limited");
    let message = error_message(&refused);
    assert!(message.contains("--mailbox-bytes"), "{message}");
    assert!(message.contains("bob"), "{message}");
    assert_eq!(
        refused["tag"], "big",
        "the refusal keeps its tag: {refused}"
    );
    // Nothing half-stored: bob holds exactly the first message.
    assert_eq!(message_ids(&bob.text("SYNC")), vec![first]);
    assert_eq!(
        server.stats()["core"]["pending_bytes"].as_u64().unwrap(),
        held
    );

    // Others are served meanwhile: carol's mailbox has room of its own.
    let to_carol = sent_id(&alice.text("SEND carol still here"));
    let pushed = assert_message_event(&carol.read_event());
    assert_eq!(pushed["id"], to_carol);

    // Once bob acknowledges, alice's SEND goes through.
    assert_ok(&bob.text(&format!("ACK {first}")));
    let second = sent_id(&alice.request(&send));
    let synced = messages(&bob.text("SYNC"));
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0]["id"], second);
    assert_eq!(synced[0]["content"], content.as_str());
}

#[test]
fn a_pipelined_burst_cannot_overshoot_the_message_cap() {
    const CAP: usize = 300;
    const EXTRA: usize = 50;
    let cap = CAP.to_string();
    let server = TestServer::start(&["--mailbox-limit", &cap]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    // bob is registered but not logged in on a connection: no pushes.
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (bob_token, _) = login(&mut bob, "bob", "pw-b-secret");
    drop(bob);
    let (mut carol, _, _) = register_and_login(&server, "carol", "pw-c-secret");
    let (mut dave, _, dave_id) = register_and_login(&server, "dave", "pw-d-secret");

    // Every SEND in one write: all are accepted in one turn, before any
    // of them is stored.
    let burst: String = (0..CAP + EXTRA)
        .map(|i| {
            format!(
                "{}\n",
                json!({"cmd": "send", "to": "bob", "content": format!("m{i}"), "tag": i})
            )
        })
        .collect();
    let mut writer = alice.writer_clone();
    let write = thread::spawn(move || writer.write_all(burst.as_bytes()).unwrap());
    let replies: Vec<Value> = (0..CAP + EXTRA).map(|_| alice.read_reply()).collect();
    write.join().unwrap();
    let mut ok = 0;
    let mut limited = 0;
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply["tag"], i, "replies keep request order: {reply}");
        if reply["ok"] == true {
            assert_eq!(limited, 0, "an ok after a refusal: {reply}");
            ok += 1;
        } else {
            assert_error(reply, "rate_limited");
            assert!(error_message(reply).contains("--mailbox-limit"), "{reply}");
            limited += 1;
        }
    }
    assert_eq!((ok, limited), (CAP, EXTRA));

    let mut bob = server.connect();
    let reply = bob.request(&json!({"cmd": "sync", "token": bob_token, "limit": 1000}));
    let contents = message_contents(&reply);
    let expected: Vec<String> = (0..CAP).map(|i| format!("m{i}")).collect();
    assert_eq!(contents, expected);

    // A well-behaved pair is not affected.
    let id = sent_id(&carol.text("SEND dave hello dave"));
    let event = dave.read_event();
    let message = assert_message_event(&event);
    assert_message(
        &message,
        &Expected {
            from: "carol",
            from_id: message["from_id"].as_u64().unwrap(),
            to: "dave",
            to_id: dave_id,
            content: "hello dave",
            client_id: None,
        },
    );
    assert_eq!(message["id"], id);
}
