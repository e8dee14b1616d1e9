//! One group of batches as one PostgreSQL transaction, in a few round
//! trips whatever its size: each kind of write is one statement over
//! arrays (`UNNEST`), not one statement per row.
//!
//! The order inside the transaction is what keeps message ids safe for
//! ACK-up-to when several nodes write to one database:
//!
//! 1. the `mailboxes` rows of every receiver (and every user that ACKs)
//!    are created if missing and locked, in ascending user id order (one
//!    order for every writer, so two groups never wait for each other in
//!    a circle);
//! 2. only then are message ids taken from the `message_ids` sequence and
//!    given to the group's messages in batch order, ascending.
//!
//! A writer to a receiver therefore takes its ids while holding that
//! receiver's row, which it keeps until it commits: the next writer to the
//! same receiver gets the row, and so its ids, only after that commit. A
//! receiver's messages thus commit in id order, and no message can appear
//! below an id its receiver has already acknowledged. Writers to different
//! receivers do not wait for each other.
//!
//! Usernames are unique by the database: a REGISTER whose name is taken
//! (through another node) stores nothing and is reported, without failing
//! the rest of the group. `client_id`s are decided by the unique key on
//! (sender, `client_id`), as with SQLite.
//!
//! Other nodes are told within the transaction (see [`super::wakeup`]):
//! the nodes where a receiver of a stored message has a bound connection
//! (`presence`, of nodes that heartbeat) get a NOTIFY on their channel,
//! and every live node hears of ACKs that removed messages (a node that
//! sends to a user holds that user's mailbox figures too) and of revoked
//! tokens. PostgreSQL delivers a NOTIFY only when its transaction
//! commits, one per node and payload however many batches the group holds.
//!
//! Password-hash upgrades, revoked tokens (LOGOUT) and `tokens_valid_from`
//! moves (LOGOUT all) name accounts that are already stored, and are
//! written after the accounts of the group, each kind as one statement.

use super::accounts::{create_users, TokenWrites};
use super::custody;
use super::history;
use super::messages::{client_ids, insert_messages, refuse_over_caps, remove_acked, Append, Held};
use super::notify::{revocation, wake_others};
use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::store::{Batch, MailboxCaps, Remote, WriteOp};
use crate::{MessageId, Millis};
use postgres::Client;
use std::collections::HashMap;

pub use super::statements::{Statements, NODE_TIMEOUT_SECONDS};
pub use crate::store::group_commit::BatchOutcome;

