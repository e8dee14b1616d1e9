//! Several nodes on one PostgreSQL database: the owner of this node's
//! cluster state ([`Cluster`]: presence, push marks, the highest stored id).
//! What the core does with the changes other nodes made lives in
//! `remote.rs`, which drives this owner with the mailboxes and waiters.
//! The changes are (heard through the store's wake-ups, see
//! `store::postgres::listener`) and what it tells the store of this node's
//! users. Inactive with SQLite and `--memory`.
//!
//! - **Presence**: a user's first bound connection here, and the last one
//!   going, are handed to the store ([`Core::take_presence`](super::Core::take_presence)), which
//!   records them so other nodes wake this one for that user; so is a
//!   long-poll of a user not bound here (an HTTP SYNC), withdrawn at the
//!   periodic check after the last one ends.
//! - **Messages stored elsewhere** for a user bound here: their figures
//!   are counted, the messages read from the store (a page from just below
//!   the lowest id told) and pushed to the user's connections, and the
//!   user's long-polls run again. A message to a user bound here sent
//!   through this node is still pushed straight from its SEND.
//! - **ACKs elsewhere** end custody here too: the head drops what they
//!   covered and the figures follow.
//! - **LOGOUT elsewhere**: the token (or all the account's) is refused
//!   here too, and the connections it opened are unbound with a `revoked`
//!   event.
//! - **Resync** (the listening connection came back, or the periodic
//!   check): each bound user is announced again, their figures are read
//!   again when nothing is in flight for them, and messages above the
//!   highest id pushed to them here are read and pushed. A lost wake-up
//!   thus delays a push, and loses nothing.

use super::mailbox::Fingerprint;
use crate::idhash::IdMap;
use crate::message::Message;
use crate::{MessageId, UserId};

/// The core's state for a shared store.
#[derive(Default)]
pub struct Cluster {
    /// Whether other nodes share the store.
    enabled: bool,
    /// Presence changes not yet handed to the store.
    presence: Vec<(UserId, bool)>,
    /// Per bound user, the highest message id pushed (or known) here: a
    /// resync pushes what is above.
    pushed: IdMap<UserId, MessageId>,
    /// The highest stored message id this node has seen.
    stored_high: MessageId,
    /// Users recorded present here for a long-poll alone (an HTTP SYNC
    /// with a token): withdrawn at a periodic check once none waits.
    polling: IdMap<UserId, ()>,
}

/// A read the cluster asked for.
pub(super) enum ClusterRead {
    /// Messages to push: those whose ids are in `ids` (all of them when
    /// empty: a resync), each at most once.
    Push { user: UserId, ids: Vec<MessageId> },
    /// A mailbox's figures, to replace those held if unchanged since.
    Figures { user: UserId, before: Fingerprint },
    /// A message another node stored for its sender, to copy to the
    /// sender's connections here (`sent`).
    Sent { id: MessageId },
}

/// Messages read per page when pushing after a resync.
pub(super) const RESYNC_PAGE: usize = 256;

impl Cluster {
    pub fn new(enabled: bool) -> Cluster {
        Cluster {
            enabled,
            ..Cluster::default()
        }
    }

    /// A message stored through this node reached its receiver.
    pub fn delivered(&mut self, message: &Message) {
        if !self.enabled {
            return;
        }
        self.stored_high = self.stored_high.max(message.id);
        if let Some(mark) = self.pushed.get_mut(&message.to_id) {
            *mark = (*mark).max(message.id);
        }
    }

    /// Where an ACK up to `upto` may put a mailbox's floor: with other
    /// nodes, no higher than the highest id known to exist (the core's own
    /// `last_issued` or any stored id seen); ids grow per receiver in
    /// commit order, so a message committed after the ACK may still get
    /// an id below `upto`.
    pub fn known_floor(&self, upto: MessageId, last_issued: MessageId) -> MessageId {
        if self.enabled {
            upto.min(self.stored_high.max(last_issued))
        } else {
            upto
        }
    }

    /// `user`'s first connection here was bound.
    pub fn bound(&mut self, user: UserId) {
        if self.enabled {
            self.pushed.insert(user, self.stored_high);
            self.presence.push((user, true));
        }
    }

    /// `user`'s last connection here was unbound.
    pub fn unbound(&mut self, user: UserId) {
        if self.enabled {
            self.pushed.remove(&user);
            if !self.polling.contains_key(&user) {
                self.presence.push((user, false));
            }
        }
    }

    /// A long-poll of `user` waits here (`bound`: the user has a bound
    /// connection here, and is recorded already).
    pub fn polling(&mut self, user: UserId, bound: bool) {
        if self.enabled && !bound && self.polling.insert(user, ()).is_none() {
            self.presence.push((user, true));
        }
    }
    /// Whether other nodes share the store.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Presence changes for the store, handed over once.
    pub fn take_presence(&mut self) -> Vec<(UserId, bool)> {
        std::mem::take(&mut self.presence)
    }

    /// Another node stored message `id`.
    pub fn stored(&mut self, id: MessageId) {
        self.stored_high = self.stored_high.max(id);
    }

    /// `user` is announced present (again) to the store.
    pub fn announce(&mut self, user: UserId) {
        self.presence.push((user, true));
    }

    /// At a resync: users recorded for a long-poll alone are withdrawn
    /// once none waits (`waiting`), unless bound here (`bound`).
    pub fn recheck_polling(
        &mut self,
        waiting: impl Fn(UserId) -> bool,
        bound: impl Fn(UserId) -> bool,
    ) {
        let polling: Vec<UserId> = self.polling.keys().copied().collect();
        for user in polling {
            if !waiting(user) {
                self.polling.remove(&user);
                if !bound(user) {
                    self.presence.push((user, false));
                }
            } else {
                self.presence.push((user, true));
            }
        }
    }

    /// The highest id pushed (or known) here to bound `user`.
    pub fn mark(&self, user: UserId) -> Option<MessageId> {
        self.pushed.get(&user).copied()
    }

    /// Raises `user`'s push mark to `newest`, if the user is bound here.
    pub fn advance(&mut self, user: UserId, newest: MessageId) {
        if let Some(m) = self.pushed.get_mut(&user) {
            *m = (*m).max(newest);
        }
    }
}
