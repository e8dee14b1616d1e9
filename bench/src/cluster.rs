//! The `cluster` scenario: two goTalk nodes on one PostgreSQL database
//! (`--postgres URL`, emptied first), senders logged in on node A and
//! receivers on node B, so every message crosses nodes: committed by A,
//! then a NOTIFY wakes B, which reads it from the database and pushes it.
//!
//! 1. **Relay**: the `relay` load (pipelined SENDs, a window in flight per
//!    sender; every reply comes after the commit) from A to B: relayed
//!    messages/s, and A's commits/s and messages per commit from its
//!    `store stats:` lines.
//! 2. **Latency**: the open-loop step ([`crate::open_loop`]): one sender
//!    on A at a fixed `--rate` (default 5,000 messages/s), one receiver on
//!    B: p50, p99 and max from each SEND's scheduled time to its push.

use crate::open_loop::{self, Latency, Schedule};
use crate::relay::{self, GotalkProto, Shape};
use crate::server::{Gotalk, Launch, Mode, StoreStats, POSTGRES_URL};
use crate::wire::{self, Client};
use crate::{thousands, Opts};
use std::time::{Duration, Instant};

/// Sends per second of the latency step, unless `--rate` says.
const DEFAULT_RATE: u64 = 5_000;

pub fn run(opts: &Opts) -> Result<(), String> {
    let url = POSTGRES_URL
        .get()
        .ok_or("cluster needs --postgres URL (a database it may empty)")?
        .clone();
    let (a, b) = start_nodes(opts, &url)?;
    let s_count = opts.senders.unwrap_or(4);
    let r_count = opts.receivers.unwrap_or(4);
    let shape = Shape {
        warmup: Duration::from_secs_f64(opts.warmup.unwrap_or(2.0)),
        measure: Duration::from_secs_f64(opts.seconds.unwrap_or(10.0)),
        window: opts.window.unwrap_or(crate::DEFAULT_WINDOW) as u64,
        max_messages: opts.max_messages,
    };
    let senders: Vec<String> = (0..s_count).map(|i| format!("bench-s{i}")).collect();
    let receivers: Vec<String> = (0..r_count).map(|i| format!("bench-r{i}")).collect();
    let everyone: Vec<String> = senders.iter().chain(&receivers).cloned().collect();
    wire::register_all(a.addr, &everyone)?;
    let (tx, _) = relay::login_all(a.addr, &senders)?;
    let (rx, _) = relay::login_all(b.addr, &receivers)?;
    wait_present(&url, "b", r_count)?;
    let before = last_stats(&a);
    let started = Instant::now();
    let outcome = relay::drive(
        &GotalkProto::new(&receivers),
        relay::plain_all(streams(tx)?)?,
        relay::plain_all(streams(rx)?)?,
        &shape,
        a.pid(),
    )
    .map_err(|e| format!("{e}\nnode A:\n{}\nnode B:\n{}", a.log_tail(), b.log_tail()))?;
    let drive_secs = started.elapsed().as_secs_f64();
    // A's writer logs its cumulative figures every 10 s while it writes,
    // and once more when idle after the load.
    let after = a.next_stats(Instant::now(), Duration::from_secs(15));
    println!(
        "cluster relay: {s_count} senders on node A -> {r_count} receivers on node B, one \
         PostgreSQL, window {} per sender, {:.1} s measured after {:.1} s warm-up",
        shape.window,
        outcome.seconds,
        shape.warmup.as_secs_f64()
    );
    relay::print_outcome(&outcome, None);
    if let Some(y) = after {
        // Writes happen only during the load (the accounts aside).
        let (t0, w0) = before.map_or((0, 0), |x| (x.transactions, x.writes));
        let commits = y.transactions.saturating_sub(t0);
        let writes = y.writes.saturating_sub(w0);
        println!(
            "node A's store during the load ({drive_secs:.1} s with warm-up and drain): \
             {} commits/s, {:.1} writes (SENDs) per commit",
            thousands(commits as f64 / drive_secs),
            writes as f64 / commits.max(1) as f64
        );
    }
    drop((a, b));

    let (a, b) = start_nodes(opts, &url)?;
    let schedule = Schedule::from_opts(opts, DEFAULT_RATE);
    let lat = latency(&a, &b, &url, &schedule)
        .map_err(|e| format!("{e}\nnode A:\n{}\nnode B:\n{}", a.log_tail(), b.log_tail()))?;
    println!(
        "\ncluster latency, sender on node A, receiver on node B: {}",
        schedule.describe()
    );
    open_loop::print_rows(&[("gotalk A -> B".into(), Ok(lat))]);
    Ok(())
}

/// Node A (database emptied, the token key in its data directory) and
/// node B on the same database with A's key file.
fn start_nodes(opts: &Opts, url: &str) -> Result<(Gotalk, Gotalk), String> {
    let mut launch = Launch::default();
    launch
        .args
        .extend(crate::server::UNTHROTTLED.map(String::from));
    let mut launch_a = launch.clone();
    launch_a.args.extend(["--node-id".into(), "a".into()]);
    let a = Gotalk::start_with(&opts.server, Mode::Postgres, &launch_a)?;
    let key = a
        .data_dir()
        .ok_or("node A has no data directory")?
        .join("secret.key");
    let mut launch_b = launch;
    launch_b.args.extend([
        "--postgres".into(),
        url.to_string(),
        "--key-file".into(),
        key.display().to_string(),
        "--node-id".into(),
        "b".into(),
    ]);
    let b = Gotalk::start_on(&opts.server, crate::server::temp_dir("data")?, &launch_b)?;
    Ok((a, b))
}

fn streams(clients: Vec<Client>) -> Result<Vec<std::net::TcpStream>, String> {
    clients.into_iter().map(Client::into_stream).collect()
}

fn last_stats(node: &Gotalk) -> Option<StoreStats> {
    node.store_stats().pop()
}

/// Waits until `count` users are recorded present on node `node` (it
/// writes them on its store thread, after the LOGINs).
fn wait_present(url: &str, node: &str, count: usize) -> Result<(), String> {
    let mut db = postgres::Client::connect(url, postgres::NoTls).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = db
            .query_one("SELECT count(*) FROM presence WHERE node = $1", &[&node])
            .map_err(|e| e.to_string())?;
        if row.get::<_, i64>(0) as usize >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("node {node} never recorded its {count} users"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The open-loop step from node A to node B: the sender logged in on A,
/// the receiver on B (recorded present there before the first SEND).
fn latency(a: &Gotalk, b: &Gotalk, url: &str, schedule: &Schedule) -> Result<Latency, String> {
    let names = open_loop::GOTALK_USERS.map(String::from);
    wire::register_all(a.addr, &names)?;
    let (mut tx, _) = relay::login_all(a.addr, &names[..1])?;
    let (mut rx, _) = relay::login_all(b.addr, &names[1..])?;
    wait_present(url, "b", 1)?;
    let tx = relay::plain(tx.pop().ok_or("no sender")?.into_stream()?)?;
    let rx = relay::plain(rx.pop().ok_or("no receiver")?.into_stream()?)?;
    open_loop::measure(&open_loop::gotalk_proto(), 0, tx, rx, schedule)
}
