//! The PostgreSQL schema and how a database gets there: versioned forward
//! migrations recorded in `schema_migrations` (one row per version
//! applied). Each step runs in one transaction together with its row, so
//! an upgrade cut short leaves the previous version intact. Nodes starting
//! at the same time take a transaction-scoped advisory lock around each
//! step, so exactly one of them applies it and the others see it done.
//! Released steps never change; new ones are appended. A database whose
//! version is newer than this code knows is refused.

use crate::store::SchemaError;
use postgres::Client;

/// The migrations, oldest first: step `i` makes version `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7];

/// The advisory lock key migrations hold (any fixed number; "gotalk" in
/// ASCII).
const MIGRATION_LOCK: i64 = 0x676f_74616c6b;

/// Version 1. Ids come from sequences, taken inside the writing
/// transaction (see `docs/storage.md`, "Ids across nodes"); `mailboxes`
/// holds one row per receiver: its figures, and the row every writer to
/// that receiver locks before it takes message ids.
const V1: &str = "
CREATE SEQUENCE user_ids;
CREATE SEQUENCE message_ids;

CREATE TABLE users (
    id            bigint PRIMARY KEY,
    username      text   NOT NULL UNIQUE,
    password_hash text   NOT NULL,   -- argon2id PHC string
    created       bigint NOT NULL,   -- ms since the Unix epoch
    identity      bytea  NOT NULL    -- 16 random bytes, sealed into tokens
);

-- Unacknowledged messages only: an ACK deletes the row.
CREATE TABLE messages (
    id        bigint PRIMARY KEY,
    from_id   bigint NOT NULL,
    to_id     bigint NOT NULL,
    ts        bigint NOT NULL,       -- ms since the Unix epoch
    content   text   NOT NULL,
    client_id text,                  -- as the sender gave it, or NULL
    cost      bigint NOT NULL        -- its JSON's length: the mailbox budget's unit
);
CREATE INDEX messages_by_recipient ON messages (to_id, id);

-- A receiver's figures, kept by every transaction that adds or removes
-- its messages, and the row those transactions lock, in user id order.
CREATE TABLE mailboxes (
    user_id bigint PRIMARY KEY,
    count   bigint NOT NULL DEFAULT 0,
    bytes   bigint NOT NULL DEFAULT 0
);
CREATE INDEX mailboxes_not_empty ON mailboxes (user_id) WHERE count > 0;

-- A sender's client_id and the message it first named, kept 24 hours
-- whether or not that message was acknowledged meanwhile.
CREATE TABLE client_ids (
    sender     bigint NOT NULL,
    client_id  text   NOT NULL,
    message_id bigint NOT NULL,
    ts         bigint NOT NULL,      -- when first used, ms since the epoch
    PRIMARY KEY (sender, client_id)
);
CREATE INDEX client_ids_by_age ON client_ids (ts);
";

/// Version 2: LOGOUT. A revoked token's id (all 64 bits, stored as a
/// signed bigint) is kept until the token would have expired anyway;
/// `LOGOUT all` voids every token of an account issued before a moment
/// (ms since the epoch; 0: none).
const V2: &str = "
CREATE TABLE revoked_tokens (
    token_id bigint PRIMARY KEY,     -- the token's 64-bit id, as signed
    expires  bigint NOT NULL         -- ms since the epoch
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires);
ALTER TABLE users ADD COLUMN tokens_valid_from bigint NOT NULL DEFAULT 0;
";

