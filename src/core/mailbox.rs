//! Per-user mailboxes. As in the original goTalk, each user has a channel
//! (`crossbeam-channel`) that new messages are queued on; unlike the
//! original, dequeuing does not end custody. A message taken from the
//! channel moves to the `handed` list, where it stays until the user
//! acknowledges it, so a lost reply or a dropped connection loses nothing.
//! A mailbox exists only while it holds messages or reservations: idle users
//! cost nothing.
//!
//! Budgets: a SEND reserves its place (one message, its size as stored)
//! before its commit, so SENDs in flight count against the recipient's
//! message and byte caps and the global budget of pending bytes; the
//! commit turns the reservation into the stored message, a failed commit
//! gives it back. Every figure is a counter kept as messages come and go,
//! so a check is a comparison.

use crate::idhash::IdMap;
use crate::message::Message;
use crate::{MessageId, UserId};
use crossbeam_channel::{Receiver, Sender};
use std::collections::VecDeque;
use std::sync::Arc;

/// One user's unacknowledged messages. Invariant: every message in `handed`
/// is older than every message still in the channel, and both are in id
/// order, because messages arrive in id order.
pub struct Mailbox {
    queue_tx: Sender<Arc<Message>>,
    queue_rx: Receiver<Arc<Message>>,
    handed: VecDeque<Arc<Message>>,
    /// Size of the messages held, as stored ([`cost`]).
    bytes: usize,
    /// SENDs to this mailbox accepted and not yet committed, and their size.
    reserved: usize,
    reserved_bytes: usize,
}

/// What a message costs a mailbox: its JSON, as held in memory (a message
/// of control characters costs its escaped size).
pub fn cost(message: &Message) -> usize {
    message.json().len()
}

/// The caps a reservation is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Most messages one mailbox holds, reservations included.
    pub messages: usize,
    /// Most bytes one mailbox holds, reservations included.
    pub bytes: usize,
    /// Most bytes all mailboxes hold together, reservations included.
    pub pending_bytes: usize,
}

/// Which cap a reservation would pass, with the figure it was at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    Messages(usize),
    Bytes(usize),
    Pending(usize),
}

impl Mailbox {
    fn new() -> Mailbox {
        let (queue_tx, queue_rx) = crossbeam_channel::unbounded();
        Mailbox {
            queue_tx,
            queue_rx,
            handed: VecDeque::new(),
            bytes: 0,
            reserved: 0,
            reserved_bytes: 0,
        }
    }

    /// Unacknowledged messages held.
    pub fn len(&self) -> usize {
        self.handed.len() + self.queue_rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a stored message. `pushed` says it was already written to a
    /// connection of the user, so it counts as handed out at once.
    fn deliver(&mut self, message: Arc<Message>, pushed: bool) {
        self.bytes += cost(&message);
        if pushed {
            self.take_queued();
            self.handed.push_back(message);
        } else {
            self.queue_tx
                .send(message)
                .expect("the mailbox owns its receiver");
        }
    }

    /// Moves everything queued into `handed` (order is kept).
    fn take_queued(&mut self) {
        self.handed.extend(self.queue_rx.try_iter());
    }

    /// Up to `limit` messages with ids above `after`, oldest first, stopping
    /// before `max_bytes` of JSON (but always at least one message).
    fn read(&mut self, after: MessageId, limit: usize, max_bytes: usize) -> Vec<Arc<Message>> {
        self.take_queued();
        let start = self.handed.partition_point(|m| m.id <= after);
        let mut bytes = 0;
        let mut out = Vec::new();
        for m in self.handed.range(start..).take(limit) {
            bytes += m.json().len() + 1;
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(m.clone());
        }
        out
    }

    /// Ends custody of every message up to `upto`; returns how many, and
    /// their size.
    fn ack(&mut self, upto: MessageId) -> (usize, usize) {
        self.take_queued();
        let n = self.handed.partition_point(|m| m.id <= upto);
        let bytes: usize = self.handed.drain(..n).map(|m| cost(&m)).sum();
        self.bytes -= bytes;
        (n, bytes)
    }

    /// Whether nothing is held or reserved, so the entry may go.
    fn is_unused(&self) -> bool {
        self.is_empty() && self.reserved == 0
    }

    /// The oldest message's id; call after `take_queued`.
    fn oldest_handed(&self) -> Option<MessageId> {
        self.handed.front().map(|m| m.id)
    }
}

/// Every user's mailbox.
#[derive(Default)]
pub struct Mailboxes {
    boxes: IdMap<UserId, Mailbox>,
    /// Messages held across all mailboxes (for logs and metrics).
    total: usize,
    /// Bytes held across all mailboxes plus those reserved: what
    /// [`Budget::pending_bytes`] caps.
    pending_bytes: usize,
}

impl Mailboxes {
    /// Unacknowledged messages of `user`.
    #[cfg(test)]
    pub fn len_of(&self, user: UserId) -> usize {
        self.boxes.get(&user).map_or(0, Mailbox::len)
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes held in all mailboxes, reservations included.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Claims room for one message of `bytes` in `user`'s mailbox, or says
    /// which cap it would pass. Nothing changes when it fails.
    pub fn reserve(&mut self, user: UserId, bytes: usize, budget: &Budget) -> Result<(), Full> {
        // One lookup when the mailbox exists (the busy case).
        let pending = self.pending_bytes;
        let check = |held: usize, held_bytes: usize| {
            if held >= budget.messages {
                Err(Full::Messages(held))
            } else if held_bytes.saturating_add(bytes) > budget.bytes {
                Err(Full::Bytes(held_bytes))
            } else if pending.saturating_add(bytes) > budget.pending_bytes {
                Err(Full::Pending(pending))
            } else {
                Ok(())
            }
        };
        match self.boxes.get_mut(&user) {
            Some(mailbox) => {
                check(
                    mailbox.len() + mailbox.reserved,
                    mailbox.bytes + mailbox.reserved_bytes,
                )?;
                mailbox.reserved += 1;
                mailbox.reserved_bytes += bytes;
            }
            None => {
                check(0, 0)?;
                let mut mailbox = Mailbox::new();
                mailbox.reserved = 1;
                mailbox.reserved_bytes = bytes;
                self.boxes.insert(user, mailbox);
            }
        }
        self.pending_bytes += bytes;
        Ok(())
    }

    /// Gives back a reservation whose message was not stored.
    pub fn release(&mut self, user: UserId, bytes: usize) {
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            debug_assert!(false, "a reservation keeps its mailbox");
            return;
        };
        mailbox.reserved -= 1;
        mailbox.reserved_bytes -= bytes;
        self.pending_bytes -= bytes;
        if mailbox.is_unused() {
            self.boxes.remove(&user);
        }
    }

