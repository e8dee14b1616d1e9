//! Connection deadlines: a connection that never logs in, a request that
//! never finishes and an idle HTTP keep-alive connection are closed; a
//! logged-in line connection may stay idle.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const FAST: [&str; 8] = [
    "--login-timeout",
    "1",
    "--request-timeout",
    "1",
    "--http-idle-timeout",
    "1",
    "--metrics",
    "127.0.0.1:0",
];

/// Reads until the server closes; returns what arrived first.
fn until_closed(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .expect("the server closes the connection before the read times out");
    text
}

#[test]
fn silent_and_half_sent_connections_are_closed() {
    let server = TestServer::start(&[
        "--login-timeout",
        "4",
        "--request-timeout",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut silent = TcpStream::connect(server.addr()).unwrap();
    let mut half_sent = TcpStream::connect(server.addr()).unwrap();
    half_sent.write_all(b"G").unwrap();
    let mut slow_http = TcpStream::connect(server.addr()).unwrap();
    slow_http
        .write_all(b"POST /send HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();

    assert_eq!(until_closed(&mut silent), "");
    assert_eq!(until_closed(&mut half_sent), "");
    assert_eq!(until_closed(&mut slow_http), "");

    let stats = server.stats();
    let closed = &stats["server"]["closed_by_reason"];
    assert_eq!(closed["login_timeout"], 1, "{stats}");
    assert_eq!(closed["request_timeout"], 2, "{stats}");
}

#[test]
fn a_line_connection_must_log_in_but_may_then_stay_idle() {
    let server = TestServer::start(&FAST);
    let mut anonymous = server.connect();
    assert_eq!(anonymous.text("PING")["pong"], true);
    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");

    anonymous.set_timeout(Duration::from_secs(15));
    anonymous.expect_eof();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        alice.text("PING")["pong"],
        true,
        "a logged-in connection outlives the login deadline"
    );
}

#[test]
fn an_idle_keep_alive_http_connection_is_closed() {
    let server = TestServer::start(&FAST);
    let mut http = TcpStream::connect(server.addr()).unwrap();
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let text = until_closed(&mut http);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("{\"ok\":true}"),
        "one response, then the close: {text}"
    );
    let stats = server.stats();
    assert_eq!(
        stats["server"]["closed_by_reason"]["idle_timeout"], 1,
        "{stats}"
    );
}

#[test]
fn a_long_poll_is_not_cut_by_the_idle_deadline() {
    let server = TestServer::start(&FAST);
    let (mut bob, _, _) = register_and_login(&server, "bob", "password-b");
    let token = login(&mut server.connect(), "bob", "password-b").0;
    let mut http = TcpStream::connect(server.addr()).unwrap();
    let body = format!("token={token}&wait=2500");
    http.write_all(
        format!(
            "POST /sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let text = until_closed(&mut http);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("[]"),
        "the long-poll ends with its empty reply: {text}"
    );
    assert_eq!(bob.text("PING")["pong"], true);
}
