//! The command core: accounts, tokens, mailboxes, delivery, acknowledgements
//! and long-polls, independent of any transport. Input is a [`Call`] plus
//! the current time; output is a reply now, or later through the
//! [`Outbox`], plus effects: password jobs, pushes, and writes that the
//! server hands to the store once per loop turn. The core never touches
//! sockets, JSON, HTTP, SQLite or the clock.
//!
//! [`Core`] is a thin dispatcher over owners, each a struct that keeps its
//! own state and invariants and is unit-tested alone:
//!
//! | owner | file | keeps |
//! | --- | --- | --- |
//! | `Sessions` | `sessions/` | line connections, bindings and their expiry, who gets pushes, revoked tokens (`sessions/revocations.rs`) |
//! | `Accounts` | `accounts.rs` | the account cache, names being registered, pins |
//! | `Logins` | `logins/` | the login throttle (`logins/login_throttle.rs`), the password queue (`logins/password_queue.rs`) and the requests waiting on it |
//! | `Mailboxes` | `mailbox.rs`, `mailbox/` | every mailbox, the per-sender figures (`mailbox/senders.rs`), the age index for expiry |
//! | `ClientIds` | `client_ids.rs` | the `client_id`s each sender used |
//! | `Expiry` | `expiry.rs` | `--message-ttl`'s steps |
//! | `Waiters` | `waiters.rs` | long-polls |
//! | `Reads` | `reads.rs` | reads in flight and the calls parked on them |
//! | `Writes` | `writes.rs` | this turn's batch and the requests waiting on a commit |
//! | `Cluster` | `cluster.rs` | presence and push marks when nodes share PostgreSQL |
//!
//! What a request does is in `commands/` (one file per family). What one
//! event means for several owners is carried out in the glue files:
//! `binding.rs` (a connection bound or unbound), `answers.rs` (a read
//! answered), `commit.rs` (a password job or a batch done), `remote.rs`
//! (another node's change), `expiry.rs` (a step of `--message-ttl`).

mod accounts;
mod answers;
mod assigned;
mod binding;
mod client_ids;
mod cluster;
mod commands;
mod commit;
#[cfg(test)]
mod commit_failure_tests;
mod conn_table;
pub mod counters;
mod expiry;
pub mod help;
pub mod history;
mod logins;
mod mailbox;
mod outbox;
mod passwords;
mod poll_tokens;
mod reads;
mod recent_to;
mod remote;
mod sessions;
mod settings;
pub mod shares;
pub mod stats;
#[cfg(test)]
mod tests;
mod token_memo;
mod waiters;
mod writes;

pub use accounts::check_username;
pub use logins::login_throttle::ThrottleSettings;
pub use outbox::{Handled, Outbox, Ticket};
pub use sessions::{Binding, SessionEvent};
pub use settings::CoreSettings;

use crate::log_limit::LogLimit;
use crate::message::{Message, Parties};
use crate::request::Reply;
use crate::store::{Batch, Snapshot};
use crate::token::TokenKey;
use crate::{ConnId, MessageId, Millis};
// The core's tests name users through `super::*`.
#[cfg(test)]
use crate::UserId;
use accounts::{Account, Accounts};
use client_ids::{ClientIds, FirstSend};
use logins::password_queue::QueueLimits;
use logins::{HashWait, Logins};
use mailbox::Mailboxes;
use reads::Reads;
use sessions::{Revoke, Sessions};
use std::net::IpAddr;
use std::sync::Arc;
use waiters::Waiters;
use writes::{AfterCommit, Writes};

/// How often `client_id`s older than a day are forgotten (in steps of
/// [`client_ids::PRUNE_BATCH`], one per millisecond while more are due).
const PRUNE_EVERY_MS: Millis = 60_000;

