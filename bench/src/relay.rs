//! The `relay` scenario: S sender connections pipeline SENDs (a window of
//! requests in flight each) to R logged-in receiver connections, which
//! count the pushed messages and ACK every [`ACK_EVERY`] so mailboxes stay
//! small. Relayed messages/s is pushes received per second over a measured
//! window after a warm-up; at the end the bench checks that every message
//! the server accepted was pushed.
//!
//! The engine ([`drive`]) is one thread with one `mio` poll over every
//! connection, and is shared with `compare` through the [`Proto`] trait, so
//! Redis and NATS are driven the same way. It is built to cost the server's
//! competitor for the two cores as little as possible: 256 KiB reads, lines
//! found eight bytes at a time, only the first bytes of a line looked at,
//! requests copied from pre-built frames.

use crate::server::{self, Gotalk, Mode};
use crate::wire::{self, Client, LineBuf};
use crate::{print_table, thousands, Opts};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

mod gotalk;
mod report;
pub use gotalk::*;
pub use report::*;

/// Receivers acknowledge after this many pushes.
pub const ACK_EVERY: u64 = 1000;
/// Bytes per read call.
const READ_BUF: usize = 256 * 1024;
/// Reads per readiness event before other connections get a turn.
const READS_PER_EVENT: usize = 16;
/// How long the bench waits, after sending stops, for the last replies
/// and pushes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Content of every relayed message (24 bytes).
pub const CONTENT: &str = "relay-payload-0123456789";

/// What one server's protocol looks like to the engine.
pub trait Proto {
    /// Appends the request that sends message `n` of sender `sender`.
    fn push_send(&self, sender: usize, n: u64, out: &mut Vec<u8>);
    /// Appends the request that sends `payload` to receiver `to` (the
    /// open-loop latency step, whose payloads carry their sequence number).
    fn push_payload(&self, to: usize, payload: &[u8], out: &mut Vec<u8>);
    /// Sends go out in multiples of this (NATS: one PING per group).
    fn group(&self) -> u64 {
        1
    }
    /// What a line read by a sender means.
    fn sender_line(&self, line: &[u8]) -> SenderLine;
    /// What a line read by a receiver means.
    fn receiver_line(&self, line: &[u8]) -> ReceiverLine;
    /// Appends an acknowledgement up to message `upto`, if the protocol
    /// has them; returns whether it did.
    fn push_ack(&self, _upto: u64, _out: &mut Vec<u8>) -> bool {
        false
    }
    /// Appends receiver `receiver`'s next read request, for protocols whose
    /// receivers ask for messages ([`ReceiverLine::Asked`]).
    fn push_receive(&self, _receiver: usize, _out: &mut Vec<u8>) {}
}

pub enum SenderLine {
    /// This many sends are answered.
    Answered(u64),
    Error,
    Other,
}

pub enum ReceiverLine {
    /// A relayed message, with its id where the protocol has one.
    Message(Option<u64>),
    /// A reply to the receiver's read request began: ask for the next
    /// ([`Proto::push_receive`]).
    Asked,
    Error,
    Other,
}

/// The shape of a relay run.
pub struct Shape {
    pub warmup: Duration,
    pub measure: Duration,
    pub window: u64,
    pub max_messages: u64,
}

/// What a relay run measured.
pub struct Outcome {
    pub seconds: f64,
    pub relayed_per_s: f64,
    pub sends_per_s: f64,
    pub relayed_in_window: u64,
    pub answered_total: u64,
    pub delivered_total: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub server_cpu: String,
    /// Relayed messages per second of server CPU time: the rate the server
    /// would reach with one core to itself (more, if it uses threads).
    pub relayed_per_server_cpu_s: Option<f64>,
    pub bench_cpu: String,
    /// CPU used by every other process meanwhile (the machine is shared).
    pub other_cpu: String,
}

/// A connection the engine drives: a plain `mio` socket or a TLS stream.
pub trait Stream: Read + Write + mio::event::Source {}
impl<T: Read + Write + mio::event::Source> Stream for T {}

/// A set-up blocking socket, made non-blocking for the engine.
pub fn plain(s: std::net::TcpStream) -> Result<TcpStream, String> {
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    Ok(TcpStream::from_std(s))
}

/// Plain sockets for the engine.
pub fn plain_all(streams: Vec<std::net::TcpStream>) -> Result<Vec<TcpStream>, String> {
    streams.into_iter().map(plain).collect()
}

