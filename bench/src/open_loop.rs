//! The open-loop latency step, one for every server: one sender at a fixed
//! rate (default [`DEFAULT_RATE`] messages/s of [`DEFAULT_SIZE`] bytes) to
//! one receiver, timed from each message's *scheduled* send time to its
//! arrival at the receiver. `cluster` (two goTalk nodes), `relay --ws`
//! (the line door against WebSocket) and `compare` (goTalk, Redis
//! `PUBLISH`/`SUBSCRIBE`, NATS `PUB`/`SUB`) all measure through
//! [`measure`], each server spoken to through its relay [`Proto`].
//!
//! Open loop: message `i` is due at `i / rate` seconds after the start,
//! whatever happened to the ones before. A sender that falls behind (a
//! full socket, a late wake-up) sends every overdue message at once, and
//! their latency still counts from when they were due, so a stall shows
//! in the figures instead of slowing the load down (no coordinated
//! omission). Each payload carries its sequence number, so the receiver
//! needs no clock from the sender. The sender sleeps between messages
//! with a 1 ns timer slack (Linux's default is 50 µs), and how late it
//! actually wrote is reported beside the latencies: if the bench is the
//! one falling behind, that column says so.
//!
//! The sender and the receiver run on two threads; the receiver waits on
//! its own `mio` poll, so a push is read the moment it arrives.

use crate::relay::{self, GotalkProto, Proto, ReceiverLine, SenderLine, Stream, ACK_EVERY};
use crate::server::Gotalk;
use crate::wire::{self, LineBuf};
use crate::{print_table, thousands, Opts};
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Messages per second unless `--rate` says.
pub const DEFAULT_RATE: u64 = 10_000;
/// Bytes of every message's payload.
pub const DEFAULT_SIZE: usize = 100;
/// How long the receiver waits, after the last message was due, for the
/// rest to arrive; what has not is reported missing.
const DRAIN: Duration = Duration::from_secs(5);
/// Marks a payload's sequence number (ASCII that no protocol escapes).
const MARK: &[u8] = b"~ol:";
/// Digits of the sequence number after [`MARK`].
const DIGITS: usize = 10;

/// The schedule of one open-loop run.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Messages per second.
    pub rate: u64,
    /// Messages due in this first stretch are sent but not timed.
    pub warmup: Duration,
    /// The timed stretch after the warm-up.
    pub measure: Duration,
    /// Payload bytes per message (at least the sequence number's 14).
    pub size: usize,
}

impl Schedule {
    /// `--rate` (or `default_rate`), `--warmup` (1 s), `--seconds` (5 s),
    /// [`DEFAULT_SIZE`]-byte messages.
    pub fn from_opts(opts: &Opts, default_rate: u64) -> Schedule {
        Schedule {
            rate: opts.rate.unwrap_or(default_rate),
            warmup: Duration::from_secs_f64(opts.warmup.unwrap_or(1.0)),
            measure: Duration::from_secs_f64(opts.seconds.unwrap_or(5.0)),
            size: DEFAULT_SIZE,
        }
    }

    fn total(&self) -> u64 {
        ((self.warmup + self.measure).as_secs_f64() * self.rate as f64) as u64
    }

    /// When message `seq` is due, after the start.
    fn due(&self, seq: u64) -> Duration {
        Duration::from_nanos((seq as u128 * 1_000_000_000 / self.rate as u128) as u64)
    }

    pub fn describe(&self) -> String {
        format!(
            "one sender at a fixed {} messages/s ({}-byte payloads) to one receiver, {} s \
             timed after {} s",
            thousands(self.rate as f64),
            self.size,
            self.measure.as_secs_f64(),
            self.warmup.as_secs_f64()
        )
    }
}

