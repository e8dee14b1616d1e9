//! How long gotalk takes to start with 1,000,000 unacknowledged messages
//! on disk. Ignored by default (it writes a ~150 MB database); run it with
//!
//! ```text
//! cargo test --release --test durability_startup -- --ignored --nocapture
//! ```
//!
//! It fills a data directory through the store itself (100 recipients with
//! 10,000 pending messages each, every tenth with a `client_id`), then
//! times `gotalk --data DIR` from spawn until its "listening on" log line,
//! and checks that the messages are all there. `docs/storage.md` records
//! the figure. With `GOTALK_STARTUP_DIR=DIR` the database is kept there
//! (and filled only if missing), to time a cold start on a later run.

mod common;

use common::*;
use gotalk::message::{Message, Parties};
use gotalk::store::sqlite::SqliteStore;
use gotalk::store::{Batch, Store, WriteOp};
use mio::{Poll, Token, Waker};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MESSAGES: u64 = 1_000_000;
const RECIPIENTS: u64 = 100;
const PER_BATCH: u64 = 10_000;

/// Writes `MESSAGES` pending messages from `user0` (id 1) to `user1`..
/// (ids 2..=RECIPIENTS+1), all with the password `pw`.
fn fill(dir: &std::path::Path) {
    let poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), Token(1)).unwrap());
    let mut store = SqliteStore::open(dir, waker).unwrap();
    store.load().unwrap();
    let hash: Arc<str> = gotalk::hasher::hash_password("pw-secret").unwrap().into();
    let names: Vec<Arc<str>> = (0..=RECIPIENTS)
        .map(|i| format!("user{i}").into())
        .collect();
    let users = names
        .iter()
        .enumerate()
        .map(|(i, name)| WriteOp::CreateUser {
            id: i as u64 + 1,
            identity: i as u128 + 1,
            username: name.clone(),
            password_hash: hash.clone(),
            created: now_ms(),
        })
        .collect();
    let mut seq = 1;
    store.submit(Batch {
        seq,
        ops: users,
        last_message_id: 0,
        client_ids_per_sender: 0,
    });
    let ts = now_ms();
    let mut id = 0;
    while id < MESSAGES {
        let ops = (0..PER_BATCH)
            .map(|_| {
                id += 1;
                let to = 2 + id % RECIPIENTS;
                let parties = Parties {
                    from_id: 1,
                    from: &names[0],
                    to_id: to,
                    to: &names[to as usize - 1],
                };
                let content = format!("pending message number {id}, a typical short chat line");
                let client_id = (id % 10 == 0).then(|| format!("cid-{id}"));
                WriteOp::Append(Message::new(
                    id,
                    &parties,
                    ts,
                    &content,
                    client_id.as_deref(),
                ))
            })
            .collect();
        seq += 1;
        store.submit(Batch {
            seq,
            ops,
            last_message_id: id,
            client_ids_per_sender: 0,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut done = 0;
    while done < seq {
        match store.completed() {
            Some(c) => {
                assert_eq!(c.result, Ok(()), "batch {}", c.seq);
                done = c.seq;
            }
            None => {
                assert!(Instant::now() < deadline, "filling took too long");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[test]
#[ignore = "writes a ~150 MB database; run with --release -- --ignored"]
fn start_up_with_a_million_pending_messages() {
    // GOTALK_STARTUP_DIR keeps the database (filled on the first run) so a
    // later run can time a cold start after dropping the page cache.
    let kept = std::env::var_os("GOTALK_STARTUP_DIR").map(std::path::PathBuf::from);
    let temp = kept.is_none().then(|| TempDir::new("million"));
    let path = kept.unwrap_or_else(|| temp.as_ref().unwrap().path().to_path_buf());
    let dir_arg = path.to_str().expect("UTF-8 path").to_string();
    let started = Instant::now();
    if !path.join("gotalk.db").exists() {
        fill(&path);
    }
    let size = std::fs::metadata(path.join("gotalk.db")).map_or(0, |m| m.len())
        + std::fs::metadata(path.join("gotalk.db-wal")).map_or(0, |m| m.len());
    eprintln!(
        "filled {MESSAGES} messages in {:.1} s; database {:.0} MB",
        started.elapsed().as_secs_f64(),
        size as f64 / 1e6
    );

    let spawned = Instant::now();
    let server = TestServer::start(&["--data", &dir_arg]);
    let took = spawned.elapsed();
    eprintln!(
        "gotalk --data DIR with {MESSAGES} pending messages: listening after {:.2} s",
        took.as_secs_f64()
    );
    for line in server.stderr_text().lines() {
        eprintln!("  server: {line}");
    }
    assert!(
        server
            .stderr_text()
            .contains(&format!("{MESSAGES} unacknowledged messages")),
        "{}",
        server.stderr_text()
    );

    let mut client = server.connect();
    login(&mut client, "user1", "pw-secret");
    let first = messages(&client.request(&json!({"cmd": "sync", "limit": 3})));
    assert_eq!(first.len(), 3);
    assert_eq!(first[0]["id"], RECIPIENTS);
    let fresh = sent_id(&client.request(&json!({"cmd": "send", "to": "user0", "content": "x"})));
    assert!(fresh > MESSAGES);
    // Acknowledged at once, so a kept database stays at MESSAGES pending.
    let mut user0 = server.connect();
    login(&mut user0, "user0", "pw-secret");
    assert_ok(&user0.request(&json!({"cmd": "ack", "upto": fresh})));
}
