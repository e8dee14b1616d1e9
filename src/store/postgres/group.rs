//! One group of batches as one PostgreSQL transaction, in a few round
//! trips whatever its size: each kind of write is one statement over
//! arrays (`UNNEST`), not one statement per row.
//!
//! The order inside the transaction is what keeps message ids safe for
//! ACK-up-to when several nodes write to one database:
//!
//! 1. the `mailboxes` rows of every receiver (and every user that ACKs)
//!    are created if missing and locked, in ascending user id order (one
//!    order for every writer, so two groups never wait for each other in
//!    a circle);
//! 2. only then are message ids taken from the `message_ids` sequence and
//!    given to the group's messages in batch order, ascending.
//!
//! A writer to a receiver therefore takes its ids while holding that
//! receiver's row, which it keeps until it commits: the next writer to the
//! same receiver gets the row, and so its ids, only after that commit. A
//! receiver's messages thus commit in id order, and no message can appear
//! below an id its receiver has already acknowledged. Writers to different
//! receivers do not wait for each other.
//!
//! Usernames are unique by the database: a REGISTER whose name is taken
//! (through another node) stores nothing and is reported, without failing
//! the rest of the group. `client_id`s are decided by the unique key on
//! (sender, `client_id`), as with SQLite.
//!
//! Other nodes are told within the transaction (see [`super::wakeup`]):
//! the nodes where a receiver of a stored message has a bound connection
//! (`presence`, of nodes that heartbeat) get a NOTIFY on their channel,
//! and every live node hears of ACKs that removed messages (a node that
//! sends to a user holds that user's mailbox figures too) and of revoked
//! tokens. PostgreSQL delivers a NOTIFY only when its transaction
//! commits, one per node and payload however many batches the group holds.
//!
//! Password-hash upgrades, revoked tokens (LOGOUT) and `tokens_valid_from`
//! moves (LOGOUT all) name accounts that are already stored, and are
//! written after the accounts of the group, each kind as one statement.

use super::client_id_window::{self, WindowStatements};
use super::custody;
use super::wakeup::{self, Packer};
use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::message::Message;
use crate::store::{Batch, Duplicate, MailboxCaps, MailboxFull, Over, Remote, Removed, WriteOp};
use crate::{MessageId, Millis, UserId};
use postgres::{Client, Statement};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use crate::store::group_commit::BatchOutcome;

/// The writer's statements, prepared once per connection.
pub struct Statements {
    ensure_mailboxes: Statement,
    lock_mailboxes: Statement,
    insert_users: Statement,
    take_ids: Statement,
    insert_client_ids: Statement,
    window: WindowStatements,
    first_sends: Statement,
    insert_messages: Statement,
    forget_client_ids: Statement,
    ack: Statement,
    move_mailboxes: Statement,
    password_hashes: Statement,
    revoke_tokens: Statement,
    forget_revoked: Statement,
    void_tokens: Statement,
    present_elsewhere: Statement,
    live_nodes: Statement,
    notify: Statement,
    custody: custody::Statements,
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
        })
    }
}

/// A message of the group and where it belongs.
struct Append<'g> {
    batch: usize,
    message: &'g Arc<Message>,
    client_id: Option<String>,
    /// The id the transaction gave it.
    id: MessageId,
    /// Whether it is stored (not a repeated `client_id`).
    stored: bool,
}

