//! HISTORY and CONVERSATIONS on the reading thread (schema version 9): a
//! page is one range of the pair index read newest first, with the rows
//! the index does not cover yet ([`super::pairs`]); the list reads
//! the user's conversation rows by key, keeps the newest `limit` below
//! `before`, plus two key look-ups per entry (its last message, the
//! partner's marker). Nothing here counts: unread
//! figures are the writer's counters.

use super::history::pair;
use super::reader::Names;
use crate::store::{ReadAnswer, StoredConversation, StoredMessage};
use crate::{MessageId, UserId};
use rusqlite::{Connection, OptionalExtension};

/// The newest `limit` messages between `user` and `with` below `before`,
/// stopping past `max_bytes` (at least one), returned oldest first, and
/// whether older ones exist.
pub fn history(
    conn: &Connection,
    user: UserId,
    with: UserId,
    before: MessageId,
    limit: usize,
    max_bytes: usize,
) -> rusqlite::Result<ReadAnswer> {
    let (lo, hi) = pair(user, with);
    let mut stmt = conn.prepare_cached(super::pairs::PAGE)?;
    let before = before.min(i64::MAX as u64) as i64;
    // One row more than asked says whether older ones exist.
    let mut rows = stmt.query(rusqlite::params![lo, hi, before, limit as i64 + 1])?;
    let mut names = Names::new(conn);
    let mut messages = Vec::new();
    let mut bytes = 0usize;
    let mut more = false;
    while let Some(r) = rows.next()? {
        let cost = r.get::<_, i64>(6)?.max(0) as usize;
        if messages.len() == limit || (bytes + cost > max_bytes && !messages.is_empty()) {
            more = true;
            break;
        }
        bytes += cost;
        messages.push(row_message(r, &mut names)?);
    }
    messages.reverse();
    Ok(ReadAnswer::History { messages, more })
}

/// A message from a row of (id, from_id, to_id, ts, content, client_id).
fn row_message(r: &rusqlite::Row<'_>, names: &mut Names<'_>) -> rusqlite::Result<StoredMessage> {
    let from_id = r.get::<_, i64>(1)? as UserId;
    let to_id = r.get::<_, i64>(2)? as UserId;
    Ok(StoredMessage {
        id: r.get::<_, i64>(0)? as MessageId,
        from_id,
        to_id,
        ts: r.get::<_, i64>(3)?.max(0) as u64,
        content: r.get(4)?,
        client_id: r.get(5)?,
        from: names.of(from_id)?,
        to: names.of(to_id)?,
    })
}

/// `user`'s conversations whose newest message is below `before`, newest
/// first, at most `limit`, and whether more follow.
pub fn conversations(
    conn: &Connection,
    user: UserId,
    before: MessageId,
    limit: usize,
) -> rusqlite::Result<ReadAnswer> {
    let mut stmt = conn.prepare_cached(
        "SELECT partner_id, last_id, unread FROM conversations \
         WHERE user_id = ?1 AND last_id < ?2 ORDER BY last_id DESC LIMIT ?3",
    )?;
    let before = before.min(i64::MAX as u64) as i64;
    let sides: Vec<(i64, i64, i64)> = stmt
        .query_map(
            rusqlite::params![user as i64, before, limit as i64 + 1],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let more = sides.len() > limit;
    let mut message = conn.prepare_cached(
        "SELECT id, from_id, to_id, ts, content, client_id FROM messages WHERE id = ?1",
    )?;
    let mut marker = conn.prepare_cached(
        "SELECT read_upto FROM conversations WHERE user_id = ?1 AND partner_id = ?2",
    )?;
    let mut names = Names::new(conn);
    let mut list = Vec::with_capacity(sides.len().min(limit));
    for (partner, last_id, unread) in sides.into_iter().take(limit) {
        let last = message
            .query_row([last_id], |r| Ok(row_message(r, &mut names)))
            .optional()?
            .transpose()?;
        let read_upto: i64 = marker
            .query_row([partner, user as i64], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        list.push(StoredConversation {
            with_id: partner as UserId,
            with: names.of(partner as UserId)?,
            last,
            last_id: last_id.max(0) as MessageId,
            unread: unread.max(0) as u64,
            read_upto: read_upto.max(0) as MessageId,
        });
    }
    Ok(ReadAnswer::Conversations { list, more })
}
