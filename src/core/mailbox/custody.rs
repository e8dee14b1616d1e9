//! How custody ends in a mailbox: ACKs (begun, failed, stored) and
//! `--message-ttl` expiry take a mailbox's oldest messages and move every
//! figure they counted in (the mailbox's, the sender's, the totals); a
//! mailbox nothing needs any more is forgotten (at once when empty, else
//! past the bound of idle ones).

use super::{cost, Mailbox, Mailboxes, Taken};
use crate::{MessageId, UserId};

impl Mailboxes {
    /// Whether acknowledging up to `upto` may end custody of anything;
    /// `None` when the figures are not known.
    pub fn would_ack(&self, user: UserId, upto: MessageId) -> Option<bool> {
        let Some(mailbox) = self.boxes.get(&user) else {
            return (!self.on_demand).then_some(false);
        };
        Some(match mailbox.head.front() {
            _ if self.shared => upto > mailbox.floor,
            Some(oldest) => oldest.id <= upto,
            None => mailbox.count > 0 && upto > mailbox.floor,
        })
    }

    /// An ACK of `user`'s is being committed: the mailbox stays meanwhile.
    pub fn begin_ack(&mut self, user: UserId) {
        self.boxes.entry(user).or_default().acking += 1;
    }

    /// The ACK's commit failed.
    pub fn ack_failed(&mut self, user: UserId) {
        if let Some(mailbox) = self.boxes.get_mut(&user) {
            mailbox.acking -= 1;
        }
        self.settle(user);
    }

    /// Ends custody of `user`'s messages up to `upto` (their ACK was
    /// stored); returns how many. `removed` is what the store deleted,
    /// when it counts; else the head held them all.
    pub fn ack(&mut self, user: UserId, upto: MessageId, removed: Option<Taken<'_>>) -> usize {
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            return 0;
        };
        mailbox.acking = mailbox.acking.saturating_sub(1);
        self.take(user, upto, removed)
    }

    /// `--message-ttl` ended custody of `user`'s messages up to `upto`
    /// (the oldest ones, as an ACK would); returns how many. Every figure
    /// goes down, the sender's and the totals too when the mailbox's
    /// figures are not in RAM.
    pub fn expire(&mut self, user: UserId, upto: MessageId, removed: Option<Taken<'_>>) -> usize {
        if self.boxes.contains_key(&user) {
            return self.take(user, upto, removed);
        }
        let Some(taken) = removed else {
            return 0;
        };
        self.total = self.total.saturating_sub(taken.count);
        self.pending_bytes -= taken.bytes.min(self.pending_bytes);
        for &(sender, bytes) in taken.senders {
            self.senders.sub(sender, bytes);
        }
        taken.count
    }

    fn take(&mut self, user: UserId, upto: MessageId, removed: Option<Taken<'_>>) -> usize {
        let was = self.front_age(user);
        let n = self.take_here(user, upto, removed);
        self.reindex(user, was);
        n
    }

    fn take_here(&mut self, user: UserId, upto: MessageId, removed: Option<Taken<'_>>) -> usize {
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            return 0;
        };
        let n = mailbox.head.partition_point(|m| m.id <= upto);
        let mut head_bytes = 0;
        for m in mailbox.head.drain(..n) {
            let bytes = cost(&m);
            head_bytes += bytes;
            if removed.is_none() {
                self.senders.sub(m.from_id, bytes);
            }
        }
        mailbox.head_bytes -= head_bytes;
        self.resident -= n;
        let (count, bytes) = removed.map_or((n, head_bytes), |t| (t.count, t.bytes));
        for &(sender, bytes) in removed.map_or(&[][..], |t| t.senders) {
            self.senders.sub(sender, bytes);
        }
        let count = count.min(mailbox.count);
        let bytes = bytes.min(mailbox.bytes);
        mailbox.count -= count;
        mailbox.bytes -= bytes;
        mailbox.floor = mailbox.floor.max(upto);
        self.total = self.total.saturating_sub(count); // shared: an estimate
        self.pending_bytes -= bytes.min(self.pending_bytes);
        self.settle(user);
        count
    }

    /// Forgets `user`'s mailbox if nothing needs it: at once when empty
    /// (nothing to remember), else once more than `idle_limit` wait idle.
    pub(super) fn settle(&mut self, user: UserId) {
        let Some(mailbox) = self.boxes.get(&user) else {
            return;
        };
        if !mailbox.is_idle() {
            return;
        }
        if mailbox.count == 0 {
            self.boxes.remove(&user);
            return;
        }
        if self.on_demand {
            self.became_idle(user);
        }
    }

    pub(super) fn became_idle(&mut self, user: UserId) {
        self.idle.push_back(user);
        // Each idle mailbox was queued at least once; stale entries are
        // skipped. At most a few are looked at per call.
        for _ in 0..4 {
            if self.idle.len() <= self.idle_limit {
                break;
            }
            let Some(old) = self.idle.pop_front() else {
                break;
            };
            if self.boxes.get(&old).is_some_and(Mailbox::is_idle) && old != user {
                let gone = self.boxes.remove(&old).expect("just seen");
                self.resident -= gone.head.len();
            }
        }
    }
}
