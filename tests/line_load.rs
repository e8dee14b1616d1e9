//! The line protocol under load: fifty clients at once (each registering,
//! logging in, sending and receiving, every message delivered exactly once
//! by push and by SYNC), and a thousand pipelined messages to one user read
//! back page by page.

mod common;

use common::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A barrier whose wait is bounded, so one failing thread makes the others
/// fail too instead of hanging the test.
struct TimedBarrier {
    count: Mutex<usize>,
    all_here: Condvar,
    parties: usize,
}

impl TimedBarrier {
    fn new(parties: usize) -> Arc<TimedBarrier> {
        Arc::new(TimedBarrier {
            count: Mutex::new(0),
            all_here: Condvar::new(),
            parties,
        })
    }

    fn wait(&self, what: &str, timeout: Duration) {
        let mut count = self.count.lock().unwrap();
        *count += 1;
        self.all_here.notify_all();
        let (count, result) = self
            .all_here
            .wait_timeout_while(count, timeout, |n| *n < self.parties)
            .unwrap();
        assert!(
            !result.timed_out(),
            "only {} of {} clients reached `{what}` within {timeout:?}",
            *count,
            self.parties
        );
    }
}

const CLIENTS: usize = 50;
const PER_TARGET: usize = 4;

/// Who client `i` writes to.
fn targets(i: usize) -> [usize; 2] {
    [(i + 1) % CLIENTS, (i + 7) % CLIENTS]
}

/// What one client saw, for the cross-check in the main thread.
struct Outcome {
    user: usize,
    sent: Vec<u64>,
    received: BTreeMap<u64, String>,
}

#[test]
fn fifty_concurrent_clients_each_get_every_message_exactly_once() {
    // All fifty log in at once from one address: let them all queue.
    let server = TestServer::start(&["--hash-queue-per-address", "64"]);
    let addr = server.addr();
    // Two barriers: everyone is logged in (so every push has a bound
    // receiver), then everyone has sent.
    let logged_in = TimedBarrier::new(CLIENTS);
    let all_sent = TimedBarrier::new(CLIENTS);
    let phase_timeout = Duration::from_secs(240);

    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let logged_in = Arc::clone(&logged_in);
            let all_sent = Arc::clone(&all_sent);
            thread::spawn(move || {
                let name = format!("user{i}");
                let mut c = LineClient::connect(addr);
                c.set_timeout(Duration::from_secs(120));
                let id = register(&mut c, &name, &format!("pw{i}-secret"));
                let (_, login_id) = login(&mut c, &name, &format!("pw{i}-secret"));
                assert_eq!(id, login_id);
                c.set_timeout(Duration::from_secs(30));
                logged_in.wait("logged in", phase_timeout);

                let mut sent = Vec::new();
                for target in targets(i) {
                    for k in 0..PER_TARGET {
                        let reply = c.request(&json!({
                            "cmd": "send",
                            "to": format!("user{target}"),
                            "content": format!("{i}->{target}#{k}"),
                            "client_id": format!("{i}-{target}-{k}"),
                        }));
                        sent.push(sent_id(&reply));
                    }
                }
                // A retry of an already-sent message changes nothing.
                let target = targets(i)[0];
                let retry = c.request(&json!({
                    "cmd": "send",
                    "to": format!("user{target}"),
                    "content": format!("{i}->{target}#0"),
                    "client_id": format!("{i}-{target}-0"),
                }));
                assert_eq!(sent_id(&retry), sent[0], "retry of user{i}'s first message");
                all_sent.wait("sent everything", phase_timeout);

                // Every client is written to by exactly two others.
                let expected = 2 * PER_TARGET;
                let mut received = BTreeMap::new();
                while received.len() < expected {
                    let m = assert_message_event(&c.read_event());
                    assert_eq!(m["to"], name.as_str(), "pushed to the wrong user: {m}");
                    let mid = m["id"].as_u64().unwrap();
                    let content = m["content"].as_str().unwrap().to_string();
                    assert!(
                        received.insert(mid, content).is_none(),
                        "user{i} was pushed message {mid} twice"
                    );
                }
                c.expect_nothing_before_pong();

                // SYNC tells the same story, oldest first.
                let reply = c.request(&json!({"cmd": "sync", "limit": 1000}));
                let ids = message_ids(&reply);
                assert_eq!(
                    ids,
                    received.keys().copied().collect::<Vec<_>>(),
                    "user{i}: SYNC and pushes disagree"
                );
                assert_ok(&c.request(&json!({"cmd": "ack", "upto": ids[ids.len() - 1]})));
                assert_eq!(message_ids(&c.text("SYNC")), Vec::<u64>::new());
                Outcome {
                    user: i,
                    sent,
                    received,
                }
            })
        })
        .collect();

    let outcomes: Vec<Outcome> = handles
        .into_iter()
        .map(|h| h.join().expect("a client thread failed"))
        .collect();

    // Every sent id was received exactly once, by the right user, with the
    // right content.
    let mut all_sent = BTreeSet::new();
    for o in &outcomes {
        for id in &o.sent {
            assert!(all_sent.insert(*id), "id {id} issued twice");
        }
    }
    assert_eq!(all_sent.len(), CLIENTS * 2 * PER_TARGET);
    let mut all_received = BTreeSet::new();
    for o in &outcomes {
        for (id, content) in &o.received {
            assert!(all_received.insert(*id), "id {id} delivered to two users");
            let (from, rest) = content.split_once("->").expect("content shape");
            let to: usize = rest.split('#').next().unwrap().parse().unwrap();
            assert_eq!(to, o.user, "user{} got {content:?}", o.user);
            let from: usize = from.parse().unwrap();
            assert!(
                targets(from).contains(&o.user),
                "unexpected sender: {content:?}"
            );
        }
    }
    assert_eq!(all_received, all_sent, "sent and delivered ids differ");
}