/// Writes `group` in one transaction, all or nothing, as of `now` (ms
/// since the epoch, for `client_id` expiry). Returns how many operations
/// it held and what each batch learned. A group without operations costs
/// nothing.
pub fn write(
    client: &mut Client,
    s: &Statements,
    group: &[Batch],
    now: Millis,
    node: &str,
    caps: MailboxCaps,
) -> Result<(usize, Vec<BatchOutcome>), postgres::Error> {
    let mut outcomes: Vec<BatchOutcome> = group.iter().map(|_| BatchOutcome::default()).collect();
    let writes: usize = group.iter().map(|b| b.ops.len()).sum();
    if writes == 0 {
        return Ok((0, outcomes));
    }
    let mut appends = Vec::new();
    let mut users = Vec::new();
    let mut acks = Vec::new();
    let mut expire = None;
    let mut tokens = TokenWrites::default();
    let mut broadcast = Vec::new();
    for (i, batch) in group.iter().enumerate() {
        for op in &batch.ops {
            match op {
                WriteOp::Append(message) => appends.push(Append {
                    batch: i,
                    message,
                    client_id: message.client_id(),
                    id: 0,
                    stored: true,
                }),
                WriteOp::CreateUser { .. } => users.push((i, op)),
                WriteOp::Ack { user, upto } => acks.push((i, *user, *upto)),
                WriteOp::Expire { before, limit } => expire = Some((i, *before, *limit)),
                other => {
                    tokens.add(other);
                    broadcast.extend(revocation(other));
                }
            }
        }
    }
    let mut tx = client.transaction()?;

    // 0. An expiry step's candidates, whose receivers are locked too.
    let candidates = match expire {
        Some((_, before, limit)) => custody::candidates(&mut tx, &s.custody, before, limit)?,
        None => Vec::new(),
    };

    // 1. Every mailbox row this group touches, locked in user id order;
    // then every sender's row, in sender id order.
    let mut locked: Vec<i64> = appends
        .iter()
        .map(|a| a.message.to_id as i64)
        .chain(acks.iter().map(|(_, user, _)| *user as i64))
        .chain(candidates.iter().map(|c| c.2))
        .collect();
    locked.sort_unstable();
    locked.dedup();
    let mut figures: HashMap<i64, (i64, i64)> = HashMap::new();
    if !locked.is_empty() {
        tx.execute(&s.ensure_mailboxes, &[&locked])?;
        for row in tx.query(&s.lock_mailboxes, &[&locked])? {
            figures.insert(row.get(0), (row.get(1), row.get(2)));
        }
    }
    let mut senders: Vec<i64> = appends.iter().map(|a| a.message.from_id as i64).collect();
    senders.extend(custody::ack_senders(&mut tx, &s.custody, &acks)?);
    senders.extend(candidates.iter().map(|c| c.1));
    let sent = custody::lock(&mut tx, &s.custody, senders)?;
    let mut sent_moved: HashMap<i64, i64> = HashMap::new();

    // 2. Accounts; a name already taken is reported, not fatal.
    if !users.is_empty() {
        create_users(&mut tx, s, &users, &mut outcomes)?;
    }
    tokens.write(&mut tx, s)?;

    // 3. Message ids, taken while the receivers' rows are held.
    let mut moved: HashMap<i64, (i64, i64)> = HashMap::new();
    if !appends.is_empty() {
        let rows = tx.query(&s.take_ids, &[&(appends.len() as i64)])?;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort_unstable();
        for (append, id) in appends.iter_mut().zip(ids) {
            append.id = id as MessageId;
        }
        let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS) as i64;
        let per_sender = group.first().map_or(0, |b| b.client_ids_per_sender);
        client_ids(&mut tx, s, &mut appends, cutoff, per_sender, &mut outcomes)?;
        let held = Held {
            mailboxes: &figures,
            senders: &sent,
        };
        refuse_over_caps(&mut tx, s, &mut appends, held, caps, &mut outcomes)?;
        insert_messages(&mut tx, s, &appends, &mut outcomes, &mut moved)?;
        for a in appends.iter().filter(|a| a.stored) {
            let cost = a.message.cost_with_id(a.id) as i64;
            *sent_moved.entry(a.message.from_id as i64).or_default() += cost;
        }
    }

    // 4. ACKs, each credited with what it removed; then the expiry step.
    if !acks.is_empty() {
        remove_acked(&mut tx, s, &acks, &mut outcomes, &mut moved)?;
    }
    if let Some((batch, ..)) = expire {
        let gone = custody::delete(&mut tx, &s.custody, &candidates)?;
        outcomes[batch].expired = custody::expired(&gone, &mut moved);
    }
    for r in outcomes
        .iter()
        .flat_map(|o| o.removed.iter().chain(&o.expired))
    {
        for &(sender, bytes) in &r.senders {
            *sent_moved.entry(sender as i64).or_default() -= bytes as i64;
        }
    }

    // 5. Wake-ups for the other nodes, sent at COMMIT: stored messages to
    // the nodes holding their receivers; ACKs and LOGOUTs to every node
    // (a node sending to a user keeps that mailbox's figures too).
    let events: Vec<Remote> = appends
        .iter()
        .filter(|a| a.stored)
        .map(|a| Remote::Stored {
            user: a.message.to_id,
            id: a.id,
            cost: a.message.cost_with_id(a.id),
        })
        .collect();
    broadcast.extend(
        outcomes
            .iter()
            .flat_map(|o| o.removed.iter().chain(&o.expired))
            .filter(|r| r.count > 0)
            .map(|r| Remote::Acked {
                user: r.user,
                upto: r.upto,
                count: r.count,
                bytes: r.bytes,
            }),
    );
    if !events.is_empty() || !broadcast.is_empty() {
        wake_others(&mut tx, s, node, &events, &broadcast)?;
    }

    // 6. The receivers' figures, in the rows already locked.
    moved.retain(|_, (c, b)| *c != 0 || *b != 0);
    if !moved.is_empty() {
        let mut users = Vec::with_capacity(moved.len());
        let mut counts = Vec::with_capacity(moved.len());
        let mut bytes = Vec::with_capacity(moved.len());
        for (user, (c, b)) in &moved {
            users.push(*user);
            counts.push(*c);
            bytes.push(*b);
        }
        tx.execute(&s.move_mailboxes, &[&users, &counts, &bytes])?;
    }
    custody::apply(&mut tx, &s.custody, &sent_moved)?;
    tx.commit()?;
    Ok((writes, outcomes))
}

