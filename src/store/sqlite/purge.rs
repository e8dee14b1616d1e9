//! Deleting acknowledged messages after the fact. An ACK only raises its
//! recipient's mark in `acked` (one small row; see schema version 5) and
//! every read skips what a mark covers; the rows themselves are deleted
//! here, by the writer thread between commits, in steps of at most
//! [`STEP`] rows.
//!
//! Why later: ids are given in arrival order, so one recipient's messages
//! sit on as many table pages as they are messages, each page shared with
//! the messages of other recipients. Deleting them in the ACK's own
//! transaction rewrote all those pages for every ACK; a step deletes the
//! rows of many ACKs together and writes each page once.
//!
//! A step is committed without its own fsync (`synchronous = NORMAL` for
//! that transaction only): a step lost to a power cut loses nothing, since
//! the marks it acted on were committed with their ACKs and the step simply
//! runs again. The next ordinary commit syncs the log with it.
//!
//! When a step finds fewer rows than it may delete, every mark has done
//! its work and `acked` is emptied.
//!
//! While batches keep coming, steps take at most an eighth of the writer's
//! time (after a step of `d`, the next waits `7 d`): a step holds up the
//! commits queued behind it, ACKs among them, and deleting can as well
//! wait for a pause. Once [`HIGH`] rows wait, steps follow each other
//! regardless, so the file does not grow without bound under load that
//! never pauses.

use rusqlite::{Connection, TransactionBehavior};
use std::time::{Duration, Instant};

/// Most rows one step deletes: a few milliseconds of writing, so commits
/// queued behind it wait little.
pub const STEP: usize = 4096;
/// Rows waiting beyond which steps no longer leave the writer time between.
pub const HIGH: usize = 256 * STEP;
/// After a step of `d` while busy, the next waits `REST * d`.
const REST: u32 = 7;

/// Rows covered by marks and not deleted yet, as far as the writer knows:
/// a step is due once [`STEP`] of them wait, or when the writer is idle.
#[derive(Debug, Default)]
pub struct Backlog {
    rows: usize,
    /// Marks may exist that this run did not make (a restart).
    unknown: bool,
    /// No step while busy before this.
    rest_until: Option<Instant>,
}

impl Backlog {
    /// At start: marks left by an earlier run are purged when idle.
    pub fn at_start(conn: &Connection) -> Backlog {
        let any: bool = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM acked)", [], |r| r.get(0))
            .unwrap_or(true);
        Backlog {
            unknown: any,
            ..Backlog::default()
        }
    }

    /// An ACK marked `rows` more.
    pub fn marked(&mut self, rows: usize) {
        self.rows = self.rows.saturating_add(rows);
    }

    /// Whether anything may wait to be deleted.
    pub fn is_pending(&self) -> bool {
        self.rows > 0 || self.unknown
    }

    /// Whether a step is due at `now` even though commits keep coming.
    pub fn is_due_while_busy(&self, now: Instant) -> bool {
        let rested = self.rest_until.is_none_or(|until| now >= until);
        self.rows >= STEP && (rested || self.rows >= HIGH)
    }

    /// A step that took `took` deleted `deleted` rows; with `done`, none
    /// are left.
    fn stepped(&mut self, deleted: usize, done: bool, took: Duration) {
        if done {
            self.rows = 0;
            self.unknown = false;
        } else {
            self.rows = self.rows.saturating_sub(deleted);
        }
        self.rest_until = Some(Instant::now() + took * REST);
    }
}

/// Deletes up to [`STEP`] acknowledged rows; returns how many.
pub fn step(conn: &mut Connection, backlog: &mut Backlog) -> rusqlite::Result<usize> {
    let started = Instant::now();
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let result = delete(conn, STEP);
    // Back to FULL whatever happened: every other commit keeps its fsync.
    conn.pragma_update(None, "synchronous", "FULL")?;
    let (deleted, done) = result?;
    backlog.stepped(deleted, done, started.elapsed());
    Ok(deleted)
}

/// One transaction: at most `limit` rows covered by a mark, and the marks
/// themselves once nothing is left for them. Returns the rows deleted and
/// whether that was all.
fn delete(conn: &mut Connection, limit: usize) -> rusqlite::Result<(usize, bool)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // CROSS JOIN keeps `acked` outside: a handful of marks, each read
    // through the recipient index, never a scan of every message.
    let deleted = tx
        .prepare_cached(
            "DELETE FROM messages WHERE id IN ( \
                 SELECT m.id FROM acked a CROSS JOIN messages m \
                 ON m.to_id = a.to_id AND m.id <= a.upto LIMIT ?1)",
        )?
        .execute([limit as i64])?;
    let done = deleted < limit;
    if done {
        tx.execute("DELETE FROM acked", [])?;
    }
    tx.commit()?;
    Ok((deleted, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for id in 1..=10 {
            conn.execute(
                "INSERT INTO messages (id, from_id, to_id, ts, content, cost) \
                 VALUES (?1, 1, ?2, 0, 'x', 10)",
                [id, 2 + id % 2],
            )
            .unwrap();
        }
        conn
    }

    fn ids(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT id FROM messages ORDER BY id").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_step_deletes_what_the_marks_cover_and_then_the_marks() {
        let mut conn = db();
        // User 2 has the even ids, user 3 the odd ones.
        conn.execute("INSERT INTO acked VALUES (2, 6), (3, 3)", [])
            .unwrap();
        let mut backlog = Backlog::at_start(&conn);
        assert!(backlog.is_pending());
        assert_eq!(step(&mut conn, &mut backlog).unwrap(), 5);
        assert_eq!(ids(&conn), [5, 7, 8, 9, 10]);
        assert!(!backlog.is_pending());
        let marks: i64 = conn
            .query_row("SELECT count(*) FROM acked", [], |r| r.get(0))
            .unwrap();
        assert_eq!(marks, 0);
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL again after the step");
    }

    #[test]
    fn a_step_that_is_not_all_keeps_the_marks_for_the_next() {
        let mut conn = db();
        conn.execute("INSERT INTO acked VALUES (2, 10), (3, 9)", [])
            .unwrap();
        let mut backlog = Backlog::default();
        backlog.marked(10);
        assert_eq!(delete(&mut conn, 4).unwrap(), (4, false));
        backlog.stepped(4, false, Duration::ZERO);
        assert!(backlog.is_pending());
        assert_eq!(delete(&mut conn, 4).unwrap(), (4, false));
        assert_eq!(delete(&mut conn, 4).unwrap(), (2, true));
        assert!(ids(&conn).is_empty());
    }

    #[test]
    fn while_busy_a_step_is_due_once_enough_rows_wait_and_the_last_step_rested() {
        let now = Instant::now();
        let mut backlog = Backlog::default();
        assert!(!backlog.is_pending() && !backlog.is_due_while_busy(now));
        backlog.marked(STEP - 1);
        assert!(backlog.is_pending() && !backlog.is_due_while_busy(now));
        backlog.marked(STEP + 1);
        assert!(backlog.is_due_while_busy(now));
        // A step of an hour rests seven: not due while busy meanwhile...
        backlog.stepped(STEP, false, Duration::from_secs(3600));
        assert!(!backlog.is_due_while_busy(Instant::now()));
        assert!(backlog.is_pending(), "(when idle it is)");
        // ...unless too many rows wait.
        backlog.marked(HIGH);
        assert!(backlog.is_due_while_busy(Instant::now()));
        backlog.stepped(0, true, Duration::ZERO);
        assert!(!backlog.is_pending());
    }
}
