//! SQLite's side of `gotalk admin` (see `store/admin.rs`): the operator's
//! reads (a page of accounts, one account's record, an export) on the
//! reading thread's connection, and the operator's writes (an account
//! deleted, a login recorded) in the writer's transaction. The history
//! parts are one function each: [`history_size`],
//! [`export_history`] and [`delete_history`].

use crate::store::admin::{
    AccountExport, AccountRecord, AccountRow, AdminAnswer, AdminQuery, ExportedMessage, LOCK,
};
use crate::UserId;
use rusqlite::{Connection, OptionalExtension, Row};

/// The columns [`row`] reads.
const ROW: &str = "SELECT id, username, created, last_login, \
                   substr(password_hash, 1, 1) = ?9 FROM users";

/// Answers one admin question.
pub fn answer(conn: &Connection, q: &AdminQuery) -> rusqlite::Result<AdminAnswer> {
    Ok(match q {
        AdminQuery::List { prefix, limit } => {
            // Names sort as text; a prefix is a range of them, read through
            // the unique index on username.
            let mut stmt = conn.prepare_cached(&format!(
                "{} WHERE username >= ?1 AND substr(username, 1, length(?1)) = ?1 \
                 ORDER BY username LIMIT ?2",
                ROW.replace("?9", "?3")
            ))?;
            let rows = stmt.query_map(
                rusqlite::params![prefix, (*limit).min(i64::MAX as usize) as i64, LOCK],
                row,
            )?;
            AdminAnswer::List(rows.collect::<rusqlite::Result<_>>()?)
        }
        AdminQuery::Show(id) => AdminAnswer::Show(match account(conn, *id)? {
            None => None,
            Some(row) => {
                let (count, bytes): (i64, i64) = conn
                    .prepare_cached(
                        "SELECT count(*), coalesce(sum(cost), 0) FROM messages WHERE to_id = ?1 \
                         AND id > (SELECT coalesce(max(upto), 0) FROM acked WHERE to_id = ?1)",
                    )?
                    .query_row([*id as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Some(AccountRecord {
                    row,
                    pending_messages: count.max(0) as usize,
                    pending_bytes: bytes.max(0) as usize,
                    history_messages: history_size(conn, *id)?,
                })
            }
        }),
        AdminQuery::Export(id) => AdminAnswer::Export(Box::new(export(conn, *id)?)),
    })
}

fn account(conn: &Connection, id: UserId) -> rusqlite::Result<Option<AccountRow>> {
    conn.prepare_cached(&format!("{} WHERE id = ?1", ROW.replace("?9", "?2")))?
        .query_row(rusqlite::params![id as i64, LOCK], row)
        .optional()
}

fn row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: r.get::<_, i64>(0)? as u64,
        username: r.get(1)?,
        created: r.get::<_, i64>(2)?.max(0) as u64,
        last_login: r.get::<_, i64>(3)?.max(0) as u64,
        disabled: r.get(4)?,
    })
}