    /// Stores a message whose room was reserved with [`Mailboxes::reserve`].
    pub fn deliver_reserved(&mut self, message: Arc<Message>, pushed: bool) {
        let bytes = cost(&message);
        let Some(mailbox) = self.boxes.get_mut(&message.to_id) else {
            debug_assert!(false, "a reservation keeps its mailbox");
            return self.deliver(message, pushed);
        };
        mailbox.reserved -= 1;
        mailbox.reserved_bytes -= bytes;
        self.total += 1;
        mailbox.deliver(message, pushed);
    }

    /// Stores a message without a reservation (loading at start: a mailbox
    /// may then hold more than a cap lowered since, and takes no SEND until
    /// it is back under).
    pub fn deliver(&mut self, message: Arc<Message>, pushed: bool) {
        self.total += 1;
        self.pending_bytes += cost(&message);
        self.boxes
            .entry(message.to_id)
            .or_insert_with(Mailbox::new)
            .deliver(message, pushed);
    }

    pub fn read(
        &mut self,
        user: UserId,
        after: MessageId,
        limit: usize,
        max_bytes: usize,
    ) -> Vec<Arc<Message>> {
        match self.boxes.get_mut(&user) {
            Some(mailbox) => mailbox.read(after, limit, max_bytes),
            None => Vec::new(),
        }
    }

    /// Whether acknowledging up to `upto` would end custody of anything.
    pub fn would_ack(&mut self, user: UserId, upto: MessageId) -> bool {
        match self.boxes.get_mut(&user) {
            Some(mailbox) => {
                mailbox.take_queued();
                mailbox.oldest_handed().is_some_and(|oldest| oldest <= upto)
            }
            None => false,
        }
    }

