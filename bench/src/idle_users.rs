//! `idle --users N`: what one online *user* costs the server in memory.
//! N different users (default 2,000) are registered and log in once
//! each; with nobody connected the server's RSS is read ("at rest"), then
//! every user AUTHs with its own token on exactly one connection that then
//! stays idle, and RSS is read again. The difference over N is the bytes
//! per online user: connection, session, account cache entry, mailbox
//! figures, known addresses, fair shares — everything that being online
//! adds to an account that merely exists.
//!
//! Setup is 2·N password hashes (REGISTER, then LOGIN), argon2id at the
//! server's full cost: nothing is skipped or precomputed. It goes as fast
//! as the machine allows by keeping every hash thread busy: the server
//! gets one hash thread per core and a lifted `--hash-queue` and
//! `--hash-queue-per-address`, and [`SETUP_CONNS`] connections work
//! through their share of the users in parallel, one request at a time
//! each. The setup time is printed.

use crate::idle::{self, Handshake, IdleOutcome};
use crate::server::{self, Gotalk, Mode};
use crate::wire::{self, Client};
use crate::{print_table, thousands, Opts};
use std::net::SocketAddr;
use std::time::Instant;

/// Users when `--users` is given without a count (`--users 0` is refused).
pub const DEFAULT_USERS: usize = 2_000;
/// Connections that register and log the users in, each working through
/// its share, so the hash threads never wait for a client.
const SETUP_CONNS: usize = 16;

/// What `idle --users` found.
pub struct UsersOutcome {
    /// RSS at rest, with all N online, and after they disconnected.
    pub idle: IdleOutcome,
    /// Seconds to register and log in the N users (2·N argon2 hashes).
    pub setup_seconds: f64,
    /// The server's hash threads during setup.
    pub hash_threads: usize,
}

impl UsersOutcome {
    /// (RSS with all online − RSS at rest) / N.
    pub fn bytes_per_user(&self) -> f64 {
        self.idle.bytes_per_conn()
    }
}

/// One hash thread per core (at least 2, the server's default).
pub fn hash_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// The server `idle --users` measures: `--memory`, one address for every
/// connection, and password checks queued without bound from it.
pub fn start_users_server(opts: &Opts) -> Result<Gotalk, String> {
    let threads = hash_threads().to_string();
    let launch = server::Launch {
        args: [
            "--max-connections-per-address",
            "1000000",
            "--hash-threads",
            &threads,
            "--hash-queue",
            "1000000",
            "--hash-queue-per-address",
            "1000000",
        ]
        .map(String::from)
        .to_vec(),
        open_files: None,
        fair_shares: false,
    };
    Gotalk::start_with(&opts.server, Mode::Memory, &launch)
}

/// Registers `names` and logs each in once, over [`SETUP_CONNS`]
/// connections in parallel; returns their tokens in order.
pub fn register_and_login(addr: SocketAddr, names: &[String]) -> Result<Vec<String>, String> {
    let per_conn = names.len().div_ceil(SETUP_CONNS).max(1);
    let results: Vec<Result<Vec<String>, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(per_conn)
            .map(|share| scope.spawn(move || setup_share(addr, share)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("a setup thread panicked".into()))
            })
            .collect()
    });
    let mut tokens = Vec::with_capacity(names.len());
    for r in results {
        tokens.extend(r?);
    }
    Ok(tokens)
}

/// One setup connection: each user of its share REGISTERs, then LOGINs.
/// One request at a time: the first LOGIN binds the connection, so it is
/// never closed for `--login-timeout` however long its share takes.
fn setup_share(addr: SocketAddr, names: &[String]) -> Result<Vec<String>, String> {
    let mut client = Client::connect(addr)?;
    names
        .iter()
        .map(|name| {
            client
                .request(&format!("REGISTER {name} {}", wire::PASSWORD))
                .map_err(|e| format!("REGISTER {name}: {e}"))?;
            client.login(name)
        })
        .collect()
}

/// Connection `i` AUTHs as user `i`, with that user's own token.
struct OwnToken {
    tokens: Vec<String>,
}

impl Handshake for OwnToken {
    fn request(&self, i: usize) -> Vec<u8> {
        format!("AUTH {}\n", self.tokens[i]).into_bytes()
    }

    fn complete(&self, got: &[u8]) -> Option<Result<(), String>> {
        let end = wire::find_newline(got)?;
        let line = &got[..end];
        Some(if line.starts_with(b"{\"ok\":true") {
            Ok(())
        } else {
            Err(format!("AUTH refused: {}", String::from_utf8_lossy(line)))
        })
    }
}

/// Sets up `n` users on `server`, then measures them all online at once.
pub fn gotalk_users_idle(server: &Gotalk, n: usize) -> Result<UsersOutcome, String> {
    let names: Vec<String> = (0..n).map(|i| format!("bench-user{i}")).collect();
    let t0 = Instant::now();
    let tokens = register_and_login(server.addr, &names)?;
    let setup_seconds = t0.elapsed().as_secs_f64();
    let hs = OwnToken { tokens };
    // The setup connections are closed: the baseline is the accounts at
    // rest, registered and logged in once, nobody connected.
    let idle = idle::measure(server.pid(), n, || idle::open_idle(server.addr, n, &hs))?;
    Ok(UsersOutcome {
        idle,
        setup_seconds,
        hash_threads: hash_threads(),
    })
}

/// `idle --users N`.
pub fn run_users(opts: &Opts, n: usize) -> Result<(), String> {
    idle::check_files(n)?;
    let server = start_users_server(opts)?;
    let outcome = gotalk_users_idle(&server, n)
        .map_err(|e| format!("{e}\nserver log:\n{}", server.log_tail()))?;
    println!(
        "idle --users: {} users of gotalk --memory, each AUTHed with its own token on one idle connection",
        thousands(n as f64)
    );
    print_users(&[("gotalk".into(), outcome)]);
    Ok(())
}

/// Prints one row per server.
pub fn print_users(rows: &[(String, UsersOutcome)]) {
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, o)| {
            vec![
                name.clone(),
                thousands(o.idle.conns as f64),
                mib(o.idle.before_kib),
                mib(o.idle.with_kib),
                thousands(o.bytes_per_user()),
                mib(o.idle.after_close_kib),
                format!("{:.1} s ({} hash threads)", o.setup_seconds, o.hash_threads),
                format!("{:.1} s", o.idle.open_seconds),
            ]
        })
        .collect();
    print_table(
        &[
            "server",
            "users online",
            "RSS at rest",
            "RSS all online",
            "bytes/user",
            "RSS after close",
            "setup (register+login)",
            "time to AUTH all",
        ],
        &table,
    );
}
