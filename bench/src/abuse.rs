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
mod probe;
mod shares;

use crate::login::PingStats;
use crate::relay::login_all;
use crate::server::{self, Gotalk, Launch, Mode};
use crate::wire;
use crate::{print_table, thousands, Opts};
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
    let (soft, _) = server::raise_open_files().ok_or("cannot read the open-file limit")?;
    let open_now = server::open_fds(std::process::id()).unwrap_or(0);
    let fd_room = (soft as usize).saturating_sub(open_now + SPARE_FILES);
    println!(
        "abuse: each attack for {seconds} s (and its count limit) against a fresh gotalk on \
         127.0.0.1 ({}); attacker from 127.0.0.1, bystander and new clients from 127.0.0.2; \
         server flags: {}; bench open-file limit {soft}",
        opts.server.display(),
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
    report(&rows);
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

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.0}", k as f64 / 1024.0))
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1e3)
}

fn served(r: &Result<(), String>) -> String {
    match r {
        Ok(()) => "yes".into(),
        Err(e) => format!("no ({e})"),
    }
}

/// The genuine LOGINs' p50 and max, and how many failed.
fn login_summary(samples: &[LoginSample]) -> Option<(Duration, Duration, Vec<String>)> {
    if samples.is_empty() {
        return None;
    }
    let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    took.sort_unstable();
    let p50 = took[(took.len() - 1) / 2];
    let max = *took.last().expect("not empty");
    let failed = samples
        .iter()
        .filter_map(|s| s.result.as_ref().err().cloned())
        .collect();
    Some((p50, max, failed))
}

/// Which of the targets an attack missed (RSS is left to the
/// reader: the budgets it is held to are the server's flags).
fn verdict(row: &Row) -> String {
    let mut missed = Vec::new();
    if !row.server_alive {
        missed.push("server died".to_string());
    }
    match (&row.idle, &row.during) {
        (Some(i), Some(d)) if d.p99_us > 10 * i.p99_us.max(1) => missed.push(format!(
            "PING p99 {:.0}x idle",
            d.p99_us as f64 / i.p99_us.max(1) as f64
        )),
        (_, None) => missed.push("no PING answered".into()),
        _ => {}
    }
    if row.bystander_lost.is_some() {
        missed.push("bystander lost".into());
    }
    if row.new_after.is_err() {
        missed.push("locked out".into());
    }
    if let Some((_, max, failed)) = row
        .outcome
        .as_ref()
        .ok()
        .and_then(|o| login_summary(&o.logins))
    {
        if max >= Duration::from_secs(2) {
            missed.push(format!("LOGIN took {:.1} s", max.as_secs_f64()));
        }
        if !failed.is_empty() {
            missed.push(format!("{} of the genuine logins gave up", failed.len()));
        }
    }
    if missed.is_empty() {
        "met".into()
    } else {
        missed.join("; ")
    }
}

