//! The store's side of `gotalk admin` (see `src/admin/`): the questions
//! only an operator asks (a page of accounts, one account's record, all
//! that is stored about one account) and what they find, in plain types.
//! The SQL is in `sqlite/admin.rs` and `postgres/admin.rs`; the core asks
//! through [`ReadOp::Admin`](super::ReadOp::Admin) and renders nothing.

use crate::{MessageId, Millis, UserId};

/// How a message whose sender's account was deleted names its sender when
/// it is read from the store: not a valid username, so it can neither be
/// registered nor mistaken for a live account (its `from_id` stays).
pub const DELETED_SENDER: &str = "(deleted)";

/// What a disabled account's password hash starts with (as `passwd -l`
/// does in `/etc/shadow`): the hash is kept, so `enable` gives the same
/// password back, and no password verifies against it.
pub const LOCK: &str = "!";

/// Whether `hash` is a disabled account's.
pub fn locked(hash: &str) -> bool {
    hash.starts_with(LOCK)
}

/// `hash`, disabled (`true`) or enabled.
pub fn with_lock(hash: &str, disabled: bool) -> String {
    let bare = hash.strip_prefix(LOCK).unwrap_or(hash);
    match disabled {
        true => format!("{LOCK}{bare}"),
        false => bare.to_string(),
    }
}

/// A question for the store from `gotalk admin`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AdminQuery {
    /// Accounts whose name starts with `prefix`, by name, at most `limit`.
    List { prefix: String, limit: usize },
    /// One account's record: when it was made, when it last logged in,
    /// what its mailbox holds.
    Show(UserId),
    /// Everything stored about one account (`gotalk admin user export`).
    Export(UserId),
}

/// One row of [`AdminQuery::List`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    pub id: UserId,
    pub username: String,
    pub created: Millis,
    /// 0: never (or before the store recorded logins).
    pub last_login: Millis,
    /// Disabled by `gotalk admin user disable` (its hash is [`locked`]).
    pub disabled: bool,
}

/// What [`AdminQuery::Show`] finds (`None`: no such account any more).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub row: AccountRow,
    /// Unacknowledged messages to the account, and their size as stored.
    pub pending_messages: usize,
    pub pending_bytes: usize,
    /// Messages kept in the account's conversation history. `None` while
    /// the store keeps no history (the history step of the schema fills
    /// it: see `history_size` in `sqlite/admin.rs` and `postgres/admin.rs`).
    pub history_messages: Option<usize>,
}

/// A message as [`AdminQuery::Export`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedMessage {
    pub id: MessageId,
    pub from_id: UserId,
    pub to_id: UserId,
    pub ts: Millis,
    pub content: String,
    pub client_id: Option<String>,
}

/// What [`AdminQuery::Export`] finds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountExport {
    pub row: Option<AccountRow>,
    pub tokens_valid_from: Millis,
    /// Unacknowledged messages it sent that others hold, and those it holds.
    pub sent: Vec<ExportedMessage>,
    pub received: Vec<ExportedMessage>,
    /// Its remembered `client_id`s: (client_id, message id, first used).
    pub client_ids: Vec<(String, MessageId, Millis)>,
    /// Its revoked tokens: (token id, expires).
    pub revoked_tokens: Vec<(u64, Millis)>,
    /// Messages kept after acknowledgement and the conversation markers,
    /// once the store keeps history (see `export_history` in the stores'
    /// `admin.rs`); empty until then.
    pub history: Vec<ExportedMessage>,
    pub markers: Vec<(UserId, MessageId)>,
}

/// What an [`AdminQuery`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminAnswer {
    List(Vec<AccountRow>),
    Show(Option<AccountRecord>),
    Export(Box<AccountExport>),
}
