//! Connection budgets: the server never stops accepting for good. Out of
//! file descriptors it pauses and retries; over `--max-connections` or
//! `--max-connections-per-address` a client is told why in one line and
//! closed, and everyone else is still served.

mod common;

use common::*;
use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// Reads what a refused connection gets: one JSON line, then the close.
fn refusal(mut stream: TcpStream) -> serde_json::Value {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.ends_with('\n'), "one line, then the close: {text:?}");
    serde_json::from_str(text.trim_end()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

#[test]
fn running_out_of_descriptors_does_not_lock_new_clients_out() {
    // 64 descriptors: the server's own files and about 50 connections.
    let server = TestServer::start_with_open_files(64, &["--max-connections", "1000"]);
    let mut held: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(server.addr()).expect("the kernel completes the handshake"))
        .collect();
    assert!(
        server.wait_for_stderr("cannot accept connections", Duration::from_secs(10)),
        "the server never ran out of descriptors:\n{}",
        server.stderr_text()
    );
    held.clear(); // every descriptor comes back

    let mut late = server.connect();
    assert_eq!(
        late.text("PING")["pong"],
        true,
        "a new client is served again"
    );
    let log = server.stderr_text();
    assert_eq!(
        log.matches("cannot accept connections").count(),
        1,
        "the warning is rate-limited:\n{log}"
    );
}

#[test]
fn over_the_connection_limit_a_client_is_told_why() {
    let server = TestServer::start(&["--max-connections", "2"]);
    let mut first = server.connect();
    let mut second = server.connect();
    assert_eq!(first.text("PING")["pong"], true);
    assert_eq!(second.text("PING")["pong"], true);

    let refused = refusal(TcpStream::connect(server.addr()).unwrap());
    assert_error(&refused, "unavailable");
    assert!(
        error_message(&refused).contains("too many connections"),
        "{refused}"
    );

    drop(second);
    // The slot comes back once the server has seen the close; a PING on
    // the first connection orders that (its reply comes after the close
    // was read in an earlier turn or this one).
    let mut third = None;
    for _ in 0..100 {
        assert_eq!(first.text("PING")["pong"], true);
        let mut candidate = server.connect();
        candidate.set_timeout(Duration::from_secs(10));
        candidate.send_line("PING");
        let line = candidate.read_json();
        if line["ok"] == true {
            third = Some(candidate);
            break;
        }
        assert_error(&line, "unavailable");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(third.is_some(), "a freed slot is given to a new client");
}

#[test]
fn one_address_cannot_take_every_connection() {
    let server = TestServer::start(&[
        "--max-connections-per-address",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let mut a = LineClient::from_stream(connect_from(other, server.addr()));
    let mut b = LineClient::from_stream(connect_from(other, server.addr()));
    assert_eq!(a.text("PING")["pong"], true);
    assert_eq!(b.text("PING")["pong"], true);

    let refused = refusal(connect_from(other, server.addr()));
    assert_error(&refused, "unavailable");
    assert!(
        error_message(&refused).contains("too many connections from your address"),
        "{refused}"
    );

    // Another address is not affected.
    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");
    assert_ok(&alice.text("SEND alice note to self"));
    assert_eq!(server.stats()["server"]["connections"], 3);
}