/// Writes `group` in one transaction, all or nothing, as of `now` (ms
/// since the epoch, for `client_id` expiry). Returns how many operations
/// it held and what each batch learned. A group without operations costs
/// nothing.
pub fn write(
    client: &mut Client,
    s: &Statements,
    group: &[Batch],
    now: Millis,
    node: &str,
    caps: MailboxCaps,
    keep: bool,
) -> Result<(usize, Vec<BatchOutcome>), postgres::Error> {
    let mut outcomes: Vec<BatchOutcome> = group.iter().map(|_| BatchOutcome::default()).collect();
    let writes: usize = group.iter().map(|b| b.ops.len()).sum();
    if writes == 0 {
        return Ok((0, outcomes));
    }
    let mut appends = Vec::new();
    let mut users = Vec::new();
    let mut acks = Vec::new();
    let mut expire = None;
    let mut tokens = TokenWrites::default();
    let mut broadcast = Vec::new();
    let mut marks = Vec::new();
    for (i, batch) in group.iter().enumerate() {
        for op in &batch.ops {
            match op {
                WriteOp::Append(message) => appends.push(Append {
                    batch: i,
                    message,
                    client_id: message.client_id(),
                    id: 0,
                    stored: true,
                }),
                WriteOp::CreateUser { .. } => users.push((i, op)),
                WriteOp::Ack { user, upto } => acks.push((i, *user, *upto)),
                WriteOp::Expire { before, limit } => expire = Some((i, *before, *limit)),
                WriteOp::ReadMark {
                    user,
                    with,
                    upto,
                    names,
                } => marks.push((i, *user, *with, *upto, names)),
                other => {
                    tokens.add(other);
                    broadcast.extend(revocation(other));
                }
            }
        }
    }
    let mut tx = client.transaction()?;

    // 0. An expiry step's candidates, whose receivers are locked too.
    let candidates = match expire {
        Some((_, before, limit)) => custody::candidates(&mut tx, &s.custody, before, limit)?,
        None => Vec::new(),
    };

    // 1. Every mailbox row this group touches, locked in user id order;
    // then every sender's row, in sender id order.
    let mut locked: Vec<i64> = appends
        .iter()
        .map(|a| a.message.to_id as i64)
        .chain(acks.iter().map(|(_, user, _)| *user as i64))
        .chain(candidates.iter().map(|c| c.2))
        .collect();
    locked.sort_unstable();
    locked.dedup();
    let mut figures: HashMap<i64, (i64, i64)> = HashMap::new();
    if !locked.is_empty() {
        tx.execute(&s.ensure_mailboxes, &[&locked])?;
        for row in tx.query(&s.lock_mailboxes, &[&locked])? {
            figures.insert(row.get(0), (row.get(1), row.get(2)));
        }
    }
    let mut senders: Vec<i64> = appends.iter().map(|a| a.message.from_id as i64).collect();
    senders.extend(custody::ack_senders(&mut tx, &s.custody, &acks)?);
    senders.extend(candidates.iter().map(|c| c.1));
    let sent = custody::lock(&mut tx, &s.custody, senders)?;
    let mut sent_moved: HashMap<i64, i64> = HashMap::new();

    // 2. Accounts; a name already taken is reported, not fatal.
    if !users.is_empty() {
        create_users(&mut tx, s, &users, &mut outcomes)?;
    }
    tokens.write(&mut tx, s)?;

    // 3. Message ids, taken while the receivers' rows are held.
    let mut moved: HashMap<i64, (i64, i64)> = HashMap::new();
    if !appends.is_empty() {
        let rows = tx.query(&s.take_ids, &[&(appends.len() as i64)])?;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort_unstable();
        for (append, id) in appends.iter_mut().zip(ids) {
            append.id = id as MessageId;
        }
        let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS) as i64;
        let per_sender = group.first().map_or(0, |b| b.client_ids_per_sender);
        client_ids(&mut tx, s, &mut appends, cutoff, per_sender, &mut outcomes)?;
        let held = Held {
            mailboxes: &figures,
            senders: &sent,
        };
        refuse_over_caps(&mut tx, s, &mut appends, held, caps, &mut outcomes)?;
        insert_messages(&mut tx, s, &appends, &mut outcomes, &mut moved)?;
        if keep {
            history::store(&mut tx, &s.history, &appends)?;
        }
        for a in appends.iter().filter(|a| a.stored) {
            let cost = a.message.cost_with_id(a.id) as i64;
            *sent_moved.entry(a.message.from_id as i64).or_default() += cost;
        }
    }

    // 4. ACKs, each credited with what it removed; then the expiry step.
    if !acks.is_empty() {
        remove_acked(&mut tx, s, &acks, &mut outcomes, &mut moved)?;
    }
    if let Some((batch, ..)) = expire {
        let gone = custody::delete(&mut tx, &s.custody, &candidates)?;
        outcomes[batch].expired = custody::expired(&gone, &mut moved);
    }
    for r in outcomes
        .iter()
        .flat_map(|o| o.removed.iter().chain(&o.expired))
    {
        for &(sender, bytes) in &r.senders {
            *sent_moved.entry(sender as i64).or_default() -= bytes as i64;
        }
    }

    // 4b. READ markers, after the group's messages (their unread counts
    // see them).
    for (batch, user, with, upto, (by_name, with_name)) in marks {
        let marked = history::read_mark(&mut tx, &s.history, user, with, upto)?;
        if marked.moved {
            broadcast.push(Remote::Read {
                by: user,
                with,
                upto: marked.upto,
                by_name: by_name.as_ref().into(),
                with_name: with_name.as_ref().into(),
            });
        }
        outcomes[batch].marks.push(marked);
    }

    // 5. Wake-ups for the other nodes, sent at COMMIT: stored messages to
    // the nodes holding their receivers (and with history, to those
    // holding their senders, for `sent` copies); ACKs, LOGOUTs and READs
    // to every node (a node sending to a user keeps that mailbox's
    // figures too).
    let mut events: Vec<Remote> = appends
        .iter()
        .filter(|a| a.stored)
        .map(|a| Remote::Stored {
            user: a.message.to_id,
            id: a.id,
            cost: a.message.cost_with_id(a.id),
        })
        .collect();
    if keep {
        events.extend(
            appends
                .iter()
                .filter(|a| a.stored && a.message.from_id != a.message.to_id)
                .map(|a| Remote::Sent {
                    user: a.message.from_id,
                    with: a.message.to_id,
                    id: a.id,
                }),
        );
    }
    broadcast.extend(
        outcomes
            .iter()
            .flat_map(|o| o.removed.iter().chain(&o.expired))
            .filter(|r| r.count > 0)
            .map(|r| Remote::Acked {
                user: r.user,
                upto: r.upto,
                count: r.count,
                bytes: r.bytes,
            }),
    );
    if !events.is_empty() || !broadcast.is_empty() {
        wake_others(&mut tx, s, node, &events, &broadcast)?;
    }

    // 6. The receivers' figures, in the rows already locked.
    moved.retain(|_, (c, b)| *c != 0 || *b != 0);
    if !moved.is_empty() {
        let mut users = Vec::with_capacity(moved.len());
        let mut counts = Vec::with_capacity(moved.len());
        let mut bytes = Vec::with_capacity(moved.len());
        for (user, (c, b)) in &moved {
            users.push(*user);
            counts.push(*c);
            bytes.push(*b);
        }
        tx.execute(&s.move_mailboxes, &[&users, &counts, &bytes])?;
    }
    custody::apply(&mut tx, &s.custody, &sent_moved)?;
    tx.commit()?;
    Ok((writes, outcomes))
}
