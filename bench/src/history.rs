//! The `history` scenario: what conversations cost at scale. A durable
//! server (SQLite on a temporary `--data`, or `--postgres URL`) is filled
//! with `--max-messages` messages (default 1,000,000) over `--conns`
//! conversations (default 10,000) among [`PARTNERS`] + 1 users: a hub
//! that talks with every partner (so one user has 1,000 conversations),
//! and rings of partners for the rest. Then, one request at a time:
//! HISTORY pages of 50 (the newest, and from a random point back) of
//! random conversations, and CONVERSATIONS of the hub, each with p50 and
//! p99; and the store's size per stored message. The same fill runs again
//! with `--no-history` for its size per message.
//!
//! Nothing is acknowledged (so `--no-history` keeps the same messages);
//! the mailbox caps are lifted for the fill. Messages are sent on a few
//! pipelining connections, each SEND carrying its sender's token, so the
//! fill costs two argon2 hashes per user, not per message.

use crate::server::{self, Gotalk, Launch, Mode, POSTGRES_URL};
use crate::wire::{self, Client, PASSWORD};
use crate::{print_table, thousands, Opts};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The hub's partners: the user with 1,000 conversations.
const PARTNERS: usize = 1000;
const MESSAGES: u64 = 1_000_000;
const CONVERSATIONS: usize = 10_000;
const CONTENT: &str = "a message of history, about as long as a chat line is";
const FILLERS: usize = 4;
const WINDOW: usize = 512;
const PAGE: usize = 50;
/// Requests timed per figure.
const SAMPLES: usize = 2000;

/// Flags that lift the mailbox caps for a fill nobody acknowledges.
const UNCAPPED: [&str; 8] = [
    "--mailbox-limit",
    "100000000",
    "--mailbox-bytes",
    "68719476736",
    "--pending-bytes",
    "68719476736",
    "--pending-bytes-per-sender",
    "68719476736",
];

pub fn run(opts: &Opts) -> Result<(), String> {
    let messages = if opts.max_messages == Opts::default().max_messages {
        MESSAGES
    } else {
        opts.max_messages
    };
    let conversations = opts.conns.unwrap_or(CONVERSATIONS).max(1);
    let partners = PARTNERS.min(conversations);
    let mode = if opts.postgres.is_some() {
        Mode::Postgres
    } else {
        Mode::Durable
    };
    let mut launch = Launch {
        args: UNCAPPED.iter().map(|s| s.to_string()).collect(),
        open_files: None,
    };
    launch.args.extend(opts.server_args.iter().cloned());
    let plan = Plan::new(partners, conversations);
    println!(
        "history: {} messages in {} conversations among {} users ({}), pages of {PAGE}",
        thousands(messages as f64),
        thousands(conversations as f64),
        partners + 1,
        mode.name()
    );

    let mut rows = Vec::new();
    let server = Gotalk::start_with(&opts.server, mode, &launch)?;
    let tokens = accounts(server.addr, partners)?;
    let started = Instant::now();
    fill(server.addr, &tokens, &plan, messages)?;
    let fill_seconds = started.elapsed().as_secs_f64();
    rows.push(vec![
        "fill (history on)".into(),
        format!("{} msgs/s", thousands(messages as f64 / fill_seconds)),
        String::new(),
    ]);
    let ids = user_ids(server.addr, &tokens)?;
    let (newest, deep) = pages(server.addr, &tokens, &ids, &plan, messages)?;
    rows.push(vec![
        format!("HISTORY, newest {PAGE}"),
        latency(&newest),
        format!("{} pages", newest.len()),
    ]);
    rows.push(vec![
        format!("HISTORY, {PAGE} from a random point back"),
        latency(&deep),
        format!("{} pages", deep.len()),
    ]);
    let listed = list(server.addr, &tokens[0])?;
    rows.push(vec![
        format!("CONVERSATIONS of a user with {partners} partners"),
        latency(&listed),
        format!("{} calls", listed.len()),
    ]);
    let with = size(server, mode)?;
    rows.push(vec![
        "store size, history on".into(),
        format!("{:.0} bytes/message", with as f64 / messages as f64),
        format!("{:.1} MiB", with as f64 / 1048576.0),
    ]);

    // The same fill without history.
    launch.args.push("--no-history".into());
    let server = Gotalk::start_with(&opts.server, mode, &launch)?;
    let tokens = accounts(server.addr, partners)?;
    fill(server.addr, &tokens, &plan, messages)?;
    let without = size(server, mode)?;
    rows.push(vec![
        "store size, --no-history".into(),
        format!("{:.0} bytes/message", without as f64 / messages as f64),
        format!("{:.1} MiB", without as f64 / 1048576.0),
    ]);
    print_table(&["what", "figure", ""], &rows);
    Ok(())
}

