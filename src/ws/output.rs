//! What the server writes on a WebSocket connection: each reply and event
//! of the line protocol as one text frame (its JSON line without the
//! newline), and the control frames (ping, pong, close). Headers are
//! formatted by `tungstenite`'s header codec; the payload is rendered
//! straight into the connection's output after room for the header, so a
//! message is still serialised once and nothing is allocated for it.

use crate::line::door::Framing;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The header room reserved before rendering: a server's header is 2 bytes
/// for payloads under 126, 4 under 64 KiB (where nearly every reply and
/// event falls) and 10 beyond.
const ROOM: usize = 4;

/// Writes `header` for `length` payload bytes into `into`, returning its size.
fn header(opcode: OpCode, length: usize, into: &mut [u8; 10]) -> usize {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let mut at = &mut into[..];
    header
        .format(length as u64, &mut at)
        .expect("a server frame header fits in 10 bytes");
    10 - at.len()
}

/// The WebSocket door's framing: every line becomes one text frame.
pub struct Frames;

impl Framing for Frames {
    #[inline]
    fn frame<R>(out: &mut Vec<u8>, render: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let start = out.len();
        out.extend_from_slice(&[0; ROOM]);
        let result = render(out);
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        let length = out.len() - start - ROOM;
        let mut head = [0; 10];
        let size = header(OpCode::Data(Data::Text), length, &mut head);
        if size < ROOM {
            out.copy_within(start + ROOM.., start + size);
            out.truncate(start + size + length);
        } else if size > ROOM {
            let end = out.len();
            out.resize(end + size - ROOM, 0);
            out.copy_within(start + ROOM..end, start + size);
        }
        out[start..start + size].copy_from_slice(&head[..size]);
        result
    }
}

/// Appends a control frame (`payload` is at most 125 bytes).
pub fn control(out: &mut Vec<u8>, kind: Control, payload: &[u8]) {
    let mut head = [0; 10];
    let size = header(OpCode::Control(kind), payload.len(), &mut head);
    out.extend_from_slice(&head[..size]);
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and a short `reason`.
pub fn close(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    let mut payload = [0; 125];
    let code: u16 = code.into();
    payload[..2].copy_from_slice(&code.to_be_bytes());
    let mut end = reason.len().min(payload.len() - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    control(out, Control::Close, &payload[..2 + end]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Reads back one server frame: (first byte, payload).
    fn read(frame: &[u8]) -> (u8, Vec<u8>) {
        let mut cursor = Cursor::new(frame);
        let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert!(header.mask.is_none(), "server frames are not masked");
        let at = cursor.position() as usize;
        assert_eq!(frame.len(), at + length as usize, "one whole frame");
        (frame[0], frame[at..].to_vec())
    }

    #[test]
    fn a_line_becomes_one_text_frame_without_its_newline_at_every_length_form() {
        for n in [0, 1, 100, 125, 126, 127, 1000, 65_535, 65_536, 70_000] {
            let mut out = b"before".to_vec();
            let body = "x".repeat(n);
            let r = Frames::frame(&mut out, |out| {
                out.extend_from_slice(body.as_bytes());
                out.push(b'\n');
                7
            });
            assert_eq!(r, 7);
            assert!(out.starts_with(b"before"));
            let (first, payload) = read(&out[6..]);
            assert_eq!(first, 0x81, "final text frame");
            assert_eq!(payload, body.as_bytes(), "{n} bytes");
        }
    }

    #[test]
    fn control_frames() {
        let mut out = Vec::new();
        control(&mut out, Control::Pong, b"abc");
        assert_eq!(read(&out), (0x8a, b"abc".to_vec()));
        let mut out = Vec::new();
        close(&mut out, CloseCode::Size, "message too big");
        let (first, payload) = read(&out);
        assert_eq!(first, 0x88);
        assert_eq!(&payload[..2], &1009u16.to_be_bytes());
        assert_eq!(&payload[2..], b"message too big");
        let mut out = Vec::new();
        close(&mut out, CloseCode::Normal, &"é".repeat(100));
        let (_, payload) = read(&out);
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }
}
