//! The WebSocket input path's invariants (the `ws_frames` fuzz target and
//! `tests/ws_random_frames.rs`): [`check_ws`] feeds client bytes to the
//! door's frame decoder the way the door does (bytes kept until a frame is
//! whole, then consumed) and panics when
//! - the decoder panics or loops, or leaves bytes unaccounted for;
//! - cutting the stream differently changes what it reads;
//! - a message handed out is over the limit or not UTF-8;
//! - a stream the decoder takes without a violation reads, through
//!   `tungstenite`'s own server-side `WebSocket`, as different messages.
//!
//! [`check_upgrade`] is the HTTP check's branch for `GET /ws`: the
//! upgrade is answered `101` or refused with a well-framed response.

use gotalk::config::Config;
use gotalk::http::parse::Request as HttpRequest;
use gotalk::http::render::Persistence;
use gotalk::ws::frames::{Decoder, Step, Violation};
use gotalk::ws::handshake;
use std::io::{self, Read, Write};
use std::sync::OnceLock;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;

/// What the decoder read, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Text(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
    Fail(Violation),
}

/// Decodes `input` arriving in pieces of `sizes` (repeated; empty: whole),
/// up to the first close or violation, as the door reads it.
pub fn decode(input: &[u8], sizes: &[usize], max: usize) -> Vec<Seen> {
    let mut decoder = Decoder::new(max);
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    let mut at = 0;
    let mut turn = 0;
    while at < input.len() {
        let size = if sizes.is_empty() {
            input.len()
        } else {
            sizes[turn % sizes.len()]
        };
        turn += 1;
        let end = input.len().min(at + size.max(1));
        buf.extend_from_slice(&input[at..end]);
        at = end;
        let mut pos = 0;
        loop {
            let before = pos;
            match decoder.next(&mut buf[pos..]) {
                Step::Text { text, consumed } => {
                    seen.push(Seen::Text(text.to_vec()));
                    pos += consumed;
                }
                Step::Assembled { text, consumed } => {
                    seen.push(Seen::Text(text));
                    pos += consumed;
                }
                Step::Fragment { consumed } => pos += consumed,
                Step::Ping { payload, consumed } => {
                    seen.push(Seen::Ping(payload.to_vec()));
                    pos += consumed;
                }
                Step::Pong { consumed } => {
                    seen.push(Seen::Pong);
                    pos += consumed;
                }
                Step::Close { code, .. } => {
                    seen.push(Seen::Close(code));
                    return seen;
                }
                Step::NeedMore => break,
                Step::Fail(violation) => {
                    seen.push(Seen::Fail(violation));
                    return seen;
                }
            }
            assert!(pos > before, "a step consumed nothing");
            assert!(pos <= buf.len(), "consumed past the input");
        }
        buf.drain(..pos);
    }
    seen
}

/// A stream tungstenite reads `input` from and writes its pongs to nowhere.
struct Replay<'a> {
    input: &'a [u8],
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The text messages tungstenite reads from `input` up to a close, the end
/// of the input or an error.
fn reference_texts(input: &[u8], max: usize) -> Vec<Vec<u8>> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        // Its frame limit applies to control frames too, which may carry
        // 125 bytes whatever the message limit.
        .max_frame_size(Some(max.max(125)));
    let mut ws = WebSocket::from_raw_socket(Replay { input }, Role::Server, Some(config));
    let mut texts = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => texts.push(text.as_bytes().to_vec()),
            Ok(Message::Close(_)) | Err(_) => return texts,
            Ok(_) => {}
        }
    }
}

/// Checks every invariant above; returns what the decoder read.
pub fn check_ws(input: &[u8], sizes: &[usize], max: usize) -> Vec<Seen> {
    let whole = decode(input, &[], max);
    let cut = decode(input, sizes, max);
    assert_eq!(
        cut, whole,
        "cut {sizes:?} differs; max {max}, input {input:?}"
    );
    for seen in &whole {
        if let Seen::Text(text) = seen {
            assert!(text.len() <= max, "a message over {max} bytes");
            assert!(std::str::from_utf8(text).is_ok(), "a message not UTF-8");
        }
    }
    if !whole.iter().any(|s| matches!(s, Seen::Fail(_))) {
        let texts: Vec<Vec<u8>> = whole
            .iter()
            .filter_map(|s| match s {
                Seen::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            reference_texts(input, max),
            "tungstenite reads other messages; max {max}, input {input:?}"
        );
    }
    whole
}

/// A `GET /ws` request (from the HTTP check): accepted with a `101` that
/// ends its head, or refused with a well-framed response.
pub fn check_upgrade(request: &HttpRequest<'_>, persistence: Persistence) {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    let config = CONFIG.get_or_init(Config::default);
    let mut out = Vec::new();
    match handshake::accept(request, config) {
        Ok(accepted) => {
            handshake::switching_protocols(&mut out, &accepted, true);
            assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(out.ends_with(b"\r\n\r\n"));
            assert_eq!(out.windows(4).filter(|w| w == b"\r\n\r\n").count(), 1);
        }
        Err(refusal) => {
            handshake::refusal(&mut out, &refusal, persistence, false);
            super::check_response(&out, refusal.status);
        }
    }
}
