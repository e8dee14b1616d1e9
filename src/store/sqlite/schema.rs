//! The database's layout and how a file gets there: the settings every
//! connection uses, and the forward migrations that bring a database of any
//! older version up to the one this code knows.
//!
//! The version lives in the file header (`PRAGMA user_version`). Each entry
//! of [`MIGRATIONS`] takes the schema from version `i` to `i + 1` and runs
//! in one transaction together with the version bump, so a crash in the
//! middle of an upgrade leaves the previous version intact and the next
//! start simply tries again. Released steps never change; new ones are
//! appended. A file whose version is newer than [`MIGRATIONS`] knows was
//! written by a newer gotalk and is refused rather than guessed at.

use crate::store::SchemaError;
use rusqlite::Connection;
use std::time::Duration;

/// The `meta` key holding the highest message id ever issued.
pub const LAST_MESSAGE_ID: &str = "last_message_id";

/// The migrations, oldest first: step `i` makes version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V7,
    V8,
    V9,
    V10,
    super::recount::V11,
    super::pairs::V12,
];

/// The `meta` keys holding how many messages are in custody and their size
/// as stored, kept by every batch, so a start reads two numbers instead of
/// every message.
pub const PENDING_MESSAGES: &str = "pending_messages";
pub const PENDING_BYTES: &str = "pending_bytes";

/// Version 1: accounts, messages in custody, remembered `client_id`s, and
/// counters that must outlive the rows they count.
const V1: &str = "
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,  -- argon2id PHC string
    created       INTEGER NOT NULL   -- ms since the Unix epoch
);

-- Unacknowledged messages only: an ACK deletes the row.
CREATE TABLE messages (
    id        INTEGER PRIMARY KEY,
    from_id   INTEGER NOT NULL,
    to_id     INTEGER NOT NULL,
    ts        INTEGER NOT NULL,      -- ms since the Unix epoch
    content   TEXT    NOT NULL,
    client_id TEXT                   -- as the sender gave it, or NULL
);
CREATE INDEX messages_by_recipient ON messages (to_id, id);

-- A sender's client_id and the message it first named, kept 24 hours
-- whether or not that message was acknowledged meanwhile.
CREATE TABLE client_ids (
    sender     INTEGER NOT NULL,
    client_id  TEXT    NOT NULL,
    message_id INTEGER NOT NULL,
    ts         INTEGER NOT NULL,     -- when first used, ms since the epoch
    PRIMARY KEY (sender, client_id)
) WITHOUT ROWID;
CREATE INDEX client_ids_by_age ON client_ids (ts);

CREATE TABLE meta (
    key   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('last_message_id', 0);
";

/// Version 2: each account gets a random 128-bit identity, sealed into its
/// tokens, so a token opens only the account it was issued for (not a
/// later account that got the same id after a reset). Existing accounts
/// get one now; their old tokens (which carry none) stop working.
const V2: &str = "
ALTER TABLE users ADD COLUMN identity BLOB;
UPDATE users SET identity = randomblob(16) WHERE identity IS NULL;
";

/// Version 3: LOGOUT. A revoked token's id is kept until the token would
/// have expired anyway; `LOGOUT all` voids every token of an account
/// issued before a moment (ms since the epoch; 0: none).
const V3: &str = "
CREATE TABLE revoked_tokens (
    token_id INTEGER PRIMARY KEY,    -- the token's 64-bit id, as signed
    expires  INTEGER NOT NULL        -- ms since the epoch
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires);
ALTER TABLE users ADD COLUMN tokens_valid_from INTEGER NOT NULL DEFAULT 0;
";

/// Version 4: what a message costs its mailbox's byte budget (its JSON as
/// the server renders it) is stored with it, and the totals in custody are
/// kept in `meta`, so the server reads a mailbox's figures on demand and
/// starts without reading any message. Messages stored before get an
/// estimate (the exact figure needs the renderer); it errs on the large
/// side.
const V4: &str = "
ALTER TABLE messages ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET cost = 160 + 2 * length(CAST(content AS BLOB))
    + coalesce(length(CAST(client_id AS BLOB)) + 16, 0);
INSERT INTO meta (key, value) SELECT 'pending_messages', count(*) FROM messages;
INSERT INTO meta (key, value) SELECT 'pending_bytes', coalesce(sum(cost), 0) FROM messages;
";

/// Version 5: an ACK marks, it no longer deletes at once. A recipient's
/// messages are spread over the table (ids are given in arrival order, to
/// every recipient in turn), so deleting one user's hundred messages
/// rewrote a hundred pages in the ACK's own transaction. `acked` holds,
/// per recipient, the highest id acknowledged; reads skip what it covers,
/// and [`super::purge`] deletes those rows later, many users' at a time,
/// each page once. The recipient index carries `cost`, so a mailbox's
/// figures and what an ACK ends are counted from the index alone.
const V5: &str = "
CREATE TABLE acked (
    to_id INTEGER PRIMARY KEY,       -- the recipient
    upto  INTEGER NOT NULL           -- their messages up to here are acknowledged
);
DROP INDEX messages_by_recipient;
CREATE INDEX messages_by_recipient ON messages (to_id, id, cost);
";

/// Version 6: each sender's bytes in custody (`--pending-bytes-per-sender`),
/// one row per sender that has any, kept by the writer in the transaction
/// that stores or ends the messages, so a start reads one row per sender
/// instead of counting messages. The recipient index carries `from_id`
/// too, so what an ACK ends is still counted from the index alone, now
/// by sender.
const V6: &str = "
CREATE TABLE sender_bytes (
    sender INTEGER PRIMARY KEY,
    bytes  INTEGER NOT NULL          -- the cost of their messages in custody
);
INSERT INTO sender_bytes (sender, bytes)
    SELECT from_id, sum(cost) FROM messages m
    WHERE id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id)
    GROUP BY from_id HAVING sum(cost) > 0;