/// What another node must hear of a LOGOUT written by `op`.
fn revocation(op: &WriteOp) -> Option<Remote> {
    match *op {
        WriteOp::RevokeToken {
            user,
            token,
            expires,
        } => Some(Remote::Revoked {
            user,
            token,
            expires,
        }),
        WriteOp::VoidTokens { user, from } => Some(Remote::Voided { user, from }),
        _ => None,
    }
}

/// The user an event is about.
fn user_of(event: &Remote) -> u64 {
    match *event {
        Remote::Stored { user, .. }
        | Remote::Acked { user, .. }
        | Remote::Revoked { user, .. }
        | Remote::Voided { user, .. } => user,
        Remote::Resync => 0,
    }
}

/// NOTIFYs each other node of what concerns it: message events for the
/// users it holds, and `broadcast` (ACKs, LOGOUTs) to every live node. Sent by
/// PostgreSQL when the transaction commits, never if it rolls back.
fn wake_others(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    node: &str,
    events: &[Remote],
    broadcast: &[Remote],
) -> Result<(), postgres::Error> {
    let mut packers: HashMap<String, Packer> = HashMap::new();
    if !events.is_empty() {
        let mut users: Vec<i64> = events.iter().map(|e| user_of(e) as i64).collect();
        users.sort_unstable();
        users.dedup();
        let rows = tx.query(
            &s.present_elsewhere,
            &[&users, &node, &NODE_TIMEOUT_SECONDS],
        )?;
        let mut nodes_of: HashMap<u64, Vec<String>> = HashMap::new();
        for row in &rows {
            let user: i64 = row.get(1);
            nodes_of.entry(user as u64).or_default().push(row.get(0));
        }
        for event in events {
            for other in nodes_of.get(&user_of(event)).into_iter().flatten() {
                packers.entry(other.clone()).or_default().add(event);
            }
        }
    }
    if !broadcast.is_empty() {
        for row in tx.query(&s.live_nodes, &[&node, &NODE_TIMEOUT_SECONDS])? {
            let packer = packers.entry(row.get(0)).or_default();
            for event in broadcast {
                packer.add(event);
            }
        }
    }
    if packers.is_empty() {
        return Ok(());
    }
    let (mut channels, mut payloads) = (Vec::new(), Vec::new());
    for (other, packer) in packers {
        let channel = wakeup::channel(&other);
        for payload in packer.finish() {
            channels.push(channel.clone());
            payloads.push(payload);
        }
    }
    tx.query_one(&s.notify, &[&channels, &payloads])?;
    Ok(())
}

/// The group's writes to stored accounts and revoked tokens, in batch
/// order (a later one for the same key wins, as it would run later).
#[derive(Default)]
struct TokenWrites {
    hash_ids: Vec<i64>,
    hashes: Vec<Arc<str>>,
    revoked: Vec<i64>,
    /// Each revoked token's expiry and account.
    expires: Vec<(i64, i64)>,
    void_users: Vec<i64>,
    void_from: Vec<i64>,
}

impl TokenWrites {
    fn add(&mut self, op: &WriteOp) {
        match op {
            WriteOp::SetPasswordHash { id, password_hash } => {
                self.hash_ids.push(*id as i64);
                self.hashes.push(password_hash.clone());
            }
            WriteOp::RevokeToken {
                token,
                expires,
                user,
            } => {
                self.revoked.push(*token as i64);
                self.expires.push((*expires as i64, *user as i64));
            }
            WriteOp::VoidTokens { user, from } => {
                self.void_users.push(*user as i64);
                self.void_from.push(*from as i64);
            }
            WriteOp::CreateUser { .. }
            | WriteOp::Append(_)
            | WriteOp::Ack { .. }
            | WriteOp::Expire { .. } => {}
        }
    }

