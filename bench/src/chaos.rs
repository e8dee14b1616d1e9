//! `chaos`: bounded load against a durable server that is killed at random
//! moments (SIGKILL, sometimes SIGTERM) and restarted on the same data
//! directory, then a check of goTalk's promises over the whole run:
//! - every SEND answered `ok` is delivered to its receiver (lost = 0);
//! - nothing is delivered again after its receiver's ACK was answered;
//! - each sender's messages reach a receiver in the order they were sent;
//! - a SEND retried with its `client_id` after a crash is stored once.
//!
//! Senders send one request at a time (message `k` only after `k-1` was
//! answered) and retry with the same `client_id` when a connection breaks;
//! receivers long-poll SYNC and ACK what they got. Everything talks to
//! 127.0.0.1, and the run stops by itself after `--seconds` (default 120)
//! or `--max-messages` messages.

use crate::server::{listening_addr, temp_dir, UNSHARED, UNTHROTTLED};
use crate::Opts;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const SENDERS: usize = 4;
const RECEIVERS: usize = 3;
const PASSWORD: &str = "chaos-password";
/// Read timeout on client sockets: a request unanswered this long is
/// treated like a broken connection (and retried).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// After the load stops, how long the receivers may take to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The server under test: restarted on the same data directory.
struct Durable {
    binary: PathBuf,
    data: PathBuf,
    child: Option<Child>,
    /// Where clients connect; updated at each restart (a new port).
    addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl Durable {
    fn start(&mut self) -> Result<(), String> {
        let mut child = Command::new(&self.binary)
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(&self.data)
            .args(UNTHROTTLED)
            .envs(UNSHARED)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the server did not start within 30 s".to_string())?;
        *self.addr.lock().expect("addr lock") = Some(addr);
        self.child = Some(child);
        Ok(())
    }

    /// Stops the server with `signal` and waits for it to exit.
    fn stop(&mut self, signal: i32) {
        *self.addr.lock().expect("addr lock") = None;
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill only sends a signal to our own child.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        self.stop(libc::SIGKILL);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// What the whole run saw.
#[derive(Default)]
struct Ledger {
    /// (sender, seq) → the id its `ok` reply gave.
    acknowledged: HashMap<(usize, u64), u64>,
    /// Per receiver: message id → (sender, seq), first delivery.
    delivered: Vec<BTreeMap<u64, (usize, u64)>>,
    /// Deliveries of an id after the receiver's ACK covering it was answered.
    redelivered_after_ack: u64,
    /// SENDs retried after a broken connection.
    retries: u64,
}

/// A blocking line client that fails on any broken connection.
struct Line {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Line {
    fn connect(addr: &Mutex<Option<SocketAddr>>, stop: &AtomicBool) -> Option<Line> {
        while !stop.load(Ordering::Relaxed) {
            let current = *addr.lock().expect("addr lock");
            if let Some(addr) = current {
                if let Ok(stream) = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT) {
                    let _ = stream.set_nodelay(true);
                    let _ = stream.set_read_timeout(Some(REPLY_TIMEOUT));
                    let writer = stream.try_clone().ok()?;
                    return Some(Line {
                        reader: BufReader::new(stream),
                        writer,
                    });
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends one request and reads its reply, skipping events.
    fn request(&mut self, request: &Value) -> Result<Value, String> {
        let mut bytes = request.to_string().into_bytes();
        bytes.push(b'\n');
        self.writer.write_all(&bytes).map_err(|e| e.to_string())?;
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err("closed".into()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
            let value: Value = serde_json::from_str(line.trim_end()).map_err(|e| e.to_string())?;
            if value.get("ok").is_some() {
                return Ok(value);
            }
        }
    }

    /// Logs in as `user`; `Err` if the connection broke.
    fn login(&mut self, user: &str) -> Result<(), String> {
        let reply =
            self.request(&json!({"cmd": "login", "username": user, "password": PASSWORD}))?;
        if reply["ok"] == true {
            Ok(())
        } else {
            Err(format!("LOGIN {user}: {reply}"))
        }
    }
}

pub fn run(opts: &Opts) -> Result<(), String> {
    let seconds = opts.seconds.unwrap_or(120.0);
    let data = temp_dir("chaos")?;
    let mut server = Durable {
        binary: opts.server.clone(),
        data,
        child: None,
        addr: Arc::new(Mutex::new(None)),
    };
    if !Path::new(&server.binary).exists() {
        return Err(format!(
            "no server binary at {} (cargo build --release, or --server PATH)",
            server.binary.display()
        ));
    }
    server.start()?;
    setup_accounts(&server.addr)?;

    let stop_load = Arc::new(AtomicBool::new(false));
    let stop_all = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let ledger = Arc::new(Mutex::new(Ledger {
        delivered: vec![BTreeMap::new(); RECEIVERS],
        ..Ledger::default()
    }));
    let mut threads = Vec::new();
    for s in 0..SENDERS {
        let (addr, stop, ledger, sent) = (
            server.addr.clone(),
            stop_load.clone(),
            ledger.clone(),
            sent.clone(),
        );
        let max = opts.max_messages;
        threads.push(thread::spawn(move || {
            sender(s, &addr, &stop, &ledger, &sent, max)
        }));
    }
    let mut receivers = Vec::new();
    for r in 0..RECEIVERS {
        let (addr, stop, ledger) = (server.addr.clone(), stop_all.clone(), ledger.clone());
        receivers.push(thread::spawn(move || receiver(r, &addr, &stop, &ledger)));
    }

    // Kill and restart at random moments until the time is up.
    let started = Instant::now();
    let (mut sigkills, mut sigterms) = (0u32, 0u32);
    let mut rng = seed();
    while started.elapsed().as_secs_f64() < seconds {
        let pause = 300 + next(&mut rng) % 2500;
        let left = seconds - started.elapsed().as_secs_f64();
        thread::sleep(Duration::from_millis(pause).min(Duration::from_secs_f64(left.max(0.0))));
        if started.elapsed().as_secs_f64() >= seconds {
            break;
        }
        if next(&mut rng).is_multiple_of(4) {
            server.stop(libc::SIGTERM);
            sigterms += 1;
        } else {
            server.stop(libc::SIGKILL);
            sigkills += 1;
        }
        server.start()?;
    }
    stop_load.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "a sender panicked")??;
    }
    // Let the receivers drain everything acknowledged.
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while Instant::now() < drain_deadline && count_lost(&ledger.lock().expect("ledger lock")) > 0 {
        thread::sleep(Duration::from_millis(50));
    }
    stop_all.store(true, Ordering::Relaxed);
    for t in receivers {
        t.join().map_err(|_| "a receiver panicked")??;
    }
    let ledger = ledger.lock().expect("ledger lock");
    report(&ledger, seconds, sigkills, sigterms)
}

/// Registers the senders and receivers.
fn setup_accounts(addr: &Mutex<Option<SocketAddr>>) -> Result<(), String> {
    let never = AtomicBool::new(false);
    let mut line = Line::connect(addr, &never).ok_or("cannot connect")?;
    let names = (0..SENDERS)
        .map(|s| format!("sender{s}"))
        .chain((0..RECEIVERS).map(|r| format!("receiver{r}")));
    for name in names {
        let reply =
            line.request(&json!({"cmd": "register", "username": name, "password": PASSWORD}))?;
        if reply["ok"] != true {
            return Err(format!("REGISTER {name}: {reply}"));
        }
    }
    Ok(())
}

/// Which receiver message `seq` of sender `s` goes to.
fn receiver_of(s: usize, seq: u64) -> usize {
    (s + seq as usize) % RECEIVERS
}

fn sender(
    s: usize,
    addr: &Mutex<Option<SocketAddr>>,
    stop: &AtomicBool,
    ledger: &Mutex<Ledger>,
    sent: &AtomicU64,
    max_messages: u64,
) -> Result<(), String> {
    let user = format!("sender{s}");
    let mut seq = 0u64;
    let mut retrying = false;
    'connect: while !stop.load(Ordering::Relaxed) {
        let Some(mut line) = Line::connect(addr, stop) else {
            break;
        };
        if line.login(&user).is_err() {
            continue;
        }
        while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < max_messages {
            let to = format!("receiver{}", receiver_of(s, seq));
            let request = json!({
                "cmd": "send", "to": to, "content": format!("{s}:{seq}"),
                "client_id": format!("s{s}-{seq}"),
            });
            if retrying {
                ledger.lock().expect("ledger lock").retries += 1;
            }
            match line.request(&request) {
                Ok(reply) if reply["ok"] == true => {
                    let id = reply["id"].as_u64().ok_or("SEND reply without id")?;
                    ledger
                        .lock()
                        .expect("ledger lock")
                        .acknowledged
                        .insert((s, seq), id);
                    sent.fetch_add(1, Ordering::Relaxed);
                    seq += 1;
                    retrying = false;
                }
                // `unavailable` while the store restarts: the same SEND
                // again, same client_id. Anything else is a bug.
                Ok(reply) if reply["error"]["code"] == "unavailable" => {
                    retrying = true;
                    thread::sleep(Duration::from_millis(20));
                }
                Ok(reply) => return Err(format!("SEND {request}: {reply}")),
                Err(_) => {
                    retrying = true;
                    continue 'connect;
                }
            }
        }
        break;
    }
    Ok(())
}

fn receiver(
    r: usize,
    addr: &Mutex<Option<SocketAddr>>,
    stop: &AtomicBool,
    ledger: &Mutex<Ledger>,
) -> Result<(), String> {
    let user = format!("receiver{r}");
    // Ids whose ACK was answered: delivering one again breaks a promise.
    let mut acked_upto = 0u64;
    let mut seen_by_sender: HashMap<usize, u64> = HashMap::new();
    let mut seen_ids: HashSet<u64> = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(mut line) = Line::connect(addr, stop) else {
            break;
        };
        if line.login(&user).is_err() {
            continue;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Ok(reply) = line.request(&json!({"cmd": "sync", "wait_ms": 500, "limit": 500}))
            else {
                break;
            };
            let Some(messages) = reply["messages"].as_array() else {
                break; // unavailable during a restart: reconnect
            };
            let mut newest = 0;
            for m in messages {
                let id = m["id"].as_u64().ok_or("message without id")?;
                let content = m["content"].as_str().unwrap_or("");
                let (s, seq) = content
                    .split_once(':')
                    .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<u64>().ok()?)))
                    .ok_or_else(|| format!("unexpected content {content:?}"))?;
                newest = newest.max(id);
                let mut ledger = ledger.lock().expect("ledger lock");
                if id <= acked_upto {
                    ledger.redelivered_after_ack += 1;
                }
                if seen_ids.insert(id) {
                    ledger.delivered[r].insert(id, (s, seq));
                    let last = seen_by_sender.entry(s).or_insert(0);
                    *last = (*last).max(seq);
                }
            }
            if newest > 0 {
                match line.request(&json!({"cmd": "ack", "upto": newest})) {
                    Ok(reply) if reply["ok"] == true => acked_upto = acked_upto.max(newest),
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// Checks the promises and prints the table; `Err` if any was broken.
/// Acknowledged SENDs that have not reached their receiver (yet).
fn count_lost(ledger: &Ledger) -> u64 {
    let delivered_as_sent = |(&(s, seq), id): (&(usize, u64), &u64)| {
        ledger.delivered[receiver_of(s, seq)].get(id) == Some(&(s, seq))
    };
    ledger
        .acknowledged
        .iter()
        .filter(|&entry| !delivered_as_sent(entry))
        .count() as u64
}

fn report(ledger: &Ledger, seconds: f64, sigkills: u32, sigterms: u32) -> Result<(), String> {
    let lost = count_lost(ledger);
    // Stored twice: one (sender, seq) under two ids.
    let mut ids_of: HashMap<(usize, u64), u32> = HashMap::new();
    let mut order_violations = 0u64;
    for per_receiver in &ledger.delivered {
        let mut last_seq: HashMap<usize, u64> = HashMap::new();
        for (_, &(s, seq)) in per_receiver.iter() {
            *ids_of.entry((s, seq)).or_insert(0) += 1;
            if let Some(&prev) = last_seq.get(&s) {
                if seq <= prev {
                    order_violations += 1;
                }
            }
            last_seq.insert(s, seq);
        }
    }
    let stored_twice = ids_of.values().filter(|&&n| n > 1).count() as u64;
    let delivered: usize = ledger.delivered.iter().map(BTreeMap::len).sum();
    println!(
        "chaos: {SENDERS} senders, {RECEIVERS} receivers, durable store, {seconds} s, \
         killed at random moments and restarted"
    );
    crate::print_table(
        &["metric", "value"],
        &[
            vec!["server runs".into(), (sigkills + sigterms + 1).to_string()],
            vec!["SIGKILL".into(), sigkills.to_string()],
            vec!["SIGTERM".into(), sigterms.to_string()],
            vec![
                "SENDs acknowledged".into(),
                ledger.acknowledged.len().to_string(),
            ],
            vec!["SENDs retried".into(), ledger.retries.to_string()],
            vec!["messages delivered".into(), delivered.to_string()],
            vec!["lost".into(), lost.to_string()],
            vec![
                "delivered again after ACK".into(),
                ledger.redelivered_after_ack.to_string(),
            ],
            vec!["stored twice".into(), stored_twice.to_string()],
            vec!["order violations".into(), order_violations.to_string()],
        ],
    );
    if lost + ledger.redelivered_after_ack + stored_twice + order_violations > 0 {
        return Err("chaos: a promise was broken (see the table)".into());
    }
    if ledger.acknowledged.is_empty() {
        return Err("chaos: no SEND was acknowledged; the run proves nothing".into());
    }
    Ok(())
}

/// A small xorshift generator seeded from the clock: kill moments differ
/// from run to run, which is the point.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
        | 1
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
