//! Per-user mailboxes. As in the original goTalk, each user has a channel
//! (`crossbeam-channel`) that new messages are queued on; unlike the
//! original, dequeuing does not end custody. A message taken from the
//! channel moves to the `handed` list, where it stays until the user
//! acknowledges it, so a lost reply or a dropped connection loses nothing.
//! A mailbox exists only while it holds messages: idle users cost nothing.

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
}

impl Mailbox {
    fn new() -> Mailbox {
        let (queue_tx, queue_rx) = crossbeam_channel::unbounded();
        Mailbox {
            queue_tx,
            queue_rx,
            handed: VecDeque::new(),
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

    /// Ends custody of every message up to `upto`; returns how many.
    fn ack(&mut self, upto: MessageId) -> usize {
        self.take_queued();
        let n = self.handed.partition_point(|m| m.id <= upto);
        self.handed.drain(..n);
        n
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
}

impl Mailboxes {
    /// Unacknowledged messages of `user`.
    pub fn len_of(&self, user: UserId) -> usize {
        self.boxes.get(&user).map_or(0, Mailbox::len)
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn deliver(&mut self, message: Arc<Message>, pushed: bool) {
        self.total += 1;
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
        let n = mailbox.ack(upto);
        self.total -= n;
        if mailbox.is_empty() {
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
}