/// What one open-loop run measured; times in nanoseconds, sorted.
#[derive(Debug, Default)]
pub struct Latency {
    /// Scheduled-send-to-receipt times of the timed messages.
    pub latencies: Vec<u64>,
    /// How late the sender wrote each message after it was due.
    pub late: Vec<u64>,
    /// Messages that never arrived (within [`DRAIN`] of the last one due).
    pub missing: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Latency {
    /// The `q` quantile (0..=1) in µs, nearest rank; 0 if nothing timed.
    pub fn micros(&self, q: f64) -> f64 {
        quantile(&self.latencies, q)
    }

    pub fn p99_us(&self) -> f64 {
        self.micros(0.99)
    }
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

/// Writes message `seq`'s payload: the mark, the number, then `x`s up to
/// `size` bytes.
pub fn payload(seq: u64, size: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(MARK);
    out.extend_from_slice(format!("{seq:0DIGITS$}").as_bytes());
    out.resize(size.max(MARK.len() + DIGITS), b'x');
}

/// The sequence number of the payload inside `line`, if it holds one.
pub fn seq_in(line: &[u8]) -> Option<u64> {
    let at = line.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = line.get(at..at + DIGITS)?;
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Sleeps with a 1 ns timer slack on this thread, so a 100 µs gap is
/// not rounded up by the kernel's default 50 µs.
fn tighten_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Runs `schedule` from `tx` (set up to send to receiver `to` of `proto`)
/// to `rx` (subscribed or logged in). Both streams are non-blocking.
pub fn measure<P, S>(
    proto: &P,
    to: usize,
    tx: S,
    rx: S,
    schedule: &Schedule,
) -> Result<Latency, String>
where
    P: Proto + Sync,
    S: Stream + Send,
{
    if schedule.rate == 0 {
        return Err("the rate must be at least 1 message/s".into());
    }
    let done = AtomicBool::new(false);
    let origin = Instant::now();
    let (sent, received) = std::thread::scope(|scope| {
        let sender = scope.spawn(|| send(proto, to, tx, schedule, origin, &done));
        let received = receive(proto, rx, schedule, origin);
        done.store(true, Ordering::Relaxed);
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err("the sender panicked".into()));
        (sent, received)
    });
    let (late, send_errors, first_send_error) = sent?;
    let mut out = received?;
    out.late = late;
    out.late.sort_unstable();
    out.latencies.sort_unstable();
    out.errors += send_errors;
    if out.first_error.is_none() {
        out.first_error = first_send_error;
    }
    Ok(out)
}

type Sent = (Vec<u64>, u64, Option<String>);

/// The sender: every message when due, replies read in between (and
/// errors counted) until the receiver is done.
fn send<P: Proto, S: Stream>(
    proto: &P,
    to: usize,
    mut tx: S,
    schedule: &Schedule,
    origin: Instant,
    done: &AtomicBool,
) -> Result<Sent, String> {
    tighten_timer_slack();
    let total = schedule.total();
    let mut late = Vec::with_capacity(total as usize);
    let (mut out, mut pos, mut body) = (Vec::with_capacity(64 * 1024), 0, Vec::new());
    let mut input = LineBuf::new(64 * 1024);
    let (mut errors, mut first_error) = (0u64, None);
    let mut next = 0u64;
    while !done.load(Ordering::Relaxed) {
        let now = origin.elapsed();
        while next < total && schedule.due(next) <= now {
            payload(next, schedule.size, &mut body);
            proto.push_payload(to, &body, &mut out);
            late.push((now - schedule.due(next)).as_nanos() as u64);
            next += 1;
        }
        relay::flush(&mut tx, &mut out, &mut pos).map_err(|e| format!("sender: {e}"))?;
        relay::read_some(&mut tx, &mut input, |input| {
            input.lines(|line| {
                if let SenderLine::Error = proto.sender_line(line) {
                    errors += 1;
                    first_error.get_or_insert_with(|| String::from_utf8_lossy(line).into());
                }
            })
        })
        .map_err(|e| format!("sender: {e}"))?;
        let wait = if next < total {
            schedule.due(next).saturating_sub(origin.elapsed())
        } else {
            Duration::from_millis(1)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
    Ok((late, errors, first_error))
}

/// The receiver: times every message it reads and acknowledges as the
/// relay receivers do, until all arrived or [`DRAIN`] after the last due.
fn receive<P: Proto, S: Stream>(
    proto: &P,
    mut rx: S,
    schedule: &Schedule,
    origin: Instant,
) -> Result<Latency, String> {
    let total = schedule.total();
    let mut poll = Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?;
    poll.registry()
        .register(&mut rx, Token(0), Interest::READABLE)
        .map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(4);
    let mut input = LineBuf::new(256 * 1024);
    let (mut out, mut pos) = (Vec::new(), 0);
    let mut got = Latency {
        latencies: Vec::with_capacity(total as usize),
        ..Latency::default()
    };
    let (mut received, mut since_ack, mut last_id) = (0u64, 0u64, 0u64);
    let deadline = origin + schedule.due(total) + DRAIN;
    while received < total && Instant::now() < deadline {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(50))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll failed: {e}"));
            }
        }
        let mut asked = 0;
        loop {
            let more = relay::read_some(&mut rx, &mut input, |input| {
                let now = origin.elapsed();
                input.lines(|line| {
                    if let Some(seq) = seq_in(line) {
                        received += 1;
                        let due = schedule.due(seq);
                        if due >= schedule.warmup {
                            got.latencies
                                .push(now.saturating_sub(due).as_nanos() as u64);
                        }
                    }
                    match proto.receiver_line(line) {
                        ReceiverLine::Message(id) => {
                            since_ack += 1;
                            last_id = id.unwrap_or(last_id);
                        }
                        ReceiverLine::Asked => asked += 1,
                        ReceiverLine::Error => {
                            got.errors += 1;
                            let text = || String::from_utf8_lossy(line).into();
                            got.first_error.get_or_insert_with(text);
                        }
                        ReceiverLine::Other => {}
                    }
                })
            })
            .map_err(|e| format!("receiver: {e} after {received} messages"))?;
            if !more {
                break;
            }
        }
        for _ in 0..asked {
            proto.push_receive(0, &mut out);
        }
        if since_ack >= ACK_EVERY && proto.push_ack(last_id, &mut out) {
            since_ack = 0;
        }
        relay::flush(&mut rx, &mut out, &mut pos).map_err(|e| format!("receiver: {e}"))?;
    }
    got.missing = total.saturating_sub(received);
    Ok(got)
}

/// The goTalk users of the step: a sender and a receiver.
pub const GOTALK_USERS: [&str; 2] = ["lat-sender", "lat-receiver"];

/// The SENDs of the step, to [`GOTALK_USERS`]' receiver.
pub fn gotalk_proto() -> GotalkProto {
    GotalkProto::new(&[GOTALK_USERS[1].to_string()])
}

/// Registers [`GOTALK_USERS`] on `server` and logs both in; their tokens.
/// The LOGIN connections are closed (a connection left bound would get
/// every push too).
pub fn gotalk_tokens(server: &Gotalk) -> Result<Vec<String>, String> {
    let names = GOTALK_USERS.map(String::from);
    wire::register_all(server.addr, &names)?;
    relay::login_all(server.addr, &names).map(|(_, tokens)| tokens)
}

/// The step over goTalk's line door: both users logged in on their own
/// connection.
pub fn gotalk_line(server: &Gotalk, schedule: &Schedule) -> Result<Latency, String> {
    let names = GOTALK_USERS.map(String::from);
    wire::register_all(server.addr, &names)?;
    let (clients, _) = relay::login_all(server.addr, &names)?;
    let mut streams = clients
        .into_iter()
        .map(|c| c.into_stream().and_then(relay::plain))
        .collect::<Result<Vec<_>, _>>()?;
    let rx = streams.pop().ok_or("no receiver")?;
    let tx = streams.pop().ok_or("no sender")?;
    measure(&gotalk_proto(), 0, tx, rx, schedule)
}

/// The figures of one run as table cells: timed, p50, p99, max (µs),
/// the sender's p99 lateness (µs), missing, errors.
fn cells(l: &Latency) -> Vec<String> {
    vec![
        thousands(l.latencies.len() as f64),
        thousands(l.micros(0.5)),
        thousands(l.micros(0.99)),
        thousands(l.micros(1.0)),
        thousands(quantile(&l.late, 0.99)),
        l.missing.to_string(),
        l.errors.to_string(),
    ]
}

const HEADER: [&str; 8] = [
    "server",
    "timed",
    "p50 µs",
    "p99 µs",
    "max µs",
    "sender late p99 µs",
    "missing",
    "errors",
];

/// One row per server (or why it was not measured).
pub fn print_rows(rows: &[(String, Result<Latency, String>)]) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, r)| {
            let mut row = vec![name.clone()];
            match r {
                Ok(l) => row.extend(cells(l)),
                Err(e) => row.push(e.clone()),
            }
            row.resize(HEADER.len(), String::new());
            row
        })
        .collect();
    print_table(&HEADER, &table);
    for (name, r) in rows {
        if let Ok(Latency {
            first_error: Some(e),
            ..
        }) = r
        {
            println!("{name}: first error: {e}");
        }
    }
}

