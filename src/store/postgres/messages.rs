//! A group's messages and ACKs: `client_id`s (a repeat within the day
//! stores nothing), the mailbox caps checked on the locked rows, the
//! inserts, and the rows each ACK removes with what they cost.

use super::client_id_window;
use super::custody;
use super::statements::Statements;
use crate::message::Message;
use crate::store::group_commit::BatchOutcome;
use crate::store::{Duplicate, MailboxCaps, MailboxFull, Over, Removed};
use crate::{MessageId, Millis, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A message of the group and where it belongs.
pub(super) struct Append<'g> {
    pub(super) batch: usize,
    pub(super) message: &'g Arc<Message>,
    pub(super) client_id: Option<String>,
    /// The id the transaction gave it.
    pub(super) id: MessageId,
    /// Whether it is stored (not a repeated `client_id`).
    pub(super) stored: bool,
}

/// Records the group's `client_id`s; a SEND whose `client_id` its sender
/// used within the day (through any node, or earlier in this group) is
/// marked not stored, and its batch learns the first message's id.
pub(super) fn client_ids(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    appends: &mut [Append<'_>],
    cutoff: i64,
    per_sender: usize,
    outcomes: &mut [BatchOutcome],
) -> Result<(), postgres::Error> {
    // A key twice in one statement is an error in PostgreSQL: the second
    // use inside the group is a duplicate of the first.
    let mut seen: HashMap<(UserId, &str), usize> = HashMap::new();
    let mut inside = Vec::new();
    let (mut senders, mut cids, mut ids, mut ts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, a) in appends.iter().enumerate() {
        let Some(cid) = a.client_id.as_deref() else {
            continue;
        };
        if let Some(&first) = seen.get(&(a.message.from_id, cid)) {
            inside.push((i, first));
            continue;
        }
        seen.insert((a.message.from_id, cid), i);
        senders.push(a.message.from_id as i64);
        cids.push(cid);
        ids.push(a.id as i64);
        ts.push(a.message.ts as i64);
    }
    if senders.is_empty() {
        return Ok(());
    }
    let seqs = client_id_window::number(tx, &s.window, &senders)?;
    let window = client_id_window::window(per_sender);
    let rows = tx.query(
        &s.insert_client_ids,
        &[&senders, &cids, &ids, &ts, &cutoff, &seqs, &window],
    )?;
    let fresh: HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    let numbered: Vec<(UserId, i64)> = (0..ids.len())
        .filter(|&i| fresh.contains(&ids[i]))
        .map(|i| (senders[i] as UserId, seqs[i]))
        .collect();
    client_id_window::trim(tx, &s.window, &numbered, per_sender)?;
    let inside_at: HashSet<usize> = inside.iter().map(|p| p.0).collect();
    let mut refused: HashMap<(i64, &str), usize> = HashMap::new();
    for (i, a) in appends.iter().enumerate() {
        if let Some(cid) = a.client_id.as_deref() {
            if !fresh.contains(&(a.id as i64)) && !inside_at.contains(&i) {
                refused.insert((a.message.from_id as i64, cid), i);
            }
        }
    }
    let mut firsts: HashMap<usize, (MessageId, Millis)> = HashMap::new();
    if !refused.is_empty() {
        let senders: Vec<i64> = refused.keys().map(|k| k.0).collect();
        let cids: Vec<&str> = refused.keys().map(|k| k.1).collect();
        for row in tx.query(&s.first_sends, &[&senders, &cids])? {
            let sender: i64 = row.get(0);
            let cid: &str = row.get(1);
            if let Some(&i) = refused.get(&(sender, cid)) {
                let (id, ts): (i64, i64) = (row.get(2), row.get(3));
                firsts.insert(i, (id as MessageId, ts as Millis));
            }
        }
    }
    for (i, first) in inside {
        let f = &appends[first];
        let known = firsts.get(&first).copied();
        firsts.insert(i, known.unwrap_or((f.id, f.message.ts)));
    }
    let mut firsts: Vec<(usize, MessageId, Millis)> = firsts
        .into_iter()
        .map(|(i, (id, ts))| (i, id, ts))
        .collect();
    firsts.sort_unstable_by_key(|f| f.0);
    for (i, first_id, first_ts) in firsts {
        let a = &mut appends[i];
        a.stored = false;
        outcomes[a.batch].duplicates.push(Duplicate {
            message_id: a.message.id,
            first_id,
            first_ts,
        });
    }
    Ok(())
}

/// Refuses the messages that would take their receiver's mailbox past a
/// cap, counted as the database holds it (the rows are locked, so no other
/// node's transaction can add to it meanwhile), in batch order. A refused
/// message is not stored and its `client_id` is given back, so a retry is
/// a new SEND.
pub(super) fn refuse_over_caps(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    appends: &mut [Append<'_>],
    figures: Held<'_>,
    caps: MailboxCaps,
    outcomes: &mut [BatchOutcome],
) -> Result<(), postgres::Error> {
    let mut held: HashMap<i64, (usize, usize)> = HashMap::new();
    let mut sent: HashMap<i64, usize> = HashMap::new();
    let (mut senders, mut cids, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for a in appends.iter_mut().filter(|a| a.stored) {
        let to = a.message.to_id as i64;
        let (count, bytes) = *held.entry(to).or_insert_with(|| {
            let (c, b) = figures.mailboxes.get(&to).copied().unwrap_or((0, 0));
            (c.max(0) as usize, b.max(0) as usize)
        });
        let from = a.message.from_id as i64;
        let from_held = *sent
            .entry(from)
            .or_insert_with(|| figures.senders.get(&from).copied().unwrap_or(0).max(0) as usize);
        let cost = a.message.cost_with_id(a.id);
        if let Err(over) = caps.fits(count, bytes, from_held, cost) {
            a.stored = false;
            let by_sender = over == Over::Sender;
            outcomes[a.batch].assigned.full.push(MailboxFull {
                message: a.message.id,
                held: count,
                held_bytes: if by_sender { from_held } else { bytes },
                by_bytes: over == Over::Bytes,
                by_sender,
            });
            if let Some(cid) = a.client_id.as_deref() {
                senders.push(a.message.from_id as i64);
                cids.push(cid);
                ids.push(a.id as i64);
            }
            continue;
        }
        held.insert(to, (count + 1, bytes + cost));
        sent.insert(from, from_held + cost);
    }
    if !senders.is_empty() {
        tx.execute(&s.forget_client_ids, &[&senders, &cids, &ids])?;
    }
    Ok(())
}

/// The figures the group's rows held when locked: each receiver's
/// (count, bytes) and each sender's bytes.
#[derive(Clone, Copy)]
pub(super) struct Held<'a> {
    pub(super) mailboxes: &'a HashMap<i64, (i64, i64)>,
    pub(super) senders: &'a HashMap<i64, i64>,
}

pub(super) fn insert_messages(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    appends: &[Append<'_>],
    outcomes: &mut [BatchOutcome],
    moved: &mut HashMap<i64, (i64, i64)>,
) -> Result<(), postgres::Error> {
    let stored = appends.iter().filter(|a| a.stored).count();
    if stored == 0 {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(stored);
    let mut from = Vec::with_capacity(stored);
    let mut to = Vec::with_capacity(stored);
    let mut ts = Vec::with_capacity(stored);
    let mut contents = Vec::with_capacity(stored);
    let mut cids: Vec<Option<&str>> = Vec::with_capacity(stored);
    let mut costs = Vec::with_capacity(stored);
    for a in appends.iter().filter(|a| a.stored) {
        let m = a.message;
        let cost = m.cost_with_id(a.id) as i64;
        ids.push(a.id as i64);
        from.push(m.from_id as i64);
        to.push(m.to_id as i64);
        ts.push(m.ts as i64);
        contents.push(m.content());
        cids.push(a.client_id.as_deref());
        costs.push(cost);
        let entry = moved.entry(m.to_id as i64).or_default();
        entry.0 += 1;
        entry.1 += cost;
        outcomes[a.batch].assigned.messages.push((m.id, a.id));
    }
    tx.execute(
        &s.insert_messages,
        &[&ids, &from, &to, &ts, &contents, &cids, &costs],
    )?;
    Ok(())
}

pub(super) fn remove_acked(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    acks: &[(usize, UserId, MessageId)],
    outcomes: &mut [BatchOutcome],
    moved: &mut HashMap<i64, (i64, i64)>,
) -> Result<(), postgres::Error> {
    // One row per user with the highest mark; each removed message is then
    // credited to the first ACK of its user, in order, that covers it.
    let mut highest: HashMap<UserId, MessageId> = HashMap::new();
    for (_, user, upto) in acks {
        let h = highest.entry(*user).or_default();
        *h = (*h).max(*upto);
    }
    let users: Vec<i64> = highest.keys().map(|u| *u as i64).collect();
    let uptos: Vec<i64> = highest
        .values()
        .map(|u| (*u).min(i64::MAX as u64) as i64)
        .collect();
    let rows = tx.query(&s.ack, &[&users, &uptos])?;
    let mut removed: Vec<Removed> = acks
        .iter()
        .map(|(_, user, upto)| Removed {
            user: *user,
            upto: *upto,
            count: 0,
            bytes: 0,
            senders: Vec::new(),
        })
        .collect();
    let mut by_user: HashMap<UserId, Vec<usize>> = HashMap::new();
    for (i, r) in removed.iter().enumerate() {
        by_user.entry(r.user).or_default().push(i);
    }
    for row in rows {
        let user = row.get::<_, i64>(0) as UserId;
        let id = row.get::<_, i64>(1) as MessageId;
        let cost = row.get::<_, i64>(2).max(0);
        let covering = by_user
            .get(&user)
            .and_then(|at| at.iter().find(|&&i| removed[i].upto >= id));
        if let Some(&i) = covering {
            let sender = row.get::<_, i64>(3) as UserId;
            let r = &mut removed[i];
            r.count += 1;
            r.bytes += cost as usize;
            custody::credit(&mut r.senders, sender, cost as usize);
        }
        let entry = moved.entry(user as i64).or_default();
        entry.0 -= 1;
        entry.1 -= cost;
    }
    for ((batch, _, _), r) in acks.iter().zip(removed) {
        outcomes[*batch].removed.push(r);
    }
    Ok(())
}
