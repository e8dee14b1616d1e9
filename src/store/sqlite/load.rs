//! Reading the saved state at start: accounts, every message still in
//! custody (in id order, so mailboxes fill oldest first), the `client_id`s
//! younger than a day, revoked tokens not yet expired, and the highest
//! message id ever issued. One read
//! transaction, so the parts agree with each other.

use super::schema::LAST_MESSAGE_ID;
use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::store::{Snapshot, StoredClientId, StoredMessage, StoredUser};
use crate::Millis;
use rusqlite::Connection;

/// The state as of `now` (ms since the epoch; decides which `client_id`s
/// are still remembered).
pub fn read_snapshot(conn: &mut Connection, now: Millis) -> rusqlite::Result<Snapshot> {
    let tx = conn.transaction()?;
    let mut snapshot = Snapshot::default();

    let mut stmt =
        tx.prepare("SELECT id, username, password_hash, identity FROM users ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        let identity: Vec<u8> = r.get(3)?;
        let identity: [u8; 16] = identity.as_slice().try_into().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Blob,
                "an account identity is 16 bytes".into(),
            )
        })?;
        Ok(StoredUser {
            id: r.get::<_, i64>(0)? as u64,
            identity: u128::from_be_bytes(identity),
            username: r.get(1)?,
            password_hash: r.get(2)?,
        })
    })?;
    for user in rows {
        snapshot.users.push(user?);
    }
    drop(stmt);

    let pending: i64 = tx.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
    snapshot.messages.reserve(pending.max(0) as usize);
    let mut stmt =
        tx.prepare("SELECT id, from_id, to_id, ts, content, client_id FROM messages ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredMessage {
            id: r.get::<_, i64>(0)? as u64,
            from_id: r.get::<_, i64>(1)? as u64,
            to_id: r.get::<_, i64>(2)? as u64,
            ts: r.get::<_, i64>(3)? as u64,
            content: r.get(4)?,
            client_id: r.get(5)?,
        })
    })?;
    for message in rows {
        snapshot.messages.push(message?);
    }
    drop(stmt);

    let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS) as i64;
    let mut stmt =
        tx.prepare("SELECT sender, client_id, message_id, ts FROM client_ids WHERE ts >= ?1")?;
    let rows = stmt.query_map([cutoff], |r| {
        Ok(StoredClientId {
            sender: r.get::<_, i64>(0)? as u64,
            client_id: r.get(1)?,
            message_id: r.get::<_, i64>(2)? as u64,
            ts: r.get::<_, i64>(3)? as u64,
        })
    })?;
    for client_id in rows {
        snapshot.client_ids.push(client_id?);
    }
    drop(stmt);

    let mut stmt = tx.prepare("SELECT token_id, expires FROM revoked_tokens WHERE expires > ?1")?;
    let rows = stmt.query_map([now as i64], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })?;
    for revoked in rows {
        snapshot.revoked_tokens.push(revoked?);
    }
    drop(stmt);
    let mut stmt =
        tx.prepare("SELECT id, tokens_valid_from FROM users WHERE tokens_valid_from > 0")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })?;
    for void in rows {
        snapshot.tokens_valid_from.push(void?);
    }
    drop(stmt);

    let last: i64 = tx.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        [LAST_MESSAGE_ID],
        |r| r.get(0),
    )?;
    let newest_stored = snapshot.messages.last().map_or(0, |m| m.id);
    snapshot.last_message_id = (last as u64).max(newest_stored);
    tx.finish()?;
    Ok(snapshot)
}
