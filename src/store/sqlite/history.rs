//! History on the writing thread (schema version 9): each conversation's
//! two sides in `conversations`, moved once per group however many
//! messages the group holds ([`Sides`]); READ markers ([`read_mark`]);
//! retention in bounded steps ([`Retention`]); and deleting one user's
//! history ([`delete_user_history`], for deleting an account).
//!
//! A message row stays after its ACK while history is on (the mark in
//! `acked` ends custody; [`super::purge`] does not run) until retention
//! deletes it. Retention takes only rows whose custody ended: an
//! unacknowledged message waits for its ACK or for `--message-ttl`.

use crate::message::Message;
use crate::store::Marked;
use crate::{MessageId, Millis, UserId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The conversation index's key: the lower party first.
pub fn pair(a: UserId, b: UserId) -> (i64, i64) {
    (a.min(b) as i64, a.max(b) as i64)
}

/// How a group moves conversations' sides: (user, partner) → (newest id,
/// unread to add).
#[derive(Debug, Default)]
pub struct Sides(BTreeMap<(UserId, UserId), (MessageId, i64)>);

impl Sides {
    /// A stored message: both sides' newest, and one more unread for the
    /// receiver.
    pub fn add(&mut self, m: &Message) {
        let sender = self.0.entry((m.from_id, m.to_id)).or_default();
        sender.0 = sender.0.max(m.id);
        if m.from_id != m.to_id {
            let receiver = self.0.entry((m.to_id, m.from_id)).or_default();
            receiver.0 = receiver.0.max(m.id);
            receiver.1 += 1;
        }
    }

    /// Writes the moves and forgets them.
    pub fn apply(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO conversations (user_id, partner_id, last_id, unread, read_upto) \
             VALUES (?1, ?2, ?3, ?4, 0) \
             ON CONFLICT (user_id, partner_id) DO UPDATE SET \
             last_id = max(last_id, excluded.last_id), unread = unread + excluded.unread",
        )?;
        for ((user, partner), (last, unread)) in std::mem::take(&mut self.0) {
            upsert.execute([user as i64, partner as i64, last as i64, unread])?;
        }
        Ok(())
    }
}

