//! A WebSocket connection's input, frame by frame (RFC 6455 section 5):
//! headers are read by `tungstenite`'s header codec (length forms,
//! reserved opcodes), payloads are unmasked in place in the connection's
//! own input buffer, and fragments are put back together within the
//! message limit. Every way a client's frames can break the protocol ends
//! in a [`Violation`], which names the close code the client is sent.
//!
//! Pure: no socket, no clock; state survives between reads, so a frame
//! split across reads (one byte at a time, even) is found whole. A frame's
//! size is judged from its header, before its payload arrives, so no more
//! than one message's worth of a client's input is ever held.

use std::io::Cursor;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Most bytes a control frame (close, ping, pong) may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Why a client's input ends the connection, and the close code it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A message over the limit (`--max-line`): 1009.
    TooBig,
    /// A text message (or a close reason) that is not UTF-8: 1007.
    InvalidUtf8,
    /// A binary message: 1003.
    Binary,
    /// Anything else against RFC 6455 (an unmasked frame, reserved bits,
    /// an unknown opcode, a fragmented or oversized control frame, a
    /// continuation out of place, a bad close payload): 1002.
    Protocol(&'static str),
}

impl Violation {
    /// The close code the client is sent.
    pub fn code(self) -> CloseCode {
        match self {
            Violation::TooBig => CloseCode::Size,
            Violation::InvalidUtf8 => CloseCode::Invalid,
            Violation::Binary => CloseCode::Unsupported,
            Violation::Protocol(_) => CloseCode::Protocol,
        }
    }

    /// Said in the close frame's reason and the log (short: a close
    /// frame carries at most 123 bytes of reason).
    pub fn reason(self) -> &'static str {
        match self {
            Violation::TooBig => "message too big",
            Violation::InvalidUtf8 => "text is not valid UTF-8",
            Violation::Binary => "binary messages are not accepted; send text",
            Violation::Protocol(why) => why,
        }
    }
}

/// One step over a connection's unread input.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A whole text message, valid UTF-8, from one frame (borrowed from the
    /// input, unmasked in place).
    Text {
        text: &'a [u8],
        consumed: usize,
    },
    /// A whole text message put together from fragments.
    Assembled {
        text: Vec<u8>,
        consumed: usize,
    },
    /// A fragment was stored; its message is not complete yet.
    Fragment {
        consumed: usize,
    },
    Ping {
        payload: &'a [u8],
        consumed: usize,
    },
    Pong {
        consumed: usize,
    },
    /// The client began the close handshake (with its code, if any).
    Close {
        code: Option<u16>,
        consumed: usize,
    },
    /// No whole frame yet: keep the bytes and read more.
    NeedMore,
    /// The input breaks the protocol: close with its code.
    Fail(Violation),
}

/// The frame-reading state of one connection.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Longest message, in bytes of payload (`--max-line`).
    max_message: usize,
    /// The fragments of a text message still being received.
    partial: Option<Vec<u8>>,
}

impl Decoder {
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            partial: None,
        }
    }

    /// The next step over `data`, the bytes not yet consumed (unmasked in
    /// place as frames complete).
    pub fn next<'a>(&mut self, data: &'a mut [u8]) -> Step<'a> {
        let mut cursor = Cursor::new(&*data);
        let (header, length) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Step::NeedMore,
            Err(_) => return Step::Fail(Violation::Protocol("unknown opcode")),
        };
        let head_len = cursor.position() as usize;
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Step::Fail(Violation::Protocol("reserved bits set"));
        }
        let Some(mask) = header.mask else {
            return Step::Fail(Violation::Protocol("client frames must be masked"));
        };
        let control = matches!(header.opcode, OpCode::Control(_));
        if control {
            if !header.is_final {
                return Step::Fail(Violation::Protocol("fragmented control frame"));
            }
            if length > MAX_CONTROL_PAYLOAD as u64 {
                return Step::Fail(Violation::Protocol("control frame over 125 bytes"));
            }
        } else {
            match (header.opcode, &self.partial) {
                (OpCode::Data(Data::Binary), _) => return Step::Fail(Violation::Binary),
                (OpCode::Data(Data::Continue), None) => {
                    return Step::Fail(Violation::Protocol("continuation without a message"))
                }
                (OpCode::Data(Data::Text), Some(_)) => {
                    return Step::Fail(Violation::Protocol("new message inside a fragmented one"))
                }
                _ => {}
            }
            let before = self.partial.as_ref().map_or(0, Vec::len) as u64;
            if before.saturating_add(length) > self.max_message as u64 {
                return Step::Fail(Violation::TooBig);
            }
        }
        // Within the limits checked above, the length fits in memory.
        let length = length as usize;
        let consumed = head_len + length;
        if data.len() < consumed {
            return Step::NeedMore;
        }
        let payload = &mut data[head_len..consumed];
        unmask(payload, mask);
        let payload = &*payload;
        match header.opcode {
            OpCode::Control(Control::Ping) => Step::Ping { payload, consumed },
            OpCode::Control(Control::Pong) => Step::Pong { consumed },
            OpCode::Control(Control::Close) => match close_code(payload) {
                Ok(code) => Step::Close { code, consumed },
                Err(violation) => Step::Fail(violation),
            },
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                Step::Fail(Violation::Protocol("unknown opcode"))
            }
            OpCode::Data(Data::Binary) => Step::Fail(Violation::Binary),
            OpCode::Data(Data::Text) if header.is_final => match std::str::from_utf8(payload) {
                Ok(_) => Step::Text {
                    text: payload,
                    consumed,
                },
                Err(_) => Step::Fail(Violation::InvalidUtf8),
            },
            OpCode::Data(Data::Text | Data::Continue) => {
                let partial = self.partial.get_or_insert_with(Vec::new);
                partial.extend_from_slice(payload);
                if !header.is_final {
                    return Step::Fragment { consumed };
                }
                let text = self.partial.take().unwrap_or_default();
                match std::str::from_utf8(&text) {
                    Ok(_) => Step::Assembled { text, consumed },
                    Err(_) => Step::Fail(Violation::InvalidUtf8),
                }
            }
        }
    }
}

/// Unmasks (or masks: the same XOR) a payload in place (RFC 6455 5.3),
/// eight bytes at a time.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        let bytes: [u8; 8] = (*word).try_into().expect("a chunk of eight");
        word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
    }
    // The rest starts at a multiple of eight, so the mask starts over.
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// A close frame's code: none when its payload is empty; a payload of one
/// byte, a code no endpoint may send, or a reason that is not UTF-8 breaks
/// the protocol.
fn close_code(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::Protocol("close frame of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !CloseCode::from(code).is_allowed() || code < 1000 {
                return Err(Violation::Protocol("close code not allowed"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(Violation::InvalidUtf8);
            }
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
