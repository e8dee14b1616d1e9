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

/// A message of `sender`'s costing `bytes` was stored.
pub fn stored(tx: &Connection, sender: UserId, bytes: usize) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO sender_bytes (sender, bytes) VALUES (?1, ?2) \
         ON CONFLICT (sender) DO UPDATE SET bytes = bytes + excluded.bytes",
    )?
    .execute([sender as i64, bytes as i64])?;
    Ok(())
}

/// Custody of these senders' bytes ended; a figure at zero goes.
pub fn ended(tx: &Connection, senders: &[(UserId, usize)]) -> rusqlite::Result<()> {
    let mut lower =
        tx.prepare_cached("UPDATE sender_bytes SET bytes = bytes - ?2 WHERE sender = ?1")?;
    let mut gone =
        tx.prepare_cached("DELETE FROM sender_bytes WHERE sender = ?1 AND bytes <= 0")?;
    for &(sender, bytes) in senders {
        lower.execute([sender as i64, bytes as i64])?;
        gone.execute([sender as i64])?;
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
/// goes down. Returns what left each mailbox.
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
        ended(tx, &senders)?;
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
