//! The store's vocabulary: what the core and the stores say to each other
//! (writes, batches, commits, reads, what was found), in plain types only,
//! so the core can speak it without knowing SQLite or PostgreSQL. The
//! stores themselves live beside it; `store/mod.rs` re-exports all of it.

use crate::message::Message;
use crate::token::TokenId;
use crate::{MessageId, Millis, UserId};
use std::sync::Arc;

pub use super::error::StoreError;

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
    /// LOGOUT: one token (of `user`) is revoked, kept until it would
    /// expire anyway.
    RevokeToken {
        user: UserId,
        token: TokenId,
        expires: Millis,
    },
    /// LOGOUT all: every token of `user` issued before `from` is void.
    VoidTokens { user: UserId, from: Millis },
    /// `--message-ttl`: custody of the oldest unacknowledged messages
    /// stored before `before` ends as if their receivers had acknowledged
    /// them, at most `limit` of them (a bounded step; the core asks again
    /// while steps come back full). Taken in id order, so what leaves each
    /// mailbox is its oldest: a prefix, like an ACK's. Reported in
    /// [`Committed::expired`].
    Expire { before: Millis, limit: usize },
    /// READ: `user` has read `with`'s messages up to `upto`. The store
    /// clamps it to the conversation's newest message, never lowers the
    /// marker, and reports the marker in [`Committed::marks`].
    ReadMark {
        user: UserId,
        with: UserId,
        upto: MessageId,
        /// Both names, for other nodes' `read` events.
        names: (Arc<str>, Arc<str>),
    },
}

/// What a durable store keeps of conversations (the history flags). The
/// default keeps none: a message is deleted once acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryRules {
    /// Keep acknowledged messages, conversations and read markers.
    pub keep: bool,
    /// Delete acknowledged messages this long after they were sent
    /// (`None`: never), in bounded steps on the writing thread.
    pub retention_ms: Option<Millis>,
}

/// The writes of one event-loop turn, committed all or nothing.
#[derive(Debug, Default)]
pub struct Batch {
    pub seq: u64,
    pub ops: Vec<WriteOp>,
    /// Highest message id issued so far, so ids keep growing across restarts
    /// even when every message has been acknowledged and removed.
    pub last_message_id: MessageId,
    /// `--client-ids-per-sender`: a sender's remembered `client_id`s are
    /// its newest this many (and no older than a day); the store deletes
    /// the rest as it adds new ones. 0: no limit but the day.
    pub client_ids_per_sender: usize,
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
    /// What each ACK of the batch removed, in order, where the store
    /// counts it (a store that keeps nothing leaves this empty: the core
    /// then holds every message and counts them itself).
    pub removed: Vec<Removed>,
    /// SENDs whose `client_id` the database already held for their
    /// sender: their message was not stored; the first one's id and time.
    pub duplicates: Vec<Duplicate>,
    /// What the batch's [`WriteOp::Expire`] took out of custody, per
    /// receiver (`upto`: the newest id it took there).
    pub expired: Vec<Removed>,
    /// Ids the store gave in place of the core's, where it gives them
    /// (PostgreSQL); empty where the core's ids stand (SQLite).
    pub assigned: Assigned,
    /// The outcome of each [`WriteOp::ReadMark`], in order (empty from a
    /// store that keeps nothing: the core then keeps the markers).
    pub marks: Vec<Marked>,
}

/// A read marker as stored after a [`WriteOp::ReadMark`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marked {
    pub user: UserId,
    pub with: UserId,
    pub upto: MessageId,
    /// Whether it moved (else it was at or above the one asked already).
    pub moved: bool,
}

/// Ids decided by the database in the transaction rather than by the
/// core: with several nodes on one database, only the transaction that
/// holds a receiver's mailbox row can give its messages ids that grow in
/// commit order (see `docs/storage.md`). The core numbers its writes
/// provisionally and learns the final ids here; it answers and delivers
/// with those. Each list is in batch order.
#[derive(Debug, Default)]
pub struct Assigned {
    /// (provisional id, stored id) of each message stored.
    pub messages: Vec<(MessageId, MessageId)>,
    /// (provisional id, stored id) of each account created.
    pub users: Vec<(UserId, UserId)>,
    /// The provisional ids of REGISTERs whose username the database already
    /// held (registered through another node): nothing was stored for them.
    pub taken_names: Vec<UserId>,
    /// SENDs the database refused because their receiver's mailbox, as it
    /// counts it across every node, would pass a cap: nothing was stored.
    pub full: Vec<MailboxFull>,
}

/// The caps a store that counts mailboxes in the database checks in the
/// writing transaction (`--mailbox-limit`, `--mailbox-bytes`), so that
/// several nodes writing to one receiver cannot together pass them.
#[derive(Clone, Copy, Debug)]
pub struct MailboxCaps {
    pub messages: usize,
    pub bytes: usize,
    /// `--pending-bytes-per-sender`: a sender's bytes in custody across
    /// every receiver, counted in the database (`sender_bytes`).
    pub per_sender: usize,
}