#[test]
fn a_thousand_pipelined_messages_are_read_back_page_by_page() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, bob_token, _) = register_and_login(&server, "bob", "pw-b-secret");
    drop(bob.take_events());
    let n = 1000;

    let mut writer = alice.writer_clone();
    let sender = thread::spawn(move || {
        let mut batch = String::new();
        for i in 0..n {
            batch.push_str(&format!("SEND bob message {i}\n"));
        }
        writer.write_all(batch.as_bytes()).unwrap();
    });
    let ids: Vec<u64> = (0..n).map(|_| sent_id(&alice.read_reply())).collect();
    sender.join().unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids must grow");

    // Page with an unbound connection (no pushes in the way), 100 at a time;
    // each page's `after` acknowledges the previous page.
    let mut reader = server.connect();
    let mut after = 0;
    let mut seen = Vec::new();
    let started = Instant::now();
    loop {
        let reply = reader.request(&json!({
            "cmd": "sync", "token": bob_token, "after": after, "limit": 100
        }));
        let page = messages(&reply);
        assert!(page.len() <= 100, "limit ignored: {} messages", page.len());
        if page.is_empty() {
            break;
        }
        for m in &page {
            let id = m["id"].as_u64().unwrap();
            assert_eq!(m["content"], format!("message {}", seen.len()));
            seen.push(id);
        }
        after = *seen.last().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "paging does not end"
        );
    }
    assert_eq!(seen, ids);
    // Everything is acknowledged now; the last page's `after` covered it.
    assert_eq!(message_ids(&bob.text("SYNC")), Vec::<u64>::new());
    // Bob's bound connection was pushed all of them, once each, in order.
    let mut pushed: Vec<u64> = bob
        .take_events()
        .into_iter()
        .map(|e| assert_message_event(&e)["id"].as_u64().unwrap())
        .collect();
    while pushed.len() < n {
        pushed.push(
            assert_message_event(&bob.read_event())["id"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(pushed, ids);
}
