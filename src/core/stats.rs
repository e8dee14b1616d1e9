//! The core's figures for observers (the metrics listener's `/stats`, the
//! periodic stats log line): counts kept where the resources live, read
//! here in one place.

use super::Core;
use serde::Serialize;

/// What the core holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CoreStats {
    pub accounts: usize,
    /// Line-protocol connections (bound or not).
    pub line_sessions: usize,
    /// Users with at least one bound connection.
    pub users_online: usize,
    pub pending_messages: usize,
    /// Of those, held in RAM (mailbox heads); the rest is in the store.
    pub resident_messages: usize,
    /// Bytes of unacknowledged messages held, as stored, plus those of
    /// SENDs accepted and not yet committed (what `--pending-bytes` caps).
    pub pending_bytes: usize,
    /// Long-polls waiting for a message.
    pub waiters: usize,
    /// `client_id`s remembered for deduplication.
    pub client_ids: usize,
    /// Entries of the per-sender `client_id` queues (stale ones included):
    /// at most 2 N + 16 per sender, whatever the rate of fresh ids.
    pub client_id_queue: usize,
    /// Tokens revoked one by one (LOGOUT) and not expired yet: at most
    /// `--revocations-per-account` per account.
    pub revoked_tokens: usize,
    /// LOGIN/REGISTER password jobs queued or running.
    pub password_jobs: usize,
    /// Entries of the LOGIN and REGISTER throttle tables (usernames and
    /// addresses), each table capped by `--throttle-entries`.
    pub throttle_entries: usize,
}

impl Core {
    /// The senders holding the most unacknowledged bytes (reservations
    /// included), largest first, at most [`super::mailbox::senders::TOP_HOLDERS`];
    /// read from an ordered index, not a walk of every sender.
    pub fn top_senders(&self) -> Vec<(crate::UserId, usize)> {
        self.mailboxes
            .senders()
            .top(super::mailbox::senders::TOP_HOLDERS)
    }

    /// Senders with any bytes in custody.
    pub fn senders_holding(&self) -> usize {
        self.mailboxes.senders().len()
    }

    pub fn stats(&self) -> CoreStats {
        CoreStats {
            accounts: self.accounts.len(),
            line_sessions: self.sessions.len().0,
            users_online: self.sessions.len().1,
            pending_messages: self.mailboxes.total(),
            resident_messages: self.mailboxes.resident(),
            pending_bytes: self.mailboxes.pending_bytes(),
            waiters: self.waiters.len(),
            client_ids: self.client_ids.len(),
            client_id_queue: self.client_ids.queued(),
            revoked_tokens: self.sessions.revocations.len(),
            password_jobs: self.logins.waiting_requests(),
            throttle_entries: {
                let (names, logins, registers) = self.logins.throttle.len();
                names + logins + registers
            },
        }
    }
}