DROP INDEX messages_by_recipient;
CREATE INDEX messages_by_recipient ON messages (to_id, id, cost, from_id);
";

/// Version 7: bounds per account.
///
/// A sender's remembered `client_id`s are its newest N, on disk too. Each
/// row carries `seq`, the sender's count of fresh ids when it came (1, 2,
/// …); a new one deletes those at or below `seq - N` through the (sender,
/// seq) index, one or a few rows, never a scan. Rows kept from before are
/// numbered per sender in the order they came.
///
/// A revoked token records its account, so the core counts an account's
/// revocations (`--revocations-per-account`) and a `LOGOUT all` deletes
/// them (its moment covers them). Rows from before get account 0.
const V7: &str = "
CREATE TABLE client_ids_v7 (
    sender     INTEGER NOT NULL,
    client_id  TEXT    NOT NULL,
    message_id INTEGER NOT NULL,
    ts         INTEGER NOT NULL,     -- when first used, ms since the epoch
    seq        INTEGER NOT NULL,     -- the sender's count of fresh ids then
    PRIMARY KEY (sender, client_id)
) WITHOUT ROWID;
INSERT INTO client_ids_v7 (sender, client_id, message_id, ts, seq)
    SELECT sender, client_id, message_id, ts,
           row_number() OVER (PARTITION BY sender ORDER BY ts, message_id)
    FROM client_ids;
DROP TABLE client_ids;
ALTER TABLE client_ids_v7 RENAME TO client_ids;
CREATE INDEX client_ids_by_age ON client_ids (ts);
CREATE INDEX client_ids_by_sender ON client_ids (sender, seq);
ALTER TABLE revoked_tokens ADD COLUMN user_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX revoked_tokens_by_user ON revoked_tokens (user_id);
";

/// Version 8: usernames are compared by their folded form
/// (`crate::username`: ASCII case and the separators `.`, `-`, `_` do not
/// count), kept in `name_key`, unique. Accounts that clash already
/// (`alice` and `Alice`) are never merged: the oldest of each group holds
/// the folded form, the others get none (NULL) and are found by their
/// exact name only; each start reports them (see `load.rs`). The fold is
/// spelled out as in `crate::username::fold_sql`.
const V8: &str = "
ALTER TABLE users ADD COLUMN name_key TEXT;
UPDATE users SET name_key = replace(replace(lower(username), '.', '_'), '-', '_');
CREATE INDEX users_by_name_key_all ON users (name_key, id);
UPDATE users SET name_key = NULL WHERE EXISTS (
    SELECT 1 FROM users AS older
    WHERE older.name_key = users.name_key AND older.id < users.id
);
DROP INDEX users_by_name_key_all;
CREATE UNIQUE INDEX users_by_name_key ON users (name_key);
";

