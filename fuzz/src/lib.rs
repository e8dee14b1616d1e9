//! The invariants goTalk's fuzz targets check, shared with the stable test
//! suite: `tests/random_inputs.rs` includes this file as a module, so a
//! fuzzer finding and a `cargo test` failure mean the same thing and a
//! finding turns into a test by pasting its bytes.
//!
//! Every `check_*` function panics (with the input in the message) when an
//! invariant breaks; returning means the input was handled:
//! - [`check_line`]: `parse_line` never panics, ignores only blank lines,
//!   and whatever it returns renders as one line of valid JSON that echoes
//!   the tag.
//! - [`check_framer`]: the framer accounts for every byte, never hands out
//!   a line over `max_line`, and gives the same lines however the stream is
//!   cut, the same as a plain reference model.
//! - [`check_http`]: the HTTP reader, form decoding, routing and rendering
//!   never panic or loop, responses are well framed, and cutting the stream
//!   differently never changes which requests are read.
//! - [`check_sniff`]: once `sniff` decides a door, longer inputs decide the
//!   same.
//! - [`ws::check_ws`]: the WebSocket frame decoder, in `ws.rs`.

use gotalk::config::limits::HTTP_MAX_BODY;
use gotalk::http::form::Fields;
use gotalk::http::parse::{Reader, Request as HttpRequest, Step as HttpStep};
use gotalk::http::render::{self, Persistence};
use gotalk::http::routes::{self, Endpoint, Route};
use gotalk::http::Refusal;
use gotalk::line::framer::{Framer, Step};
use gotalk::line::parse::parse_line;
use gotalk::line::render::{message_event, reply_line};
use gotalk::message::{Message, Parties};
use gotalk::request::{Recipient, Reply, Request, UserRef};
use gotalk::sniff::{sniff, DoorKind};
use serde::de::IgnoredAny;
use std::sync::Arc;

pub mod ws;
/// At most this much of an input is quoted in a failure message.
const SHOWN: usize = 300;

fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(SHOWN)];
    let more = if bytes.len() > SHOWN { "..." } else { "" };
    format!(
        "{:?}{more} ({} bytes)",
        String::from_utf8_lossy(cut),
        bytes.len()
    )
}

// ------------------------------------------------------------ fuzz inputs

/// Splits a fuzz input into chunk sizes and the stream: the first byte says
/// how many of the next bytes are chunk sizes (0 to 7; none means the whole
/// stream in one piece), each size being that byte plus one.
pub fn chunked_input(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let count = usize::from(count % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    (sizes.iter().map(|&b| usize::from(b) + 1).collect(), stream)
}

/// Expands run markers, so that a short fuzz input can stand for a long
/// stream (past the sniffer's and the HTTP head's limits): `0xFF n c` is the
/// byte `c` repeated `(n + 1) * 64` times. Every other byte is itself. The
/// result is cut at `limit` bytes, past which a target learns nothing more
/// and only runs slower.
pub fn expand(data: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() && out.len() < limit {
        match data[i..] {
            [0xFF, n, c, ..] => {
                out.extend(std::iter::repeat_n(c, (usize::from(n) + 1) * 64));
                i += 3;
            }
            _ => {
                out.push(data[i]);
                i += 1;
            }
        }
    }
    out.truncate(limit);
    out
}

/// Cuts `input` into pieces of `sizes`, cycling through them; with no sizes
/// the input is one piece.
pub fn pieces<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![input];
    }
    let mut out = Vec::new();
    let mut rest = input;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.clamp(1, rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}

// ----------------------------------------------------------- line protocol

