//! History on PostgreSQL (schema version 7), the writer's side and the
//! reader's queries. Custody stays in `messages` exactly as before (an
//! ACK deletes the row, and the cluster's figures and wake-ups follow it
//! unchanged); each group's stored messages are also written to
//! `history`, as one more statement over the same arrays, and each
//! conversation's two sides move once per group in `conversations`
//! (one statement, keys in order, so two nodes' groups never wait on
//! each other in a circle). READ markers, retention in bounded steps and
//! deleting one user's history are here too.

use super::messages::Append;
use crate::store::{Marked, ReadAnswer, StoredConversation, StoredMessage};
use crate::{MessageId, Millis, UserId};
use postgres::{Client, GenericClient, Statement, Transaction};
use std::collections::BTreeMap;

/// The writer's history statements, prepared with the others.
pub struct Statements {
    insert: Statement,
    sides: Statement,
    side: Statement,
    unread: Statement,
    set_marker: Statement,
}

impl Statements {
    pub fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            insert: client.prepare(
                "INSERT INTO history (id, from_id, to_id, ts, content, client_id, cost) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], \
                 $4::bigint[], $5::text[], $6::text[], $7::bigint[])",
            )?,
            sides: client.prepare(
                "INSERT INTO conversations AS c (user_id, partner_id, last_id, unread, read_upto) \
                 SELECT u, p, l, n, 0 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], \
                 $4::bigint[]) AS s(u, p, l, n) \
                 ON CONFLICT (user_id, partner_id) DO UPDATE SET \
                 last_id = greatest(c.last_id, excluded.last_id), unread = c.unread + excluded.unread",
            )?,
            side: client.prepare(
                "SELECT last_id, read_upto FROM conversations \
                 WHERE user_id = $1 AND partner_id = $2 FOR UPDATE",
            )?,
            unread: client.prepare(
                "SELECT count(*) FROM history \
                 WHERE least(from_id, to_id) = $1 AND greatest(from_id, to_id) = $2 \
                 AND id > $3 AND from_id = $4",
            )?,
            set_marker: client.prepare(
                "UPDATE conversations SET read_upto = $3, unread = $4 \
                 WHERE user_id = $1 AND partner_id = $2",
            )?,
        })
    }
}

/// The conversation index's key: the lower party first.
fn pair(a: UserId, b: UserId) -> (i64, i64) {
    (a.min(b) as i64, a.max(b) as i64)
}