/// Which cap one more message would pass ([`MailboxCaps::fits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// The mailbox holds `--mailbox-limit` messages already.
    Messages,
    /// The mailbox's bytes would pass `--mailbox-bytes`.
    Bytes,
    /// The sender's bytes in custody would pass `--pending-bytes-per-sender`.
    Sender,
}

impl MailboxCaps {
    /// The one rule for "does this message fit this mailbox", used by the
    /// core on its counters and by a store that counts in the database: a
    /// mailbox holding `held` messages of `held_bytes`, from a sender with
    /// `sent` bytes in custody, takes one more message of `cost` bytes, or
    /// says which cap it would pass (the message cap first, then the
    /// bytes, then the sender's). Comparisons only.
    pub fn fits(
        &self,
        held: usize,
        held_bytes: usize,
        sent: usize,
        cost: usize,
    ) -> Result<(), Over> {
        if held >= self.messages {
            Err(Over::Messages)
        } else if held_bytes.saturating_add(cost) > self.bytes {
            Err(Over::Bytes)
        } else if sent.saturating_add(cost) > self.per_sender {
            Err(Over::Sender)
        } else {
            Ok(())
        }
    }
}

/// A SEND refused in the transaction for a full mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxFull {
    /// The core's (provisional) id of the message.
    pub message: MessageId,
    /// The mailbox's figures when it was refused.
    pub held: usize,
    pub held_bytes: usize,
    /// Which cap it would pass: the byte cap, else the message cap...
    pub by_bytes: bool,
    /// ...or the sender's (`--pending-bytes-per-sender`); `held_bytes` is
    /// then the sender's figure.
    pub by_sender: bool,
}

/// What one ACK removed from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub user: UserId,
    pub upto: MessageId,
    pub count: usize,
    /// Their size as stored (the `cost` of each, see [`WriteOp::Append`]).
    pub bytes: usize,
    /// The same bytes by sender, so each sender's figure
    /// (`--pending-bytes-per-sender`) goes down by what left custody.
    pub senders: Vec<(UserId, usize)>,
}

/// A SEND refused by the database's unique key on (sender, `client_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The id the refused SEND was given (and never stored).
    pub message_id: MessageId,
    pub first_id: MessageId,
    pub first_ts: Millis,
}

impl Committed {
    /// A batch whose every part had `result`.
    pub fn of(seq: u64, result: Result<(), StoreError>) -> Committed {
        Committed {
            seq,
            acks: result.clone(),
            result,
            removed: Vec::new(),
            duplicates: Vec::new(),
            expired: Vec::new(),
            assigned: Assigned::default(),
            marks: Vec::new(),
        }
    }
}

/// An account as stored.
#[derive(Clone, Debug)]
pub struct StoredUser {
    pub id: UserId,
    /// The account's random identity, sealed into its tokens.
    pub identity: u128,
    pub username: String,
    pub password_hash: String,
    /// Tokens issued before this are void (`LOGOUT all`; 0: none).
    pub tokens_valid_from: Millis,
}

/// An unacknowledged message as stored.
#[derive(Clone, Debug, Default)]
pub struct StoredMessage {
    pub id: MessageId,
    pub from_id: UserId,
    pub to_id: UserId,
    /// The parties' usernames, when read with the message (a mailbox page).
    pub from: String,
    pub to: String,
    pub ts: Millis,
    pub content: String,
    pub client_id: Option<String>,
}

/// One conversation as stored, for CONVERSATIONS.
#[derive(Clone, Debug, Default)]
pub struct StoredConversation {
    pub with_id: UserId,
    pub with: String,
    /// Its newest message either way (`None` once retention removed it).
    pub last: Option<StoredMessage>,
    /// Used for paging even when `last` is gone.
    pub last_id: MessageId,
    pub unread: u64,
    /// The partner's marker on the caller's messages.
    pub read_upto: MessageId,
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

/// What the core needs at start: the figures that let it assign ids and
/// enforce the global budget. Nothing grows with the number of accounts or
/// messages; those are read on demand ([`Store::read`](super::Store::read)). `users`,
/// `messages` and `client_ids` are only filled by tests that hand the core
/// a state of their own.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub users: Vec<StoredUser>,
    /// Messages to put in mailboxes, in id order.
    pub messages: Vec<StoredMessage>,
    pub client_ids: Vec<StoredClientId>,
    pub last_message_id: MessageId,
    /// The highest account id in use.
    pub last_user_id: UserId,
    /// Unacknowledged messages in the store, and their size as stored.
    pub pending_messages: usize,
    pub pending_bytes: usize,
    /// Tokens revoked by LOGOUT that have not expired yet, with their
    /// expiry and account (at most `--revocations-per-account` each, so
    /// held in RAM; 0 for rows stored before accounts were recorded).
    pub revoked_tokens: Vec<(TokenId, Millis, UserId)>,
    /// Bytes of unacknowledged messages by sender, for every sender that
    /// has any (`--pending-bytes-per-sender`): one small row per sender
    /// with messages in custody, kept by the writer as messages come and go.
    pub sender_bytes: Vec<(UserId, usize)>,
    /// Usernames registered before names were folded that clash with an
    /// older account's folded form, each with that account's name: they
    /// are found by their exact name only (see `crate::username`).
    pub name_clashes: Vec<(String, String)>,
}

