//! The `idle` scenario: what an idle connection costs the server in
//! memory. It opens N connections, half of them bound to a user with AUTH
//! (LOGIN is argon2 and deliberately slow, so a few users log in once and
//! the rest reuse their tokens) and half after one PING, and reads the
//! server's VmRSS before and after. The baseline is taken after the logins,
//! because password hashing leaves its own memory behind (see
//! BENCHMARKS.md).
//!
//! [`open_idle`] and [`measure`] take any [`Handshake`], so `compare` uses
//! them for Mosquitto, Redis and NATS too.

use crate::relay::login_all;
use crate::server::{self, Gotalk, Mode};
use crate::wire;
use crate::{print_table, thousands, Opts};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Connections opened before their replies are read.
const CHUNK: usize = 256;
/// Longest wait for one handshake reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for the server to settle before RSS is read.
const SETTLE: Duration = Duration::from_secs(1);
/// Users whose tokens the AUTHed connections share.
const USERS: usize = 4;
/// Open files the bench needs beyond the connections themselves.
const SPARE_FILES: u64 = 200;

/// How a client opens a connection and what reply says it is ready.
pub trait Handshake {
    /// Bytes the client writes first on connection `i`.
    fn request(&self, i: usize) -> Vec<u8>;
    /// Whether `got` (every byte read so far) completes the handshake.
    fn complete(&self, got: &[u8]) -> Option<Result<(), String>>;
}

/// Server RSS before, with, and after closing the idle connections.
pub struct IdleOutcome {
    pub conns: usize,
    pub before_kib: u64,
    pub with_kib: u64,
    pub after_close_kib: u64,
    pub open_seconds: f64,
}

impl IdleOutcome {
    pub fn bytes_per_conn(&self) -> f64 {
        (self.with_kib as f64 - self.before_kib as f64) * 1024.0 / self.conns as f64
    }
}

/// Opens `n` connections to `addr`, [`CHUNK`] at a time, each through `hs`.
pub fn open_idle(addr: SocketAddr, n: usize, hs: &dyn Handshake) -> Result<Vec<TcpStream>, String> {
    let mut conns = Vec::with_capacity(n);
    let mut got = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while conns.len() < n {
        let first = conns.len();
        let last = (first + CHUNK).min(n);
        for i in first..last {
            let mut s = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)
                .map_err(|e| format!("connection {i}: cannot connect: {e}"))?;
            s.set_read_timeout(Some(REPLY_TIMEOUT))
                .and_then(|_| s.set_write_timeout(Some(REPLY_TIMEOUT)))
                .map_err(|e| e.to_string())?;
            s.write_all(&hs.request(i))
                .map_err(|e| format!("connection {i}: write failed: {e}"))?;
            conns.push(s);
        }
        for (i, s) in conns.iter_mut().enumerate().skip(first) {
            got.clear();
            loop {
                if let Some(done) = hs.complete(&got) {
                    done.map_err(|e| format!("connection {i}: {e}"))?;
                    break;
                }
                if got.len() > 64 * 1024 {
                    return Err(format!("connection {i}: handshake reply too long"));
                }
                match s.read(&mut buf) {
                    Ok(0) => return Err(format!("connection {i}: closed by the server")),
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                    Err(e) => return Err(format!("connection {i}: no reply: {e}")),
                }
            }
        }
    }
    Ok(conns)
}

/// Reads `pid`'s RSS, opens connections with `open`, reads it again,
/// closes them and reads it once more.
pub fn measure(
    pid: u32,
    conns: usize,
    open: impl FnOnce() -> Result<Vec<TcpStream>, String>,
) -> Result<IdleOutcome, String> {
    std::thread::sleep(SETTLE);
    let rss = || server::rss_kib(pid).ok_or("cannot read the server's VmRSS");
    let before_kib = rss()?;
    let t0 = Instant::now();
    let streams = open()?;
    let open_seconds = t0.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    let with_kib = rss()?;
    drop(streams);
    std::thread::sleep(SETTLE);
    let after_close_kib = rss()?;
    Ok(IdleOutcome {
        conns,
        before_kib,
        with_kib,
        after_close_kib,
        open_seconds,
    })
}

