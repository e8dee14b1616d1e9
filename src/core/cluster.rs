//! Several nodes on one PostgreSQL database: what the core does with the
//! changes other nodes made (heard through the store's wake-ups, see
//! `store::postgres::listener`) and what it tells the store of this node's
//! users. Inactive with SQLite and `--memory`.
//!
//! - **Presence**: a user's first bound connection here, and the last one
//!   going, are handed to the store ([`Core::take_presence`]), which
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
use super::reads::{message_of, Waiting};
use super::{Core, Outbox, Revoke};
use crate::idhash::IdMap;
use crate::message::Message;
use crate::store::{ReadAnswer, ReadOp, Remote, StoredMessage};
use crate::{MessageId, Millis, UserId};
use std::collections::BTreeMap;

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
}

/// Messages read per page when pushing after a resync.
const RESYNC_PAGE: usize = 256;

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
}

impl Core {
    /// Presence changes for the store (see the module comment).
    pub fn take_presence(&mut self) -> Vec<(UserId, bool)> {
        std::mem::take(&mut self.cluster.presence)
    }

    /// Changes other nodes made, in the order they committed.
    pub fn on_remote(&mut self, events: Vec<Remote>, out: &mut Outbox) {
        let mut stored: BTreeMap<UserId, Vec<MessageId>> = BTreeMap::new();
        for event in events {
            match event {
                Remote::Stored { user, id, cost } => {
                    self.cluster.stored_high = self.cluster.stored_high.max(id);
                    self.mailboxes.remote_stored(user, id, cost);
                    stored.entry(user).or_default().push(id);
                }
                Remote::Acked {
                    user,
                    upto,
                    count,
                    bytes,
                } => {
                    let floor = self.cluster.known_floor(upto, self.last_message_id);
                    self.mailboxes.remote_acked(user, floor, count, bytes);
                }
                Remote::Revoked {
                    user,
                    token,
                    expires,
                } => self.take_back(user, Revoke::One { token, expires }, None, out),
                Remote::Voided { user, from } => {
                    self.take_back(user, Revoke::All { from }, None, out)
                }
                Remote::Resync => self.resync(out),
            }
        }
        for (user, ids) in stored {
            let held = self.subscribers.contains_key(&user) || self.waiters.count_of(user) > 0;
            if !held {
                continue;
            }
            let after = ids.iter().min().map_or(0, |id| id - 1);
            self.read_to_push(user, after, ids, out);
        }
    }

    /// Reads `user`'s messages above `after` to push those in `ids` (all
    /// when empty).
    fn read_to_push(
        &mut self,
        user: UserId,
        after: MessageId,
        ids: Vec<MessageId>,
        out: &mut Outbox,
    ) {
        let limit = if ids.is_empty() {
            RESYNC_PAGE
        } else {
            // The ids told, and room for messages between them known here.
            ids.len() * 2 + 16
        };
        let op = ReadOp::Page {
            user,
            after,
            limit,
            max_bytes: usize::MAX,
        };
        self.submit_read(op, Waiting::Cluster(ClusterRead::Push { user, ids }), out);
    }

    /// Every bound user: announced again, figures read again where
    /// nothing is in flight, and what is above the last push read.
    fn resync(&mut self, out: &mut Outbox) {
        if !self.cluster.enabled {
            return;
        }
        self.mailboxes.forget_idle();
        let polling: Vec<UserId> = self.cluster.polling.keys().copied().collect();
        for user in polling {
            if self.waiters.count_of(user) == 0 {
                self.cluster.polling.remove(&user);
                if !self.subscribers.contains_key(&user) {
                    self.cluster.presence.push((user, false));
                }
            } else {
                self.cluster.presence.push((user, true));
            }
        }
        let users: Vec<UserId> = self.subscribers.keys().copied().collect();
        for user in users {
            self.cluster.presence.push((user, true));
            if let Some(before) = self.mailboxes.quiet_fingerprint(user) {
                let waiting = Waiting::Cluster(ClusterRead::Figures { user, before });
                self.submit_read(ReadOp::Mailbox(user), waiting, out);
            }
            let mark = self.cluster.pushed.get(&user).copied().unwrap_or(0);
            self.read_to_push(user, mark, Vec::new(), out);
        }
    }

    /// The store answered a read the cluster asked for.
    pub(super) fn on_cluster_read(
        &mut self,
        read: ClusterRead,
        answer: Result<ReadAnswer, crate::store::StoreError>,
        now: Millis,
        out: &mut Outbox,
    ) {
        let answer = match answer {
            Ok(answer) => answer,
            // The next resync tries again.
            Err(e) => return log::debug!("a read for another node's change failed: {e}"),
        };
        match (read, answer) {
            (ClusterRead::Figures { user, before }, ReadAnswer::Mailbox { count, bytes, .. })
                if self.mailboxes.resync(user, before, count, bytes) =>
            {
                self.fill(user, out);
            }
            (ClusterRead::Push { user, ids }, ReadAnswer::Page(page)) => {
                self.push_remote(user, &ids, &page, now, out);
            }
            _ => {}
        }
    }

    /// Pushes the messages of `page` that `ids` names (all above the mark
    /// when `ids` is empty) to `user`'s connections, and runs their
    /// long-polls again.
    fn push_remote(
        &mut self,
        user: UserId,
        ids: &[MessageId],
        page: &[StoredMessage],
        now: Millis,
        out: &mut Outbox,
    ) {
        let mark = self.cluster.pushed.get(&user).copied();
        let mut newest = mark.unwrap_or(0);
        let mut any = false;
        for stored in page {
            let wanted = if ids.is_empty() {
                mark.is_some_and(|m| stored.id > m)
            } else {
                ids.contains(&stored.id)
            };
            if !wanted || stored.id <= self.mailboxes.floor(user) {
                continue;
            }
            newest = newest.max(stored.id);
            any = true;
            let message = message_of(stored);
            if let Some(conns) = self.subscribers.get(&user) {
                for &conn in conns {
                    out.pushes.push((conn, message.clone()));
                }
                self.counters.messages_pushed += conns.len() as u64;
            }
        }
        if let Some(m) = self.cluster.pushed.get_mut(&user) {
            *m = (*m).max(newest);
        }
        // Ids told beyond the page: read on.
        let last = page.last().map_or(MessageId::MAX, |m| m.id);
        let beyond: Vec<MessageId> = ids.iter().copied().filter(|&id| id > last).collect();
        if !beyond.is_empty() {
            self.read_to_push(user, last, beyond, out);
        }
        // More above a full resync page: read on.
        if ids.is_empty() && page.len() >= RESYNC_PAGE && mark.is_some() {
            self.read_to_push(user, newest, Vec::new(), out);
        }
        if any {
            for waiter in self.waiters.take_user(user) {
                let poll = waiter.poll;
                if let Some(reply) = self.read_or_wait(waiter.ticket, user, poll, now, out) {
                    out.replies.push((waiter.ticket, reply));
                }
            }
        }
    }
}