/// Writes the group's stored messages to `history` and moves their
/// conversations' sides: both sides' newest, one more unread for the
/// receiver.
pub(super) fn store(
    tx: &mut Transaction<'_>,
    s: &Statements,
    appends: &[Append<'_>],
) -> Result<(), postgres::Error> {
    let stored: Vec<&Append<'_>> = appends.iter().filter(|a| a.stored).collect();
    if stored.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(stored.len());
    let mut from = Vec::with_capacity(stored.len());
    let mut to = Vec::with_capacity(stored.len());
    let mut ts = Vec::with_capacity(stored.len());
    let mut contents = Vec::with_capacity(stored.len());
    let mut cids: Vec<Option<&str>> = Vec::with_capacity(stored.len());
    let mut costs = Vec::with_capacity(stored.len());
    let mut sides: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    for a in &stored {
        let m = a.message;
        let id = a.id as i64;
        ids.push(id);
        from.push(m.from_id as i64);
        to.push(m.to_id as i64);
        ts.push(m.ts as i64);
        contents.push(m.content());
        cids.push(a.client_id.as_deref());
        costs.push(m.cost_with_id(a.id) as i64);
        let sender = sides.entry((m.from_id as i64, m.to_id as i64)).or_default();
        sender.0 = sender.0.max(id);
        if m.from_id != m.to_id {
            let receiver = sides.entry((m.to_id as i64, m.from_id as i64)).or_default();
            receiver.0 = receiver.0.max(id);
            receiver.1 += 1;
        }
    }
    tx.execute(
        &s.insert,
        &[&ids, &from, &to, &ts, &contents, &cids, &costs],
    )?;
    // In key order (the BTreeMap's), one order for every writer.
    let (mut users, mut partners, mut lasts, mut unread) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((u, p), (l, n)) in sides {
        users.push(u);
        partners.push(p);
        lasts.push(l);
        unread.push(n);
    }
    tx.execute(&s.sides, &[&users, &partners, &lasts, &unread])?;
    Ok(())
}

/// READ: `user` has read `with`'s messages up to `upto`, clamped to the
/// conversation's newest, never lowered; the unread count is taken again
/// from the pair index above the new marker.
pub(super) fn read_mark(
    tx: &mut Transaction<'_>,
    s: &Statements,
    user: UserId,
    with: UserId,
    upto: MessageId,
) -> Result<Marked, postgres::Error> {
    let (u, w) = (user as i64, with as i64);
    let unmoved = |upto| Marked {
        user,
        with,
        upto,
        moved: false,
    };
    let Some(row) = tx.query_opt(&s.side, &[&u, &w])? else {
        return Ok(unmoved(0));
    };
    let (last, current): (i64, i64) = (row.get(0), row.get(1));
    let upto = (upto.min(i64::MAX as u64) as i64).min(last);
    if upto <= current {
        return Ok(unmoved(current.max(0) as MessageId));
    }
    let (lo, hi) = pair(user, with);
    let unread: i64 = tx.query_one(&s.unread, &[&lo, &hi, &upto, &w])?.get(0);
    tx.execute(&s.set_marker, &[&u, &w, &upto, &unread])?;
    Ok(Marked {
        user,
        with,
        upto: upto as MessageId,
        moved: true,
    })
}

/// Deletes every message `user` sent or received from `history`, and
/// their conversation rows (both sides), through the conversations index
/// and the pair index: for deleting an account. Runs in the caller's
/// transaction; custody (`messages`, `mailboxes`) is the caller's.
/// Returns the history rows deleted.
pub fn delete_user_history(
    tx: &mut impl GenericClient,
    user: UserId,
) -> Result<u64, postgres::Error> {
    let u = user as i64;
    let partners: Vec<i64> = tx
        .query(
            "SELECT partner_id FROM conversations WHERE user_id = $1",
            &[&u],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut deleted = 0;
    for p in partners {
        let (lo, hi) = pair(user, p as UserId);
        deleted += tx.execute(
            "DELETE FROM history WHERE least(from_id, to_id) = $1 AND greatest(from_id, to_id) = $2",
            &[&lo, &hi],
        )?;
        tx.execute(
            "DELETE FROM conversations WHERE (user_id = $1 AND partner_id = $2) \
             OR (user_id = $2 AND partner_id = $1)",
            &[&u, &p],
        )?;
    }
    Ok(deleted)
}

/// Rows one retention step deletes at most.
pub const RETENTION_STEP: i64 = 4096;

/// One retention step: of the oldest [`RETENTION_STEP`] rows by id, those
/// sent before `cutoff`. Returns how many went; a full step means more
/// may be due. (Ids follow time closely, so the oldest by id are the
/// oldest; custody is `messages`', not affected.)
pub fn retention_step(client: &mut Client, cutoff: Millis) -> Result<u64, postgres::Error> {
    client.execute(
        "DELETE FROM history WHERE id = ANY(ARRAY(\
         SELECT id FROM history ORDER BY id LIMIT $2)) AND ts < $1",
        &[&(cutoff.min(i64::MAX as u64) as i64), &RETENTION_STEP],
    )
}

// ------------------------------------------------------------ the reader

/// The reader's history statements.
pub struct ReadStatements {
    page: Statement,
    list: Statement,
}

impl ReadStatements {
    pub fn prepare(client: &mut Client) -> Result<ReadStatements, postgres::Error> {
        const MESSAGE: &str = "SELECT h.id, h.from_id, h.to_id, h.ts, h.content, h.client_id, \
             h.cost, f.username, t.username \
             FROM history h JOIN users f ON f.id = h.from_id JOIN users t ON t.id = h.to_id";
        Ok(ReadStatements {
            page: client.prepare(&format!(
                "{MESSAGE} WHERE least(h.from_id, h.to_id) = $1 \
                 AND greatest(h.from_id, h.to_id) = $2 AND h.id < $3 \
                 ORDER BY h.id DESC \
                 LIMIT $4"
            ))?,
            // One round trip: each entry with its last message (by key;
            // NULL once retention removed it) and the partner's marker.
            list: client.prepare(
                "SELECT h.id, h.from_id, h.to_id, h.ts, h.content, h.client_id, h.cost, \
                 f.username, t.username, \
                 c.partner_id, c.last_id, c.unread, u.username, coalesce(o.read_upto, 0) \
                 FROM conversations c JOIN users u ON u.id = c.partner_id \
                 LEFT JOIN conversations o ON o.user_id = c.partner_id AND o.partner_id = c.user_id \
                 LEFT JOIN history h ON h.id = c.last_id \
                 LEFT JOIN users f ON f.id = h.from_id LEFT JOIN users t ON t.id = h.to_id \
                 WHERE c.user_id = $1 AND c.last_id < $2 ORDER BY c.last_id DESC LIMIT $3",
            )?,
        })
    }
}

fn message_row(r: &postgres::Row) -> StoredMessage {
    StoredMessage {
        id: r.get::<_, i64>(0) as MessageId,
        from_id: r.get::<_, i64>(1) as UserId,
        to_id: r.get::<_, i64>(2) as UserId,
        ts: r.get::<_, i64>(3).max(0) as u64,
        content: r.get(4),
        client_id: r.get(5),
        from: r.get(7),
        to: r.get(8),
    }
}

/// HISTORY: the newest `limit` messages between `user` and `with` below
/// `before`, stopping past `max_bytes` (at least one), oldest first.
pub fn history(
    client: &mut Client,
    s: &ReadStatements,
    (user, with): (UserId, UserId),
    before: MessageId,
    limit: usize,
    max_bytes: usize,
) -> Result<ReadAnswer, postgres::Error> {
    let (lo, hi) = pair(user, with);
    let before = before.min(i64::MAX as u64) as i64;
    let rows = client.query(&s.page, &[&lo, &hi, &before, &(limit as i64 + 1)])?;
    let mut messages = Vec::new();
    let mut bytes = 0usize;
    let mut more = false;
    for r in &rows {
        let cost = r.get::<_, i64>(6).max(0) as usize;
        if messages.len() == limit || (bytes + cost > max_bytes && !messages.is_empty()) {
            more = true;
            break;
        }
        bytes += cost;
        messages.push(message_row(r));
    }
    messages.reverse();
    Ok(ReadAnswer::History { messages, more })
}

/// CONVERSATIONS: one range of `conversations_by_last`, joined by key
/// with each entry's last message and the partner's marker.
pub fn conversations(
    client: &mut Client,
    s: &ReadStatements,
    user: UserId,
    before: MessageId,
    limit: usize,
) -> Result<ReadAnswer, postgres::Error> {
    let before = before.min(i64::MAX as u64) as i64;
    let rows = client.query(&s.list, &[&(user as i64), &before, &(limit as i64 + 1)])?;
    let more = rows.len() > limit;
    let mut list = Vec::with_capacity(rows.len().min(limit));
    for r in rows.iter().take(limit) {
        let found: Option<i64> = r.get(0);
        list.push(StoredConversation {
            with_id: r.get::<_, i64>(9) as UserId,
            with: r.get(12),
            last: found.map(|_| message_row(r)),
            last_id: r.get::<_, i64>(10).max(0) as MessageId,
            unread: r.get::<_, i64>(11).max(0) as u64,
            read_upto: r.get::<_, i64>(13).max(0) as MessageId,
        });
    }
    Ok(ReadAnswer::Conversations { list, more })
}
