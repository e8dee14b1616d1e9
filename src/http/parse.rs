//! HTTP/1.x request framing over a connection's unread bytes: where a
//! request's head ends, what it says, and how long its body is.
//!
//! The end of the head is searched for only in bytes not searched before
//! (the state lives in [`Reader`] between reads), and `httparse` runs on a
//! head only once it is complete, so a head that trickles in one byte at a
//! time costs linear work, not quadratic. The request line is checked once,
//! as soon as it ends, so garbage is refused without waiting for the header
//! limit.
//!
//! Bodies are framed by `Content-Length` only. A chunked (or otherwise
//! transfer-coded) body is refused with `411 Length Required`; the original
//! goTalk clients post small forms with a length, and refusing keeps the
//! framing code small. A request that cannot be framed safely (malformed
//! head, both `Content-Length` and `Transfer-Encoding`, a body over the
//! limit, a head over the limit) is refused, and the connection is closed
//! after the answer: the next request's first byte cannot be found.

use super::Refusal;
use crate::config::limits::{HTTP_MAX_BODY, HTTP_MAX_HEADERS, HTTP_MAX_HEADER_BYTES};
use crate::error::ErrorCode;
use crate::ws::handshake::UpgradeHeaders;

/// One complete request, borrowed from the input buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The target up to `?`.
    pub path: &'a str,
    /// The target after `?` (empty when there is none).
    pub query: &'a str,
    /// HTTP/1.0 (whose connections close unless asked to stay open).
    pub http10: bool,
    /// Whether the connection stays open after the reply: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    pub content_type: Option<&'a [u8]>,
    /// The `Host` header (at most one is accepted).
    pub host: Option<&'a [u8]>,
    /// The `Origin` header (a browser's; at most one is accepted).
    pub origin: Option<&'a [u8]>,
    /// The last `X-Forwarded-For` and `X-Forwarded-Proto` headers, which
    /// only a trusted proxy's requests are read for.
    pub forwarded_for: Option<&'a [u8]>,
    pub forwarded_proto: Option<&'a [u8]>,
    /// What the head says about a WebSocket upgrade.
    pub upgrade: UpgradeHeaders<'a>,
    pub body: &'a [u8],
}

/// One step of reading requests from the unread bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Empty lines before a request (allowed by RFC 9112), skipped.
    Skip { consumed: usize },
    /// A whole request; `consumed` bytes (head and body) used.
    Request {
        request: Request<'a>,
        consumed: usize,
    },
    /// The head asked for `Expect: 100-continue` and its body is not here
    /// yet: answer `100 Continue` (given once per request).
    Continue,
    /// No whole request yet; keep the bytes and read more.
    NeedMore,
    /// The request cannot be read: answer this and close the connection.
    Refuse(Refusal),
}

/// How far the current request has been read. Survives between reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reader {
    /// Leading bytes of the current request already searched for the end of
    /// the head.
    scanned: usize,
    /// The request line was complete and checked.
    line_checked: bool,
    /// The head is complete and valid; the body is still arriving.
    framed: Option<Framing>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Framing {
    head_len: usize,
    body_len: usize,
}

/// What the head says, before the body is known to be there.
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    http10: bool,
    keep_alive: bool,
    content_type: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
    origin: Option<&'a [u8]>,
    forwarded_for: Option<&'a [u8]>,
    forwarded_proto: Option<&'a [u8]>,
    upgrade: UpgradeHeaders<'a>,
    content_length: usize,
    expect_continue: bool,
}

impl Reader {
    /// The next step over `buf`, the bytes not yet consumed.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> Step<'a> {
        if let Some(framing) = self.framed {
            if buf.len() < framing.head_len + framing.body_len {
                return Step::NeedMore;
            }
            // The head parsed before; this second parse is the only one
            // that lends out borrows of the complete request.
            return match parse_head(&buf[..framing.head_len]) {
                Ok(head) => self.finish(head, buf, framing),
                Err(refusal) => Step::Refuse(refusal),
            };
        }
        let blank = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if blank > 0 {
            // Only at the start of a request: once scanning, byte 0 is text.
            return Step::Skip { consumed: blank };
        }
        let Some(head_len) = find_head_end(buf, self.scanned) else {
            if !self.line_checked && buf[self.scanned..].contains(&b'\n') {
                // The request line just ended: refuse garbage now.
                self.line_checked = true;
                let mut headers = [httparse::EMPTY_HEADER; HTTP_MAX_HEADERS];
                if let Err(e) = httparse::Request::new(&mut headers).parse(buf) {
                    return Step::Refuse(malformed(e));
                }
            }
            if buf.len() > HTTP_MAX_HEADER_BYTES {
                return Step::Refuse(head_too_large());
            }
            self.scanned = buf.len();
            return Step::NeedMore;
        };
        if head_len > HTTP_MAX_HEADER_BYTES {
            return Step::Refuse(head_too_large());
        }
        let head = match parse_head(&buf[..head_len]) {
            Ok(head) => head,
            Err(refusal) => return Step::Refuse(refusal),
        };
        let framing = Framing {
            head_len,
            body_len: head.content_length,
        };
        if buf.len() >= head_len + head.content_length {
            return self.finish(head, buf, framing);
        }
        self.framed = Some(framing);
        if head.expect_continue && !head.http10 {
            Step::Continue
        } else {
            Step::NeedMore
        }
    }

    /// Hands out the complete request and starts on the next one.
    fn finish<'a>(&mut self, head: Head<'a>, buf: &'a [u8], framing: Framing) -> Step<'a> {
        *self = Reader::default();
        let consumed = framing.head_len + framing.body_len;
        let (path, query) = head.target.split_once('?').unwrap_or((head.target, ""));
        Step::Request {
            request: Request {
                method: head.method,
                path,
                query,
                http10: head.http10,
                keep_alive: head.keep_alive,
                content_type: head.content_type,
                host: head.host,
                origin: head.origin,
                forwarded_for: head.forwarded_for,
                forwarded_proto: head.forwarded_proto,
                upgrade: head.upgrade,
                body: &buf[framing.head_len..consumed],
            },
            consumed,
        }
    }
}