/// The dispatcher: it holds the owners and runs each request through
/// them. Each owner keeps its own state and invariants; what one change
/// means for several owners is carried out here and in the glue files
/// (`binding.rs`, `answers.rs`, `commit.rs`, `remote.rs`, `expiry.rs`).
pub struct Core {
    settings: CoreSettings,
    /// Seals and opens tokens.
    key: TokenKey,
    /// Tokens opened lately (`token_memo.rs`): a client sends the same
    /// one with each request.
    token_memo: std::cell::RefCell<token_memo::TokenMemo>,
    /// The account cache, names being registered, accounts pinned.
    accounts: Accounts,
    /// Throttles, password jobs, failed logins.
    logins: Logins,
    /// Line connections, their bindings, who gets pushes, revoked tokens.
    sessions: Sessions,
    /// Every user's mailbox, and each sender's bytes in custody.
    mailboxes: Mailboxes,
    /// The `client_id`s each sender used (a repeated SEND is answered
    /// with the first one's id).
    client_ids: ClientIds,
    /// `--message-ttl`: what expires next, and when the next step is due.
    expiry: expiry::Expiry,
    /// Long-polls.
    waiters: Waiters,
    /// Reads in flight and the calls parked on them.
    reads: Reads,
    /// This turn's writes, and the requests waiting on a commit.
    writes: Writes,
    /// Other nodes on the same store, if any.
    cluster: cluster::Cluster,
    /// Conversations (kept here with `--memory`, else by the store).
    history: history::History,
    /// The highest message id issued (or stored) so far.
    last_message_id: MessageId,
    /// When `client_id`s and revoked tokens are next pruned a step.
    next_prune: Millis,
    /// What the last stats line said, to log only changes.
    last_stats: stats::CoreStats,
    /// What the core has done, for metrics.
    pub counters: counters::Counters,
    /// Warnings for refusals at a limit, by its flag, each rate-limited.
    limit_warnings: std::collections::BTreeMap<String, LogLimit>,
    /// Send and fan-out rates per account.
    shares: shares::Shares,
    /// Whom each connection last sent to by name.
    recent_to: recent_to::RecentTo,
    /// Admin requests (by connection) whose account is being read afresh
    /// (`commands/admin.rs`).
    admin_fresh: std::collections::HashSet<ConnId>,
}

/// How often a refusal at one limit, or a failed login, is logged at most.
const LIMIT_WARNING_EVERY_MS: Millis = 10_000;

impl Core {
    pub fn new(settings: CoreSettings, key: TokenKey, dummy_hash: Arc<str>) -> Core {
        let limits = QueueLimits {
            total: settings.hash_queue,
            per_address: settings.hash_queue_per_address,
            workers: settings.hash_workers,
        };
        let logins = Logins::new(
            limits,
            settings.throttle,
            dummy_hash,
            LIMIT_WARNING_EVERY_MS,
        );
        let (accounts, mut mailboxes) = if settings.on_demand {
            let window = mailbox::Window {
                messages: settings.mailbox_window,
                bytes: settings.mailbox_window_bytes,
            };
            (
                Accounts::new(settings.account_cache),
                Mailboxes::new(true, window, settings.account_cache),
            )
        } else {
            (Accounts::default(), Mailboxes::default())
        };
        if settings.cluster {
            mailboxes.set_shared();
        }
        mailboxes.rank_senders_from(settings.pending_bytes_per_sender / 8);
        if settings.message_ttl_ms.is_some() {
            mailboxes.track_age();
        }
        Core {
            token_memo: Default::default(),
            cluster: cluster::Cluster::new(settings.cluster),
            history: history::History::new(settings.history, !settings.on_demand),
            key,
            accounts,
            mailboxes,
            reads: Reads::new(settings.mailbox_window, settings.mailbox_window_bytes),
            waiters: Waiters::default(),
            client_ids: ClientIds::new(settings.client_ids_per_sender),
            sessions: Sessions::default(),
            logins,
            writes: Writes::default(),
            last_message_id: 0,
            next_prune: 0,
            last_stats: stats::CoreStats::default(),
            counters: counters::Counters::default(),
            limit_warnings: std::collections::BTreeMap::new(),
            shares: shares::Shares::new(&settings.shares, settings.throttle.entries),
            recent_to: recent_to::RecentTo::default(),
            expiry: expiry::Expiry::default(),
            admin_fresh: std::collections::HashSet::new(),
            settings,
        }
    }

