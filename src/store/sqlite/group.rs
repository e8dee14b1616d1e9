//! One group of batches as one SQLite transaction: the statements each
//! kind of write runs, prepared once per connection, and the totals in
//! custody (`meta`, and each sender's bytes) moved once per group.
//!
//! The database's unique key on (sender, `client_id`) decides duplicates:
//! a SEND whose `client_id` is among its sender's newest N of the day
//! stores nothing, and its outcome names the first message instead (see
//! [`super::client_id_window`]). An ACK reports how many messages it
//! removed and their size. It marks its recipient's messages acknowledged
//! (`acked`) and the rows are deleted later, in steps between commits
//! ([`super::purge`]); on a full disk its rows are deleted at once
//! instead, to free room.

use super::client_id_window::{ClientIdStatements, Window};
use super::custody;
use super::history;
use super::schema::{PENDING_BYTES, PENDING_MESSAGES};
use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::store::cpu::{self, Meter, Phase};
use crate::store::group_commit::BatchOutcome;
use crate::store::{Batch, Duplicate, Removed, WriteOp};
use crate::Millis;
use rusqlite::{CachedStatement, Connection, TransactionBehavior};
use std::time::Instant;

/// Whether `op` is an ACK (what a full disk still lets through).
pub fn is_ack(op: &WriteOp) -> bool {
    matches!(op, WriteOp::Ack { .. })
}

/// Writes `group` in one transaction, all or nothing. Returns how many
/// operations it held. A group without operations (its batches only wait
/// for earlier ones, like a repeated `client_id`) costs no transaction: the
/// ids it carries were never stored anywhere, so there is nothing to keep.
pub fn write_group(conn: &mut Connection, group: &[Batch]) -> rusqlite::Result<usize> {
    write_batches(conn, group, false, super::wall_clock_ms()).map(|(writes, _)| writes)
}

/// Writes the batches' operations (only their ACKs with `acks_only`) in one
/// transaction; raises the stored `last_message_id` to the group's highest
/// and moves the totals in custody by what was added and removed. `now`
/// (ms since the epoch) decides which remembered `client_id`s have expired.
/// Nothing at all when there are no operations.
pub fn write_batches(
    conn: &mut Connection,
    group: &[Batch],
    acks_only: bool,
    now: Millis,
) -> rusqlite::Result<(usize, Vec<BatchOutcome>)> {
    write_batches_with(conn, group, acks_only, now, false)
}

/// [`write_batches`], keeping each conversation's side (`history`: see
/// [`super::history`]) when `keep`.
pub fn write_batches_with(
    conn: &mut Connection,
    group: &[Batch],
    acks_only: bool,
    now: Millis,
    keep: bool,
) -> rusqlite::Result<(usize, Vec<BatchOutcome>)> {
    let wanted = |op: &WriteOp| !acks_only || is_ack(op);
    if !group.iter().flat_map(|b| &b.ops).any(wanted) {
        return Ok((0, Vec::new()));
    }
    let mut meter = Meter::start(Phase::Begin);
    let last_message_id = group.iter().map(|b| b.last_message_id).max().unwrap_or(0);
    let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut writes = 0;
    let mut outcomes = Vec::with_capacity(group.len());
    {
        let mut statements = Statements::prepare(&tx, acks_only)?;
        statements.sides = keep.then(history::Sides::default);
        let mut totals = Totals::default();
        for batch in group {
            let mut outcome = BatchOutcome::default();
            let window = Window {
                cutoff,
                per_sender: batch.client_ids_per_sender,
            };
            for op in batch.ops.iter().filter(|op| wanted(op)) {
                meter.enter(phase(op));
                statements.apply(op, window, &mut outcome, &mut totals)?;
                writes += 1;
            }
            outcomes.push(outcome);
        }
        if let Some(sides) = &mut statements.sides {
            meter.enter(Phase::Sides);
            sides.apply(&tx)?;
        }
        meter.enter(Phase::Totals);
        statements
            .last_message_id
            .execute([last_message_id as i64])?;
        custody::apply(&tx, &totals.senders)?;
        if totals.messages != 0 || totals.bytes != 0 {
            statements
                .total
                .execute(rusqlite::params![PENDING_MESSAGES, totals.messages])?;
            statements
                .total
                .execute(rusqlite::params![PENDING_BYTES, totals.bytes])?;
        }
    }
    meter.enter(Phase::Commit);
    let started = Instant::now();
    pages_written(&tx, true);
    tx.commit()?;
    cpu::committed(started.elapsed(), pages_written(conn, true));
    Ok((writes, outcomes))
}

/// The pages this connection wrote to the log since the last call (with
/// `reset`): a commit's size on disk, for the stats line.
fn pages_written(conn: &Connection, reset: bool) -> u64 {
    let (mut current, mut highest) = (0, 0);
    // SAFETY: the handle is this open connection's, used on its own
    // thread; sqlite3_db_status only reads its counters.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE,
            &mut current,
            &mut highest,
            i32::from(reset),
        )
    };
    match rc {
        rusqlite::ffi::SQLITE_OK => current.max(0) as u64,
        _ => 0,
    }
}

