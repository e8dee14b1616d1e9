//! Clients behind a proxy: a PROXY protocol header (v1 or v2) from a peer
//! in `--trusted-proxies` names the client, whose address every budget
//! then counts (seen here through `--max-connections-per-address 1`);
//! from any other peer the header is refused. For HTTP, a trusted
//! proxy's last `X-Forwarded-For` hop names the client of each request
//! (seen through `--registers-per-address-hour 1`). The test process is
//! the proxy at 127.0.0.1; 127.0.0.2 is a peer that is not trusted.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::{post_bytes, HttpClient};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpStream};
use std::time::Duration;

const TRUSTED: [&str; 2] = ["--trusted-proxies", "127.0.0.1/32"];

fn v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 192.0.2.1 40000 9000\r\n").into_bytes()
}

fn v2_tcp6(client: Ipv6Addr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x21, 0, 36]);
    h.extend_from_slice(&client.octets());
    h.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    h.extend_from_slice(&[0x9c, 0x40, 0x23, 0x28]);
    h
}

fn v2_local() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x20, 0x00, 0, 0]);
    h
}

/// A line connection that opens with `header`.
fn proxied(server: &TestServer, header: &[u8]) -> LineClient {
    let mut c = server.connect();
    c.send_raw(header);
    c
}

/// Whether the connection is served (a PING answered), or refused for its
/// address (the one-line refusal).
fn ping_served(c: &mut LineClient) -> bool {
    let reply = c.text("PING");
    if reply["pong"] == true {
        return true;
    }
    assert!(
        error_message(&reply).contains("too many connections from your address"),
        "{reply}"
    );
    false
}

/// Reads until the server closes; returns what came first.
fn closed_without_reply(mut stream: TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest)),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed: {e}"),
    }
}

#[test]
fn proxy_v1_from_a_trusted_peer_counts_the_client_not_the_proxy() {
    let mut args = TRUSTED.to_vec();
    args.extend(["--max-connections-per-address", "1"]);
    let server = TestServer::start(&args);
    let mut a = proxied(&server, &v1("203.0.113.1"));
    let mut b = proxied(&server, &v1("203.0.113.2"));
    assert!(ping_served(&mut a), "first client");
    assert!(
        ping_served(&mut b),
        "second client: the proxy's address is not the budget"
    );
    let mut a_again = proxied(&server, &v1("203.0.113.1"));
    assert!(
        !ping_served(&mut a_again),
        "the first client's second connection"
    );
    assert!(
        server.wait_for_stderr(
            "refusing connections from 203.0.113.1",
            Duration::from_secs(10)
        ),
        "the log names the client:\n{}",
        server.stderr_text()
    );
    // The header and the first line may come in one write, and in pieces.
    let mut c = server.connect();
    let mut bytes = v1("203.0.113.3");
    bytes.extend_from_slice(b"PING\n");
    c.send_in_pieces(&bytes, 1, Duration::from_millis(1));
    assert_eq!(c.read_reply()["pong"], true);
}

#[test]
fn proxy_v2_names_the_client_and_local_is_the_proxy_itself() {
    let mut args = TRUSTED.to_vec();
    args.extend(["--max-connections-per-address", "1"]);
    let server = TestServer::start(&args);
    // Two addresses of one /64 are one client; another /64 is another.
    let mut a = proxied(&server, &v2_tcp6("2001:db8:1:2::1".parse().unwrap()));
    assert!(ping_served(&mut a));
    let mut same_64 = proxied(&server, &v2_tcp6("2001:db8:1:2::99".parse().unwrap()));
    assert!(!ping_served(&mut same_64), "same /64");
    let mut other = proxied(&server, &v2_tcp6("2001:db8:1:3::1".parse().unwrap()));
    assert!(ping_served(&mut other), "another /64");
    // LOCAL (a health check) keeps the proxy's address, which a trusted
    // proxy's own connections are not limited by.
    let mut health_a = proxied(&server, &v2_local());
    let mut health_b = proxied(&server, &v2_local());
    assert!(ping_served(&mut health_a) && ping_served(&mut health_b));
    // HTTP after a header works too.
    let mut http = HttpClient::from_stream(TcpStream::connect(server.addr()).unwrap());
    let mut bytes = v1("203.0.113.9");
    bytes.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    http.send_raw(&bytes);
    assert_eq!(http.read_response().expect_json(200)["ok"], true);
}

#[test]
fn a_proxy_header_from_an_untrusted_peer_is_refused() {
    let mut args = TRUSTED.to_vec();
    args.extend(["--metrics", "127.0.0.1:0"]);
    let server = TestServer::start(&args);
    let untrusted = Ipv4Addr::new(127, 0, 0, 2);
    for header in [v1("203.0.113.1"), v2_tcp6("2001:db8::1".parse().unwrap())] {
        let mut stream = connect_from(untrusted, server.addr());
        stream.write_all(&header).unwrap();
        stream.write_all(b"PING\n").unwrap();
        closed_without_reply(stream);
    }
    // The peer itself, without a header, is served as itself.
    let mut plain = LineClient::from_stream(connect_from(untrusted, server.addr()));
    assert_eq!(plain.text("PING")["pong"], true);
    assert!(server.wait_for_stderr(
        "refusing a PROXY header from 127.0.0.2",
        Duration::from_secs(10)
    ));
    let log = server.stderr_text();
    assert_eq!(
        log.matches("refusing a PROXY header").count(),
        1,
        "rate-limited:\n{log}"
    );
    let stats = server.stats_when(|s| s["server"]["refused_by_reason"]["proxy_header"] == 2);
    assert_eq!(stats["server"]["refused_by_reason"]["proxy_header"], 2);
}

