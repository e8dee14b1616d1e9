//! The store's reading thread: accounts, mailbox figures and mailbox pages
//! the core asks for on demand. It has a connection of its own; with
//! write-ahead logging it reads beside the writer without blocking it, and
//! each statement sees every transaction committed before it began, so a
//! read the core submits after learning of a commit sees that commit.
//! The thread's loop is [`crate::store::read_loop`]; this is its SQL.

use crate::store::read_loop::ReadBackend;
use crate::store::{ReadAnswer, ReadOp, StoreError, StoredMessage, StoredUser};
use rusqlite::{Connection, OptionalExtension, Row};
use std::collections::HashMap;

/// The SQLite side of the reading thread ([`crate::store::read_loop`]).
pub struct SqliteReader(pub Connection);

impl ReadBackend for SqliteReader {
    fn answer(&mut self, op: &ReadOp) -> Result<ReadAnswer, StoreError> {
        answer(&self.0, op).map_err(|e| {
            log::error!("store: reading {op:?} failed: {e}");
            StoreError::from(e)
        })
    }
}

/// The columns [`user`] reads.
pub const SELECT_USER: &str =
    "SELECT id, username, password_hash, identity, tokens_valid_from FROM users";

/// Answers one read.
pub fn answer(conn: &Connection, op: &ReadOp) -> rusqlite::Result<ReadAnswer> {
    const USER: &str = SELECT_USER;
    Ok(match op {
        ReadOp::UserById(id) => ReadAnswer::User(
            conn.prepare_cached(&format!("{USER} WHERE id = ?1"))?
                .query_row([*id as i64], user)
                .optional()?,
        ),
        // The exact name wins; else the account holding the folded form.
        ReadOp::UserByName(name) => ReadAnswer::User(
            conn.prepare_cached(&format!(
                "{USER} WHERE username = ?1 OR name_key = ?2 \
                 ORDER BY username = ?1 DESC LIMIT 1"
            ))?
            .query_row([&**name, crate::username::fold(name).as_str()], user)
            .optional()?,
        ),
        ReadOp::Mailbox(user) => {
            let (count, bytes) = figures(conn, *user)?;
            ReadAnswer::Mailbox {
                count,
                bytes,
                head: Vec::new(),
            }
        }
        ReadOp::MailboxAndHead {
            user,
            limit,
            max_bytes,
        } => {
            let page = page(conn, *user, 0, *limit, *max_bytes)?;
            // A page that ran out of rows is the whole mailbox: its figures
            // are the mailbox's, and need no second pass over it.
            let (count, bytes) = if page.whole {
                (page.messages.len(), page.bytes)
            } else {
                figures(conn, *user)?
            };
            ReadAnswer::Mailbox {
                count,
                bytes,
                head: page.messages,
            }
        }
        ReadOp::Page {
            user,
            after,
            limit,
            max_bytes,
        } => ReadAnswer::Page(page(conn, *user, *after, *limit, *max_bytes)?.messages),
        ReadOp::History {
            user,
            with,
            before,
            limit,
            max_bytes,
        } => super::history_reads::history(conn, *user, *with, *before, *limit, *max_bytes)?,
        ReadOp::Conversations {
            user,
            before,
            limit,
        } => super::history_reads::conversations(conn, *user, *before, *limit)?,
    })
}

// Messages an ACK marked (`acked`) wait to be deleted: every read skips them.

/// How many messages `user`'s mailbox holds, and their size as stored.
fn figures(conn: &Connection, user: u64) -> rusqlite::Result<(usize, usize)> {
    let (count, bytes): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(cost), 0) FROM messages \
             WHERE to_id = ?1 AND id > (SELECT coalesce(max(upto), 0) FROM acked WHERE to_id = ?1)",
        )?
        .query_row([user as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((count.max(0) as usize, bytes.max(0) as usize))
}

/// What [`page`] read.
struct Page {
    messages: Vec<StoredMessage>,
    /// Their size as stored (the sum of their `cost`).
    bytes: usize,
    /// No message beyond them: the page holds all there is above `after`.
    whole: bool,
}

/// A user's oldest messages above `after`, with both parties' names. The
/// names are looked up once per page and party (a page has one receiver
/// and usually few senders), not joined per row.
fn page(
    conn: &Connection,
    user: u64,
    after: u64,
    limit: usize,
    max_bytes: usize,
) -> rusqlite::Result<Page> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, from_id, ts, content, client_id, cost FROM messages \
         WHERE to_id = ?1 \
         AND id > max(?2, (SELECT coalesce(max(upto), 0) FROM acked WHERE to_id = ?1)) \
         ORDER BY id LIMIT ?3",
    )?;
    // One row more than asked says whether the page is the whole rest.
    let mut rows = stmt.query(rusqlite::params![
        user as i64,
        after.min(i64::MAX as u64) as i64,
        limit.saturating_add(1).min(i64::MAX as usize) as i64
    ])?;
    let mut names = Names::new(conn);
    let to = names.of(user)?;
    let mut page = Page {
        messages: Vec::new(),
        bytes: 0,
        whole: true,
    };
    let mut budget = 0usize;
    while let Some(r) = rows.next()? {
        let cost = r.get::<_, i64>(5)?.max(0) as usize;
        budget = budget.saturating_add(cost + 1);
        if page.messages.len() == limit || (budget > max_bytes && !page.messages.is_empty()) {
            page.whole = false;
            break;
        }
        let from_id = r.get::<_, i64>(1)? as u64;
        page.bytes += cost;
        page.messages.push(StoredMessage {
            id: r.get::<_, i64>(0)? as u64,
            from_id,
            to_id: user,
            ts: r.get::<_, i64>(2)? as u64,
            content: r.get(3)?,
            client_id: r.get(4)?,
            from: names.of(from_id)?,
            to: to.clone(),
        });
    }
    Ok(page)
}

/// Usernames by id, each read once per page.
pub(super) struct Names<'c> {
    conn: &'c Connection,
    known: HashMap<u64, String>,
}

impl<'c> Names<'c> {
    pub(super) fn new(conn: &'c Connection) -> Names<'c> {
        Names {
            conn,
            known: HashMap::new(),
        }
    }

    /// `id`'s username ("" if the account is gone; a message keeps its
    /// sender's account, so that is not expected).
    pub(super) fn of(&mut self, id: u64) -> rusqlite::Result<String> {
        if let Some(name) = self.known.get(&id) {
            return Ok(name.clone());
        }
        let name: String = self
            .conn
            .prepare_cached("SELECT username FROM users WHERE id = ?1")?
            .query_row([id as i64], |r| r.get(0))
            .optional()?
            .unwrap_or_default();
        self.known.insert(id, name.clone());
        Ok(name)
    }
}

/// An account from a row of [`SELECT_USER`].
pub fn user(r: &Row<'_>) -> rusqlite::Result<StoredUser> {
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
        tokens_valid_from: r.get::<_, i64>(4)?.max(0) as u64,
    })
}