/// Version 9: history. A message stays after its ACK (the mark in
/// `acked` ends custody; with history on, [`super::purge`] does not run)
/// until retention deletes it. A conversation is read through one index
/// range on its pair of parties (lower id first) and id, an index on
/// expressions so the table carries no extra column. `conversations`
/// holds each user's side of each conversation: the newest message
/// either way, the partner's messages above the user's read marker (a
/// counter, kept by the writer), and the marker. The list reads the
/// user's rows by key and orders them by the newest message; no index on
/// it, since every message moves two sides' newest and such an index
/// would be rewritten twice per message. The messages already stored become
/// history, each counted unread.
const V9: &str = "
CREATE INDEX messages_by_pair ON messages (min(from_id, to_id), max(from_id, to_id), id);
CREATE TABLE conversations (
    user_id    INTEGER NOT NULL,
    partner_id INTEGER NOT NULL,
    last_id    INTEGER NOT NULL,     -- the newest message either way
    unread     INTEGER NOT NULL,     -- the partner's messages above read_upto
    read_upto  INTEGER NOT NULL,     -- user has read partner's messages up to here
    PRIMARY KEY (user_id, partner_id)
) WITHOUT ROWID;
INSERT INTO conversations (user_id, partner_id, last_id, unread, read_upto)
    SELECT u, p, max(id), sum(n), 0 FROM (
        SELECT from_id AS u, to_id AS p, id, 0 AS n FROM messages
        UNION ALL
        SELECT to_id, from_id, id, 1 FROM messages WHERE to_id != from_id
    ) GROUP BY u, p;
";

/// Version 11 is [`super::recount`]; version 12, the pair index kept
/// behind the commit, is [`super::pairs`].
///
/// Version 10: when each account last logged in (ms since the epoch; 0:
/// never, or before this version), for `gotalk admin user show`.
const V10: &str = "
ALTER TABLE users ADD COLUMN last_login INTEGER NOT NULL DEFAULT 0;
";

/// The schema version this code writes.
pub fn latest_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// How long a connection waits for another one's lock before failing. The
/// process lock means only this server's own connections compete.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings for every connection to the database.
///
/// - `auto_vacuum = INCREMENTAL` only takes effect while the file has no
///   tables yet, so it is issued before anything else; afterwards it is a
///   no-op. It lets [`super::upkeep`] hand freed pages back to the file
///   system without a blocking full `VACUUM`.
/// - WAL: a commit appends to the log instead of rewriting pages in place,
///   so one fsync per commit suffices and readers never block the writer.
/// - `synchronous = FULL`: with WAL, NORMAL would skip the fsync at commit
///   and a power cut could lose the last transactions, which breaks the
///   promise that a SEND answered `ok` survives. FULL syncs the log at
///   every commit; group commit makes that one fsync per group of batches.
pub fn configure(conn: &Connection) -> Result<(), SchemaError> {
    let set = || -> rusqlite::Result<String> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        let mode = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(mode)
    };
    let mode: String = set().map_err(|e| SchemaError::Database(e.to_string()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SchemaError::NoWal(mode));
    }
    Ok(())
}

/// The file's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Brings the database up to [`latest_version`]. Returns the version it
/// found, or an error for a version newer than this code knows.
pub fn migrate(conn: &mut Connection) -> Result<u32, SchemaError> {
    migrate_with(conn, MIGRATIONS)
}

/// [`migrate`] with the steps given (so tests can add future ones).
pub fn migrate_with(conn: &mut Connection, steps: &[&str]) -> Result<u32, SchemaError> {
    let found = version(conn).map_err(|e| SchemaError::Database(e.to_string()))?;
    super::recount::register(conn).map_err(|e| SchemaError::Database(e.to_string()))?;
    let known = steps.len() as u32;
    if found > known {
        return Err(SchemaError::TooNew {
            found: found.into(),
            known: known.into(),
        });
    }
    let started = std::time::Instant::now();
    for (i, step) in steps.iter().enumerate().skip(found as usize) {
        let to = i as u32 + 1;
        let step_started = std::time::Instant::now();
        apply_step(conn, step, to).map_err(|e| SchemaError::Step {
            to: to.into(),
            cause: e.to_string(),
        })?;
        // A new database's steps are its creation, said in one line by
        // the caller; an upgrade's are worth a line each.
        let level = if found == 0 {
            log::Level::Debug
        } else {
            log::Level::Info
        };
        log::log!(
            level,
            "database schema upgraded to version {to} in {} ms",
            step_started.elapsed().as_millis()
        );
    }
    if found > 0 && found < known {
        log::info!(
            "database schema upgraded from version {found} to {known} in {} ms",
            started.elapsed().as_millis()
        );
    }
    Ok(found)
}