/// The length of the head (through its empty line), searching only from
/// `from` on (less two bytes, which may hold the start of the terminator).
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.saturating_sub(2);
    while let Some(offset) = memchr::memchr(b'\n', &buf[i..]) {
        let nl = i + offset;
        match (buf.get(nl + 1), buf.get(nl + 2)) {
            (Some(b'\n'), _) => return Some(nl + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn head_too_large() -> Refusal {
    Refusal::new(
        431,
        ErrorCode::TooLarge,
        format!("the request line and headers are larger than {HTTP_MAX_HEADER_BYTES} bytes"),
    )
}

fn malformed(e: httparse::Error) -> Refusal {
    match e {
        httparse::Error::TooManyHeaders => Refusal::new(
            431,
            ErrorCode::TooLarge,
            format!("the request has more than {HTTP_MAX_HEADERS} header fields"),
        ),
        e => Refusal::new(
            400,
            ErrorCode::BadRequest,
            format!("malformed HTTP request: {e}"),
        ),
    }
}

fn bad(message: &'static str) -> Refusal {
    Refusal::new(400, ErrorCode::BadRequest, message)
}

/// Parses a complete head and decides the body's framing.
fn parse_head(buf: &[u8]) -> Result<Head<'_>, Refusal> {
    // httparse fills in only the headers the request has: the array is
    // not zeroed first for every request.
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; HTTP_MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("malformed HTTP request head")),
        Err(e) => return Err(malformed(e)),
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(bad("malformed HTTP request line"));
    };
    let http10 = version == 0;
    let (mut close, mut keep) = (false, false);
    let mut content_length: Option<usize> = None;
    let mut transfer_encoding = false;
    let mut content_type = None;
    let mut expect_continue = false;
    let mut host = None;
    let mut origin = None;
    let (mut forwarded_for, mut forwarded_proto) = (None, None);
    let mut upgrade = UpgradeHeaders::default();
    for header in req.headers.iter() {
        let name = header.name;
        let value = trim(header.value);
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value).ok_or_else(|| {
                bad("Content-Length must be a whole number of bytes, like Content-Length: 42")
            })?;
            if content_length.is_some_and(|m| m != n) {
                return Err(bad("the request has two different Content-Length headers"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
                upgrade.note_connection(token);
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value);
        } else if name.eq_ignore_ascii_case("host") {
            if host.replace(value).is_some() {
                return Err(bad("the request has more than one Host header"));
            }
        } else if name.eq_ignore_ascii_case("origin") {
            if origin.replace(value).is_some() {
                return Err(bad("the request has more than one Origin header"));
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for = Some(value);
        } else if name.eq_ignore_ascii_case("x-forwarded-proto") {
            forwarded_proto = Some(value);
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        } else {
            upgrade.note(name, value);
        }
    }
    // `close` anywhere wins; HTTP/1.0 stays open only when asked to.
    let keep_alive = !close && (keep || !http10);
    if transfer_encoding {
        if content_length.is_some() {
            return Err(bad(
                "the request has both Content-Length and Transfer-Encoding; send only Content-Length",
            ));
        }
        return Err(Refusal::new(
            411,
            ErrorCode::BadRequest,
            "chunked or transfer-coded request bodies are not accepted; send the body with a Content-Length",
        ));
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > HTTP_MAX_BODY {
        return Err(Refusal::new(
            413,
            ErrorCode::TooLarge,
            format!("the request body is {content_length} bytes; the limit is {HTTP_MAX_BODY}"),
        ));
    }
    Ok(Head {
        method,
        target,
        http10,
        keep_alive,
        content_type,
        host,
        origin,
        forwarded_for,
        forwarded_proto,
        upgrade,
        content_length,
        expect_continue,
    })
}

/// Digits only (no sign, no spaces inside), and no larger than a `usize`.
fn parse_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What reading a byte stream produced, in a form easy to compare.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Req {
            method: String,
            path: String,
            query: String,
            keep_alive: bool,
            body: String,
        },
        Continue,
        Refused(u16),
    }

    /// Feeds `input` in chunks of `chunk` bytes, the way the door does.
    fn read(input: &[u8], chunk: usize) -> Vec<Seen> {
        let mut reader = Reader::default();
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            let mut pos = 0;
            loop {
                match reader.next(&buf[pos..]) {
                    Step::Skip { consumed } => pos += consumed,
                    Step::Request { request, consumed } => {
                        seen.push(Seen::Req {
                            method: request.method.into(),
                            path: request.path.into(),
                            query: request.query.into(),
                            keep_alive: request.keep_alive,
                            body: String::from_utf8_lossy(request.body).into(),
                        });
                        pos += consumed;
                    }
                    Step::Continue => seen.push(Seen::Continue),
                    Step::NeedMore => break,
                    Step::Refuse(r) => {
                        seen.push(Seen::Refused(r.status));
                        return seen;
                    }
                }
            }
            buf.drain(..pos);
        }
        seen
    }

    fn req(method: &str, path: &str, query: &str, keep_alive: bool, body: &str) -> Seen {
        Seen::Req {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            keep_alive,
            body: body.into(),
        }
    }

    const TWO: &[u8] = b"POST /send?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
