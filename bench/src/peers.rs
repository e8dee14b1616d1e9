//! The servers goTalk is compared with, as the relay engine and the
//! open-loop step speak to them: `redis-server` (RESP `PUBLISH` to
//! `SUBSCRIBE`d receivers; durably, `XADD` to a stream per receiver read
//! by `XREADGROUP`), `nats-server` (core `PUB` to `SUB`scribed receivers)
//! and `mosquitto` (MQTT `CONNECT`, for idle memory). Each is started on a
//! free port of 127.0.0.1 by [`start`] and killed when its handle drops;
//! one that is not installed is an error that says so.

use crate::idle::Handshake;
use crate::open_loop::{self, Latency, Schedule};
use crate::relay::{self, Outcome, Proto, ReceiverLine, SenderLine, Shape};
use crate::server::{self, External};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking connection for setup: writes `request`, reads until the
/// bytes read end with `until`.
fn handshake(addr: SocketAddr, request: &[u8], until: &[u8]) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&addr, SETUP_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(SETUP_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(request).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(until) {
        if got.len() > 64 * 1024 {
            return Err("setup reply too long".into());
        }
        match s.read(&mut buf) {
            Ok(0) => return Err("closed during setup".into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Err(format!(
                    "no setup reply ({e}); got {:?}",
                    String::from_utf8_lossy(&got)
                ))
            }
        }
    }
    Ok(s)
}

/// The channel, subject or stream of receiver `i` (the goTalk user's name).
fn channel(i: usize) -> String {
    format!("bench-r{i}")
}

/// Appends a RESP command of `args`.
fn resp(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Redis: RESP PUBLISH; replies `:N`; pushes carry the payload on a line.
pub struct RedisProto {
    frames: Vec<Vec<u8>>,
    payload_line: Vec<u8>,
}

impl RedisProto {
    pub fn new(receivers: usize, content: &str) -> RedisProto {
        let mut p = RedisProto {
            frames: Vec::new(),
            payload_line: format!("{content}\r").into_bytes(),
        };
        for i in 0..receivers {
            let mut frame = Vec::new();
            p.push_payload(i, content.as_bytes(), &mut frame);
            p.frames.push(frame);
        }
        p
    }
}

impl Proto for RedisProto {
    fn push_send(&self, sender: usize, n: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.frames[(sender + n as usize) % self.frames.len()]);
    }

    fn push_payload(&self, to: usize, payload: &[u8], out: &mut Vec<u8>) {
        resp(&[b"PUBLISH", channel(to).as_bytes(), payload], out);
    }

    fn sender_line(&self, line: &[u8]) -> SenderLine {
        match line.first() {
            Some(b':') => SenderLine::Answered(1),
            Some(b'-') => SenderLine::Error,
            _ => SenderLine::Other,
        }
    }

    fn receiver_line(&self, line: &[u8]) -> ReceiverLine {
        if line == self.payload_line.as_slice() {
            ReceiverLine::Message(None)
        } else if line.first() == Some(&b'-') {
            ReceiverLine::Error
        } else {
            ReceiverLine::Other
        }
    }
}

/// Redis durably: `XADD` to receiver `i`'s stream (the reply, after the
/// fsync, is the window), each receiver a consumer group reading with
/// `XREADGROUP ... COUNT 1000 BLOCK 0 NOACK`, one read in flight, the next
/// sent as soon as a reply begins (the stream's name line).
pub struct RedisStreamProto {
    frames: Vec<Vec<u8>>,
    reads: Vec<Vec<u8>>,
    payload_line: Vec<u8>,
}

/// Entries per `XREADGROUP` reply at most (goTalk's receivers ACK per 1000).
const STREAM_COUNT: &str = "1000";

impl RedisStreamProto {
    pub fn new(receivers: usize, content: &str) -> RedisStreamProto {
        let mut p = RedisStreamProto {
            frames: Vec::new(),
            reads: Vec::new(),
            payload_line: format!("{content}\r").into_bytes(),
        };
        for i in 0..receivers {
            let mut frame = Vec::new();
            p.push_payload(i, content.as_bytes(), &mut frame);
            p.frames.push(frame);
            let (ch, consumer) = (channel(i), format!("c{i}"));
            let mut read = Vec::new();
            resp(
                &[
                    b"XREADGROUP",
                    b"GROUP",
                    b"g",
                    consumer.as_bytes(),
                    b"COUNT",
                    STREAM_COUNT.as_bytes(),
                    b"BLOCK",
                    b"0",
                    b"NOACK",
                    b"STREAMS",
                    ch.as_bytes(),
                    b">",
                ],
                &mut read,
            );
            p.reads.push(read);
        }
        p
    }
}

