//! The PostgreSQL writer's statements, prepared once per connection (and
//! again after a reconnect): each kind of write is one statement over
//! arrays (`UNNEST`), so a group costs a few round trips whatever its size.

use super::client_id_window::WindowStatements;
use super::custody;
use postgres::{Client, Statement};

/// The writer's statements, prepared once per connection.
pub struct Statements {
    pub(super) ensure_mailboxes: Statement,
    pub(super) lock_mailboxes: Statement,
    pub(super) insert_users: Statement,
    pub(super) take_ids: Statement,
    pub(super) insert_client_ids: Statement,
    pub(super) window: WindowStatements,
    pub(super) first_sends: Statement,
    pub(super) insert_messages: Statement,
    pub(super) forget_client_ids: Statement,
    pub(super) ack: Statement,
    pub(super) move_mailboxes: Statement,
    pub(super) password_hashes: Statement,
    pub(super) revoke_tokens: Statement,
    pub(super) forget_revoked: Statement,
    pub(super) void_tokens: Statement,
    pub(super) present_elsewhere: Statement,
    pub(super) live_nodes: Statement,
    pub(super) notify: Statement,
    pub(super) custody: custody::Statements,
    pub(super) history: super::history::Statements,
}

/// A node whose heartbeat is older than this is taken for gone: its
/// presence rows are ignored (and its row deleted by the other nodes).
pub const NODE_TIMEOUT_SECONDS: i32 = 6;

impl Statements {
    pub fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            ensure_mailboxes: client.prepare(
                "INSERT INTO mailboxes (user_id) SELECT unnest($1::bigint[]) \
                 ON CONFLICT (user_id) DO NOTHING",
            )?,
            lock_mailboxes: client.prepare(
                "SELECT user_id, count, bytes FROM mailboxes WHERE user_id = ANY($1::bigint[]) \
                 ORDER BY user_id FOR UPDATE",
            )?,
            insert_users: client.prepare(
                "INSERT INTO users (id, username, password_hash, created, identity, name_key) \
                 SELECT nextval('user_ids'), u.* FROM \
                 unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[]) AS u \
                 ON CONFLICT DO NOTHING RETURNING id, username",
            )?,
            take_ids: client
                .prepare("SELECT nextval('message_ids') FROM generate_series(1, $1::bigint)")?,
            // A row in the window (younger than a day, among its
            // sender's newest N) is a duplicate and stays; any other (not
            // deleted yet) no longer counts and is taken over.
            insert_client_ids: client.prepare(
                "INSERT INTO client_ids AS c (sender, client_id, message_id, ts, seq) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], \
                 $6::bigint[]) \
                 ON CONFLICT (sender, client_id) DO UPDATE \
                 SET message_id = excluded.message_id, ts = excluded.ts, seq = excluded.seq \
                 WHERE c.ts < $5::bigint OR c.seq < excluded.seq - $7::bigint \
                 RETURNING message_id",
            )?,
            window: WindowStatements::prepare(client)?,
            first_sends: client.prepare(
                "SELECT c.sender, c.client_id, c.message_id, c.ts FROM client_ids c \
                 JOIN unnest($1::bigint[], $2::text[]) AS k(sender, client_id) \
                 ON c.sender = k.sender AND c.client_id = k.client_id",
            )?,
            forget_client_ids: client.prepare(
                "DELETE FROM client_ids c USING unnest($1::bigint[], $2::text[], $3::bigint[]) \
                 AS k(sender, client_id, message_id) \
                 WHERE c.sender = k.sender AND c.client_id = k.client_id \
                 AND c.message_id = k.message_id",
            )?,
            insert_messages: client.prepare(
                "INSERT INTO messages (id, from_id, to_id, ts, content, client_id, cost) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], \
                 $4::bigint[], $5::text[], $6::text[], $7::bigint[])",
            )?,
            ack: client.prepare(
                "DELETE FROM messages m USING unnest($1::bigint[], $2::bigint[]) AS a(u, upto) \
                 WHERE m.to_id = a.u AND m.id <= a.upto RETURNING m.to_id, m.id, m.cost, m.from_id",
            )?,
            move_mailboxes: client.prepare(
                "UPDATE mailboxes m SET count = m.count + d.c, bytes = m.bytes + d.b \
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(u, c, b) \
                 WHERE m.user_id = d.u",
            )?,
            password_hashes: client.prepare(
                "UPDATE users u SET password_hash = p.h \
                 FROM unnest($1::bigint[], $2::text[]) AS p(id, h) WHERE u.id = p.id",
            )?,
            // Token ids use all 64 bits, stored as signed bigints.
            revoke_tokens: client.prepare(
                "INSERT INTO revoked_tokens AS r (token_id, expires, user_id) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) \
                 ON CONFLICT (token_id) DO UPDATE SET expires = excluded.expires",
            )?,
            // A `LOGOUT all` covers the account's single revocations.
            forget_revoked: client
                .prepare("DELETE FROM revoked_tokens WHERE user_id = ANY($1::bigint[])")?,
            // Never moves back: the latest of what is stored and asked.
            present_elsewhere: client.prepare(
                "SELECT p.node, p.user_id FROM presence p JOIN nodes n ON n.id = p.node \
                 WHERE p.user_id = ANY($1::bigint[]) AND p.node <> $2 \
                 AND n.heartbeat > now() - make_interval(secs => $3::int)",
            )?,
            live_nodes: client.prepare(
                "SELECT id FROM nodes WHERE id <> $1 \
                 AND heartbeat > now() - make_interval(secs => $2::int)",
            )?,
            notify: client.prepare(
                "SELECT count(pg_notify(c, p)) FROM unnest($1::text[], $2::text[]) AS x(c, p)",
            )?,
            void_tokens: client.prepare(
                "UPDATE users u SET tokens_valid_from = greatest(u.tokens_valid_from, v.f) \
                 FROM unnest($1::bigint[], $2::bigint[]) AS v(id, f) WHERE u.id = v.id",
            )?,
            custody: custody::Statements::prepare(client)?,
            history: super::history::Statements::prepare(client)?,
        })
    }
}
