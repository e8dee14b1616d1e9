//! Where durable state goes. The core hands the store one [`Batch`] of
//! writes per event-loop turn and learns through [`Committed`] when it is on
//! disk; only then are the affected requests answered. Two implementations:
//! [`sqlite::SqliteStore`] (the default, a helper thread with group commit)
//! and [`memory::MemoryStore`] (`--memory`, nothing kept). A networked
//! backend would be a third implementation of [`Store`].

mod error;
pub mod memory;
pub mod sqlite;

pub use error::StoreError;

use crate::message::Message;
use crate::token::TokenId;
use crate::{MessageId, Millis, UserId};
use std::sync::Arc;

/// One durable change.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// A new account.
    CreateUser {
        id: UserId,
        /// The account's random identity, sealed into its tokens.
        identity: u128,
        username: Arc<str>,
        password_hash: Arc<str>,
        created: Millis,
    },
    /// An account's password hash made anew with today's argon2 parameters
    /// (at a successful LOGIN whose stored hash used older ones).
    SetPasswordHash { id: UserId, password_hash: Arc<str> },
    /// A new message (with its `client_id`, which must be remembered for
    /// idempotency even after the message is acknowledged).
    Append(Arc<Message>),
    /// The user acknowledged every message up to `upto`: they leave custody.
    Ack { user: UserId, upto: MessageId },
    /// LOGOUT: one token is revoked, kept until it would expire anyway.
    RevokeToken { token: TokenId, expires: Millis },
    /// LOGOUT all: every token of `user` issued before `from` is void.
    VoidTokens { user: UserId, from: Millis },
}

/// The writes of one event-loop turn, committed all or nothing.
#[derive(Debug, Default)]
pub struct Batch {
    pub seq: u64,
    pub ops: Vec<WriteOp>,
    /// Highest message id issued so far, so ids keep growing across restarts
    /// even when every message has been acknowledged and removed.
    pub last_message_id: MessageId,
}

/// The outcome of a batch.
#[derive(Debug)]
pub struct Committed {
    pub seq: u64,
    /// `Err` holds the cause; the requests get `unavailable`.
    pub result: Result<(), StoreError>,
    /// The outcome of the batch's ACKs: the same as `result`, except when
    /// the disk is full. ACKs depend on nothing else in a batch (they only
    /// remove messages already stored), so then they are committed without
    /// the rest, and may succeed where it failed: that is what keeps ACK
    /// working on a full disk. Each request is still all or nothing.
    pub acks: Result<(), StoreError>,
}

/// An account as stored.
#[derive(Clone, Debug)]
pub struct StoredUser {
    pub id: UserId,
    /// The account's random identity, sealed into its tokens.
    pub identity: u128,
    pub username: String,
    pub password_hash: String,
}

/// An unacknowledged message as stored.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub id: MessageId,
    pub from_id: UserId,
    pub to_id: UserId,
    pub ts: Millis,
    pub content: String,
    pub client_id: Option<String>,
}

/// A remembered `client_id` (kept 24 hours, whether or not its message was
/// acknowledged meanwhile).
#[derive(Clone, Debug)]
pub struct StoredClientId {
    pub sender: UserId,
    pub client_id: String,
    pub message_id: MessageId,
    pub ts: Millis,
}

/// Everything the core needs at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub users: Vec<StoredUser>,
    /// Every message still in custody, in id order.
    pub messages: Vec<StoredMessage>,
    pub client_ids: Vec<StoredClientId>,
    pub last_message_id: MessageId,
    /// Tokens revoked by LOGOUT that have not expired yet, with their expiry.
    pub revoked_tokens: Vec<(TokenId, Millis)>,
    /// Accounts whose tokens issued before a moment are void (LOGOUT all).
    pub tokens_valid_from: Vec<(UserId, Millis)>,
}

/// The narrow interface between the core's effects and durable storage.
pub trait Store {
    /// Reads the state saved by earlier runs.
    fn load(&mut self) -> Result<Snapshot, String>;
    /// Queues a batch; its [`Committed`] arrives later from [`Store::completed`].
    fn submit(&mut self, batch: Batch);
    /// A finished batch, if any, without blocking. Batches finish in order.
    fn completed(&mut self) -> Option<Committed>;
    /// Commit figures for metrics, where the store keeps them.
    fn metrics(&self) -> Option<&StoreMetrics> {
        None
    }
}

/// What a store that commits on a thread of its own records per commit,
/// read by the loop when metrics are asked for.
pub struct StoreMetrics {
    /// How long each transaction took, from BEGIN to the end of COMMIT.
    pub commit_seconds: crate::histogram::Histogram,
    /// Writes (messages, ACKs, accounts) per transaction.
    pub writes_per_commit: crate::histogram::Histogram,
}

impl Default for StoreMetrics {
    fn default() -> StoreMetrics {
        StoreMetrics {
            commit_seconds: crate::histogram::Histogram::new(crate::histogram::SECONDS),
            writes_per_commit: crate::histogram::Histogram::new(crate::histogram::COUNTS),
        }
    }
}
