//! Mailboxes when several nodes share one PostgreSQL database: another
//! node may store a message for a user held here, or take an ACK of theirs,
//! and this node hears of it by a wake-up (ids and sizes, see
//! `store::postgres::wakeup`). What RAM holds is then kept true enough:
//!
//! - the figures of users not bound here (a receiver on another node, a
//!   SEND's caps are checked against) are forgotten at each periodic check
//!   ([`Mailboxes::forget_idle`]) and read again when needed: another node
//!   may change them unseen, so they are at most that old;
//! - a head answers a SYNC only when it fills the answer; otherwise the
//!   store does (a message committed elsewhere may not be heard of yet);
//!   an ACK above the floor always goes to the store;
//! - wake-ups move the figures of the mailboxes held ([`Mailboxes::remote_stored`],
//!   [`Mailboxes::remote_acked`]), and the periodic check puts the store's
//!   figures in place of a quiet mailbox's ([`Mailboxes::resync`]).

use super::{cost, Mailboxes};
use crate::{MessageId, UserId};

/// What a mailbox looked like when its figures were asked for: if it
/// looks the same when they come, nothing changed it meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    count: usize,
    bytes: usize,
    floor: MessageId,
}

impl Mailboxes {
    /// Other nodes change the store too (see the module comment).
    pub fn set_shared(&mut self) {
        self.shared = true;
    }

    /// Forgets the figures of every mailbox nothing here needs (no user
    /// bound, nothing in flight): another node may have changed them, so
    /// they are read again when needed. Run at each periodic check, so
    /// figures a SEND is checked against are at most that old.
    pub fn forget_idle(&mut self) {
        for user in std::mem::take(&mut self.idle) {
            if self.boxes.get(&user).is_some_and(|m| m.is_idle()) {
                let gone = self.boxes.remove(&user).expect("just seen");
                self.resident -= gone.head.len();
            }
        }
    }