    /// The token keys read again (SIGHUP): new tokens are sealed with its
    /// current key; its older keys open the tokens they sealed.
    pub fn set_token_key(&mut self, key: TokenKey) {
        self.key = key;
        self.token_memo.get_mut().clear();
    }

    /// Loads the state saved by earlier runs.
    pub fn restore(&mut self, snapshot: Snapshot) {
        for user in snapshot.users {
            self.accounts.insert(Account {
                id: user.id,
                identity: user.identity,
                username: user.username.into(),
                password_hash: user.password_hash.into(),
                tokens_valid_from: user.tokens_valid_from,
            });
        }
        for m in snapshot.messages {
            let (Some(from), Some(to)) = (self.accounts.get(m.from_id), self.accounts.get(m.to_id))
            else {
                log::warn!("message {} names an unknown user; skipped", m.id);
                continue;
            };
            let parties = Parties {
                from_id: from.id,
                from: &from.username,
                to_id: to.id,
                to: &to.username,
            };
            let message = Message::new(m.id, &parties, m.ts, &m.content, m.client_id.as_deref());
            self.last_message_id = self.last_message_id.max(m.id);
            self.mailboxes.deliver(message);
        }
        // In the order they were first used, so each sender keeps its newest.
        let mut client_ids = snapshot.client_ids;
        client_ids.sort_by_key(|c| (c.ts, c.message_id));
        for c in client_ids {
            let first = FirstSend {
                id: c.message_id,
                ts: c.ts,
                committed: true,
            };
            self.client_ids.insert(c.sender, &c.client_id, first);
        }
        self.last_message_id = self.last_message_id.max(snapshot.last_message_id);
        self.accounts.set_last_id(snapshot.last_user_id);
        self.mailboxes
            .add_totals(snapshot.pending_messages, snapshot.pending_bytes);
        for (sender, bytes) in snapshot.sender_bytes {
            self.mailboxes.add_sender_bytes(sender, bytes);
        }
        for (token, expires, user) in snapshot.revoked_tokens {
            self.sessions.revocations.revoke(token, expires, user);
        }
        for (name, holder) in &snapshot.name_clashes {
            log::warn!(
                "username clash: '{name}' and '{holder}' differ only in case or separators \
                 (registered before names were folded); both accounts are kept: '{name}' \
                 logs in by its exact name only, other spellings reach '{holder}'"
            );
        }
        self.accounts.set_unfolded(
            snapshot
                .name_clashes
                .into_iter()
                .map(|(name, _)| name.into_boxed_str()),
        );
        log::info!(
            "started with {} unacknowledged messages ({} in RAM)",
            self.mailboxes.total(),
            self.mailboxes.resident()
        );
    }

    /// A connection (line or HTTP) was accepted from `peer`.
    pub fn open_connection(&mut self, conn: ConnId, peer: IpAddr) {
        self.logins.open(conn, peer);
    }

    /// `conn`'s client is `peer` from now on: a trusted proxy named it
    /// (PROXY header, or `X-Forwarded-For` for one HTTP request). The
    /// login throttle and the password queue count it there.
    pub fn set_address(&mut self, conn: ConnId, peer: IpAddr) {
        self.logins.set_address(conn, peer);
    }

    /// Counts a reply, and warns (at most every few seconds per limit)
    /// when it refuses at a limit. Replies given at once are counted by
    /// [`Core::handle`]; the server counts those that come later (through
    /// the [`Outbox`]).
    #[inline]
    pub fn count_reply(&mut self, ticket: Ticket, reply: &Reply, now: Millis) {
        if let Some(flag) = self.counters.reply(ticket.kind, reply) {
            self.warn_limit(flag, reply, now);
        }
    }