struct SenderConn<S> {
    stream: S,
    input: LineBuf,
    out: Vec<u8>,
    out_pos: usize,
    queued: u64,
    answered: u64,
}

struct ReceiverConn<S> {
    stream: S,
    input: LineBuf,
    out: Vec<u8>,
    out_pos: usize,
    delivered: u64,
    last_id: u64,
    since_ack: u64,
}

#[derive(Clone, Copy)]
struct Snapshot {
    at: Instant,
    delivered: u64,
    answered: u64,
    server_cpu: Option<u64>,
    bench_cpu: Option<u64>,
    machine: Option<(u64, u64)>,
}

/// Writes as much of `out[pos..]` as the socket takes (over TLS, with
/// the ciphertext of what was taken).
pub fn flush(stream: &mut impl Write, out: &mut Vec<u8>, pos: &mut usize) -> io::Result<()> {
    while *pos < out.len() {
        match stream.write(&out[*pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    stream.flush()?;
    if *pos == out.len() {
        out.clear();
        *pos = 0;
    } else if *pos >= 64 * 1024 {
        out.drain(..*pos);
        *pos = 0;
    }
    Ok(())
}

/// Reads up to [`READS_PER_EVENT`] times into `input`, calling `lines`
/// after each read. Returns whether the socket may still hold data.
pub fn read_some(
    stream: &mut impl Read,
    input: &mut LineBuf,
    mut lines: impl FnMut(&mut LineBuf) -> Result<(), String>,
) -> Result<bool, String> {
    for _ in 0..READS_PER_EVENT {
        match stream.read(input.spare()) {
            Ok(0) => return Err("the server closed a connection".into()),
            Ok(n) => {
                input.filled(n);
                lines(input)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    Ok(true)
}

/// Runs the relay load over connections that are set up (logged in,
/// subscribed) and still blocking; `server_pid` is for CPU readings.
pub fn drive<P: Proto, S: Stream>(
    proto: &P,
    senders: Vec<S>,
    receivers: Vec<S>,
    shape: &Shape,
    server_pid: u32,
) -> Result<Outcome, String> {
    let mut poll = Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?;
    let s_count = senders.len();
    let mut tx: Vec<SenderConn<S>> = Vec::new();
    for (i, mut stream) in senders.into_iter().enumerate() {
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        tx.push(SenderConn {
            stream,
            input: LineBuf::new(READ_BUF),
            out: Vec::with_capacity(64 * 1024),
            out_pos: 0,
            queued: 0,
            answered: 0,
        });
    }
    let mut rx: Vec<ReceiverConn<S>> = Vec::new();
    for (i, mut stream) in receivers.into_iter().enumerate() {
        poll.registry()
            .register(
                &mut stream,
                Token(s_count + i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        rx.push(ReceiverConn {
            stream,
            input: LineBuf::new(READ_BUF),
            out: Vec::new(),
            out_pos: 0,
            delivered: 0,
            last_id: 0,
            since_ack: 0,
        });
    }

    let group = proto.group().max(1);
    let window = shape.window.max(group);
    // Top a sender up once a quarter of its window is free, in whole groups.
    let refill_at = (window / 4).max(group);
    let mut errors: u64 = 0;
    let mut send_errors: u64 = 0;
    let mut first_error: Option<String> = None;
    let mut events = Events::with_capacity(256);
    let mut again: Vec<usize> = Vec::new();
    let mut stopping = false;
    let start = Instant::now();
    let hard_deadline = start + shape.warmup + shape.measure + DRAIN_TIMEOUT + DRAIN_TIMEOUT;
    let mut begin: Option<Snapshot> = None;
    let mut end: Option<Snapshot> = None;
    let mut drain_deadline = hard_deadline;

    let snapshot = |tx: &[SenderConn<S>], rx: &[ReceiverConn<S>]| Snapshot {
        at: Instant::now(),
        delivered: rx.iter().map(|r| r.delivered).sum(),
        answered: tx.iter().map(|s| s.answered).sum(),
        server_cpu: server::cpu_ticks(Some(server_pid)),
        bench_cpu: server::cpu_ticks(None),
        machine: server::machine_ticks(),
    };

    // Accepted but not yet received messages, past which senders wait for
    // the receivers: a sustainable rate, not a growing backlog.
    let backlog_limit = window * s_count as u64 * 2;
    let mut backlog: u64 = 0;
    let top_up =
        |i: usize, c: &mut SenderConn<S>, total_queued: &mut u64, backlog: u64| -> io::Result<()> {
            let free = window - (c.queued - c.answered);
            if free >= refill_at && *total_queued < shape.max_messages && backlog < backlog_limit {
                let n = (free / group * group).min(shape.max_messages - *total_queued);
                for k in 0..n {
                    proto.push_send(i, c.queued + k, &mut c.out);
                }
                c.queued += n;
                *total_queued += n;
            }
            flush(&mut c.stream, &mut c.out, &mut c.out_pos)
        };
    let mut total_queued: u64 = 0;

    loop {
        let now = Instant::now();
        if begin.is_none() && now >= start + shape.warmup {
            begin = Some(snapshot(&tx, &rx));
        }
        if let Some(b) = begin {
            if end.is_none() && (now >= b.at + shape.measure || total_queued >= shape.max_messages)
            {
                end = Some(snapshot(&tx, &rx));
                stopping = true;
                drain_deadline = now + DRAIN_TIMEOUT;
            }
        }
        if stopping {
            let answered: u64 = tx.iter().map(|s| s.answered).sum();
            let delivered: u64 = rx.iter().map(|r| r.delivered).sum();
            let all_answered = tx.iter().all(|s| s.answered >= s.queued);
            if (all_answered && delivered >= answered - send_errors) || now >= drain_deadline {
                break;
            }
        }
        if now >= hard_deadline {
            break;
        }
        if !stopping {
            let answered: u64 = tx.iter().map(|s| s.answered).sum();
            let delivered: u64 = rx.iter().map(|r| r.delivered).sum();
            backlog = answered.saturating_sub(send_errors + delivered);
            for (i, c) in tx.iter_mut().enumerate() {
                top_up(i, c, &mut total_queued, backlog)
                    .map_err(|e| format!("write failed: {e}"))?;
            }
        }
        let timeout = if again.is_empty() {
            Duration::from_millis(20)
        } else {
            Duration::ZERO
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll failed: {e}"));
            }
        }
        let mut ready: Vec<usize> = std::mem::take(&mut again);
        ready.extend(events.iter().map(|e| e.token().0));
        ready.sort_unstable();
        ready.dedup();
        for t in ready {
            if t < s_count {
                let c = &mut tx[t];
                let mut answered = 0;
                let more = read_some(&mut c.stream, &mut c.input, |input| {
                    input.lines(|line| match proto.sender_line(line) {
                        SenderLine::Answered(n) => answered += n,
                        SenderLine::Error => {
                            answered += 1;
                            errors += 1;
                            send_errors += 1;
                            if first_error.is_none() {
                                first_error = Some(String::from_utf8_lossy(line).into_owned());
                            }
                        }
                        SenderLine::Other => {}
                    })
                })?;
                c.answered += answered;
                if more {
                    again.push(t);
                }
                if stopping {
                    flush(&mut c.stream, &mut c.out, &mut c.out_pos)
                } else {
                    top_up(t, c, &mut total_queued, backlog)
                }
                .map_err(|e| format!("write failed: {e}"))?;
            } else if let Some(c) = rx.get_mut(t - s_count) {
                let (mut delivered, mut last_id, mut asked) = (0u64, c.last_id, 0);
                let more = read_some(&mut c.stream, &mut c.input, |input| {
                    input.lines(|line| match proto.receiver_line(line) {
                        ReceiverLine::Message(id) => {
                            delivered += 1;
                            if let Some(id) = id {
                                last_id = id;
                            }
                        }
                        ReceiverLine::Asked => asked += 1,
                        ReceiverLine::Error => {
                            errors += 1;
                            if first_error.is_none() {
                                first_error = Some(String::from_utf8_lossy(line).into_owned());
                            }
                        }
                        ReceiverLine::Other => {}
                    })
                })?;
                for _ in 0..asked {
                    proto.push_receive(t - s_count, &mut c.out);
                }
                c.delivered += delivered;
                c.since_ack += delivered;
                c.last_id = last_id;
                if c.since_ack >= ACK_EVERY && proto.push_ack(c.last_id, &mut c.out) {
                    c.since_ack = 0;
                }
                if more {
                    again.push(t);
                }
                flush(&mut c.stream, &mut c.out, &mut c.out_pos)
                    .map_err(|e| format!("write failed: {e}"))?;
            }
        }
    }
    let (Some(b), Some(e)) = (begin, end) else {
        return Err("the run ended before its measured window".into());
    };
    let seconds = e.at.duration_since(b.at).as_secs_f64();
    Ok(Outcome {
        seconds,
        relayed_per_s: (e.delivered - b.delivered) as f64 / seconds,
        sends_per_s: (e.answered - b.answered) as f64 / seconds,
        relayed_in_window: e.delivered - b.delivered,
        answered_total: tx.iter().map(|s| s.answered).sum::<u64>() - send_errors,
        delivered_total: rx.iter().map(|r| r.delivered).sum(),
        errors,
        first_error,
        server_cpu: server::cpu_percent(b.server_cpu, e.server_cpu, seconds),
        relayed_per_server_cpu_s: match (b.server_cpu, e.server_cpu) {
            (Some(b_cpu), Some(e_cpu)) if e_cpu > b_cpu => Some(
                (e.delivered - b.delivered) as f64
                    / ((e_cpu - b_cpu) as f64 / server::TICKS_PER_SECOND),
            ),
            _ => None,
        },
        bench_cpu: server::cpu_percent(b.bench_cpu, e.bench_cpu, seconds),
        other_cpu: server::other_cpu(
            (b.machine, b.server_cpu, b.bench_cpu),
            (e.machine, e.server_cpu, e.bench_cpu),
            seconds,
        ),
    })
}

pub fn run(opts: &Opts) -> Result<(), String> {
    let s_count = opts.senders.unwrap_or(4);
    let r_count = opts.receivers.unwrap_or(4);
    let shape = Shape {
        warmup: Duration::from_secs_f64(opts.warmup.unwrap_or(2.0)),
        measure: Duration::from_secs_f64(opts.seconds.unwrap_or(10.0)),
        window: opts.window.unwrap_or(crate::DEFAULT_WINDOW) as u64,
        max_messages: opts.max_messages,
    };
    let mode = if opts.durable && opts.postgres.is_some() {
        Mode::Postgres
    } else if opts.durable {
        Mode::Durable
    } else {
        Mode::Memory
    };
    if opts.tls {
        return run_plain_and_tls(opts, mode, s_count, r_count, &shape);
    }
    if opts.ws {
        return crate::ws::run_relay(opts, mode, s_count, r_count, &shape);
    }
    let server = Gotalk::start(&opts.server, mode)?;
    let outcome = relay_gotalk(&server, s_count, r_count, &shape)
        .map_err(|e| format!("{e}\nserver log:\n{}", server.log_tail()))?;
    let rss = server::rss_kib(server.pid());
    println!(
        "relay: {s_count} senders -> {r_count} receivers, window {} per sender, gotalk {}, \
         {:.1} s measured after {:.1} s warm-up",
        shape.window,
        mode.name(),
        outcome.seconds,
        shape.warmup.as_secs_f64()
    );
    print_outcome(&outcome, rss);
    Ok(())
}

/// `relay --tls`: the same load plain, then over TLS (a fresh server with a
/// gen-cert certificate), side by side in one run.
fn run_plain_and_tls(
    opts: &Opts,
    mode: Mode,
    s_count: usize,
    r_count: usize,
    shape: &Shape,
) -> Result<(), String> {
    let plain = {
        let server = Gotalk::start(&opts.server, mode)?;
        relay_gotalk(&server, s_count, r_count, shape)
            .map_err(|e| format!("plain: {e}\nserver log:\n{}", server.log_tail()))?
    };
    let dir = server::temp_dir("tls")?;
    let (cert, key) = crate::tls::gen_cert(&opts.server, &dir)?;
    let launch = server::Launch {
        args: vec![
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
            "--allow-plaintext".into(),
        ],
        open_files: None,
        ..Default::default()
    };
    let tls = {
        let server = Gotalk::start_with(&opts.server, mode, &launch)?;
        relay_gotalk_tls(&server, &cert, s_count, r_count, shape)
            .map_err(|e| format!("TLS: {e}\nserver log:\n{}", server.log_tail()))
    };
    let _ = std::fs::remove_dir_all(&dir);
    let tls = tls?;
    println!(
        "relay, plain then TLS: {s_count} senders -> {r_count} receivers, window {} per sender, \
         gotalk {}, {:.1} s measured after {:.1} s warm-up each",
        shape.window,
        mode.name(),
        plain.seconds,
        shape.warmup.as_secs_f64()
    );
    print_side_by_side(("plain", &plain), ("TLS", &tls));
    Ok(())
}
