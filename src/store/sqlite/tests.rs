//! The store end to end on a real file: batches in, completions out, and
//! what a reopened store loads; group commit's all-or-nothing; refusals at
//! open.

use super::*;
use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::message::{Message, Parties};
use crate::store::{Batch, Committed, Read, ReadDone, ReadOp, Store, StoreError, WriteOp};
use mio::{Poll, Token};
use std::time::{Duration, Instant};

struct Fixture {
    dir: PathBuf,
    /// mio allows one waker per poll; every store of a test shares it.
    waker: Arc<Waker>,
    _poll: Poll,
}

impl Fixture {
    fn new(label: &str) -> Fixture {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "gotalk-sqlite-unit-{label}-{}-{nanos}",
            std::process::id()
        ));
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).unwrap());
        Fixture {
            dir,
            waker,
            _poll: poll,
        }
    }

    fn open(&self) -> Result<SqliteStore, String> {
        SqliteStore::open(&self.dir, self.waker.clone()).map_err(String::from)
    }

    /// Everything the database holds, read beside any open store.
    fn everything(&self) -> Snapshot {
        let mut conn = connect(&self.dir.join(DB_FILE)).unwrap();
        load::read_everything(&mut conn, wall_clock_ms()).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn user(id: u64, name: &str) -> WriteOp {
    WriteOp::CreateUser {
        id,
        identity: u128::from(id),
        username: name.into(),
        password_hash: format!("hash-of-{name}").into(),
        created: 1,
    }
}

fn message(id: u64, ts: Millis, content: &str, client_id: Option<&str>) -> WriteOp {
    let parties = Parties {
        from_id: 1,
        from: "alice",
        to_id: 2,
        to: "bob",
    };
    WriteOp::Append(Message::new(id, &parties, ts, content, client_id))
}

fn batch(seq: u64, last_message_id: u64, ops: Vec<WriteOp>) -> Batch {
    Batch {
        seq,
        ops,
        last_message_id,
        client_ids_per_sender: 0,
    }
}

/// Waits (bounded) for the next completion.
fn next_done(store: &mut SqliteStore) -> Committed {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(done) = store.completed() {
            return done;
        }
        assert!(Instant::now() < deadline, "no completion within 10 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn what_is_committed_comes_back_after_reopening() {
    let fx = Fixture::new("roundtrip");
    let now = wall_clock_ms();
    let mut store = fx.open().unwrap();
    let empty = store.load().unwrap();
    assert_eq!((empty.pending_messages, empty.pending_bytes), (0, 0));
    assert_eq!(empty.last_message_id, 0);

    store.submit(batch(1, 0, vec![user(1, "alice"), user(2, "bob")]));
    store.submit(batch(
        2,
        3,
        vec![
            message(1, now, "first \"quoted\"\n", Some("c-1")),
            message(2, now, "second", None),
            message(3, now, "third", Some("c-3")),
        ],
    ));
    store.submit(batch(3, 3, vec![WriteOp::Ack { user: 2, upto: 1 }]));
    for seq in 1..=3 {
        let done = next_done(&mut store);
        assert_eq!(done.seq, seq, "completions come in order");
        assert_eq!(done.result, Ok(()));
    }
    drop(store);

    let snap = fx.everything();
    assert_eq!((snap.last_message_id, snap.last_user_id), (3, 2));
    assert_eq!(snap.pending_messages, 2);
    let snap = fx.everything();
    let names: Vec<_> = snap.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(snap.users[1].password_hash, "hash-of-bob");
    let ids: Vec<_> = snap.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, [2, 3], "the acknowledged message is gone");
    assert_eq!(snap.messages[0].content, "second");
    assert_eq!(snap.messages[1].client_id.as_deref(), Some("c-3"));
    assert_eq!((snap.messages[1].from_id, snap.messages[1].to_id), (1, 2));
    let mut cids: Vec<_> = snap
        .client_ids
        .iter()
        .map(|c| (c.client_id.as_str(), c.message_id))
        .collect();
    cids.sort();
    assert_eq!(
        cids,
        [("c-1", 1), ("c-3", 3)],
        "a client_id outlives its acknowledged message"
    );
    assert_eq!(snap.last_message_id, 3);
}

#[test]
fn ids_keep_growing_after_every_message_was_acknowledged() {
    let fx = Fixture::new("lastid");
    let mut store = fx.open().unwrap();
    store.submit(batch(1, 0, vec![user(1, "alice"), user(2, "bob")]));
    store.submit(batch(
        2,
        7,
        vec![
            message(6, 5, "a", None),
            message(7, 5, "b", None),
            WriteOp::Ack { user: 2, upto: 7 },
        ],
    ));
    assert_eq!(next_done(&mut store).result, Ok(()));
    assert_eq!(next_done(&mut store).result, Ok(()));
    drop(store);
    let snap = fx.everything();
    assert_eq!((snap.pending_messages, snap.pending_bytes), (0, 0));
    assert_eq!(snap.last_message_id, 7);
}

#[test]
fn client_ids_older_than_a_day_are_not_loaded() {
    let fx = Fixture::new("cidage");
    let now = wall_clock_ms();
    let old = now - CLIENT_ID_RETENTION_MS - 60_000;
    let mut store = fx.open().unwrap();
    store.submit(batch(
        1,
        2,
        vec![
            user(1, "alice"),
            user(2, "bob"),
            message(1, old, "old", Some("old")),
            message(2, now, "new", Some("new")),
        ],
    ));
    assert_eq!(next_done(&mut store).result, Ok(()));
    drop(store);
    let snap = fx.everything();
    let cids: Vec<_> = snap
        .client_ids
        .iter()
        .map(|c| c.client_id.as_str())
        .collect();
    assert_eq!(cids, ["new"]);
    assert_eq!(
        snap.messages.len(),
        2,
        "old messages stay until acknowledged"
    );
}

#[test]
fn a_failed_transaction_fails_its_whole_group_and_the_store_goes_on() {
    let fx = Fixture::new("fail");
    let mut store = fx.open().unwrap();
    store.submit(batch(1, 0, vec![user(1, "alice")]));
    assert_eq!(next_done(&mut store).result, Ok(()));

    // A group whose second batch breaks a constraint: nothing of it stays.
    let mut conn = connect(&fx.dir.join(DB_FILE)).unwrap();
    let group = [
        batch(2, 1, vec![user(2, "bob"), message(1, 5, "lost", None)]),
        batch(3, 1, vec![user(1, "alice-again")]),
    ];
    assert!(writer::write_group(&mut conn, &group).is_err());
    drop(conn);

    // Through the thread: the failing batch is reported, the next works.
    store.submit(batch(4, 0, vec![user(1, "alice-again")]));
    let done = next_done(&mut store);
    assert_eq!(done.seq, 4);
    let cause = done.result.unwrap_err();
    assert!(
        matches!(&cause, StoreError::Database(text) if text.contains("UNIQUE")),
        "{cause:?}"
    );
    store.submit(batch(5, 0, vec![user(2, "bob")]));
    assert_eq!(next_done(&mut store).result, Ok(()));
    drop(store);

    let snap = fx.everything();
    let names: Vec<_> = snap.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(snap.messages.is_empty());
}

#[test]
fn one_group_is_one_transaction() {
    let fx = Fixture::new("group");
    drop(fx.open().unwrap());
    let mut conn = connect(&fx.dir.join(DB_FILE)).unwrap();
    let group = [
        batch(1, 0, vec![user(1, "alice"), user(2, "bob")]),
        batch(2, 1, vec![message(1, 5, "x", None)]),
        batch(3, 2, vec![message(2, 5, "y", None)]),
    ];
    assert_eq!(writer::write_group(&mut conn, &group).unwrap(), 4);
    let last: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_message_id'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, 2, "the group stores the highest id of its batches");
}

#[test]
fn a_group_with_nothing_to_write_costs_no_transaction() {
    let fx = Fixture::new("empty");
    let mut store = fx.open().unwrap();
    store.submit(batch(1, 0, vec![user(1, "alice")]));
    assert_eq!(next_done(&mut store).result, Ok(()));
    let wal = || std::fs::metadata(fx.dir.join("gotalk.db-wal")).map_or(0, |m| m.len());
    let before = wal();
    assert!(before > 0);
    store.submit(batch(2, 0, vec![]));
    store.submit(batch(3, 0, vec![]));
    assert_eq!(next_done(&mut store).seq, 2);
    assert_eq!(next_done(&mut store).seq, 3);
    assert_eq!(wal(), before, "nothing was appended to the log");
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let fx = Fixture::new("lock");
    let _first = fx.open().unwrap();
    let err = fx.open().err().unwrap();
    assert!(err.contains("another gotalk is using"), "{err}");
}

#[test]
fn garbage_in_the_database_file_is_a_clear_error() {
    let fx = Fixture::new("garbage");
    std::fs::create_dir_all(&fx.dir).unwrap();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(fx.dir.join(DB_FILE), garbage).unwrap();
    let err = fx.open().err().unwrap();
    assert!(
        err.contains(DB_FILE) && err.contains("not a database"),
        "{err}"
    );
}

#[test]
fn a_database_from_a_newer_gotalk_is_refused() {
    let fx = Fixture::new("newer");
    drop(fx.open().unwrap());
    let conn = Connection::open(fx.dir.join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", schema::latest_version() + 1)
        .unwrap();
    drop(conn);
    let err = fx.open().err().unwrap();
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn the_data_directory_is_created_and_its_files_are_private() {
    let fx = Fixture::new("create");
    let nested = fx.dir.join("a").join("b");
    let store = SqliteStore::open(&nested, fx.waker.clone()).unwrap();
    assert!(nested.join(DB_FILE).is_file());
    assert!(nested.join(lock::LOCK_FILE).is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(nested.join(DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "database mode {mode:o}");
    }
    drop(store);
}

fn next_read(store: &mut SqliteStore) -> ReadDone {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(done) = store.read_done() {
            return done;
        }
        assert!(Instant::now() < deadline, "no read within 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn read(store: &mut SqliteStore, op: ReadOp) -> crate::store::ReadAnswer {
    store.read(Read { id: 7, op });
    let done = next_read(store);
    assert_eq!(done.id, 7);
    done.answer.unwrap()
}

#[test]
fn reads_see_what_was_committed_before_them() {
    use crate::store::ReadAnswer;
    let fx = Fixture::new("reads");
    let now = wall_clock_ms();
    let mut store = fx.open().unwrap();
    store.load().unwrap();
    store.submit(batch(1, 0, vec![user(1, "alice"), user(2, "bob")]));
    let ops = (1..=5).map(|id| message(id, now, &format!("m{id}"), None));
    store.submit(batch(2, 5, ops.collect()));
    store.submit(batch(3, 5, vec![WriteOp::Ack { user: 2, upto: 2 }]));
    next_done(&mut store);
    next_done(&mut store);
    let acked = next_done(&mut store);
    assert_eq!(acked.removed.len(), 1);
    assert_eq!((acked.removed[0].user, acked.removed[0].count), (2, 2));

    let ReadAnswer::User(Some(bob)) = read(&mut store, ReadOp::UserByName("bob".into())) else {
        panic!("bob is stored");
    };
    assert_eq!((bob.id, bob.identity), (2, 2));
    let ReadAnswer::User(None) = read(&mut store, ReadOp::UserById(9)) else {
        panic!("nobody has id 9");
    };
    let ReadAnswer::Mailbox { count, bytes, .. } = read(&mut store, ReadOp::Mailbox(2)) else {
        panic!("figures");
    };
    assert_eq!(count, 3);
    assert_eq!(bytes + acked.removed[0].bytes, store_bytes(&fx, 5));
    let page = ReadOp::Page {
        user: 2,
        after: 3,
        limit: 10,
        max_bytes: 1 << 20,
    };
    let ReadAnswer::Page(messages) = read(&mut store, page) else {
        panic!("a page");
    };
    let ids: Vec<_> = messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, [4, 5]);
    assert_eq!(
        (messages[0].from.as_str(), messages[0].to.as_str()),
        ("alice", "bob")
    );
    assert_eq!(messages[1].content, "m5");
    drop(store);
    let snap = fx.open().unwrap().load().unwrap();
    assert_eq!((snap.pending_messages, snap.pending_bytes), (3, bytes));
}

#[test]
fn a_head_read_brings_the_figures_and_the_oldest_messages() {
    use crate::store::ReadAnswer;
    let fx = Fixture::new("head");
    let now = wall_clock_ms();
    let mut store = fx.open().unwrap();
    store.load().unwrap();
    store.submit(batch(1, 0, vec![user(1, "alice"), user(2, "bob")]));
    let ops = (1..=5).map(|id| message(id, now, &format!("m{id}"), None));
    store.submit(batch(2, 5, ops.collect()));
    store.submit(batch(3, 5, vec![WriteOp::Ack { user: 2, upto: 1 }]));
    for _ in 0..3 {
        next_done(&mut store);
    }
    let head = |limit| ReadOp::MailboxAndHead {
        user: 2,
        limit,
        max_bytes: 1 << 20,
    };
    // A window larger than the mailbox: the page is all of it, and the
    // figures are its own.
    let ReadAnswer::Mailbox {
        count,
        bytes,
        head: all,
    } = read(&mut store, head(4))
    else {
        panic!("figures and head");
    };
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3, 4, 5]);
    assert_eq!((count, bytes), (4, store_bytes(&fx, 4)));
    assert_eq!((all[0].from.as_str(), all[0].to.as_str()), ("alice", "bob"));
    assert_eq!(all[3].content, "m5");
    // A smaller window: its first messages, and the figures of them all.
    let ReadAnswer::Mailbox {
        count,
        bytes: some,
        head: two,
    } = read(&mut store, head(2))
    else {
        panic!("figures and head");
    };
    assert_eq!(two.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3]);
    assert_eq!((count, some), (4, bytes));
    // As many messages as the window: still counted to the end.
    let ReadAnswer::Mailbox { count, .. } = read(&mut store, head(4)) else {
        panic!("figures and head");
    };
    assert_eq!(count, 4);
}

/// What `n` messages like those of the test cost as stored: their JSON.
fn store_bytes(fx: &Fixture, n: i64) -> usize {
    let _ = fx;
    (1..=n)
        .map(
            |id| match message(id as u64, wall_clock_ms(), &format!("m{id}"), None) {
                WriteOp::Append(m) => m.json().len(),
                _ => unreachable!(),
            },
        )
        .sum()
}

#[test]
fn a_client_id_used_within_the_day_is_refused_by_the_database() {
    let fx = Fixture::new("cidunique");
    let now = wall_clock_ms();
    let mut store = fx.open().unwrap();
    store.submit(batch(1, 0, vec![user(1, "alice"), user(2, "bob")]));
    store.submit(batch(2, 1, vec![message(1, now, "first", Some("c"))]));
    next_done(&mut store);
    next_done(&mut store);
    drop(store);
    let mut store = fx.open().unwrap();
    store.submit(batch(1, 2, vec![message(2, now + 5, "again", Some("c"))]));
    let done = next_done(&mut store);
    assert_eq!(done.result, Ok(()));
    assert_eq!(done.duplicates.len(), 1);
    let d = done.duplicates[0];
    assert_eq!((d.message_id, d.first_id, d.first_ts), (2, 1, now));
    drop(store);
    let ids: Vec<_> = fx.everything().messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, [1], "the duplicate was not stored");
}

