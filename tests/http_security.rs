//! What the HTTP door does so a web page from another site cannot use a
//! visitor's browser against goTalk: the page's Content-Security-Policy
//! and companion headers, the `Host` check (DNS rebinding against the
//! loopback default), and the `Origin` check on every POST.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::*;
use std::net::SocketAddr;

/// A request with exactly the given header lines (no others).
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if method == "POST" {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    let mut client = HttpClient::connect(addr);
    client.send_raw(head.as_bytes());
    if method == "HEAD" {
        client.read_head()
    } else {
        client.read_response()
    }
}

fn get(addr: SocketAddr, path: &str, host: &str) -> Response {
    request(addr, "GET", path, &[&format!("Host: {host}")], "")
}

#[test]
fn the_page_and_its_files_carry_a_strict_policy() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let host = addr.to_string();
    let page = get(addr, "/", &host);
    assert_eq!(page.status, 200, "{}", page.text());
    let csp = page
        .header("Content-Security-Policy")
        .expect("the page has a Content-Security-Policy");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(page.header("Referrer-Policy"), Some("no-referrer"));
    let html = page.text();
    assert!(html.contains(r#"<script src="/app.js""#), "{html}");
    assert!(!html.contains("<style"), "inline style in the page");

    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.ico", "image/x-icon"),
    ] {
        let r = get(addr, path, &host);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let ct = r.header("Content-Type").unwrap_or_default();
        assert!(ct.starts_with(kind), "{path}: Content-Type {ct}");
        assert_eq!(
            r.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(!r.body.is_empty(), "{path} is empty");
    }
}

#[test]
fn a_foreign_host_is_refused_and_this_servers_names_are_not() {
    let server = TestServer::start(&["--http-host", "chat.example.com"]);
    let addr = server.addr();
    let port = addr.port();
    for host in [
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LocalHost".to_string(),
        format!("[::1]:{port}"),
        "chat.example.com".to_string(),
        format!("chat.example.com:{port}"),
    ] {
        let r = get(addr, "/", &host);
        assert_eq!(r.status, 200, "Host {host}: {}", r.text());
    }
    for host in [
        format!("evil.example:{port}"),
        "rebind.attacker.test".to_string(),
        "192.0.2.1".to_string(),
        "chat.example.com.evil".to_string(),
    ] {
        for (method, path) in [("GET", "/"), ("GET", "/healthz"), ("POST", "/sync")] {
            let r = request(addr, method, path, &[&format!("Host: {host}")], "");
            let message = r.expect_error(421, "bad_request");
            assert!(
                message.contains("does not answer to Host") && message.contains("--http-host"),
                "{message}"
            );
        }
    }
    // No Host at all (an HTTP/1.0 client, a hand-typed request) is fine.
    let r = request(addr, "GET", "/healthz", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    // The refusal leaves the connection usable.
    let mut client = HttpClient::connect(addr);
    client.send_raw(b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    assert_eq!(client.read_response().status, 421);
    assert_eq!(client.get("GET", "/healthz").status, 200);
}

#[test]
fn a_post_from_another_origin_is_refused() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let host = format!("localhost:{}", addr.port());
    let host_header = format!("Host: {host}");
    let register = |name: &str, origin: Option<&str>| {
        let body = form(&[("username", name), ("password", "long-enough-pw")]);
        let origin = origin.map(|o| format!("Origin: {o}"));
        let mut headers = vec![host_header.as_str()];
        headers.extend(origin.as_deref());
        request(addr, "POST", "/register", &headers, &body)
    };

    for origin in [
        "http://evil.example".to_string(),
        format!("http://evil.example:{}", addr.port()),
        "null".to_string(),
        format!("http://localhost:{}", addr.port() + 1),
        format!("http://127.0.0.1:{}", addr.port()),
    ] {
        let message = register("mallory", Some(&origin)).expect_error(403, "bad_request");
        assert!(message.contains("may not post"), "{origin}: {message}");
    }
    // Nothing was registered by the refused posts.
    let lookup = post(addr, "/getuseridbyname", &[("username", "mallory")]);
    lookup.expect_error(404, "not_found");

    // Same origin, over http or https, and no Origin at all: accepted.
    let same = format!("http://{host}");
    assert_eq!(
        register("alice", Some(&same)).expect_json(200)["Name"],
        "alice"
    );
    let same_tls = format!("https://{host}");
    assert_eq!(
        register("bob", Some(&same_tls)).expect_json(200)["Name"],
        "bob"
    );
    assert_eq!(register("carol", None).expect_json(200)["Name"], "carol");

    // Every POST is checked, /send and /sync too, before the token is read.
    let (token, _) = http_login(addr, "alice", "long-enough-pw");
    for path in ["/send", "/sync", "/login"] {
        let body = form(&[("token", &token), ("to", "bob"), ("content", "hi")]);
        let r = request(
            addr,
            "POST",
            path,
            &[&host_header, "Origin: http://evil.example"],
            &body,
        );
        r.expect_error(403, "bad_request");
    }
    let body = form(&[("token", &token), ("to", "bob"), ("content", "hi")]);
    let r = request(
        addr,
        "POST",
        "/send",
        &[&host_header, &format!("Origin: {same}")],
        &body,
    );
    assert_eq!(r.expect_json(200)["ok"], true);
}
