//! kill -9 in the middle of a stream of SENDs. Eight senders each send
//! messages one at a time (each with a `client_id`) and wait for every
//! reply; the server is killed with SIGKILL while they are busy, then
//! restarted on the same `--data` directory. Every SEND that was answered
//! `ok` must be there exactly once, in order, with its id and content;
//! the only other message a sender may have left is the one still waiting
//! for its reply at the kill. Accounts, acknowledgements and `client_id`
//! idempotency survive, and new ids continue above every old one.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const SENDERS: usize = 8;
/// Answered SENDs per sender before the kill (so every sender is busy).
const KILL_AFTER_ACKED: usize = 50;
/// Bounds on the stream, so a stuck server fails the test instead of
/// hanging it.
const MAX_PER_SENDER: usize = 20_000;
const STREAM_DEADLINE: Duration = Duration::from_secs(60);

/// A sender's connection that reports a dead server instead of panicking:
/// the kill is expected.
struct Sender {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Sender {
    fn connect(addr: SocketAddr) -> Sender {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(HASH_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Sender {
            writer: stream,
            reader,
        }
    }

    /// The reply, or `None` once the connection is gone.
    fn request(&mut self, request: &Value) -> Option<Value> {
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).ok()?;
        loop {
            let mut reply = String::new();
            match self.reader.read_line(&mut reply) {
                Ok(0) | Err(_) => return None,
                Ok(_) if !reply.ends_with('\n') => return None, // cut by the kill
                Ok(_) => {}
            }
            let value: Value = serde_json::from_str(&reply)
                .unwrap_or_else(|e| panic!("garbled reply {reply:?}: {e}"));
            if !is_event(&value) {
                return Some(value);
            }
        }
    }
}

/// What one sender saw: `(n, id)` for each SEND answered `ok`, in order.
struct Sent {
    acked: Vec<(usize, u64)>,
}

fn name(i: usize) -> String {
    format!("sender{i}")
}

fn content(i: usize, n: usize) -> String {
    format!("from {i}: message {n} \u{e9}\"\\")
}

fn client_id(i: usize, n: usize) -> String {
    format!("s{i}-n{n}")
}

/// Sends until the server dies (or a bound is hit).
fn stream(
    addr: SocketAddr,
    i: usize,
    progress: Arc<Vec<AtomicUsize>>,
    stop: Arc<AtomicBool>,
) -> Sent {
    let mut conn = Sender::connect(addr);
    let login = conn
        .request(&json!({"cmd": "login", "username": name(i), "password": "pw-secret"}))
        .expect("login before the kill");
    assert_ok(&login);
    conn.writer
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("set timeout");
    let deadline = Instant::now() + STREAM_DEADLINE;
    let mut acked = Vec::new();
    for n in 0..MAX_PER_SENDER {
        if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            break;
        }
        let request = json!({"cmd": "send", "to": "bob", "content": content(i, n),
            "client_id": client_id(i, n)});
        let Some(reply) = conn.request(&request) else {
            break; // killed
        };
        acked.push((n, sent_id(&reply)));
        progress[i].fetch_add(1, Ordering::SeqCst);
    }
    Sent { acked }
}

/// Every message left for the connection's user, oldest first, paging with
/// SYNC `after` (which acknowledges each page as it goes).
fn drain_mailbox(client: &mut LineClient) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut after = 0;
    for _ in 0..1000 {
        let page =
            messages(&client.request(&json!({"cmd": "sync", "after": after, "limit": 1000})));
        let Some(last) = page.last() else {
            return all;
        };
        after = last["id"].as_u64().expect("numeric id");
        all.extend(page);
    }
    panic!("the mailbox never ran dry");
}

