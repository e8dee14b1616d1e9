//! The `compare` scenario: goTalk next to the servers it is measured
//! against, in one run on one machine, so the ratios are fair.
//!
//! - Relay: the same engine, shape and payload as `relay`, against
//!   `redis-server` (pipelined RESP `PUBLISH`, receivers `SUBSCRIBE`d; one
//!   `:N` reply per PUBLISH is the window) and `nats-server` (core `PUB`,
//!   receivers `SUB`scribed; a `PING` after every [`NATS_GROUP`] PUBs and
//!   its `PONG` are the window). Neither stores or acknowledges messages,
//!   which goTalk's `--memory` mode still does in its mailboxes.
//! - Idle memory: the same connection count against `mosquitto` (MQTT
//!   CONNECT, clean session, no keep-alive), `redis-server` (one PING) and
//!   `nats-server` (CONNECT and PING).
//!
//! A program that is not installed is reported as such; the rest still runs.

use crate::idle::{self, Handshake, IdleOutcome};
use crate::relay::{self, Outcome, Proto, ReceiverLine, SenderLine, Shape, CONTENT};
use crate::server::{self, External, Gotalk, Mode};
use crate::{print_table, thousands, Opts};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// NATS PUBs per PING (the sender's window moves in these steps).
const NATS_GROUP: u64 = 64;
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

fn channel(i: usize) -> String {
    format!("bench-r{i}")
}

/// Redis: RESP PUBLISH; replies `:N`; pushes carry the payload on a line.
struct RedisProto {
    frames: Vec<Vec<u8>>,
    payload_line: Vec<u8>,
}

impl RedisProto {
    fn new(receivers: usize) -> RedisProto {
        let frames = (0..receivers)
            .map(|i| {
                let ch = channel(i);
                format!(
                    "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{ch}\r\n${}\r\n{CONTENT}\r\n",
                    ch.len(),
                    CONTENT.len()
                )
                .into_bytes()
            })
            .collect();
        RedisProto {
            frames,
            payload_line: format!("{CONTENT}\r").into_bytes(),
        }
    }
}

impl Proto for RedisProto {
    fn push_send(&self, sender: usize, n: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.frames[(sender + n as usize) % self.frames.len()]);
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

/// NATS: `PUB subject n` + payload, a PING per group; `MSG` + payload.
struct NatsProto {
    frames: Vec<Vec<u8>>,
    payload_line: Vec<u8>,
}

const NATS_CONNECT: &str =
    "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\"name\":\"gotalk-bench\"}\r\n";

impl NatsProto {
    fn new(receivers: usize) -> NatsProto {
        let frames = (0..receivers)
            .map(|i| format!("PUB {} {}\r\n{CONTENT}\r\n", channel(i), CONTENT.len()).into_bytes())
            .collect();
        NatsProto {
            frames,
            payload_line: format!("{CONTENT}\r").into_bytes(),
        }
    }
}

impl Proto for NatsProto {
    fn push_send(&self, sender: usize, n: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.frames[(sender + n as usize) % self.frames.len()]);
        if (n + 1).is_multiple_of(NATS_GROUP) {
            out.extend_from_slice(b"PING\r\n");
        }
    }

    fn group(&self) -> u64 {
        NATS_GROUP
    }

