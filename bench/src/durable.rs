//! The `durable` scenario: SEND throughput when every sender waits for its
//! reply before the next SEND (no pipelining), at several concurrency
//! levels, against the durable store (`--data` in a temporary directory)
//! and against `--memory`, side by side. A SEND is answered only once it
//! is committed, so with the durable store one sender is bound by one
//! commit per message; many senders are fast only if the server commits
//! their SENDs together (group commit). The proof is in the server's own
//! `store stats:` log lines: transactions per second and messages per
//! transaction over the same interval as the message count.
//!
//! Senders are threads with blocking sockets, all AUTHed as one user and
//! sending to one receiver connection that counts the pushes and ACKs
//! every [`ACK_EVERY`], so the mailbox stays small.

use crate::relay::ACK_EVERY;
use crate::server::{self, Gotalk, Launch, Mode, StoreStats};
use crate::wire::{self, Client, LineBuf};
use crate::{print_table, thousands, Opts};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a sender waits for one reply before it gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a `store stats:` line before measuring by the
/// clock alone (the store logs at most every 10 s).
const STATS_WAIT: Duration = Duration::from_secs(12);
const SENDER: &str = "bench-sender";
const SINK: &str = "bench-sink";

/// One level's figures.
struct Level {
    senders: usize,
    mode: Mode,
    seconds: f64,
    messages: u64,
    /// Store transactions, batches and writes over the same interval, if
    /// the server logged them.
    commits: Option<StoreDelta>,
    p50_us: Option<u32>,
    p99_us: Option<u32>,
    server_cpu: String,
    bench_cpu: String,
    errors: u64,
}

impl Level {
    fn per_second(&self) -> f64 {
        self.messages as f64 / self.seconds
    }
}

/// Growth of the store's counters over a measured window.
#[derive(Clone, Copy)]
struct StoreDelta {
    transactions: u64,
    batches: u64,
    writes: u64,
    /// The writing thread's CPU µs by phase, and the commits' wall µs
    /// ([`server::SPLIT_FIELDS`]), where the store reports them.
    split: Option<[u64; server::SPLIT_FIELDS.len()]>,
}