/// One step and its version bump, in one transaction.
fn apply_step(conn: &mut Connection, step: &str, to: u32) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(step)?;
    tx.pragma_update(None, "user_version", to)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .unwrap();
        conn
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_new_database_gets_every_table_and_the_latest_version() {
        let mut conn = fresh();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(version(&conn).unwrap(), latest_version());
        assert_eq!(
            tables(&conn),
            [
                "acked",
                "client_ids",
                "conversations",
                "messages",
                "meta",
                "pairs",
                "revoked_tokens",
                "sender_bytes",
                "users"
            ]
            .map(String::from)
        );
        let last: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [LAST_MESSAGE_ID],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(last, 0);
        let vacuum: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(vacuum, 2, "auto_vacuum must be INCREMENTAL");
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = fresh();
        migrate(&mut conn).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        assert_eq!(version(&conn).unwrap(), latest_version());
    }

    #[test]
    fn later_steps_apply_in_order_on_top_of_earlier_ones() {
        let mut conn = fresh();
        migrate(&mut conn).unwrap();
        let mut steps = MIGRATIONS.to_vec();
        steps.push("ALTER TABLE users ADD COLUMN display_name TEXT;");
        steps.push("UPDATE users SET display_name = username;");
        assert_eq!(migrate_with(&mut conn, &steps).unwrap(), latest_version());
        assert_eq!(version(&conn).unwrap(), latest_version() + 2);
        conn.execute(
            "INSERT INTO users (id, username, password_hash, created, display_name) \
             VALUES (1, 'a', 'h', 0, 'A')",
            [],
        )
        .unwrap();
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version_intact() {
        let mut conn = fresh();
        migrate(&mut conn).unwrap();
        let mut steps = MIGRATIONS.to_vec();
        steps.push("CREATE TABLE extra (x); INSERT INTO no_such_table VALUES (1);");
        let err = migrate_with(&mut conn, &steps).unwrap_err().to_string();
        let failing = format!("version {}", latest_version() + 1);
        assert!(err.contains(&failing), "{err}");
        assert_eq!(version(&conn).unwrap(), latest_version());
        assert!(!tables(&conn).contains(&"extra".to_string()));
    }

    #[test]
    fn accounts_from_version_1_get_an_identity_of_their_own() {
        let mut conn = fresh();
        migrate_with(&mut conn, &MIGRATIONS[..1]).unwrap();
        for (id, name) in [(1, "a"), (2, "b")] {
            conn.execute(
                "INSERT INTO users (id, username, password_hash, created) VALUES (?1, ?2, 'h', 0)",
                rusqlite::params![id, name],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let identities: Vec<Vec<u8>> = conn
            .prepare("SELECT identity FROM users ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(identities.len(), 2);
        assert!(identities.iter().all(|i| i.len() == 16));
        assert_ne!(identities[0], identities[1]);
    }

    #[test]
    fn clashing_names_keep_their_accounts_and_the_oldest_holds_the_fold() {
        let mut conn = fresh();
        migrate_with(&mut conn, &MIGRATIONS[..5]).unwrap();
        for (id, name) in [
            (1, "alice"),
            (2, "Alice"),
            (3, "bob"),
            (4, "ALICE"),
            (5, "j.s"),
        ] {
            conn.execute(
                "INSERT INTO users (id, username, password_hash, created) VALUES (?1, ?2, 'h', 0)",
                rusqlite::params![id, name],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let keys: Vec<(String, Option<String>)> = conn
            .prepare("SELECT username, name_key FROM users ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = |k: &str| Some(k.to_string());
        assert_eq!(
            keys,
            [
                ("alice".into(), key("alice")),
                ("Alice".into(), None),
                ("bob".into(), key("bob")),
                ("ALICE".into(), None),
                ("j.s".into(), key("j_s")),
            ]
        );
        // A new look-alike is refused by the index.
        let clash = conn.execute(
            "INSERT INTO users (id, username, password_hash, created, name_key) \
             VALUES (6, 'J-S', 'h', 0, 'j_s')",
            [],
        );
        assert!(clash.is_err());
    }

    #[test]
    fn client_ids_from_version_6_are_numbered_per_sender_in_order() {
        let mut conn = fresh();
        migrate_with(&mut conn, &MIGRATIONS[..6]).unwrap();
        conn.execute_batch(
            "INSERT INTO client_ids VALUES (1, 'b', 2, 20), (1, 'a', 1, 10), \
             (2, 'a', 3, 15), (1, 'c', 4, 30);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(i64, String, i64)> = conn
            .prepare("SELECT sender, client_id, seq FROM client_ids ORDER BY sender, seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let expected = [(1, "a", 1), (1, "b", 2), (1, "c", 3), (2, "a", 1)];
        assert_eq!(
            rows,
            expected.map(|(s, c, q)| (s, c.to_string(), q)).to_vec()
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = fresh();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
        assert!(tables(&conn).is_empty(), "nothing may be created");
    }
}