fn report(rows: &[Row]) {
    println!();
    println!(
        "PING percentiles count the PINGs that a late reply kept the bystander from \
         sending (one every 2 ms), so a stall weighs as long as it lasts."
    );
    println!();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let (ops, errors) = match &r.outcome {
                Ok(o) => (o.ops.clone(), o.errors.summary()),
                Err(e) => (format!("failed: {e}"), "-".into()),
            };
            let ping = |s: &Option<PingStats>| match s {
                Some(s) => format!("{} / {}", ms(s.p50_us), ms(s.p99_us)),
                None => "-".into(),
            };
            let ratio = match (&r.idle, &r.during) {
                (Some(i), Some(d)) => {
                    format!("{:.1}x", d.p99_us as f64 / i.p99_us.max(1) as f64)
                }
                _ => "-".into(),
            };
            let fds = |f: Option<usize>| f.map_or("n/a".into(), |f| thousands(f as f64));
            vec![
                r.attack.name.to_string(),
                format!(
                    "{}{}",
                    r.mode.name(),
                    r.open_files
                        .map_or(String::new(), |n| format!(", {n} files"))
                ),
                ops,
                errors,
                format!("{} / {} / {}", mib(r.rss[0]), mib(r.rss[1]), mib(r.rss[2])),
                format!("{} / {} / {}", fds(r.fds[0]), fds(r.fds[1]), fds(r.fds[2])),
                ping(&r.idle),
                ping(&r.during),
                ratio,
                r.during.as_ref().map_or("-".into(), |d| ms(d.max_us)),
                format!(
                    "{} / {}",
                    if r.new_at_end.is_ok() { "yes" } else { "no" },
                    if r.new_after.is_ok() { "yes" } else { "no" }
                ),
                verdict(r),
            ]
        })
        .collect();
    print_table(
        &[
            "attack",
            "server",
            "operations",
            "errors by code",
            "RSS MiB before / peak / after",
            "server fds before / end / after",
            "PING idle p50 / p99 ms",
            "PING during p50 / p99 ms",
            "p99 during/idle",
            "PING max ms",
            "new client end / after",
            "targets",
        ],
        &table,
    );

    let logins: Vec<Vec<String>> = rows
        .iter()
        .filter_map(|r| {
            let o = r.outcome.as_ref().ok()?;
            let (p50, max, failed) = login_summary(&o.logins)?;
            Some(vec![
                format!("{} ({})", r.attack.name, r.mode.name()),
                o.logins.len().to_string(),
                format!("{:.0}", p50.as_secs_f64() * 1e3),
                format!("{:.0}", max.as_secs_f64() * 1e3),
                thousands(o.logins.iter().map(|s| s.refusals as f64).sum::<f64>()),
                if failed.is_empty() {
                    "none".into()
                } else {
                    failed.join(", ")
                },
            ])
        })
        .collect();
    if !logins.is_empty() {
        println!();
        print_table(
            &[
                "genuine login during the flood",
                "users",
                "p50 ms",
                "max ms",
                "rate_limited replies first",
                "gave up",
            ],
            &logins,
        );
    }

    println!();
    for r in rows {
        println!(
            "- {} ({}): {}; ran {:.1} s.",
            r.attack.name,
            r.mode.name(),
            r.attack.what,
            r.seconds
        );
        let mut notes: Vec<String> = match &r.outcome {
            Ok(o) => o.notes.clone(),
            Err(e) => vec![format!("the attack failed: {e}")],
        };
        notes.extend(r.halted.clone());
        notes.extend(r.bystander_lost.clone());
        if let Err(e) = &r.new_at_end {
            notes.push(format!(
                "new client at the end of the attack: {}",
                served(&Err(e.clone()))
            ));
        }
        if let Err(e) = &r.new_after {
            notes.push(format!(
                "new client {} s after the attacker left: {}",
                SETTLE.as_secs(),
                served(&Err(e.clone()))
            ));
        }
        if !r.server_alive {
            notes.push("the server exited".into());
        }
        match &r.restart {
            Some(Ok((took, rss))) => notes.push(format!(
                "restarted on the same data: listening after {:.1} s, RSS {} MiB a second later",
                took.as_secs_f64(),
                mib(*rss)
            )),
            Some(Err(e)) => notes.push(format!("restart on the same data failed: {e}")),
            None => {}
        }
        for n in notes {
            println!("  - {n}");
        }
    }
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

    #[test]
    fn login_summary_takes_median_and_max() {
        let s = |ms: u64, ok: bool| LoginSample {
            took: Duration::from_millis(ms),
            refusals: 0,
            result: if ok {
                Ok(())
            } else {
                Err("rate_limited".into())
            },
        };
        let (p50, max, failed) = login_summary(&[s(30, true), s(10, true), s(900, false)]).unwrap();
        assert_eq!(p50, Duration::from_millis(30));
        assert_eq!(max, Duration::from_millis(900));
        assert_eq!(failed, ["rate_limited"]);
        assert!(login_summary(&[]).is_none());
    }
}
