//! Deterministic random-input tests: tens of thousands of random and mutated
//! inputs (valid requests with flipped bytes, cuts, duplicated fields, huge
//! numbers, deep nesting, invalid UTF-8, NUL) through the line parser, the
//! line framer, the HTTP reader and the door sniffer, checking the same
//! invariants as the fuzz targets in `fuzz/` (whose checks live in
//! `fuzz/src/lib.rs`, included here). Then the real server takes thousands
//! of such lines on one connection, and random bytes on HTTP connections,
//! and must answer each, stay up and serve fresh connections.
//!
//! The generator is a fixed-seed splitmix64, so every run sees the same
//! inputs and a failure reproduces.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod checks;
mod common;

use checks::Framed;
use common::{TestServer, ERROR_CODES, READ_TIMEOUT};
use gotalk::core::help::HELP;
use gotalk::line::framer::Framer;
use gotalk::line::parse::{parse_line, Form};
use gotalk::request::Request;
use gotalk::sniff::DoorKind;
use serde::de::IgnoredAny;
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Instant;

// ---------------------------------------------------------------- generator

/// splitmix64: tiny, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Random bytes, mostly from a protocol-ish alphabet so they reach past
    /// the first checks, sometimes anything.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"{}[]\":,\\ \t\r\nabcdefgnorstuPSNGE/HT1.0123456789-+eE%&=?";
        (0..len)
            .map(|_| {
                if self.chance(80) {
                    *self.pick(ALPHABET)
                } else {
                    self.next() as u8
                }
            })
            .collect()
    }

    /// Chunk sizes for cutting a stream: none (all at once), tiny, or mixed.
    fn sizes(&mut self) -> Vec<usize> {
        match self.below(4) {
            0 => Vec::new(),
            1 => vec![1],
            _ => (0..1 + self.below(6))
                .map(|_| 1 + self.below(300))
                .collect(),
        }
    }
}

/// Valid line-protocol requests, text and JSON, to mutate.
const LINES: &[&str] = &[
    "PING",
    "HELP",
    "QUIT",
    "EXIT",
    "REGISTER alice s3cret-pass",
    "LOGIN alice s3cret-pass",
    "AUTH 0123456789abcdef0123456789abcdef",
    "SEND bob hello there",
    "SYNC",
    "SYNC 17 10 2000",
    "ACK 17",
    r#"{"cmd":"ping"}"#,
    r#"{"cmd":"ping","tag":7}"#,
    r#"{"cmd":"help","tag":{"a":[1,"x",null,true]}}"#,
    r#"{"cmd":"register","username":"alice","password":"s3cret-pass"}"#,
    r#"{"cmd":"login","username":"alice","password":"s3cret-pass","tag":"t"}"#,
    r#"{"cmd":"auth","token":"00ff00ff"}"#,
    r#"{"cmd":"send","to":"bob","content":"hi \"there\"\n\u00e9","client_id":"c-1"}"#,
    r#"{"cmd":"send","to_id":2,"content":"x","token":"abc","tag":[1,2]}"#,
    r#"{"cmd":"sync","after":5,"limit":10,"wait_ms":0,"token":"abc"}"#,
    r#"{"cmd":"ack","upto":17,"tag":null}"#,
    r#"{"cmd":"SEND","to":"bob","content":"","unknown":{"deep":[[1]]}}"#,
];

/// Pieces worth splicing in: numbers out of range, escapes, bad UTF-8,
/// NUL, structure, whitespace outside ASCII.
const SPLICES: &[&[u8]] = &[
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999999999999",
    b"-1",
    b"1e400",
    b"1.5",
    b"-0",
    b"0x10",
    b"NaN",
    b"\\u0000",
    b"\\ud800",
    b"\\udfff\\ud800",
    b"\\u00e9",
    b"\\",
    b"\"",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\x80",
    b"\0",
    b"\r",
    b"\r\n",
    b"\n",
    b"\t",
    b"\x0b",
    b"\xc2\xa0",
    b"\xe2\x80\xa8",
    b"\xef\xbb\xbf",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"\"cmd\":\"quit\",",
    b"\"tag\":",
    b"\"content\":\"",
];

