//! PostgreSQL's side of `gotalk admin` (see `store/admin.rs`): the
//! operator's reads (a page of accounts, one account's record, an export)
//! on the reading thread's connection, and the operator's writes (an
//! account deleted, logins recorded) in the writer's transaction. The
//! other nodes follow a deletion through the `LOGOUT all` written with it
//! (its NOTIFY unbinds the account's connections and drops its cached
//! account there). The history parts are one function each:
//! [`history_size`], [`export_history`] and [`delete_history`].

use crate::store::admin::{
    AccountExport, AccountRecord, AccountRow, AdminAnswer, AdminQuery, ExportedMessage, LOCK,
};
use crate::store::WriteOp;
use crate::UserId;
use postgres::{GenericClient, Row};

const ROW: &str = "SELECT id, username, created, last_login, \
                   left(password_hash, 1) = $9 FROM users";

/// Answers one admin question.
pub fn answer(
    client: &mut impl GenericClient,
    q: &AdminQuery,
) -> Result<AdminAnswer, postgres::Error> {
    Ok(match q {
        AdminQuery::List { prefix, limit } => {
            let sql = format!(
                "{} WHERE left(username, length($1)) = $1 ORDER BY username LIMIT $2",
                ROW.replace("$9", "$3")
            );
            let limit = (*limit).min(i64::MAX as usize) as i64;
            let rows = client.query(&sql, &[prefix, &limit, &LOCK])?;
            AdminAnswer::List(rows.iter().map(row).collect())
        }
        AdminQuery::Show(id) => AdminAnswer::Show(match account(client, *id)? {
            None => None,
            Some(row) => {
                let figures = client.query_opt(
                    "SELECT count, bytes FROM mailboxes WHERE user_id = $1",
                    &[&(*id as i64)],
                )?;
                let (count, bytes) =
                    figures.map_or((0, 0), |r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
                Some(AccountRecord {
                    row,
                    pending_messages: count.max(0) as usize,
                    pending_bytes: bytes.max(0) as usize,
                    history_messages: history_size(client, *id)?,
                })
            }
        }),
        AdminQuery::Export(id) => AdminAnswer::Export(Box::new(export(client, *id)?)),
    })
}

fn account(
    client: &mut impl GenericClient,
    id: UserId,
) -> Result<Option<AccountRow>, postgres::Error> {
    let sql = format!("{} WHERE id = $1", ROW.replace("$9", "$2"));
    Ok(client
        .query_opt(&sql, &[&(id as i64), &LOCK])?
        .as_ref()
        .map(row))
}

fn row(r: &Row) -> AccountRow {
    AccountRow {
        id: r.get::<_, i64>(0) as u64,
        username: r.get(1),
        created: r.get::<_, i64>(2).max(0) as u64,
        last_login: r.get::<_, i64>(3).max(0) as u64,
        disabled: r.get(4),
    }
}

fn export(client: &mut impl GenericClient, id: UserId) -> Result<AccountExport, postgres::Error> {
    let mut out = AccountExport {
        row: account(client, id)?,
        ..AccountExport::default()
    };
    if out.row.is_none() {
        return Ok(out);
    }
    let uid = id as i64;
    out.tokens_valid_from = client
        .query_one("SELECT tokens_valid_from FROM users WHERE id = $1", &[&uid])?
        .get::<_, i64>(0)
        .max(0) as u64;
    let held = "SELECT id, from_id, to_id, ts, content, client_id FROM messages";
    out.received = messages(client, &format!("{held} WHERE to_id = $1 ORDER BY id"), uid)?;
    out.sent = messages(
        client,
        &format!("{held} WHERE from_id = $1 ORDER BY id"),
        uid,
    )?;
    out.client_ids = client
        .query(
            "SELECT client_id, message_id, ts FROM client_ids WHERE sender = $1 ORDER BY ts",
            &[&uid],
        )?
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get::<_, i64>(1) as u64,
                r.get::<_, i64>(2).max(0) as u64,
            )
        })
        .collect();
    out.revoked_tokens = client
        .query(
            "SELECT token_id, expires FROM revoked_tokens WHERE user_id = $1",
            &[&uid],
        )?
        .iter()
        .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1).max(0) as u64))
        .collect();
    export_history(client, id, &mut out)?;
    Ok(out)
}

fn messages(
    client: &mut impl GenericClient,
    sql: &str,
    id: i64,
) -> Result<Vec<ExportedMessage>, postgres::Error> {
    Ok(client
        .query(sql, &[&id])?
        .iter()
        .map(|r| ExportedMessage {
            id: r.get::<_, i64>(0) as u64,
            from_id: r.get::<_, i64>(1) as u64,
            to_id: r.get::<_, i64>(2) as u64,
            ts: r.get::<_, i64>(3).max(0) as u64,
            content: r.get(4),
            client_id: r.get(5),
        })
        .collect())
}