/// The phase a write's CPU time is charged to.
fn phase(op: &WriteOp) -> Phase {
    match op {
        WriteOp::Append(_) => Phase::Append,
        WriteOp::Ack { .. } | WriteOp::Expire { .. } => Phase::Ack,
        _ => Phase::Other,
    }
}

/// How a group changes the totals in custody.
#[derive(Default)]
struct Totals {
    messages: i64,
    bytes: i64,
    /// Each sender's figure moves by this (one write per sender per group).
    senders: custody::Moves,
}

/// The statements a group needs, prepared once per connection (SQLite's
/// statement cache keeps them between groups).
struct Statements<'c> {
    conn: &'c Connection,
    user: CachedStatement<'c>,
    password_hash: CachedStatement<'c>,
    message: CachedStatement<'c>,
    client_ids: ClientIdStatements<'c>,
    mark: CachedStatement<'c>,
    delete_acked: CachedStatement<'c>,
    /// Delete an ACK's rows at once (on a full disk) instead of marking.
    at_once: bool,
    revoke: CachedStatement<'c>,
    void: CachedStatement<'c>,
    forget_revoked: CachedStatement<'c>,
    last_message_id: CachedStatement<'c>,
    total: CachedStatement<'c>,
    /// With history: each conversation's sides the group moves.
    sides: Option<history::Sides>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection, at_once: bool) -> rusqlite::Result<Statements<'c>> {
        Ok(Statements {
            conn,
            user: conn.prepare_cached(
                "INSERT INTO users (id, username, password_hash, created, identity, name_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            password_hash: conn
                .prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?,
            message: conn.prepare_cached(
                "INSERT INTO messages (id, from_id, to_id, ts, content, client_id, cost) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            client_ids: ClientIdStatements::prepare(conn)?,
            mark: conn.prepare_cached(
                "INSERT INTO acked (to_id, upto) VALUES (?1, ?2) \
                 ON CONFLICT (to_id) DO UPDATE SET upto = max(upto, excluded.upto)",
            )?,
            delete_acked: conn
                .prepare_cached("DELETE FROM messages WHERE to_id = ?1 AND id <= ?2")?,
            at_once,
            revoke: conn.prepare_cached(
                "INSERT OR REPLACE INTO revoked_tokens (token_id, expires, user_id) \
                 VALUES (?1, ?2, ?3)",
            )?,
            forget_revoked: conn.prepare_cached("DELETE FROM revoked_tokens WHERE user_id = ?1")?,
            void: conn.prepare_cached(
                "UPDATE users SET tokens_valid_from = max(tokens_valid_from, ?2) WHERE id = ?1",
            )?,
            last_message_id: conn.prepare_cached(
                "UPDATE meta SET value = max(value, ?1) WHERE key = 'last_message_id'",
            )?,
            total: conn.prepare_cached("UPDATE meta SET value = value + ?2 WHERE key = ?1")?,
            sides: None,
        })
    }

    fn apply(
        &mut self,
        op: &WriteOp,
        window: Window,
        outcome: &mut BatchOutcome,
        totals: &mut Totals,
    ) -> rusqlite::Result<()> {
        match op {
            WriteOp::CreateUser {
                id,
                identity,
                username,
                password_hash,
                created,
            } => {
                self.user.execute(rusqlite::params![
                    *id as i64,
                    &**username,
                    &**password_hash,
                    *created as i64,
                    &identity.to_be_bytes()[..],
                    crate::username::fold(username)
                ])?;
            }
            WriteOp::SetPasswordHash { id, password_hash } => {
                self.password_hash
                    .execute(rusqlite::params![*id as i64, &**password_hash])?;
            }
            WriteOp::Append(message) => {
                let client_id = message.client_id();
                if let Some(cid) = &client_id {
                    if let Some((first_id, first_ts)) =
                        self.client_ids.record(message, cid, window)?
                    {
                        outcome.duplicates.push(Duplicate {
                            message_id: message.id,
                            first_id,
                            first_ts,
                        });
                        return Ok(());
                    }
                }
                let cost = message.cost();
                self.message.execute(rusqlite::params![
                    message.id as i64,
                    message.from_id as i64,
                    message.to_id as i64,
                    message.ts as i64,
                    message.content(),
                    client_id.as_deref(),
                    cost as i64,
                ])?;
                if let Some(sides) = &mut self.sides {
                    sides.add(message);
                }
                totals.senders.add(message.from_id, cost as i64);
                totals.messages += 1;
                totals.bytes += cost as i64;
            }
            WriteOp::Ack { user, upto } => {
                // What it ends, by sender (from the index alone).
                let ending = custody::acked(self.conn, *user, *upto)?;
                let (count, bytes, newest) = (ending.count, ending.bytes, ending.newest as i64);
                totals.senders.take(&ending.senders);
                if self.at_once {
                    self.delete_acked.execute([*user as i64, *upto as i64])?;
                } else if count > 0 {
                    // Up to the newest message it ends, not `upto`: a
                    // message stored later may have a lower id than an
                    // ACK that named one beyond the newest.
                    self.mark.execute([*user as i64, newest])?;
                }
                totals.messages -= count as i64;
                totals.bytes -= bytes as i64;
                outcome.removed.push(Removed {
                    user: *user,
                    upto: *upto,
                    count,
                    bytes,
                    senders: ending.senders,
                });
            }
            WriteOp::Expire { before, limit } => {
                let expired = custody::expire(self.conn, *before, *limit)?;
                for r in &expired {
                    totals.senders.take(&r.senders);
                    totals.messages -= r.count as i64;
                    totals.bytes -= r.bytes as i64;
                }
                outcome.expired.extend(expired);
            }
            WriteOp::RevokeToken {
                token,
                expires,
                user,
            } => {
                // Token ids use all 64 bits; SQLite's integers are signed.
                self.revoke
                    .execute([*token as i64, *expires as i64, *user as i64])?;
            }
            WriteOp::ReadMark {
                user, with, upto, ..
            } => {
                // The sides moved so far are written first: the marker's
                // unread count is taken from the rows as they stand.
                if let Some(sides) = &mut self.sides {
                    sides.apply(self.conn)?;
                }
                outcome
                    .marks
                    .push(history::read_mark(self.conn, *user, *with, *upto)?);
            }
            WriteOp::VoidTokens { user, from } => {
                self.void.execute([*user as i64, *from as i64])?;
                // Issued before the moment, so covered by it: at most
                // `--revocations-per-account` rows, through their index.
                self.forget_revoked.execute([*user as i64])?;
            }
            WriteOp::DeleteUser { id } => super::admin::delete_user(self.conn, *id)?,
            WriteOp::LastLogin { id, at } => super::admin::last_login(self.conn, *id, *at)?,
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::purge::{self, Backlog};
    use super::super::schema;
    use super::*;
    use crate::message::{Message, Parties};

    pub fn message(id: u64, content: &str) -> WriteOp {
        let parties = Parties {
            from_id: 1,
            from: "alice",
            to_id: 2,
            to: "bob",
        };
        WriteOp::Append(Message::new(id, &parties, 1, content, None))
    }

    pub fn user(id: u64, name: &str) -> WriteOp {
        WriteOp::CreateUser {
            id,
            identity: u128::from(id),
            username: name.into(),
            password_hash: "h".into(),
            created: 1,
        }
    }

    pub fn batch(seq: u64, ops: Vec<WriteOp>) -> Batch {
        Batch {
            seq,
            ops,
            last_message_id: 10,
            client_ids_per_sender: 0,
        }
    }

    pub fn stored_ids(conn: &Connection) -> Vec<u64> {
        let mut stmt = conn.prepare("SELECT id FROM messages ORDER BY id").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn mailbox(conn: &Connection, user: u64) -> (Vec<u64>, usize) {
        use crate::store::{ReadAnswer, ReadOp};
        let op = ReadOp::MailboxAndHead {
            user,
            limit: 100,
            max_bytes: 1 << 20,
        };
        let Ok(ReadAnswer::Mailbox { count, head, .. }) = super::super::reader::answer(conn, &op)
        else {
            panic!("figures and head");
        };
        (head.iter().map(|m| m.id).collect(), count)
    }

    #[test]
    fn an_ack_marks_its_messages_and_a_purge_step_deletes_them() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let mut ops = vec![user(1, "alice"), user(2, "bob")];
        ops.extend((1..=4).map(|id| message(id, "m")));
        write_group(&mut conn, &[batch(1, ops)]).unwrap();
        // An ACK that names an id beyond the newest message.
        let ack = WriteOp::Ack { user: 2, upto: 10 };
        let (_, outcomes) = write_batches(&mut conn, &[batch(2, vec![ack])], false, 0).unwrap();
        assert_eq!(outcomes[0].removed[0].count, 4);
        assert_eq!(stored_ids(&conn), [1, 2, 3, 4], "marked, not deleted yet");
        assert_eq!(mailbox(&conn, 2), (vec![], 0), "reads skip them");
        // A message stored after the ACK, with an id below the one it
        // named, is not covered by it.
        write_group(&mut conn, &[batch(3, vec![message(5, "later")])]).unwrap();
        assert_eq!(mailbox(&conn, 2), (vec![5], 1));
        // A repeated ACK ends nothing more.
        let again = WriteOp::Ack { user: 2, upto: 4 };
        let (_, outcomes) = write_batches(&mut conn, &[batch(4, vec![again])], false, 0).unwrap();
        assert_eq!(outcomes[0].removed[0].count, 0);
        let mut backlog = Backlog::default();
        backlog.marked(4);
        assert_eq!(purge::step(&mut conn, &mut backlog).unwrap(), 4);
        assert_eq!(stored_ids(&conn), [5]);
        assert_eq!(mailbox(&conn, 2), (vec![5], 1));
        assert!(!backlog.is_pending());
    }
}
