//! The SQLite store's side of the writing thread ([`super::super::group_commit`]
//! runs the loop): what it does around each group and while idle.
//!
//! A failed transaction (disk full, I/O error) is rolled back whole; each of
//! its batches gets `Err(cause)`, the core answers those requests
//! `unavailable`, and the thread goes on with the next group. When it
//! failed for lack of space, the group's ACKs are then committed on their
//! own, in the space of the reserve (see [`super::disk_full`]): deleting
//! must stay possible on a full disk. Each request is still all or nothing
//! (a SEND's message and its `client_id` are one operation). The SQL of a
//! group is [`super::group`].
//!
//! Between groups and while idle it deletes the rows ACKs marked
//! ([`super::purge`]), gives freed space back and prunes old `client_id`s
//! ([`super::upkeep`]), and looks for room while the disk is full.

use super::disk_full::DiskSpace;
use super::group::{is_ack, write_batches_with};
use super::history::Retention;
use super::pairs::Indexer;
use super::purge::{self, Backlog};
use super::upkeep::{Upkeep, IDLE_AFTER};
use crate::store::group_commit::{BatchOutcome, WriteBackend, Written};
use crate::store::stats::Stats;
use crate::store::{Batch, HistoryRules, StoreError, WriteOp};
use crossbeam_channel::Receiver;
use rusqlite::Connection;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use super::group::write_group;

/// How long the writer waits for a batch before it deletes what ACKs
/// marked, when fewer than a step's worth wait.
const PURGE_WHEN_IDLE: Duration = Duration::from_millis(50);

/// The writer's SQLite state; lives on its thread.
pub struct Sqlite {
    conn: Connection,
    upkeep: Upkeep,
    space: DiskSpace,
    /// Rows marked acknowledged and not deleted yet.
    purge: Backlog,
    /// With history on, acknowledged rows stay (no purge) and conversations
    /// are kept; `--history-days` deletes them later.
    keep: bool,
    retention: Option<Retention>,
    /// With history: the conversation index, filled behind the commit.
    pairs: Option<Indexer>,
}

impl Sqlite {
    /// The back end on `conn`, with the disk's reserve `space`.
    pub fn new(conn: Connection, space: DiskSpace) -> Sqlite {
        Sqlite {
            upkeep: Upkeep::new(Instant::now()),
            purge: Backlog::at_start(&conn),
            conn,
            space,
            keep: false,
            retention: None,
            pairs: None,
        }
    }

    /// Keeps conversations as `history` says: acknowledged rows stay until
    /// retention deletes them (nothing is purged).
    pub fn with_history(mut self, history: HistoryRules) -> Sqlite {
        self.keep = history.keep;
        if history.keep {
            self.purge = Backlog::default();
            self.retention = history.retention_ms.map(Retention::new);
            self.pairs = Some(Indexer::default());
        }
        self
    }

    /// Indexes conversations behind the commit: one step when `due`
    /// says. A failure is logged and the step tried again later (readers
    /// read the rows above the mark meanwhile). Returns whether more wait.
    fn index_step(&mut self, due: impl Fn(&Indexer) -> bool) -> bool {
        if self.space.is_full() {
            return false; // the room is for ACKs
        }
        let Some(pairs) = self.pairs.as_mut().filter(|p| due(p)) else {
            return false;
        };
        if let Err(e) = pairs.step(&mut self.conn) {
            match StoreError::from(e) {
                StoreError::DiskFull => log::debug!("store: indexing deferred, disk full"),
                e => log::warn!("store: indexing conversations failed (will retry): {e}"),
            }
            return false;
        }
        pairs.is_pending()
    }

    /// A retention step if one is due. A failure is logged and the step
    /// tried again later.
    fn retention_step(&mut self, now: Instant) {
        let Some(retention) = self.retention.as_mut() else {
            return;
        };
        if !retention.is_due(now) {
            return;
        }
        match retention.step(&mut self.conn, super::wall_clock_ms()) {
            Ok(0) => {}
            Ok(n) => log::debug!("store: retention deleted {n} messages from history"),
            Err(e) => log::warn!("store: history retention failed (will retry): {e}"),
        }
    }
}

impl WriteBackend for Sqlite {
    type Note = ();

    fn wait(&self) -> Duration {
        match self.purge.is_pending() {
            true => PURGE_WHEN_IDLE,
            false => IDLE_AFTER,
        }
    }