    /// Ends custody of `user`'s messages up to `upto`; returns how many.
    pub fn ack(&mut self, user: UserId, upto: MessageId) -> usize {
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            return 0;
        };
        let (n, bytes) = mailbox.ack(upto);
        self.total -= n;
        self.pending_bytes -= bytes;
        if mailbox.is_unused() {
            self.boxes.remove(&user);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Parties;

    fn msg(id: MessageId, to: UserId) -> Arc<Message> {
        let parties = Parties {
            from_id: 9,
            from: "sender",
            to_id: to,
            to: "rcpt",
        };
        Arc::new(Message::new(id, &parties, 0, "hello", None))
    }

    fn ids(v: &[Arc<Message>]) -> Vec<MessageId> {
        v.iter().map(|m| m.id).collect()
    }

    #[test]
    fn read_is_repeatable_until_acknowledged() {
        let mut boxes = Mailboxes::default();
        for id in [3, 5, 8] {
            boxes.deliver(msg(id, 1), false);
        }
        assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20)), [3, 5, 8]);
        assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20)), [3, 5, 8]);
        assert_eq!(ids(&boxes.read(1, 3, 1, 1 << 20)), [5]);
        assert_eq!(boxes.ack(1, 5), 2);
        assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20)), [8]);
        assert_eq!(boxes.total(), 1);
    }

    #[test]
    fn pushed_and_queued_messages_keep_id_order() {
        let mut boxes = Mailboxes::default();
        boxes.deliver(msg(1, 1), false);
        boxes.deliver(msg(2, 1), true);
        boxes.deliver(msg(3, 1), false);
        assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20)), [1, 2, 3]);
    }

    #[test]
    fn ack_above_newest_leaves_later_messages() {
        let mut boxes = Mailboxes::default();
        boxes.deliver(msg(1, 1), false);
        assert_eq!(boxes.ack(1, 1000), 1);
        assert_eq!(boxes.len_of(1), 0);
        boxes.deliver(msg(2, 1), false);
        assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20)), [2]);
    }

    #[test]
    fn would_ack_sees_queued_messages() {
        let mut boxes = Mailboxes::default();
        assert!(!boxes.would_ack(1, 10));
        boxes.deliver(msg(4, 1), false);
        assert!(!boxes.would_ack(1, 3));
        assert!(boxes.would_ack(1, 4));
    }

    #[test]
    fn byte_budget_still_returns_one_message() {
        let mut boxes = Mailboxes::default();
        boxes.deliver(msg(1, 1), false);
        boxes.deliver(msg(2, 1), false);
        assert_eq!(ids(&boxes.read(1, 0, 100, 1)), [1]);
    }

    #[test]
    fn mailboxes_of_users_are_separate() {
        let mut boxes = Mailboxes::default();
        boxes.deliver(msg(1, 1), false);
        boxes.deliver(msg(2, 2), false);
        assert_eq!(ids(&boxes.read(2, 0, 100, 1 << 20)), [2]);
        assert_eq!(boxes.ack(2, 100), 1);
        assert_eq!(boxes.len_of(1), 1);
    }

    const ROOMY: Budget = Budget {
        messages: 100,
        bytes: 1 << 20,
        pending_bytes: 1 << 20,
    };

    #[test]
    fn reservations_count_against_the_caps_until_stored_or_released() {
        let mut boxes = Mailboxes::default();
        let m = msg(1, 1);
        let size = cost(&m);
        let two = Budget {
            messages: 2,
            ..ROOMY
        };
        boxes.reserve(1, size, &two).unwrap();
        boxes.reserve(1, size, &two).unwrap();
        assert_eq!(boxes.reserve(1, size, &two), Err(Full::Messages(2)));
        assert_eq!(boxes.pending_bytes(), 2 * size);
        boxes.deliver_reserved(m, false);
        boxes.release(1, size);
        assert_eq!((boxes.total(), boxes.len_of(1)), (1, 1));
        assert_eq!(boxes.pending_bytes(), size);
        boxes.reserve(1, size, &two).unwrap();
        assert_eq!(boxes.reserve(1, size, &two), Err(Full::Messages(2)));
    }

    #[test]
    fn bytes_are_capped_per_mailbox_and_in_all() {
        let mut boxes = Mailboxes::default();
        let size = cost(&msg(1, 1));
        let tight = Budget {
            bytes: 2 * size,
            pending_bytes: 3 * size,
            ..ROOMY
        };
        boxes.reserve(1, size, &tight).unwrap();
        boxes.reserve(1, size, &tight).unwrap();
        assert_eq!(boxes.reserve(1, 1, &tight), Err(Full::Bytes(2 * size)));
        boxes.reserve(2, size, &tight).unwrap();
        assert_eq!(boxes.reserve(3, 1, &tight), Err(Full::Pending(3 * size)));
        // A refusal changes nothing.
        assert_eq!(boxes.pending_bytes(), 3 * size);
        boxes.deliver_reserved(msg(1, 1), false);
        boxes.deliver_reserved(msg(2, 1), true);
        assert_eq!(boxes.ack(1, 2), 2);
        assert_eq!(boxes.pending_bytes(), size);
        boxes.reserve(3, size, &tight).unwrap();
    }

    #[test]
    fn a_mailbox_with_reservations_outlives_its_messages() {
        let mut boxes = Mailboxes::default();
        boxes.deliver(msg(1, 1), false);
        let size = cost(&msg(2, 1));
        boxes.reserve(1, size, &ROOMY).unwrap();
        assert_eq!(boxes.ack(1, 1), 1);
        boxes.deliver_reserved(msg(2, 1), false);
        assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20)), [2]);
        assert_eq!(boxes.pending_bytes(), size);
        assert_eq!(boxes.ack(1, 2), 1);
        assert_eq!(boxes.pending_bytes(), 0);
        assert!(boxes.boxes.is_empty());
    }

    #[test]
    fn escaped_content_costs_its_stored_size() {
        let parties = Parties {
            from_id: 9,
            from: "s",
            to_id: 1,
            to: "r",
        };
        let plain = Message::new(1, &parties, 0, "aaaa", None);
        let control = Message::new(1, &parties, 0, "\u{1}\u{1}\u{1}\u{1}", None);
        assert_eq!(cost(&control), cost(&plain) + 4 * 5);
    }
}