/// A reply the core could give `request`, and the message a SEND stores.
fn reply_to(request: &Request<'_>) -> (Reply, Option<Arc<Message>>) {
    let user = |name: &str| UserRef {
        id: 7,
        username: Arc::from(name),
    };
    let reply = match request {
        Request::Register { username, .. } | Request::Lookup { username } => {
            Reply::User(user(username))
        }
        Request::Login { username, .. } => Reply::LoggedIn {
            token: "00ff".repeat(16),
            user: user(username),
        },
        Request::Auth { .. } => Reply::User(user("alice")),
        Request::Send {
            to,
            content,
            client_id,
        } => {
            let (to_id, to) = match to {
                Recipient::Id(id) => (*id, "bob"),
                Recipient::Name(name) => (8, &**name),
            };
            let parties = Parties {
                from_id: 7,
                from: "alice",
                to_id,
                to,
            };
            let message = Message::new(u64::MAX, &parties, u64::MAX, content, client_id.as_deref());
            check_message(&message, content, client_id.as_deref());
            return (
                Reply::Sent {
                    id: u64::MAX,
                    ts: u64::MAX,
                },
                Some(message),
            );
        }
        Request::Sync(_) => Reply::Messages(Vec::new()),
        Request::History(_) => Reply::History {
            messages: Vec::new(),
            more: false,
        },
        Request::Read { upto, .. } => Reply::ReadUpto(*upto),
        Request::Conversations { .. } => Reply::Conversations {
            list: Vec::new(),
            more: false,
        },
        Request::Ack { .. } => Reply::Acked,
        Request::Logout { all } => Reply::LoggedOut {
            all: *all,
            capped: false,
        },
        Request::Ping => Reply::Pong,
        Request::Help => Reply::Help,
        Request::Quit => Reply::Bye,
        Request::Admin(_) => unreachable!("no door parses an admin request"),
    };
    (reply, None)
}

/// A stored message's JSON is valid and gives back what was sent.
fn check_message(message: &Message, content: &str, client_id: Option<&str>) {
    let value: serde_json::Value = serde_json::from_str(message.json())
        .unwrap_or_else(|e| panic!("message JSON does not parse ({e}): {}", message.json()));
    assert_eq!(value["content"].as_str(), Some(content), "content");
    assert_eq!(value["client_id"].as_str(), client_id, "client_id");
    assert_eq!(message.content(), content, "content() round trip");
    assert_eq!(message.client_id().as_deref(), client_id, "client_id()");
}

/// One rendered line: ends in its only `\n`, is one valid JSON object.
fn check_json_line(out: &[u8], input: &[u8], one_line: bool) {
    assert_eq!(out.last(), Some(&b'\n'), "reply without a newline");
    if one_line {
        let newlines = out.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(newlines, 1, "reply {} to {}", shown(out), shown(input));
    }
    assert_eq!(out.first(), Some(&b'{'), "reply {}", shown(out));
    if let Err(e) = serde_json::from_slice::<IgnoredAny>(out) {
        panic!("reply {} to {} is not JSON: {e}", shown(out), shown(input));
    }
}

/// `parse_line` on one line: never panics, ignores only blank lines (an
/// invalid one is an error, never silence), and its outcome renders as one
/// line of valid JSON that echoes the request's tag. Lines from the framer
/// never hold `\n`; for input that does, only "no panic" and "valid JSON"
/// are checked.
pub fn check_line(line: &[u8]) {
    let one_line = !line.contains(&b'\n');
    let Some(parsed) = parse_line(line) else {
        let text = std::str::from_utf8(line)
            .unwrap_or_else(|_| panic!("a line that is not UTF-8 was ignored: {}", shown(line)));
        assert!(
            text.trim().is_empty() && !text.contains('\0'),
            "a line that is not blank was ignored: {}",
            shown(line)
        );
        return;
    };
    let (reply, message) = match &parsed.call {
        Ok(call) => reply_to(&call.request),
        Err(failure) => {
            assert!(
                !failure.message.trim().is_empty(),
                "an error without a message for {}",
                shown(line)
            );
            (Reply::Error(failure.clone()), None)
        }
    };
    let mut out = Vec::new();
    reply_line(&mut out, &reply, parsed.tag);
    check_json_line(&out, line, one_line);
    let failed = matches!(reply, Reply::Error(_));
    let head: &[u8] = if failed {
        b"{\"ok\":false,"
    } else {
        b"{\"ok\":true"
    };
    assert!(out.starts_with(head), "reply {}", shown(&out));
    if let Some(tag) = parsed.tag {
        let tail = format!(",\"tag\":{}}}\n", tag.get());
        assert!(
            out.ends_with(tail.as_bytes()),
            "reply {} does not echo the tag {}",
            shown(&out),
            tag.get()
        );
    }
    if let Some(message) = message {
        let mut event = Vec::new();
        message_event(&mut event, &message);
        check_json_line(&event, line, true);
        let mut out = Vec::new();
        reply_line(&mut out, &Reply::Messages(vec![message]), None);
        check_json_line(&out, line, true);
    }
}