#[test]
fn revocations_come_back_until_their_tokens_expire() {
    let fx = Fixture::new("revocations");
    let now = wall_clock_ms();
    let mut store = fx.open().unwrap();
    store.load().unwrap();
    let big_id = u64::MAX - 5; // token ids use all 64 bits
    store.submit(batch(
        1,
        0,
        vec![
            user(1, "alice"),
            user(2, "bob"),
            WriteOp::RevokeToken {
                user: 1,
                token: big_id,
                expires: now + 60_000,
            },
            WriteOp::RevokeToken {
                user: 1,
                token: 7,
                expires: now - 1,
            },
            // Covered by the LOGOUT all that follows: deleted by it.
            WriteOp::RevokeToken {
                user: 2,
                token: 9,
                expires: now + 60_000,
            },
            WriteOp::VoidTokens { user: 2, from: now },
            WriteOp::VoidTokens {
                user: 2,
                from: now - 10,
            },
        ],
    ));
    assert_eq!(next_done(&mut store).result, Ok(()));
    drop(store);

    let snap = fx.open().unwrap().load().unwrap();
    assert_eq!(
        snap.revoked_tokens,
        [(big_id, now + 60_000, 1)],
        "expired ones and those a LOGOUT all covers are not loaded"
    );
    let users = fx.everything().users;
    let valid_from: Vec<_> = users.iter().map(|u| u.tokens_valid_from).collect();
    assert_eq!(
        valid_from,
        [0, now],
        "read with the account; never moves back"
    );
}

