//! `--message-ttl`: unacknowledged messages older than the TTL leave
//! custody unread, as if their receivers had acknowledged them, and every
//! figure they counted in goes down (their mailbox's, their sender's, the
//! global pool's). Off by default: custody then ends only with an ACK.
//!
//! Work comes in bounded steps of at most [`STEP`] messages, the next
//! one soon while a step comes back full, else every [`EVERY_MS`]:
//!
//! - with a store that keeps data, the core asks it to end custody of the
//!   oldest messages past the TTL ([`WriteOp::Expire`]) in a batch like
//!   any other write; the store says what left which mailbox, and from
//!   which senders ([`crate::store::Committed::expired`]);
//! - with `--memory`, every message is in RAM: an index of the mailboxes
//!   by their oldest message's time says where to start (see
//!   `mailbox/age.rs`), one entry per mailbox that holds any.
//!
//! Taken in id order, what leaves one mailbox is always its oldest
//! messages, so an expiry is applied like an ACK up to the newest one
//! taken. A history of conversations, once there is one, keeps such
//! messages: expiry ends custody (what the receiver still has to fetch),
//! not the record; the store's step is where that choice belongs.

use super::mailbox::Taken;
use super::{Core, Outbox};
use crate::idhash::IdMap;
use crate::store::{Committed, WriteOp};
use crate::{Millis, UserId};

/// Most messages one step takes out of custody.
pub const STEP: usize = 1024;
/// How often a step runs while none is known to be due at once.
pub const EVERY_MS: Millis = 1000;

#[derive(Default)]
pub(super) struct Expiry {
    /// The batch whose step is in flight, if one is.
    in_flight: Option<u64>,
    /// When the next step is due.
    next: Millis,
    /// Receivers whose mailbox figures were being read while a step took
    /// some of their messages: that answer may predate the step, so it is
    /// not kept (the figures are read again).
    stale: IdMap<UserId, ()>,
}

impl Expiry {
    pub fn next_deadline(&self) -> Millis {
        match self.in_flight {
            Some(_) => Millis::MAX,
            None => self.next,
        }
    }

    /// Whether a mailbox answer for `user` must be read again.
    pub fn take_stale(&mut self, user: UserId) -> bool {
        self.stale.remove(&user).is_some()
    }
}

impl Core {
    /// A step of expiry, when one is due.
    pub(super) fn expire_step(&mut self, now: Millis, _out: &mut Outbox) {
        let Some(ttl) = self.settings.message_ttl_ms else {
            return;
        };
        if now < self.expiry.next_deadline() {
            return;
        }
        let before = now.saturating_sub(ttl);
        if self.settings.on_demand {
            self.writes.push(WriteOp::Expire {
                before,
                limit: STEP,
            });
            self.expiry.in_flight = Some(self.writes.open_seq());
            return;
        }
        let mut taken = 0;
        while taken < STEP {
            match self.mailboxes.oldest() {
                Some((ts, user)) if ts < before => {
                    let n = self.mailboxes.expire_older(user, before, STEP - taken);
                    self.counters.messages_expired += n as u64;
                    taken += n.max(1);
                }
                _ => break,
            }
        }
        self.expiry.next = now + if taken == STEP { 1 } else { EVERY_MS };
    }

    /// The store finished a batch: if it held a step of expiry, what the
    /// step took leaves the figures.
    pub(super) fn expired(&mut self, done: &Committed, now: Millis, _out: &mut Outbox) {
        if self.expiry.in_flight.is_none_or(|seq| seq > done.seq) {
            return;
        }
        self.expiry.in_flight = None;
        let mut taken = 0;
        if done.result.is_ok() {
            for r in &done.expired {
                let (user, upto) = (r.user, r.upto);
                if !self.mailboxes.is_known(user) && self.reads.is_mailbox_asked(user) {
                    self.expiry.stale.insert(user, ());
                }
                let t = Taken {
                    count: r.count,
                    bytes: r.bytes,
                    senders: &r.senders,
                };
                let n = self.mailboxes.expire(user, upto, Some(t));
                self.counters.messages_expired += n as u64;
                taken += r.count;
            }
            if taken > 0 {
                log::debug!("expired {taken} unacknowledged messages (--message-ttl)");
            }
        }
        self.expiry.next = now + if taken >= STEP { 1 } else { EVERY_MS };
    }
}
