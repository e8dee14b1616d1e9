//! The metrics listener: `GET /stats` on the `--metrics` address answers
//! JSON figures that move as clients come and go.

mod common;

use common::*;

#[test]
fn stats_count_connections_and_pending_messages() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0"]);
    let before = server.stats();
    assert_eq!(before["server"]["connections"], 0, "{before}");
    assert_eq!(before["core"]["pending_messages"], 0, "{before}");

    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");
    let mut bob = server.connect();
    register(&mut bob, "bob", "password-b");
    assert_ok(&alice.text("SEND bob hello"));

    let during = server.stats();
    assert_eq!(during["server"]["connections"], 2, "{during}");
    assert_eq!(during["core"]["accounts"], 2, "{during}");
    assert_eq!(during["core"]["users_online"], 1, "{during}");
    assert_eq!(during["core"]["pending_messages"], 1, "{during}");
}

#[test]
fn other_paths_are_not_found() {
    use std::io::{Read, Write};
    let server = TestServer::start(&["--metrics", "127.0.0.1:0"]);
    let _ = server.stats();
    let log = server.stderr_text();
    let mark = "metrics served at http://";
    let rest = &log[log.find(mark).unwrap() + mark.len()..];
    let addr = &rest[..rest.find('/').unwrap()];
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}

/// The metrics listener's address, from the start-up log.
fn metrics_addr(server: &TestServer) -> String {
    let _ = server.stats();
    let log = server.stderr_text();
    let mark = "metrics served at http://";
    let rest = &log[log.find(mark).unwrap() + mark.len()..];
    rest[..rest.find('/').unwrap()].to_string()
}

/// Sends `request` and reads the whole response.
fn metrics_get(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn a_slow_metrics_client_does_not_hold_up_another() {
    use std::io::{Read, Write};
    let server = TestServer::start(&["--metrics", "127.0.0.1:0"]);
    let addr = metrics_addr(&server);
    // Half a request, held open: the listener is reading it.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /stats HTTP/1.1\r\nHo").unwrap();
    // Another client is answered while the first is still unfinished:
    // before, the one thread read the first until its read timeout closed
    // it, and only then took the second.
    let response = metrics_get(&addr, "GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    slow.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match slow.read(&mut byte) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the slow client was closed or answered first: {other:?}"),
    }
}

#[test]
fn a_foreign_host_gets_421_from_the_metrics_listener() {
    let server = TestServer::start(&[
        "--metrics",
        "127.0.0.1:0",
        "--http-host",
        "chat.example.com",
    ]);
    let addr = metrics_addr(&server);
    let response = metrics_get(&addr, "GET /stats HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 421"), "{response}");
    assert!(!response.contains("connections"), "no figures: {response}");
    for host in ["localhost:9100", "127.0.0.1", "chat.example.com"] {
        let ok = metrics_get(
            &addr,
            &format!("GET /stats HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        );
        assert!(ok.starts_with("HTTP/1.1 200"), "{host}: {ok}");
    }
}