/// Version 3: nodes sharing the database. Each node heartbeats its row;
/// `presence` says which node holds a bound connection of which user, so
/// a commit wakes only the nodes that hold its receivers. Rows of a node
/// whose heartbeat is old are ignored, then deleted (with its presence).
const V3: &str = "
CREATE TABLE nodes (
    id        text        PRIMARY KEY,
    started   timestamptz NOT NULL DEFAULT now(),
    heartbeat timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE presence (
    node    text   NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    user_id bigint NOT NULL,
    PRIMARY KEY (user_id, node)
);
CREATE INDEX presence_by_node ON presence (node);
";

/// Version 4: each sender's bytes in custody (`--pending-bytes-per-sender`),
/// kept by every transaction that stores or ends messages and locked
/// after the receivers' rows (see `custody.rs`).
const V4: &str = "
CREATE TABLE sender_bytes (
    sender bigint PRIMARY KEY,
    bytes  bigint NOT NULL DEFAULT 0   -- the cost of their messages in custody
);
INSERT INTO sender_bytes (sender, bytes)
    SELECT from_id, sum(cost) FROM messages GROUP BY from_id;
";

/// Version 5: bounds per account. A sender's remembered `client_id`s are
/// its newest N (see `client_id_window`). Each row gets `seq`, its
/// sender's count of ids when it came; `client_id_senders` holds each
/// sender's counter. Rows kept from before are numbered per sender in the
/// order they came. A revoked token records its account, so the core
/// counts an account's revocations (`--revocations-per-account`) and a
/// `LOGOUT all` deletes them (its moment covers them); rows from before
/// get account 0.
const V5: &str = "
ALTER TABLE client_ids ADD COLUMN seq bigint NOT NULL DEFAULT 0;
UPDATE client_ids c SET seq = n.seq
    FROM (SELECT sender, client_id,
                 row_number() OVER (PARTITION BY sender ORDER BY ts, message_id) AS seq
          FROM client_ids) n
    WHERE c.sender = n.sender AND c.client_id = n.client_id;
CREATE INDEX client_ids_by_sender ON client_ids (sender, seq);
CREATE TABLE client_id_senders (
    sender bigint PRIMARY KEY,
    seq    bigint NOT NULL           -- the sender's count of ids so far
);
INSERT INTO client_id_senders (sender, seq)
    SELECT sender, max(seq) FROM client_ids GROUP BY sender;
ALTER TABLE revoked_tokens ADD COLUMN user_id bigint NOT NULL DEFAULT 0;
CREATE INDEX revoked_tokens_by_user ON revoked_tokens (user_id);
";

/// Version 6: usernames are compared by their folded form
/// (`crate::username`: ASCII case and the separators `.`, `-`, `_` do not
/// count), kept in `name_key`, unique, so two nodes cannot register
/// `alice` and `Alice` together. Accounts that clash already are never
/// merged: the oldest of each group holds the folded form, the others get
/// none (NULL) and are found by their exact name only; each start reports
/// them (see `load.rs`).
const V6: &str = "
ALTER TABLE users ADD COLUMN name_key text;
UPDATE users SET name_key = replace(replace(lower(username), '.', '_'), '-', '_');
UPDATE users AS u SET name_key = NULL WHERE EXISTS (
    SELECT 1 FROM users AS older
    WHERE older.name_key = u.name_key AND older.id < u.id
);
CREATE UNIQUE INDEX users_by_name_key ON users (name_key);
";

/// Version 7: history. `messages` keeps custody as before (an ACK
/// deletes the row); each stored message is also written to `history`,
/// in the same transaction and statement round, where it stays until
/// retention deletes it. A conversation is read through one index range
/// on its pair of parties (lower id first) and id, an index on
/// expressions. `conversations` holds each user's side of each
/// conversation: the newest message either way, the partner's messages
/// above the user's read marker (a counter, kept by the writer), and the
/// marker. The messages in custody now become history, each unread.
const V7: &str = "
CREATE TABLE history (
    id        bigint PRIMARY KEY,
    from_id   bigint NOT NULL,
    to_id     bigint NOT NULL,
    ts        bigint NOT NULL,
    content   text   NOT NULL,
    client_id text,
    cost      bigint NOT NULL
);
CREATE INDEX history_by_pair ON history (least(from_id, to_id), greatest(from_id, to_id), id);
CREATE TABLE conversations (
    user_id    bigint NOT NULL,
    partner_id bigint NOT NULL,
    last_id    bigint NOT NULL,      -- the newest message either way
    unread     bigint NOT NULL,      -- the partner's messages above read_upto
    read_upto  bigint NOT NULL,      -- user has read partner's messages up to here
    PRIMARY KEY (user_id, partner_id)
);
CREATE INDEX conversations_by_last ON conversations (user_id, last_id);
INSERT INTO history (id, from_id, to_id, ts, content, client_id, cost)
    SELECT id, from_id, to_id, ts, content, client_id, cost FROM messages;
INSERT INTO conversations (user_id, partner_id, last_id, unread, read_upto)
    SELECT u, p, max(id), sum(n), 0 FROM (
        SELECT from_id AS u, to_id AS p, id, 0 AS n FROM messages
        UNION ALL
        SELECT to_id, from_id, id, 1 FROM messages WHERE to_id <> from_id
    ) AS sides GROUP BY u, p;
";

/// The schema version this code writes.
pub fn latest_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Brings the database up to [`latest_version`]. Returns the version it
/// found, or an error for a version newer than this code knows.
pub fn migrate(client: &mut Client) -> Result<i32, SchemaError> {
    migrate_with(client, MIGRATIONS)
}

/// [`migrate`] with the steps given (so tests can add future ones).
pub fn migrate_with(client: &mut Client, steps: &[&str]) -> Result<i32, SchemaError> {
    let known = steps.len() as i32;
    let mut found = None;
    for (i, step) in steps.iter().enumerate() {
        let to = i as i32 + 1;
        let was = apply_step(client, step, to, known).map_err(|e| SchemaError::Step {
            to: to.into(),
            cause: e.to_string(),
        })?;
        found.get_or_insert(was);
    }
    let found = match found {
        Some(found) => found,
        None => version(client)?,
    };
    if found > known {
        return Err(SchemaError::TooNew {
            found: found.into(),
            known: known.into(),
        });
    }
    Ok(found)
}

/// The version recorded (0 for a database gotalk has never used).
pub fn version(client: &mut Client) -> Result<i32, SchemaError> {
    let row = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .map_err(|e| SchemaError::Database(e.to_string()))?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .map_err(|e| SchemaError::Database(e.to_string()))?;
    Ok(row.get(0))
}

/// Applies step `to` unless it is there already, in one transaction with
/// its row. Returns the version found before.
fn apply_step(
    client: &mut Client,
    step: &str,
    to: i32,
    known: i32,
) -> Result<i32, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer     PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    if found >= to || found > known {
        tx.commit()?;
        return Ok(found);
    }
    tx.batch_execute(step)?;
    tx.execute(
        "INSERT INTO schema_migrations (version) VALUES ($1)",
        &[&to],
    )?;
    tx.commit()?;
    log::info!("database schema upgraded to version {to}");
    Ok(found)
}