/// `depth` opening brackets of one kind, closed or left open.
fn nested(depth: usize, closed: bool, open: u8, close: u8) -> Vec<u8> {
    let mut out = vec![open; depth];
    if closed {
        out.extend(std::iter::repeat_n(close, depth));
    }
    out
}

/// A deeply nested JSON request: in `cmd`, in a tag, in an unknown field,
/// or as the whole line, balanced or left open.
fn deep_line(rng: &mut Rng) -> Vec<u8> {
    let depth = *rng.pick(&[1, 64, 127, 128, 129, 500, 2_000]);
    let closed = rng.chance(50);
    let (open, close) = *rng.pick(&[(b'[', b']'), (b'{', b'}')]);
    let inner = if open == b'{' {
        // `{{` is not JSON; an object needs keys: {"a":{"a":...}}.
        let mut v = b"{\"a\":".repeat(depth);
        v.push(b'1');
        if closed {
            v.extend(std::iter::repeat_n(b'}', depth));
        }
        v
    } else {
        nested(depth, closed, open, close)
    };
    let mut line = Vec::new();
    match rng.below(4) {
        0 => {
            line.extend_from_slice(b"{\"cmd\":");
            line.extend_from_slice(&inner);
            line.push(b'}');
        }
        1 => {
            line.extend_from_slice(b"{\"cmd\":\"ping\",\"tag\":");
            line.extend_from_slice(&inner);
            line.push(b'}');
        }
        2 => {
            line.extend_from_slice(b"{\"x\":");
            line.extend_from_slice(&inner);
            line.extend_from_slice(b",\"cmd\":\"ping\"}");
        }
        _ => line = inner,
    }
    line
}

/// One to four mutations of `base`.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(9) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.truncate(at),
            3 => {
                let piece = *rng.pick(SPLICES);
                v.splice(at..at, piece.iter().copied());
            }
            4 if !v.is_empty() => {
                // Duplicate a stretch: repeated fields, repeated headers.
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(40)).min(v.len());
                let copy = v[start..end].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, copy);
            }
            5 if !v.is_empty() => {
                // Drop a stretch.
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(10)).min(v.len());
                v.drain(start..end);
            }
            6 => {
                let len = 1 + rng.below(12);
                let junk = rng.bytes(len);
                v.splice(at..at, junk);
            }
            7 => {
                // Replace a digit run with a huge or odd number.
                if let Some(start) = v.iter().position(u8::is_ascii_digit) {
                    let end = v[start..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(v.len(), |n| start + n);
                    let piece = *rng.pick(&SPLICES[..9]);
                    v.splice(start..end, piece.iter().copied());
                }
            }
            _ => v.iter_mut().for_each(|b| {
                if b.is_ascii_alphabetic() && rng.chance(30) {
                    *b ^= 0x20; // flip case
                }
            }),
        }
    }
    v
}

/// One line-ish input: mutated request, deep nesting, or random bytes.
fn random_line(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        0 => {
            let len = rng.below(120);
            rng.bytes(len)
        }
        1 => deep_line(rng),
        2 => rng.pick(LINES).as_bytes().to_vec(),
        _ => {
            let base = rng.pick(LINES).as_bytes();
            mutate(rng, base)
        }
    }
}

