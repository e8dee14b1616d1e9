//! The race that would lose messages with several nodes on one database:
//! two stores (two nodes' writers) commit messages to ONE receiver at the
//! same time while the receiver reads its mailbox and ACKs up to the
//! highest id it has seen, over and over. If a message could commit with
//! a lower id than one already acknowledged, the next ACK-up-to would end
//! its custody unseen. The store gives ids only while it holds the
//! receiver's mailbox row, so every message committed must be seen.

mod common;

use common::postgres::Postgres;
use gotalk::message::{Message, Parties};
use gotalk::store::postgres::PostgresStore;
use gotalk::store::{Batch, Committed, Read, ReadAnswer, ReadDone, ReadOp, Store, WriteOp};
use mio::{Events, Poll, Token, Waker};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const RECEIVER: u64 = 3;
const BATCHES: u64 = 150;
const PER_BATCH: u64 = 4;

/// A store with a poll to wait on its waker.
struct Node {
    store: PostgresStore,
    poll: Poll,
}

impl Node {
    fn open(url: &str) -> Node {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let caps = gotalk::store::MailboxCaps {
            messages: usize::MAX,
            bytes: usize::MAX,
            per_sender: usize::MAX,
        };
        let mut store = PostgresStore::open(url, "test", caps, waker).unwrap();
        store.load().unwrap();
        Node { store, poll }
    }

    fn wait(&mut self) {
        let mut events = Events::with_capacity(4);
        self.poll
            .poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
    }

    fn commit(&mut self, batch: Batch) -> Committed {
        self.store.submit(batch);
        loop {
            if let Some(done) = self.store.completed() {
                return done;
            }
            self.wait();
        }
    }

    fn read(&mut self, op: ReadOp) -> ReadDone {
        self.store.read(Read { id: 1, op });
        loop {
            if let Some(done) = self.store.read_done() {
                return done;
            }
            self.wait();
        }
    }
}

/// `BATCHES` batches of `PER_BATCH` messages from `sender` to the
/// receiver, each committed before the next; returns the stored ids.
fn sender(url: String, sender: u64) -> Vec<u64> {
    let mut node = Node::open(&url);
    let parties = Parties {
        from_id: sender,
        from: "sender",
        to_id: RECEIVER,
        to: "bob",
    };
    let mut stored = Vec::new();
    for seq in 1..=BATCHES {
        let ops = (0..PER_BATCH)
            .map(|i| {
                let provisional = seq * 100 + i;
                let m = Message::new(provisional, &parties, 1, "race", None);
                WriteOp::Append(m)
            })
            .collect();
        let done = node.commit(Batch {
            seq,
            ops,
            last_message_id: 0,
            client_ids_per_sender: 0,
        });
        assert_eq!(done.result, Ok(()));
        let ids: Vec<u64> = done.assigned.messages.iter().map(|&(_, id)| id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending in a batch");
        stored.extend(ids);
    }
    stored
}

#[test]
fn messages_to_one_receiver_commit_in_id_order_across_writers() {
    let pg = Postgres::start();
    let url = pg.url();
    // Migrate, then the three accounts the messages name.
    drop(Node::open(&url));
    pg.psql(
        "INSERT INTO users (id, username, password_hash, created, identity) VALUES \
         (1, 'alice', 'h', 0, '\\x00'), (2, 'carol', 'h', 0, '\\x00'), (3, 'bob', 'h', 0, '\\x00')",
    );
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [1, 2]
        .into_iter()
        .map(|from| {
            let url = url.clone();
            std::thread::spawn(move || sender(url, from))
        })
        .collect();

    let mut receiver = Node::open(&url);
    let mut seen = BTreeSet::new();
    let mut acked = 0;
    let mut seq = 0;
    let finished = {
        let done = done.clone();
        std::thread::spawn(move || {
            let ids: Vec<Vec<u64>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
            done.store(true, Ordering::SeqCst);
            ids
        })
    };
    loop {
        let last_round = done.load(Ordering::SeqCst);
        let page = receiver.read(ReadOp::Page {
            user: RECEIVER,
            after: acked,
            limit: 1000,
            max_bytes: usize::MAX,
        });
        let Ok(ReadAnswer::Page(messages)) = page.answer else {
            panic!("read failed: {:?}", page.answer);
        };
        for m in &messages {
            assert!(m.id > acked, "a message below the ACK mark appeared");
            seen.insert(m.id);
        }
        if let Some(last) = messages.last() {
            // ACK up to the highest id seen, as a client does.
            seq += 1;
            let done = receiver.commit(Batch {
                seq,
                ops: vec![WriteOp::Ack {
                    user: RECEIVER,
                    upto: last.id,
                }],
                last_message_id: 0,
                client_ids_per_sender: 0,
            });
            assert_eq!(done.result, Ok(()));
            acked = last.id;
        } else if last_round {
            break;
        }
    }
    let stored: Vec<u64> = finished.join().unwrap().concat();
    assert_eq!(stored.len() as u64, 2 * BATCHES * PER_BATCH);
    let stored: BTreeSet<u64> = stored.into_iter().collect();
    let lost: Vec<_> = stored.difference(&seen).collect();
    assert!(lost.is_empty(), "acknowledged unseen: {lost:?}");
    assert_eq!(
        pg.psql("SELECT count, bytes FROM mailboxes WHERE user_id = 3"),
        "0|0",
        "the row's figures follow the messages"
    );
}
