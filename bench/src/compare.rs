//! The `compare` scenario: goTalk next to the servers it is measured
//! against, in one run on one machine, so the ratios are fair. Issue 22's
//! shape: 32 sender -> receiver pairs, 100-byte messages, a window of 64
//! (`--senders`, `--receivers`, `--window` change it).
//!
//! 1. Relay: the same engine as `relay` against goTalk `--memory`,
//!    `redis-server` (`PUBLISH` to `SUBSCRIBE`d receivers) and
//!    `nats-server` (core `PUB` to `SUB`scribed receivers).
//! 2. Durable relay: goTalk with its SQLite store (`--data` in a temp dir)
//!    against Redis with `--appendonly yes --appendfsync always`, driven
//!    durably ([`crate::peers::RedisStreamProto`]; `--help` says why).
//! 3. Latency: the open-loop step ([`crate::open_loop`], `--rate`, default
//!    10,000 messages/s) against goTalk, Redis and NATS.
//! 4. Idle memory: the same connection count against `mosquitto`, Redis
//!    and NATS.
//!
//! Each step runs its servers in turn, `--rounds` times interleaved, and
//! keeps each server's best. It ends with issue 22's table
//! ([`crate::targets`]) and, with `--chart PATH`, draws it
//! ([`crate::chart`]). A program that is not installed is reported as
//! such; the rest still runs.

use crate::idle::{self, Handshake, IdleOutcome};
use crate::open_loop::{self, Latency, Schedule};
use crate::peers::{self, MqttIdle, TextIdle};
use crate::relay::{self, Outcome, Shape, CONTENT};
use crate::server::{self, External, Gotalk, Mode};
use crate::targets::{Better, Row, Target, Unit};
use crate::{print_table, thousands, Opts};
use std::time::Duration;

/// Issue 22's shape, unless the flags say otherwise.
const PAIRS: usize = 32;
const WINDOW: usize = 64;
/// Bytes of every relayed message.
const SIZE: usize = 100;