/// Shared by the sender threads of a level.
struct Shared {
    stop: AtomicBool,
    recording: AtomicBool,
    replies: Arc<AtomicU64>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

pub fn run(opts: &Opts) -> Result<(), String> {
    let measure = Duration::from_secs_f64(opts.seconds.unwrap_or(5.0));
    let warmup = Duration::from_secs_f64(opts.warmup.unwrap_or(1.0));
    let mut results = Vec::new();
    let mut first_errors = Vec::new();
    let mut failed = None;
    let mut modes = vec![Mode::Memory, Mode::Durable];
    if opts.postgres.is_some() {
        modes.push(Mode::Postgres);
    }
    for mode in modes {
        match run_mode(opts, mode, warmup, measure) {
            Ok((levels, first_error)) => {
                results.extend(levels);
                first_errors.extend(first_error.map(|e| format!("{}: {e}", mode.name())));
            }
            // Without --memory figures there is nothing to compare with.
            Err(e) if mode == Mode::Memory => return Err(e),
            Err(e) => failed = Some(e),
        }
    }
    println!(
        "durable: request/response SENDs (each sender waits for its reply), \
         {:.0} s per level after {:.0} s warm-up",
        measure.as_secs_f64(),
        warmup.as_secs_f64()
    );
    let mut rows = Vec::new();
    for &n in &opts.levels {
        for r in results.iter().filter(|r| r.senders == n) {
            let us = |v: Option<u32>| v.map_or("n/a".into(), |v| format!("{:.2}", v as f64 / 1e3));
            let (commits, batches, per_commit, writes) = match r.commits {
                Some(d) if d.transactions > 0 => {
                    let t = d.transactions as f64;
                    (
                        thousands(t / r.seconds),
                        thousands(d.batches as f64 / r.seconds),
                        format!("{:.1}", r.messages as f64 / t),
                        format!("{:.1}", d.writes as f64 / t),
                    )
                }
                _ if r.mode == Mode::Memory => ("-".into(), "-".into(), "-".into(), "-".into()),
                _ => ("n/a".into(), "n/a".into(), "n/a".into(), "n/a".into()),
            };
            rows.push(vec![
                n.to_string(),
                r.mode.name().into(),
                thousands(r.per_second()),
                us(r.p50_us),
                us(r.p99_us),
                commits,
                batches,
                per_commit,
                writes,
                r.server_cpu.trim_end_matches(" of a core").to_string(),
                r.bench_cpu.trim_end_matches(" of a core").to_string(),
                r.errors.to_string(),
            ]);
        }
    }
    print_table(
        &[
            "senders",
            "store",
            "msgs/s",
            "p50 ms",
            "p99 ms",
            "commits/s",
            "batches/s",
            "msgs/commit",
            "writes/commit",
            "server CPU",
            "bench CPU",
            "errors",
        ],
        &rows,
    );
    print_split(&opts.levels, &results);
    for &n in &opts.levels {
        let find = |m: Mode| results.iter().find(|r| r.senders == n && r.mode == m);
        if let (Some(mem), Some(dur)) = (find(Mode::Memory), find(Mode::Durable)) {
            let ratio = mem.per_second() / dur.per_second().max(1e-9);
            let verdict = if n >= 64 {
                if ratio <= 3.0 {
                    " (goal at 64 senders: within 3x, met)"
                } else {
                    " (goal at 64 senders: within 3x, MISSED)"
                }
            } else {
                ""
            };
            println!("{n} senders: --memory / durable = {ratio:.2}x{verdict}");
        }
    }
    for e in first_errors {
        println!("first error, {e}");
    }
    match failed {
        Some(e) => Err(format!("the durable store could not be measured: {e}")),
        None => Ok(()),
    }
}

/// The writing thread's CPU time per stored message, by phase, from the
/// server's `store stats:` lines (its own thread clock, so the machine's
/// other load moves it little), the commit's wall time less its CPU (the
/// fsync) and the pages a commit wrote to the log.
fn print_split(levels: &[usize], results: &[Level]) {
    let mut rows = Vec::new();
    for &n in levels {
        for r in results.iter().filter(|r| r.senders == n) {
            let Some((d, split)) = r.commits.and_then(|d| Some((d, d.split?))) else {
                continue;
            };
            if r.messages == 0 || d.transactions == 0 {
                continue;
            }
            let per_msg = |us: u64| format!("{:.2}", us as f64 / r.messages as f64);
            let (phases, after) = split.split_at(split.len() - 2);
            let (wall, pages) = (after[0], after[1]);
            let mut row = vec![n.to_string(), r.mode.name().into()];
            row.push(per_msg(phases.iter().sum()));
            row.extend(phases.iter().map(|&us| per_msg(us)));
            let commit_cpu = phases[phases.len() - 1];
            let t = d.transactions as f64;
            row.push(format!("{:.1}", wall.saturating_sub(commit_cpu) as f64 / t));
            row.push(format!("{:.1}", pages as f64 / t));
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return;
    }
    println!(
        "store thread CPU per message (µs), the disk wait per commit (µs) \
         and the pages each commit wrote:"
    );
    let mut header = vec!["senders", "store", "cpu/msg"];
    header.extend(&server::SPLIT_FIELDS[..server::SPLIT_FIELDS.len() - 2]);
    header.extend(["wait/commit", "pages/commit"]);
    print_table(&header, &rows);
}

/// All levels against one server in `mode`.
fn run_mode(
    opts: &Opts,
    mode: Mode,
    warmup: Duration,
    measure: Duration,
) -> Result<(Vec<Level>, Option<String>), String> {
    // Every sender logs in as the one user: the highest level needs that
    // many connections per user (the server's default is 16), plus the
    // LOGIN's own connection, which may not be closed yet.
    let most = opts.levels.iter().copied().max().unwrap_or(1);
    let mut launch = Launch {
        args: vec!["--conns-per-user".into(), (most + 1).to_string()],
        open_files: None,
        ..Default::default()
    };
    // `--server-arg=--no-history`, say, for the cost of history.
    launch.args.extend(opts.server_args.iter().cloned());
    let mut server = Gotalk::start_with(&opts.server, mode, &launch)?;
    let outcome = levels(&mut server, opts, mode, warmup, measure);
    outcome.map_err(|e| {
        format!(
            "{} server: {e}\nserver log:\n{}",
            mode.name(),
            server.log_tail()
        )
    })
}

fn levels(
    server: &mut Gotalk,
    opts: &Opts,
    mode: Mode,
    warmup: Duration,
    measure: Duration,
) -> Result<(Vec<Level>, Option<String>), String> {
    // One account per sender, as people sending: several connections of
    // one account would each also get the others' `sent` copies.
    let most = opts.levels.iter().copied().max().unwrap_or(1);
    let senders: Vec<String> = (0..most).map(|i| format!("{SENDER}-{i}")).collect();
    let mut names = senders.clone();
    names.push(SINK.to_string());
    wire::register_all(server.addr, &names)?;
    let mut tokens = Vec::with_capacity(senders.len());
    for name in &senders {
        tokens.push(Client::connect(server.addr)?.login(name)?);
    }
    let mut sink = Client::connect(server.addr)?;
    sink.login(SINK)?;
    let sink_stream = sink.into_stream()?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        recording: AtomicBool::new(false),
        replies: Arc::new(AtomicU64::new(0)),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    server.count_with(shared.replies.clone());
    let sink_stop = Arc::new(AtomicBool::new(false));
    let sink_thread = {
        let stop = sink_stop.clone();
        std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || receive(sink_stream, &stop))
            .map_err(|e| e.to_string())?
    };
    let mut results = Vec::new();
    for &n in &opts.levels {
        let level = run_level(server, &shared, &tokens[..n], mode, warmup, measure);
        match level {
            Ok(level) => results.push(level),
            Err(e) => {
                sink_stop.store(true, Ordering::Relaxed);
                let _ = sink_thread.join();
                return Err(e);
            }
        }
        if !server.alive() {
            return Err("the server exited".into());
        }
    }
    sink_stop.store(true, Ordering::Relaxed);
    let received = sink_thread
        .join()
        .map_err(|_| "the receiver thread panicked")??;
    let sent = shared.replies.load(Ordering::Relaxed);
    if received < sent {
        // Pushes still in flight when the receiver stopped are not lost:
        // they stay in the mailbox. Say so only if many are missing.
        if sent - received > 10_000 {
            eprintln!(
                "note: the receiver got {received} pushes for {sent} stored messages ({})",
                mode.name()
            );
        }
    }
    let first_error = shared.first_error.lock().expect("lock").clone();
    Ok((results, first_error))
}

/// One concurrency level: `n` sender threads, warm-up, then a window
/// aligned with `store stats:` lines where the server logs them.
fn run_level(
    server: &Gotalk,
    shared: &Arc<Shared>,
    tokens: &[String],
    mode: Mode,
    warmup: Duration,
    measure: Duration,
) -> Result<Level, String> {
    shared.stop.store(false, Ordering::Relaxed);
    shared.recording.store(false, Ordering::Relaxed);
    let errors_before = shared.errors.load(Ordering::Relaxed);
    let n = tokens.len();
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut threads: Vec<JoinHandle<Result<Vec<u32>, String>>> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let mut client = Client::connect(server.addr)?;
        client.auth(token)?;
        let stream = client.into_stream()?;
        let (for_thread, barrier) = (shared.clone(), barrier.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("sender-{i}"))
            .spawn(move || send_loop(stream, &for_thread, &barrier));
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                shared.stop.store(true, Ordering::Relaxed);
                return Err(format!("cannot start sender thread {i}: {e}"));
            }
        }
    }
    barrier.wait();
    std::thread::sleep(warmup);
    let window = if mode != Mode::Memory {
        stats_window(server, shared, measure)
    } else {
        None
    };
    let (seconds, messages, commits, cpu) = match window {
        Some((a, a_cpu, b, b_cpu)) => (
            b.at.duration_since(a.at).as_secs_f64(),
            b.counted - a.counted,
            Some(StoreDelta {
                transactions: b.transactions - a.transactions,
                batches: b.batches - a.batches,
                writes: b.writes - a.writes,
                split: a.split.zip(b.split).map(|(a, b)| {
                    let mut d = [0; server::SPLIT_FIELDS.len()];
                    for (i, slot) in d.iter_mut().enumerate() {
                        *slot = b[i].saturating_sub(a[i]);
                    }
                    d
                }),
            }),
            (a_cpu, b_cpu),
        ),
        None => {
            let t0 = Instant::now();
            let m0 = shared.replies.load(Ordering::Relaxed);
            let cpu0 = CpuMark::now(server);
            shared.recording.store(true, Ordering::Relaxed);
            std::thread::sleep(measure);
            shared.recording.store(false, Ordering::Relaxed);
            let cpu1 = CpuMark::now(server);
            let m1 = shared.replies.load(Ordering::Relaxed);
            (t0.elapsed().as_secs_f64(), m1 - m0, None, (cpu0, cpu1))
        }
    };
    shared.stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in threads {
        let lat = t.join().map_err(|_| "a sender thread panicked")??;
        latencies.extend(lat);
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> Option<u32> {
        (!latencies.is_empty())
            .then(|| latencies[((latencies.len() - 1) as f64 * p).round() as usize])
    };
    Ok(Level {
        senders: n,
        mode,
        seconds,
        messages,
        commits,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        server_cpu: server::cpu_percent(cpu.0.server, cpu.1.server, seconds),
        bench_cpu: server::cpu_percent(cpu.0.bench, cpu.1.bench, seconds),
        errors: shared.errors.load(Ordering::Relaxed) - errors_before,
    })
}

