//! The `abuse` scenario: the attacks of RELIABILITY.md, each against a
//! fresh release server, each bounded in time and count. Around every
//! attack the bench measures what it costs the server and everyone else:
//! the server's RSS before, at its peak and after (and its open files), a
//! bystander connection's PING round trips during the attack against the
//! same connection's idle ones just before, whether a new client is served
//! at the end of the attack and again after the attacker has gone, and,
//! for the login flood and the connect storm, how long a genuine LOGIN
//! takes.
//!
//! The attacker connects from 127.0.0.1; the bystander, the new clients
//! and the genuine LOGINs from 127.0.0.2, so per-address limits see two
//! hosts. Attacks go through the wire protocol only and the server runs
//! with its default flags (plus `--server-arg`), so the scenario measures
//! whatever budgets the server has (the login throttles are lifted, the
//! fair shares are not). [`attacks`] holds the attacks, [`shares`] the
//! attacks on the fair shares (send rate, fan-out, connect storm),
//! [`probe`] the measuring instruments.

mod attacks;
pub mod priority;
mod probe;
mod report;
mod shares;

use crate::login::PingStats;
use crate::relay::login_all;
use crate::server::{self, Gotalk, Launch, Mode};
use crate::wire;
use crate::Opts;
use probe::{Bystander, Guard, RssWatch, Tally};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds each attack runs unless `--seconds` says otherwise.
const DEFAULT_SECONDS: f64 = 4.0;
/// Idle PINGs measured just before each attack.
const IDLE: Duration = Duration::from_secs(1);
/// Time for the server to settle before an RSS reading.
const SETTLE: Duration = Duration::from_secs(1);
/// Open-file limit of the server for the attacks on descriptors (a common
/// default), unless `--server-open-files` says otherwise.
const FD_ATTACK_FILES: u64 = 1024;
/// An attack stops early when the server's RSS passes this (the machine
/// is shared; the finding is made long before).
const RSS_CEILING_KIB: u64 = 3 * 1024 * 1024;
/// Open files the bench keeps for itself beyond an attack's sockets.
const SPARE_FILES: usize = 200;
/// The attacker's account and the bystander's.
const ATTACKER: &str = "abuser";
const BYSTANDER: &str = "bystander";

/// What an attack gets to work with.
pub struct Ctx {
    pub addr: SocketAddr,
    /// The attacker's account and its token.
    pub user: String,
    pub token: String,
    /// The bystander's account (password [`wire::PASSWORD`]).
    pub bystander: String,
    /// Sockets the bench may still open.
    pub fd_room: usize,
    /// The durable server's data directory.
    pub data_dir: Option<PathBuf>,
}

/// One genuine user's login during the flood.
pub struct LoginSample {
    /// From the first LOGIN sent to the success (or giving up).
    pub took: Duration,
    /// `rate_limited` replies before that.
    pub refusals: u32,
    pub result: Result<(), String>,
}

/// What an attack reports back.
#[derive(Default)]
pub struct Outcome {
    /// Its count of operations, with their unit.
    pub ops: String,
    /// Error replies by code, and socket failures by kind.
    pub errors: Tally,
    pub notes: Vec<String>,
    /// Genuine LOGINs (the login flood).
    pub logins: Vec<LoginSample>,
    /// Sockets to keep open until the end-of-attack checks are done.
    pub held: Vec<TcpStream>,
}

type AttackFn = fn(&Ctx, &Guard) -> Result<Outcome, String>;
/// Work an attack needs done before the idle PINGs are measured (accounts
/// to write to), outside the attack's time.
type PrepareFn = fn(&Ctx) -> Result<(), String>;

/// One attack of the table.
struct Attack {
    name: &'static str,
    what: &'static str,
    modes: &'static [Mode],
    /// Runs the server with [`FD_ATTACK_FILES`] open files by default.
    on_descriptors: bool,
    prepare: Option<PrepareFn>,
    run: AttackFn,
}

