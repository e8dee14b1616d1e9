//! The `backlog` scenario: a large backlog for many offline users, and what
//! it costs the server — in RAM while it is queued, at a restart, and to
//! drain. The figures say whether memory follows the load (who is
//! connected) or the size of the world (every account, every message
//! waiting).
//!
//! Steps, all against one durable server on a temporary `--data`:
//! 1. an empty server's RSS, then with [`IDLE_USERS`] registered accounts
//!    and nobody logged in;
//! 2. `--max-messages` messages (default 1,000,000) of [`CONTENT_BYTES`]
//!    queued by [`SENDERS`] pipelining senders, round robin over
//!    `--conns` offline receivers (default 10,000): rate and RSS;
//! 3. a kill -9 and restart: time from spawn to the first answered PING
//!    and to the first answered SYNC, and RSS after;
//! 4. the drain: [`DRAINERS`] connections, each taking users in turn with
//!    AUTH, SYNC and ACK until every mailbox is empty: messages/s, RSS.
//!
//! Accounts are written into the database directly while the server is
//! stopped (one argon2 hash shared by all, made by the server itself), and
//! receivers' tokens are sealed here with the server's key file: tens of
//! thousands of argon2 runs would measure the password hash, not storage.

use crate::server::{self, Gotalk, Launch, Mode};
use crate::wire::{self, Client};
use crate::{print_table, thousands, Opts};
use gotalk::token::TokenKey;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Accounts registered for the "users at rest" figure.
const IDLE_USERS: u64 = 100_000;
/// Receivers by default (`--conns` sets it).
const RECEIVERS: usize = 10_000;
/// Messages queued by default (`--max-messages` sets it).
const MESSAGES: u64 = 1_000_000;
const CONTENT_BYTES: usize = 100;
const SENDERS: usize = 4;
/// SENDs written at once by each sender before it reads their replies.
const SEND_WINDOW: usize = 512;
const DRAINERS: usize = 8;
/// Messages one SYNC asks for (the protocol's most).
const SYNC_LIMIT: usize = 1000;
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(opts: &Opts) -> Result<(), String> {
    let receivers = opts.conns.unwrap_or(RECEIVERS);
    let messages = if opts.max_messages == Opts::default().max_messages {
        MESSAGES
    } else {
        opts.max_messages
    };
    let launch = Launch {
        args: opts.server_args.clone(),
        open_files: None,
        ..Default::default()
    };
    let mut rows = Vec::new();

    // 1. Accounts at rest.
    let (empty_rss, idle_rss) = accounts_at_rest(&opts.server, &launch)?;
    rows.push(row("empty server", "", empty_rss, ""));
    rows.push(row(
        &format!("{} accounts, none logged in", thousands(IDLE_USERS as f64)),
        &format!("{:.1} MiB more", mib(idle_rss.saturating_sub(empty_rss))),
        idle_rss,
        "",
    ));

    // 2. Queue the backlog.
    let server = Gotalk::start_with(&opts.server, Mode::Durable, &launch)?;
    let senders: Vec<String> = (0..SENDERS).map(|i| format!("bl-sender-{i}")).collect();
    wire::register_all(server.addr, &senders)?;
    let hash = password_hash(server.data_dir().expect("durable"), &senders[0])?;
    let dir = server.stop()?;
    let names: Vec<String> = (0..receivers).map(|i| format!("bl-r{i}")).collect();
    insert_users(&dir, &names, &hash)?;
    let server = Gotalk::start_on(&opts.server, dir, &launch)?;
    let started = Instant::now();
    queue(server.addr, &senders, &names, messages)?;
    let queue_seconds = started.elapsed().as_secs_f64();
    let queued_rss = rss(&server)?;
    rows.push(row(
        &format!(
            "queue {} messages for {} offline users",
            thousands(messages as f64),
            thousands(receivers as f64)
        ),
        &format!("{} msgs/s", thousands(messages as f64 / queue_seconds)),
        queued_rss,
        &format!("{queue_seconds:.1} s"),
    ));

    // 3. Restart on the backlog.
    let data = server.stop()?;
    let users = read_users(&data, &names)?;
    let key = gotalk::token_file::load_key(&data.join("secret.key"))
        .map_err(|e| format!("cannot read the server's key: {e}"))?;
    let spawned = Instant::now();
    let server = Gotalk::start_on(&opts.server, data, &launch)?;
    let mut first = Client::connect(server.addr)?;
    first.request("PING")?;
    let to_ping = spawned.elapsed();
    first.auth(&token(&key, users[0]))?;
    first.request(r#"{"cmd":"sync","limit":1}"#)?;
    let to_sync = spawned.elapsed();
    drop(first);
    rows.push(row(
        "restart (kill -9) with the backlog on disk",
        &format!(
            "first PING {:.0} ms, first SYNC {:.0} ms",
            to_ping.as_secs_f64() * 1e3,
            to_sync.as_secs_f64() * 1e3
        ),
        rss(&server)?,
        "",
    ));

    // 4. Drain.
    let tokens: Vec<String> = users.iter().map(|&u| token(&key, u)).collect();
    let started = Instant::now();
    let drained = drain(server.addr, &tokens)?;
    let drain_seconds = started.elapsed().as_secs_f64();
    rows.push(row(
        "drain with SYNC/ACK",
        &format!("{} msgs/s", thousands(drained as f64 / drain_seconds)),
        rss(&server)?,
        &format!("{drain_seconds:.1} s"),
    ));
    if drained != messages {
        return Err(format!(
            "drained {drained} messages of {messages} queued: messages were lost or repeated"
        ));
    }
    print_table(&["step", "rate / time", "server RSS", "took"], &rows);
    Ok(())
}

fn row(step: &str, figure: &str, rss_kib: u64, took: &str) -> Vec<String> {
    vec![
        step.to_string(),
        figure.to_string(),
        format!("{:.1} MiB", mib(rss_kib)),
        took.to_string(),
    ]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The server's RSS once it has answered a PING (so it is past start-up).
fn rss(server: &Gotalk) -> Result<u64, String> {
    Client::connect(server.addr)?.request("PING")?;
    server::rss_kib(server.pid()).ok_or_else(|| "cannot read the server's RSS".to_string())
}

/// RSS of an empty durable server, and of one with [`IDLE_USERS`] accounts.
fn accounts_at_rest(path: &Path, launch: &Launch) -> Result<(u64, u64), String> {
    let server = Gotalk::start_with(path, Mode::Durable, launch)?;
    let empty = rss(&server)?;
    wire::register_all(server.addr, &["bl-first".to_string()])?;
    let hash = password_hash(server.data_dir().expect("durable"), "bl-first")?;
    let dir = server.stop()?;
    let names: Vec<String> = (0..IDLE_USERS).map(|i| format!("bl-idle{i}")).collect();
    insert_users(&dir, &names, &hash)?;
    let server = Gotalk::start_on(path, dir, launch)?;
    Ok((empty, rss(&server)?))
}

fn open_db(dir: &Path) -> Result<rusqlite::Connection, String> {
    rusqlite::Connection::open(dir.join("gotalk.db")).map_err(|e| format!("open database: {e}"))
}

/// The stored argon2 hash of `username` (whose password is the bench's).
/// A REGISTER is answered after its commit, so the row is there.
fn password_hash(dir: &Path, username: &str) -> Result<String, String> {
    open_db(dir)?
        .query_row(
            "SELECT password_hash FROM users WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .map_err(|e| format!("read {username}'s hash: {e}"))
}

/// Adds accounts (all with `hash`) to a stopped server's database.
fn insert_users(dir: &Path, names: &[String], hash: &str) -> Result<(), String> {
    let mut db = open_db(dir)?;
    let tx = db.transaction().map_err(|e| e.to_string())?;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO users (username, password_hash, created, identity) \
                 VALUES (?1, ?2, ?3, randomblob(16))",
            )
            .map_err(|e| e.to_string())?;
        let now = now_ms() as i64;
        for name in names {
            insert
                .execute(rusqlite::params![name, hash, now])
                .map_err(|e| format!("insert {name}: {e}"))?;
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

/// Id and identity of each named account, in the order given.
fn read_users(dir: &Path, names: &[String]) -> Result<Vec<(u64, u128)>, String> {
    let db = open_db(dir)?;
    let mut query = db
        .prepare("SELECT id, identity FROM users WHERE username = ?1")
        .map_err(|e| e.to_string())?;
    names
        .iter()
        .map(|name| {
            query
                .query_row([name], |r| {
                    let id: i64 = r.get(0)?;
                    let identity: Vec<u8> = r.get(1)?;
                    Ok((id as u64, identity))
                })
                .map_err(|e| format!("read {name}: {e}"))
                .and_then(|(id, identity)| {
                    let bytes: [u8; 16] = identity
                        .as_slice()
                        .try_into()
                        .map_err(|_| format!("{name}'s identity is not 16 bytes"))?;
                    Ok((id, u128::from_be_bytes(bytes)))
                })
        })
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A token for an account, sealed with the server's key, valid an hour.
fn token(key: &TokenKey, (user, identity): (u64, u128)) -> String {
    let now = now_ms();
    key.seal(user, identity, now, now + 3_600_000)
}

/// Sends `messages` SENDs over [`SENDERS`] logged-in connections, round
/// robin over `receivers`, each sender writing [`SEND_WINDOW`] at a time.
fn queue(
    addr: SocketAddr,
    senders: &[String],
    receivers: &[String],
    messages: u64,
) -> Result<(), String> {
    let content = "m".repeat(CONTENT_BYTES);
    let next = Arc::new(AtomicU64::new(0));
    let receivers = Arc::new(receivers.to_vec());
    let threads: Vec<_> = senders
        .iter()
        .map(|sender| {
            let mut client = Client::connect(addr)?;
            client.login(sender)?;
            let stream = client.into_stream()?;
            let (next, receivers, content) = (next.clone(), receivers.clone(), content.clone());
            Ok(std::thread::spawn(move || {
                send_share(stream, &next, &receivers, &content, messages)
            }))
        })
        .collect::<Result<_, String>>()?;
    for thread in threads {
        thread.join().map_err(|_| "a sender panicked")??;
    }
    Ok(())
}

/// One sender: claims windows of message numbers until `messages` are
/// claimed; every reply must be `ok`.
fn send_share(
    stream: TcpStream,
    next: &AtomicU64,
    receivers: &[String],
    content: &str,
    messages: u64,
) -> Result<(), String> {
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut out = Vec::with_capacity(SEND_WINDOW * (CONTENT_BYTES + 64));
    let mut line = String::new();
    loop {
        let first = next.fetch_add(SEND_WINDOW as u64, Ordering::Relaxed);
        if first >= messages {
            return Ok(());
        }
        let last = (first + SEND_WINDOW as u64).min(messages);
        out.clear();
        for n in first..last {
            let to = &receivers[(n % receivers.len() as u64) as usize];
            writeln!(out, r#"{{"cmd":"send","to":"{to}","content":"{content}"}}"#)
                .expect("writing to a Vec");
        }
        writer.write_all(&out).map_err(|e| format!("send: {e}"))?;
        for _ in first..last {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| format!("SEND reply: {e}"))?;
            if n == 0 || !line.starts_with(r#"{"ok":true"#) {
                return Err(format!("SEND failed: {}", line.trim_end()));
            }
        }
    }
}

/// Empties every mailbox: [`DRAINERS`] connections take users in turn,
/// each with AUTH, then SYNC and ACK until the SYNC comes back empty.
/// Returns the messages received.
fn drain(addr: SocketAddr, tokens: &[String]) -> Result<u64, String> {
    let next = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(tokens.to_vec());
    let threads: Vec<_> = (0..DRAINERS)
        .map(|_| {
            let (next, tokens) = (next.clone(), tokens.clone());
            std::thread::spawn(move || -> Result<u64, String> {
                let mut client = Client::connect(addr)?;
                let mut received = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(token) = tokens.get(i) else {
                        return Ok(received);
                    };
                    client.auth(token)?;
                    received += drain_one(&mut client)?;
                }
            })
        })
        .collect();
    let mut total = 0;
    for thread in threads {
        total += thread.join().map_err(|_| "a drainer panicked")??;
    }
    Ok(total)
}

/// SYNC and ACK the bound user's mailbox until it is empty.
fn drain_one(client: &mut Client) -> Result<u64, String> {
    let mut received = 0;
    let mut after = 0;
    loop {
        let reply = client.request(&format!(
            r#"{{"cmd":"sync","after":{after},"limit":{SYNC_LIMIT}}}"#
        ))?;
        let batch = reply["messages"]
            .as_array()
            .ok_or_else(|| format!("SYNC reply without messages: {reply}"))?;
        let Some(last) = batch.last().and_then(|m| m["id"].as_u64()) else {
            // An empty SYNC with `after` has acknowledged the last batch.
            return Ok(received);
        };
        received += batch.len() as u64;
        if batch
            .iter()
            .any(|m: &Value| m["id"].as_u64() <= Some(after))
        {
            return Err(format!("SYNC after {after} returned an older message"));
        }
        after = last;
    }
}
