//! The conversation index, kept behind the commit (schema version 12).
//!
//! A conversation is read by its pair of parties (lower id first) and id.
//! Until version 12 that was an index on `messages`, which SQLite keeps in
//! the transaction that stores a message: a group of 64 SENDs to 64
//! conversations rewrote 64 index leaves in each fsync'd commit (measured:
//! 77 pages a commit against 21 without history). Now `pairs` holds the
//! same entries and the writer fills it in steps between groups, from
//! the rows above its mark (`meta` key `pairs_upto`, moved in the step's
//! transaction): one leaf per conversation per step, for all the messages
//! the step takes, in a transaction with no fsync of its own (a step lost
//! to a crash is taken again from the same mark).
//!
//! Readers see every message all the same: the rows above the mark (the
//! short tail a step has not taken yet) are read from `messages` by id
//! range, beside the range of `pairs` ([`PAGE`], [`COUNT_FROM`],
//! [`IDS`]). Ids are given in commit order, so every row at or below the
//! mark has its entry. An entry whose message was deleted (by the purge,
//! after history was switched off) is skipped by the join.

use crate::store::cpu::{Meter, Phase};
use crate::MessageId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::time::{Duration, Instant};

/// The `meta` key of the highest id `pairs` covers.
pub const UPTO: &str = "pairs_upto";

/// Schema version 12: the pair index becomes a table kept behind the
/// commit; the rows stored so far are all in it.
pub const V12: &str = "
CREATE TABLE pairs (
    lo INTEGER NOT NULL,              -- the lower party's id
    hi INTEGER NOT NULL,              -- the higher party's id
    id INTEGER NOT NULL,              -- the message
    PRIMARY KEY (lo, hi, id)
) WITHOUT ROWID;
INSERT INTO pairs (lo, hi, id)
    SELECT min(from_id, to_id), max(from_id, to_id), id FROM messages;
DROP INDEX messages_by_pair;
INSERT OR REPLACE INTO meta (key, value)
    SELECT 'pairs_upto', coalesce(max(id), 0) FROM messages;
";

/// The mark, as a scalar subquery.
const MARK: &str = "(SELECT value FROM meta WHERE key = 'pairs_upto')";

/// A page: (id, from_id, to_id, ts, content, client_id, cost) of the pair
/// (?1, ?2) below id ?3, newest first, at most ?4: the range of `pairs` up
/// to the mark, then the rows above it.
pub const PAGE: &str = "\
    SELECT p.id, m.from_id, m.to_id, m.ts, m.content, m.client_id, m.cost \
    FROM pairs p JOIN messages m ON m.id = p.id \
    WHERE p.lo = ?1 AND p.hi = ?2 AND p.id < ?3 \
    UNION ALL \
    SELECT id, from_id, to_id, ts, content, client_id, cost FROM messages \
    WHERE id > (SELECT value FROM meta WHERE key = 'pairs_upto') AND id < ?3 \
    AND min(from_id, to_id) = ?1 AND max(from_id, to_id) = ?2 \
    ORDER BY 1 DESC LIMIT ?4";

/// How many of the pair (?1, ?2)'s messages above id ?3 came from ?4.
pub const COUNT_FROM: &str = "\
    SELECT (SELECT count(*) FROM pairs p JOIN messages m ON m.id = p.id \
            WHERE p.lo = ?1 AND p.hi = ?2 AND p.id > ?3 AND m.from_id = ?4) \
         + (SELECT count(*) FROM messages \
            WHERE id > max(?3, (SELECT value FROM meta WHERE key = 'pairs_upto')) \
            AND min(from_id, to_id) = ?1 AND max(from_id, to_id) = ?2 AND from_id = ?4)";

/// The ids of the pair (?1, ?2)'s messages (for deleting them).
pub const IDS: &str = "\
    SELECT id FROM pairs WHERE lo = ?1 AND hi = ?2 \
    UNION ALL \
    SELECT id FROM messages \
    WHERE id > (SELECT value FROM meta WHERE key = 'pairs_upto') \
    AND min(from_id, to_id) = ?1 AND max(from_id, to_id) = ?2";

/// Deletes the pair (lo, hi)'s entries whose messages are gone, after the
/// caller deleted messages of that pair.
pub fn forget_deleted(tx: &Connection, lo: i64, hi: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "DELETE FROM pairs WHERE lo = ?1 AND hi = ?2 \
         AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = pairs.id)",
    )?
    .execute([lo, hi])?;
    Ok(())
}

/// Deletes one message's entry (retention).
pub fn forget(tx: &Connection, id: i64, from: i64, to: i64) -> rusqlite::Result<()> {
    let (lo, hi) = (from.min(to), from.max(to));
    tx.prepare_cached("DELETE FROM pairs WHERE lo = ?1 AND hi = ?2 AND id = ?3")?
        .execute([lo, hi, id])?;
    Ok(())
}

/// Most rows one step takes.
pub const STEP_ROWS: usize = 4096;
/// Rows behind the mark that make a step due between groups; fewer wait
/// for [`STEP_EVERY`] or an idle moment.
const STEP_AT: usize = 2048;
/// Longest a message waits to be indexed while the writer is busy.
const STEP_EVERY: Duration = Duration::from_millis(200);

/// The writer's side: how far behind the mark is, and when it last moved.
#[derive(Debug)]
pub struct Indexer {
    /// Messages stored since the last step (or 1 at start: unknown).
    behind: usize,
    last: Instant,
}

