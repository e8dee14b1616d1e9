//! The WebSocket door in the bench: `relay --ws` runs the relay load over
//! the line door and then over `/ws` (fresh servers, the same shape), then
//! on each server the open-loop latency step over its door
//! ([`crate::open_loop`]), side by side; `idle --ws` measures idle line connections and then idle
//! WebSocket connections (half AUTHed, half after one PING, as `idle`).
//!
//! [`WsStream`] lets the relay engine drive WebSocket connections as if
//! they spoke lines: each line it writes goes out as one masked text frame
//! (with the all-zero mask, so masking costs the bench nothing), and each
//! text frame read comes back as a line. Pings from the server are not
//! answered (a run is shorter than `--ws-ping-interval`).

use crate::idle::{self, print_idle, Handshake, IdleOutcome};
use crate::open_loop::{self, Latency, Schedule};
use crate::relay::{self, drive, login_all, relay_users, GotalkProto, Outcome, Shape};
use crate::server::{Gotalk, Mode};
use crate::{thousands, wire, Opts};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// Framed output the adapter holds before it pushes back on the engine.
const MAX_PENDING: usize = 256 * 1024;

/// The upgrade request every connection opens with.
const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// Appends `payload` as one client text frame, masked with zeros.
pub fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65_536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
}

/// The first whole server frame in `buf`: (opcode, payload range, length).
fn server_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    let (&first, rest) = buf.split_first()?;
    let (&second, _) = rest.split_first()?;
    let (len, at) = match second & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    (buf.len() >= at + len).then_some((first & 0x0f, at..at + len))
}

/// A WebSocket connection that the relay engine reads and writes as lines.
pub struct WsStream {
    inner: TcpStream,
    /// Bytes read from the socket, not yet a whole frame.
    raw: Vec<u8>,
    /// Lines decoded from frames, not yet handed to the engine.
    lines: Vec<u8>,
    lines_pos: usize,
    /// A line the engine wrote only part of.
    carry: Vec<u8>,
    /// Framed output the socket has not taken.
    pending: Vec<u8>,
}

impl WsStream {
    fn new(inner: TcpStream) -> WsStream {
        WsStream {
            inner,
            raw: Vec::new(),
            lines: Vec::new(),
            lines_pos: 0,
            carry: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn push_pending(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            match self.inner.write(&self.pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Write for WsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push_pending()?;
        if self.pending.len() >= MAX_PENDING {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.carry.is_empty() {
                push_frame(&mut self.pending, &rest[..end]);
            } else {
                self.carry.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.carry);
                push_frame(&mut self.pending, &line);
            }
            rest = &rest[end + 1..];
        }
        self.carry.extend_from_slice(rest);
        self.push_pending()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push_pending()
    }
}

impl Read for WsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.lines_pos < self.lines.len() {
                let n = buf.len().min(self.lines.len() - self.lines_pos);
                buf[..n].copy_from_slice(&self.lines[self.lines_pos..self.lines_pos + n]);
                self.lines_pos += n;
                if self.lines_pos == self.lines.len() {
                    self.lines.clear();
                    self.lines_pos = 0;
                }
                return Ok(n);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.raw.extend_from_slice(&chunk[..n]);
            let mut at = 0;
            while let Some((opcode, range)) = server_frame(&self.raw[at..]) {
                if opcode == 0x1 {
                    self.lines
                        .extend_from_slice(&self.raw[at + range.start..at + range.end]);
                    self.lines.push(b'\n');
                } else if opcode == 0x8 {
                    return Ok(0);
                }
                at += range.end;
            }
            self.raw.drain(..at);
        }
    }
}

impl mio::event::Source for WsStream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.inner.register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.inner.reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.inner.deregister(r)
    }
}

/// Opens `/ws`, sends `first` (a line) as a frame and waits for its reply
/// frame, on a blocking socket; then hands the connection to the engine.
fn open_ws(addr: SocketAddr, first: &str) -> Result<WsStream, String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(30))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut out = UPGRADE.to_vec();
    push_frame(&mut out, first.as_bytes());
    s.write_all(&out)
        .map_err(|e| format!("write failed: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match WsHandshake.complete(&got) {
            Some(Ok(())) => break,
            Some(Err(e)) => return Err(format!("{first}: {e}")),
            None => {}
        }
        match s.read(&mut buf) {
            Ok(0) => return Err("the server closed during the upgrade".into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("no answer to the upgrade: {e}")),
        }
    }
    relay::plain(s).map(WsStream::new)
}

/// Sets up accounts over the line door, then drives the relay load over
/// WebSocket connections that AUTH with the users' tokens.
pub fn relay_gotalk_ws(
    server: &Gotalk,
    s_count: usize,
    r_count: usize,
    shape: &Shape,
) -> Result<Outcome, String> {
    let (receivers, tokens) = relay_users(server, s_count, r_count)?;
    let mut streams = tokens
        .iter()
        .map(|t| open_ws(server.addr, &format!("AUTH {t}")))
        .collect::<Result<Vec<_>, _>>()?;
    let rx_streams = streams.split_off(s_count);
    let proto = GotalkProto::new(&receivers);
    drive(&proto, streams, rx_streams, shape, server.pid())
}

/// The open-loop latency step over WebSocket: both users AUTH on `/ws`.
pub fn latency_ws(server: &Gotalk, schedule: &Schedule) -> Result<Latency, String> {
    let tokens = open_loop::gotalk_tokens(server)?;
    let tx = open_ws(server.addr, &format!("AUTH {}", tokens[0]))?;
    let rx = open_ws(server.addr, &format!("AUTH {}", tokens[1]))?;
    open_loop::measure(&open_loop::gotalk_proto(), 0, tx, rx, schedule)
}