/// An HTTP request with a correct `Content-Length`.
fn http_request(method: &str, target: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded";

/// Valid HTTP requests to mutate. No `/register` or `/login`: the
/// end-to-end test would spend its time hashing passwords.
fn http_seeds() -> Vec<Vec<u8>> {
    vec![
        http_request(
            "POST",
            "/send",
            &[FORM],
            "token=abc&id=1&to=bob&content=hi%21+there%0A%E2%9C%93&client_id=c1",
        ),
        http_request("POST", "/send?sendToId=2", &[], "token=T&content=x"),
        http_request(
            "POST",
            "/sync?after=1&wait=0&limit=5",
            &[FORM, "Connection: keep-alive"],
            "token=abc&id=3",
        ),
        http_request(
            "POST",
            "/getuseridbyname",
            &["Expect: 100-continue"],
            "username=alice",
        ),
        http_request("GET", "/healthz", &[], ""),
        http_request("HEAD", "/healthz", &["Connection: close"], ""),
        http_request("DELETE", "/send", &[], ""),
        http_request("GET", "/nowhere?x=1", &[], ""),
        http_request("POST", "/send", &["Content-Type: application/json"], "{}"),
        http_request(
            "POST",
            "/sync",
            &["Transfer-Encoding: chunked"],
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        b"POST /sync HTTP/1.0\r\nContent-Length: 7\r\n\r\ntoken=x".to_vec(),
        b"GET /healthz HTTP/1.1\nX: y\n\n".to_vec(),
    ]
}

/// A stream of one to four HTTP requests, mutated or with random tails.
fn http_stream(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let seed = rng.pick(seeds);
        match rng.below(10) {
            0 => {
                out.extend_from_slice(&seed[..seed.iter().position(|&b| b == b'\n').unwrap() + 1]);
                let len = rng.below(200);
                out.extend(rng.bytes(len));
            }
            1 => {
                // A head near or over the 16 KiB limit, or many headers.
                out.extend_from_slice(b"GET /healthz HTTP/1.1\r\n");
                if rng.chance(50) {
                    let n = 16 * 1024 - 40 + rng.below(80);
                    out.extend_from_slice(b"X-Long: ");
                    out.extend(std::iter::repeat_n(b'a', n));
                    out.extend_from_slice(b"\r\n");
                } else {
                    for i in 0..60 + rng.below(10) {
                        out.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
            2..=4 => out.extend_from_slice(seed),
            _ => out.extend(mutate(rng, seed)),
        }
    }
    out
}

// ------------------------------------------------------------ pure parsers

#[test]
fn random_lines_parse_and_render_without_panics() {
    let mut rng = Rng::new(0x5EED_0001);
    for _ in 0..30_000 {
        checks::check_line(&random_line(&mut rng));
    }
}

#[test]
fn deep_nesting_is_refused_or_echoed_without_overflowing_the_stack() {
    for depth in [127, 128, 129, 1_000, 100_000] {
        for closed in [false, true] {
            let arrays = nested(depth, closed, b'[', b']');
            let mut cmd = b"{\"cmd\":".to_vec();
            cmd.extend_from_slice(&arrays);
            let mut tag = b"{\"cmd\":\"ping\",\"tag\":".to_vec();
            tag.extend_from_slice(&arrays);
            tag.push(b'}');
            let mut other = b"{\"x\":".to_vec();
            other.extend_from_slice(&arrays);
            other.extend_from_slice(b",\"cmd\":\"ping\"}");
            for line in [&arrays, &cmd, &tag, &other] {
                checks::check_line(line);
            }
            for line in [&arrays, &cmd] {
                assert!(parse_line(line).unwrap().call.is_err(), "depth {depth}");
            }
            for line in [&tag, &other] {
                let parsed = parse_line(line).unwrap();
                if closed && line == &tag && 2 * depth > 256 {
                    // Valid, but a tag is echoed only up to 256 bytes.
                    assert!(parsed.tag.is_none());
                    let failure = parsed.call.unwrap_err();
                    assert!(failure.message.contains("tag"), "{}", failure.message);
                } else if closed {
                    // Deep JSON where any JSON goes is still JSON.
                    assert_eq!(parsed.call.unwrap().request, Request::Ping);
                } else {
                    let failure = parsed.call.unwrap_err();
                    assert!(
                        failure.message.contains("invalid JSON"),
                        "{}",
                        failure.message
                    );
                }
            }
            if closed && 2 * depth <= 256 {
                // A deep tag within the size limit is echoed as sent.
                let parsed = parse_line(&tag).unwrap();
                assert_eq!(parsed.tag.unwrap().get().len(), 2 * depth);
            }
        }
    }
}

#[test]
fn framing_is_the_same_however_the_stream_is_cut() {
    let mut rng = Rng::new(0x5EED_0002);
    for round in 0..5_000 {
        let mut stream = Vec::new();
        for _ in 0..rng.below(12) {
            stream.extend(random_line(&mut rng));
            if rng.chance(90) {
                stream.extend_from_slice(if rng.chance(30) { b"\r\n" } else { b"\n" });
            }
        }
        let max_line = *rng.pick(&[0, 1, 2, 3, 8, 31, 64, 1024, 64 * 1024, usize::MAX]);
        let sizes = rng.sizes();
        let run = checks::check_framer(&stream, &sizes, max_line);
        // And every line the door would see goes through the parser.
        if round % 4 == 0 {
            for framed in &run.out {
                if let Framed::Line(line) = framed {
                    checks::check_line(line);
                }
            }
        }
    }
}

#[test]
fn a_framer_with_the_largest_limit_still_finds_lines() {
    // `--max-line` takes any u64; the window arithmetic must not overflow.
    let mut framer = Framer::new(usize::MAX);
    let run = checks::check_framer(b"PING\r\nSEND bob hi\nrest", &[1, 3], usize::MAX);
    assert_eq!(
        run.out,
        [
            Framed::Line(b"PING".to_vec()),
            Framed::Line(b"SEND bob hi".to_vec())
        ]
    );
    assert_eq!(run.pending, b"rest");
    assert!(matches!(
        framer.next(b"PING\n"),
        gotalk::line::framer::Step::Line {
            line: b"PING",
            consumed: 5
        }
    ));
}

#[test]
fn http_reading_is_the_same_however_the_stream_is_cut() {
    let mut rng = Rng::new(0x5EED_0003);
    let seeds = http_seeds();
    let mut requests = 0;
    let mut refused = 0;
    for _ in 0..5_000 {
        let stream = http_stream(&mut rng, &seeds);
        let sizes = rng.sizes();
        let run = checks::check_http(&stream, &sizes);
        requests += run.requests.len();
        refused += usize::from(run.refused.is_some());
    }
    // The mix must reach both sides, or the test checks little.
    assert!(
        requests > 2_000 && refused > 500,
        "{requests} read, {refused} refused"
    );
}

#[test]
fn fuzz_input_helpers_cut_and_expand() {
    assert_eq!(
        checks::chunked_input(&[2, 0, 9, b'a']),
        (vec![1, 10], &b"a"[..])
    );
    assert_eq!(checks::pieces(b"abcde", &[2]), [&b"ab"[..], b"cd", b"e"]);
    assert_eq!(
        checks::expand(&[b'x', 0xFF, 1, b'y', 0xFF, 0, b'z'], 150),
        {
            let mut v = vec![b'x'];
            v.extend([b'y'; 128]);
            v.extend([b'z'; 21]);
            v
        }
    );
}

#[test]
fn sniff_never_changes_its_mind() {
    let mut rng = Rng::new(0x5EED_0004);
    let seeds = http_seeds();
    for _ in 0..20_000 {
        let input = match rng.below(4) {
            0 => random_line(&mut rng),
            1 => http_stream(&mut rng, &seeds),
            2 => {
                let method = *rng.pick(&["GET", "POST", "PUT", "HEAD", "CONNECT", "GE", "P"]);
                let mut v = method.as_bytes().to_vec();
                let len = rng.below(40);
                v.extend(rng.bytes(len));
                v
            }
            _ => {
                let seed = rng.pick(&seeds).clone();
                mutate(&mut rng, &seed)
            }
        };
        checks::check_sniff(&input);
    }
}

#[test]
fn sniff_decides_once_around_the_request_line_limit() {
    let mut rng = Rng::new(0x5EED_0005);
    for _ in 0..40 {
        let mut input = b"GET /".to_vec();
        let filler = *rng.pick(b"a /");
        input.extend(std::iter::repeat_n(filler, 8 * 1024 - 8 + rng.below(16)));
        if rng.chance(50) {
            input.extend_from_slice(b" HTTP/1.1");
        }
        input.extend_from_slice(if rng.chance(50) { b"\r\n" } else { b"\n" });
        input.extend_from_slice(b"PING\n");
        checks::check_sniff(&input);
    }
}

// -------------------------------------------------------- the real server

/// The lines the server owes for `bytes`: one reply per framed, non-blank
/// line, plus the readable lines a text-form HELP sends before its reply.
/// `None` if a line would end the session or hash a password.
fn replies_owed(bytes: &[u8], max_line: usize) -> Option<usize> {
    let run = checks::frame(bytes, &[], max_line);
    let mut owed = 0;
    for framed in &run.out {
        let Framed::Line(line) = framed else {
            owed += 1;
            continue;
        };
        let Some(parsed) = parse_line(line) else {
            continue;
        };
        if let Ok(call) = &parsed.call {
            if matches!(
                call.request,
                Request::Quit | Request::Register { .. } | Request::Login { .. }
            ) {
                return None;
            }
            if parsed.form == Form::Text && call.request == Request::Help {
                owed += HELP.lines().count();
            }
        }
        owed += 1;
    }
    Some(owed)
}

#[test]
fn the_server_answers_every_random_line_and_keeps_serving() {
    let server = TestServer::start(&[]);
    let mut client = server.connect();
    assert_eq!(client.text("PING"), json!({"ok":true,"pong":true}));

    let mut rng = Rng::new(0x5EED_0006);
    let mut stream = Vec::new();
    let mut owed = 0;
    let mut lines = 0;
    while lines < 3_000 {
        let mut candidate = random_line(&mut rng);
        candidate.push(b'\n');
        // Whole lines only, so each candidate frames on its own.
        if let Some(n) = replies_owed(&candidate, 64 * 1024) {
            stream.extend_from_slice(&candidate);
            owed += n;
            lines += 1;
        }
    }

    // Write from another thread: replies must be read while we send, or
    // both sides stop on full buffers.
    let mut writer = client.writer_clone();
    let sizes = rng.sizes();
    let pieces: Vec<Vec<u8>> = checks::pieces(&stream, &sizes)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let sending = thread::spawn(move || {
        for piece in pieces {
            writer.write_all(&piece).expect("write to server");
        }
    });
    for i in 0..owed {
        let line = client.read_line_bytes();
        if !line.starts_with(b"{") {
            let text = String::from_utf8_lossy(&line);
            assert!(
                HELP.lines().any(|l| l == text),
                "line {i} of {owed} is neither JSON nor text-form HELP: {text}"
            );
            continue;
        }
        if let Err(e) = serde_json::from_slice::<IgnoredAny>(&line) {
            panic!(
                "reply {i} of {owed} is not JSON ({e}): {}",
                String::from_utf8_lossy(&line)
            );
        }
        let ok = line.starts_with(b"{\"ok\":true");
        let error = ERROR_CODES.iter().any(|code| {
            line.starts_with(format!("{{\"ok\":false,\"error\":{{\"code\":\"{code}\"").as_bytes())
        });
        assert!(ok || error, "reply {i}: {}", String::from_utf8_lossy(&line));
    }
    sending.join().expect("the writer thread");
    assert_eq!(client.text("PING"), json!({"ok":true,"pong":true}));
    assert_eq!(
        server.connect().text("PING"),
        json!({"ok":true,"pong":true})
    );
}

/// Sends `bytes` on a fresh connection, half-closes, and reads until the
/// server closes (bounded). Returns what came back.
fn http_exchange(server: &TestServer, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    // The server may refuse and close before it has read everything; a
    // failed write is then fine, the answer is what counts.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        assert!(
            Instant::now() < deadline,
            "no close within {READ_TIMEOUT:?} after sending {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!(
                "reading the answer to {}: {e}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ),
        }
    }
}

#[test]
fn the_server_answers_or_closes_random_http_and_keeps_serving() {
    let mut server = TestServer::start(&[]);
    let mut rng = Rng::new(0x5EED_0007);
    let seeds = http_seeds();
    for _ in 0..300 {
        let mut bytes = http_stream(&mut rng, &seeds);
        if !matches!(checks::check_sniff(&bytes), Some(DoorKind::Http)) {
            // Make sure it is the HTTP door that gets the random part.
            let mut head = http_request("GET", "/healthz", &[], "");
            head.append(&mut bytes);
            bytes = head;
        }
        let answer = http_exchange(&server, &bytes);
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
            "answer {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(300)])
        );
    }
    assert!(server.try_exit_status().is_none(), "the server exited");
    let answer = http_exchange(&server, &http_request("GET", "/healthz", &[], ""));
    assert!(
        answer.starts_with(b"HTTP/1.1 200 ") && answer.ends_with(b"{\"ok\":true}"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        server.connect().text("PING"),
        json!({"ok":true,"pong":true})
    );
}
