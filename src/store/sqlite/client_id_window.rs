//! A sender's remembered `client_id`s on disk: its newest N
//! (`--client-ids-per-sender`) of the last day, whatever the rate of SENDs.
//!
//! Each row carries `seq`, its sender's count of fresh ids when it came.
//! A SEND with a `client_id` reads the sender's newest `seq` (one seek of
//! the (sender, seq) index), inserts its row with the next one, and, when
//! it was fresh, deletes in the same transaction the rows that fell out of
//! the newest N, at most [`TRIM_STEP`] (one in the steady state). A row
//! beyond the window never deduplicates, deleted yet or not: the unique
//! key's conflict clause takes it over like a row older than a day.

use crate::message::Message;
use crate::Millis;
use rusqlite::{CachedStatement, Connection, OptionalExtension};

/// Rows beyond a sender's newest N one fresh `client_id` deletes at most:
/// one in the steady state; more drain a surplus left by a smaller N (rows
/// beyond the window never deduplicate meanwhile, and the daily prune
/// takes what is left).
pub const TRIM_STEP: i64 = 8;

/// Which remembered `client_id`s still count: first used at or after
/// `cutoff` (ms since the epoch) and among their sender's newest
/// `per_sender` (0: any number).
#[derive(Clone, Copy)]
pub struct Window {
    pub cutoff: Millis,
    pub per_sender: usize,
}

/// The statements, prepared once per connection (SQLite's cache keeps
/// them between groups).
pub struct ClientIdStatements<'c> {
    insert: CachedStatement<'c>,
    newest_seq: CachedStatement<'c>,
    trim: CachedStatement<'c>,
    first_send: CachedStatement<'c>,
}

impl<'c> ClientIdStatements<'c> {
    pub fn prepare(conn: &'c Connection) -> rusqlite::Result<ClientIdStatements<'c>> {
        Ok(ClientIdStatements {
            // The unique key decides: a row in the window (younger than a
            // day and among the sender's newest N) is a duplicate and
            // stays; any other (not deleted yet) no longer counts and is
            // taken over.
            insert: conn.prepare_cached(
                "INSERT INTO client_ids (sender, client_id, message_id, ts, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?6) \
                 ON CONFLICT (sender, client_id) DO UPDATE \
                 SET message_id = excluded.message_id, ts = excluded.ts, seq = excluded.seq \
                 WHERE client_ids.ts < ?5 OR client_ids.seq <= ?7",
            )?,
            newest_seq: conn.prepare_cached(
                "SELECT seq FROM client_ids WHERE sender = ?1 ORDER BY seq DESC LIMIT 1",
            )?,
            trim: conn.prepare_cached(
                "DELETE FROM client_ids WHERE sender = ?1 AND seq IN \
                 (SELECT seq FROM client_ids WHERE sender = ?1 AND seq <= ?2 LIMIT ?3)",
            )?,
            first_send: conn.prepare_cached(
                "SELECT message_id, ts FROM client_ids WHERE sender = ?1 AND client_id = ?2",
            )?,
        })
    }

    /// Records `message`'s `client_id` `cid`. `None` when it is fresh (the
    /// message is to be stored); else the first message's id and time.
    pub fn record(
        &mut self,
        message: &Message,
        cid: &str,
        window: Window,
    ) -> rusqlite::Result<Option<(u64, u64)>> {
        let sender = message.from_id as i64;
        let seq = self
            .newest_seq
            .query_row([sender], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0)
            + 1;
        // Once this id is in, rows at or below `beyond` are not among the
        // sender's newest N; before it, the N newest are those above
        // `beyond - 1`.
        let beyond = match window.per_sender {
            0 => i64::MIN + 1,
            n => seq - n.min(i64::MAX as usize) as i64,
        };
        let fresh = self.insert.execute(rusqlite::params![
            sender,
            cid,
            message.id as i64,
            message.ts as i64,
            window.cutoff as i64,
            seq,
            beyond - 1
        ])?;
        if fresh != 0 {
            if beyond > 0 {
                self.trim
                    .execute(rusqlite::params![sender, beyond, TRIM_STEP])?;
            }
            return Ok(None);
        }
        self.first_send
            .query_row(rusqlite::params![sender, cid], |r| {
                Ok(Some((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                )))
            })
    }
}
