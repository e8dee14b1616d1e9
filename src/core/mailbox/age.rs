//! With `--memory` and `--message-ttl`: which mailbox holds the oldest
//! message. Every message is in RAM there (each mailbox's head is the
//! whole mailbox, in id order), so an ordered set of (oldest message's
//! time, user), one entry per non-empty mailbox, says where expiry starts
//! without a walk of every mailbox; it is moved wherever a head's front
//! changes (a message into an empty mailbox, an ACK, an expiry). With a
//! store that keeps data the store finds what expired, and this is off.

use super::Mailboxes;
use crate::{MessageId, Millis, UserId};

impl Mailboxes {
    /// Keeps the age index from now on (only where every message is in RAM).
    pub fn track_age(&mut self) {
        self.ages = (!self.on_demand).then(Default::default);
    }

    /// The time of `user`'s oldest message held, if the index is kept.
    pub(super) fn front_age(&self, user: UserId) -> Option<Millis> {
        self.ages.as_ref()?;
        self.boxes.get(&user)?.head.front().map(|m| m.ts)
    }

    /// `user`'s oldest message was `was` (as [`Mailboxes::front_age`]
    /// said before a change): the index follows what it is now.
    pub(super) fn reindex(&mut self, user: UserId, was: Option<Millis>) {
        let now = self.front_age(user);
        let Some(ages) = self.ages.as_mut() else {
            return;
        };
        if was == now {
            return;
        }
        if let Some(ts) = was {
            ages.remove(&(ts, user));
        }
        if let Some(ts) = now {
            ages.insert((ts, user));
        }
    }

    /// The mailbox holding the oldest message, and its time.
    pub fn oldest(&self) -> Option<(Millis, UserId)> {
        self.ages.as_ref()?.first().copied()
    }

    /// Ends custody of `user`'s messages stored before `before`, oldest
    /// first, at most `max` of them; returns how many.
    pub fn expire_older(&mut self, user: UserId, before: Millis, max: usize) -> usize {
        let Some(mailbox) = self.boxes.get(&user) else {
            return 0;
        };
        let upto: Option<MessageId> = mailbox
            .head
            .iter()
            .take(max)
            .take_while(|m| m.ts < before)
            .last()
            .map(|m| m.id);
        match upto {
            Some(upto) => self.expire(user, upto, None),
            None => 0,
        }
    }
}