/// Two runs side by side: p50, p99 and max of each and `b / a`.
pub fn print_side_by_side((a_name, a): (&str, &Latency), (b_name, b): (&str, &Latency)) {
    let ratio = |x: f64, y: f64| {
        if x > 0.0 {
            format!("{:.2}", y / x)
        } else {
            "n/a".into()
        }
    };
    let mut rows: Vec<Vec<String>> = [("p50 µs", 0.5), ("p99 µs", 0.99), ("max µs", 1.0)]
        .iter()
        .map(|&(name, q)| {
            let (x, y) = (a.micros(q), b.micros(q));
            vec![name.into(), thousands(x), thousands(y), ratio(x, y)]
        })
        .collect();
    let late = |l: &Latency| thousands(quantile(&l.late, 0.99));
    rows.push(vec![
        "sender late p99 µs".into(),
        late(a),
        late(b),
        String::new(),
    ]);
    for (name, f) in [
        (
            "timed",
            (|l: &Latency| l.latencies.len() as u64) as fn(&Latency) -> u64,
        ),
        ("missing", |l| l.missing),
        ("errors", |l| l.errors),
    ] {
        rows.push(vec![
            name.into(),
            f(a).to_string(),
            f(b).to_string(),
            String::new(),
        ]);
    }
    let ratio_name = format!("{b_name} / {a_name}");
    print_table(&["latency", a_name, b_name, &ratio_name], &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_number_at_the_set_size() {
        let mut p = Vec::new();
        payload(42, 100, &mut p);
        assert_eq!(p.len(), 100);
        assert!(p.starts_with(b"~ol:0000000042x"));
        assert_eq!(seq_in(&p), Some(42));
        let line = [
            b"{\"event\":\"message\",\"content\":\"".as_slice(),
            &p,
            b"\"}",
        ]
        .concat();
        assert_eq!(seq_in(&line), Some(42));
        assert_eq!(seq_in(b"~ol:12"), None);
        assert_eq!(seq_in(b"{\"ok\":true}"), None);
        payload(7, 3, &mut p);
        assert_eq!(p, b"~ol:0000000007");
    }

    #[test]
    fn the_schedule_is_fixed_and_quantiles_are_nearest_rank() {
        let s = Schedule {
            rate: 10_000,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(2),
            size: 100,
        };
        assert_eq!(s.total(), 30_000);
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(10_000), Duration::from_secs(1));
        assert_eq!(s.due(3), Duration::from_micros(300));
        let sorted: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile(&sorted, 0.5), 50.0);
        assert_eq!(quantile(&sorted, 0.99), 99.0);
        assert_eq!(quantile(&sorted, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
    }
}