    #[cold]
    fn warn_limit(&mut self, flag: &str, reply: &Reply, now: Millis) {
        {
            self.limit_warnings
                .entry(flag.to_string())
                .or_insert_with(|| LogLimit::new(LIMIT_WARNING_EVERY_MS))
                .warn(now, || match reply {
                    Reply::Error(failure) => format!("limit reached: {}", failure.message),
                    _ => String::new(),
                });
        }
    }

    /// Unacknowledged messages held in all mailboxes.
    pub fn pending_messages(&self) -> usize {
        self.mailboxes.total()
    }

    /// Unacknowledged messages held in RAM.
    pub fn resident_messages(&self) -> usize {
        self.mailboxes.resident()
    }

    /// Time-driven work: long-polls that ran out, bound connections whose
    /// token expired, forgetting old `client_id`s and revoked tokens.
    pub fn tick(&mut self, now: Millis, out: &mut Outbox) {
        for waiter in self.waiters.expire(now) {
            out.replies
                .push((waiter.ticket, Self::due_reply(&waiter, now)));
        }
        self.expire_bindings(now, out);
        if now >= self.next_prune {
            // A bounded step each time; soon again while more are due.
            let more_revoked = self.sessions.revocations.prune(now);
            if self.client_ids.prune(now) || more_revoked {
                self.next_prune = now + 1;
            } else {
                self.next_prune = now + PRUNE_EVERY_MS;
                self.log_stats();
            }
        }
        self.expire_step(now, out);
        self.history.tick(now);
        self.logins.prune(now);
        self.shares.prune(now);
    }

    /// Logs the core's figures once a minute, when they changed.
    fn log_stats(&mut self) {
        let s = self.stats();
        if s != self.last_stats {
            log::info!(
                "stats: {} accounts, {} line connections, {} users online, {} unacknowledged messages ({} bytes), {} long-polls, {} client_ids, {} password checks queued",
                s.accounts, s.line_sessions, s.users_online, s.pending_messages, s.pending_bytes, s.waiters, s.client_ids, s.password_jobs
            );
            self.last_stats = s;
        }
    }

    /// The server is shutting down: every long-poll ends now with its
    /// normal empty reply.
    pub fn end_long_polls(&mut self, out: &mut Outbox) {
        for waiter in self.waiters.expire(Millis::MAX) {
            out.replies
                .push((waiter.ticket, Reply::Messages(Vec::new())));
        }
    }

    /// Whether no password check or commit is in progress.
    pub fn is_idle(&self) -> bool {
        self.logins.waiting_requests() == 0
            && self.writes.is_idle()
            && self.reads.is_empty()
            && !self.has_open_writes()
    }

    /// When [`Core::tick`] next has something to do.
    pub fn next_deadline(&self) -> Millis {
        self.waiters
            .next_deadline()
            .unwrap_or(Millis::MAX)
            .min(self.next_prune)
            .min(self.logins.next_deadline())
            .min(match self.settings.message_ttl_ms {
                Some(_) => self.expiry.next_deadline(),
                None => Millis::MAX,
            })
            .min(self.sessions.next_deadline())
            .min(self.history.next_deadline())
    }

    /// Whether writes (or requests waiting on a commit) are collected but
    /// not yet taken as a batch.
    pub fn has_open_writes(&self) -> bool {
        self.writes.has_open()
    }

    /// The writes collected since the last call, as a batch for the store.
    /// Returns `None` when no request waits on a commit.
    pub fn take_batch(&mut self) -> Option<Batch> {
        let per_sender = self.settings.client_ids_per_sender;
        self.writes.take(self.last_message_id, per_sender)
    }

    /// The mailbox caps SENDs are checked against.
    fn budget(&self) -> mailbox::Budget {
        mailbox::Budget {
            messages: self.settings.mailbox_limit,
            bytes: self.settings.mailbox_bytes,
            // Several nodes: the database checks it in the writing
            // transaction, where every node's SENDs and ACKs are counted.
            per_sender: match self.settings.cluster {
                true => usize::MAX,
                false => self.settings.pending_bytes_per_sender,
            },
            pending_bytes: self.settings.pending_bytes,
        }
    }
}