#[test]
fn with_proxy_protocol_a_trusted_peer_must_send_the_header() {
    let mut args = TRUSTED.to_vec();
    args.push("--proxy-protocol");
    let server = TestServer::start(&args);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.write_all(b"PING\n").unwrap();
    closed_without_reply(stream);
    let mut malformed = TcpStream::connect(server.addr()).unwrap();
    malformed
        .write_all(b"PROXY TCP4 203.0.113.1 192.0.2.1 99999 9000\r\nPING\n")
        .unwrap();
    closed_without_reply(malformed);
    let mut good = proxied(&server, &v1("203.0.113.1"));
    assert_eq!(good.text("PING")["pong"], true);
    // Untrusted peers are clients, not proxies: no header needed.
    let mut direct =
        LineClient::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr()));
    assert_eq!(direct.text("PING")["pong"], true);
}

/// Registers `name` over HTTP from `stream`, with `extra` header lines;
/// returns the status.
fn register_via(stream: TcpStream, name: &str, extra: &[&str]) -> u16 {
    let mut c = HttpClient::from_stream(stream);
    c.set_timeout(HASH_TIMEOUT);
    c.send_raw(&post_bytes(
        "/register",
        &[("username", name), ("password", "pw-secret-1")],
        extra,
    ));
    c.read_response().status
}

#[test]
fn x_forwarded_for_names_the_client_from_a_trusted_proxy_only() {
    let mut args = TRUSTED.to_vec();
    args.extend(["--registers-per-address-hour", "1"]);
    let server = TestServer::start(&args);
    let proxy = || TcpStream::connect(server.addr()).unwrap();
    let xff = |ip: &str| format!("X-Forwarded-For: 198.51.100.200, {ip}");
    // Each client behind the proxy has its own registration budget.
    assert_eq!(register_via(proxy(), "alice", &[&xff("203.0.113.1")]), 200);
    assert_eq!(register_via(proxy(), "bob", &[&xff("203.0.113.2")]), 200);
    assert_eq!(register_via(proxy(), "carol", &[&xff("203.0.113.1")]), 429);
    // The hops before the last are the client's words: not counted.
    assert_eq!(
        register_via(
            proxy(),
            "dave",
            &["X-Forwarded-For: 203.0.113.7, 203.0.113.2"]
        ),
        429
    );
    // From a peer that is not trusted the header is ignored: its own
    // address is the budget, whatever it claims.
    let untrusted = || connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr());
    assert_eq!(
        register_via(untrusted(), "erin", &[&xff("203.0.113.3")]),
        200
    );
    assert_eq!(
        register_via(untrusted(), "frank", &[&xff("203.0.113.4")]),
        429
    );
}

#[test]
fn a_proxy_header_that_never_ends_is_cut_at_the_request_timeout() {
    let mut args = TRUSTED.to_vec();
    args.extend(["--proxy-protocol", "--request-timeout", "1"]);
    let server = TestServer::start(&args);
    let mut partial = TcpStream::connect(server.addr()).unwrap();
    partial.write_all(b"PROXY TCP4 203.0.113.1 ").unwrap();
    let silent = TcpStream::connect(server.addr()).unwrap();
    // Both are closed at the deadline (not the 60 s login timeout), and
    // a whole header on a third connection is served meanwhile.
    let mut good = proxied(&server, &v1("203.0.113.2"));
    assert_eq!(good.text("PING")["pong"], true);
    closed_without_reply(partial);
    closed_without_reply(silent);
    assert_eq!(good.text("PING")["pong"], true);
}

#[test]
fn one_clients_failed_logins_behind_the_proxy_do_not_lock_out_another() {
    let mut args = TRUSTED.to_vec();
    args.extend([
        "--login-failure-burst",
        "1",
        "--login-failures-per-address-minute",
        "1",
        "--login-failures-per-minute",
        "1000",
    ]);
    let server = TestServer::start(&args);
    let mut owner = proxied(&server, &v1("203.0.113.2"));
    owner.set_timeout(HASH_TIMEOUT);
    register(&mut owner, "alice", "alice-password");
    let mut guesser = proxied(&server, &v1("203.0.113.1"));
    guesser.set_timeout(HASH_TIMEOUT);
    let mut limited = false;
    for n in 0..5 {
        let reply = guesser.text(&format!("LOGIN ghost{n} wrong-password"));
        assert_eq!(reply["ok"], false, "{reply}");
        limited |= reply["error"]["code"] == "rate_limited";
    }
    assert!(limited, "the guessing client reached its address's limit");
    let reply = owner.text("LOGIN alice alice-password");
    assert_eq!(reply["ok"], true, "another client of the proxy: {reply}");
}
