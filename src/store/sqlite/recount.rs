//! Schema version 11: every message in custody counts its real size.
//!
//! Version 4 gave messages stored before it an estimate of their cost,
//! `160 + 2 × content bytes` (+ the `client_id`), about twice the real
//! figure, and the totals in `meta` and `sender_bytes` were summed from
//! it. A database upgraded from version 1 to 3 so counted its backlog
//! double against `--pending-bytes`, `--mailbox-bytes` and
//! `--pending-bytes-per-sender`, and refused SENDs it had room for until
//! enough of the backlog was acknowledged.
//!
//! This step recounts each message in custody with the figure the server
//! charges for it ([`crate::message::Message::cost`]: its JSON as
//! rendered), through the SQL function [`COST_FUNCTION`] that
//! [`register`] adds to the migrating connection, then sums the totals
//! again. It runs once, in one statement per table (SQLite streams the
//! rows; memory stays flat), inside the step's transaction like every
//! step. Released step 4 stays as it was: databases that pass it on the
//! way up are corrected here.

use crate::message::{Message, Parties};
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

/// The schema version this step makes.
pub const VERSION: usize = 11;

/// The SQL name of the cost function.
pub const COST_FUNCTION: &str = "gotalk_message_cost";

/// Adds `gotalk_message_cost(id, from, from_id, to, to_id, content, ts,
/// client_id)` to `conn`: the cost of the message as the server renders
/// it (a missing name is "", as the reader renders it).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        COST_FUNCTION,
        8,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let number = |i: usize| ctx.get::<i64>(i).map(|n| n.max(0) as u64);
            let name = |i: usize| ctx.get::<Option<String>>(i).map(Option::unwrap_or_default);
            let (from, to) = (name(1)?, name(3)?);
            let parties = Parties {
                from_id: number(2)?,
                from: &from,
                to_id: number(4)?,
                to: &to,
            };
            let content: String = ctx.get(5)?;
            let client_id: Option<String> = ctx.get(7)?;
            let message = Message::new(
                number(0)?,
                &parties,
                number(6)?,
                &content,
                client_id.as_deref(),
            );
            Ok(message.cost() as i64)
        },
    )
}

/// The step (see the module's comment).
pub const V11: &str = "
UPDATE messages AS m SET cost = gotalk_message_cost(
        m.id, (SELECT username FROM users WHERE id = m.from_id), m.from_id,
        (SELECT username FROM users WHERE id = m.to_id), m.to_id,
        m.content, m.ts, m.client_id)
    WHERE m.id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id);
INSERT OR REPLACE INTO meta (key, value)
    SELECT 'pending_messages', count(*) FROM messages m
    WHERE m.id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id);
INSERT OR REPLACE INTO meta (key, value)
    SELECT 'pending_bytes', coalesce(sum(cost), 0) FROM messages m
    WHERE m.id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id);
