//! A raw HTTP/1.1 client for goTalk's HTTP shim tests.
//!
//! It writes exactly the bytes a test gives (so malformed, pipelined and
//! byte-by-byte requests can be sent) and reads responses framed by their
//! `Content-Length`, each read bounded by a timeout so a silent server fails
//! the test instead of hanging it. Helpers cover the form posts every test
//! needs (register, log in, send, sync).
//!
//! Include it next to the shared harness with
//! `mod common; #[path = "common/http.rs"] mod http;`.
#![allow(dead_code)]

use crate::common::{HASH_TIMEOUT, READ_TIMEOUT};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// One response as read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names as sent, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (quoting it) if it is not.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: body is not JSON ({e}): {:?}",
                self.status,
                self.reason,
                self.text()
            )
        })
    }

    /// Asserts the status and that the reply is JSON as the contract says;
    /// returns the body.
    #[track_caller]
    pub fn expect_json(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "expected {status}, got {} {}: {}",
            self.status,
            self.reason,
            self.text()
        );
        let ct = self.header("Content-Type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "Content-Type is {ct:?}, not application/json"
        );
        self.json()
    }

    /// Asserts an error reply: the status and
    /// `{"ok":false,"error":{"code":code,"message":"<non-empty>"}}`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        let body = self.expect_json(status);
        assert_eq!(body["ok"], false, "error reply: {body}");
        assert_eq!(body["error"]["code"], code, "error code: {body}");
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("error without a message: {body}"));
        assert!(!message.trim().is_empty(), "empty error message: {body}");
        message.to_string()
    }

    /// Whether the server said it closes the connection.
    pub fn closes(&self) -> bool {
        self.header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A raw HTTP connection.
pub struct HttpClient {
    stream: TcpStream,
    /// Bytes read past the last response.
    buf: Vec<u8>,
    timeout: Duration,
}

impl HttpClient {
    pub fn connect(addr: SocketAddr) -> HttpClient {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        HttpClient::from_stream(stream)
    }

    /// An HTTP client on a connection already made (e.g. by `connect_from`).
    pub fn from_stream(stream: TcpStream) -> HttpClient {
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        HttpClient {
            stream,
            buf: Vec::new(),
            timeout: HASH_TIMEOUT,
        }
    }

    /// Changes the bound on each later response.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends bytes exactly as given, in one write call.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to server: {e}"));
    }

    /// Sends bytes in pieces with a pause between, so the server sees them
    /// arrive separately.
    pub fn send_in_pieces(&mut self, bytes: &[u8], chunk: usize, pause: Duration) {
        for piece in bytes.chunks(chunk.max(1)) {
            self.send_raw(piece);
            thread::sleep(pause);
        }
    }

    /// Sends a form post (keep-alive).
    pub fn send_post(&mut self, path: &str, fields: &[(&str, &str)]) {
        let bytes = post_bytes(path, fields, &[]);
        self.send_raw(&bytes);
    }

    /// Posts a form and reads the response.
    #[track_caller]
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.send_post(path, fields);
        self.read_response()
    }

    /// Sends a request without a body and reads the response.
    #[track_caller]
    pub fn get(&mut self, method: &str, path: &str) -> Response {
        self.send_raw(format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
        if method == "HEAD" {
            self.read_head()
        } else {
            self.read_response()
        }
    }

    /// Reads one response whose body is framed by `Content-Length`.
    #[track_caller]
    pub fn read_response(&mut self) -> Response {
        let mut response = self.read_head();
        let length: usize = response
            .header("Content-Length")
            .map(|v| {
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad Content-Length {v:?}"))
            })
            .unwrap_or_else(|| {
                assert!(
                    response.status == 100,
                    "response without a Content-Length: {response:?}"
                );
                0
            });
        let deadline = Instant::now() + self.timeout;
        while self.buf.len() < length {
            self.fill(deadline, "the response body");
        }
        response.body = self.buf.drain(..length).collect();
        response
    }

    /// Reads a status line and headers (for HEAD and 100 Continue).
    #[track_caller]
    pub fn read_head(&mut self) -> Response {
        let deadline = Instant::now() + self.timeout;
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill(deadline, "a response head");
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).expect("response head is UTF-8");
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap();
        assert!(
            version == "HTTP/1.1" || version == "HTTP/1.0",
            "bad status line {status_line:?}"
        );
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let reason = parts.next().unwrap_or_default().to_string();
        let headers = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {l:?}"));
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer before `deadline`.
    #[track_caller]
    fn fill(&mut self, deadline: Instant, what: &str) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {what} within {:?} (have {:?})",
            self.timeout,
            String::from_utf8_lossy(&self.buf)
        );
        self.stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!(
                "server closed the connection while {what} was expected (have {:?})",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read from server while {what} was expected: {e}"),
        }
    }

    /// Asserts that nothing arrives within `ms` and the connection is open.
    #[track_caller]
    pub fn expect_nothing_within(&mut self, ms: u64) {
        assert!(
            self.buf.is_empty(),
            "already received {:?}",
            self.text_buf()
        );
        self.stream
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!("expected silence, but the server closed the connection"),
            Ok(n) => panic!(
                "expected silence, got {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("expected silence, but the read failed: {e}"),
        }
    }

    /// Asserts that the server closes the connection, sending nothing more.
    #[track_caller]
    pub fn expect_eof(&mut self) {
        assert!(
            self.buf.is_empty(),
            "expected a close, but have {:?}",
            self.text_buf()
        );
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Ok(_) if rest.is_empty() => {}
            Ok(_) => panic!(
                "expected a close, but first got {:?}",
                String::from_utf8_lossy(&rest)
            ),
            // A reset after the response is also a close.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected the server to close the connection: {e}"),
        }
    }

    fn text_buf(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

/// `a=1&b=2`, encoded as a browser would.
pub fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A complete form post, with any extra header lines.
pub fn post_bytes(path: &str, fields: &[(&str, &str)], extra_headers: &[&str]) -> Vec<u8> {
    let body = form(fields);
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in extra_headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Posts a form on a new connection and reads the response.
#[track_caller]
pub fn post(addr: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Response {
    HttpClient::connect(addr).post(path, fields)
}

/// Registers `name` over HTTP; returns the new user id.
#[track_caller]
pub fn http_register(addr: SocketAddr, name: &str, password: &str) -> u64 {
    let body = post(
        addr,
        "/register",
        &[("username", name), ("password", password)],
    )
    .expect_json(200);
    assert_eq!(body["Name"], name, "/register reply: {body}");
    body["Id"]
        .as_u64()
        .unwrap_or_else(|| panic!("/register reply without a numeric Id: {body}"))
}

/// Logs in over HTTP; returns the token (`SessionID`) and the user id.
#[track_caller]
pub fn http_login(addr: SocketAddr, name: &str, password: &str) -> (String, u64) {
    let body = post(
        addr,
        "/login",
        &[("username", name), ("password", password)],
    )
    .expect_json(200);
    assert_eq!(body["Name"], name, "/login reply: {body}");
    let token = body["SessionID"]
        .as_str()
        .unwrap_or_else(|| panic!("/login reply without a string SessionID: {body}"))
        .to_string();
    let id = body["Id"]
        .as_u64()
        .unwrap_or_else(|| panic!("/login reply without a numeric Id: {body}"));
    (token, id)
}

/// Registers and logs in over HTTP; returns the token and the user id.
#[track_caller]
pub fn http_user(addr: SocketAddr, name: &str, password: &str) -> (String, u64) {
    let id = http_register(addr, name, password);
    let (token, login_id) = http_login(addr, name, password);
    assert_eq!(id, login_id, "/login names another id than /register");
    (token, id)
}

/// Sends `content` from the token's user to user `to_id`; returns the
/// message id.
#[track_caller]
pub fn http_send(addr: SocketAddr, token: &str, to_id: u64, content: &str) -> u64 {
    let body = post(
        addr,
        "/send",
        &[
            ("token", token),
            ("sendToId", &to_id.to_string()),
            ("content", content),
        ],
    )
    .expect_json(200);
    assert_eq!(body["ok"], true, "/send reply: {body}");
    body["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("/send reply without a numeric id: {body}"))
}

/// The ids of a `/sync` array, in order.
#[track_caller]
pub fn array_ids(body: &Value) -> Vec<u64> {
    body.as_array()
        .unwrap_or_else(|| panic!("/sync reply is not an array: {body}"))
        .iter()
        .map(|m| {
            m["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("message without an id: {m}"))
        })
        .collect()
}