/// READ: `user` has read `with`'s messages up to `upto`, clamped to the
/// conversation's newest message, never lowered. The unread count is
/// taken again from the pair index above the new marker (the messages
/// newer than it, usually few).
pub fn read_mark(
    tx: &Connection,
    user: UserId,
    with: UserId,
    upto: MessageId,
) -> rusqlite::Result<Marked> {
    let side: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT last_id, read_upto FROM conversations WHERE user_id = ?1 AND partner_id = ?2",
        )?
        .query_row([user as i64, with as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((last, current)) = side else {
        return Ok(Marked {
            user,
            with,
            upto: 0,
            moved: false,
        });
    };
    let (last, current) = (last.max(0) as MessageId, current.max(0) as MessageId);
    let upto = upto.min(last);
    if upto <= current {
        return Ok(Marked {
            user,
            with,
            upto: current,
            moved: false,
        });
    }
    let (lo, hi) = pair(user, with);
    let unread: i64 = tx
        .prepare_cached(super::pairs::COUNT_FROM)?
        .query_row([lo, hi, upto as i64, with as i64], |r| r.get(0))?;
    tx.prepare_cached(
        "UPDATE conversations SET read_upto = ?3, unread = ?4 \
         WHERE user_id = ?1 AND partner_id = ?2",
    )?
    .execute([user as i64, with as i64, upto as i64, unread])?;
    Ok(Marked {
        user,
        with,
        upto,
        moved: true,
    })
}

/// Deletes every message `user` sent or received and their conversation
/// rows (both sides), through the conversations index and the pair index:
/// for deleting an account. Returns the messages deleted. Runs in the
/// caller's transaction. Messages still in custody go too: the caller
/// moves the custody figures (`meta`, `sender_bytes`) if it needs them.
pub fn delete_user_history(tx: &Connection, user: UserId) -> rusqlite::Result<usize> {
    let partners: Vec<i64> = tx
        .prepare_cached("SELECT partner_id FROM conversations WHERE user_id = ?1")?
        .query_map([user as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut messages = tx.prepare_cached(&format!(
        "DELETE FROM messages WHERE id IN ({})",
        super::pairs::IDS
    ))?;
    let mut sides =
        tx.prepare_cached("DELETE FROM conversations WHERE user_id = ?1 AND partner_id = ?2")?;
    let mut deleted = 0;
    for partner in partners {
        let (lo, hi) = pair(user, partner as UserId);
        deleted += messages.execute([lo, hi])?;
        super::pairs::forget_deleted(tx, lo, hi)?;
        sides.execute([user as i64, partner])?;
        sides.execute([partner, user as i64])?;
    }
    Ok(deleted)
}

/// Most rows one retention step looks at.
pub const RETENTION_STEP: usize = 4096;
/// How often retention looks while nothing is due.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

/// `--history-days`: deletes acknowledged messages older than the
/// retention, oldest first, a bounded step at a time. A cursor remembers
/// where the last step stopped, so messages still in custody at the front
/// are passed once, not at every step.
#[derive(Debug)]
pub struct Retention {
    keep_ms: Millis,
    /// The highest id looked at; 0 to start over.
    cursor: MessageId,
    next: Instant,
}

impl Retention {
    pub fn new(keep_ms: Millis) -> Retention {
        Retention {
            keep_ms,
            cursor: 0,
            next: Instant::now(),
        }
    }

    /// Whether a step is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// One step at wall-clock `now_ms`: looks at up to [`RETENTION_STEP`]
    /// rows above the cursor in id order, stopping at the first young
    /// one, and deletes those whose custody ended. Committed without its
    /// own fsync, like a purge step (a lost step runs again). Returns the
    /// rows deleted.
    pub fn step(&mut self, conn: &mut Connection, now_ms: Millis) -> rusqlite::Result<usize> {
        let cutoff = now_ms.saturating_sub(self.keep_ms) as i64;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = self.delete(conn, cutoff);
        conn.pragma_update(None, "synchronous", "FULL")?;
        let (deleted, more) = result?;
        if !more {
            self.cursor = 0;
            self.next = Instant::now() + RETENTION_EVERY;
        }
        Ok(deleted)
    }

    fn delete(&mut self, conn: &mut Connection, cutoff: i64) -> rusqlite::Result<(usize, bool)> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut doomed = Vec::new();
        let mut more = false;
        {
            let mut marks: HashMap<i64, i64> = HashMap::new();
            let mut mark = tx.prepare_cached("SELECT upto FROM acked WHERE to_id = ?1")?;
            let mut rows = tx.prepare_cached(
                "SELECT id, to_id, ts, from_id FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let mut rows = rows.query([self.cursor as i64, RETENTION_STEP as i64])?;
            let mut seen = 0;
            while let Some(r) = rows.next()? {
                seen += 1;
                let (id, to, ts): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let from: i64 = r.get(3)?;
                if ts >= cutoff {
                    break;
                }
                self.cursor = id as MessageId;
                let upto = match marks.get(&to) {
                    Some(&upto) => upto,
                    None => {
                        let upto: i64 = mark.query_row([to], |r| r.get(0)).optional()?.unwrap_or(0);
                        marks.insert(to, upto);
                        upto
                    }
                };
                if id <= upto {
                    doomed.push((id, from, to));
                }
                if seen == RETENTION_STEP {
                    more = true;
                }
            }
        }
        let mut delete = tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
        for &(id, from, to) in &doomed {
            delete.execute([id])?;
            super::pairs::forget(&tx, id, from, to)?;
        }
        drop(delete);
        tx.commit()?;
        Ok((doomed.len(), more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Parties;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn
    }

    fn store(conn: &Connection, sides: &mut Sides, id: u64, from: u64, to: u64, ts: u64) {
        let parties = Parties {
            from_id: from,
            from: "a",
            to_id: to,
            to: "b",
        };
        let m = Message::new(id, &parties, ts, "hi", None);
        conn.execute(
            "INSERT INTO messages (id, from_id, to_id, ts, content, cost) VALUES (?1, ?2, ?3, ?4, 'hi', 10)",
            [id as i64, from as i64, to as i64, ts as i64],
        )
        .unwrap();
        sides.add(&m);
    }

    fn side(conn: &Connection, user: u64, partner: u64) -> (i64, i64, i64) {
        conn.query_row(
            "SELECT last_id, unread, read_upto FROM conversations WHERE user_id = ?1 AND partner_id = ?2",
            [user as i64, partner as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    #[test]
    fn sides_count_unread_and_markers_clamp_and_recount() {
        let conn = db();
        let mut sides = Sides::default();
        for id in 1..=4 {
            store(&conn, &mut sides, id, 1, 2, 0);
        }
        store(&conn, &mut sides, 5, 2, 1, 0);
        sides.apply(&conn).unwrap();
        assert_eq!(side(&conn, 2, 1), (5, 4, 0));
        assert_eq!(side(&conn, 1, 2), (5, 1, 0));
        let m = read_mark(&conn, 2, 1, 2).unwrap();
        assert_eq!((m.upto, m.moved), (2, true));
        assert_eq!(side(&conn, 2, 1), (5, 2, 2));
        assert_eq!(read_mark(&conn, 2, 1, 1).unwrap().upto, 2, "never back");
        let m = read_mark(&conn, 2, 1, 1000).unwrap();
        assert_eq!((m.upto, m.moved), (5, true), "clamped");
        assert_eq!(side(&conn, 2, 1), (5, 0, 5));
        assert_eq!(read_mark(&conn, 3, 1, 5).unwrap().upto, 0);
    }

    #[test]
    fn retention_deletes_old_acknowledged_rows_only() {
        let mut conn = db();
        let mut sides = Sides::default();
        for id in 1..=6 {
            store(&conn, &mut sides, id, 1, 2, id * 1000);
        }
        // 1..=4 acknowledged; 5 and 6 are not.
        conn.execute("INSERT INTO acked VALUES (2, 4)", []).unwrap();
        let mut retention = Retention::new(2500);
        // Now 6000: older than 3500 goes: 1, 2, 3 (4 is younger).
        assert_eq!(retention.step(&mut conn, 6000).unwrap(), 3);
        // Much later: 4 goes; 5 and 6 are in custody and stay.
        assert_eq!(retention.step(&mut conn, 100_000).unwrap(), 1);
        let left: Vec<i64> = conn
            .prepare("SELECT id FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(left, [5, 6]);
    }

    #[test]
    fn the_upgrade_makes_the_stored_messages_history() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = super::super::schema::MIGRATIONS;
        super::super::schema::migrate_with(&mut conn, &steps[..8]).unwrap();
        for (id, from, to) in [(1, 1, 2), (2, 2, 1), (3, 1, 2), (4, 3, 3)] {
            conn.execute(
                "INSERT INTO messages (id, from_id, to_id, ts, content, cost) VALUES (?1, ?2, ?3, 0, 'x', 1)",
                [id, from, to],
            )
            .unwrap();
        }
        super::super::schema::migrate(&mut conn).unwrap();
        assert_eq!(side(&conn, 1, 2), (3, 1, 0));
        assert_eq!(side(&conn, 2, 1), (3, 2, 0));
        assert_eq!(side(&conn, 3, 3), (4, 0, 0), "to oneself: nothing unread");
    }

    #[test]
    fn a_users_history_is_deleted_with_both_sides() {
        let conn = db();
        let mut sides = Sides::default();
        store(&conn, &mut sides, 1, 1, 2, 0);
        store(&conn, &mut sides, 2, 3, 1, 0);
        store(&conn, &mut sides, 3, 2, 3, 0);
        sides.apply(&conn).unwrap();
        assert_eq!(delete_user_history(&conn, 1).unwrap(), 2);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2, "only 2 and 3's sides stay");
        let left: i64 = conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1);
    }
}