/// Everything stored about account `id`.
fn export(conn: &Connection, id: UserId) -> rusqlite::Result<AccountExport> {
    let mut out = AccountExport {
        row: account(conn, id)?,
        ..AccountExport::default()
    };
    if out.row.is_none() {
        return Ok(out);
    }
    out.tokens_valid_from = conn
        .prepare_cached("SELECT tokens_valid_from FROM users WHERE id = ?1")?
        .query_row([id as i64], |r| r.get::<_, i64>(0))?
        .max(0) as u64;
    // In custody: not yet acknowledged by the receiver (marked rows wait
    // for deletion and are no longer held).
    let held = "SELECT id, from_id, to_id, ts, content, client_id FROM messages m \
                WHERE m.id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id)";
    out.received = messages(conn, &format!("{held} AND m.to_id = ?1 ORDER BY m.id"), id)?;
    out.sent = messages(
        conn,
        &format!("{held} AND m.from_id = ?1 ORDER BY m.id"),
        id,
    )?;
    let mut stmt = conn.prepare_cached(
        "SELECT client_id, message_id, ts FROM client_ids WHERE sender = ?1 ORDER BY ts",
    )?;
    out.client_ids = stmt
        .query_map([id as i64], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt =
        conn.prepare_cached("SELECT token_id, expires FROM revoked_tokens WHERE user_id = ?1")?;
    out.revoked_tokens = stmt
        .query_map([id as i64], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)?.max(0) as u64,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    export_history(conn, id, &mut out)?;
    Ok(out)
}

fn messages(conn: &Connection, sql: &str, id: UserId) -> rusqlite::Result<Vec<ExportedMessage>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([id as i64], |r| {
        Ok(ExportedMessage {
            id: r.get::<_, i64>(0)? as u64,
            from_id: r.get::<_, i64>(1)? as u64,
            to_id: r.get::<_, i64>(2)? as u64,
            ts: r.get::<_, i64>(3)?.max(0) as u64,
            content: r.get(4)?,
            client_id: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// How many messages the account's conversations keep (history and
/// custody alike), counted through the conversation index one partner at
/// a time; no conversation (or `--no-history`): 0.
fn history_size(conn: &Connection, id: UserId) -> rusqlite::Result<Option<usize>> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum((SELECT count(*) FROM messages m \
               WHERE min(m.from_id, m.to_id) = min(c.user_id, c.partner_id) \
                 AND max(m.from_id, m.to_id) = max(c.user_id, c.partner_id))), 0) \
             FROM conversations c WHERE c.user_id = ?1",
        )?
        .query_row([id as i64], |r| r.get(0))?;
    Ok(Some(n.max(0) as usize))
}

/// The account's conversations into `out.history` (every kept message
/// either way, oldest first) and `out.markers` (each partner and how far
/// the account has read them).
fn export_history(conn: &Connection, id: UserId, out: &mut AccountExport) -> rusqlite::Result<()> {
    out.markers = sides(conn, id)?;
    // Each conversation through the pair index, one range per partner.
    out.history = messages(
        conn,
        "SELECT m.id, m.from_id, m.to_id, m.ts, m.content, m.client_id \
         FROM conversations c JOIN messages m \
           ON min(m.from_id, m.to_id) = min(c.user_id, c.partner_id) \
          AND max(m.from_id, m.to_id) = max(c.user_id, c.partner_id) \
         WHERE c.user_id = ?1 ORDER BY m.id",
        id,
    )?;
    Ok(())
}

/// The account's conversation sides: (partner, read marker).
fn sides(conn: &Connection, id: UserId) -> rusqlite::Result<Vec<(UserId, u64)>> {
    conn.prepare_cached("SELECT partner_id, read_upto FROM conversations WHERE user_id = ?1")?
        .query_map([id as i64], |r| {
            Ok((
                r.get::<_, i64>(0)? as UserId,
                r.get::<_, i64>(1)?.max(0) as u64,
            ))
        })?
        .collect()
}

/// Removes the account's conversations: both sides' entries, and every
/// kept message of each pair but those it sent that the partner still
/// holds (unacknowledged: custody outlives the sender's account, and the
/// totals counted them).
fn delete_history(conn: &Connection, id: UserId) -> rusqlite::Result<()> {
    for (partner, _) in sides(conn, id)? {
        let (lo, hi) = super::history::pair(id, partner);
        conn.prepare_cached(&format!(
            "DELETE FROM messages WHERE id IN ({}) \
             AND NOT (from_id = ?3 AND to_id = ?4 \
                      AND id > (SELECT coalesce(max(upto), 0) FROM acked WHERE to_id = ?4))",
            super::pairs::IDS
        ))?
        .execute([lo, hi, id as i64, partner as i64])?;
        super::pairs::forget_deleted(conn, lo, hi)?;
        let mut side = conn
            .prepare_cached("DELETE FROM conversations WHERE user_id = ?1 AND partner_id = ?2")?;
        side.execute([id as i64, partner as i64])?;
        side.execute([partner as i64, id as i64])?;
    }
    Ok(())
}

/// `WriteOp::DeleteUser`, in the writer's transaction. The same batch
/// acknowledged the account's whole mailbox before it (so the totals in
/// custody moved there); the marked rows and the `acked` mark are
/// deleted here too, so nothing it received stays on disk.
pub fn delete_user(conn: &Connection, id: UserId) -> rusqlite::Result<()> {
    let id = id as i64;
    for sql in [
        "DELETE FROM messages WHERE to_id = ?1",
        "DELETE FROM acked WHERE to_id = ?1",
        "DELETE FROM client_ids WHERE sender = ?1",
        "DELETE FROM revoked_tokens WHERE user_id = ?1",
        "DELETE FROM users WHERE id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([id])?;
    }
    delete_history(conn, id as UserId)
}

/// `WriteOp::LastLogin`.
pub fn last_login(conn: &Connection, id: UserId, at: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE users SET last_login = max(last_login, ?2) WHERE id = ?1")?
        .execute([id as i64, at as i64])?;
    Ok(())
}
