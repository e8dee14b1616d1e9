//! `gotalk-bench http`: the HTTP shim under the original goTalk's own
//! load. P sender→receiver pairs, each on its own HTTP/1.1 keep-alive
//! connection, in a closed loop: a sender posts `/send` (the original's
//! form: `token`, `id`, `username`, `sendToId`, `content`) and posts the
//! next one when the reply is in; a receiver posts `/sync` (`token`, `id`)
//! and counts the messages in each reply. goTalk's receivers add `wait`
//! (its long-poll), so an empty `/sync` waits for a message instead of
//! coming straight back.
//!
//! `--peer-url http://HOST:PORT` runs the same load against another
//! server that speaks the original's forms, such as the original Go
//! goTalk (which ignores tokens and answers every `/sync` at once), and
//! prints both side by side with the ratio. One thread drives every
//! connection with `mio`, so the bench's own CPU stays small next to the
//! server's on a 2-core machine.

use crate::http_wire::{count_messages, pid_listening_on, post, take_response};
use crate::server::{self, Gotalk, Mode};
use crate::{print_table, thousands, wire, Opts};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The text of every message: 100 bytes, nothing to escape.
const CONTENT: &str = "goTalk-bench-http-message-0123456789-abcdefghijklmnopqrstuvwxyz-\
ABCDEFGHIJKLMNOPQRSTUVWXYZ-012345678";
/// goTalk's long-poll on an empty `/sync`, in milliseconds.
const WAIT_MS: &str = "5000";
/// LOGINs sent before their replies are read.
const LOGINS_AT_ONCE: usize = 8;
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The shape of one run.
#[derive(Clone, Copy)]
struct Load {
    pairs: usize,
    warmup: Duration,
    measure: Duration,
    max_messages: u64,
}

/// A server under load: where it listens, its process (for CPU), and the
/// request each connection posts over and over.
struct Target {
    addr: SocketAddr,
    pid: Option<u32>,
    sends: Vec<Vec<u8>>,
    syncs: Vec<Vec<u8>>,
}

/// What one run measured.
struct Outcome {
    seconds: f64,
    delivered_per_s: f64,
    sent_per_s: f64,
    syncs_per_s: f64,
    errors: u64,
    first_error: Option<String>,
    /// Server CPU over the window, in seconds per second (1.0 = one core).
    server_cores: Option<f64>,
    bench_cpu: String,
    other_cpu: String,
    /// `GET /healthz` round trips per second on as many connections in
    /// the same closed loop: the cheapest request the shim answers, so
    /// messages/s cannot pass half of it (a message costs a `/send` and a
    /// `/sync`). Measured on goTalk only.
    floor_per_s: Option<f64>,
}

impl Outcome {
    fn delivered_per_cpu_s(&self) -> Option<f64> {
        self.server_cores
            .filter(|&c| c > 0.0)
            .map(|c| self.delivered_per_s / c)
    }
}

/// One connection of the closed loop.
struct Conn {
    stream: TcpStream,
    sender: bool,
    request: Vec<u8>,
    /// Bytes of `request` written; its length once it is all out and the
    /// reply is awaited.
    written: usize,
    input: Vec<u8>,
    scratch: Vec<u8>,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    sent: u64,
    delivered: u64,
    syncs: u64,
    errors: u64,
}

#[derive(Clone, Copy)]
struct Snapshot {
    at: Instant,
    counts: Counts,
    server: Option<u64>,
    bench: Option<u64>,
    machine: Option<(u64, u64)>,
}

impl Snapshot {
    fn take(counts: Counts, pid: Option<u32>) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            counts,
            server: pid.and_then(|p| server::cpu_ticks(Some(p))),
            bench: server::cpu_ticks(None),
            machine: server::machine_ticks(),
        }
    }
}

/// Writes what the socket takes of the pending request.
fn write_request(conn: &mut Conn) -> Result<(), String> {
    while conn.written < conn.request.len() {
        match conn.stream.write(&conn.request[conn.written..]) {
            Ok(0) => return Err("the server closed a connection".into()),
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("write failed: {e}")),
        }
    }
    Ok(())
}