/// goTalk: even connections AUTH with one of a few tokens, odd ones PING.
struct GotalkIdle {
    tokens: Vec<String>,
}

impl Handshake for GotalkIdle {
    fn request(&self, i: usize) -> Vec<u8> {
        if i.is_multiple_of(2) {
            format!("AUTH {}\n", self.tokens[(i / 2) % self.tokens.len()]).into_bytes()
        } else {
            b"PING\n".to_vec()
        }
    }

    fn complete(&self, got: &[u8]) -> Option<Result<(), String>> {
        let end = wire::find_newline(got)?;
        let line = &got[..end];
        Some(if line.starts_with(b"{\"ok\":true") {
            Ok(())
        } else {
            Err(format!("refused: {}", String::from_utf8_lossy(line)))
        })
    }
}

/// The server an idle run measures: every connection comes from one
/// address, and the AUTHed half shares [`USERS`] users, far past the
/// default `--max-connections-per-address` and `--conns-per-user`.
pub fn start_server(opts: &Opts) -> Result<Gotalk, String> {
    let launch = server::Launch {
        args: [
            "--conns-per-user",
            "1000000",
            "--max-connections-per-address",
            "1000000",
        ]
        .map(String::from)
        .to_vec(),
        open_files: None,
        fair_shares: false,
    };
    Gotalk::start_with(&opts.server, Mode::Memory, &launch)
}

/// Fails clearly unless `conns` connections fit under the open file limit.
pub fn check_files(conns: usize) -> Result<(), String> {
    server::ensure_open_files(conns as u64 + SPARE_FILES)
}

pub fn run(opts: &Opts) -> Result<(), String> {
    if opts.tls {
        return crate::idle_tls::run(opts);
    }
    if let Some(users) = opts.users {
        return crate::idle_users::run_users(opts, users);
    }
    let n = opts.conns.unwrap_or(10_000);
    check_files(n)?;
    if opts.ws {
        return crate::ws::run_idle(opts, n);
    }
    let server = start_server(opts)?;
    let outcome =
        gotalk_idle(&server, n).map_err(|e| format!("{e}\nserver log:\n{}", server.log_tail()))?;
    println!(
        "idle: {} connections to gotalk --memory ({} AUTHed as {USERS} users, {} after one PING)",
        thousands(n as f64),
        thousands(n.div_ceil(2) as f64),
        thousands((n / 2) as f64)
    );
    print_idle(&[("gotalk".into(), outcome)]);
    Ok(())
}

/// Sets up users, then measures `n` idle goTalk connections.
pub fn gotalk_idle(server: &Gotalk, n: usize) -> Result<IdleOutcome, String> {
    let users: Vec<String> = (0..USERS).map(|i| format!("bench-idle{i}")).collect();
    wire::register_all(server.addr, &users)?;
    // The LOGIN connections close before the baseline: only the idle ones
    // are counted.
    let (_, tokens) = login_all(server.addr, &users)?;
    let hs = GotalkIdle { tokens };
    measure(server.pid(), n, || open_idle(server.addr, n, &hs))
}

/// Prints one row per server.
pub fn print_idle(rows: &[(String, IdleOutcome)]) {
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, o)| {
            vec![
                name.clone(),
                thousands(o.conns as f64),
                mib(o.before_kib),
                mib(o.with_kib),
                thousands(o.bytes_per_conn()),
                mib(o.after_close_kib),
                format!("{:.1} s", o.open_seconds),
            ]
        })
        .collect();
    print_table(
        &[
            "server",
            "idle conns",
            "RSS before",
            "RSS with conns",
            "bytes/conn",
            "RSS after close",
            "time to open",
        ],
        &table,
    );
}