/// How many messages the account's conversations keep in `history`,
/// counted through its pair index one partner at a time; no conversation
/// (or `--no-history`): 0.
fn history_size(
    client: &mut impl GenericClient,
    id: UserId,
) -> Result<Option<usize>, postgres::Error> {
    let n: i64 = client
        .query_one(
            "SELECT coalesce(sum((SELECT count(*) FROM history h \
               WHERE least(h.from_id, h.to_id) = least(c.user_id, c.partner_id) \
                 AND greatest(h.from_id, h.to_id) = greatest(c.user_id, c.partner_id))), 0)::bigint \
             FROM conversations c WHERE c.user_id = $1",
            &[&(id as i64)],
        )?
        .get(0);
    Ok(Some(n.max(0) as usize))
}

/// The account's conversations into `out.history` (every kept message
/// either way, oldest first) and `out.markers` (each partner and how far
/// the account has read them).
fn export_history(
    client: &mut impl GenericClient,
    id: UserId,
    out: &mut AccountExport,
) -> Result<(), postgres::Error> {
    let uid = id as i64;
    for r in client.query(
        "SELECT partner_id, read_upto FROM conversations WHERE user_id = $1 ORDER BY partner_id",
        &[&uid],
    )? {
        out.markers.push((
            r.get::<_, i64>(0) as UserId,
            r.get::<_, i64>(1).max(0) as u64,
        ));
    }
    out.history = messages(
        client,
        "SELECT h.id, h.from_id, h.to_id, h.ts, h.content, h.client_id \
         FROM conversations c JOIN history h \
           ON least(h.from_id, h.to_id) = least(c.user_id, c.partner_id) \
          AND greatest(h.from_id, h.to_id) = greatest(c.user_id, c.partner_id) \
         WHERE c.user_id = $1 ORDER BY h.id",
        uid,
    )?;
    Ok(())
}

/// Removes the account's conversations: every `history` row of each pair
/// and both sides' entries. Custody is `messages`, apart: what it sent
/// that others still hold stays there.
fn delete_history(tx: &mut postgres::Transaction<'_>, id: i64) -> Result<(), postgres::Error> {
    tx.execute(
        "DELETE FROM history h USING conversations c \
         WHERE c.user_id = $1 \
           AND least(h.from_id, h.to_id) = least(c.user_id, c.partner_id) \
           AND greatest(h.from_id, h.to_id) = greatest(c.user_id, c.partner_id)",
        &[&id],
    )?;
    tx.execute(
        "DELETE FROM conversations WHERE partner_id = $1 \
           AND user_id IN (SELECT partner_id FROM conversations WHERE user_id = $1)",
        &[&id],
    )?;
    tx.execute("DELETE FROM conversations WHERE user_id = $1", &[&id])?;
    Ok(())
}

/// The group's admin writes, last in its transaction: accounts deleted
/// (their mailbox was acknowledged whole earlier in the same batch, which
/// moved the figures), and logins recorded.
pub(super) fn write(
    tx: &mut postgres::Transaction<'_>,
    ops: &[&WriteOp],
) -> Result<(), postgres::Error> {
    let mut ids = Vec::new();
    let mut ats = Vec::new();
    for op in ops {
        match **op {
            WriteOp::LastLogin { id, at } => {
                ids.push(id as i64);
                ats.push(at as i64);
            }
            WriteOp::DeleteUser { id } => {
                let id = id as i64;
                for sql in [
                    "DELETE FROM messages WHERE to_id = $1",
                    "DELETE FROM client_ids WHERE sender = $1",
                    "DELETE FROM client_id_senders WHERE sender = $1",
                    "DELETE FROM revoked_tokens WHERE user_id = $1",
                    "DELETE FROM presence WHERE user_id = $1",
                    "DELETE FROM mailboxes WHERE user_id = $1",
                    "DELETE FROM users WHERE id = $1",
                ] {
                    tx.execute(sql, &[&id])?;
                }
                delete_history(tx, id)?;
            }
            _ => {}
        }
    }
    if !ids.is_empty() {
        tx.execute(
            "UPDATE users u SET last_login = greatest(u.last_login, l.at) \
             FROM unnest($1::bigint[], $2::bigint[]) AS l(id, at) WHERE u.id = l.id",
            &[&ids, &ats],
        )?;
    }
    Ok(())
}
