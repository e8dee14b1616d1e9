//! The `login` scenario: password hashing must never stall the event loop.
//! LOGIN runs argon2id (m = 19 MiB, t = 2) on the server's password worker
//! threads, so while N users log in at once every other connection should
//! still be served at once. The bench registers N users, times one LOGIN
//! alone, then starts N LOGINs together (one thread and connection each)
//! while a separate connection sends PING every few milliseconds and
//! measures each round trip. It reports the LOGIN times, the PING latency
//! while idle and during the logins, and the server's RSS afterwards
//! (argon2's working memory must not stay resident).
//!
//! Bounded: one LOGIN per user, the pinger stops when the logins are done
//! (and after at most [`PING_LIMIT`] pings or [`DEADLINE`]).

use crate::server::{self, Gotalk, Mode};
use crate::wire::{self, Client};
use crate::{print_table, thousands, Opts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Pause between two PINGs.
const PING_GAP: Duration = Duration::from_millis(2);
/// PINGs measured before the logins start, as the quiet baseline.
const BASELINE: Duration = Duration::from_millis(500);
/// The pinger never sends more than this many PINGs.
const PING_LIMIT: usize = 200_000;
/// The whole concurrent phase gives up after this long.
const DEADLINE: Duration = Duration::from_secs(120);
/// Most users the scenario registers.
const MAX_USERS: usize = 1_000;

/// One PING round trip: when it was sent and how long the reply took.
#[derive(Clone, Copy)]
pub struct Ping {
    pub sent: Instant,
    pub micros: u64,
}

/// Latency summary of the PINGs sent within a time range.
pub struct PingStats {
    pub count: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl PingStats {
    pub fn of(pings: &[Ping], from: Instant, to: Instant) -> Option<PingStats> {
        let mut us: Vec<u64> = pings
            .iter()
            .filter(|p| p.sent >= from && p.sent < to)
            .map(|p| p.micros)
            .collect();
        if us.is_empty() {
            return None;
        }
        us.sort_unstable();
        let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
        Some(PingStats {
            count: us.len(),
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: *us.last().expect("not empty"),
        })
    }
}

pub fn run(opts: &Opts) -> Result<(), String> {
    let n = opts.conns.unwrap_or(32);
    if n > MAX_USERS {
        return Err(format!(
            "login: --conns {n} is above the limit of {MAX_USERS} users"
        ));
    }
    server::ensure_open_files(n as u64 + 100)?;
    // Every LOGIN comes from one address, all at once: the per-address
    // share of the password queue (--hash-queue-per-address, 16) would
    // refuse most of them, which is not what this scenario measures.
    let launch = server::Launch {
        args: vec!["--hash-queue-per-address".into(), "1024".into()],
        ..Default::default()
    };
    let mut server = Gotalk::start_with(&opts.server, Mode::Memory, &launch)?;
    let result = logins(&mut server, n);
    result.map_err(|e| format!("{e}\nserver log:\n{}", server.log_tail()))
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn logins(server: &mut Gotalk, n: usize) -> Result<(), String> {
    let addr = server.addr;
    let pid = server.pid();
    let rss_start = server::rss_kib(pid);
    let names: Vec<String> = (0..n).map(|i| format!("bench-login{i}")).collect();
    let t0 = Instant::now();
    wire::register_all(addr, &names)?;
    let register = t0.elapsed();
    let rss_registered = server::rss_kib(pid);

    // One LOGIN with nothing else going on.
    let mut alone = Client::connect(addr)?;
    let t0 = Instant::now();
    alone.login(&names[0])?;
    let single = t0.elapsed();
    drop(alone);

    // The pinger: one connection, PING, wait for the reply, pause, again.
    let stop = Arc::new(AtomicBool::new(false));
    let pings = Arc::new(Mutex::new(Vec::<Ping>::with_capacity(8192)));
    let mut pinger_conn = Client::connect(addr)?;
    let pinger = {
        let (stop, pings) = (stop.clone(), pings.clone());
        std::thread::Builder::new()
            .name("pinger".into())
            .spawn(move || -> Result<(), String> {
                let end = Instant::now() + DEADLINE;
                for _ in 0..PING_LIMIT {
                    if stop.load(Ordering::Relaxed) || Instant::now() >= end {
                        break;
                    }
                    let sent = Instant::now();
                    pinger_conn
                        .request("PING")
                        .map_err(|e| format!("PING: {e}"))?;
                    let micros = sent.elapsed().as_micros() as u64;
                    pings.lock().expect("lock").push(Ping { sent, micros });
                    std::thread::sleep(PING_GAP);
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?
    };
    let baseline_from = Instant::now();
    std::thread::sleep(BASELINE);
    let baseline_to = Instant::now();

    // N LOGIN threads, each with its own connection, released together.
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut threads = Vec::with_capacity(n);
    for name in &names {
        let mut client = Client::connect(addr)?;
        let (barrier, name) = (barrier.clone(), name.clone());
        let handle = std::thread::Builder::new()
            .name("login".into())
            .spawn(move || -> Result<(Duration, Instant), String> {
                barrier.wait();
                let t0 = Instant::now();
                client.login(&name)?;
                Ok((t0.elapsed(), Instant::now()))
            })
            .map_err(|e| e.to_string())?;
        threads.push(handle);
    }
    let snapshot = || {
        (
            server::machine_ticks(),
            server::cpu_ticks(Some(pid)),
            server::cpu_ticks(None),
        )
    };
    barrier.wait();
    let start = Instant::now();
    let cpu_before = snapshot();
    let mut slowest = Duration::ZERO;
    let mut fastest = Duration::MAX;
    let mut last_done = start;
    let mut first_error = None;
    for t in threads {
        match t
            .join()
            .map_err(|_| "a LOGIN thread panicked".to_string())?
        {
            Ok((took, done)) => {
                slowest = slowest.max(took);
                fastest = fastest.min(took);
                last_done = last_done.max(done);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let cpu_after = snapshot();
    let wall = last_done - start;
    let measured = start.elapsed().as_secs_f64();
    let server_cpu = server::cpu_percent(cpu_before.1, cpu_after.1, measured);
    let bench_cpu = server::cpu_percent(cpu_before.2, cpu_after.2, measured);
    let others_cpu = server::other_cpu(cpu_before, cpu_after, measured);
    stop.store(true, Ordering::Relaxed);
    pinger.join().map_err(|_| "the pinger panicked")??;
    if let Some(e) = first_error {
        return Err(e);
    }
    if !server.alive() {
        return Err("the server exited".into());
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = server::rss_kib(pid);

    let pings = pings.lock().expect("lock");
    let idle = PingStats::of(&pings, baseline_from, baseline_to);
    let busy = PingStats::of(&pings, start, last_done);

    println!(
        "login: {n} users on gotalk --memory; argon2id on the server's password threads; \
         PING every {} ms on another connection",
        PING_GAP.as_millis()
    );
    print_table(
        &["LOGIN", "figure"],
        &[
            vec![
                format!("REGISTER {n} users (pipelined)"),
                format!("{} ms", ms(register)),
            ],
            vec!["one LOGIN alone".into(), format!("{} ms", ms(single))],
            vec![
                format!("{n} LOGINs at once, wall"),
                format!("{} ms", ms(wall)),
            ],
            vec![
                "fastest LOGIN of them".into(),
                format!("{} ms", ms(fastest)),
            ],
            vec![
                "slowest LOGIN of them".into(),
                format!("{} ms", ms(slowest)),
            ],
            vec![
                "LOGINs/s at once".into(),
                thousands(n as f64 / wall.as_secs_f64().max(1e-9)),
            ],
            vec!["server CPU meanwhile".into(), server_cpu],
            vec!["bench CPU meanwhile".into(), bench_cpu],
            vec!["others CPU meanwhile".into(), others_cpu],
        ],
    );
    println!();
    let us = |v: u64| format!("{:.2}", v as f64 / 1e3);
    let row = |what: &str, s: &Option<PingStats>| match s {
        Some(s) => vec![
            what.to_string(),
            thousands(s.count as f64),
            us(s.p50_us),
            us(s.p99_us),
            us(s.max_us),
        ],
        None => vec![
            what.to_string(),
            "0".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ],
    };
    print_table(
        &["PING round trips", "answered", "p50 ms", "p99 ms", "max ms"],
        &[
            row("before the logins (idle)", &idle),
            row(&format!("during the {n} LOGINs"), &busy),
        ],
    );
    println!();
    print_table(
        &["server RSS", "value"],
        &[
            vec!["at start".into(), mib(rss_start)],
            vec![format!("after {n} REGISTERs"), mib(rss_registered)],
            vec![format!("after {} LOGINs", n + 1), mib(rss_after)],
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_stats_take_only_the_range() {
        let t0 = Instant::now();
        let at = |ms: u64, micros: u64| Ping {
            sent: t0 + Duration::from_millis(ms),
            micros,
        };
        let pings: Vec<Ping> = (0..100)
            .map(|i| at(i, 1000 + i))
            .chain([at(200, 9)])
            .collect();
        let s = PingStats::of(&pings, t0, t0 + Duration::from_millis(100)).unwrap();
        assert_eq!((s.count, s.p50_us, s.max_us), (100, 1050, 1099));
        assert_eq!(s.p99_us, 1098);
        assert!(PingStats::of(
            &pings,
            t0 + Duration::from_secs(1),
            t0 + Duration::from_secs(2)
        )
        .is_none());
    }
}