/// Who talks with whom: conversation `c` is between users `pair(c)`
/// (0 is the hub, 1..=partners its partners).
struct Plan {
    partners: usize,
    conversations: usize,
}

impl Plan {
    fn new(partners: usize, conversations: usize) -> Plan {
        Plan {
            partners,
            conversations,
        }
    }

    /// The two users of conversation `c`: the hub and a partner first,
    /// then partner `i` with partner `i + 1 + k` for growing `k`.
    fn pair(&self, c: usize) -> (usize, usize) {
        if c < self.partners {
            return (0, c + 1);
        }
        let c = c - self.partners;
        let p = self.partners.max(2);
        let i = c % p;
        let k = 1 + (c / p) % (p - 1);
        (1 + i, 1 + (i + k) % p)
    }

    /// Message `n`'s sender and receiver: conversations in turn, each
    /// direction in turn.
    fn message(&self, n: u64) -> (usize, usize) {
        let c = (n % self.conversations as u64) as usize;
        let (a, b) = self.pair(c);
        if (n / self.conversations as u64).is_multiple_of(2) {
            (a, b)
        } else {
            (b, a)
        }
    }
}

fn name(user: usize) -> String {
    format!("hb{user}")
}

/// Registers the hub and its partners and logs each in once; their tokens.
fn accounts(addr: SocketAddr, partners: usize) -> Result<Vec<String>, String> {
    let names: Vec<String> = (0..=partners).map(name).collect();
    wire::register_all(addr, &names)?;
    let mut client = Client::connect(addr)?;
    for n in &names {
        client.send(&format!("LOGIN {n} {PASSWORD}"))?;
    }
    names
        .iter()
        .map(|n| {
            let reply = client.reply().map_err(|e| format!("LOGIN {n}: {e}"))?;
            reply["token"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("LOGIN {n}: no token"))
        })
        .collect()
}

/// Each user's id (the hub's CONVERSATIONS and HISTORY name partners by id).
fn user_ids(addr: SocketAddr, tokens: &[String]) -> Result<Vec<u64>, String> {
    let mut client = Client::connect(addr)?;
    tokens
        .iter()
        .map(|t| {
            let reply = client.request(&format!("AUTH {t}"))?;
            reply["user"]["id"]
                .as_u64()
                .ok_or_else(|| format!("AUTH: no user id in {reply}"))
        })
        .collect()
}

/// Sends `messages` over [`FILLERS`] connections, [`WINDOW`] in flight each.
fn fill(addr: SocketAddr, tokens: &[String], plan: &Plan, messages: u64) -> Result<(), String> {
    let per = messages.div_ceil(FILLERS as u64);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..FILLERS as u64)
            .map(|f| {
                let range = (f * per)..((f + 1) * per).min(messages);
                s.spawn(move || fill_range(addr, tokens, plan, range))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a filler panicked".into())))
            .collect::<Result<Vec<()>, String>>()
    })?;
    Ok(())
}

fn fill_range(
    addr: SocketAddr,
    tokens: &[String],
    plan: &Plan,
    range: std::ops::Range<u64>,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let _ = stream.set_read_timeout(Some(wire::REPLY_TIMEOUT));
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut line = String::new();
    let mut next = range.start;
    while next < range.end {
        let batch = (range.end - next).min(WINDOW as u64);
        let mut out = String::with_capacity(batch as usize * 256);
        for n in next..next + batch {
            let (from, to) = plan.message(n);
            out.push_str(&format!(
                "{{\"cmd\":\"send\",\"token\":\"{}\",\"to\":\"{}\",\"content\":\"{CONTENT}\"}}\n",
                tokens[from],
                name(to)
            ));
        }
        writer
            .write_all(out.as_bytes())
            .map_err(|e| e.to_string())?;
        for _ in 0..batch {
            line.clear();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            if !line.starts_with("{\"ok\":true") {
                return Err(format!("SEND failed: {}", line.trim_end()));
            }
        }
        next += batch;
    }
    Ok(())
}

