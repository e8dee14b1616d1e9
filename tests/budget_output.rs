//! Output budgets: all clients together cannot make the server hold more
//! unread output than `--max-output-total`; the clients holding the most
//! are disconnected first, and no message is lost. Also: a line trickled in
//! one byte at a time is read whole.

mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn readers_that_never_read_are_cut_off_at_the_total_budget() {
    let server = TestServer::start(&[
        "--max-output-total",
        "1048576",
        "--max-output",
        "67108864",
        // 300 messages of 60 KiB pass the default mailbox byte cap, and
        // the sender's.
        "--mailbox-bytes",
        "67108864",
        "--pending-bytes-per-sender",
        "67108864",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");
    let (bob_setup, bob_token, _) = register_and_login(&server, "bob", "password-b");
    drop(bob_setup);
    // Eight connections bound to bob that never read.
    let mut silent: Vec<TcpStream> = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.write_all(format!("AUTH {bob_token}\n").as_bytes())
            .unwrap();
        silent.push(s);
    }
    // A well-behaved reader of another user keeps getting its pushes.
    let (mut carol, _, _) = register_and_login(&server, "carol", "password-c");

    let content = "x".repeat(60 * 1024);
    let mut sent = Vec::new();
    for i in 0..300 {
        let reply =
            alice.request(&json!({"cmd": "send", "to": "bob", "content": content, "tag": i}));
        sent.push(sent_id(&reply));
    }
    assert_ok(&alice.text("SEND carol still here"));
    let event = carol.read_event();
    assert_eq!(event["message"]["content"], "still here");

    let stats = server.stats();
    assert!(
        stats["server"]["closed_by_reason"]["output_budget"].as_u64() >= Some(1),
        "{stats}"
    );
    assert!(
        stats["server"]["queued_output_bytes"].as_u64() <= Some(1048576),
        "{stats}"
    );
    assert!(server.stderr_text().contains("--max-output-total"));

    // Nothing was lost: every message is in bob's mailbox, in order.
    let mut bob = server.connect();
    assert_ok(&bob.text(&format!("AUTH {bob_token}")));
    let got = sync_all_ids(&mut bob);
    assert_eq!(got, sent);
}

#[test]
fn a_line_trickled_byte_by_byte_is_read_whole() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");
    let content = "t".repeat(3000);
    let line = format!("{{\"cmd\":\"send\",\"to\":\"alice\",\"content\":\"{content}\"}}\n");
    alice.send_in_pieces(line.as_bytes(), 1, Duration::ZERO);
    let reply = alice.read_reply();
    let id = sent_id(&reply);
    let synced = alice.request(&json!({"cmd": "sync"}));
    assert_eq!(message_ids(&synced), [id]);
    assert_eq!(message_contents(&synced), [content]);
}
