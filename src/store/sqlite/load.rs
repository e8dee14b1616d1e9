//! Reading what a start needs: the highest message and account ids (so new
//! ones keep growing), the totals in custody (for the global budget) and
//! the revoked tokens that have not expired yet (bounded by the tokens'
//! lifetime), and each sender's bytes in custody (one row per sender that
//! has messages in custody). A handful of rows besides those, whatever the size of the
//! database: accounts (with their `tokens_valid_from`), messages and
//! `client_id`s are read on demand (see [`super::reader`]). Tests can still
//! read everything, to check what a batch stored.

use super::schema::{LAST_MESSAGE_ID, PENDING_BYTES, PENDING_MESSAGES};
use crate::store::Snapshot;
use crate::Millis;
use rusqlite::{Connection, OptionalExtension};

/// The figures a start needs as of `now` (ms since the epoch; decides
/// which revoked tokens have expired), in one read transaction.
pub fn read_snapshot(conn: &mut Connection, now: Millis) -> rusqlite::Result<Snapshot> {
    let tx = conn.transaction()?;
    let meta = |key: &str| -> rusqlite::Result<i64> {
        Ok(tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    };
    let last = meta(LAST_MESSAGE_ID)?;
    let pending_messages = meta(PENDING_MESSAGES)?;
    let pending_bytes = meta(PENDING_BYTES)?;
    // Both use the rowid's b-tree: one page read each.
    let newest_stored: i64 =
        tx.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
            r.get(0)
        })?;
    let last_user: i64 =
        tx.query_row("SELECT coalesce(max(id), 0) FROM users", [], |r| r.get(0))?;
    let mut stmt =
        tx.prepare("SELECT token_id, expires, user_id FROM revoked_tokens WHERE expires > ?1")?;
    let revoked_tokens = stmt
        .query_map([now as i64], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let sender_bytes = super::custody::sender_bytes(&tx)?;
    // Names without a folded form clash with an older account's (see
    // schema V8): a few rows, found through the unique index's NULLs.
    let mut stmt = tx.prepare(&format!(
        "SELECT u.username, coalesce(h.username, '') FROM users u \
         LEFT JOIN users h ON h.name_key = {} WHERE u.name_key IS NULL ORDER BY u.id",
        crate::username::fold_sql("u.username")
    ))?;
    let name_clashes = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    tx.finish()?;
    Ok(Snapshot {
        revoked_tokens,
        sender_bytes,
        name_clashes,
        last_message_id: last.max(newest_stored).max(0) as u64,
        last_user_id: last_user.max(0) as u64,
        pending_messages: pending_messages.max(0) as usize,
        pending_bytes: pending_bytes.max(0) as usize,
        ..Snapshot::default()
    })
}

/// Every account, message and `client_id` younger than a day as of `now`,
/// besides the figures: what a test checks a batch stored.
#[cfg(test)]
pub fn read_everything(conn: &mut Connection, now: Millis) -> rusqlite::Result<Snapshot> {
    use crate::config::limits::CLIENT_ID_RETENTION_MS;
    use crate::store::{StoredClientId, StoredMessage};
    let mut snapshot = read_snapshot(conn, now)?;
    let mut stmt = conn.prepare(&format!("{} ORDER BY id", super::reader::SELECT_USER))?;
    snapshot.users = stmt
        .query_map([], super::reader::user)?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let mut stmt = conn.prepare(
        "SELECT id, from_id, to_id, ts, content, client_id FROM messages m \
             WHERE id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id) \
             ORDER BY id",
    )?;
    snapshot.messages = stmt
        .query_map([], |r| {
            Ok(StoredMessage {
                id: r.get::<_, i64>(0)? as u64,
                from_id: r.get::<_, i64>(1)? as u64,
                to_id: r.get::<_, i64>(2)? as u64,
                ts: r.get::<_, i64>(3)? as u64,
                content: r.get(4)?,
                client_id: r.get(5)?,
                ..StoredMessage::default()
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS) as i64;
    let mut stmt =
        conn.prepare("SELECT sender, client_id, message_id, ts FROM client_ids WHERE ts >= ?1")?;
    snapshot.client_ids = stmt
        .query_map([cutoff], |r| {
            Ok(StoredClientId {
                sender: r.get::<_, i64>(0)? as u64,
                client_id: r.get(1)?,
                message_id: r.get::<_, i64>(2)? as u64,
                ts: r.get::<_, i64>(3)? as u64,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(snapshot)
}