/// A small deterministic generator (no dependency for a benchmark's picks).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// HISTORY of random conversations: the newest page, and a page from a
/// random id back (below the newest of the fill). Each request's time.
fn pages(
    addr: SocketAddr,
    tokens: &[String],
    ids: &[u64],
    plan: &Plan,
    messages: u64,
) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    let mut client = Client::connect(addr)?;
    let mut rng = Lcg(7);
    let (mut newest, mut deep) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        let (a, b) = plan.pair(rng.below(plan.conversations as u64) as usize);
        let mut request = format!(
            "{{\"cmd\":\"history\",\"token\":\"{}\",\"with_id\":{},\"limit\":{PAGE}",
            tokens[a], ids[b]
        );
        if i % 2 == 1 {
            // Message ids run 1..=messages on a fresh database.
            let before = 1 + rng.below(messages);
            request.push_str(&format!(",\"before\":{before}"));
        }
        request.push('}');
        let started = Instant::now();
        let reply = client.request(&request)?;
        let took = started.elapsed();
        if reply["messages"].as_array().is_none() {
            return Err(format!("HISTORY: no messages in {reply}"));
        }
        if i % 2 == 1 {
            deep.push(took);
        } else {
            newest.push(took);
        }
    }
    Ok((newest, deep))
}

/// CONVERSATIONS of the hub, first page, [`SAMPLES`] / 4 times.
fn list(addr: SocketAddr, hub: &str) -> Result<Vec<Duration>, String> {
    let mut client = Client::connect(addr)?;
    let mut times = Vec::new();
    for _ in 0..SAMPLES / 4 {
        let started = Instant::now();
        let reply = client.request(&format!(
            "{{\"cmd\":\"conversations\",\"token\":\"{hub}\",\"limit\":{PAGE}}}"
        ))?;
        times.push(started.elapsed());
        if reply["conversations"]
            .as_array()
            .is_none_or(|l| l.is_empty())
        {
            return Err(format!("CONVERSATIONS: none in {reply}"));
        }
    }
    Ok(times)
}

/// p50 and p99 in milliseconds.
fn latency(times: &[Duration]) -> String {
    let mut sorted: Vec<Duration> = times.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| {
        let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
        sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    format!("p50 {:.2} ms, p99 {:.2} ms", at(0.50), at(0.99))
}

/// The store's size once the server is stopped: SQLite's file after a
/// checkpoint (so the log is in it), or PostgreSQL's database size.
fn size(server: Gotalk, mode: Mode) -> Result<u64, String> {
    match mode {
        Mode::Postgres => {
            drop(server);
            let url = POSTGRES_URL.get().ok_or("no --postgres URL")?;
            let mut client = postgres::Client::connect(url, postgres::NoTls)
                .map_err(|e| format!("connect to measure: {e}"))?;
            client
                .batch_execute("VACUUM ANALYZE")
                .map_err(|e| format!("VACUUM: {e}"))?;
            let row = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .map_err(|e| e.to_string())?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        }
        _ => {
            let dir = server.stop()?;
            let bytes = sqlite_size(&dir)?;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(bytes)
        }
    }
}

fn sqlite_size(dir: &Path) -> Result<u64, String> {
    let db = dir.join("gotalk.db");
    let conn = rusqlite::Connection::open(&db).map_err(|e| format!("open {db:?}: {e}"))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| format!("checkpoint: {e}"))?;
    drop(conn);
    let _ = server::dir_bytes(dir);
    std::fs::metadata(&db)
        .map(|m| m.len())
        .map_err(|e| format!("size of {db:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_gives_the_hub_its_partners_and_distinct_pairs() {
        let plan = Plan::new(1000, 10_000);
        let mut pairs = std::collections::HashSet::new();
        for c in 0..10_000 {
            let (a, b) = plan.pair(c);
            assert_ne!(a, b);
            assert!(a <= 1000 && b <= 1000);
            pairs.insert((a.min(b), a.max(b)));
        }
        assert!(pairs.len() >= 9_000, "{} distinct", pairs.len());
        assert_eq!((0..1000).filter(|&c| plan.pair(c).0 == 0).count(), 1000);
        assert_eq!(plan.message(0), (0, 1));
        assert_eq!(plan.message(10_000), (1, 0), "the other way next round");
    }
}
