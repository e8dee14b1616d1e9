//! The writing transaction's share of the per-sender budget
//! (`--pending-bytes-per-sender`) and of `--message-ttl` on PostgreSQL.
//!
//! Each sender's bytes in custody live in `sender_bytes` (one row per
//! sender, schema version 4). A transaction that stores or ends messages
//! locks the rows of every sender it touches after the receivers'
//! `mailboxes` rows, in ascending sender id (one order for every writer,
//! mailboxes first, so two groups never wait for each other in a circle),
//! checks each SEND against its sender's figure as the database holds it
//! (so SENDs of one account through several nodes cannot pass the budget
//! together) and moves the figures by what it added and removed.
//!
//! An expiry step takes the oldest messages past the TTL in id order: the
//! candidates are read first, their receivers' rows are locked with the
//! others, and only the candidates still there are deleted.

use crate::store::Removed;
use crate::{MessageId, Millis, UserId};
use postgres::{Client, Statement, Transaction};
use std::collections::HashMap;

pub struct Statements {
    ensure: Statement,
    lock: Statement,
    ack_senders: Statement,
    candidates: Statement,
    delete: Statement,
    add: Statement,
}

impl Statements {
    pub fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            ensure: client.prepare(
                "INSERT INTO sender_bytes (sender) SELECT unnest($1::bigint[]) \
                 ON CONFLICT (sender) DO NOTHING",
            )?,
            lock: client.prepare(
                "SELECT sender, bytes FROM sender_bytes WHERE sender = ANY($1::bigint[]) \
                 ORDER BY sender FOR UPDATE",
            )?,
            ack_senders: client.prepare(
                "SELECT DISTINCT m.from_id FROM messages m \
                 JOIN unnest($1::bigint[], $2::bigint[]) AS a(u, upto) \
                 ON m.to_id = a.u AND m.id <= a.upto",
            )?,
            candidates: client.prepare(
                "SELECT id, from_id, to_id, ts FROM messages ORDER BY id LIMIT $1::bigint",
            )?,
            delete: client.prepare(
                "DELETE FROM messages WHERE id = ANY($1::bigint[]) \
                 RETURNING to_id, id, cost, from_id",
            )?,
            // Rows at zero stay (one per sender that ever had a message in
            // custody): a deleted row could vanish between another
            // transaction's insert and its lock.
            add: client.prepare(
                "INSERT INTO sender_bytes AS s (sender, bytes) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[]) \
                 ON CONFLICT (sender) DO UPDATE SET bytes = s.bytes + excluded.bytes",
            )?,
        })
    }
}

/// The senders of the messages these ACKs (receiver, up to) will end:
/// the receivers' rows are locked, so nothing is added to them meanwhile.
pub fn ack_senders(
    tx: &mut Transaction<'_>,
    s: &Statements,
    acks: &[(usize, UserId, MessageId)],
) -> Result<Vec<i64>, postgres::Error> {
    if acks.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<i64> = acks.iter().map(|a| a.1 as i64).collect();
    let uptos: Vec<i64> = acks
        .iter()
        .map(|a| a.2.min(i64::MAX as u64) as i64)
        .collect();
    let rows = tx.query(&s.ack_senders, &[&users, &uptos])?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A message an expiry step may take: (id, sender, receiver).
pub type Candidate = (i64, i64, i64);

/// The oldest messages, in id order, stored before `before`: at most
/// `limit`, stopping at the first younger one.
pub fn candidates(
    tx: &mut Transaction<'_>,
    s: &Statements,
    before: Millis,
    limit: usize,
) -> Result<Vec<Candidate>, postgres::Error> {
    let mut out = Vec::new();
    for row in tx.query(&s.candidates, &[&(limit as i64)])? {
        if row.get::<_, i64>(3) >= before as i64 {
            break;
        }
        out.push((row.get(0), row.get(1), row.get(2)));
    }
    Ok(out)
}

/// Locks (creating if missing) the rows of `senders`; returns their
/// figures.
pub fn lock(
    tx: &mut Transaction<'_>,
    s: &Statements,
    mut senders: Vec<i64>,
) -> Result<HashMap<i64, i64>, postgres::Error> {
    senders.sort_unstable();
    senders.dedup();
    let mut held = HashMap::new();
    if senders.is_empty() {
        return Ok(held);
    }
    tx.execute(&s.ensure, &[&senders])?;
    for row in tx.query(&s.lock, &[&senders])? {
        held.insert(row.get(0), row.get(1));
    }
    Ok(held)
}

/// Deletes the candidates still there; returns (receiver, id, cost,
/// sender) of each.
pub fn delete(
    tx: &mut Transaction<'_>,
    s: &Statements,
    candidates: &[Candidate],
) -> Result<Vec<(i64, i64, i64, i64)>, postgres::Error> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = candidates.iter().map(|c| c.0).collect();
    let rows = tx.query(&s.delete, &[&ids])?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2).max(0), r.get(3)))
        .collect())
}

/// Moves each sender's figure by its delta.
pub fn apply(
    tx: &mut Transaction<'_>,
    s: &Statements,
    deltas: &HashMap<i64, i64>,
) -> Result<(), postgres::Error> {
    let (mut senders, mut bytes) = (Vec::new(), Vec::new());
    let mut sorted: Vec<(i64, i64)> = deltas
        .iter()
        .filter(|(_, d)| **d != 0)
        .map(|(s, d)| (*s, *d))
        .collect();
    sorted.sort_unstable();
    for (sender, delta) in sorted {
        senders.push(sender);
        bytes.push(delta);
    }
    if !senders.is_empty() {
        tx.execute(&s.add, &[&senders, &bytes])?;
    }
    Ok(())
}

/// What an expiry step deleted, per receiver (the newest id taken there
/// as `upto`), with the receivers' figures moved.
pub fn expired(
    gone: &[(i64, i64, i64, i64)],
    moved: &mut HashMap<i64, (i64, i64)>,
) -> Vec<Removed> {
    let mut by_receiver: Vec<Removed> = Vec::new();
    for &(to, id, cost, from) in gone {
        let at = match by_receiver.iter().position(|r| r.user == to as UserId) {
            Some(at) => at,
            None => {
                by_receiver.push(Removed {
                    user: to as UserId,
                    upto: 0,
                    count: 0,
                    bytes: 0,
                    senders: Vec::new(),
                });
                by_receiver.len() - 1
            }
        };
        let r = &mut by_receiver[at];
        r.upto = r.upto.max(id as MessageId);
        r.count += 1;
        r.bytes += cost as usize;
        credit(&mut r.senders, from as UserId, cost as usize);
        let entry = moved.entry(to).or_default();
        entry.0 -= 1;
        entry.1 -= cost;
    }
    by_receiver
}

/// Adds `cost` of `sender` to `by`.
pub fn credit(by: &mut Vec<(UserId, usize)>, sender: UserId, cost: usize) {
    match by.iter_mut().find(|(s, _)| *s == sender) {
        Some((_, bytes)) => *bytes += cost,
        None => by.push((sender, cost)),
    }
}
