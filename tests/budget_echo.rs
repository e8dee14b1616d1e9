//! Echo budget: a JSON request's `tag` is echoed only up to 256 bytes of
//! JSON; a bigger one makes the request a `bad_request` whose reply carries
//! no tag, the request does not run, and the connection goes on.

mod common;

use common::*;
use serde_json::{json, Value};

/// A string tag whose JSON text is exactly `bytes` long.
fn string_tag(bytes: usize) -> Value {
    json!("t".repeat(bytes - 2))
}

#[test]
fn a_tag_up_to_256_bytes_is_echoed() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    for tag in [
        string_tag(256),
        json!(vec![1; 127]),
        json!({"k": "v".repeat(240)}),
    ] {
        assert!(tag.to_string().len() <= 256);
        let reply = c.request(&json!({"cmd": "ping", "tag": tag}));
        assert_ok(&reply);
        assert_eq!(reply["tag"], tag);
    }
}

#[test]
fn a_bigger_tag_is_refused_without_its_tag_and_the_request_does_not_run() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (bob_token, _) = login(&mut bob, "bob", "pw-b-secret");

    for tag in [
        string_tag(257),
        json!(vec![1; 128]),
        json!({"k": "v".repeat(60_000)}),
    ] {
        let line =
            json!({"cmd": "send", "to": "bob", "content": "not sent", "tag": tag}).to_string();
        alice.send_line(&line);
        let reply = alice.read_reply();
        assert_error(&reply, "bad_request");
        assert_eq!(error_message(&reply), "a tag is at most 256 bytes of JSON");
        assert!(reply.get("tag").is_none(), "no tag echoed: {reply}");
        assert!(reply.to_string().len() < 200, "{reply}");
        // The connection goes on: the next line's reply is the very next.
        let pong = alice.request(&json!({"cmd": "ping", "tag": "next"}));
        assert_eq!(pong["tag"], "next");
    }
    // A deeply nested tag is refused as well and nothing of it comes back.
    let deep = format!(
        "{{\"cmd\":\"ping\",\"tag\":{}1{}}}",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    alice.send_line(&deep);
    let reply = alice.read_reply();
    assert_error(&reply, "bad_request");
    assert!(reply.get("tag").is_none(), "{reply}");
    assert!(reply.to_string().len() < 300, "{reply}");

    let mut check = server.connect();
    let synced = check.request(&json!({"cmd": "sync", "token": bob_token}));
    assert_eq!(message_ids(&synced), Vec::<u64>::new(), "nothing was sent");
}