impl Default for Indexer {
    fn default() -> Indexer {
        Indexer {
            behind: 1,
            last: Instant::now(),
        }
    }
}

impl Indexer {
    /// A group stored `n` messages.
    pub fn stored(&mut self, n: usize) {
        self.behind += n;
    }

    /// Whether a step is due between groups at `now`.
    pub fn is_due_while_busy(&self, now: Instant) -> bool {
        self.behind >= STEP_AT || (self.behind > 0 && now.duration_since(self.last) >= STEP_EVERY)
    }

    /// Whether anything waits to be indexed.
    pub fn is_pending(&self) -> bool {
        self.behind > 0
    }

    /// One step: indexes up to [`STEP_ROWS`] rows above the mark and moves
    /// it, in one transaction without an fsync of its own. Returns the rows
    /// indexed.
    pub fn step(&mut self, conn: &mut Connection) -> rusqlite::Result<usize> {
        let _meter = Meter::start(Phase::Index);
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = take(conn);
        conn.pragma_update(None, "synchronous", "FULL")?;
        let taken = result?;
        self.last = Instant::now();
        // A full step leaves more: the next is due at once.
        self.behind = if taken < STEP_ROWS { 0 } else { STEP_AT };
        Ok(taken)
    }
}

fn take(conn: &mut Connection) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let upto: i64 = tx
        .query_row(&format!("SELECT coalesce({MARK}, 0)"), [], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let (taken, newest): (i64, Option<i64>) = tx.query_row(
        "SELECT count(*), max(id) FROM \
         (SELECT id FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2)",
        [upto, STEP_ROWS as i64],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some(newest) = newest else {
        return Ok(0);
    };
    tx.prepare_cached(
        "INSERT OR IGNORE INTO pairs (lo, hi, id) \
         SELECT min(from_id, to_id), max(from_id, to_id), id FROM messages \
         WHERE id > ?1 AND id <= ?2",
    )?
    .execute([upto, newest])?;
    tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(rusqlite::params![UPTO, newest])?;
    tx.commit()?;
    Ok(taken.max(0) as usize)
}

/// The mark: the highest id `pairs` covers.
pub fn upto(conn: &Connection) -> rusqlite::Result<MessageId> {
    let v: i64 = conn.query_row(&format!("SELECT coalesce({MARK}, 0)"), [], |r| r.get(0))?;
    Ok(v.max(0) as MessageId)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn
    }

    fn store(conn: &Connection, id: i64, from: i64, to: i64) {
        conn.execute(
            "INSERT INTO messages (id, from_id, to_id, ts, content, cost) VALUES (?1, ?2, ?3, 0, 'x', 1)",
            [id, from, to],
        )
        .unwrap();
    }

    fn page(conn: &Connection, lo: i64, hi: i64, before: i64, limit: i64) -> Vec<i64> {
        conn.prepare(PAGE)
            .unwrap()
            .query_map([lo, hi, before, limit], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn count(conn: &Connection, lo: i64, hi: i64, above: i64, from: i64) -> i64 {
        conn.query_row(COUNT_FROM, [lo, hi, above, from], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn pages_and_counts_are_the_same_before_and_after_a_step() {
        let mut conn = db();
        for (id, from, to) in [(1, 1, 2), (2, 2, 1), (3, 1, 3), (4, 1, 2), (5, 2, 1)] {
            store(&conn, id, from, to);
        }
        let mut indexer = Indexer::default();
        let before = (page(&conn, 1, 2, 100, 10), count(&conn, 1, 2, 1, 2));
        assert_eq!(before, (vec![5, 4, 2, 1], 2));
        assert_eq!(page(&conn, 1, 2, 5, 2), [4, 2]);
        assert_eq!(indexer.step(&mut conn).unwrap(), 5);
        assert_eq!(upto(&conn).unwrap(), 5);
        assert!(!indexer.is_pending());
        // Half indexed, half in the tail.
        store(&conn, 6, 1, 2);
        store(&conn, 7, 3, 1);
        assert_eq!(page(&conn, 1, 2, 100, 10), [6, 5, 4, 2, 1]);
        assert_eq!(page(&conn, 1, 2, 100, 2), [6, 5]);
        assert_eq!(page(&conn, 1, 3, 100, 10), [7, 3]);
        assert_eq!(count(&conn, 1, 2, 1, 2), 2);
        assert_eq!(count(&conn, 1, 2, 1, 1), 2, "4 and 6");
        assert_eq!(count(&conn, 1, 2, 5, 1), 1, "6, above the mark");
        indexer.stored(2);
        assert_eq!(indexer.step(&mut conn).unwrap(), 2);
        assert_eq!(page(&conn, 1, 2, 100, 10), [6, 5, 4, 2, 1]);
        assert_eq!(count(&conn, 1, 2, 1, 1), 2);
        // A deleted message leaves no entry behind, and a page skips it.
        conn.execute("DELETE FROM messages WHERE id = 4", [])
            .unwrap();
        assert_eq!(page(&conn, 1, 2, 100, 10), [6, 5, 2, 1]);
        forget_deleted(&conn, 1, 2).unwrap();
        let entries: i64 = conn
            .query_row("SELECT count(*) FROM pairs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(entries, 6);
    }

    #[test]
    fn a_page_reads_the_pair_range_and_the_tail_without_sorting() {
        let conn = db();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {PAGE}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map([1, 2, 10, 5], |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("PRIMARY KEY"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        assert!(!plan.contains("SCAN"), "{plan}");
    }
}
