//! The settings the core takes from the configuration, with the flags'
//! defaults.

use super::logins::login_throttle::ThrottleSettings;
use crate::Millis;

/// Settings the core needs from the configuration (see `config.rs` for
/// what each budget means and its flag).
#[derive(Clone, Debug)]
pub struct CoreSettings {
    pub token_ttl_ms: Millis,
    pub mailbox_limit: usize,
    pub mailbox_bytes: usize,
    pub pending_bytes: usize,
    pub client_ids_per_sender: usize,
    pub waiters_per_user: usize,
    pub conns_per_user: usize,
    /// Password jobs: worker threads, most waiting in all, most waiting
    /// from one peer address.
    pub hash_workers: usize,
    pub hash_queue: usize,
    pub hash_queue_per_address: usize,
    /// LOGIN and REGISTER throttling.
    pub throttle: ThrottleSettings,
    /// Whether the store keeps what RAM does not hold (SQLite): then
    /// accounts are a cache of `account_cache`, and a mailbox holds at most
    /// a window of `mailbox_window` messages and `mailbox_window_bytes`.
    /// Without (`--memory`), everything stays in RAM.
    pub on_demand: bool,
    pub account_cache: usize,
    pub mailbox_window: usize,
    pub mailbox_window_bytes: usize,
    /// Whether other nodes share the store (PostgreSQL): see `cluster`.
    pub cluster: bool,
    /// Bytes in custody one sender may hold across all receivers.
    pub pending_bytes_per_sender: usize,
    /// Unacknowledged messages older than this leave custody (`None`: never).
    pub message_ttl_ms: Option<Millis>,
    /// Tokens of one account revoked one by one at most; past it a LOGOUT
    /// ends all the account's sessions.
    pub revocations_per_account: usize,
    /// History: on or off, retention, and the RAM budget with `--memory`.
    pub history: super::history::HistorySettings,
}

impl Default for CoreSettings {
    /// The defaults of the flags.
    fn default() -> CoreSettings {
        let c = crate::config::Config::default();
        CoreSettings {
            token_ttl_ms: c.token_ttl.as_millis() as Millis,
            mailbox_limit: c.mailbox_limit,
            mailbox_bytes: c.mailbox_bytes,
            pending_bytes: c.pending_bytes,
            client_ids_per_sender: c.client_ids_per_sender,
            waiters_per_user: c.waiters_per_user,
            conns_per_user: c.conns_per_user,
            hash_workers: c.hash_threads,
            hash_queue: c.hash_queue,
            hash_queue_per_address: c.hash_queue_per_address,
            throttle: ThrottleSettings::of(&c),
            on_demand: false,
            account_cache: c.account_cache,
            mailbox_window: c.mailbox_window,
            mailbox_window_bytes: c.mailbox_window_bytes,
            cluster: false,
            pending_bytes_per_sender: c.pending_bytes_per_sender,
            message_ttl_ms: c.message_ttl.map(|t| t.as_millis() as Millis),
            revocations_per_account: c.revocations_per_account,
            history: super::history::HistorySettings::default(),
        }
    }
}
