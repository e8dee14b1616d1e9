//! HTTP/1.1 connection handling in the shim: keep-alive, pipelining in
//! order, `Connection: close`, HTTP/1.0, requests split into pieces,
//! `Expect: 100-continue`, and each malformed or oversized request being
//! refused with its status and the connection closed.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    let r = c.post(
        "/register",
        &[("username", "alice"), ("password", "pw-secret")],
    );
    assert_eq!(r.expect_json(200)["Name"], "alice");
    assert!(!r.closes(), "{:?}", r.headers);
    let r = c.post("/getuseridbyname", &[("username", "alice")]);
    assert_eq!(r.expect_json(200), json!({"Id": 1, "Name": "alice"}));
    c.expect_nothing_within(100);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    // Registration waits for a password hash; the lookup behind it must
    // wait too, and see the new account.
    let mut bytes = post_bytes(
        "/register",
        &[("username", "alice"), ("password", "pw-secret")],
        &[],
    );
    bytes.extend(post_bytes(
        "/getuseridbyname",
        &[("username", "alice")],
        &[],
    ));
    bytes.extend(b"GET /healthz HTTP/1.1\r\n\r\n");
    bytes.extend(post_bytes(
        "/getuseridbyname",
        &[("username", "nobody")],
        &[],
    ));
    c.send_raw(&bytes);
    assert_eq!(c.read_response().expect_json(200)["Name"], "alice");
    assert_eq!(
        c.read_response().expect_json(200),
        json!({"Id": 1, "Name": "alice"})
    );
    assert_eq!(c.read_response().expect_json(200), json!({"ok": true}));
    c.read_response().expect_error(404, "not_found");
}

#[test]
fn pipelined_sends_keep_their_order() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (bob, _) = http_user(addr, "bob", "pw-b-secret");
    let mut c = HttpClient::connect(addr);
    let mut bytes = Vec::new();
    for i in 0..20 {
        bytes.extend(post_bytes(
            "/send",
            &[
                ("token", &alice),
                ("to", "bob"),
                ("content", &format!("m{i}")),
            ],
            &[],
        ));
    }
    bytes.extend(post_bytes("/sync", &[("token", &bob), ("after", "0")], &[]));
    c.send_raw(&bytes);
    let ids: Vec<u64> = (0..20)
        .map(|_| c.read_response().expect_json(200)["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let synced = c.read_response().expect_json(200);
    assert_eq!(array_ids(&synced), ids, "the sync saw every earlier send");
}

#[test]
fn connection_close_is_honoured() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    c.send_raw(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(r.closes(), "{:?}", r.headers);
    c.expect_eof();
}

#[test]
fn http10_closes_unless_asked_to_keep_alive() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    c.send_raw(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    c.send_raw(b"GET /healthz HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(r.closes(), "{:?}", r.headers);
    c.expect_eof();
}

#[test]
fn a_request_in_pieces_is_read_whole() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    let bytes = post_bytes(
        "/register",
        &[("username", "slow"), ("password", "pw-secret")],
        &[],
    );
    c.send_in_pieces(&bytes, 1, Duration::from_millis(1));
    assert_eq!(c.read_response().expect_json(200)["Name"], "slow");
    // Head now, body later.
    let bytes = post_bytes("/getuseridbyname", &[("username", "slow")], &[]);
    let split = bytes.len() - 5;
    c.send_raw(&bytes[..split]);
    c.expect_nothing_within(200);
    c.send_raw(&bytes[split..]);
    assert_eq!(c.read_response().expect_json(200)["Id"], 1);
}

#[test]
fn expect_100_continue_gets_an_interim_response() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    let bytes = post_bytes(
        "/register",
        &[("username", "eve"), ("password", "pw-secret")],
        &["Expect: 100-continue"],
    );
    let body_at = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    c.send_raw(&bytes[..body_at]);
    let interim = c.read_head();
    assert_eq!(interim.status, 100, "{interim:?}");
    c.send_raw(&bytes[body_at..]);
    assert_eq!(c.read_response().expect_json(200)["Name"], "eve");
}

/// Sends `bytes` on a fresh connection; the reply must have `status`, say
/// `Connection: close`, and the server must then close.
#[track_caller]
fn refused_and_closed(server: &TestServer, bytes: &[u8], status: u16, code: &str) {
    let mut c = HttpClient::connect(server.addr());
    c.send_raw(bytes);
    let r = c.read_response();
    assert_eq!(
        r.status,
        status,
        "{:?} got {} {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(80)]),
        r.status,
        r.text()
    );
    r.expect_error(status, code);
    assert!(r.closes(), "{:?}", r.headers);
    c.expect_eof();
}

#[test]
fn malformed_requests_are_400_and_close() {
    let server = TestServer::start(&[]);
    for bytes in [
        &b"GET /he\x01lo HTTP/1.1\r\n\r\n"[..],
        b"POST /sync HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"POST /send HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /send HTTP/1.1\r\nContent-Length: five\r\n\r\n",
        b"POST /send HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /send HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    ] {
        refused_and_closed(&server, bytes, 400, "bad_request");
    }
}

#[test]
fn a_malformed_request_after_a_good_one_is_400_and_closes() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    c.send_raw(b"GET /healthz HTTP/1.1\r\n\r\nHELLO THERE\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    let r = c.read_response();
    r.expect_error(400, "bad_request");
    assert!(r.closes());
    c.expect_eof();
}

#[test]
fn a_chunked_body_is_411_and_closes() {
    let server = TestServer::start(&[]);
    refused_and_closed(
        &server,
        b"POST /register HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nusernam\r\n0\r\n\r\n",
        411,
        "bad_request",
    );
}

#[test]
fn oversized_heads_are_431_and_close() {
    let server = TestServer::start(&[]);
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        many.extend(format!("X-Header-{i}: value\r\n").as_bytes());
    }
    many.extend(b"\r\n");
    refused_and_closed(&server, &many, 431, "too_large");

    let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 20 * 1024));
    long.extend(b"\r\n\r\n");
    refused_and_closed(&server, &long, 431, "too_large");

    // Too long without ever ending is refused too, without waiting for more.
    let mut endless = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 20 * 1024));
    refused_and_closed(&server, &endless, 431, "too_large");
}

#[test]
fn an_oversized_body_is_413_and_closes() {
    let server = TestServer::start(&[]);
    refused_and_closed(
        &server,
        b"POST /send HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\r\ncontent=",
        413,
        "too_large",
    );
    // With Expect: 100-continue the client is told before sending the body.
    refused_and_closed(
        &server,
        b"POST /send HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 300000\r\n\r\n",
        413,
        "too_large",
    );
}

#[test]
fn a_body_at_the_limit_is_accepted() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    http_user(addr, "bob", "pw-b-secret");
    // The largest content (64 KiB) plus an unknown field that pads the body
    // to exactly the 256 KiB limit.
    let prefix = format!(
        "token={alice}&to=bob&content={}&pad=",
        "c".repeat(64 * 1024)
    );
    let body = format!("{prefix}{}", "x".repeat(256 * 1024 - prefix.len()));
    let mut c = HttpClient::connect(addr);
    c.send_raw(
        format!(
            "POST /send HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.read_response().expect_json(200)["ok"], true);
}

#[test]
fn the_line_protocol_still_works_beside_http() {
    let server = TestServer::start(&[]);
    let mut line = server.connect();
    assert_eq!(line.text("PING")["pong"], true);
    let mut c = HttpClient::connect(server.addr());
    assert_eq!(c.get("GET", "/healthz").status, 200);
    assert_eq!(line.text("PING")["pong"], true);
}