    fn write(
        mut self,
        tx: &mut postgres::Transaction<'_>,
        s: &Statements,
    ) -> Result<(), postgres::Error> {
        // One row per key in a statement: the last write of each wins.
        last_per_key(&mut self.hash_ids, &mut self.hashes);
        last_per_key(&mut self.revoked, &mut self.expires);
        // `tokens_valid_from` only moves forward: the latest per account.
        let mut latest: HashMap<i64, i64> = HashMap::new();
        for (u, f) in self.void_users.drain(..).zip(self.void_from.drain(..)) {
            let at = latest.entry(u).or_insert(f);
            *at = (*at).max(f);
        }
        (self.void_users, self.void_from) = latest.into_iter().unzip();
        if !self.hash_ids.is_empty() {
            let hashes: Vec<&str> = self.hashes.iter().map(|h| &**h).collect();
            tx.execute(&s.password_hashes, &[&self.hash_ids, &hashes])?;
        }
        // Voids first: a token revoked after a `LOGOUT all` of the same
        // group may be newer than its moment, and must stay.
        if !self.void_users.is_empty() {
            tx.execute(&s.void_tokens, &[&self.void_users, &self.void_from])?;
            tx.execute(&s.forget_revoked, &[&self.void_users])?;
        }
        if !self.revoked.is_empty() {
            let (expires, users): (Vec<i64>, Vec<i64>) = self.expires.iter().copied().unzip();
            tx.execute(&s.revoke_tokens, &[&self.revoked, &expires, &users])?;
        }
        Ok(())
    }
}

/// Keeps the last value given for each key (in order of those last
/// values): an UPDATE or upsert touches a row once per statement.
fn last_per_key<V>(keys: &mut Vec<i64>, values: &mut Vec<V>) {
    let mut seen = HashSet::new();
    let mut kept = Vec::with_capacity(keys.len());
    for (k, v) in keys.drain(..).zip(values.drain(..)).rev() {
        if seen.insert(k) {
            kept.push((k, v));
        }
    }
    for (k, v) in kept.into_iter().rev() {
        keys.push(k);
        values.push(v);
    }
}

fn create_users(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    users: &[(usize, &WriteOp)],
    outcomes: &mut [BatchOutcome],
) -> Result<(), postgres::Error> {
    let mut names = Vec::with_capacity(users.len());
    let mut hashes = Vec::with_capacity(users.len());
    let mut created = Vec::with_capacity(users.len());
    let mut identities = Vec::with_capacity(users.len());
    // The unique folded name refuses a look-alike registered through
    // another node, like the same name.
    let mut keys = Vec::with_capacity(users.len());
    for (_, op) in users {
        if let WriteOp::CreateUser {
            username,
            password_hash,
            created: at,
            identity,
            ..
        } = op
        {
            names.push(&**username);
            hashes.push(&**password_hash);
            created.push(*at as i64);
            identities.push(identity.to_be_bytes().to_vec());
            keys.push(crate::username::fold(username));
        }
    }
    let rows = tx.query(
        &s.insert_users,
        &[&names, &hashes, &created, &identities, &keys],
    )?;
    let made: HashMap<String, i64> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    for (batch, op) in users {
        if let WriteOp::CreateUser { id, username, .. } = op {
            let assigned = &mut outcomes[*batch].assigned;
            match made.get(&**username) {
                Some(stored) => assigned.users.push((*id, *stored as UserId)),
                None => assigned.taken_names.push(*id),
            }
        }
    }
    Ok(())
}

