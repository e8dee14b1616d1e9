//! The store's own thread, the only code that writes the database.
//!
//! Group commit: it blocks for one batch, then takes every batch already
//! queued behind it (without waiting for more) and commits them all in ONE
//! transaction, so one fsync covers as many event-loop turns as arrived
//! while the previous fsync ran. The busier the server, the larger the
//! groups; an idle server commits each batch alone with no added delay.
//! Then it sends one [`Committed`] per batch, in order, and wakes the loop.
//!
//! A failed transaction (disk full, I/O error) is rolled back whole; each of
//! its batches gets `Err(cause)`, the core answers those requests
//! `unavailable`, and the thread goes on with the next group. When it
//! failed for lack of space, the group's ACKs are then committed on their
//! own, in the space of the reserve (see [`super::disk_full`]): deleting
//! must stay possible on a full disk. Each request is still all or nothing
//! (a SEND's message and its `client_id` are one operation).
//!
//! The database's unique key on (sender, `client_id`) decides duplicates:
//! a SEND whose `client_id` is among its sender's newest N of the day
//! stores nothing, and its [`Committed`] names the first message instead
//! (see [`super::client_id_window`]). An ACK reports
//! how many messages it removed and their size, and every transaction
//! moves the totals in custody kept in `meta`.
//!
//! An ACK marks its recipient's messages acknowledged (`acked`) and the
//! rows are deleted later, in steps between commits ([`super::purge`]);
//! on a full disk its rows are deleted at once instead, to free room.

use super::client_id_window::{ClientIdStatements, Window};
use super::custody;
use super::disk_full::DiskSpace;
use super::purge::{self, Backlog};
use super::schema::{PENDING_BYTES, PENDING_MESSAGES};
use super::stats::Stats;
use super::upkeep::{Upkeep, IDLE_AFTER};
use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::store::{Batch, Committed, Duplicate, Removed, StoreError, StoreMetrics, WriteOp};
use crate::Millis;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use mio::Waker;
use rusqlite::{CachedStatement, Connection, TransactionBehavior};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the writer waits for a batch before it deletes what ACKs
/// marked, when fewer than a step's worth wait.
const PURGE_WHEN_IDLE: Duration = Duration::from_millis(50);

/// The writer's state; lives on its thread.
pub struct Writer {
    conn: Connection,
    jobs: Receiver<Batch>,
    done: Sender<Committed>,
    waker: Arc<Waker>,
    stats: Stats,
    upkeep: Upkeep,
    space: DiskSpace,
    metrics: Arc<StoreMetrics>,
    /// Rows marked acknowledged and not deleted yet.
    purge: Backlog,
}

/// Starts the writer thread on `conn`. It runs until `jobs` is closed.
pub fn spawn(
    conn: Connection,
    jobs: Receiver<Batch>,
    done: Sender<Committed>,
    waker: Arc<Waker>,
    space: DiskSpace,
    metrics: Arc<StoreMetrics>,
) -> Result<JoinHandle<()>, String> {
    let now = Instant::now();
    let writer = Writer {
        jobs,
        done,
        waker,
        stats: Stats::new(now),
        upkeep: Upkeep::new(now),
        purge: Backlog::at_start(&conn),
        conn,
        space,
        metrics,
    };
    thread::Builder::new()
        .name("gotalk-store".into())
        .spawn(move || writer.run())
        .map_err(|e| format!("cannot start the store thread: {e}"))
}