/// A question for the store, answered off the loop. A read submitted after
/// the core learned that a batch committed sees that batch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReadOp {
    UserById(UserId),
    UserByName(Box<str>),
    /// How many messages a user's mailbox holds, and their size.
    Mailbox(UserId),
    /// The same figures and the mailbox's oldest messages, as a page with
    /// `after` 0 (read for a user who is active, whose head RAM keeps).
    /// When that page is the whole mailbox the figures are its own, and
    /// the mailbox is read once.
    MailboxAndHead {
        user: UserId,
        limit: usize,
        max_bytes: usize,
    },
    /// A user's oldest messages with ids above `after`, in id order: at
    /// most `limit`, stopping before `max_bytes` (but at least one).
    Page {
        user: UserId,
        after: MessageId,
        limit: usize,
        max_bytes: usize,
    },
    /// HISTORY: the newest `limit` messages between `user` and `with`
    /// (either way) with ids below `before`, stopping before `max_bytes`
    /// (but at least one); one index range read.
    History {
        user: UserId,
        with: UserId,
        before: MessageId,
        limit: usize,
        max_bytes: usize,
    },
    /// CONVERSATIONS: `user`'s conversations whose newest message is below
    /// `before`, newest first, at most `limit`.
    Conversations {
        user: UserId,
        before: MessageId,
        limit: usize,
    },
}

/// A read and the number the core knows it by.
#[derive(Clone, Debug)]
pub struct Read {
    pub id: u64,
    pub op: ReadOp,
}

/// What a read found.
#[derive(Debug)]
pub enum ReadAnswer {
    User(Option<StoredUser>),
    Mailbox {
        count: usize,
        bytes: usize,
        /// The oldest messages ([`ReadOp::MailboxAndHead`]; else empty).
        head: Vec<StoredMessage>,
    },
    Page(Vec<StoredMessage>),
    /// Oldest first; `more`: older ones exist.
    History {
        messages: Vec<StoredMessage>,
        more: bool,
    },
    Conversations {
        list: Vec<StoredConversation>,
        more: bool,
    },
}

/// A finished read.
#[derive(Debug)]
pub struct ReadDone {
    pub id: u64,
    pub answer: Result<ReadAnswer, StoreError>,
}

/// A change another node made that this node may hold in RAM, told by the
/// database's wake-ups (PostgreSQL's NOTIFY, see `docs/cluster.md`). Ids
/// and figures only: the messages themselves are read from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remote {
    /// A message stored for `user`, with its size as stored.
    Stored {
        user: UserId,
        id: MessageId,
        cost: usize,
    },
    /// `user` acknowledged up to `upto`, which removed `count` messages of
    /// `bytes` from the store.
    Acked {
        user: UserId,
        upto: MessageId,
        count: usize,
        bytes: usize,
    },
    /// LOGOUT of one token of `user`.
    Revoked {
        user: UserId,
        token: TokenId,
        expires: Millis,
    },
    /// LOGOUT all: `user`'s tokens issued before `from` are void.
    Voided { user: UserId, from: Millis },
    /// History: `user` sent message `id` to `with` (its `sent` copy for
    /// `user`'s connections on other nodes; the message is read).
    Sent {
        user: UserId,
        with: UserId,
        id: MessageId,
    },
    /// History: `by` read `with`'s messages up to `upto` (READ), with both
    /// names (a username holds no space or comma).
    Read {
        by: UserId,
        with: UserId,
        upto: MessageId,
        by_name: Box<str>,
        with_name: Box<str>,
    },
    /// Wake-ups may have been missed (the listening connection came back)
    /// or it is time for the periodic check: re-read what the node holds
    /// for its bound users.
    Resync,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_more_message_fits_or_names_the_first_cap_it_passes() {
        let caps = MailboxCaps {
            messages: 2,
            bytes: 100,
            per_sender: 150,
        };
        assert_eq!(caps.fits(1, 50, 50, 50), Ok(()));
        assert_eq!(caps.fits(2, 0, 0, 1), Err(Over::Messages));
        assert_eq!(caps.fits(2, 99, 149, 10), Err(Over::Messages));
        assert_eq!(caps.fits(1, 51, 0, 50), Err(Over::Bytes));
        assert_eq!(caps.fits(1, 51, 149, 50), Err(Over::Bytes));
        assert_eq!(caps.fits(1, 0, 101, 50), Err(Over::Sender));
        assert_eq!(caps.fits(0, usize::MAX, 0, 1), Err(Over::Bytes));
    }
}
