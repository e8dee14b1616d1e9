//! The attacks of the `abuse` scenario, one function each, as a hostile
//! client would run them: only through the wire protocol, from 127.0.0.1,
//! with the attacker's one account (or none). Each checks its [`Guard`]
//! before every step and has its own count limit, so it ends by itself;
//! sockets it wants kept open during the measurements go back in
//! [`Outcome::held`].

use super::priority::as_attacker;
use super::probe::{self, io_key, Conn, Guard, Tally};
use super::{Ctx, LoginSample, Outcome};
use crate::thousands;
use crate::wire::{self, find_newline, is_error_reply};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An attacker's connect gives up after this long (long enough for the
/// one-second SYN retransmit after a full listen backlog).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// An attacker waits this long for a reply it needs.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// This many failed cycles in a row end an attack early: the server no
/// longer serves anyone (the lock-out), and the rest would only time out.
const GIVE_UP_AFTER: u64 = 20;
/// Most time the silent attack spends opening its sockets.
const SILENT_OPEN_TIME: Duration = Duration::from_secs(20);
/// Content of the large messages: 60,000 bytes, under the 64 KiB cap.
const BIG: usize = 60_000;
/// Most SENDs of the client_id attack, each with a fresh id.
const MAX_CLIENT_IDS: u64 = 3_000_000;
/// A token-bearing ACK every this many SENDs keeps the mailbox from its
/// message limit, so only client_ids pile up.
const ACK_EVERY: u64 = 1000;

pub(super) fn attacker_connect(addr: SocketAddr) -> Result<TcpStream, String> {
    TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| io_key("connect", &e))
}

/// A storming attacker gives a connect up after this long and starts
/// another at once.
const STORM_CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// A storming attacker's connect. One left unanswered (the server's kernel
/// drops a storming address's connects, `--connection-storm-cuts`) is the
/// server's answer, tallied, not a failure: the storm goes on.
pub(super) fn storm_connect(
    addr: SocketAddr,
    tally: &mut Tally,
) -> Result<Option<TcpStream>, String> {
    match TcpStream::connect_timeout(&addr, STORM_CONNECT_TIMEOUT) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            tally.add("connect unanswered");
            Ok(None)
        }
        Err(e) => Err(io_key("connect", &e)),
    }
}

/// A JSON SEND to `to` of `content` bytes of `fill`, on the token's behalf
/// (the connection stays unbound, so no pushes come back to it).
fn token_send(to: &str, token: &str, fill: char, len: usize) -> Vec<u8> {
    let content: String = std::iter::repeat_n(fill, len).collect();
    format!(
        "{{\"cmd\":\"send\",\"to\":\"{to}\",\"content\":\"{content}\",\"token\":\"{token}\"}}\n"
    )
    .into_bytes()
}

/// What [`cycles`] did.
pub(super) struct Cycles {
    /// Cycles that succeeded.
    pub done: u64,
    /// Failures by kind.
    pub errors: Tally,
    /// Whether it stopped after [`GIVE_UP_AFTER`] failures in a row.
    gave_up: bool,
}

impl Cycles {
    /// A note saying why the cycles stopped early, if they did.
    pub(super) fn note(&self, what: &str) -> Option<String> {
        self.gave_up.then(|| {
            format!("{what} stopped early: {GIVE_UP_AFTER} in a row failed (the server no longer answered)")
        })
    }
}

/// Runs `cycle(n)` from `threads` threads until `max` cycles, until
/// `keep_going` says no, or until [`GIVE_UP_AFTER`] cycles in a row fail.
pub(super) fn cycles(
    threads: usize,
    max: u64,
    keep_going: &(dyn Fn() -> bool + Sync),
    cycle: &(dyn Fn(u64, &mut Tally) -> Result<(), String> + Sync),
) -> Cycles {
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let failing = AtomicU64::new(0);
    let gave_up = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                as_attacker();
                let mut local = Tally::default();
                while keep_going() && !gave_up.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= max {
                        break;
                    }
                    match cycle(n, &mut local) {
                        Ok(()) => {
                            failing.store(0, Ordering::Relaxed);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(key) => {
                            local.add(key);
                            if failing.fetch_add(1, Ordering::Relaxed) + 1 >= GIVE_UP_AFTER {
                                gave_up.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
                tally.lock().expect("lock").merge(local);
            });
        }
    });
    Cycles {
        done: done.load(Ordering::Relaxed),
        errors: tally.into_inner().expect("lock"),
        gave_up: gave_up.load(Ordering::Relaxed),
    }
}

