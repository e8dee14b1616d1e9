//! The `cluster` scenario: two goTalk nodes on one PostgreSQL database
//! (`--postgres URL`, emptied first), senders logged in on node A and
//! receivers on node B, so every message crosses nodes: committed by A,
//! then a NOTIFY wakes B, which reads it from the database and pushes it.
//!
//! 1. **Relay**: the `relay` load (pipelined SENDs, a window in flight per
//!    sender; every reply comes after the commit) from A to B: relayed
//!    messages/s, and A's commits/s and messages per commit from its
//!    `store stats:` lines.
//! 2. **Latency**: one sender on A at a fixed `--rate` (default 5,000
//!    messages/s), each message carrying its send time; one receiver on
//!    B: the SEND-to-push time's p50, p99 and max.

use crate::relay::{self, GotalkProto, Shape};
use crate::server::{Gotalk, Launch, Mode, StoreStats, POSTGRES_URL};
use crate::wire::{self, Client};
use crate::{print_table, thousands, Opts};
use std::io::{BufRead, BufReader, Write};
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
        window: opts.window as u64,
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
    let rate = opts.rate.unwrap_or(DEFAULT_RATE);
    let seconds = opts.seconds.unwrap_or(10.0);
    let mut lat = latency(&a, &b, &url, rate, seconds)?;
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    println!(
        "\ncluster latency: one sender on node A at {} messages/s, one receiver on node B, \
         {seconds:.0} s",
        thousands(rate as f64)
    );
    print_table(
        &["pushes timed", "p50 ms", "p99 ms", "max ms"],
        &[vec![
            thousands(lat.len() as f64),
            format!("{:.2}", pct(0.5)),
            format!("{:.2}", pct(0.99)),
            format!("{:.2}", pct(1.0)),
        ]],
    );
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

/// One sender on A at `rate` per second for `seconds`, one receiver on B;
/// returns the SEND-to-push times in µs.
fn latency(a: &Gotalk, b: &Gotalk, url: &str, rate: u64, seconds: f64) -> Result<Vec<u64>, String> {
    let names = ["lat-sender".to_string(), "lat-receiver".to_string()];
    wire::register_all(a.addr, &names)?;
    let (mut tx, _) = relay::login_all(a.addr, &names[..1])?;
    let (mut rx, _) = relay::login_all(b.addr, &names[1..])?;
    wait_present(url, "b", 1)?;
    let tx = tx.pop().ok_or("no sender")?.into_stream()?;
    let rx = rx.pop().ok_or("no receiver")?.into_stream()?;
    let origin = Instant::now();
    let total = (rate as f64 * seconds) as u64;

    // The sender's replies are read (and dropped) on a thread of their own.
    let replies = tx.try_clone().map_err(|e| e.to_string())?;
    let reply_reader = std::thread::spawn(move || {
        let mut r = BufReader::new(replies);
        let mut line = String::new();
        let mut n = 0u64;
        while n < total {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => n += 1,
            }
        }
    });
    let sender = std::thread::spawn(move || -> Result<(), String> {
        let mut w = tx;
        for i in 0..total {
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            let now = origin.elapsed();
            if due > now {
                std::thread::sleep(due - now);
            }
            let sent_us = origin.elapsed().as_micros();
            let line = format!(
                "{{\"cmd\":\"send\",\"to\":\"lat-receiver\",\"content\":\"t{sent_us}\"}}\n"
            );
            w.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        }
        Ok(())
    });

    let mut ack = rx.try_clone().map_err(|e| e.to_string())?;
    let _ = rx.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(rx);
    let mut line = String::new();
    let mut out = Vec::with_capacity(total as usize);
    let mut since_ack = 0;
    while (out.len() as u64) < total {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return Err("node B closed the receiver".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("receiver: {e} after {} pushes", out.len())),
        }
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap_or_default();
        if v["event"] != "message" {
            continue;
        }
        let now_us = origin.elapsed().as_micros() as u64;
        let content = v["message"]["content"].as_str().unwrap_or("");
        if let Some(sent) = content
            .strip_prefix('t')
            .and_then(|t| t.parse::<u64>().ok())
        {
            out.push(now_us.saturating_sub(sent));
        }
        since_ack += 1;
        if since_ack >= relay::ACK_EVERY {
            since_ack = 0;
            let upto = v["message"]["id"].as_u64().unwrap_or(0);
            let _ = ack.write_all(format!("{{\"cmd\":\"ack\",\"upto\":{upto}}}\n").as_bytes());
        }
    }
    sender.join().map_err(|_| "sender panicked")??;
    let _ = reply_reader.join();
    Ok(out)
}