// ----------------------------------------------------------------- framing

/// What framing a stream gave, in a form easy to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framed {
    Line(Vec<u8>),
    TooLong,
}

/// Everything framing a stream gave: lines and too-long marks, and the
/// bytes still waiting for their newline at the end.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameRun {
    pub out: Vec<Framed>,
    pub pending: Vec<u8>,
}

/// Feeds `input` to a [`Framer`] in pieces of `sizes`, the way the line
/// door does, checking each step: a line is at most `max_line` bytes, sits
/// at the start of the unread bytes, has no `\n` and is followed by `\n` or
/// `\r\n`; every step consumes bytes it was given; and the lines, their
/// ends and the discarded bytes put back together are the input.
pub fn frame(input: &[u8], sizes: &[usize], max_line: usize) -> FrameRun {
    let mut framer = Framer::new(max_line);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut rebuilt = Vec::with_capacity(input.len());
    for piece in pieces(input, sizes) {
        buf.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            let step = framer.next(rest);
            let consumed = match step {
                Step::Line { line, consumed } => {
                    assert!(
                        line.len() <= max_line,
                        "line over {max_line}: {}",
                        shown(line)
                    );
                    assert!(
                        std::ptr::eq(line.as_ptr(), rest.as_ptr()),
                        "a line that does not start the unread bytes"
                    );
                    assert!(!line.contains(&b'\n'), "a line holding a newline");
                    assert!(consumed > line.len() && consumed <= rest.len(), "{step:?}");
                    let end = &rest[line.len()..consumed];
                    assert!(end == b"\n" || end == b"\r\n", "line ended by {end:?}");
                    out.push(Framed::Line(line.to_vec()));
                    consumed
                }
                Step::TooLong { consumed } => {
                    out.push(Framed::TooLong);
                    consumed
                }
                Step::Skip { consumed } => consumed,
                Step::NeedMore => break,
            };
            assert!(
                consumed > 0 && consumed <= rest.len(),
                "consumed {consumed} of {} bytes",
                rest.len()
            );
            rebuilt.extend_from_slice(&rest[..consumed]);
            pos += consumed;
        }
        buf.drain(..pos);
    }
    rebuilt.extend_from_slice(&buf);
    assert!(rebuilt == input, "framing lost or invented bytes");
    FrameRun { out, pending: buf }
}

/// What framing must give, written the plain way: split at each `\n`, drop
/// one `\r` before it, a line over `max_line` is too long; an unfinished
/// last line is too long as soon as it cannot end within the limit (it has
/// `max_line + 2` bytes and no newline), else it waits.
pub fn frame_reference(input: &[u8], max_line: usize) -> FrameRun {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in input.iter().enumerate().filter(|(_, &b)| b == b'\n') {
        let segment = &input[start..i];
        let line = segment.strip_suffix(b"\r").unwrap_or(segment);
        out.push(if line.len() <= max_line {
            Framed::Line(line.to_vec())
        } else {
            Framed::TooLong
        });
        start = i + 1;
    }
    let tail = &input[start..];
    let pending = if tail.len() as u128 >= max_line as u128 + 2 {
        out.push(Framed::TooLong);
        Vec::new()
    } else {
        tail.to_vec()
    };
    FrameRun { out, pending }
}

/// The framer cut into `sizes` agrees with the whole stream at once and
/// with the reference model; returns the run.
pub fn check_framer(input: &[u8], sizes: &[usize], max_line: usize) -> FrameRun {
    let whole = frame(input, &[], max_line);
    let cut = frame(input, sizes, max_line);
    assert_eq!(
        cut,
        whole,
        "cut {sizes:?} differs; max_line {max_line}, input {}",
        shown(input)
    );
    let reference = frame_reference(input, max_line);
    assert_eq!(
        whole,
        reference,
        "max_line {max_line}, input {}",
        shown(input)
    );
    whole
}