/// Connect, `AUTH`, `SYNC` with a 300 s wait, close. The AUTH reply is
/// awaited, so the server has read the SYNC too; a SYNC refused at once
/// is tallied when its reply came in the same read.
fn abandon_line_wait(addr: SocketAddr, request: &[u8], tally: &mut Tally) -> Result<(), String> {
    let mut s = attacker_connect(addr)?;
    s.set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(request).map_err(|e| io_key("write", &e))?;
    let mut reader = BufReader::with_capacity(4096, s);
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line) {
        Ok(0) => return Err("closed before the AUTH reply".into()),
        Ok(_) => {}
        Err(e) => return Err(io_key("AUTH reply", &e)),
    }
    if is_error_reply(&line) {
        return Err(probe::error_code(&line));
    }
    let rest = reader.buffer();
    if let Some(end) = find_newline(rest) {
        if is_error_reply(&rest[..end]) {
            tally.add(format!("SYNC {}", probe::error_code(&rest[..end])));
        }
    }
    Ok(())
}

/// Connect, `POST /sync` with `wait=300000`, close without reading.
fn abandon_http_wait(addr: SocketAddr, request: &[u8]) -> Result<(), String> {
    let mut s = attacker_connect(addr)?;
    s.write_all(request).map_err(|e| io_key("write", &e))
}

fn line_wait_request(token: &str) -> Vec<u8> {
    format!("AUTH {token}\n{{\"cmd\":\"sync\",\"wait_ms\":300000}}\n").into_bytes()
}

