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
        .write_all(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
