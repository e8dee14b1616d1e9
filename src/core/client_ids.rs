//! `client_id` idempotency: a sender's second SEND with the same
//! `client_id` stores nothing and gets the first one's id, for 24 hours.

use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::idhash::IdMap;
use crate::{MessageId, Millis, UserId};
use std::collections::HashMap;

/// What a `client_id` was first used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstSend {
    pub id: MessageId,
    pub ts: Millis,
    /// Whether that SEND's commit has finished.
    pub committed: bool,
}

/// Remembered `client_id`s by sender.
#[derive(Default)]
pub struct ClientIds {
    by_sender: IdMap<UserId, HashMap<Box<str>, FirstSend>>,
}

impl ClientIds {
    pub fn get(&self, sender: UserId, client_id: &str) -> Option<FirstSend> {
        self.by_sender.get(&sender)?.get(client_id).copied()
    }

    pub fn insert(&mut self, sender: UserId, client_id: &str, first: FirstSend) {
        self.by_sender
            .entry(sender)
            .or_default()
            .insert(client_id.into(), first);
    }

    pub fn mark_committed(&mut self, sender: UserId, client_id: &str) {
        if let Some(first) = self
            .by_sender
            .get_mut(&sender)
            .and_then(|m| m.get_mut(client_id))
        {
            first.committed = true;
        }
    }

    pub fn remove(&mut self, sender: UserId, client_id: &str) {
        if let Some(m) = self.by_sender.get_mut(&sender) {
            m.remove(client_id);
        }
    }

    /// Forgets ids first used more than 24 hours before `now`.
    pub fn prune(&mut self, now: Millis) {
        let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS);
        self.by_sender.retain(|_, m| {
            m.retain(|_, first| first.ts >= cutoff);
            !m.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_per_sender_and_expire_after_a_day() {
        let mut ids = ClientIds::default();
        let first = FirstSend {
            id: 5,
            ts: 1000,
            committed: false,
        };
        ids.insert(1, "x", first);
        assert_eq!(ids.get(1, "x"), Some(first));
        assert_eq!(ids.get(2, "x"), None);
        ids.mark_committed(1, "x");
        assert!(ids.get(1, "x").unwrap().committed);
        ids.prune(1000 + CLIENT_ID_RETENTION_MS);
        assert!(ids.get(1, "x").is_some());
        ids.prune(1001 + CLIENT_ID_RETENTION_MS);
        assert_eq!(ids.get(1, "x"), None);
    }
}
