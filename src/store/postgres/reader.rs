//! The PostgreSQL store's reading thread: accounts, mailbox figures and
//! mailbox pages the core asks for on demand, on a connection of its own.
//! Each statement runs in its own snapshot (READ COMMITTED), so a read the
//! core submits after learning of a commit sees that commit. While the
//! database is unreachable, reads are answered `unavailable` at once and
//! the [`Link`] reconnects with backoff.

use super::link::{Link, Trouble};
use crate::store::read_loop::ReadBackend;
use crate::store::{ReadAnswer, ReadOp, StoreError, StoredMessage, StoredUser};
use postgres::{Client, Row, Statement};
use std::time::{Duration, Instant};

/// The reader's statements, prepared once per connection.
struct Statements {
    user_by_id: Statement,
    user_by_name: Statement,
    mailbox: Statement,
    page: Statement,
    history: super::history::ReadStatements,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        const USER: &str =
            "SELECT id, username, password_hash, identity, tokens_valid_from FROM users";
        Ok(Statements {
            user_by_id: client.prepare(&format!("{USER} WHERE id = $1"))?,
            // The exact name wins; else the account holding the folded form.
            user_by_name: client.prepare(&format!(
                "{USER} WHERE username = $1 OR name_key = $2 \
                 ORDER BY (username = $1) DESC LIMIT 1"
            ))?,
            mailbox: client.prepare("SELECT count, bytes FROM mailboxes WHERE user_id = $1")?,
            page: client.prepare(
                "SELECT m.id, m.from_id, m.to_id, m.ts, m.content, m.client_id, m.cost, \
                        f.username, t.username \
                 FROM messages m JOIN users f ON f.id = m.from_id JOIN users t ON t.id = m.to_id \
                 WHERE m.to_id = $1 AND m.id > $2 ORDER BY m.id LIMIT $3",
            )?,
            history: super::history::ReadStatements::prepare(client)?,
        })
    }
}

/// The PostgreSQL side of the reading thread ([`crate::store::read_loop`]).
pub struct PgReader {
    link: Link,
    statements: Option<(u64, Statements)>,
}

impl PgReader {
    pub fn new(link: Link) -> PgReader {
        PgReader {
            link,
            statements: None,
        }
    }
}

impl ReadBackend for PgReader {
    fn wait(&self) -> Option<Duration> {
        let wait = self
            .link
            .retry_at()
            .map_or(Duration::from_secs(3600), |at| {
                at.saturating_duration_since(Instant::now())
            });
        Some(wait)
    }

    fn idle(&mut self) {
        self.link.reconnect_if_due(Instant::now());
    }

    fn answer(&mut self, op: &ReadOp) -> Result<ReadAnswer, StoreError> {
        let generation = self.link.generation();
        let client = self.link.client()?;
        let statements = match self.statements.take() {
            Some((g, s)) if g == generation => Ok(s),
            _ => Statements::prepare(client),
        };
        let result = statements.and_then(|s| {
            let answer = answer(client, &s, op);
            self.statements = Some((generation, s));
            answer
        });
        result.map_err(|e| match self.link.failed(&e) {
            Trouble::Lost(cause) => StoreError::Unavailable(cause),
            Trouble::Retry => StoreError::Database(e.to_string()),
            Trouble::Failed(err) => {
                log::error!("store: reading {op:?} failed: {err}");
                err
            }
        })
    }
}

fn answer(client: &mut Client, s: &Statements, op: &ReadOp) -> Result<ReadAnswer, postgres::Error> {
    Ok(match op {
        ReadOp::UserById(id) => {
            let row = client.query_opt(&s.user_by_id, &[&(*id as i64)])?;
            ReadAnswer::User(row.as_ref().map(user))
        }
        ReadOp::UserByName(name) => {
            let key = crate::username::fold(name);
            let row = client.query_opt(&s.user_by_name, &[&&**name, &key])?;
            ReadAnswer::User(row.as_ref().map(user))
        }
        ReadOp::Mailbox(user) => {
            let (count, bytes) = figures(client, s, *user)?;
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
            let (count, bytes) = figures(client, s, *user)?;
            ReadAnswer::Mailbox {
                count,
                bytes,
                head: page(client, s, *user, 0, *limit, *max_bytes)?,
            }
        }
        ReadOp::Page {
            user,
            after,
            limit,
            max_bytes,
        } => ReadAnswer::Page(page(client, s, *user, *after, *limit, *max_bytes)?),
        ReadOp::History {
            user,
            with,
            before,
            limit,
            max_bytes,
        } => super::history::history(
            client,
            &s.history,
            (*user, *with),
            *before,
            *limit,
            *max_bytes,
        )?,
        ReadOp::Conversations {
            user,
            before,
            limit,
        } => super::history::conversations(client, &s.history, *user, *before, *limit)?,
    })
}

/// A mailbox's count and size, from its `mailboxes` row.
fn figures(
    client: &mut Client,
    s: &Statements,
    user: u64,
) -> Result<(usize, usize), postgres::Error> {
    let row = client.query_opt(&s.mailbox, &[&(user as i64)])?;
    let (count, bytes) = row.map_or((0, 0), |r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
    Ok((count.max(0) as usize, bytes.max(0) as usize))
}

/// `user`'s oldest messages above `after`, in id order: at most `limit`,
/// stopping before `max_bytes` (but at least one).
fn page(
    client: &mut Client,
    s: &Statements,
    user: u64,
    after: u64,
    limit: usize,
    max_bytes: usize,
) -> Result<Vec<StoredMessage>, postgres::Error> {
    let rows = client.query(
        &s.page,
        &[
            &(user as i64),
            &(after.min(i64::MAX as u64) as i64),
            &(limit.min(i64::MAX as usize) as i64),
        ],
    )?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for r in rows {
        let cost: i64 = r.get(6);
        bytes = bytes.saturating_add(cost.max(0) as usize + 1);
        if bytes > max_bytes && !out.is_empty() {
            break;
        }
        out.push(StoredMessage {
            id: r.get::<_, i64>(0) as u64,
            from_id: r.get::<_, i64>(1) as u64,
            to_id: r.get::<_, i64>(2) as u64,
            ts: r.get::<_, i64>(3) as u64,
            content: r.get(4),
            client_id: r.get(5),
            from: r.get(7),
            to: r.get(8),
        });
    }
    Ok(out)
}

/// An account from a row of `id, username, password_hash, identity,
/// tokens_valid_from`; an
/// identity that is not 16 bytes (a damaged row) reads as zero, which no
/// token carries.
fn user(r: &Row) -> StoredUser {
    let identity: &[u8] = r.get(3);
    let identity: [u8; 16] = identity.try_into().unwrap_or_default();
    StoredUser {
        id: r.get::<_, i64>(0) as u64,
        identity: u128::from_be_bytes(identity),
        username: r.get(1),
        password_hash: r.get(2),
        tokens_valid_from: r.get::<_, i64>(4).max(0) as u64,
    }
}