    fn idle(&mut self, jobs: &Receiver<Batch>, stats: &mut Stats) {
        if self.purge.is_pending() {
            // Idle: steps follow each other until a batch comes.
            while self.purge.is_pending() && jobs.is_empty() {
                if !self.purge_step() {
                    break;
                }
            }
            return;
        }
        // Idle: index what waits, step by step until a batch comes.
        while self.index_step(Indexer::is_pending) && jobs.is_empty() {}
        let now = Instant::now();
        self.retention_step(now);
        if let Some(line) = stats.due(now) {
            log::info!("{line}");
        }
        if !self.space.is_full() && self.upkeep.due_idle(now) {
            self.upkeep.run(&self.conn, now, super::wall_clock_ms());
        }
        self.look_for_space(now);
    }

    fn after_group(&mut self) {
        let now = Instant::now();
        if self.purge.is_due_while_busy(now) {
            self.purge_step();
        }
        self.index_step(|p| p.is_due_while_busy(now));
        self.retention_step(now);
        // While the disk is full, `look_for_space` does this in steps
        // that fit.
        if !self.space.is_full() && self.upkeep.due_busy(now) {
            self.upkeep.run(&self.conn, now, super::wall_clock_ms());
        }
    }

    fn write(&mut self, group: &[Batch]) -> Result<Written, StoreError> {
        if self.space.is_full() {
            // Until the reserve is back, only ACKs are written: new
            // messages must not take the room they need.
            self.look_for_space(Instant::now());
        }
        if self.space.is_full() {
            return Err(StoreError::DiskFull);
        }
        let (writes, outcomes) = self.write_some(group, false)?;
        if let Some(pairs) = &mut self.pairs {
            let ops = group.iter().flat_map(|b| &b.ops);
            pairs.stored(ops.filter(|op| matches!(op, WriteOp::Append(_))).count());
        }
        let marked = outcomes
            .iter()
            .flat_map(|o| o.removed.iter().chain(&o.expired));
        if !self.keep {
            self.purge.marked(marked.map(|r| r.count).sum());
        }
        Ok((writes, outcomes))
    }

    fn failed(
        &mut self,
        group: &[Batch],
        cause: &StoreError,
        stats: &mut Stats,
    ) -> (Result<(), StoreError>, Vec<BatchOutcome>) {
        if *cause == StoreError::DiskFull {
            return self.commit_acks_alone(group, stats);
        }
        log::error!(
            "store: a transaction of {} batch(es) failed and was rolled back; \
             their requests are answered unavailable: {cause}",
            group.len()
        );
        (Err(cause.clone()), Vec::new())
    }
}

impl Sqlite {
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

    /// Writes the batches of `group` (only their ACKs with `acks_only`) in
    /// one transaction. A panic here would be a bug; catching it still
    /// answers the requests (as unavailable) instead of leaving them
    /// waiting forever.
    fn write_some(&mut self, group: &[Batch], acks_only: bool) -> Result<Written, StoreError> {
        let conn = &mut self.conn;
        let keep = self.keep;
        let write = || write_batches_with(conn, group, acks_only, super::wall_clock_ms(), keep);
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
        stats: &mut Stats,
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
        match self.write_some(group, true) {
            Ok((writes, outcomes)) => {
                let batches = group.iter().filter(|b| b.ops.iter().any(is_ack)).count();
                stats.committed(batches, 1, writes);
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

#[cfg(test)]
mod tests {
    use super::super::disk_full::{DiskSpace, RESERVE_FILE};
    use super::super::group::tests::{batch, message, stored_ids, user};
    use super::super::{connect, schema, DB_FILE};
    use super::*;
    use crate::store::group_commit::GroupWriter;
    use crate::store::WriteOp;
    use mio::{Poll, Token, Waker};
    use std::path::PathBuf;
    use std::sync::Arc;

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
        let mut sqlite = Sqlite::new(conn, DiskSpace::open(&dir, 64 * 1024));
        sqlite.purge = Backlog::default();
        let mut writer = GroupWriter::new(sqlite, jobs, done_tx, waker, Arc::default());
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
        assert_eq!(
            stored_ids(&writer.backend.conn),
            [3],
            "acked, and no message 4"
        );
        assert!(writer.backend.space.is_full());
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
        assert_eq!(stored_ids(&writer.backend.conn), Vec::<u64>::new());
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