impl Writer {
    fn run(mut self) {
        loop {
            let wait = match self.purge.is_pending() {
                true => PURGE_WHEN_IDLE,
                false => IDLE_AFTER,
            };
            match self.jobs.recv_timeout(wait) {
                Ok(first) => {
                    let mut group = vec![first];
                    while let Ok(more) = self.jobs.try_recv() {
                        group.push(more);
                    }
                    self.commit(group);
                    let now = Instant::now();
                    if self.purge.is_due_while_busy(now) {
                        self.purge_step();
                    }
                    // While the disk is full, `look_for_space` does this
                    // in steps that fit.
                    if !self.space.is_full() && self.upkeep.due_busy(now) {
                        self.upkeep.run(&self.conn, now, super::wall_clock_ms());
                    }
                }
                Err(RecvTimeoutError::Timeout) if self.purge.is_pending() => {
                    // Idle: steps follow each other until a batch comes.
                    while self.purge.is_pending() && self.jobs.is_empty() {
                        if !self.purge_step() {
                            break;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if let Some(line) = self.stats.due(now) {
                        log::info!("{line}");
                    }
                    if !self.space.is_full() && self.upkeep.due_idle(now) {
                        self.upkeep.run(&self.conn, now, super::wall_clock_ms());
                    }
                    self.look_for_space(now);
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Deletes one step of acknowledged rows. A failure (a full disk, say)
    /// is logged and the step tried again later; the marks stay.
    /// Returns whether it succeeded.
    fn purge_step(&mut self) -> bool {
        let Err(e) = purge::step(&mut self.conn, &mut self.purge) else {
            return true;
        };
        match StoreError::from(e) {
            StoreError::DiskFull => log::debug!("store: purge deferred, disk full"),
            e => log::warn!("store: deleting acknowledged messages failed (will retry): {e}"),
        }
        false
    }

    /// Commits a group and reports every batch in it.
    fn commit(&mut self, group: Vec<Batch>) {
        if self.space.is_full() {
            // Until the reserve is back, only ACKs are written: new
            // messages must not take the room they need.
            self.look_for_space(Instant::now());
        }
        let started = Instant::now();
        let outcome = match self.space.is_full() {
            true => Err(StoreError::DiskFull),
            false => self.write(&group, false),
        };
        let (result, acks, outcomes) = match outcome {
            Ok((writes, outcomes)) => {
                if writes > 0 {
                    let m = &self.metrics;
                    m.commit_seconds.observe(started.elapsed().as_secs_f64());
                    m.writes_per_commit.observe(writes as f64);
                }
                let transactions = usize::from(writes > 0);
                self.stats.committed(group.len(), transactions, writes);
                let marked = outcomes
                    .iter()
                    .flat_map(|o| o.removed.iter().chain(&o.expired));
                self.purge.marked(marked.map(|r| r.count).sum());
                (Ok(()), Ok(()), outcomes)
            }
            Err(StoreError::DiskFull) => {
                let (acks, outcomes) = self.commit_acks_alone(&group);
                (Err(StoreError::DiskFull), acks, outcomes)
            }
            Err(cause) => {
                log::error!(
                    "store: a transaction of {} batch(es) failed and was rolled back; \
                     their requests are answered unavailable: {cause}",
                    group.len()
                );
                (Err(cause.clone()), Err(cause), Vec::new())
            }
        };
        let mut outcomes = outcomes.into_iter();
        for batch in &group {
            let outcome = outcomes.next().unwrap_or_default();
            let done = Committed {
                seq: batch.seq,
                result: result.clone(),
                acks: acks.clone(),
                removed: outcome.removed,
                duplicates: outcome.duplicates,
                expired: outcome.expired,
                assigned: Default::default(),
            };
            if self.done.send(done).is_err() {
                return; // the store was dropped: nobody is waiting
            }
        }
        if let Err(e) = self.waker.wake() {
            log::error!("store: cannot wake the event loop: {e}");
        }
        if let Some(line) = self.stats.due(Instant::now()) {
            log::info!("{line}");
        }
    }

    /// Writes the batches of `group` (only their ACKs with `acks_only`) in
    /// one transaction. A panic here would be a bug; catching it still
    /// answers the requests (as unavailable) instead of leaving them
    /// waiting forever.
    fn write(
        &mut self,
        group: &[Batch],
        acks_only: bool,
    ) -> Result<(usize, Vec<BatchOutcome>), StoreError> {
        let conn = &mut self.conn;
        let write = || write_batches(conn, group, acks_only, super::wall_clock_ms());
        match panic::catch_unwind(AssertUnwindSafe(write)) {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(StoreError::Panicked),
        }
    }

    /// `group` failed for lack of space, or the disk is known to be full:
    /// with the reserve released, its ACKs are committed on their own (they
    /// free space, and depend on nothing else in the group). Returns their
    /// outcome; everything else in the group is refused.
    fn commit_acks_alone(
        &mut self,
        group: &[Batch],
    ) -> (Result<(), StoreError>, Vec<BatchOutcome>) {
        self.space.ran_out(&self.conn, Instant::now());
        let count = group
            .iter()
            .flat_map(|b| &b.ops)
            .filter(|op| is_ack(op))
            .count();
        if count == 0 {
            log::debug!("store: {} batch(es) refused, disk full", group.len());
            return (Err(StoreError::DiskFull), Vec::new());
        }
        match self.write(group, true) {
            Ok((writes, outcomes)) => {
                let batches = group.iter().filter(|b| b.ops.iter().any(is_ack)).count();
                self.stats.committed(batches, 1, writes);
                (Ok(()), outcomes)
            }
            Err(cause) => {
                match &cause {
                    StoreError::DiskFull => {
                        log::debug!("store: {count} ACK(s) refused too, disk full")
                    }
                    cause => log::error!(
                        "store: a transaction of {count} ACK(s) failed and was rolled back: {cause}"
                    ),
                }
                (Err(cause), Vec::new())
            }
        }
    }

    /// While the disk is full, at most once per `disk_full::RETRY_EVERY`:
    /// gives freed pages back to the file system and looks for room for
    /// the reserve, which ends disk-full mode.
    fn look_for_space(&mut self, now: Instant) {
        if self.space.due_retry(now) {
            self.space.try_recover(&self.conn, now);
        }
    }
}

fn is_ack(op: &WriteOp) -> bool {
    matches!(op, WriteOp::Ack { .. })
}

/// What the store learned while writing one batch, for the core.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub removed: Vec<Removed>,
    pub duplicates: Vec<Duplicate>,
    pub expired: Vec<Removed>,
}

/// Writes `group` in one transaction, all or nothing. Returns how many
/// operations it held. A group without operations (its batches only wait
/// for earlier ones, like a repeated `client_id`) costs no transaction: the
/// ids it carries were never stored anywhere, so there is nothing to keep.
pub fn write_group(conn: &mut Connection, group: &[Batch]) -> rusqlite::Result<usize> {
    write_batches(conn, group, false, super::wall_clock_ms()).map(|(writes, _)| writes)
}

/// Writes the batches' operations (only their ACKs with `acks_only`) in one
/// transaction; raises the stored `last_message_id` to the group's highest
/// and moves the totals in custody by what was added and removed. `now`
/// (ms since the epoch) decides which remembered `client_id`s have expired.
/// Nothing at all when there are no operations.
fn write_batches(
    conn: &mut Connection,
    group: &[Batch],
    acks_only: bool,
    now: Millis,
) -> rusqlite::Result<(usize, Vec<BatchOutcome>)> {
    let wanted = |op: &WriteOp| !acks_only || is_ack(op);
    if !group.iter().flat_map(|b| &b.ops).any(wanted) {
        return Ok((0, Vec::new()));
    }
    let last_message_id = group.iter().map(|b| b.last_message_id).max().unwrap_or(0);
    let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut writes = 0;
    let mut outcomes = Vec::with_capacity(group.len());
    {
        let mut statements = Statements::prepare(&tx, acks_only)?;
        let mut totals = Totals::default();
        for batch in group {
            let mut outcome = BatchOutcome::default();
            let window = Window {
                cutoff,
                per_sender: batch.client_ids_per_sender,
            };
            for op in batch.ops.iter().filter(|op| wanted(op)) {
                statements.apply(op, window, &mut outcome, &mut totals)?;
                writes += 1;
            }
            outcomes.push(outcome);
        }
        statements
            .last_message_id
            .execute([last_message_id as i64])?;
        custody::apply(&tx, &totals.senders)?;
        if totals.messages != 0 || totals.bytes != 0 {
            statements
                .total
                .execute(rusqlite::params![PENDING_MESSAGES, totals.messages])?;
            statements
                .total
                .execute(rusqlite::params![PENDING_BYTES, totals.bytes])?;
        }
    }
    tx.commit()?;
    Ok((writes, outcomes))
}

/// How a group changes the totals in custody.
#[derive(Default)]
struct Totals {
    messages: i64,
    bytes: i64,
    /// Each sender's figure moves by this (one write per sender per group).
    senders: custody::Moves,
}

/// The statements a group needs, prepared once per connection (SQLite's
/// statement cache keeps them between groups).
struct Statements<'c> {
    conn: &'c Connection,
    user: CachedStatement<'c>,
    password_hash: CachedStatement<'c>,
    message: CachedStatement<'c>,
    client_ids: ClientIdStatements<'c>,
    mark: CachedStatement<'c>,
    delete_acked: CachedStatement<'c>,
    /// Delete an ACK's rows at once (on a full disk) instead of marking.
    at_once: bool,
    revoke: CachedStatement<'c>,
    void: CachedStatement<'c>,
    forget_revoked: CachedStatement<'c>,
    last_message_id: CachedStatement<'c>,
    total: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection, at_once: bool) -> rusqlite::Result<Statements<'c>> {
        Ok(Statements {
            conn,
            user: conn.prepare_cached(
                "INSERT INTO users (id, username, password_hash, created, identity, name_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            password_hash: conn
                .prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?,
            message: conn.prepare_cached(
                "INSERT INTO messages (id, from_id, to_id, ts, content, client_id, cost) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            client_ids: ClientIdStatements::prepare(conn)?,
            mark: conn.prepare_cached(
                "INSERT INTO acked (to_id, upto) VALUES (?1, ?2) \
                 ON CONFLICT (to_id) DO UPDATE SET upto = max(upto, excluded.upto)",
            )?,
            delete_acked: conn
                .prepare_cached("DELETE FROM messages WHERE to_id = ?1 AND id <= ?2")?,
            at_once,
            revoke: conn.prepare_cached(
                "INSERT OR REPLACE INTO revoked_tokens (token_id, expires, user_id) \
                 VALUES (?1, ?2, ?3)",
            )?,
            forget_revoked: conn.prepare_cached("DELETE FROM revoked_tokens WHERE user_id = ?1")?,
            void: conn.prepare_cached(
                "UPDATE users SET tokens_valid_from = max(tokens_valid_from, ?2) WHERE id = ?1",
            )?,
            last_message_id: conn.prepare_cached(
                "UPDATE meta SET value = max(value, ?1) WHERE key = 'last_message_id'",
            )?,
            total: conn.prepare_cached("UPDATE meta SET value = value + ?2 WHERE key = ?1")?,
        })
    }

    fn apply(
        &mut self,
        op: &WriteOp,
        window: Window,
        outcome: &mut BatchOutcome,
        totals: &mut Totals,
    ) -> rusqlite::Result<()> {
        match op {
            WriteOp::CreateUser {
                id,
                identity,
                username,
                password_hash,
                created,
            } => {
                self.user.execute(rusqlite::params![
                    *id as i64,
                    &**username,
                    &**password_hash,
                    *created as i64,
                    &identity.to_be_bytes()[..],
                    crate::username::fold(username)
                ])?;
            }
            WriteOp::SetPasswordHash { id, password_hash } => {
                self.password_hash
                    .execute(rusqlite::params![*id as i64, &**password_hash])?;
            }
            WriteOp::Append(message) => {
                let client_id = message.client_id();
                if let Some(cid) = &client_id {
                    if let Some((first_id, first_ts)) =
                        self.client_ids.record(message, cid, window)?
                    {
                        outcome.duplicates.push(Duplicate {
                            message_id: message.id,
                            first_id,
                            first_ts,
                        });
                        return Ok(());
                    }
                }
                let cost = message.json().len();
                self.message.execute(rusqlite::params![
                    message.id as i64,
                    message.from_id as i64,
                    message.to_id as i64,
                    message.ts as i64,
                    message.content(),
                    client_id.as_deref(),
                    cost as i64,
                ])?;
                totals.senders.add(message.from_id, cost as i64);
                totals.messages += 1;
                totals.bytes += cost as i64;
            }
            WriteOp::Ack { user, upto } => {
                // What it ends, by sender (from the index alone).
                let ending = custody::acked(self.conn, *user, *upto)?;
                let (count, bytes, newest) = (ending.count, ending.bytes, ending.newest as i64);
                totals.senders.take(&ending.senders);
                if self.at_once {
                    self.delete_acked.execute([*user as i64, *upto as i64])?;
                } else if count > 0 {
                    // Up to the newest message it ends, not `upto`: a
                    // message stored later may have a lower id than an
                    // ACK that named one beyond the newest.
                    self.mark.execute([*user as i64, newest])?;
                }
                totals.messages -= count as i64;
                totals.bytes -= bytes as i64;
                outcome.removed.push(Removed {
                    user: *user,
                    upto: *upto,
                    count,
                    bytes,
                    senders: ending.senders,
                });
            }
            WriteOp::Expire { before, limit } => {
                let expired = custody::expire(self.conn, *before, *limit)?;
                for r in &expired {
                    totals.senders.take(&r.senders);
                    totals.messages -= r.count as i64;
                    totals.bytes -= r.bytes as i64;
                }
                outcome.expired.extend(expired);
            }
            WriteOp::RevokeToken {
                token,
                expires,
                user,
            } => {
                // Token ids use all 64 bits; SQLite's integers are signed.
                self.revoke
                    .execute([*token as i64, *expires as i64, *user as i64])?;
            }
            WriteOp::VoidTokens { user, from } => {
                self.void.execute([*user as i64, *from as i64])?;
                // Issued before the moment, so covered by it: at most
                // `--revocations-per-account` rows, through their index.
                self.forget_revoked.execute([*user as i64])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::disk_full::{DiskSpace, RESERVE_FILE};
    use super::super::{connect, schema, DB_FILE};
    use super::*;
    use crate::message::{Message, Parties};
    use mio::{Poll, Token};
    use std::path::PathBuf;

    fn message(id: u64, content: &str) -> WriteOp {
        let parties = Parties {
            from_id: 1,
            from: "alice",
            to_id: 2,
            to: "bob",
        };
        WriteOp::Append(Arc::new(Message::new(id, &parties, 1, content, None)))
    }

    fn user(id: u64, name: &str) -> WriteOp {
        WriteOp::CreateUser {
            id,
            identity: u128::from(id),
            username: name.into(),
            password_hash: "h".into(),
            created: 1,
        }
    }

    fn batch(seq: u64, ops: Vec<WriteOp>) -> Batch {
        Batch {
            seq,
            ops,
            last_message_id: 10,
            client_ids_per_sender: 0,
        }
    }

    fn stored_ids(conn: &Connection) -> Vec<u64> {
        let mut stmt = conn.prepare("SELECT id FROM messages ORDER BY id").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn mailbox(conn: &Connection, user: u64) -> (Vec<u64>, usize) {
        use crate::store::{ReadAnswer, ReadOp};
        let op = ReadOp::MailboxAndHead {
            user,
            limit: 100,
            max_bytes: 1 << 20,
        };
        let Ok(ReadAnswer::Mailbox { count, head, .. }) = super::super::reader::answer(conn, &op)
        else {
            panic!("figures and head");
        };
        (head.iter().map(|m| m.id).collect(), count)
    }

    #[test]
    fn an_ack_marks_its_messages_and_a_purge_step_deletes_them() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let mut ops = vec![user(1, "alice"), user(2, "bob")];
        ops.extend((1..=4).map(|id| message(id, "m")));
        write_group(&mut conn, &[batch(1, ops)]).unwrap();
        // An ACK that names an id beyond the newest message.
        let ack = WriteOp::Ack { user: 2, upto: 10 };
        let (_, outcomes) = write_batches(&mut conn, &[batch(2, vec![ack])], false, 0).unwrap();
        assert_eq!(outcomes[0].removed[0].count, 4);
        assert_eq!(stored_ids(&conn), [1, 2, 3, 4], "marked, not deleted yet");
        assert_eq!(mailbox(&conn, 2), (vec![], 0), "reads skip them");
        // A message stored after the ACK, with an id below the one it
        // named, is not covered by it.
        write_group(&mut conn, &[batch(3, vec![message(5, "later")])]).unwrap();
        assert_eq!(mailbox(&conn, 2), (vec![5], 1));
        // A repeated ACK ends nothing more.
        let again = WriteOp::Ack { user: 2, upto: 4 };
        let (_, outcomes) = write_batches(&mut conn, &[batch(4, vec![again])], false, 0).unwrap();
        assert_eq!(outcomes[0].removed[0].count, 0);
        let mut backlog = Backlog::default();
        backlog.marked(4);
        assert_eq!(purge::step(&mut conn, &mut backlog).unwrap(), 4);
        assert_eq!(stored_ids(&conn), [5]);
        assert_eq!(mailbox(&conn, 2), (vec![5], 1));
        assert!(!backlog.is_pending());
    }

    #[test]
    fn on_a_full_disk_acks_are_committed_without_the_rest_of_their_group() {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("gotalk-writer-unit-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = connect(&dir.join(DB_FILE)).unwrap();
        schema::migrate(&mut conn).unwrap();
        let setup = batch(1, vec![user(1, "alice"), user(2, "bob")]);
        let mut first = setup.ops;
        first.extend([message(1, "one"), message(2, "two"), message(3, "three")]);
        write_group(&mut conn, &[batch(1, first)]).unwrap();
        // A file that may not grow any more: SQLite answers SQLITE_FULL,
        // as it does when the disk is full.
        let pages: u32 = conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();

        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).unwrap());
        let (_jobs_tx, jobs) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::unbounded();
        let now = Instant::now();
        let mut writer = Writer {
            conn,
            jobs,
            done: done_tx,
            waker,
            stats: Stats::new(now),
            upkeep: Upkeep::new(now),
            space: DiskSpace::open(&dir, 64 * 1024),
            metrics: Arc::default(),
            purge: Backlog::default(),
        };
        let big = "x".repeat(64 * 1024);
        writer.commit(vec![
            batch(2, vec![message(4, &big), WriteOp::Ack { user: 2, upto: 1 }]),
            batch(3, vec![WriteOp::Ack { user: 2, upto: 2 }]),
            batch(4, vec![user(3, "carol")]),
        ]);
        for seq in 2..=4 {
            let d = done.try_recv().unwrap();
            assert_eq!(d.seq, seq);
            assert_eq!(d.result, Err(StoreError::DiskFull), "batch {seq}");
            assert_eq!(d.acks, Ok(()), "batch {seq}: ACKs are stored");
        }
        assert_eq!(stored_ids(&writer.conn), [3], "acked, and no message 4");
        assert!(writer.space.is_full());
        assert!(!dir.join(RESERVE_FILE).exists(), "the reserve was released");

        // While full, a small SEND that would fit is refused without trying
        // (the room is for ACKs), and ACKs still go through.
        writer.commit(vec![
            batch(5, vec![message(5, "small")]),
            batch(6, vec![WriteOp::Ack { user: 2, upto: 3 }]),
        ]);
        let d = done.try_recv().unwrap();
        assert_eq!((d.seq, d.result), (5, Err(StoreError::DiskFull)));
        let d = done.try_recv().unwrap();
        assert_eq!((d.seq, d.acks), (6, Ok(())));
        assert_eq!(stored_ids(&writer.conn), Vec::<u64>::new());
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