impl Proto for RedisStreamProto {
    fn push_send(&self, sender: usize, n: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.frames[(sender + n as usize) % self.frames.len()]);
    }

    fn push_payload(&self, to: usize, payload: &[u8], out: &mut Vec<u8>) {
        resp(&[b"XADD", channel(to).as_bytes(), b"*", b"m", payload], out);
    }

    /// A reply is `$N` then the entry id.
    fn sender_line(&self, line: &[u8]) -> SenderLine {
        match line.first() {
            Some(b'$') => SenderLine::Answered(1),
            Some(b'-') => SenderLine::Error,
            _ => SenderLine::Other,
        }
    }

    fn receiver_line(&self, line: &[u8]) -> ReceiverLine {
        if line == self.payload_line.as_slice() {
            ReceiverLine::Message(None)
        } else if line.starts_with(b"bench-r") {
            ReceiverLine::Asked
        } else if line.first() == Some(&b'-') {
            ReceiverLine::Error
        } else {
            ReceiverLine::Other
        }
    }

    fn push_receive(&self, receiver: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.reads[receiver]);
    }
}

/// NATS: `PUB subject n` + payload, a PING per group; `MSG` + payload.
pub struct NatsProto {
    frames: Vec<Vec<u8>>,
    payload_line: Vec<u8>,
    group: u64,
}

const NATS_CONNECT: &str =
    "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\"name\":\"gotalk-bench\"}\r\n";

impl NatsProto {
    /// A `PING` after every `group` PUBs; its `PONG` answers the group.
    pub fn new(receivers: usize, content: &str, group: u64) -> NatsProto {
        let mut p = NatsProto {
            frames: Vec::new(),
            payload_line: format!("{content}\r").into_bytes(),
            group: group.max(1),
        };
        for i in 0..receivers {
            let mut frame = Vec::new();
            p.push_payload(i, content.as_bytes(), &mut frame);
            p.frames.push(frame);
        }
        p
    }
}

impl Proto for NatsProto {
    fn push_send(&self, sender: usize, n: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.frames[(sender + n as usize) % self.frames.len()]);
        if (n + 1).is_multiple_of(self.group) {
            out.extend_from_slice(b"PING\r\n");
        }
    }

    fn push_payload(&self, to: usize, payload: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(format!("PUB {} {}\r\n", channel(to), payload.len()).as_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
    }

    fn group(&self) -> u64 {
        self.group
    }

    fn sender_line(&self, line: &[u8]) -> SenderLine {
        if line.starts_with(b"PONG") {
            SenderLine::Answered(self.group)
        } else if line.starts_with(b"-ERR") {
            SenderLine::Error
        } else {
            SenderLine::Other
        }
    }

    fn receiver_line(&self, line: &[u8]) -> ReceiverLine {
        if line == self.payload_line.as_slice() {
            ReceiverLine::Message(None)
        } else if line.starts_with(b"-ERR") {
            ReceiverLine::Error
        } else {
            ReceiverLine::Other
        }
    }
}

/// Senders that PING once and receivers `SUBSCRIBE`d, for Redis pub/sub.
fn redis_pubsub_conns(addr: SocketAddr, s: usize, r: usize) -> Result<Conns, String> {
    let mut receivers = Vec::new();
    for i in 0..r {
        let req = format!("SUBSCRIBE {}\r\n", channel(i));
        receivers.push(handshake(addr, req.as_bytes(), b":1\r\n")?);
    }
    let senders = (0..s)
        .map(|_| handshake(addr, b"PING\r\n", b"+PONG\r\n"))
        .collect::<Result<_, _>>()?;
    Ok((senders, receivers))
}