fn http_wait_request(token: &str) -> Vec<u8> {
    let body = format!("token={token}&wait=300000");
    format!(
        "POST /sync HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Attack 1: long-polls abandoned: line `SYNC` waits and HTTP `/sync?wait`
/// alternately, each connection closed at once.
pub fn longpoll(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    const MAX: u64 = 20_000;
    let line = line_wait_request(&ctx.token);
    let http = http_wait_request(&ctx.token);
    let c = cycles(4, MAX, &|| guard.go(), &|n, tally| {
        if n.is_multiple_of(2) {
            abandon_line_wait(ctx.addr, &line, tally)
        } else {
            abandon_http_wait(ctx.addr, &http)
        }
    });
    let mut notes = vec![format!(
        "connect, then `AUTH` + `SYNC wait_ms=300000` (line) or `POST /sync wait=300000` \
         (HTTP), alternately, then close; {} cycles at most",
        thousands(MAX as f64)
    )];
    notes.extend(c.note("the cycles"));
    Ok(Outcome {
        ops: format!("{} cycles", thousands(c.done as f64)),
        errors: c.errors,
        notes,
        ..Outcome::default()
    })
}

/// Attack 2: silent sockets: half say nothing, half send one `G`; all are
/// held for the attack's time once they are open. Opening them has its
/// own bound ([`SILENT_OPEN_TIME`]): on a busy machine a full listen
/// backlog costs a connect a one-second SYN retransmit, so sixteen threads
/// connect at once.
pub fn silent(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    let n = 2_000.min(ctx.fd_room);
    let held = Mutex::new(Vec::with_capacity(n));
    let open_until = Instant::now() + SILENT_OPEN_TIME.max(guard.length);
    let opening = || !guard.halted() && Instant::now() < open_until;
    let c = cycles(16, n as u64, &opening, &|i, tally| {
        let mut s = attacker_connect(ctx.addr)?;
        if i % 2 == 1 {
            if let Err(e) = s.write_all(b"G") {
                tally.add(io_key("write", &e));
            }
        }
        held.lock().expect("lock").push(s);
        Ok(())
    });
    let hold_until = Instant::now() + guard.length;
    while !guard.halted() && Instant::now() < hold_until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let held = held.into_inner().expect("lock");
    let closed = held
        .iter()
        .filter(|s| probe::peer_closed(s) == Some(true))
        .count();
    let opened = c.done;
    let mut notes = vec![format!(
        "{opened} sockets opened (of {n} planned; the bench's own open-file room is {}), \
             half silent, half sent only `G`, held for the attack's time once open; \
             {closed} of them closed by the server by the end",
        ctx.fd_room
    )];
    notes.extend(c.note("opening"));
    Ok(Outcome {
        ops: format!("{} sockets", thousands(opened as f64)),
        errors: c.errors,
        notes,
        held,
        ..Outcome::default()
    })
}

/// Attack 3: waiters abandoned, then one text-form SEND of 60,000 control
/// characters to their user.
pub fn waiters(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    const WAITERS: u64 = 2_000;
    let line = line_wait_request(&ctx.token);
    // Leave a quarter of the attack's time (at most a second) for the
    // SEND and its effect.
    let left = guard.until.saturating_duration_since(Instant::now());
    let phase_end = guard.until - (left / 4).min(Duration::from_secs(1));
    let c = cycles(
        4,
        WAITERS,
        &|| guard.go() && Instant::now() < phase_end,
        &|_, tally| abandon_line_wait(ctx.addr, &line, tally),
    );
    let done = c.done;
    let mut notes = vec![format!(
        "{done} waiters abandoned (`AUTH` + `SYNC wait_ms=300000`, close), then one \
         text-form SEND of {BIG} control characters to their user"
    )];
    notes.extend(c.note("abandoning waiters"));
    let mut errors = c.errors;
    // The text form carries control characters raw; it needs a bound
    // connection, which also gets (and here reads) the message's push.
    let mut sender = Conn::new(attacker_connect(ctx.addr)?, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let mut t0 = Instant::now();
    let auth_then_send = match sender.request(format!("AUTH {}\n", ctx.token).as_bytes()) {
        Ok(Ok(_)) => {
            t0 = Instant::now();
            sender.request(&control_send(&ctx.user))
        }
        Ok(Err(code)) => Ok(Err(format!("AUTH {code}"))),
        Err(e) => Err(e),
    };
    match auth_then_send {
        Ok(Ok(_)) => notes.push(format!(
            "the SEND was answered in {:.1} ms",
            t0.elapsed().as_secs_f64() * 1e3
        )),
        Ok(Err(code)) => {
            errors.add(format!("SEND {code}"));
            notes.push(format!("the SEND was refused: {code}"));
        }
        Err(e) => {
            errors.add(format!("SEND {e}"));
            notes.push(format!("the SEND got no reply: {e}"));
        }
    }
    guard.wait_out();
    Ok(Outcome {
        ops: format!("{} waiters + 1 SEND", thousands(done as f64)),
        errors,
        notes,
        ..Outcome::default()
    })
}

/// Attack 4: sockets bound to one user that never read, while large SENDs to
/// that user flow.
pub fn unread(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    const SOCKETS: usize = 200;
    /// About 8.6 MiB: just past what the kernel buffers take, under the
    /// default per-connection output cap.
    const MESSAGES: usize = 150;
    let n = SOCKETS.min(ctx.fd_room);
    let auth = format!("AUTH {}\n", ctx.token);
    let mut held = Vec::with_capacity(n);
    let mut errors = Tally::default();
    for _ in 0..n {
        if !guard.go() {
            break;
        }
        let stream = match attacker_connect(ctx.addr) {
            Ok(s) => s,
            Err(key) => {
                errors.add(key);
                continue;
            }
        };
        let mut conn = Conn::new(stream, REPLY_TIMEOUT).map_err(|e| e.to_string())?;
        match conn.request(auth.as_bytes()) {
            Ok(Ok(_)) => held.push(conn.into_stream()?),
            Ok(Err(code)) => errors.add(format!("AUTH {code}")),
            Err(e) => errors.add(format!("AUTH {e}")),
        }
    }
    let bound = held.len();
    let mut sender = Conn::new(attacker_connect(ctx.addr)?, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let request = token_send(&ctx.user, &ctx.token, 'u', BIG);
    let mut sent = 0;
    for _ in 0..MESSAGES {
        if !guard.go() {
            break;
        }
        match sender.request(&request) {
            Ok(Ok(_)) => sent += 1,
            Ok(Err(code)) => errors.add(format!("SEND {code}")),
            Err(e) => {
                errors.add(format!("SEND {e}"));
                break;
            }
        }
    }
    guard.wait_out();
    let closed = held
        .iter()
        .filter(|s| probe::peer_closed(s) == Some(true))
        .count();
    Ok(Outcome {
        ops: format!("{bound} sockets, {sent} SENDs"),
        errors,
        notes: vec![format!(
            "{bound} sockets AUTHed as one user never read; {sent} SENDs of {BIG} bytes to \
             that user ({:.1} MiB uploaded once); {closed} of the sockets closed by the \
             server by the end",
            (sent * BIG) as f64 / 1_048_576.0
        )],
        held,
        ..Outcome::default()
    })
}

/// What [`pump`] saw.
#[derive(Default)]
pub(super) struct Pumped {
    pub sent: u64,
    pub ok: u64,
    pub errors: Tally,
    /// The request after which the first error reply came.
    pub first_error_at: Option<(u64, String)>,
    pub unanswered: u64,
}

/// Pipelines requests `make(n)` on `stream`, at most `window` unanswered,
/// until `max`, the guard, or (with `stop_on_error`) the first error
/// reply; reads replies (and skips events) on this thread while a second
/// one writes. Waits at most 10 s past the guard's time for the last
/// replies.
pub(super) fn pump(
    stream: TcpStream,
    guard: &Guard,
    window: u64,
    max: u64,
    stop_on_error: bool,
    make: &(dyn Fn(u64, &mut Vec<u8>) + Sync),
) -> Result<Pumped, String> {
    let timeout = Duration::from_millis(100);
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let sent = AtomicU64::new(0);
    let answered = AtomicU64::new(0);
    let writing = AtomicBool::new(true);
    let stop = AtomicBool::new(false);
    let mut out = Pumped::default();
    let write_error = Mutex::new(None);
    std::thread::scope(|s| {
        s.spawn(|| {
            as_attacker();
            let mut buf = Vec::with_capacity(256 * 1024);
            let mut n = 0;
            'write: while n < max {
                loop {
                    if !guard.go() || stop.load(Ordering::Relaxed) {
                        break 'write;
                    }
                    if n.saturating_sub(answered.load(Ordering::Relaxed)) < window {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
                buf.clear();
                let room =
                    window.saturating_sub(n.saturating_sub(answered.load(Ordering::Relaxed)));
                let upto = (n + room.min(64)).min(max);
                while n < upto {
                    make(n, &mut buf);
                    n += 1;
                }
                if let Err(e) = writer.write_all(&buf) {
                    *write_error.lock().expect("lock") = Some(io_key("write", &e));
                    break;
                }
                sent.store(n, Ordering::Relaxed);
            }
            writing.store(false, Ordering::Release);
        });
        // The reading side is the attacker's too: its own thread, so the
        // caller keeps its priority.
        s.spawn(|| {
            as_attacker();
            let mut reader = BufReader::with_capacity(1 << 20, stream);
            let mut line = Vec::with_capacity(512 * 1024);
            let hard_end = guard.until + Duration::from_secs(10);
            loop {
                let done_writing = !writing.load(Ordering::Acquire);
                let got = answered.load(Ordering::Relaxed);
                if done_writing && got >= sent.load(Ordering::Relaxed) {
                    break;
                }
                if Instant::now() >= hard_end {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => {
                        out.errors.add("closed by the server");
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    Ok(_) if line.last() == Some(&b'\n') => {}
                    Ok(_) => continue,
                    // A timeout keeps the partial line in `line`.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue
                    }
                    Err(e) => {
                        out.errors.add(io_key("read", &e));
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                }
                if line.starts_with(br#"{"ok":true"#) {
                    out.ok += 1;
                    answered.fetch_add(1, Ordering::Relaxed);
                } else if is_error_reply(&line) {
                    let code = probe::error_code(&line);
                    let n = answered.fetch_add(1, Ordering::Relaxed) + 1;
                    if out.first_error_at.is_none() {
                        out.first_error_at = Some((n, code.clone()));
                    }
                    out.errors.add(code);
                    if stop_on_error {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                line.clear();
            }
        });
    });
    if let Some(e) = write_error.into_inner().expect("lock") {
        out.errors.add(e);
    }
    out.sent = sent.load(Ordering::Relaxed);
    out.unanswered = out.sent.saturating_sub(answered.load(Ordering::Relaxed));
    Ok(out)
}

/// 60,000 control characters (no NUL, `\n` or `\r`), each stored as a
/// six-byte JSON escape.
fn control_content() -> Vec<u8> {
    let alphabet: Vec<u8> = (1u8..32).filter(|b| !matches!(b, b'\n' | b'\r')).collect();
    alphabet.iter().copied().cycle().take(BIG).collect()
}

/// A text-form SEND to `to` of [`control_content`].
fn control_send(to: &str) -> Vec<u8> {
    let mut line = format!("SEND {to} ").into_bytes();
    line.extend_from_slice(&control_content());
    line.push(b'\n');
    line
}

/// ACKs every message the user holds: an `upto` above the newest id
/// acknowledges the messages that exist.
const ACK_ALL: &str = "1000000000000000";

/// Attack 5: a mailbox filled with 60,000-byte messages of control characters,
/// text form, until a SEND is refused (the sender's pending budget); then
/// emptied with one ACK and filled again, for the attack's time. The first
/// fill is the burst; the ones after it keep the loop rendering such
/// messages for the whole measurement, so its p99 is a percentile of
/// thousands of PINGs rather than the slowest of a few dozen.
pub fn mailbox(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    const MAX: u64 = 20_000;
    let mut conn =
        Conn::new(attacker_connect(ctx.addr)?, REPLY_TIMEOUT).map_err(|e| e.to_string())?;
    if let Err(code) = conn.request(format!("AUTH {}\n", ctx.token).as_bytes())? {
        let mut errors = Tally::default();
        errors.add(format!("AUTH {code}"));
        return Ok(Outcome {
            ops: "0 messages stored".into(),
            errors,
            notes: vec!["the attacker's AUTH was refused, so no text-form SEND".into()],
            ..Outcome::default()
        });
    }
    let stream = conn.into_stream()?;
    // The ACKs go on a connection of their own, unbound (the token in the
    // request), so no pushes come back on it.
    let mut acker =
        Conn::new(attacker_connect(ctx.addr)?, REPLY_TIMEOUT).map_err(|e| e.to_string())?;
    let ack_all = format!(
        "{{\"cmd\":\"ack\",\"token\":\"{}\",\"upto\":{ACK_ALL}}}\n",
        ctx.token
    );
    let line = control_send(&ctx.user);
    let make = |_: u64, out: &mut Vec<u8>| out.extend_from_slice(&line);
    let mut total = Pumped::default();
    let mut fills = 0u64;
    let mut first_fill = None;
    while guard.go() && total.sent < MAX {
        let clone = stream.try_clone().map_err(|e| e.to_string())?;
        let p = pump(clone, guard, 8, MAX - total.sent, true, &make)?;
        fills += 1;
        if first_fill.is_none() {
            first_fill = Some((p.ok, p.first_error_at.clone()));
        }
        total.sent += p.sent;
        total.ok += p.ok;
        total.unanswered += p.unanswered;
        total.errors.merge(p.errors);
        let refused = p.first_error_at.is_some();
        if !refused || p.unanswered > 0 {
            break;
        }
        if let Err(code) = acker.request(ack_all.as_bytes())? {
            total.errors.add(format!("ACK {code}"));
            break;
        }
    }
    let mut notes = vec![format!(
        "text-form SENDs of {BIG} control characters to the attacker's own (bound) \
         connection's user; {:.1} MiB uploaded in {} (the mailbox emptied with one ACK after \
         each refusal)",
        (total.sent as usize * line.len()) as f64 / 1_048_576.0,
        fills_text(fills)
    )];
    match first_fill {
        Some((ok, Some((n, code)))) => notes.push(format!(
            "first fill: {ok} messages stored, then refused ({code}) at request {n}"
        )),
        _ => notes.push("never refused within the attack's limits".into()),
    }
    if let Some(dir) = &ctx.data_dir {
        notes.push(format!(
            "data directory at the end: {:.1} MiB",
            crate::server::dir_bytes(dir) as f64 / 1_048_576.0
        ));
    }
    if total.unanswered > 0 {
        notes.push(format!("{} SENDs unanswered", total.unanswered));
    }
    Ok(Outcome {
        ops: format!(
            "{} messages stored in {}",
            thousands(total.ok as f64),
            fills_text(fills)
        ),
        errors: total.errors,
        notes,
        ..Outcome::default()
    })
}

/// "1 fill", "5 fills".
fn fills_text(fills: u64) -> String {
    format!("{fills} fill{}", if fills == 1 { "" } else { "s" })
}

/// Attack 6: a fresh `client_id` on every SEND (an ACK now and then keeps the
/// mailbox empty, so only the ids accumulate).
pub fn client_id(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    let stream = attacker_connect(ctx.addr)?;
    let _ = stream.set_nodelay(true);
    let nonce = std::process::id();
    let (user, token) = (&ctx.user, &ctx.token);
    let p = pump(stream, guard, 256, MAX_CLIENT_IDS, false, &|n, out| {
        if n % ACK_EVERY == ACK_EVERY - 1 {
            let _ = writeln!(
                out,
                "{{\"cmd\":\"ack\",\"upto\":9007199254740991,\"token\":\"{token}\"}}"
            );
        } else {
            let _ = writeln!(
                out,
                "{{\"cmd\":\"send\",\"to\":\"{user}\",\"content\":\"x\",\
                 \"client_id\":\"bench-{nonce}-{n}\",\"token\":\"{token}\"}}"
            );
        }
    })?;
    let mut notes = vec![format!(
        "JSON SENDs of one byte to the attacker's own user, each with a new client_id, \
         256 in flight; one ACK every {ACK_EVERY}"
    )];
    if p.unanswered > 0 {
        notes.push(format!("{} requests unanswered", p.unanswered));
    }
    Ok(Outcome {
        ops: format!("{} SENDs", thousands((p.ok - p.ok / ACK_EVERY) as f64)),
        errors: p.errors,
        notes,
        ..Outcome::default()
    })
}

/// How long a genuine user keeps trying to log in.
pub(super) const LOGIN_PATIENCE: Duration = Duration::from_secs(30);
/// The pause before a genuine user tries again after `rate_limited`.
pub(super) const LOGIN_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One genuine user logging in from [`probe::OTHER_HOST`] with the right
/// password, as a client would: on `rate_limited` it pauses and tries
/// again on the same connection, for at most [`LOGIN_PATIENCE`].
pub(super) fn genuine_login(addr: SocketAddr, name: &str) -> LoginSample {
    let t0 = Instant::now();
    let done = |refusals, result| LoginSample {
        took: t0.elapsed(),
        refusals,
        result,
    };
    let conn = probe::connect_other(addr, LOGIN_PATIENCE)
        .map_err(|e| io_key("connect", &e))
        .and_then(|s| Conn::new(s, LOGIN_PATIENCE).map_err(|e| e.to_string()));
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => return done(0, Err(e)),
    };
    let request = format!("LOGIN {name} {}\n", wire::PASSWORD).into_bytes();
    let mut refusals = 0;
    loop {
        // The patience bounds the whole login, waits for replies included.
        let left = LOGIN_PATIENCE.saturating_sub(t0.elapsed());
        if let Err(e) = conn.set_timeout(left.max(Duration::from_millis(10))) {
            return done(refusals, Err(e.to_string()));
        }
        match conn.request(&request) {
            Ok(Ok(_)) => return done(refusals, Ok(())),
            Ok(Err(code))
                if code == "rate_limited" && t0.elapsed() + LOGIN_RETRY_PAUSE < LOGIN_PATIENCE =>
            {
                refusals += 1;
                std::thread::sleep(LOGIN_RETRY_PAUSE);
            }
            Ok(Err(code)) => return done(refusals, Err(code)),
            Err(e) => return done(refusals, Err(e)),
        }
    }
}

/// Connect, `LOGIN` with a wrong password, close; the reply is looked for
/// for 2 ms only (a refusal comes at once; a password check does not).
fn wrong_login(addr: SocketAddr, request: &[u8], tally: &mut Tally) -> Result<(), String> {
    let Some(mut s) = storm_connect(addr, tally)? else {
        return Ok(());
    };
    if s.write_all(request).is_err() {
        // Closed at accept (--connections-per-address-per-second): the
        // server's answer, not a failure.
        tally.add("closed at once");
        return Ok(());
    }
    let _ = s.set_read_timeout(Some(Duration::from_millis(2)));
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => tally.add("closed at once"),
        Ok(n) if is_error_reply(&buf[..n]) => tally.add(probe::error_code(&buf[..n])),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => tally.add("closed at once"),
        _ => {}
    }
    Ok(())
}

/// Attack 7: LOGIN flood with a wrong password from 32 threads, while genuine
/// logins (from another address) are timed. The flood lasts for the
/// attack's time and until the last genuine login is done, even past the
/// attack's time (at most 40 s past), so every sample is taken under it.
pub fn login_flood(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    const THREADS: usize = 32;
    const MAX: u64 = 400_000;
    const SAMPLES: usize = 8;
    let request = format!("LOGIN {} wrong-{}\n", ctx.user, wire::PASSWORD).into_bytes();
    let stop = AtomicBool::new(false);
    let hard_end = guard.until + Duration::from_secs(40);
    let mut samples = Vec::new();
    let c = std::thread::scope(|s| {
        let flood = s.spawn(|| {
            cycles(
                THREADS,
                MAX,
                &|| !stop.load(Ordering::Relaxed) && Instant::now() < hard_end,
                &|_, tally| wrong_login(ctx.addr, &request, tally),
            )
        });
        // Let the flood fill the password queue first.
        let warm = Instant::now() + Duration::from_millis(500);
        while guard.go() && Instant::now() < warm {
            std::thread::sleep(Duration::from_millis(10));
        }
        while samples.len() < SAMPLES && (samples.is_empty() || guard.go()) {
            samples.push(genuine_login(ctx.addr, &ctx.bystander));
            std::thread::sleep(Duration::from_millis(300));
        }
        guard.wait_out();
        stop.store(true, Ordering::Relaxed);
        flood.join().expect("the flood threads do not panic")
    });
    let mut notes = vec![format!(
        "{THREADS} threads: connect, `LOGIN` with a wrong password, close (a reply is \
         looked for 2 ms); {} genuine logins from 127.0.0.2 meanwhile, one after another, \
         each retrying `rate_limited` every {} ms for up to {} s",
        samples.len(),
        LOGIN_RETRY_PAUSE.as_millis(),
        LOGIN_PATIENCE.as_secs()
    )];
    notes.extend(c.note("the flood"));
    Ok(Outcome {
        ops: format!(
            "{} tries, {} connected",
            thousands(c.done as f64),
            thousands(c.done.saturating_sub(c.errors.count("connect unanswered")) as f64)
        ),
        errors: c.errors,
        notes,
        logins: samples,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_are_counted_in_words() {
        assert_eq!(fills_text(1), "1 fill");
        assert_eq!(fills_text(5), "5 fills");
    }

    #[test]
    fn control_content_has_no_line_breaks_or_nul() {
        let c = control_content();
        assert_eq!(c.len(), BIG);
        assert!(c
            .iter()
            .all(|&b| b > 0 && b < 32 && b != b'\n' && b != b'\r'));
    }

    #[test]
    fn requests_are_one_line_each() {
        let send = token_send("abuser", "tok", 'w', 10);
        assert_eq!(
            send,
            b"{\"cmd\":\"send\",\"to\":\"abuser\",\"content\":\"wwwwwwwwww\",\"token\":\"tok\"}\n"
        );
        assert_eq!(
            line_wait_request("t")
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            2
        );
        let http = http_wait_request("t");
        assert!(http.ends_with(b"\r\n\r\ntoken=t&wait=300000"));
    }
}