const ATTACKS: &[Attack] = &[
    Attack {
        name: "longpoll",
        what: "long-polls abandoned (line SYNC wait, HTTP /sync wait)",
        modes: &[Mode::Memory],
        on_descriptors: true,
        prepare: None,
        run: attacks::longpoll,
    },
    Attack {
        name: "silent",
        what: "silent and half-sent sockets",
        modes: &[Mode::Memory],
        on_descriptors: true,
        prepare: None,
        run: attacks::silent,
    },
    Attack {
        name: "waiters",
        what: "abandoned waiters + one 60 KB SEND",
        modes: &[Mode::Memory],
        on_descriptors: false,
        prepare: None,
        run: attacks::waiters,
    },
    Attack {
        name: "unread",
        what: "sockets of one user that never read, large SENDs",
        modes: &[Mode::Memory],
        on_descriptors: false,
        prepare: None,
        run: attacks::unread,
    },
    Attack {
        name: "mailbox",
        what: "mailbox filled with 60 KB of control characters",
        modes: &[Mode::Memory, Mode::Durable],
        on_descriptors: false,
        prepare: None,
        run: attacks::mailbox,
    },
    Attack {
        name: "client-id",
        what: "a fresh client_id on every SEND",
        modes: &[Mode::Memory],
        on_descriptors: false,
        prepare: None,
        run: attacks::client_id,
    },
    Attack {
        name: "login-flood",
        what: "wrong-password LOGIN flood, 32 threads",
        modes: &[Mode::Memory],
        on_descriptors: false,
        prepare: None,
        run: attacks::login_flood,
    },
    Attack {
        name: "send-rate",
        what: "SENDs of one account as fast as answered, 256 in flight",
        modes: &[Mode::Memory],
        on_descriptors: false,
        prepare: None,
        run: shares::send_rate,
    },
    Attack {
        name: "fan-out",
        what: "a spam run: one SEND to each of 150 fresh users, round after round",
        modes: &[Mode::Memory],
        on_descriptors: false,
        prepare: Some(shares::register_recipients),
        run: shares::fan_out,
    },
    Attack {
        name: "connect-storm",
        what: "connect, PING, close from 32 threads",
        modes: &[Mode::Memory],
        on_descriptors: false,
        prepare: None,
        run: shares::connect_storm,
    },
];

