//! The writer's share of the per-sender figure and of `--message-ttl`:
//! what an ACK ends, counted by sender; each sender's bytes in custody
//! (`sender_bytes`, schema version 6) moved in the transaction that stores
//! or ends the messages; and an expiry step, which ends custody of the
//! oldest messages past the TTL by raising their receivers' marks in
//! `acked`, exactly as ACKs do (so reads skip them at once and
//! [`super::purge`] deletes the rows later).

use crate::store::Removed;
use crate::{MessageId, Millis, UserId};
use rusqlite::Connection;
use std::collections::BTreeMap;

/// What ending custody of some of one receiver's messages takes.
#[derive(Debug, Default)]
pub struct Ending {
    pub count: usize,
    pub bytes: usize,
    /// The newest id it ends (0: none).
    pub newest: MessageId,
    pub senders: Vec<(UserId, usize)>,
}

/// What an ACK of `user`'s messages up to `upto` ends: those not marked
/// already, from the recipient index alone.
pub fn acked(tx: &Connection, user: UserId, upto: MessageId) -> rusqlite::Result<Ending> {
    let mut stmt = tx.prepare_cached(
        "SELECT from_id, count(*), sum(cost), max(id) FROM messages \
         WHERE to_id = ?1 AND id <= ?2 \
         AND id > (SELECT coalesce(max(upto), 0) FROM acked WHERE to_id = ?1) \
         GROUP BY from_id",
    )?;
    let mut rows = stmt.query([user as i64, upto as i64])?;
    let mut ending = Ending::default();
    while let Some(r) = rows.next()? {
        let sender = r.get::<_, i64>(0)? as UserId;
        let bytes = r.get::<_, i64>(2)?.max(0) as usize;
        ending.count += r.get::<_, i64>(1)?.max(0) as usize;
        ending.bytes += bytes;
        ending.newest = ending.newest.max(r.get::<_, i64>(3)?.max(0) as MessageId);
        ending.senders.push((sender, bytes));
    }
    Ok(ending)
}

/// How a group moves each sender's figure: added up over the group, so
/// a sender's row is written once per transaction however many of its
/// messages come and go.
#[derive(Debug, Default)]
pub struct Moves(BTreeMap<UserId, i64>);

impl Moves {
    /// A message of `sender`'s costing `bytes` is stored.
    pub fn add(&mut self, sender: UserId, bytes: i64) {
        *self.0.entry(sender).or_default() += bytes;
    }

    /// Custody of these senders' bytes ends.
    pub fn take(&mut self, senders: &[(UserId, usize)]) {
        for &(sender, bytes) in senders {
            self.add(sender, -(bytes as i64));
        }
    }
}

/// Writes the moves; a figure at zero goes.
pub fn apply(tx: &Connection, moves: &Moves) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO sender_bytes (sender, bytes) VALUES (?1, ?2) \
         ON CONFLICT (sender) DO UPDATE SET bytes = bytes + excluded.bytes",
    )?;
    let mut gone =
        tx.prepare_cached("DELETE FROM sender_bytes WHERE sender = ?1 AND bytes <= 0")?;
    for (&sender, &delta) in moves.0.iter().filter(|(_, d)| **d != 0) {
        upsert.execute([sender as i64, delta])?;
        if delta < 0 {
            gone.execute([sender as i64])?;
        }
    }
    Ok(())
}

/// Every sender's figure, for a start.
pub fn sender_bytes(tx: &Connection) -> rusqlite::Result<Vec<(UserId, usize)>> {
    let mut stmt = tx.prepare("SELECT sender, bytes FROM sender_bytes WHERE bytes > 0")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)? as UserId, r.get::<_, i64>(1)? as usize))
    })?;
    rows.collect()
}