// -------------------------------------------------------------------- HTTP

/// One request the reader handed out, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub http10: bool,
    pub keep_alive: bool,
    pub content_type: Option<Vec<u8>>,
    pub body: Vec<u8>,
}

/// Everything reading a stream gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HttpRun {
    pub requests: Vec<SeenRequest>,
    /// The status of the refusal that ended the stream, if one did.
    pub refused: Option<u16>,
    pub continues: usize,
}

/// Feeds `input` to the HTTP [`Reader`] in pieces of `sizes`, the way the
/// door does, and answers each request as the door would (routing, form
/// fields, the call, the rendered response), checking every step.
pub fn read_http(input: &[u8], sizes: &[usize]) -> HttpRun {
    let mut reader = Reader::default();
    let mut run = HttpRun::default();
    let mut buf = Vec::new();
    let mut continued = false;
    for piece in pieces(input, sizes) {
        buf.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match reader.next(rest) {
                HttpStep::Skip { consumed } => {
                    assert!(consumed > 0 && consumed <= rest.len(), "skip {consumed}");
                    assert!(
                        rest[..consumed].iter().all(|&b| b == b'\r' || b == b'\n'),
                        "skipped more than blank lines"
                    );
                    pos += consumed;
                }
                HttpStep::Request { request, consumed } => {
                    assert!(
                        consumed > 0 && consumed <= rest.len(),
                        "request of {consumed}"
                    );
                    assert!(request.body.len() <= HTTP_MAX_BODY, "body over the limit");
                    let body_at = consumed - request.body.len();
                    assert!(
                        std::ptr::eq(rest[body_at..consumed].as_ptr(), request.body.as_ptr()),
                        "the body is not the last bytes of the request"
                    );
                    answer(&request);
                    run.requests.push(SeenRequest {
                        method: request.method.to_string(),
                        path: request.path.to_string(),
                        query: request.query.to_string(),
                        http10: request.http10,
                        keep_alive: request.keep_alive,
                        content_type: request.content_type.map(<[u8]>::to_vec),
                        body: request.body.to_vec(),
                    });
                    continued = false;
                    pos += consumed;
                }
                HttpStep::Continue => {
                    // A second one in a row would loop the door forever.
                    assert!(!continued, "100 Continue twice for one request");
                    continued = true;
                    run.continues += 1;
                }
                HttpStep::NeedMore => break,
                HttpStep::Refuse(refusal) => {
                    check_refusal(&refusal, Persistence::Close);
                    run.refused = Some(refusal.status);
                    return run;
                }
            }
        }
        buf.drain(..pos);
    }
    run
}

/// Answers a request as the door does, checking every response.
fn answer(request: &HttpRequest<'_>) {
    let persistence = Persistence::of(request.keep_alive, request.http10);
    // Any Host and Origin is answered or refused, never a panic.
    let config = gotalk::config::Config::default();
    if let Err(refusal) = gotalk::http::host::check_host(request.host, &config).and_then(|()| {
        let scheme = gotalk::http::forwarded::scheme(
            false,
            gotalk::http::forwarded::Via::TrustedProxy,
            false,
            request.forwarded_proto,
        );
        gotalk::http::host::check_origin(request.origin, request.host, scheme)
    }) {
        let _ = gotalk::http::forwarded::last_hop(request.forwarded_for);
        check_refusal(&refusal, persistence);
    }
    let endpoint = match routes::route(request.method, request.path) {
        Ok(Route::Api(endpoint)) => endpoint,
        Ok(Route::Page(_) | Route::Health) => return,
        Ok(Route::WebSocket) => return ws::check_upgrade(request, persistence),
        Err(refusal) => return check_refusal(&refusal, persistence),
    };
    let fields = match Fields::parse(request.body, request.query, request.content_type) {
        Ok(fields) => fields,
        Err(refusal) => return check_refusal(&refusal, persistence),
    };
    let (reply, message) = match routes::call(endpoint, &fields) {
        Ok(call) => reply_to(&call.request),
        Err(failure) => (Reply::Error(failure), None),
    };
    let mut out = Vec::new();
    let status = render::reply(&mut out, endpoint, &reply, persistence, true);
    assert_ne!(status, 500, "no rendering of {reply:?} for {endpoint:?}");
    check_response(&out, status);
    if let Some(message) = message {
        let mut out = Vec::new();
        let reply = Reply::Messages(vec![message]);
        let status = render::reply(&mut out, Endpoint::Sync, &reply, persistence, false);
        check_response(&out, status);
    }
}