/// Senders and receivers `SUB`scribed (each after a `PONG`), for NATS.
fn nats_conns(addr: SocketAddr, s: usize, r: usize) -> Result<Conns, String> {
    let mut receivers = Vec::new();
    for i in 0..r {
        let req = format!("{NATS_CONNECT}SUB {} 1\r\nPING\r\n", channel(i));
        receivers.push(handshake(addr, req.as_bytes(), b"PONG\r\n")?);
    }
    let req = format!("{NATS_CONNECT}PING\r\n");
    let senders = (0..s)
        .map(|_| handshake(addr, req.as_bytes(), b"PONG\r\n"))
        .collect::<Result<_, _>>()?;
    Ok((senders, receivers))
}

type Conns = (Vec<TcpStream>, Vec<TcpStream>);

pub fn relay_redis(
    ext: &External,
    s: usize,
    r: usize,
    shape: &Shape,
    content: &str,
) -> Result<Outcome, String> {
    let (tx, rx) = redis_pubsub_conns(ext.addr, s, r)?;
    let proto = RedisProto::new(r, content);
    relay::drive(
        &proto,
        relay::plain_all(tx)?,
        relay::plain_all(rx)?,
        shape,
        ext.pid(),
    )
}

/// The NATS group is a quarter of the window: the engine tops a sender up
/// once a quarter is free, as it does goTalk's.
pub fn relay_nats(
    ext: &External,
    s: usize,
    r: usize,
    shape: &Shape,
    content: &str,
) -> Result<Outcome, String> {
    let (tx, rx) = nats_conns(ext.addr, s, r)?;
    let proto = NatsProto::new(r, content, (shape.window / 4).max(1));
    relay::drive(
        &proto,
        relay::plain_all(tx)?,
        relay::plain_all(rx)?,
        shape,
        ext.pid(),
    )
}

/// The durable relay on a Redis started by [`start_redis_durable`]: each
/// receiver's consumer group made, its first read sent.
pub fn relay_redis_durable(
    ext: &External,
    s: usize,
    r: usize,
    shape: &Shape,
    content: &str,
) -> Result<Outcome, String> {
    let proto = RedisStreamProto::new(r, content);
    let mut receivers = Vec::new();
    for i in 0..r {
        let mut req = Vec::new();
        resp(
            &[
                b"XGROUP",
                b"CREATE",
                channel(i).as_bytes(),
                b"g",
                b"$",
                b"MKSTREAM",
            ],
            &mut req,
        );
        let mut c = handshake(ext.addr, &req, b"+OK\r\n")?;
        let mut read = Vec::new();
        proto.push_receive(i, &mut read);
        c.write_all(&read).map_err(|e| e.to_string())?;
        receivers.push(c);
    }
    let senders = (0..s)
        .map(|_| handshake(ext.addr, b"PING\r\n", b"+PONG\r\n"))
        .collect::<Result<_, _>>()?;
    relay::drive(
        &proto,
        relay::plain_all(senders)?,
        relay::plain_all(receivers)?,
        shape,
        ext.pid(),
    )
}

/// The open-loop step over Redis pub/sub.
pub fn latency_redis(ext: &External, schedule: &Schedule) -> Result<Latency, String> {
    let (mut tx, mut rx) = redis_pubsub_conns(ext.addr, 1, 1)?;
    let (tx, rx) = (relay::plain(tx.remove(0))?, relay::plain(rx.remove(0))?);
    open_loop::measure(&RedisProto::new(1, ""), 0, tx, rx, schedule)
}

/// The open-loop step over NATS core.
pub fn latency_nats(ext: &External, schedule: &Schedule) -> Result<Latency, String> {
    let (mut tx, mut rx) = nats_conns(ext.addr, 1, 1)?;
    let (tx, rx) = (relay::plain(tx.remove(0))?, relay::plain(rx.remove(0))?);
    open_loop::measure(&NatsProto::new(1, "", 1), 0, tx, rx, schedule)
}

/// Starts an installed server or says why not.
pub fn start(program: &str, args: &[&str]) -> Result<External, String> {
    let path = External::find(program).ok_or("not installed")?;
    External::start(&path, args)
}

/// Redis in memory: no snapshots, no append-only file.
pub fn start_redis() -> Result<External, String> {
    start("redis-server", &redis_args(&["--appendonly", "no"]))
}