/// From the first `store stats:` line after now to the first one at least
/// `measure` later; `None` if the server logs none in time.
fn stats_window(
    server: &Gotalk,
    shared: &Shared,
    measure: Duration,
) -> Option<(StoreStats, CpuMark, StoreStats, CpuMark)> {
    let a = server.next_stats(Instant::now(), STATS_WAIT)?;
    let a_cpu = CpuMark::now(server);
    shared.recording.store(true, Ordering::Relaxed);
    let b = server.next_stats(a.at + measure, measure + STATS_WAIT);
    let b_cpu = CpuMark::now(server);
    shared.recording.store(false, Ordering::Relaxed);
    Some((a, a_cpu, b?, b_cpu))
}

/// CPU time used so far by the server and by the bench.
#[derive(Clone, Copy)]
struct CpuMark {
    server: Option<u64>,
    bench: Option<u64>,
}

impl CpuMark {
    fn now(server: &Gotalk) -> CpuMark {
        CpuMark {
            server: server::cpu_ticks(Some(server.pid())),
            bench: server::cpu_ticks(None),
        }
    }
}

/// One sender: SEND, wait for the reply, repeat until told to stop.
/// Returns the reply latencies (µs) seen while recording.
fn send_loop(stream: TcpStream, shared: &Shared, barrier: &Barrier) -> Result<Vec<u32>, String> {
    let line = format!(
        "{{\"cmd\":\"send\",\"to\":\"{SINK}\",\"content\":\"{}\"}}\n",
        crate::relay::CONTENT
    );
    let setup = stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .and_then(|_| stream.set_write_timeout(Some(REPLY_TIMEOUT)))
        .and_then(|_| stream.try_clone());
    let mut writer = match setup {
        Ok(w) => w,
        Err(e) => {
            barrier.wait();
            return Err(format!("socket setup failed: {e}"));
        }
    };
    let mut reader = BufReader::with_capacity(4096, stream);
    let mut reply = Vec::with_capacity(128);
    let mut latencies = Vec::new();
    barrier.wait();
    while !shared.stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        writer
            .write_all(line.as_bytes())
            .map_err(|e| format!("SEND write failed: {e}"))?;
        reply.clear();
        match reader.read_until(b'\n', &mut reply) {
            Ok(0) => return Err("the server closed a sender connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("no reply to SEND within {REPLY_TIMEOUT:?}: {e}")),
        }
        if shared.recording.load(Ordering::Relaxed) {
            latencies.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
        if wire::is_error_reply(&reply) {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            let mut first = shared.first_error.lock().expect("lock");
            if first.is_none() {
                *first = Some(String::from_utf8_lossy(reply.trim_ascii_end()).into_owned());
            }
        } else {
            shared.replies.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(latencies)
}

/// The receiving user's connection: counts pushes, ACKs every
/// [`ACK_EVERY`], until `stop`. Returns the pushes counted.
fn receive(mut stream: TcpStream, stop: &AtomicBool) -> Result<u64, String> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let mut input = LineBuf::new(256 * 1024);
    let (mut count, mut last_id, mut since_ack) = (0u64, 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        match stream.read(input.spare()) {
            Ok(0) => return Err("the server closed the receiver connection".into()),
            Ok(n) => input.filled(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("receiver read failed: {e}")),
        }
        input.lines(|line| {
            if let Some(id) = wire::push_id(line) {
                count += 1;
                since_ack += 1;
                last_id = id;
            }
        })?;
        if since_ack >= ACK_EVERY {
            since_ack = 0;
            stream
                .write_all(format!("{{\"cmd\":\"ack\",\"upto\":{last_id}}}\n").as_bytes())
                .map_err(|e| format!("ACK write failed: {e}"))?;
        }
    }
    Ok(count)
}