/// Reads until the socket is empty and handles every whole response:
/// counts it and posts the connection's next request.
fn read_responses(
    conn: &mut Conn,
    chunk: &mut [u8],
    counts: &mut Counts,
    first_error: &mut Option<String>,
) -> Result<(), String> {
    loop {
        match conn.stream.read(chunk) {
            Ok(0) => return Err("the server closed a connection".into()),
            Ok(n) => conn.input.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    let mut at = 0;
    while let Some(resp) = take_response(&conn.input[at..], &mut conn.scratch)? {
        let body = resp.body(&conn.input[at..], &conn.scratch);
        if resp.status != 200 {
            counts.errors += 1;
            first_error.get_or_insert_with(|| {
                format!("{} {}", resp.status, String::from_utf8_lossy(body))
            });
        } else if conn.sender {
            counts.sent += 1;
        } else {
            counts.syncs += 1;
            counts.delivered += count_messages(body);
        }
        if resp.close {
            return Err("the server closed a keep-alive connection".into());
        }
        at += resp.consumed;
        conn.written = 0;
        write_request(conn)?;
    }
    conn.input.drain(..at);
    Ok(())
}

/// Connects every sender and receiver and drives the closed loop: a
/// warm-up, then the measured window (or until `max_messages` are sent).
fn drive(target: &Target, load: &Load) -> Result<Outcome, String> {
    let mut poll = Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?;
    let requests = target
        .sends
        .iter()
        .map(|r| (true, r))
        .chain(target.syncs.iter().map(|r| (false, r)));
    let mut conns = Vec::new();
    for (i, (sender, request)) in requests.enumerate() {
        let s = std::net::TcpStream::connect_timeout(&target.addr, wire::REPLY_TIMEOUT)
            .map_err(|e| format!("cannot connect to {}: {e}", target.addr))?;
        let mut stream = crate::relay::plain(s)?;
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        conns.push(Conn {
            stream,
            sender,
            request: request.clone(),
            written: 0,
            input: Vec::with_capacity(READ_CHUNK),
            scratch: Vec::new(),
        });
    }
    let mut counts = Counts::default();
    let mut first_error = None;
    let mut chunk = vec![0u8; READ_CHUNK];
    for conn in &mut conns {
        write_request(conn)?;
    }
    let mut events = Events::with_capacity(1024);
    let warm_until = Instant::now() + load.warmup;
    let mut start: Option<Snapshot> = None;
    let end = loop {
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .map_err(|e| format!("poll failed: {e}"))?;
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            if event.is_writable() {
                write_request(conn)?;
            }
            if event.is_readable() {
                read_responses(conn, &mut chunk, &mut counts, &mut first_error)?;
            }
        }
        let now = Instant::now();
        match start {
            None if now >= warm_until => start = Some(Snapshot::take(counts, target.pid)),
            Some(s) if now >= s.at + load.measure || counts.sent >= load.max_messages => {
                break Snapshot::take(counts, target.pid)
            }
            _ if counts.sent >= load.max_messages => {
                return Err(format!(
                    "--max-messages {} were sent during the warm-up",
                    load.max_messages
                ))
            }
            _ => {}
        }
    };
    let start = start.expect("the window started");
    let seconds = end.at.duration_since(start.at).as_secs_f64();
    let per_s = |f: fn(&Counts) -> u64| (f(&end.counts) - f(&start.counts)) as f64 / seconds;
    let server_cores = match (start.server, end.server) {
        (Some(a), Some(b)) => Some((b - a) as f64 / server::TICKS_PER_SECOND / seconds),
        _ => None,
    };
    Ok(Outcome {
        seconds,
        delivered_per_s: per_s(|c| c.delivered),
        sent_per_s: per_s(|c| c.sent),
        syncs_per_s: per_s(|c| c.syncs),
        errors: end.counts.errors,
        first_error,
        server_cores,
        bench_cpu: server::cpu_percent(start.bench, end.bench, seconds),
        other_cpu: server::other_cpu(
            (start.machine, start.server, start.bench),
            (end.machine, end.server, end.bench),
            seconds,
        ),
        floor_per_s: None,
    })
}

/// Registers and logs in the pairs on a goTalk server; each sender posts
/// to its own receiver with its token, each receiver long-polls.
fn gotalk_target(server: &Gotalk, pairs: usize) -> Result<Target, String> {
    let senders: Vec<String> = (0..pairs).map(|i| format!("bench-s{i}")).collect();
    let receivers: Vec<String> = (0..pairs).map(|i| format!("bench-r{i}")).collect();
    let everyone: Vec<String> = senders.iter().chain(&receivers).cloned().collect();
    wire::register_all(server.addr, &everyone)?;
    let mut users = Vec::new();
    // A few at a time: the server queues at most --hash-queue-per-address
    // (16) password checks from one address.
    for names in everyone.chunks(LOGINS_AT_ONCE) {
        let mut clients = Vec::new();
        for name in names {
            let mut c = wire::Client::connect(server.addr)?;
            c.send(&format!("LOGIN {name} {}", wire::PASSWORD))?;
            clients.push(c);
        }
        for (c, name) in clients.iter_mut().zip(names) {
            let reply = c.reply().map_err(|e| format!("LOGIN {name}: {e}"))?;
            let token = reply["token"].as_str().map(str::to_string);
            let id = reply["user"]["id"].as_u64();
            let (Some(token), Some(id)) = (token, id) else {
                return Err(format!("LOGIN {name}: no token or user id in {reply}"));
            };
            users.push((token, id.to_string()));
        }
    }
    let (tx, rx) = users.split_at(pairs);
    let addr = server.addr;
    let sends = tx
        .iter()
        .zip(&senders)
        .zip(rx)
        .map(|(((token, id), name), (_, to))| send_form(addr, token, id, name, to))
        .collect();
    let syncs = rx
        .iter()
        .map(|(token, id)| {
            post(
                addr,
                "/sync",
                &[("token", token), ("id", id), ("wait", WAIT_MS)],
            )
        })
        .collect();
    Ok(Target {
        addr,
        pid: Some(server.pid()),
        sends,
        syncs,
    })
}

/// The original's `/send` form.
fn send_form(addr: SocketAddr, token: &str, id: &str, name: &str, to: &str) -> Vec<u8> {
    post(
        addr,
        "/send",
        &[
            ("token", token),
            ("id", id),
            ("username", name),
            ("sendToId", to),
            ("content", CONTENT),
        ],
    )
}

/// The same pairs on a server speaking the original's forms: senders are
/// users 1..=P, receivers 1001..; the original ignores the token. Its
/// mailboxes are made here one request at a time (a `/sync` per receiver
/// and one `/send`), since the original creates them in a map without a
/// lock and concurrent first requests could crash it.
fn peer_target(addr: SocketAddr, pairs: usize) -> Result<Target, String> {
    let ids = |base: usize| (0..pairs).map(move |i| (base + i).to_string());
    let sends: Vec<Vec<u8>> = ids(1)
        .zip(ids(1001))
        .map(|(id, to)| send_form(addr, "bench", &id, &format!("bench-s{id}"), &to))
        .collect();
    let syncs: Vec<Vec<u8>> = ids(1001)
        .map(|id| post(addr, "/sync", &[("token", "bench"), ("id", &id)]))
        .collect();
    let mut s = std::net::TcpStream::connect_timeout(&addr, wire::REPLY_TIMEOUT)
        .map_err(|e| format!("cannot connect to the peer at {addr}: {e}"))?;
    s.set_read_timeout(Some(wire::REPLY_TIMEOUT))
        .map_err(|e| e.to_string())?;
    for request in syncs.iter().chain(sends.first()) {
        blocking_request(&mut s, request)?;
    }
    Ok(Target {
        addr,
        pid: pid_listening_on(addr.port()),
        sends,
        syncs,
    })
}

/// Posts one request on a blocking socket and waits for a 200.
fn blocking_request(s: &mut std::net::TcpStream, request: &[u8]) -> Result<(), String> {
    s.write_all(request)
        .map_err(|e| format!("write to the peer failed: {e}"))?;
    let (mut input, mut scratch, mut buf) = (Vec::new(), Vec::new(), [0u8; 4096]);
    loop {
        if let Some(resp) = take_response(&input, &mut scratch)? {
            return match resp.status {
                200 => Ok(()),
                status => Err(format!(
                    "the peer answered {status}: {}",
                    String::from_utf8_lossy(resp.body(&input, &scratch))
                )),
            };
        }
        match s.read(&mut buf) {
            Ok(0) => return Err("the peer closed the connection".into()),
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("no answer from the peer: {e}")),
        }
    }
}