    fn sender_line(&self, line: &[u8]) -> SenderLine {
        if line.starts_with(b"PONG") {
            SenderLine::Answered(NATS_GROUP)
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

fn relay_redis(ext: &External, s: usize, r: usize, shape: &Shape) -> Result<Outcome, String> {
    let mut receivers = Vec::new();
    for i in 0..r {
        let ch = channel(i);
        let req = format!("SUBSCRIBE {ch}\r\n");
        receivers.push(handshake(ext.addr, req.as_bytes(), b":1\r\n")?);
    }
    let mut senders = Vec::new();
    for _ in 0..s {
        senders.push(handshake(ext.addr, b"PING\r\n", b"+PONG\r\n")?);
    }
    relay::drive(
        &RedisProto::new(r),
        relay::plain_all(senders)?,
        relay::plain_all(receivers)?,
        shape,
        ext.pid(),
    )
}

fn relay_nats(ext: &External, s: usize, r: usize, shape: &Shape) -> Result<Outcome, String> {
    let mut receivers = Vec::new();
    for i in 0..r {
        let req = format!("{NATS_CONNECT}SUB {} 1\r\nPING\r\n", channel(i));
        receivers.push(handshake(ext.addr, req.as_bytes(), b"PONG\r\n")?);
    }
    let mut senders = Vec::new();
    for _ in 0..s {
        let req = format!("{NATS_CONNECT}PING\r\n");
        senders.push(handshake(ext.addr, req.as_bytes(), b"PONG\r\n")?);
    }
    relay::drive(
        &NatsProto::new(r),
        relay::plain_all(senders)?,
        relay::plain_all(receivers)?,
        shape,
        ext.pid(),
    )
}

/// MQTT 3.1.1 CONNECT, clean session, keep-alive off; CONNACK accepted.
struct MqttIdle;

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
struct TextIdle {
    request: &'static [u8],
    until: &'static [u8],
}

impl Handshake for TextIdle {
    fn request(&self, _i: usize) -> Vec<u8> {
        self.request.to_vec()
    }

    fn complete(&self, got: &[u8]) -> Option<Result<(), String>> {
        got.ends_with(self.until).then_some(Ok(()))
    }
}

/// A server for the idle comparison: its name, the started process (or
/// why not), and how its clients say hello.
type Contender = (&'static str, Result<External, String>, Box<dyn Handshake>);

/// Starts an installed server or says why not.
fn start(program: &str, args: &[&str]) -> Result<External, String> {
    let path = External::find(program).ok_or_else(|| format!("{program} is not installed"))?;
    External::start(&path, args)
}

fn redis_args() -> Vec<&'static str> {
    vec![
        "--port",
        "{port}",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--maxclients",
        "100000",
        "--daemonize",
        "no",
    ]
}

const NATS_ARGS: &[&str] = &["-a", "127.0.0.1", "-p", "{port}"];

/// Writes a mosquitto config listening on `{port}` of 127.0.0.1.
fn mosquitto_start() -> Result<External, String> {
    let path =
        External::find("mosquitto").ok_or_else(|| "mosquitto is not installed".to_string())?;
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

pub fn run(opts: &Opts) -> Result<(), String> {
    let s = opts.senders.unwrap_or(4);
    let r = opts.receivers.unwrap_or(4);
    let conns = opts.conns.unwrap_or(10_000);
    let shape = Shape {
        warmup: Duration::from_secs_f64(opts.warmup.unwrap_or(1.0)),
        measure: Duration::from_secs_f64(opts.seconds.unwrap_or(5.0)),
        window: opts.window as u64,
        max_messages: opts.max_messages,
    };

    // Relay.
    let mut relay_rows: Vec<(String, Result<Outcome, String>)> = Vec::new();
    {
        let server = Gotalk::start(&opts.server, Mode::Memory)?;
        relay_rows.push((
            "gotalk --memory".into(),
            relay::relay_gotalk(&server, s, r, &shape),
        ));
    }
    relay_rows.push((
        "redis-server".into(),
        start("redis-server", &redis_args()).and_then(|ext| relay_redis(&ext, s, r, &shape)),
    ));
    relay_rows.push((
        "nats-server".into(),
        start("nats-server", NATS_ARGS).and_then(|ext| relay_nats(&ext, s, r, &shape)),
    ));
    println!(
        "compare relay: {s} senders -> {r} receivers, window {} per sender, {}-byte payload, \
         {:.0} s measured after {:.0} s warm-up each",
        shape.window,
        CONTENT.len(),
        shape.measure.as_secs_f64(),
        shape.warmup.as_secs_f64()
    );
    let gotalk_rate = relay_rows[0].1.as_ref().ok().map(|o| o.relayed_per_s);
    let rows: Vec<Vec<String>> = relay_rows
        .iter()
        .map(|(name, result)| match result {
            Ok(o) => vec![
                name.clone(),
                thousands(o.relayed_per_s),
                thousands(o.sends_per_s),
                o.server_cpu.clone(),
                o.relayed_per_server_cpu_s.map_or("n/a".into(), thousands),
                o.bench_cpu.clone(),
                o.other_cpu.clone(),
                o.errors.to_string(),
                gotalk_rate.map_or("-".into(), |g| format!("{:.2}", g / o.relayed_per_s)),
            ],
            Err(e) => vec![name.clone(), e.clone()],
        })
        .map(|mut row| {
            row.resize(9, String::new());
            row
        })
        .collect();
    print_table(
        &[
            "server",
            "relayed msgs/s",
            "sends/s",
            "server CPU",
            "per server CPU-s",
            "bench CPU",
            "others' CPU",
            "errors",
            "gotalk / this",
        ],
        &rows,
    );

    // Idle memory.
    println!();
    if let Err(e) = idle::check_files(conns) {
        println!("compare idle: skipped: {e}");
        return Ok(());
    }
    let mut idle_rows: Vec<(String, IdleOutcome)> = Vec::new();
    let mut missing = Vec::new();
    {
        let server = idle::start_server(opts)?;
        idle_rows.push(("gotalk --memory".into(), idle::gotalk_idle(&server, conns)?));
    }
    let others: [Contender; 3] = [
        ("mosquitto", mosquitto_start(), Box::new(MqttIdle)),
        (
            "redis-server",
            start("redis-server", &redis_args()),
            Box::new(TextIdle {
                request: b"PING\r\n",
                until: b"+PONG\r\n",
            }),
        ),
        (
            "nats-server",
            start("nats-server", NATS_ARGS),
            Box::new(TextIdle {
                request: b"CONNECT {\"verbose\":false}\r\nPING\r\n",
                until: b"PONG\r\n",
            }),
        ),
    ];
    for (name, started, hs) in others {
        match started {
            Ok(ext) => {
                let outcome = idle::measure(ext.pid(), conns, || {
                    idle::open_idle(ext.addr, conns, hs.as_ref())
                });
                match outcome {
                    Ok(o) => idle_rows.push((name.to_string(), o)),
                    Err(e) => missing.push(format!("{name}: {e}")),
                }
            }
            Err(e) => missing.push(e),
        }
    }
    println!(
        "compare idle: {} connections each (goTalk: half AUTHed, half after one PING)",
        thousands(conns as f64)
    );
    idle::print_idle(&idle_rows);
    let gotalk_bytes = idle_rows[0].1.bytes_per_conn();
    for (name, o) in idle_rows.iter().skip(1) {
        println!(
            "gotalk / {name} bytes per idle connection: {:.2}",
            gotalk_bytes / o.bytes_per_conn().max(1.0)
        );
    }
    for m in missing {
        println!("not measured: {m}");
    }
    Ok(())
}