fn check_refusal(refusal: &Refusal, persistence: Persistence) {
    assert!(
        (400..500).contains(&refusal.status),
        "refused with {}",
        refusal.status
    );
    assert!(
        !refusal.message.trim().is_empty(),
        "refusal without a message"
    );
    let mut out = Vec::new();
    render::refusal(&mut out, refusal, persistence, true);
    check_response(&out, refusal.status);
}

/// A response is a status line, header lines of `Name: value` (no stray
/// CR or LF, so nothing from a request can forge a header), an empty line,
/// and a JSON body exactly `Content-Length` long.
fn check_response(out: &[u8], status: u16) {
    let text = std::str::from_utf8(out).expect("responses are UTF-8");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("response without an empty line: {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    assert!(
        status_line.starts_with(&format!("HTTP/1.1 {status} ")),
        "status line {status_line:?}"
    );
    let mut length = None;
    for line in lines {
        assert!(!line.contains(['\r', '\n']), "stray line break in {line:?}");
        let (name, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("header line {line:?}"));
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "header name {name:?}"
        );
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    assert_eq!(length, Some(body.len()), "Content-Length of {text:?}");
    if let Err(e) = serde_json::from_str::<IgnoredAny>(body) {
        panic!("response body {body:?} is not JSON: {e}");
    }
}

/// The HTTP reader on `input` cut into `sizes` reads the same requests as on
/// the whole stream at once. A cut stream may be refused only where the
/// whole one is; the whole one may be refused where the cut one still waits
/// (the request line is checked once, when it ends, and a cut can end it
/// before the bad bytes arrive).
pub fn check_http(input: &[u8], sizes: &[usize]) -> HttpRun {
    let whole = read_http(input, &[]);
    let cut = read_http(input, sizes);
    assert_eq!(
        cut.requests,
        whole.requests,
        "cut {sizes:?} reads other requests from {}",
        shown(input)
    );
    if cut.refused.is_some() {
        assert!(
            whole.refused.is_some(),
            "cut {sizes:?} refused ({:?}) what the whole stream did not: {}",
            cut.refused,
            shown(input)
        );
    }
    whole
}

// ------------------------------------------------------------------- sniff

/// Once `sniff` decides on a prefix of `input`, every longer prefix decides
/// the same. Checked at every length up to 64, around every newline and the
/// 8 KiB request-line limit, and at 64 more lengths spread over the rest
/// (so long inputs stay cheap: each call may scan its whole prefix).
pub fn check_sniff(input: &[u8]) -> Option<DoorKind> {
    let mut lengths: Vec<usize> = (0..=input.len().min(64)).collect();
    for (i, _) in input.iter().enumerate().filter(|(_, &b)| b == b'\n') {
        lengths.extend([i, i + 1, i + 2]);
    }
    lengths.extend(8 * 1024 - 2..=8 * 1024 + 2);
    lengths.extend((0..=input.len()).step_by((input.len() / 64).max(1)));
    lengths.push(input.len());
    lengths.retain(|&n| n <= input.len());
    lengths.sort_unstable();
    lengths.dedup();
    let mut decided: Option<(usize, DoorKind)> = None;
    for n in lengths {
        let door = sniff(&input[..n]);
        match decided {
            None => decided = door.map(|kind| (n, kind)),
            Some((at, kind)) => assert_eq!(
                door,
                Some(kind),
                "sniff chose {kind:?} after {at} bytes but {door:?} after {n}: {}",
                shown(input)
            ),
        }
    }
    decided.map(|(_, kind)| kind)
}