/// Records the group's `client_id`s; a SEND whose `client_id` its sender
/// used within the day (through any node, or earlier in this group) is
/// marked not stored, and its batch learns the first message's id.
fn client_ids(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    appends: &mut [Append<'_>],
    cutoff: i64,
    per_sender: usize,
    outcomes: &mut [BatchOutcome],
) -> Result<(), postgres::Error> {
    // A key twice in one statement is an error in PostgreSQL: the second
    // use inside the group is a duplicate of the first.
    let mut seen: HashMap<(UserId, &str), usize> = HashMap::new();
    let mut inside = Vec::new();
    let (mut senders, mut cids, mut ids, mut ts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, a) in appends.iter().enumerate() {
        let Some(cid) = a.client_id.as_deref() else {
            continue;
        };
        if let Some(&first) = seen.get(&(a.message.from_id, cid)) {
            inside.push((i, first));
            continue;
        }
        seen.insert((a.message.from_id, cid), i);
        senders.push(a.message.from_id as i64);
        cids.push(cid);
        ids.push(a.id as i64);
        ts.push(a.message.ts as i64);
    }
    if senders.is_empty() {
        return Ok(());
    }
    let seqs = client_id_window::number(tx, &s.window, &senders)?;
    let window = client_id_window::window(per_sender);
    let rows = tx.query(
        &s.insert_client_ids,
        &[&senders, &cids, &ids, &ts, &cutoff, &seqs, &window],
    )?;
    let fresh: HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    let numbered: Vec<(UserId, i64)> = (0..ids.len())
        .filter(|&i| fresh.contains(&ids[i]))
        .map(|i| (senders[i] as UserId, seqs[i]))
        .collect();
    client_id_window::trim(tx, &s.window, &numbered, per_sender)?;
    let inside_at: HashSet<usize> = inside.iter().map(|p| p.0).collect();
    let mut refused: HashMap<(i64, &str), usize> = HashMap::new();
    for (i, a) in appends.iter().enumerate() {
        if let Some(cid) = a.client_id.as_deref() {
            if !fresh.contains(&(a.id as i64)) && !inside_at.contains(&i) {
                refused.insert((a.message.from_id as i64, cid), i);
            }
        }
    }
    let mut firsts: HashMap<usize, (MessageId, Millis)> = HashMap::new();
    if !refused.is_empty() {
        let senders: Vec<i64> = refused.keys().map(|k| k.0).collect();
        let cids: Vec<&str> = refused.keys().map(|k| k.1).collect();
        for row in tx.query(&s.first_sends, &[&senders, &cids])? {
            let sender: i64 = row.get(0);
            let cid: &str = row.get(1);
            if let Some(&i) = refused.get(&(sender, cid)) {
                let (id, ts): (i64, i64) = (row.get(2), row.get(3));
                firsts.insert(i, (id as MessageId, ts as Millis));
            }
        }
    }
    for (i, first) in inside {
        let f = &appends[first];
        let known = firsts.get(&first).copied();
        firsts.insert(i, known.unwrap_or((f.id, f.message.ts)));
    }
    let mut firsts: Vec<(usize, MessageId, Millis)> = firsts
        .into_iter()
        .map(|(i, (id, ts))| (i, id, ts))
        .collect();
    firsts.sort_unstable_by_key(|f| f.0);
    for (i, first_id, first_ts) in firsts {
        let a = &mut appends[i];
        a.stored = false;
        outcomes[a.batch].duplicates.push(Duplicate {
            message_id: a.message.id,
            first_id,
            first_ts,
        });
    }
    Ok(())
}

/// Refuses the messages that would take their receiver's mailbox past a
/// cap, counted as the database holds it (the rows are locked, so no other
/// node's transaction can add to it meanwhile), in batch order. A refused
/// message is not stored and its `client_id` is given back, so a retry is
/// a new SEND.
fn refuse_over_caps(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    appends: &mut [Append<'_>],
    figures: Held<'_>,
    caps: MailboxCaps,
    outcomes: &mut [BatchOutcome],
) -> Result<(), postgres::Error> {
    let mut held: HashMap<i64, (usize, usize)> = HashMap::new();
    let mut sent: HashMap<i64, usize> = HashMap::new();
    let (mut senders, mut cids, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for a in appends.iter_mut().filter(|a| a.stored) {
        let to = a.message.to_id as i64;
        let (count, bytes) = *held.entry(to).or_insert_with(|| {
            let (c, b) = figures.mailboxes.get(&to).copied().unwrap_or((0, 0));
            (c.max(0) as usize, b.max(0) as usize)
        });
        let from = a.message.from_id as i64;
        let from_held = *sent
            .entry(from)
            .or_insert_with(|| figures.senders.get(&from).copied().unwrap_or(0).max(0) as usize);
        let cost = a.message.cost_with_id(a.id);
        if let Err(over) = caps.fits(count, bytes, from_held, cost) {
            a.stored = false;
            let by_sender = over == Over::Sender;
            outcomes[a.batch].assigned.full.push(MailboxFull {
                message: a.message.id,
                held: count,
                held_bytes: if by_sender { from_held } else { bytes },
                by_bytes: over == Over::Bytes,
                by_sender,
            });
            if let Some(cid) = a.client_id.as_deref() {
                senders.push(a.message.from_id as i64);
                cids.push(cid);
                ids.push(a.id as i64);
            }
            continue;
        }
        held.insert(to, (count + 1, bytes + cost));
        sent.insert(from, from_held + cost);
    }
    if !senders.is_empty() {
        tx.execute(&s.forget_client_ids, &[&senders, &cids, &ids])?;
    }
    Ok(())
}

/// The figures the group's rows held when locked: each receiver's
/// (count, bytes) and each sender's bytes.
#[derive(Clone, Copy)]
struct Held<'a> {
    mailboxes: &'a HashMap<i64, (i64, i64)>,
    senders: &'a HashMap<i64, i64>,
}

fn insert_messages(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    appends: &[Append<'_>],
    outcomes: &mut [BatchOutcome],
    moved: &mut HashMap<i64, (i64, i64)>,
) -> Result<(), postgres::Error> {
    let stored = appends.iter().filter(|a| a.stored).count();
    if stored == 0 {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(stored);
    let mut from = Vec::with_capacity(stored);
    let mut to = Vec::with_capacity(stored);
    let mut ts = Vec::with_capacity(stored);
    let mut contents = Vec::with_capacity(stored);
    let mut cids: Vec<Option<&str>> = Vec::with_capacity(stored);
    let mut costs = Vec::with_capacity(stored);
    for a in appends.iter().filter(|a| a.stored) {
        let m = a.message;
        let cost = m.cost_with_id(a.id) as i64;
        ids.push(a.id as i64);
        from.push(m.from_id as i64);
        to.push(m.to_id as i64);
        ts.push(m.ts as i64);
        contents.push(m.content());
        cids.push(a.client_id.as_deref());
        costs.push(cost);
        let entry = moved.entry(m.to_id as i64).or_default();
        entry.0 += 1;
        entry.1 += cost;
        outcomes[a.batch].assigned.messages.push((m.id, a.id));
    }
    tx.execute(
        &s.insert_messages,
        &[&ids, &from, &to, &ts, &contents, &cids, &costs],
    )?;
    Ok(())
}

fn remove_acked(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    acks: &[(usize, UserId, MessageId)],
    outcomes: &mut [BatchOutcome],
    moved: &mut HashMap<i64, (i64, i64)>,
) -> Result<(), postgres::Error> {
    // One row per user with the highest mark; each removed message is then
    // credited to the first ACK of its user, in order, that covers it.
    let mut highest: HashMap<UserId, MessageId> = HashMap::new();
    for (_, user, upto) in acks {
        let h = highest.entry(*user).or_default();
        *h = (*h).max(*upto);
    }
    let users: Vec<i64> = highest.keys().map(|u| *u as i64).collect();
    let uptos: Vec<i64> = highest
        .values()
        .map(|u| (*u).min(i64::MAX as u64) as i64)
        .collect();
    let rows = tx.query(&s.ack, &[&users, &uptos])?;
    let mut removed: Vec<Removed> = acks
        .iter()
        .map(|(_, user, upto)| Removed {
            user: *user,
            upto: *upto,
            count: 0,
            bytes: 0,
            senders: Vec::new(),
        })
        .collect();
    let mut by_user: HashMap<UserId, Vec<usize>> = HashMap::new();
    for (i, r) in removed.iter().enumerate() {
        by_user.entry(r.user).or_default().push(i);
    }
    for row in rows {
        let user = row.get::<_, i64>(0) as UserId;
        let id = row.get::<_, i64>(1) as MessageId;
        let cost = row.get::<_, i64>(2).max(0);
        let covering = by_user
            .get(&user)
            .and_then(|at| at.iter().find(|&&i| removed[i].upto >= id));
        if let Some(&i) = covering {
            let sender = row.get::<_, i64>(3) as UserId;
            let r = &mut removed[i];
            r.count += 1;
            r.bytes += cost as usize;
            custody::credit(&mut r.senders, sender, cost as usize);
        }
        let entry = moved.entry(user as i64).or_default();
        entry.0 -= 1;
        entry.1 -= cost;
    }
    for ((batch, _, _), r) in acks.iter().zip(removed) {
        outcomes[*batch].removed.push(r);
    }
    Ok(())
}
