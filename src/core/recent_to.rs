//! The user each connection last sent to by name, so a run of SENDs to
//! one person (the usual shape) finds the recipient by its id instead of
//! hashing the name again (the name map's keyed hash, which resists names
//! chosen to collide, is the SEND's dearest look-up). A fixed table of
//! [`SLOTS`] entries indexed by connection: bounded whatever the number of
//! connections, and a memo only: an entry is used when the account with
//! its id is cached and has exactly that name, which is the account the
//! name map would give, so a stale or overwritten entry costs a look-up,
//! never a wrong recipient.

use super::accounts::Accounts;
use crate::{ConnId, UserId};

/// Entries in the table (a power of two).
const SLOTS: usize = 256;

pub(super) struct RecentTo {
    slots: Box<[(ConnId, UserId); SLOTS]>,
}

impl Default for RecentTo {
    fn default() -> RecentTo {
        RecentTo {
            slots: Box::new([(ConnId::MAX, 0); SLOTS]),
        }
    }
}

impl RecentTo {
    /// The user named `name` if `conn` last sent to them.
    #[inline]
    pub fn get(&self, conn: ConnId, name: &str, accounts: &Accounts) -> Option<UserId> {
        let (c, id) = self.slots[conn % SLOTS];
        if c != conn {
            return None;
        }
        accounts.get_named(id, name).map(|a| a.id)
    }

    /// `conn` sent to `id` by name.
    #[inline]
    pub fn set(&mut self, conn: ConnId, id: UserId) {
        self.slots[conn % SLOTS] = (conn, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::accounts::Account;
    use std::sync::Arc;

    fn account(id: UserId, name: &str) -> Account {
        Account {
            id,
            identity: id as u128,
            username: Arc::from(name),
            password_hash: Arc::from("x"),
            tokens_valid_from: 0,
        }
    }

    #[test]
    fn an_entry_is_used_only_for_the_exact_name_of_a_cached_account() {
        let mut accounts = Accounts::default();
        accounts.insert(account(1, "alice"));
        accounts.insert(account(2, "bob"));
        let mut recent = RecentTo::default();
        assert_eq!(recent.get(7, "alice", &accounts), None, "nothing yet");
        recent.set(7, 1);
        assert_eq!(recent.get(7, "alice", &accounts), Some(1));
        assert_eq!(recent.get(7, "Alice", &accounts), None, "another name");
        assert_eq!(recent.get(7, "bob", &accounts), None);
        assert_eq!(
            recent.get(7 + SLOTS, "alice", &accounts),
            None,
            "another conn"
        );
        recent.set(7 + SLOTS, 2);
        assert_eq!(recent.get(7, "alice", &accounts), None, "overwritten");
        assert_eq!(recent.get(7 + SLOTS, "bob", &accounts), Some(2));
        accounts.forget(2, true);
        assert_eq!(recent.get(7 + SLOTS, "bob", &accounts), None, "gone");
    }
}
