//! The history owner: conversations as a second view of the messages.
//! The mailbox keeps custody until ACK; a conversation keeps its messages
//! until retention removes them (`--history-days`), and each user's read
//! marker per partner (READ), with the partner's unread count kept as a
//! counter, never counted on a CONVERSATIONS call.
//!
//! With a durable store (SQLite, PostgreSQL) the store holds all of it:
//! HISTORY and CONVERSATIONS are reads on the store's reading thread, READ
//! is a write whose marker the store reports. With `--memory` the store
//! keeps nothing, so [`Ram`] holds the conversations here, bounded by
//! `--history-memory-bytes` (the oldest message anywhere goes first).
//! `--no-history` turns all of it off.

mod ram;

pub use ram::Ram;

use crate::Millis;

/// What the history flags say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistorySettings {
    /// `--no-history` turns it off: a message is gone after its ACK, and
    /// HISTORY, READ and CONVERSATIONS are refused.
    pub enabled: bool,
    /// `--history-days`: messages older than this leave their
    /// conversation (`None`: kept until deleted).
    pub retention_ms: Option<Millis>,
    /// `--history-memory-bytes`: with `--memory`, most bytes of messages
    /// (as rendered) the conversations hold in RAM.
    pub memory_bytes: usize,
}

impl Default for HistorySettings {
    fn default() -> HistorySettings {
        HistorySettings {
            enabled: true,
            retention_ms: None,
            memory_bytes: DEFAULT_MEMORY_BYTES,
        }
    }
}

/// `--history-memory-bytes`'s default: 64 MiB.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;

/// How often retention runs a step in RAM.
const PRUNE_EVERY_MS: Millis = 1_000;

/// The owner: off, kept by the store, or kept here in RAM.
pub struct History {
    settings: HistorySettings,
    ram: Option<Ram>,
    next_prune: Millis,
}

impl History {
    /// `in_ram`: the store keeps nothing (`--memory`).
    pub fn new(settings: HistorySettings, in_ram: bool) -> History {
        History {
            ram: (settings.enabled && in_ram).then(|| Ram::new(settings.memory_bytes)),
            settings,
            next_prune: 0,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The conversations held here (`--memory`), if they are.
    pub fn ram(&mut self) -> Option<&mut Ram> {
        self.ram.as_mut()
    }

    /// Forgets `user`'s conversations held in RAM (an account deleted;
    /// with a durable store, `store::sqlite::history::delete_user_history`
    /// and `store::postgres::history::delete_user_history` do it in the
    /// deleting transaction).
    pub fn forget_user(&mut self, user: crate::UserId) {
        if let Some(ram) = self.ram.as_mut() {
            ram.forget_user(user);
        }
    }

    /// A retention step in RAM when one is due.
    pub fn tick(&mut self, now: Millis) {
        let (Some(ram), Some(keep)) = (self.ram.as_mut(), self.settings.retention_ms) else {
            return;
        };
        if now < self.next_prune {
            return;
        }
        let more = ram.prune_before(now.saturating_sub(keep), ram::PRUNE_STEP);
        self.next_prune = if more { now + 1 } else { now + PRUNE_EVERY_MS };
    }

    /// When [`History::tick`] next has something to do.
    pub fn next_deadline(&self) -> Millis {
        match (&self.ram, self.settings.retention_ms) {
            (Some(_), Some(_)) => self.next_prune,
            _ => Millis::MAX,
        }
    }
}
