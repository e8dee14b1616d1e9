//! The store end to end on a real file: batches in, completions out, and
//! what a reopened store loads; group commit's all-or-nothing; refusals at
//! open.

use super::*;
use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::message::{Message, Parties};
use crate::store::{StoreError, WriteOp};
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
        SqliteStore::open(&self.dir, self.waker.clone())
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
    WriteOp::Append(Arc::new(Message::new(id, &parties, ts, content, client_id)))
}

fn batch(seq: u64, last_message_id: u64, ops: Vec<WriteOp>) -> Batch {
    Batch {
        seq,
        ops,
        last_message_id,
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
    assert!(empty.users.is_empty() && empty.messages.is_empty());
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

    let mut store = fx.open().unwrap();
    let snap = store.load().unwrap();
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
    let snap = fx.open().unwrap().load().unwrap();
    assert!(snap.messages.is_empty());
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
    let snap = fx.open().unwrap().load().unwrap();
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

    let snap = fx.open().unwrap().load().unwrap();
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
                token: big_id,
                expires: now + 60_000,
            },
            WriteOp::RevokeToken {
                token: 7,
                expires: now - 1,
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
        [(big_id, now + 60_000)],
        "expired ones are not loaded"
    );
    assert_eq!(snap.tokens_valid_from, [(2, now)], "never moves back");
}