/// A server for the idle comparison: its name, the started process (or
/// why not), and how its clients say hello.
type IdleContender = (&'static str, Result<External, String>, Box<dyn Handshake>);

/// A [`SIZE`]-byte message: the relay's content repeated.
fn content() -> String {
    CONTENT.repeat(SIZE / CONTENT.len() + 1)[..SIZE].to_string()
}

pub fn run(opts: &Opts) -> Result<(), String> {
    let s = opts.senders.unwrap_or(PAIRS);
    let r = opts.receivers.unwrap_or(PAIRS);
    let shape = Shape {
        warmup: Duration::from_secs_f64(opts.warmup.unwrap_or(1.0)),
        measure: Duration::from_secs_f64(opts.seconds.unwrap_or(5.0)),
        window: opts.window.unwrap_or(WINDOW) as u64,
        max_messages: opts.max_messages,
    };
    let content = content();
    let mut rows = Vec::new();

    let rounds = opts.rounds.unwrap_or(1);
    let faster = |a: &Outcome, b: &Outcome| a.relayed_per_s > b.relayed_per_s;

    // Relay.
    let relay_rows = best_of(
        rounds,
        vec![
            ("gotalk --memory", &|| {
                Gotalk::start(&opts.server, Mode::Memory)
                    .and_then(|g| relay::relay_gotalk_content(&g, s, r, &shape, &content))
            }),
            ("redis-server", &|| {
                peers::start_redis().and_then(|x| peers::relay_redis(&x, s, r, &shape, &content))
            }),
            ("nats-server", &|| {
                peers::start_nats().and_then(|x| peers::relay_nats(&x, s, r, &shape, &content))
            }),
        ],
        faster,
    );
    println!(
        "compare relay: {s} senders -> {r} receivers, window {} per sender, {SIZE}-byte \
         messages, {} s measured after {} s warm-up each, best of {rounds} interleaved \
         round(s)",
        shape.window,
        shape.measure.as_secs_f64(),
        shape.warmup.as_secs_f64()
    );
    print_relay(&relay_rows);
    rows.push(Row::new(
        "relay, --memory",
        Unit::PerSecond,
        Better::Higher,
        rate(&relay_rows[0].1),
        ("NATS core", rate(&relay_rows[2].1)),
        Target::Ratio(1.0),
    ));

    // Durable relay.
    let durable_rows = best_of(
        rounds,
        vec![
            ("gotalk durable (SQLite)", &|| {
                Gotalk::start(&opts.server, Mode::Durable)
                    .and_then(|g| relay::relay_gotalk_content(&g, s, r, &shape, &content))
            }),
            ("redis-server appendfsync always", &|| {
                server::temp_dir("redis-aof").and_then(|dir| {
                    let outcome = peers::start_redis_durable(&dir)
                        .and_then(|x| peers::relay_redis_durable(&x, s, r, &shape, &content));
                    let _ = std::fs::remove_dir_all(&dir);
                    outcome
                })
            }),
        ],
        faster,
    );
    println!(
        "\ncompare durable relay: the same shape, every message on disk before its reply \
         (goTalk: SQLite; Redis: XADD with appendfsync always, XREADGROUP receivers)"
    );
    print_relay(&durable_rows);
    rows.push(Row::new(
        "relay, durable (SQLite)",
        Unit::PerSecond,
        Better::Higher,
        rate(&durable_rows[0].1),
        ("Redis appendfsync always", rate(&durable_rows[1].1)),
        Target::Ratio(1.0),
    ));

    // Latency.
    let schedule = Schedule::from_opts(opts, open_loop::DEFAULT_RATE);
    let latency_rows = best_of(
        rounds,
        vec![
            ("gotalk --memory", &|| {
                Gotalk::start(&opts.server, Mode::Memory)
                    .and_then(|g| open_loop::gotalk_line(&g, &schedule))
            }),
            ("redis-server", &|| {
                peers::start_redis().and_then(|x| peers::latency_redis(&x, &schedule))
            }),
            ("nats-server", &|| {
                peers::start_nats().and_then(|x| peers::latency_nats(&x, &schedule))
            }),
        ],
        |a: &Latency, b: &Latency| a.p99_us() < b.p99_us(),
    );
    println!("\ncompare latency: {}", schedule.describe());
    open_loop::print_rows(&latency_rows);
    let p99 = |r: &Result<Latency, String>| r.as_ref().map(Latency::p99_us).map_err(Clone::clone);
    rows.push(Row::new(
        &format!("p99 at a fixed {} msgs/s", thousands(schedule.rate as f64)),
        Unit::Micros,
        Better::Lower,
        p99(&latency_rows[0].1),
        ("Redis", p99(&latency_rows[1].1)),
        Target::Ratio(1.0),
    ));

    let mosquitto = idle_memory(opts)?;
    rows.push(users_row(opts, mosquitto));
    rows.push(tls_idle_row(opts));

    println!("\ncompare against the targets:");
    crate::targets::print_rows(&rows);
    if let Some(path) = &opts.chart {
        crate::chart::write(
            path,
            "goTalk against its peers (gotalk-bench compare)",
            &rows,
        )?;
        println!("chart written to {}", path.display());
    }
    Ok(())
}

/// One server's run of a step, started afresh each time.
type Contender<'a, T> = (&'a str, &'a dyn Fn() -> Result<T, String>);

/// Runs every contender `rounds` times, interleaved (round 1 of each, then
/// round 2 of each, ...), and keeps each one's best run by `better` (a
/// failed round is forgotten if another was measured).
fn best_of<T>(
    rounds: usize,
    contenders: Vec<Contender<'_, T>>,
    better: impl Fn(&T, &T) -> bool,
) -> Vec<(String, Result<T, String>)> {
    let mut best: Vec<Option<Result<T, String>>> = contenders.iter().map(|_| None).collect();
    for _ in 0..rounds.max(1) {
        for ((_, run), kept) in contenders.iter().zip(best.iter_mut()) {
            *kept = Some(match (kept.take(), run()) {
                (Some(Ok(old)), Ok(new)) if !better(&new, &old) => Ok(old),
                (Some(Ok(old)), Err(_)) => Ok(old),
                (_, new) => new,
            });
        }
    }
    contenders
        .iter()
        .zip(best)
        .map(|((name, _), r)| (name.to_string(), r.unwrap_or(Err("not run".into()))))
        .collect()
}

/// Relayed messages/s of a run, or why there is none.
fn rate(r: &Result<Outcome, String>) -> Result<f64, String> {
    match r {
        Ok(o) if o.delivered_total < o.answered_total => Err(format!(
            "MISSING {} messages",
            o.answered_total - o.delivered_total
        )),
        Ok(o) => Ok(o.relayed_per_s),
        Err(e) => Err(e.clone()),
    }
}

/// Relay runs, one row each, the first against every other.
fn print_relay(runs: &[(String, Result<Outcome, String>)]) {
    let first = runs[0].1.as_ref().ok().map(|o| o.relayed_per_s);
    let rows: Vec<Vec<String>> = runs
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
                first.map_or("-".into(), |g| format!("{:.2}", g / o.relayed_per_s)),
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
            "first / this",
        ],
        &rows,
    );
    for (name, r) in runs {
        if let Ok(Outcome {
            first_error: Some(e),
            ..
        }) = r
        {
            println!("{name}: first error: {e}");
        }
    }
}