/// Redis with every write in its append-only file and fsynced before the
/// reply (`--appendfsync always`, one fsync per event-loop turn, as goTalk
/// commits per batch), the file in `dir`.
pub fn start_redis_durable(dir: &Path) -> Result<External, String> {
    let dir = dir.to_string_lossy();
    start(
        "redis-server",
        &redis_args(&[
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            &dir,
        ]),
    )
}

fn redis_args<'a>(store: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--port",
        "{port}",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--protected-mode",
        "no",
        "--maxclients",
        "100000",
        "--daemonize",
        "no",
    ];
    args.extend_from_slice(store);
    args
}

pub fn start_nats() -> Result<External, String> {
    start("nats-server", &["-a", "127.0.0.1", "-p", "{port}"])
}

/// Writes a mosquitto config listening on `{port}` of 127.0.0.1.
pub fn start_mosquitto() -> Result<External, String> {
    let path = External::find("mosquitto").ok_or("not installed")?;
    let dir = server::temp_dir("mosquitto")?;
    let conf = dir.join("mosquitto.conf");
    // The port is only known inside External::start; mosquitto takes `-p`
    // for the listener and the file for the rest.
    std::fs::write(
        &conf,
        "allow_anonymous true\nmax_connections -1\npersistence false\n",
    )
    .map_err(|e| e.to_string())?;
    let conf_arg = conf.to_string_lossy().into_owned();
    let started = External::start(&path, &["-c", &conf_arg, "-p", "{port}"]);
    let _ = std::fs::remove_dir_all(&dir);
    started
}

/// MQTT 3.1.1 CONNECT, clean session, keep-alive off; CONNACK accepted.
pub struct MqttIdle;

impl Handshake for MqttIdle {
    fn request(&self, i: usize) -> Vec<u8> {
        let id = format!("bench-{i}");
        let mut p = vec![0x10, (12 + id.len()) as u8];
        p.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0]);
        p.extend_from_slice(&(id.len() as u16).to_be_bytes());
        p.extend_from_slice(id.as_bytes());
        p
    }

    fn complete(&self, got: &[u8]) -> Option<Result<(), String>> {
        if got.len() < 4 {
            return None;
        }
        Some(if got[0] == 0x20 && got[3] == 0 {
            Ok(())
        } else {
            Err(format!("CONNACK refused: {:02x?}", &got[..4]))
        })
    }
}

/// A request and the bytes the reply ends with.
pub struct TextIdle {
    pub request: &'static [u8],
    pub until: &'static [u8],
}

impl Handshake for TextIdle {
    fn request(&self, _i: usize) -> Vec<u8> {
        self.request.to_vec()
    }

    fn complete(&self, got: &[u8]) -> Option<Result<(), String>> {
        got.ends_with(self.until).then_some(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_frame_the_same_payload_for_the_relay_and_the_open_loop() {
        let redis = RedisProto::new(2, "hi");
        let mut out = Vec::new();
        redis.push_send(0, 1, &mut out);
        assert_eq!(
            out,
            b"*3\r\n$7\r\nPUBLISH\r\n$8\r\nbench-r1\r\n$2\r\nhi\r\n"
        );
        let nats = NatsProto::new(1, "hi", 2);
        out.clear();
        nats.push_send(0, 0, &mut out);
        nats.push_send(0, 1, &mut out);
        assert_eq!(
            out,
            b"PUB bench-r0 2\r\nhi\r\nPUB bench-r0 2\r\nhi\r\nPING\r\n"
        );
        let streams = RedisStreamProto::new(1, "hi");
        out.clear();
        streams.push_send(0, 0, &mut out);
        assert!(out.starts_with(b"*5\r\n$4\r\nXADD\r\n$8\r\nbench-r0\r\n$1\r\n*\r\n"));
        assert!(matches!(
            streams.sender_line(b"$15\r"),
            SenderLine::Answered(1)
        ));
        assert!(matches!(
            streams.receiver_line(b"bench-r0\r"),
            ReceiverLine::Asked
        ));
        assert!(matches!(
            streams.receiver_line(b"hi\r"),
            ReceiverLine::Message(None)
        ));
        out.clear();
        streams.push_receive(0, &mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("NOACK") && text.ends_with("$1\r\n>\r\n"),
            "{text}"
        );
    }
}