/// `http://HOST:PORT` (a path after it is ignored) → its address.
fn peer_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--peer-url '{url}': only http://HOST:PORT is supported"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("--peer-url '{url}': cannot resolve {hostport}"))
}

/// One round on a fresh goTalk server.
fn gotalk_round(opts: &Opts, mode: Mode, load: &Load) -> Result<Outcome, String> {
    let server = Gotalk::start(&opts.server, mode)?;
    let run = || {
        let mut outcome = drive(&gotalk_target(&server, load.pairs)?, load)?;
        let health = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
        let floor = Target {
            addr: server.addr,
            pid: Some(server.pid()),
            sends: vec![health.into_bytes(); 2 * load.pairs],
            syncs: Vec::new(),
        };
        outcome.floor_per_s = Some(drive(&floor, load)?.sent_per_s);
        Ok(outcome)
    };
    run().map_err(|e: String| format!("gotalk: {e}\nserver log:\n{}", server.log_tail()))
}

fn best(a: Option<Outcome>, b: Outcome) -> Option<Outcome> {
    match a {
        Some(a) if a.delivered_per_s >= b.delivered_per_s => Some(a),
        _ => Some(b),
    }
}

pub fn run(opts: &Opts) -> Result<(), String> {
    let load = Load {
        pairs: opts.senders.unwrap_or(16),
        warmup: Duration::from_secs_f64(opts.warmup.unwrap_or(1.0)),
        measure: Duration::from_secs_f64(opts.seconds.unwrap_or(5.0)),
        max_messages: opts.max_messages,
    };
    let mode = if opts.durable {
        Mode::Durable
    } else {
        Mode::Memory
    };
    let peer = opts.peer_url.as_deref().map(peer_addr).transpose()?;
    let (mut ours, mut theirs) = (None, None);
    let rounds = opts.rounds.unwrap_or(1);
    for _ in 0..rounds {
        ours = best(ours, gotalk_round(opts, mode, &load)?);
        if let Some(addr) = peer {
            let target = peer_target(addr, load.pairs)?;
            theirs = best(
                theirs,
                drive(&target, &load).map_err(|e| format!("peer: {e}"))?,
            );
        }
    }
    let ours = ours.ok_or("no round ran")?;
    println!(
        "http: {p} senders -> {p} receivers, one HTTP/1.1 keep-alive connection each, one \
         request in flight (closed loop), {} content; gotalk {}; {:.1} s measured after {:.1} s \
         warm-up{}",
        CONTENT.len(),
        mode.name(),
        ours.seconds,
        load.warmup.as_secs_f64(),
        if rounds > 1 {
            format!(", best of {rounds} interleaved rounds")
        } else {
            String::new()
        },
        p = load.pairs,
    );
    print_outcomes(
        &ours,
        theirs.as_ref().map(|t| (opts.peer_url.as_deref(), t)),
    );
    Ok(())
}