DELETE FROM sender_bytes;
INSERT INTO sender_bytes (sender, bytes)
    SELECT from_id, sum(cost) FROM messages m
    WHERE m.id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id)
    GROUP BY from_id HAVING sum(cost) > 0;
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema::{self, MIGRATIONS};
    use std::collections::BTreeMap;

    /// Accounts and messages as a release of schema version 1 wrote them:
    /// plain and escaped content, a 60 KB one, with and without client_ids.
    fn version_1_database() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate_with(&mut conn, &MIGRATIONS[..1]).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, password_hash, created) VALUES \
             (1, 'alice', 'h', 0), (2, 'bob.b', 'h', 0), (3, 'zo\u{eb}', 'h', 0);",
        )
        .unwrap();
        let big = "x".repeat(60_000);
        let contents = [
            "hello",
            "say \"hi\"\n\tthen\\go",
            "bell \u{7} and \u{1}",
            "caf\u{e9} \u{1f600}",
            big.as_str(),
        ];
        let mut id = 0;
        for round in 0..40 {
            for (k, content) in contents.iter().enumerate() {
                id += 1;
                let (from, to) = [(1, 2), (2, 3), (3, 1), (1, 3)][(round + k) % 4];
                let client_id = (id % 3 == 0).then(|| format!("c-{id} \"q\""));
                conn.execute(
                    "INSERT INTO messages (id, from_id, to_id, ts, content, client_id) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![id, from, to, 1_700_000_000_000i64 + id, content, client_id],
                )
                .unwrap();
            }
        }
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'last_message_id'",
            [id],
        )
        .unwrap();
        conn
    }

    /// The figures recounted in Rust from the rows in custody: count,
    /// bytes, each sender's bytes; and whether every row's cost is right.
    fn recount(conn: &Connection) -> (i64, i64, BTreeMap<i64, i64>, bool) {
        let mut stmt = conn
            .prepare(
                "SELECT m.id, f.username, m.from_id, t.username, m.to_id, m.content, m.ts, \
                 m.client_id, m.cost FROM messages m \
                 JOIN users f ON f.id = m.from_id JOIN users t ON t.id = m.to_id \
                 WHERE m.id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id)",
            )
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let (mut count, mut bytes, mut senders, mut exact) = (0, 0, BTreeMap::new(), true);
        while let Some(r) = rows.next().unwrap() {
            let (from, to): (String, String) = (r.get(1).unwrap(), r.get(3).unwrap());
            let parties = Parties {
                from_id: r.get::<_, i64>(2).unwrap() as u64,
                from: &from,
                to_id: r.get::<_, i64>(4).unwrap() as u64,
                to: &to,
            };
            let content: String = r.get(5).unwrap();
            let client_id: Option<String> = r.get(7).unwrap();
            let m = Message::new(
                r.get::<_, i64>(0).unwrap() as u64,
                &parties,
                r.get::<_, i64>(6).unwrap() as u64,
                &content,
                client_id.as_deref(),
            );
            let cost = m.cost() as i64;
            exact &= r.get::<_, i64>(8).unwrap() == cost;
            count += 1;
            bytes += cost;
            *senders.entry(m.from_id as i64).or_insert(0) += cost;
        }
        (count, bytes, senders, exact)
    }

    /// The figures the database holds: `meta`'s totals and `sender_bytes`.
    fn stored(conn: &Connection) -> (i64, i64, BTreeMap<i64, i64>) {
        let meta = |key: &str| -> i64 {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .unwrap()
        };
        let senders = conn
            .prepare("SELECT sender, bytes FROM sender_bytes")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (meta("pending_messages"), meta("pending_bytes"), senders)
    }

    #[test]
    fn a_version_1_database_counts_its_custody_exactly_after_the_upgrade() {
        let mut conn = version_1_database();
        schema::migrate(&mut conn).unwrap();
        let (count, bytes, senders, exact) = recount(&conn);
        assert!(exact, "every row's cost is the message's rendered size");
        assert_eq!(count, 200);
        assert_eq!(stored(&conn), (count, bytes, senders));
    }

    #[test]
    fn a_database_upgraded_with_the_estimate_is_corrected() {
        let mut conn = version_1_database();
        // Upgraded by the release before this step: the estimate stands.
        schema::migrate_with(&mut conn, &MIGRATIONS[..8]).unwrap();
        let (_, estimated, _) = stored(&conn);
        let (_, real, _, exact) = recount(&conn);
        assert!(!exact);
        assert!(estimated > real * 3 / 2, "{estimated} against {real}");
        // Then bob.b acknowledged everything up to 100.
        conn.execute("INSERT INTO acked (to_id, upto) VALUES (2, 100)", [])
            .unwrap();
        schema::migrate(&mut conn).unwrap();
        let (count, bytes, senders, exact) = recount(&conn);
        assert!(exact);
        assert!(
            count < 200,
            "bob.b's acknowledged messages are not in custody"
        );
        assert_eq!(stored(&conn), (count, bytes, senders));
    }
}
