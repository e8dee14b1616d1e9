//! Deterministic random-input tests for the WebSocket door's input path:
//! thousands of client frame streams (valid frames of every kind and length
//! form, then the same with flipped bits, cuts and junk) through the frame
//! decoder, checking the invariants of the `ws_frames` fuzz target
//! (`fuzz/src/ws.rs`, included here): every byte accounted for, the same
//! reading however the stream is cut, only UTF-8 within the limit handed
//! out, and the same messages as `tungstenite` reads wherever the decoder
//! finds no violation. Then a real server takes such streams on upgraded
//! connections and keeps answering a fresh one.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod checks;
mod common;

use checks::ws::{check_ws, Seen};
use common::TestServer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// splitmix64: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A client frame: FIN and opcode in `first`, masked unless `unmasked`.
fn frame(first: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    let mask = [0x5a, 0x01, 0xc3, 0x7e];
    let bit = if unmasked { 0 } else { 0x80 };
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n < 65_536 => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if unmasked {
        out.extend_from_slice(payload);
        return out;
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

/// A stream of mostly valid frames: texts (some fragmented, with control
/// frames between fragments), pings, pongs, sometimes a close or a binary.
fn stream(rng: &mut Rng, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(6) {
        let len = rng.below(max + 3);
        let text: Vec<u8> = (0..len).map(|i| b"ab{}\"\xc3\xa9 "[i % 8]).collect();
        match rng.below(10) {
            0..=4 => out.extend(frame(0x81, &text, false)),
            5 => {
                let cut = rng.below(text.len() + 1);
                out.extend(frame(0x01, &text[..cut], false));
                if rng.below(2) == 0 {
                    out.extend(frame(0x89, b"between", false));
                }
                out.extend(frame(0x80, &text[cut..], false));
            }
            6 => out.extend(frame(0x89, &text[..len.min(125)], false)),
            7 => out.extend(frame(0x8a, b"", false)),
            8 => out.extend(frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e'], false)),
            _ => out.extend(frame(0x82, &text, rng.below(4) == 0)),
        }
    }
    out
}

/// Flips bits, cuts or adds junk.
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        match rng.below(3) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => bytes.truncate(rng.below(bytes.len())),
            _ => bytes.push(rng.next() as u8),
        }
    }
    bytes
}

#[test]
fn random_frame_streams_read_the_same_however_cut_and_as_tungstenite_reads_them() {
    let mut rng = Rng(19);
    let (mut texts, mut fails) = (0, 0);
    for round in 0..4000 {
        let max = [1, 7, 125, 126, 300, 70_000][round % 6];
        let max = if max == 70_000 && round % 12 != 5 {
            200
        } else {
            max
        };
        let valid = stream(&mut rng, max.min(2_000));
        let input = if round % 3 == 0 {
            mutate(&mut rng, valid)
        } else {
            valid
        };
        let sizes: Vec<usize> = (0..1 + rng.below(4)).map(|_| 1 + rng.below(40)).collect();
        let seen = check_ws(&input, &sizes, max);
        texts += seen.iter().filter(|s| matches!(s, Seen::Text(_))).count();
        fails += seen.iter().filter(|s| matches!(s, Seen::Fail(_))).count();
    }
    // The generator reaches both sides.
    assert!(
        texts > 1000 && fails > 500,
        "{texts} texts, {fails} violations"
    );
}

#[test]
fn the_server_answers_or_closes_random_frames_and_keeps_serving() {
    let server = TestServer::start(&[]);
    let mut rng = Rng(6455);
    for _ in 0..60 {
        let valid = stream(&mut rng, 300);
        let input = mutate(&mut rng, valid);
        let mut s = upgraded(&server);
        let _ = s.write_all(&input);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    let mut s = upgraded(&server);
    s.write_all(&frame(0x81, b"PING", false)).unwrap();
    let mut reply = [0u8; 25];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..2], &[0x81, 23]);
    assert_eq!(&reply[2..], b"{\"ok\":true,\"pong\":true}");
}

/// A connection past the upgrade.
fn upgraded(server: &TestServer) -> TcpStream {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    s
}
