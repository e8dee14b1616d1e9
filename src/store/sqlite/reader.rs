//! The store's reading thread: accounts, mailbox figures and mailbox pages
//! the core asks for on demand. It has a connection of its own; with
//! write-ahead logging it reads beside the writer without blocking it, and
//! each statement sees every transaction committed before it began, so a
//! read the core submits after learning of a commit sees that commit.
//! Answers go back over a channel and the loop is woken, as commits are.

use crate::store::{Read, ReadAnswer, ReadDone, ReadOp, StoreError, StoredMessage, StoredUser};
use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use rusqlite::{Connection, OptionalExtension, Row};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// Starts the reader thread on `conn`. It runs until `reads` is closed.
pub fn spawn(
    conn: Connection,
    reads: Receiver<Read>,
    done: Sender<ReadDone>,
    waker: Arc<Waker>,
) -> Result<JoinHandle<()>, String> {
    thread::Builder::new()
        .name("gotalk-reader".into())
        .spawn(move || run(&conn, &reads, &done, &waker))
        .map_err(|e| format!("cannot start the store's reader thread: {e}"))
}

fn run(conn: &Connection, reads: &Receiver<Read>, done: &Sender<ReadDone>, waker: &Waker) {
    while let Ok(first) = reads.recv() {
        // Everything queued is answered before the loop is woken once.
        for read in std::iter::once(first).chain(reads.try_iter()) {
            let answer = answer(conn, &read.op).map_err(|e| {
                log::error!("store: reading {:?} failed: {e}", read.op);
                StoreError::from(e)
            });
            if done
                .send(ReadDone {
                    id: read.id,
                    answer,
                })
                .is_err()
            {
                return;
            }
        }
        if let Err(e) = waker.wake() {
            log::error!("store: cannot wake the event loop: {e}");
        }
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
        ReadOp::UserByName(name) => ReadAnswer::User(
            conn.prepare_cached(&format!("{USER} WHERE username = ?1"))?
                .query_row([&**name], user)
                .optional()?,
        ),
        ReadOp::Mailbox(user) => {
            let (count, bytes): (i64, i64) = conn
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(cost), 0) FROM messages WHERE to_id = ?1",
                )?
                .query_row([*user as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
            ReadAnswer::Mailbox {
                count: count.max(0) as usize,
                bytes: bytes.max(0) as usize,
            }
        }
        ReadOp::Page {
            user,
            after,
            limit,
            max_bytes,
        } => ReadAnswer::Page(page(conn, *user, *after, *limit, *max_bytes)?),
    })
}

/// A user's oldest messages above `after`, with both parties' names.
fn page(
    conn: &Connection,
    user: u64,
    after: u64,
    limit: usize,
    max_bytes: usize,
) -> rusqlite::Result<Vec<StoredMessage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.from_id, m.to_id, m.ts, m.content, m.client_id, m.cost, \
                f.username, t.username \
         FROM messages m JOIN users f ON f.id = m.from_id JOIN users t ON t.id = m.to_id \
         WHERE m.to_id = ?1 AND m.id > ?2 ORDER BY m.id LIMIT ?3",
    )?;
    let mut rows = stmt.query(rusqlite::params![
        user as i64,
        after.min(i64::MAX as u64) as i64,
        limit.min(i64::MAX as usize) as i64
    ])?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(r) = rows.next()? {
        let cost: i64 = r.get(6)?;
        bytes = bytes.saturating_add(cost.max(0) as usize + 1);
        if bytes > max_bytes && !out.is_empty() {
            break;
        }
        out.push(StoredMessage {
            id: r.get::<_, i64>(0)? as u64,
            from_id: r.get::<_, i64>(1)? as u64,
            to_id: r.get::<_, i64>(2)? as u64,
            ts: r.get::<_, i64>(3)? as u64,
            content: r.get(4)?,
            client_id: r.get(5)?,
            from: r.get(7)?,
            to: r.get(8)?,
        });
    }
    Ok(out)
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
