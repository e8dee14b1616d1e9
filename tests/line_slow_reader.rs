//! A receiver that stops reading: the server queues its pushes only up to
//! `--max-output`, then disconnects it as a slow reader — without losing a
//! message (they stay in the mailbox for the next SYNC) and without slowing
//! the sender down.

mod common;

use common::*;
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MESSAGES: usize = 400;
const CONTENT_BYTES: usize = 60 * 1024;

#[test]
fn a_receiver_that_never_reads_is_disconnected_and_loses_nothing() {
    // 24 MiB unacknowledged: past the default mailbox and sender budgets.
    let server = TestServer::start(&[
        "--max-output",
        "65536",
        "--mailbox-bytes",
        "67108864",
        "--pending-bytes-per-sender",
        "67108864",
    ]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (bob_setup, bob_token, _) = register_and_login(&server, "bob", "pw-b-secret");
    drop(bob_setup);

    // Bob's connection: bound by AUTH, then never read again.
    let mut bob = TcpStream::connect(server.addr()).unwrap();
    bob.write_all(format!("AUTH {bob_token}\n").as_bytes())
        .unwrap();

    // 400 × 60 KiB = 24 MiB of pushes: far more than the kernel buffers and
    // the 64 KiB allowed queue can hold.
    let content = "m".repeat(CONTENT_BYTES);
    let mut sent = Vec::new();
    for i in 0..MESSAGES {
        let reply =
            alice.request(&json!({"cmd": "send", "to": "bob", "content": content, "tag": i}));
        sent.push(sent_id(&reply));
    }
    assert!(
        server.wait_for_stderr("reads too slowly", Duration::from_secs(10)),
        "the server never logged the slow reader:\n{}",
        server.stderr_text()
    );
    assert_eq!(alice.text("PING")["pong"], true, "the sender is unaffected");

    // Bob's old connection ends after what was already queued.
    bob.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        assert!(
            Instant::now() < deadline,
            "the slow connection was never closed"
        );
        match bob.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("unexpected read error: {e}"),
        }
    }

    // Every message is still in bob's mailbox, in order.
    let mut bob = server.connect();
    assert_ok(&bob.text(&format!("AUTH {bob_token}")));
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let reply = bob.request(&json!({"cmd": "sync", "after": after, "limit": 1000}));
        let ids = message_ids(&reply);
        if ids.is_empty() {
            break;
        }
        assert!(messages(&reply)
            .iter()
            .all(|m| m["content"].as_str().map(str::len) == Some(CONTENT_BYTES)));
        after = *ids.last().unwrap();
        got.extend(ids);
    }
    assert_eq!(got, sent, "every message is delivered once, in order");
}