    /// Another node stored message `id` (of `bytes`) for `user`: counted
    /// when this node holds the figures. A head holding messages above it
    /// (committed later, heard of first) is cut back so it stays the
    /// oldest messages in order; the rest is read again from the store.
    pub fn remote_stored(&mut self, user: UserId, id: MessageId, bytes: usize) {
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            return;
        };
        if id <= mailbox.floor {
            return; // acknowledged already (an ACK up to a higher id)
        }
        mailbox.count += 1;
        mailbox.bytes += bytes;
        self.total += 1;
        self.pending_bytes += bytes;
        let keep = mailbox.head.partition_point(|m| m.id < id);
        for gone in mailbox.head.drain(keep..) {
            mailbox.head_bytes -= cost(&gone);
            self.resident -= 1;
        }
    }

    /// `user` acknowledged up to `upto` on another node, which removed
    /// `count` messages of `bytes` from the store.
    pub fn remote_acked(&mut self, user: UserId, upto: MessageId, count: usize, bytes: usize) {
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            return;
        };
        let n = mailbox.head.partition_point(|m| m.id <= upto);
        let head_bytes: usize = mailbox.head.drain(..n).map(|m| cost(&m)).sum();
        mailbox.head_bytes -= head_bytes;
        self.resident -= n;
        let count = count.min(mailbox.count);
        let bytes = bytes.min(mailbox.bytes);
        mailbox.count -= count;
        mailbox.bytes -= bytes;
        mailbox.floor = mailbox.floor.max(upto);
        self.total -= count.min(self.total);
        self.pending_bytes -= bytes.min(self.pending_bytes);
        self.settle(user);
    }

    /// `user`'s figures as they are now, if held and nothing is in flight
    /// for them (no SEND, ACK or page read): they may be read again.
    pub fn quiet_fingerprint(&self, user: UserId) -> Option<Fingerprint> {
        let m = self.boxes.get(&user)?;
        (m.reserved == 0 && m.acking == 0 && !m.filling).then_some(Fingerprint {
            count: m.count,
            bytes: m.bytes,
            floor: m.floor,
        })
    }

    /// The store's figures for `user`, read since `before` was taken: they
    /// replace the held ones if nothing changed them meanwhile, and the
    /// head is dropped, to be read again. Returns whether they did.
    pub fn resync(
        &mut self,
        user: UserId,
        before: Fingerprint,
        count: usize,
        bytes: usize,
    ) -> bool {
        if self.quiet_fingerprint(user) != Some(before) {
            return false;
        }
        let mailbox = self.boxes.get_mut(&user).expect("just seen");
        self.total = self.total - mailbox.count.min(self.total) + count;
        self.pending_bytes = self.pending_bytes - mailbox.bytes.min(self.pending_bytes) + bytes;
        mailbox.count = count;
        mailbox.bytes = bytes;
        self.resident -= mailbox.head.len();
        mailbox.head.clear();
        mailbox.head_bytes = 0;
        self.settle(user);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Mailboxes, Window};
    use crate::message::{Message, Parties};
    use std::sync::Arc;

    fn shared() -> Mailboxes {
        let window = Window {
            messages: 10,
            bytes: 1 << 20,
        };
        let mut boxes = Mailboxes::new(true, window, 10);
        boxes.set_shared();
        boxes
    }

    fn msg(id: u64) -> Arc<Message> {
        let parties = Parties {
            from_id: 9,
            from: "sender",
            to_id: 1,
            to: "rcpt",
        };
        Message::new(id, &parties, 0, "hello", None)
    }

    #[test]
    fn a_message_stored_elsewhere_is_counted_and_sends_sync_to_the_store() {
        let mut boxes = shared();
        boxes.load(1, 0, 0, true, Vec::new());
        boxes.remote_stored(1, 7, 100);
        assert_eq!((boxes.len_of(1), boxes.total()), (1, 1));
        assert!(boxes.read(1, 0, 10, 1 << 20).is_none(), "the store answers");
        assert_eq!(boxes.would_ack(1, 7), Some(true));
        boxes.remote_stored(2, 8, 100);
        assert_eq!(boxes.total(), 1, "a mailbox not held here is not counted");
    }

    #[test]
    fn a_head_is_cut_back_below_a_message_committed_earlier_elsewhere() {
        let mut boxes = shared();
        boxes.load(1, 0, 0, true, Vec::new());
        let eleven = msg(11);
        boxes
            .reserve(1, 9, super::super::cost(&eleven), &budget())
            .unwrap();
        boxes.deliver_reserved(eleven, true);
        assert_eq!(boxes.resident(), 1);
        boxes.remote_stored(1, 10, 100);
        assert_eq!((boxes.len_of(1), boxes.resident()), (2, 0));
    }

    #[test]
    fn an_ack_elsewhere_moves_the_floor_and_the_figures() {
        let mut boxes = shared();
        boxes.load(1, 3, 300, true, Vec::new());
        boxes.remote_acked(1, 20, 2, 200);
        assert_eq!((boxes.len_of(1), boxes.floor(1)), (1, 20));
        boxes.remote_stored(1, 15, 100);
        assert_eq!(boxes.len_of(1), 1, "at or below the floor: gone already");
    }

    #[test]
    fn a_resync_applies_only_if_nothing_changed_meanwhile() {
        let mut boxes = shared();
        boxes.load(1, 2, 200, true, Vec::new());
        let before = boxes.quiet_fingerprint(1).unwrap();
        boxes.remote_stored(1, 30, 100);
        assert!(!boxes.resync(1, before, 5, 500));
        let before = boxes.quiet_fingerprint(1).unwrap();
        assert!(boxes.resync(1, before, 5, 500));
        assert_eq!((boxes.len_of(1), boxes.total()), (5, 5));
    }

    fn budget() -> super::super::Budget {
        super::super::Budget {
            messages: 100,
            bytes: 1 << 20,
            per_sender: 1 << 30,
            pending_bytes: 1 << 30,
        }
    }
}