#[test]
fn an_idle_writer_deletes_what_acks_marked() {
    let fx = Fixture::new("purge");
    let now = wall_clock_ms();
    let mut store = fx.open().unwrap();
    store.load().unwrap();
    store.submit(batch(1, 0, vec![user(1, "alice"), user(2, "bob")]));
    let ops = (1..=5).map(|id| message(id, now, &format!("m{id}"), None));
    store.submit(batch(2, 5, ops.collect()));
    store.submit(batch(3, 5, vec![WriteOp::Ack { user: 2, upto: 3 }]));
    for _ in 0..3 {
        next_done(&mut store);
    }
    // The ACK only marked its rows; with nothing more to commit, the
    // writer deletes them.
    let conn = rusqlite::Connection::open(fx.dir.join(DB_FILE)).unwrap();
    let stored = || -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT id FROM messages ORDER BY id").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored() != [4, 5] {
        assert!(Instant::now() < deadline, "not deleted: {:?}", stored());
        std::thread::sleep(Duration::from_millis(10));
    }
    let marks: i64 = conn
        .query_row("SELECT count(*) FROM acked", [], |r| r.get(0))
        .unwrap();
    assert_eq!(marks, 0, "the marks go with their rows");
    drop(store);
    let snap = fx.open().unwrap().load().unwrap();
    assert_eq!(snap.pending_messages, 2);
}