/// A figure of an outcome, if it was measured.
type Figure = fn(&Outcome) -> Option<f64>;

fn print_outcomes(ours: &Outcome, peer: Option<(Option<&str>, &Outcome)>) {
    let rate = |v: f64| thousands(v);
    let cores = |o: &Outcome| {
        o.server_cores
            .map_or("n/a".into(), |c| format!("{:.0}% of a core", c * 100.0))
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => String::new(),
    };
    let rows: [(&str, Figure); 5] = [
        ("messages delivered/s", |o| Some(o.delivered_per_s)),
        ("sends answered/s", |o| Some(o.sent_per_s)),
        ("/sync requests/s", |o| Some(o.syncs_per_s)),
        (
            "delivered per server CPU-second",
            Outcome::delivered_per_cpu_s,
        ),
        ("GET /healthz round trips/s (floor)", |o| o.floor_per_s),
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, f)| {
            let mut row = vec![name.to_string(), f(ours).map_or("n/a".into(), rate)];
            if let Some((_, p)) = peer {
                row.push(f(p).map_or("n/a".into(), rate));
                row.push(ratio(f(ours), f(p)));
            }
            row
        })
        .chain(
            [
                ("server CPU", cores as fn(&Outcome) -> String),
                ("bench CPU", |o| o.bench_cpu.clone()),
                ("other CPU", |o| o.other_cpu.clone()),
                ("errors", |o| o.errors.to_string()),
            ]
            .iter()
            .map(|(name, f)| {
                let mut row = vec![name.to_string(), f(ours)];
                if let Some((_, p)) = peer {
                    row.extend([f(p), String::new()]);
                }
                row
            }),
        )
        .collect();
    match peer {
        Some((url, _)) => print_table(
            &["metric", "gotalk", url.unwrap_or("peer"), "ratio"],
            &table,
        ),
        None => print_table(&["metric", "gotalk"], &table),
    }
    for (name, o) in [("gotalk", Some(ours)), ("peer", peer.map(|p| p.1))] {
        if let Some(e) = o.and_then(|o| o.first_error.as_ref()) {
            println!("first error ({name}): {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_name_an_address() {
        assert_eq!(
            peer_addr("http://127.0.0.1:9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(
            peer_addr("http://127.0.0.1:8080/send").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(peer_addr("https://127.0.0.1:9000").is_err());
        assert!(peer_addr("127.0.0.1:9000").is_err());
    }

    #[test]
    fn the_content_is_100_bytes_that_need_no_escaping() {
        assert_eq!(CONTENT.len(), 100);
        assert_eq!(crate::http_wire::urlencode(CONTENT), CONTENT);
    }
}