/// One expiry step: custody ends for the oldest unacknowledged messages
/// (in id order) stored before `before`, at most `limit`, stopping at the
/// first younger one. Each receiver's mark is raised to the newest one
/// taken from them (a prefix of their mailbox) and each sender's figure
/// goes down (by the caller, with [`Moves::take`]). Returns what left
/// each mailbox.
///
/// A history of conversations, once there is one, would keep these rows:
/// only the custody mark moves here, and [`super::purge`] is what deletes.
pub fn expire(tx: &Connection, before: Millis, limit: usize) -> rusqlite::Result<Vec<Removed>> {
    let mut by_receiver: BTreeMap<UserId, (Ending, BTreeMap<UserId, usize>)> = BTreeMap::new();
    {
        // In id order (the rowid b-tree), skipping what marks cover; the
        // rows are read one at a time and the walk stops at the first
        // message that is young enough, so a step reads little more than
        // it takes.
        let mut stmt = tx.prepare_cached(
            "SELECT id, from_id, to_id, ts, cost FROM messages m \
             WHERE id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id) \
             ORDER BY id LIMIT ?1",
        )?;
        let mut rows = stmt.query([limit as i64])?;
        while let Some(r) = rows.next()? {
            if r.get::<_, i64>(3)? >= before as i64 {
                break;
            }
            let id = r.get::<_, i64>(0)? as MessageId;
            let sender = r.get::<_, i64>(1)? as UserId;
            let receiver = r.get::<_, i64>(2)? as UserId;
            let cost = r.get::<_, i64>(4)?.max(0) as usize;
            let (ending, senders) = by_receiver.entry(receiver).or_default();
            ending.count += 1;
            ending.bytes += cost;
            ending.newest = ending.newest.max(id);
            *senders.entry(sender).or_default() += cost;
        }
    }
    let mut mark = tx.prepare_cached(
        "INSERT INTO acked (to_id, upto) VALUES (?1, ?2) \
         ON CONFLICT (to_id) DO UPDATE SET upto = max(upto, excluded.upto)",
    )?;
    let mut out = Vec::with_capacity(by_receiver.len());
    for (receiver, (ending, senders)) in by_receiver {
        mark.execute([receiver as i64, ending.newest as i64])?;
        let senders: Vec<(UserId, usize)> = senders.into_iter().collect();
        out.push(Removed {
            user: receiver,
            upto: ending.newest,
            count: ending.count,
            bytes: ending.bytes,
            senders,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database at version 5 with messages from senders 1 and 2 (cost
    /// 10 and 100), user 3's first two acknowledged, then upgraded.
    fn upgraded() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = &super::super::schema::MIGRATIONS[..5];
        for step in steps {
            conn.execute_batch(step).unwrap();
        }
        for (id, from, to, ts, cost) in [
            (1, 1, 3, 100, 10),
            (2, 2, 3, 100, 100),
            (3, 1, 3, 200, 10),
            (4, 2, 4, 300, 100),
            (5, 1, 4, 900, 10),
        ] {
            conn.execute(
                "INSERT INTO messages (id, from_id, to_id, ts, content, cost) \
                 VALUES (?1, ?2, ?3, ?4, 'x', ?5)",
                [id, from, to, ts, cost],
            )
            .unwrap();
        }
        conn.execute("INSERT INTO acked VALUES (3, 2)", []).unwrap();
        conn.execute_batch("PRAGMA user_version = 5").unwrap();
        // Up to the step before the recount, which would replace these
        // made-up costs with the messages' real sizes.
        let before_recount =
            &super::super::schema::MIGRATIONS[..super::super::recount::VERSION - 1];
        super::super::schema::migrate_with(&mut conn, before_recount).unwrap();
        conn
    }

    #[test]
    fn the_upgrade_counts_what_is_in_custody_by_sender() {
        let conn = upgraded();
        let mut figures = sender_bytes(&conn).unwrap();
        figures.sort();
        assert_eq!(figures, [(1, 20), (2, 100)]);
    }

    #[test]
    fn an_ack_says_what_it_ends_by_sender() {
        let conn = upgraded();
        let mut ending = acked(&conn, 4, 10).unwrap();
        ending.senders.sort();
        assert_eq!((ending.count, ending.bytes, ending.newest), (2, 110, 5));
        assert_eq!(ending.senders, [(1, 10), (2, 100)]);
        let mut moves = Moves::default();
        moves.take(&ending.senders);
        apply(&conn, &moves).unwrap();
        assert_eq!(sender_bytes(&conn).unwrap(), [(1, 10)]);
    }

    #[test]
    fn an_expiry_step_takes_the_oldest_in_id_order_and_stops_at_a_younger_one() {
        let conn = upgraded();
        // Ids 1 and 2 are acknowledged already; 3 and 4 are older than 500,
        // 5 is not.
        let mut gone = expire(&conn, 500, 10).unwrap();
        gone.sort_by_key(|r| r.user);
        let summary: Vec<_> = gone
            .iter()
            .map(|r| (r.user, r.upto, r.count, r.bytes, r.senders.clone()))
            .collect();
        assert_eq!(
            summary,
            [(3, 3, 1, 10, vec![(1, 10)]), (4, 4, 1, 100, vec![(2, 100)])]
        );
        let mut moves = Moves::default();
        for r in &gone {
            moves.take(&r.senders);
        }
        apply(&conn, &moves).unwrap();
        assert_eq!(sender_bytes(&conn).unwrap(), [(1, 10)]);
        // The marks moved: an ACK or a second step ends nothing more.
        assert_eq!(acked(&conn, 3, 10).unwrap().count, 0);
        assert!(expire(&conn, 500, 10).unwrap().is_empty());
        // A step is bounded: one message, the oldest in custody.
        let fresh = upgraded();
        let one = expire(&fresh, 1000, 1).unwrap();
        assert_eq!((one.len(), one[0].upto, one[0].count), (1, 3, 1));
    }
}