/// `relay --ws`: the line door, then WebSocket, each on a fresh server
/// that then also runs the open-loop latency step over its door.
pub fn run_relay(opts: &Opts, mode: Mode, s: usize, r: usize, shape: &Shape) -> Result<(), String> {
    let schedule = Schedule::from_opts(opts, open_loop::DEFAULT_RATE);
    let (line, line_lat) = {
        let server = Gotalk::start(&opts.server, mode)?;
        let log = |e: String| format!("line: {e}\nserver log:\n{}", server.log_tail());
        let relayed = relay::relay_gotalk(&server, s, r, shape).map_err(log)?;
        (
            relayed,
            open_loop::gotalk_line(&server, &schedule).map_err(log)?,
        )
    };
    let (ws, ws_lat) = {
        let server = Gotalk::start(&opts.server, mode)?;
        let log = |e: String| format!("WebSocket: {e}\nserver log:\n{}", server.log_tail());
        let relayed = relay_gotalk_ws(&server, s, r, shape).map_err(log)?;
        (relayed, latency_ws(&server, &schedule).map_err(log)?)
    };
    println!(
        "relay, line door then WebSocket: {s} senders -> {r} receivers, window {} per sender, \
         gotalk {}, {:.1} s measured after {:.1} s warm-up each",
        shape.window,
        mode.name(),
        line.seconds,
        shape.warmup.as_secs_f64()
    );
    relay::print_side_by_side(("line", &line), ("WebSocket", &ws));
    println!(
        "\nlatency, line door then WebSocket, gotalk {}: {}, each after its relay run",
        mode.name(),
        schedule.describe()
    );
    open_loop::print_side_by_side(("line", &line_lat), ("WebSocket", &ws_lat));
    Ok(())
}

/// An idle WebSocket connection: the upgrade and, in the same write, AUTH
/// (even connections) or PING (odd ones); ready at the first reply frame.
struct WsIdle {
    tokens: Vec<String>,
}

impl Handshake for WsIdle {
    fn request(&self, i: usize) -> Vec<u8> {
        let mut out = UPGRADE.to_vec();
        let first = if i.is_multiple_of(2) {
            format!("AUTH {}", self.tokens[(i / 2) % self.tokens.len()])
        } else {
            "PING".into()
        };
        push_frame(&mut out, first.as_bytes());
        out
    }

    fn complete(&self, got: &[u8]) -> Option<Result<(), String>> {
        WsHandshake.complete(got)
    }
}

/// Complete once the `101` and one reply frame have arrived.
struct WsHandshake;

impl WsHandshake {
    fn complete(&self, got: &[u8]) -> Option<Result<(), String>> {
        let end = got.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        if !got.starts_with(b"HTTP/1.1 101 ") {
            let head = String::from_utf8_lossy(&got[..end]);
            return Some(Err(format!("upgrade refused: {head}")));
        }
        let (_, range) = server_frame(&got[end..])?;
        let payload = &got[end + range.start..end + range.end];
        Some(if payload.starts_with(b"{\"ok\":true") {
            Ok(())
        } else {
            Err(format!("refused: {}", String::from_utf8_lossy(payload)))
        })
    }
}

/// `idle --ws`: `n` idle line connections, then `n` idle WebSocket
/// connections, each on a fresh server.
pub fn run_idle(opts: &Opts, n: usize) -> Result<(), String> {
    let line = {
        let server = idle::start_server(opts)?;
        idle::gotalk_idle(&server, n).map_err(|e| format!("{e}\n{}", server.log_tail()))?
    };
    let ws = {
        let server = idle::start_server(opts)?;
        ws_idle(&server, n).map_err(|e| format!("{e}\n{}", server.log_tail()))?
    };
    println!(
        "idle: {} connections to gotalk --memory, line door then WebSocket ({} AUTHed, {} after \
         one PING)",
        thousands(n as f64),
        thousands(n.div_ceil(2) as f64),
        thousands((n / 2) as f64)
    );
    print_idle(&[("gotalk line".into(), line), ("gotalk ws".into(), ws)]);
    Ok(())
}

fn ws_idle(server: &Gotalk, n: usize) -> Result<IdleOutcome, String> {
    let users: Vec<String> = (0..4).map(|i| format!("bench-idle{i}")).collect();
    wire::register_all(server.addr, &users)?;
    let (_, tokens) = login_all(server.addr, &users)?;
    let hs = WsIdle { tokens };
    idle::measure(server.pid(), n, || idle::open_idle(server.addr, n, &hs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_adapter_shapes() {
        let mut out = Vec::new();
        push_frame(&mut out, b"PING");
        assert_eq!(out, [0x81, 0x84, 0, 0, 0, 0, b'P', b'I', b'N', b'G']);
        let mut server = vec![0x81, 3, b'a', b'b', b'c', 0x81, 126, 0, 200];
        server.extend([b'x'; 200]);
        assert_eq!(server_frame(&server), Some((1, 2..5)));
        assert_eq!(server_frame(&server[5..]), Some((1, 4..204)));
        assert_eq!(server_frame(&server[5..100]), None);
        let head = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".as_slice();
        let mut got = [head, &[0x81, 11], b"{\"ok"].concat();
        assert!(WsHandshake.complete(&got).is_none());
        got.extend_from_slice(b"\":true}");
        assert!(matches!(WsHandshake.complete(&got), Some(Ok(()))));
        let refused = b"HTTP/1.1 404 Not Found\r\n\r\n";
        assert!(matches!(WsHandshake.complete(refused), Some(Err(_))));
    }
}