#[test]
fn every_answered_send_survives_kill_9_exactly_once_and_in_order() {
    let dir = TempDir::new("crash");
    let mut server = TestServer::start(&["--data", dir.arg()]);
    let (mut bob, bob_token, bob_id) = register_and_login(&server, "bob", "pw-bob-secret");
    let mut sender_ids = Vec::new();
    for i in 0..SENDERS {
        let mut c = server.connect();
        sender_ids.push(register(&mut c, &name(i), "pw-secret"));
    }

    // Before the stream: messages with client_ids that bob acknowledges.
    let (mut early, _, _) = {
        let mut c = server.connect();
        let (token, id) = login(&mut c, &name(0), "pw-secret");
        (c, token, id)
    };
    let early_ids: Vec<u64> = (0..3)
        .map(|k| {
            sent_id(&early.request(&json!({"cmd": "send", "to": "bob",
                "content": format!("early {k}"), "client_id": format!("early-{k}")})))
        })
        .collect();
    assert_eq!(message_ids(&bob.text("SYNC")), early_ids);
    assert_ok(&bob.request(&json!({"cmd": "ack", "upto": early_ids[2]})));
    drop((bob, early));

    // The stream, and the kill in the middle of it.
    let progress: Arc<Vec<AtomicUsize>> =
        Arc::new((0..SENDERS).map(|_| AtomicUsize::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr();
    let threads: Vec<_> = (0..SENDERS)
        .map(|i| {
            let (progress, stop) = (progress.clone(), stop.clone());
            thread::spawn(move || stream(addr, i, progress, stop))
        })
        .collect();
    let deadline = Instant::now() + STREAM_DEADLINE;
    let slowest = || {
        progress
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .min()
            .unwrap()
    };
    while slowest() < KILL_AFTER_ACKED && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    stop.store(true, Ordering::SeqCst);
    let sent: Vec<Sent> = threads
        .into_iter()
        .map(|t| t.join().expect("sender thread"))
        .collect();
    let total: usize = sent.iter().map(|s| s.acked.len()).sum();
    assert!(
        sent.iter().all(|s| s.acked.len() >= KILL_AFTER_ACKED),
        "some sender had fewer than {KILL_AFTER_ACKED} SENDs answered before the deadline"
    );

    // Nothing the server wrote is damaged (this also replays the log).
    {
        let conn = rusqlite::Connection::open(dir.path().join("gotalk.db")).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "the database is damaged after kill -9");
    }

    server.restart();

    // Accounts survived: passwords and the token key.
    let mut bob = server.connect();
    assert_ok(&bob.request(&json!({"cmd": "auth", "token": bob_token})));
    let mut bob = server.connect();
    login(&mut bob, "bob", "pw-bob-secret");
    let stored = drain_mailbox(&mut bob);

    // Exactly once, in id order, and nothing acknowledged before the kill.
    let ids: Vec<u64> = stored.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "SYNC must return ascending, unique ids: {ids:?}"
    );
    for early in &early_ids {
        assert!(
            !ids.contains(early),
            "acknowledged message {early} came back"
        );
    }

    // Per sender: every answered SEND, in order, plus at most the one whose
    // reply the kill cut off.
    let mut by_id: BTreeMap<u64, &Value> = stored
        .iter()
        .map(|m| (m["id"].as_u64().unwrap(), m))
        .collect();
    for (i, s) in sent.iter().enumerate() {
        for &(n, id) in &s.acked {
            let m = by_id
                .remove(&id)
                .unwrap_or_else(|| panic!("answered SEND {n} of sender {i} (id {id}) was lost"));
            let expected = Expected {
                from: &name(i),
                from_id: sender_ids[i],
                to: "bob",
                to_id: bob_id,
                content: &content(i, n),
                client_id: Some(&client_id(i, n)),
            };
            assert_message(m, &expected);
        }
    }
    eprintln!(
        "{total} SENDs answered before the kill; {} more stored unanswered",
        by_id.len()
    );
    let mut in_flight_seen = HashSet::new();
    for (id, m) in &by_id {
        let from = m["from"].as_str().unwrap();
        let i = (0..SENDERS)
            .find(|&i| name(i) == from)
            .unwrap_or_else(|| panic!("unexpected message {m}"));
        let next = sent[i].acked.last().map_or(0, |&(n, _)| n + 1);
        assert_eq!(
            m["content"],
            content(i, next),
            "only the SEND in flight at the kill may be stored unanswered: {m}"
        );
        let last_acked = sent[i].acked.last().map_or(0, |&(_, id)| id);
        assert!(*id > last_acked, "{m} is out of order");
        assert!(
            in_flight_seen.insert(i),
            "two unanswered messages from {from}"
        );
    }

    // client_id idempotency survived, for pending and acknowledged messages.
    let max_old = *ids.iter().chain(&early_ids).max().unwrap();
    for (i, s) in sent.iter().enumerate() {
        let Some(&(n, id)) = s.acked.first() else {
            continue;
        };
        let mut c = server.connect();
        login(&mut c, &name(i), "pw-secret");
        let again = c.request(
            &json!({"cmd": "send", "to": "bob", "content": content(i, n),
            "client_id": client_id(i, n)}),
        );
        assert_eq!(
            sent_id(&again),
            id,
            "a repeated client_id must give the first id"
        );
    }
    let mut s0 = server.connect();
    login(&mut s0, &name(0), "pw-secret");
    let again = s0.request(&json!({"cmd": "send", "to": "bob", "content": "early 0",
        "client_id": "early-0"}));
    assert_eq!(
        sent_id(&again),
        early_ids[0],
        "a client_id is remembered after its message was acknowledged, across a crash"
    );
    assert!(
        drain_mailbox(&mut bob).is_empty(),
        "repeated client_ids must store nothing new"
    );

    // New ids continue above everything issued before the crash.
    let fresh = sent_id(&s0.request(&json!({"cmd": "send", "to": "bob", "content": "fresh"})));
    let max_answered = sent
        .iter()
        .flat_map(|s| s.acked.iter().map(|&(_, id)| id))
        .max()
        .unwrap_or(0);
    assert!(
        fresh > max_old && fresh > max_answered,
        "new id {fresh} must exceed every old one ({max_old}, {max_answered})"
    );
    assert_eq!(message_ids(&bob.text("SYNC")), [fresh]);
}