/// Connections of the idle TLS row.
const TLS_IDLE_CONNS: usize = 2_000;

/// Memory per idle TLS connection (2,000, each after its handshake and
/// one PING, not logged in), beside plain connections of the same shape;
/// the target is goTalk's own figure, 2 KB.
fn tls_idle_row(opts: &Opts) -> Row {
    let measured = server::temp_dir("compare-tls").and_then(|dir| {
        let both = crate::idle_tls::plain_and_tls(opts, &dir, TLS_IDLE_CONNS);
        let _ = std::fs::remove_dir_all(&dir);
        both
    });
    let (tls, plain) = match measured {
        Ok((plain, tls)) => {
            println!(
                "\ncompare idle TLS: {} connections, handshaked and pinged, not logged in",
                thousands(TLS_IDLE_CONNS as f64)
            );
            let bytes = (Ok(tls.bytes_per_conn()), Ok(plain.bytes_per_conn()));
            idle::print_idle(&[("gotalk plain".into(), plain), ("gotalk TLS".into(), tls)]);
            bytes
        }
        Err(e) => (Err(e.clone()), Err(e)),
    };
    Row::new(
        "memory per idle TLS connection (2,000)",
        Unit::Bytes,
        Better::Lower,
        tls,
        ("a plain goTalk connection", plain),
        Target::Value(2048.0),
    )
}

/// Memory per online user: 2,000 users, each logged in on its own idle
/// connection, against Mosquitto's bytes per idle connection (an MQTT
/// client is one connection; `mosquitto` is what [`idle_memory`] measured).
fn users_row(opts: &Opts, mosquitto: Result<f64, String>) -> Row {
    let n = crate::idle_users::DEFAULT_USERS;
    let gotalk = crate::idle_users::start_users_server(opts)
        .and_then(|server| crate::idle_users::gotalk_users_idle(&server, n));
    let gotalk = gotalk.map(|o| {
        println!(
            "\ncompare online users: {} users, one idle connection each",
            thousands(n as f64)
        );
        let bytes = o.bytes_per_user();
        crate::idle_users::print_users(&[("gotalk --memory".into(), o)]);
        bytes
    });
    Row::new(
        "memory per online user (2,000 users, one idle connection each)",
        Unit::Bytes,
        Better::Lower,
        gotalk,
        ("Mosquitto, per connection", mosquitto),
        Target::Value(512.0),
    )
}

/// Idle memory per connection: goTalk, Mosquitto, Redis, NATS. Returns
/// Mosquitto's bytes per connection for the per-user row.
fn idle_memory(opts: &Opts) -> Result<Result<f64, String>, String> {
    let conns = opts.conns.unwrap_or(10_000);
    println!();
    if let Err(e) = idle::check_files(conns) {
        println!("compare idle: skipped: {e}");
        return Ok(Err(format!("idle skipped: {e}")));
    }
    let mut idle_rows: Vec<(String, IdleOutcome)> = Vec::new();
    let mut missing = Vec::new();
    {
        let server = idle::start_server(opts)?;
        idle_rows.push(("gotalk --memory".into(), idle::gotalk_idle(&server, conns)?));
    }
    let others: [IdleContender; 3] = [
        ("mosquitto", peers::start_mosquitto(), Box::new(MqttIdle)),
        (
            "redis-server",
            peers::start_redis(),
            Box::new(TextIdle {
                request: b"PING\r\n",
                until: b"+PONG\r\n",
            }),
        ),
        (
            "nats-server",
            peers::start_nats(),
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
            Err(e) => missing.push(format!("{name}: {e}")),
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
    Ok(idle_rows
        .iter()
        .find(|(name, _)| name == "mosquitto")
        .map(|(_, o)| o.bytes_per_conn())
        .ok_or_else(|| "not installed".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn best_of_interleaves_rounds_and_keeps_each_servers_best() {
        let order = std::cell::RefCell::new(Vec::new());
        let n = Cell::new(0);
        let a = || {
            order.borrow_mut().push('a');
            n.set(n.get() + 1);
            if n.get() == 3 {
                Err("a failed once".to_string())
            } else {
                Ok(n.get())
            }
        };
        let b = || {
            order.borrow_mut().push('b');
            Err::<usize, _>("not installed".to_string())
        };
        let rows = best_of(3, vec![("a", &a), ("b", &b)], |x, y| x > y);
        assert_eq!(*order.borrow(), ['a', 'b', 'a', 'b', 'a', 'b']);
        assert_eq!(rows[0].0, "a");
        // Runs 1, 2 and an error (forgotten): the best is 2.
        assert_eq!(rows[0].1, Ok(2));
        assert_eq!(rows[1].1, Err("not installed".to_string()));
    }
}
