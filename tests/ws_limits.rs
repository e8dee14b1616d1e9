//! The WebSocket door's budgets over raw frames on a real server: the login
//! deadline and `--conns-per-user` apply as on the line door, a slow reader
//! is closed at `--max-output`, each close is counted by its reason in the
//! figures, and open connections are counted under the `ws` door.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A client text frame (masked, as clients must).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7, 1, 9, 3];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65_536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

/// A raw connection past the upgrade.
struct Ws(TcpStream);

impl Ws {
    fn open(server: &TestServer) -> Ws {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
        Ws(s)
    }

    fn send(&mut self, text: &str) {
        self.0.write_all(&frame(0x1, text.as_bytes())).unwrap();
    }

    /// The next frame: (opcode, payload).
    fn next(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 2];
        self.0.read_exact(&mut head).unwrap();
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                self.0.read_exact(&mut n).unwrap();
                u16::from_be_bytes(n) as usize
            }
            127 => {
                let mut n = [0u8; 8];
                self.0.read_exact(&mut n).unwrap();
                u64::from_be_bytes(n) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0; len];
        self.0.read_exact(&mut payload).unwrap();
        (head[0] & 0x0f, payload)
    }

    fn reply(&mut self, text: &str) -> Value {
        self.send(text);
        let (opcode, payload) = self.next();
        assert_eq!(opcode, 0x1);
        serde_json::from_slice(&payload).unwrap()
    }

    /// Whether the server closed the connection (without reading past
    /// `limit` more bytes).
    fn closed(&mut self, limit: usize) -> bool {
        let mut rest = Vec::new();
        match (&mut self.0).take(limit as u64).read_to_end(&mut rest) {
            Ok(_) => rest.len() < limit,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn a_websocket_must_log_in_in_time_and_is_counted_under_its_door() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0", "--login-timeout", "1"]);
    let mut ws = Ws::open(&server);
    assert_eq!(ws.reply("PING")["pong"], true);
    let stats = server.stats();
    assert_eq!(
        stats["server"]["connections_by_door_and_state"]["ws/anonymous"], 1,
        "{stats}"
    );
    assert!(ws.closed(1 << 20), "not closed at the login deadline");
    let stats = server.stats_when(|s| s["server"]["closed_by_reason"]["login_timeout"] == 1);
    assert_eq!(
        stats["server"]["closed_by_reason"]["login_timeout"], 1,
        "{stats}"
    );
}

#[test]
fn conns_per_user_counts_websocket_sessions() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0", "--conns-per-user", "2"]);
    let (_line, token, _) = register_and_login(&server, "alice", "password-a");
    let mut first = Ws::open(&server);
    assert_eq!(first.reply(&format!("AUTH {token}"))["ok"], true);
    let mut second = Ws::open(&server);
    let refused = second.reply(&format!("AUTH {token}"));
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");
    let stats = server.stats();
    assert_eq!(
        stats["server"]["connections_by_door_and_state"]["ws/logged_in"], 1,
        "{stats}"
    );
}

#[test]
fn each_close_is_counted_by_its_reason() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0"]);
    let cases: [(Vec<u8>, u16, &str); 3] = [
        (frame(0x2, b"bin"), 1003, "ws_unsupported_data"),
        (frame(0x1, &[b'x'; 70_000]), 1009, "ws_message_too_big"),
        (frame(0x1, b"\xff"), 1007, "ws_invalid_payload"),
    ];
    for (bytes, code, _) in &cases {
        let mut ws = Ws::open(&server);
        ws.0.write_all(bytes).unwrap();
        let (opcode, payload) = ws.next();
        assert_eq!(opcode, 0x8);
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), *code);
        assert!(ws.closed(1024));
    }
    let mut ws = Ws::open(&server);
    ws.0.write_all(&frame(0x8, &1000u16.to_be_bytes())).unwrap();
    assert_eq!(ws.next(), (0x8, 1000u16.to_be_bytes().to_vec()));
    let stats = server.stats_when(|s| s["server"]["closed_by_reason"]["ws_closed"] == 1);
    let closed = &stats["server"]["closed_by_reason"];
    for (_, _, reason) in &cases {
        assert_eq!(closed[reason], 1, "{reason}: {stats}");
    }
    assert_eq!(closed["ws_closed"], 1, "{stats}");
}

#[test]
fn a_websocket_reader_that_does_not_read_is_closed_as_a_slow_consumer() {
    // As tests/line_slow_reader.rs: 24 MiB of pushes, far more than the
    // kernel buffers and the 64 KiB allowed queue hold.
    let server = TestServer::start(&[
        "--metrics",
        "127.0.0.1:0",
        "--max-output",
        "65536",
        "--mailbox-bytes",
        "67108864",
        "--pending-bytes-per-sender",
        "67108864",
    ]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");
    let (line, token, _) = register_and_login(&server, "bob", "password-b");
    drop(line);
    let mut bob = Ws::open(&server);
    assert_eq!(bob.reply(&format!("AUTH {token}"))["ok"], true);
    let content = "m".repeat(60 * 1024);
    for _ in 0..400 {
        let reply =
            alice.request(&serde_json::json!({"cmd": "send", "to": "bob", "content": content}));
        assert_eq!(reply["ok"], true, "{reply}");
    }
    let stats = server.stats_when(|s| s["server"]["closed_by_reason"]["slow_consumer"] == 1);
    assert_eq!(
        stats["server"]["closed_by_reason"]["slow_consumer"], 1,
        "{stats}"
    );
    let by_door = &stats["server"]["connections_by_door_and_state"];
    assert!(by_door.get("ws/logged_in").is_none(), "{stats}");
    assert_eq!(alice.text("PING")["pong"], true, "the sender is unaffected");
}