/// The attack names, for help and errors.
pub fn attack_names() -> String {
    ATTACKS
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What was measured around one attack.
struct Row {
    attack: &'static Attack,
    mode: Mode,
    open_files: Option<u64>,
    outcome: Result<Outcome, String>,
    halted: Option<String>,
    rss: [Option<u64>; 3],
    fds: [Option<usize>; 3],
    idle: Option<PingStats>,
    during: Option<PingStats>,
    bystander_lost: Option<String>,
    new_at_end: Result<(), String>,
    new_after: Result<(), String>,
    server_alive: bool,
    seconds: f64,
    /// A durable server started again on what the attack left: the time
    /// to its `listening` line and its RSS a moment later.
    restart: Option<Result<(Duration, Option<u64>), String>>,
}

pub fn run(opts: &Opts) -> Result<(), String> {
    let chosen: Vec<&Attack> = if opts.attacks.is_empty() {
        ATTACKS.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &opts.attacks {
            let a = ATTACKS.iter().find(|a| a.name == name).ok_or_else(|| {
                format!(
                    "abuse: unknown attack '{name}' (one of: {})",
                    attack_names()
                )
            })?;
            chosen.push(a);
        }
        chosen
    };
    let seconds = opts.seconds.unwrap_or(DEFAULT_SECONDS);
    priority::set_attacker_nice(opts.attacker_nice);
    let (soft, _) = server::raise_open_files().ok_or("cannot read the open-file limit")?;
    let open_now = server::open_fds(std::process::id()).unwrap_or(0);
    let fd_room = (soft as usize).saturating_sub(open_now + SPARE_FILES);
    println!(
        "abuse: each attack for {seconds} s (and its count limit) against a fresh gotalk on \
         127.0.0.1 ({}); attacker from 127.0.0.1 at nice {}, bystander and new clients from \
         127.0.0.2; server flags: {}; bench open-file limit {soft}",
        opts.server.display(),
        opts.attacker_nice,
        if opts.server_args.is_empty() {
            "defaults".to_string()
        } else {
            opts.server_args.join(" ")
        }
    );
    let mut rows = Vec::new();
    for attack in chosen {
        for &mode in attack.modes {
            let open_files = match opts.server_open_files {
                Some(0) => None,
                Some(n) => Some(n),
                None if attack.on_descriptors => Some(FD_ATTACK_FILES),
                None => None,
            };
            eprintln!("abuse: {} ({})...", attack.name, mode.name());
            let launch = Launch {
                args: opts.server_args.clone(),
                open_files,
                fair_shares: true,
            };
            let row = measure(opts, attack, mode, &launch, seconds, fd_room)?;
            rows.push(row);
        }
    }
    report::report(&rows);
    Ok(())
}

/// Starts a server, sets up the two accounts and the bystander, and runs
/// one attack between the measurements.
fn measure(
    opts: &Opts,
    attack: &'static Attack,
    mode: Mode,
    launch: &Launch,
    seconds: f64,
    fd_room: usize,
) -> Result<Row, String> {
    let mut server = Gotalk::start_with(&opts.server, mode, launch)?;
    let with_log = |e: String, server: &Gotalk| format!("{e}\nserver log:\n{}", server.log_tail());
    let addr = server.addr;
    let pid = server.pid();
    let names = [ATTACKER.to_string(), BYSTANDER.to_string()];
    let tokens = wire::register_all(addr, &names)
        .and_then(|_| login_all(addr, &names))
        .map(|(_, tokens)| tokens)
        .map_err(|e| with_log(e, &server))?;
    let by_stream = probe::authed_other(addr, &tokens[1]).map_err(|e| with_log(e, &server))?;
    let ctx = Ctx {
        addr,
        user: ATTACKER.into(),
        token: tokens[0].clone(),
        bystander: BYSTANDER.into(),
        fd_room,
        data_dir: server.data_dir().map(PathBuf::from),
    };
    if let Some(prepare) = attack.prepare {
        prepare(&ctx).map_err(|e| with_log(e, &server))?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = server::rss_kib(pid);
    let fds_before = server::open_fds(pid);

    let mut bystander = Bystander::start(by_stream)?;
    let idle_from = Instant::now();
    std::thread::sleep(IDLE);
    let start = Instant::now();
    let guard = Arc::new(Guard::new(Duration::from_secs_f64(seconds)));
    let mut watch = RssWatch::start(pid, RSS_CEILING_KIB, guard.clone())?;
    let mut outcome = (attack.run)(&ctx, &guard);
    let end = Instant::now();
    bystander.stop();
    let fds_end = server::open_fds(pid);
    let new_at_end = probe::new_client(addr);
    if let Ok(o) = &mut outcome {
        o.held.clear();
    }
    std::thread::sleep(SETTLE);
    let rss_after = server::rss_kib(pid);
    let fds_after = server::open_fds(pid);
    let new_after = probe::new_client(addr);
    let peak = watch.stop();
    let server_alive = server.alive();
    let restart = (mode == Mode::Durable && server_alive).then(|| restart(opts, server, launch));
    Ok(Row {
        attack,
        mode,
        open_files: launch.open_files,
        outcome,
        halted: guard.why(),
        rss: [rss_before, Some(peak).filter(|&p| p > 0), rss_after],
        fds: [fds_before, fds_end, fds_after],
        idle: bystander.stats(idle_from, start),
        during: bystander.stats(start, end),
        bystander_lost: bystander.lost(),
        new_at_end,
        new_after,
        server_alive,
        seconds: (end - start).as_secs_f64(),
        restart,
    })
}

/// Restarts a durable server on its data and measures the start.
fn restart(
    opts: &Opts,
    server: Gotalk,
    launch: &Launch,
) -> Result<(Duration, Option<u64>), String> {
    let t0 = Instant::now();
    let server = server.restart(&opts.server, launch)?;
    let took = t0.elapsed();
    std::thread::sleep(SETTLE);
    probe::new_client(server.addr).map_err(|e| format!("not serving after the restart: {e}"))?;
    Ok((took, server::rss_kib(server.pid())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_names_are_unique() {
        let mut names: Vec<&str> = ATTACKS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ATTACKS.len());
    }
}