GET / HTTP/1.1\r\nConnection: close\r\n\r\n";

    #[test]
    fn pipelined_requests_come_out_in_order() {
        assert_eq!(
            read(TWO, 10_000),
            [
                req("POST", "/send", "x=1", true, "hello"),
                req("GET", "/", "", false, "")
            ]
        );
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_requests() {
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(read(TWO, chunk), read(TWO, 10_000), "chunk {chunk}");
        }
    }

    #[test]
    fn bare_newlines_and_blank_lines_between_requests_are_fine() {
        let input = b"\r\nGET /a HTTP/1.1\nHost: h\n\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        assert_eq!(
            read(input, 3),
            [
                req("GET", "/a", "", true, ""),
                req("GET", "/b", "", true, "")
            ]
        );
    }

    #[test]
    fn http10_closes_unless_asked_to_keep_alive() {
        let input = b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n\
GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n";
        assert_eq!(
            read(input, 10_000),
            [
                req("GET", "/", "", false, ""),
                req("GET", "/", "", true, ""),
                req("GET", "/", "", false, "")
            ]
        );
    }

    #[test]
    fn framing_errors_are_refused_with_their_status() {
        let cases: [(&[u8], u16); 11] = [
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nOrigin: a\r\nOrigin: a\r\n\r\n", 400),
            (b"GET /a\x01 HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 400),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                411,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", 413),
        ];
        for (input, status) in cases {
            for chunk in [1, 10_000] {
                assert_eq!(
                    read(input, chunk).last(),
                    Some(&Seen::Refused(status)),
                    "{} (chunk {chunk})",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn repeated_equal_content_lengths_are_accepted() {
        let input = b"POST /x HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab";
        assert_eq!(read(input, 4), [req("POST", "/x", "", true, "ab")]);
    }

    #[test]
    fn garbage_is_refused_when_its_first_line_ends() {
        let mut reader = Reader::default();
        assert_eq!(reader.next(b"GET / HTTP/1.1\r\nHost: h"), Step::NeedMore);
        let mut reader = Reader::default();
        assert_eq!(reader.next(b"HELLO"), Step::NeedMore);
        let Step::Refuse(r) = reader.next(b"HELLO THERE\r\n") else {
            panic!("garbage line accepted");
        };
        assert_eq!(r.status, 400);
    }

    #[test]
    fn header_limits_give_431() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', HTTP_MAX_HEADER_BYTES));
        assert_eq!(read(&big, 4096), [Seen::Refused(431)], "unterminated");
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(read(&big, 1 << 20), [Seen::Refused(431)], "terminated");
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=HTTP_MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(read(&many, 1 << 20), [Seen::Refused(431)]);
        assert_eq!(read(&many, 5), [Seen::Refused(431)]);
    }

    #[test]
    fn a_body_waits_for_all_its_bytes_and_may_ask_to_continue() {
        let input = b"POST /send HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(
            read(input, 10_000),
            [req("POST", "/send", "", true, "abc")],
            "no 100 when the body is already here"
        );
        let head_len = input.len() - 3;
        let mut reader = Reader::default();
        assert_eq!(reader.next(&input[..head_len]), Step::Continue);
        assert_eq!(reader.next(&input[..head_len + 2]), Step::NeedMore);
        assert!(matches!(
            reader.next(input),
            Step::Request { consumed, .. } if consumed == input.len()
        ));
    }

    #[test]
    fn the_head_end_search_does_not_look_back() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 16), Some(18));
        assert_eq!(find_head_end(b"a\n\nb", 2), Some(3));
        assert_eq!(find_head_end(b"a\r\nb\r\n", 0), None);
    }
}
