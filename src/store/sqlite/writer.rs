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
//! `unavailable`, and the thread goes on with the next group.

use super::stats::Stats;
use super::upkeep::{Upkeep, IDLE_AFTER};
use crate::store::{Batch, Committed, StoreError, WriteOp};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use mio::Waker;
use rusqlite::{CachedStatement, Connection, TransactionBehavior};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// The writer's state; lives on its thread.
pub struct Writer {
    conn: Connection,
    jobs: Receiver<Batch>,
    done: Sender<Committed>,
    waker: Arc<Waker>,
    stats: Stats,
    upkeep: Upkeep,
}

/// Starts the writer thread on `conn`. It runs until `jobs` is closed.
pub fn spawn(
    conn: Connection,
    jobs: Receiver<Batch>,
    done: Sender<Committed>,
    waker: Arc<Waker>,
) -> Result<JoinHandle<()>, String> {
    let now = Instant::now();
    let writer = Writer {
        conn,
        jobs,
        done,
        waker,
        stats: Stats::new(now),
        upkeep: Upkeep::new(now),
    };
    thread::Builder::new()
        .name("gotalk-store".into())
        .spawn(move || writer.run())
        .map_err(|e| format!("cannot start the store thread: {e}"))
}

impl Writer {
    fn run(mut self) {
        loop {
            match self.jobs.recv_timeout(IDLE_AFTER) {
                Ok(first) => {
                    let mut group = vec![first];
                    while let Ok(more) = self.jobs.try_recv() {
                        group.push(more);
                    }
                    self.commit(group);
                    let now = Instant::now();
                    if self.upkeep.due_busy(now) {
                        self.upkeep.run(&self.conn, now, super::wall_clock_ms());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if let Some(line) = self.stats.due(now) {
                        log::info!("{line}");
                    }
                    if self.upkeep.due_idle(now) {
                        self.upkeep.run(&self.conn, now, super::wall_clock_ms());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Commits a group and reports every batch in it.
    fn commit(&mut self, group: Vec<Batch>) {
        // A panic here would be a bug; catching it still answers the
        // requests (as unavailable) instead of leaving them waiting forever.
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| write_group(&mut self.conn, &group)));
        let result = match outcome {
            Ok(Ok(writes)) => {
                let transactions = usize::from(writes > 0);
                self.stats.committed(group.len(), transactions, writes);
                Ok(())
            }
            Ok(Err(e)) => Err(StoreError::from(e)),
            Err(_) => Err(StoreError::Panicked),
        };
        if let Err(cause) = &result {
            log::error!(
                "store: a transaction of {} batch(es) failed and was rolled back; \
                 their requests are answered unavailable: {cause}",
                group.len()
            );
        }
        for batch in &group {
            let done = Committed {
                seq: batch.seq,
                result: result.clone(),
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
}

/// Writes `group` in one transaction, all or nothing. Returns how many
/// operations it held. A group without operations (its batches only wait
/// for earlier ones, like a repeated `client_id`) costs no transaction: the
/// ids it carries were never stored anywhere, so there is nothing to keep.
pub fn write_group(conn: &mut Connection, group: &[Batch]) -> rusqlite::Result<usize> {
    if group.iter().all(|b| b.ops.is_empty()) {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut writes = 0;
    {
        let mut ops = Statements::prepare(&tx)?;
        let mut last_message_id = 0;
        for batch in group {
            for op in &batch.ops {
                ops.apply(op)?;
                writes += 1;
            }
            last_message_id = last_message_id.max(batch.last_message_id);
        }
        ops.last_message_id.execute([last_message_id as i64])?;
    }
    tx.commit()?;
    Ok(writes)
}

/// The statements a group needs, prepared once per connection (SQLite's
/// statement cache keeps them between groups).
struct Statements<'c> {
    user: CachedStatement<'c>,
    message: CachedStatement<'c>,
    client_id: CachedStatement<'c>,
    ack: CachedStatement<'c>,
    last_message_id: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection) -> rusqlite::Result<Statements<'c>> {
        Ok(Statements {
            user: conn.prepare_cached(
                "INSERT INTO users (id, username, password_hash, created) VALUES (?1, ?2, ?3, ?4)",
            )?,
            message: conn.prepare_cached(
                "INSERT INTO messages (id, from_id, to_id, ts, content, client_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            // REPLACE: a row the periodic prune has not reached yet may
            // still hold an id the core already forgot after 24 hours.
            client_id: conn.prepare_cached(
                "INSERT OR REPLACE INTO client_ids (sender, client_id, message_id, ts) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?,
            ack: conn.prepare_cached("DELETE FROM messages WHERE to_id = ?1 AND id <= ?2")?,
            last_message_id: conn.prepare_cached(
                "UPDATE meta SET value = max(value, ?1) WHERE key = 'last_message_id'",
            )?,
        })
    }

    fn apply(&mut self, op: &WriteOp) -> rusqlite::Result<()> {
        match op {
            WriteOp::CreateUser {
                id,
                username,
                password_hash,
                created,
            } => {
                self.user.execute(rusqlite::params![
                    *id as i64,
                    &**username,
                    &**password_hash,
                    *created as i64
                ])?;
            }
            WriteOp::Append(message) => {
                let client_id = message.client_id();
                self.message.execute(rusqlite::params![
                    message.id as i64,
                    message.from_id as i64,
                    message.to_id as i64,
                    message.ts as i64,
                    message.content(),
                    client_id.as_deref(),
                ])?;
                if let Some(cid) = &client_id {
                    self.client_id.execute(rusqlite::params![
                        message.from_id as i64,
                        cid,
                        message.id as i64,
                        message.ts as i64
                    ])?;
                }
            }
            WriteOp::Ack { user, upto } => {
                self.ack.execute([*user as i64, *upto as i64])?;
            }
        }
        Ok(())
    }
}
