//! Per-user mailboxes: what the core knows of each user's unacknowledged
//! messages. Custody ends only with an ACK, so a lost reply or a dropped
//! connection loses nothing.
//!
//! With a store that keeps data, a mailbox in RAM is a window: its figures
//! (how many messages, how many bytes, reservations) and at most a bounded
//! head of its oldest messages (`--mailbox-window` messages and
//! `--mailbox-window-bytes`), kept only while the user is active (logged
//! in on a connection, or long-polling). The rest stays in the store and
//! is read in id order (a page after the last id held) as the head drains.
//! A mailbox whose figures are not in RAM is read on demand; idle ones are
//! forgotten beyond a bound. With `--memory` every message stays in RAM.
//!
//! Budgets: a SEND reserves its place (one message, its size as stored)
//! before its commit, so SENDs in flight count against the recipient's
//! message and byte caps and the global budget of pending bytes; the
//! commit turns the reservation into the stored message, a failed commit
//! gives it back. Every figure is a counter kept as messages come and go,
//! so a check is a comparison. The sender's figure
//! (`--pending-bytes-per-sender`, see [`senders`]) moves with the
//! same reservations and removals.

mod age;
mod custody;
pub mod senders;
mod shared;

pub use shared::Fingerprint;

use crate::idhash::IdMap;
use crate::message::Message;
use crate::store::ReadOp;
use crate::{MessageId, UserId};
use senders::Senders;
use std::collections::VecDeque;
use std::sync::Arc;

/// One user's unacknowledged messages. Invariant: `head` holds the
/// `head.len()` oldest of the `count` messages, in id order; the others
/// are in the store.
#[derive(Default)]
pub struct Mailbox {
    /// Messages stored and not acknowledged, and their size.
    count: usize,
    bytes: usize,
    head: VecDeque<Arc<Message>>,
    head_bytes: usize,
    /// SENDs to this mailbox accepted and not yet committed, and their size.
    reserved: usize,
    reserved_bytes: usize,
    /// The highest id acknowledged so far: the store holds none at or below.
    floor: MessageId,
    /// ACKs being committed.
    acking: usize,
    /// A page read to extend the head is in flight.
    filling: bool,
    /// The user is logged in or long-polling: the head is kept.
    active: bool,
}

/// What a message costs a mailbox: its JSON, as held in memory (a message
/// of control characters costs its escaped size).
pub fn cost(message: &Message) -> usize {
    message.cost()
}

/// The caps a reservation is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Most messages one mailbox holds, reservations included.
    pub messages: usize,
    /// Most bytes one mailbox holds, reservations included.
    pub bytes: usize,
    /// Most bytes one sender's messages take in all mailboxes together,
    /// reservations included.
    pub per_sender: usize,
    /// Most bytes all mailboxes hold together, reservations included.
    pub pending_bytes: usize,
}

/// Which cap a reservation would pass, with the figure it was at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    Messages(usize),
    Bytes(usize),
    Sender(usize),
    Pending(usize),
}

/// What left a mailbox's custody as the store counted it: how many
/// messages, their bytes, and those bytes by sender.
#[derive(Clone, Copy, Debug)]
pub struct Taken<'a> {
    pub count: usize,
    pub bytes: usize,
    pub senders: &'a [(UserId, usize)],
}

impl Mailbox {
    /// Whether messages beyond the head wait in the store.
    fn has_tail(&self) -> bool {
        self.count > self.head.len()
    }

    /// Whether nothing depends on this entry: it may be forgotten (its
    /// figures can be read again).
    fn is_idle(&self) -> bool {
        self.reserved == 0 && self.acking == 0 && !self.filling && !self.active
    }

    fn push_head(&mut self, message: Arc<Message>) {
        self.head_bytes += cost(&message);
        self.head.push_back(message);
    }
}

/// How much a head may hold.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub messages: usize,
    pub bytes: usize,
}

/// Every user's mailbox.
pub struct Mailboxes {
    boxes: IdMap<UserId, Mailbox>,
    /// Whether the store holds what is not here (else: all is here).
    on_demand: bool,
    window: Window,
    /// Most mailboxes kept while idle.
    idle_limit: usize,
    /// Mailboxes that became idle, oldest first (some may be busy again,
    /// or gone: checked when they come up).
    idle: VecDeque<UserId>,
    /// Messages in custody across all mailboxes, in RAM or not.
    total: usize,
    /// Bytes in custody across all mailboxes plus those reserved: what
    /// [`Budget::pending_bytes`] caps.
    pending_bytes: usize,
    /// Messages held in heads.
    resident: usize,
    /// Other nodes change the store too (several nodes on one PostgreSQL,
    /// see [`shared`]): figures are kept only for this node's users, and
    /// a head answers only what it holds in full.
    shared: bool,
    /// Each sender's bytes in custody, reservations included.
    senders: Senders,
    /// `--memory` with `--message-ttl`: (oldest message's time, user) of
    /// every non-empty mailbox (see [`age`]).
    ages: Option<std::collections::BTreeSet<(crate::Millis, UserId)>>,
}

impl Default for Mailboxes {
    /// Everything in RAM.
    fn default() -> Mailboxes {
        Mailboxes::new(
            false,
            Window {
                messages: usize::MAX,
                bytes: usize::MAX,
            },
            usize::MAX,
        )
    }
}

impl Mailboxes {
    pub fn new(on_demand: bool, window: Window, idle_limit: usize) -> Mailboxes {
        let window = if on_demand {
            Window {
                messages: window.messages.max(1),
                bytes: window.bytes.max(1),
            }
        } else {
            Window {
                messages: usize::MAX,
                bytes: usize::MAX,
            }
        };
        Mailboxes {
            boxes: IdMap::default(),
            on_demand,
            window,
            idle_limit: idle_limit.max(1),
            idle: VecDeque::new(),
            total: 0,
            pending_bytes: 0,
            resident: 0,
            shared: false,
            senders: Senders::default(),
            ages: None,
        }
    }

    /// Unacknowledged messages of `user`.
    #[cfg(test)]
    pub fn len_of(&self, user: UserId) -> usize {
        self.boxes.get(&user).map_or(0, |m| m.count)
    }

    /// `user`'s messages in custody and their size, as far as RAM knows.
    pub fn figures_of(&self, user: UserId) -> (usize, usize) {
        self.boxes.get(&user).map_or((0, 0), |m| (m.count, m.bytes))
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Messages held in RAM.
    pub fn resident(&self) -> usize {
        self.resident
    }

    /// Bytes held in all mailboxes, reservations included.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Each sender's bytes in custody.
    /// Names as top holders only senders holding at least `floor` bytes
    /// (see [`Senders::rank_from`]).
    pub fn rank_senders_from(&mut self, floor: usize) {
        self.senders.rank_from(floor);
    }

    pub fn senders(&self) -> &Senders {
        &self.senders
    }

    /// A sender's figure as the store kept it, at start.
    pub fn add_sender_bytes(&mut self, sender: UserId, bytes: usize) {
        self.senders.add(sender, bytes);
    }

    /// The totals in the store at start.
    pub fn add_totals(&mut self, messages: usize, bytes: usize) {
        self.total += messages;
        self.pending_bytes += bytes;
    }

    /// Whether `user`'s figures are known (else read them: [`ReadOp::Mailbox`]).
    pub fn is_known(&self, user: UserId) -> bool {
        !self.on_demand || self.boxes.contains_key(&user)
    }

    /// The figures read from the store for `user`, with its oldest
    /// messages when they were read too (kept unless known since; the
    /// messages only while the user is active, as far as the window goes).
    pub fn load(
        &mut self,
        user: UserId,
        count: usize,
        bytes: usize,
        active: bool,
        oldest: Vec<Arc<Message>>,
    ) {
        if self.boxes.contains_key(&user) {
            return;
        }
        let mut mailbox = Mailbox {
            count,
            bytes,
            active,
            ..Mailbox::default()
        };
        if active && self.on_demand {
            for message in oldest {
                let room = mailbox.head.is_empty()
                    || (mailbox.head.len() < self.window.messages
                        && mailbox.head_bytes + cost(&message) <= self.window.bytes);
                let next = mailbox.head.back().map_or(0, |m| m.id) < message.id;
                if !room || !next || mailbox.head.len() == count {
                    break;
                }
                mailbox.push_head(message);
                self.resident += 1;
            }
        }
        let idle = mailbox.is_idle();
        self.boxes.insert(user, mailbox);
        if idle {
            self.became_idle(user);
        }
    }

    /// Marks `user` active (logged in or long-polling: the head is kept)
    /// or not (the head is dropped; the messages stay in the store).
    pub fn set_active(&mut self, user: UserId, active: bool) {
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            return;
        };
        mailbox.active = active;
        if !active && self.on_demand {
            self.resident -= mailbox.head.len();
            mailbox.head.clear();
            mailbox.head_bytes = 0;
            self.settle(user);
        }
    }

    /// A read to extend `user`'s head, if it is active, runs low and more
    /// waits in the store. Marks the read in flight.
    pub fn fill(&mut self, user: UserId) -> Option<ReadOp> {
        let window = self.window;
        let mailbox = self.boxes.get_mut(&user)?;
        // Low: under half the window in messages AND in bytes (whichever
        // binds: many small messages or a few large ones); a head still
        // half full in either waits, so pages are read in bulk.
        let low = mailbox.head.len() < window.messages.div_ceil(2)
            && mailbox.head_bytes < window.bytes / 2;
        if !mailbox.active || mailbox.filling || !mailbox.has_tail() || !low {
            return None;
        }
        mailbox.filling = true;
        Some(ReadOp::Page {
            user,
            after: mailbox
                .head
                .back()
                .map_or(mailbox.floor, |m| m.id)
                .max(mailbox.floor),
            limit: window.messages.saturating_sub(mailbox.head.len()).max(1),
            max_bytes: window.bytes.saturating_sub(mailbox.head_bytes).max(1),
        })
    }

    /// The page a [`Mailboxes::fill`] asked for (`None`: the read failed).
    /// Messages the head holds or that were acknowledged meanwhile are
    /// skipped; the rest continue the head.
    pub fn filled(&mut self, user: UserId, page: Option<Vec<Arc<Message>>>) {
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            return;
        };
        mailbox.filling = false;
        if mailbox.active {
            let window = self.window;
            for message in page.into_iter().flatten() {
                let room = mailbox.head.is_empty()
                    || (mailbox.head.len() < window.messages
                        && mailbox.head_bytes + cost(&message) <= window.bytes);
                if !room {
                    break;
                }
                let last = mailbox.head.back().map_or(0, |m| m.id).max(mailbox.floor);
                if message.id > last && mailbox.head.len() < mailbox.count {
                    mailbox.push_head(message);
                    self.resident += 1;
                }
            }
        }
        self.settle(user);
    }

    /// Claims room for one message of `bytes` from `from` in `user`'s
    /// mailbox (whose figures are known), or says which cap it would pass:
    /// the mailbox's, the sender's, then the global pool. Nothing changes
    /// when it fails.
    pub fn reserve(
        &mut self,
        user: UserId,
        from: UserId,
        bytes: usize,
        budget: &Budget,
    ) -> Result<(), Full> {
        let pending = self.pending_bytes;
        let sent = self.senders.held(from);
        let mailbox = self.boxes.entry(user).or_default();
        let held = mailbox.count + mailbox.reserved;
        let held_bytes = mailbox.bytes + mailbox.reserved_bytes;
        let caps = crate::store::MailboxCaps {
            messages: budget.messages,
            bytes: budget.bytes,
            per_sender: budget.per_sender,
        };
        let check = match caps.fits(held, held_bytes, sent, bytes) {
            Err(crate::store::Over::Messages) => Err(Full::Messages(held)),
            Err(crate::store::Over::Bytes) => Err(Full::Bytes(held_bytes)),
            Err(crate::store::Over::Sender) => Err(Full::Sender(sent)),
            Ok(()) if pending.saturating_add(bytes) > budget.pending_bytes => {
                Err(Full::Pending(pending))
            }
            Ok(()) => Ok(()),
        };
        if check.is_err() {
            self.settle(user);
            return check;
        }
        mailbox.reserved += 1;
        mailbox.reserved_bytes += bytes;
        self.pending_bytes += bytes;
        self.senders.add(from, bytes);
        Ok(())
    }

    /// Gives back a reservation (of `from`'s) whose message was not stored.
    pub fn release(&mut self, user: UserId, from: UserId, bytes: usize) {
        self.senders.sub(from, bytes);
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            debug_assert!(false, "a reservation keeps its mailbox");
            return;
        };
        mailbox.reserved -= 1;
        mailbox.reserved_bytes -= bytes;
        self.pending_bytes -= bytes;
        self.settle(user);
    }

    /// Stores a message whose room was reserved with [`Mailboxes::reserve`].
    /// It joins the head when the head holds the whole mailbox and has
    /// room, and the user is active or `wanted` (a long-poll waits).
    /// A reserved message turned out to cost `now` bytes instead of `was`
    /// (the store gave it an id with another number of digits).
    pub fn resize_reservation(&mut self, user: UserId, from: UserId, was: usize, now: usize) {
        self.senders.sub(from, was);
        self.senders.add(from, now);
        let Some(mailbox) = self.boxes.get_mut(&user) else {
            debug_assert!(false, "a reservation keeps its mailbox");
            return;
        };
        mailbox.reserved_bytes = mailbox.reserved_bytes - was + now;
        self.pending_bytes = self.pending_bytes - was + now;
    }

    pub fn deliver_reserved(&mut self, message: Arc<Message>, wanted: bool) {
        let user = message.to_id;
        let was = self.front_age(user);
        self.deliver_reserved_here(message, wanted);
        self.reindex(user, was);
    }

    fn deliver_reserved_here(&mut self, message: Arc<Message>, wanted: bool) {
        let bytes = cost(&message);
        let window = self.window;
        let Some(mailbox) = self.boxes.get_mut(&message.to_id) else {
            debug_assert!(false, "a reservation keeps its mailbox");
            return;
        };
        mailbox.reserved -= 1;
        mailbox.reserved_bytes -= bytes;
        let keep = !self.on_demand || mailbox.active || wanted;
        let contiguous = !mailbox.has_tail();
        mailbox.count += 1;
        mailbox.bytes += bytes;
        self.total += 1;
        if keep
            && contiguous
            && mailbox.head.len() < window.messages
            && mailbox.head_bytes.saturating_add(bytes) <= window.bytes
        {
            mailbox.push_head(message);
            self.resident += 1;
        }
    }

    /// Stores a message without a reservation (a state handed to the core
    /// at start: a mailbox may then hold more than a cap lowered since, and
    /// takes no SEND until it is back under).
    pub fn deliver(&mut self, message: Arc<Message>) {
        let (user, was) = (message.to_id, self.front_age(message.to_id));
        self.deliver_here(message);
        self.reindex(user, was);
    }

    fn deliver_here(&mut self, message: Arc<Message>) {
        self.total += 1;
        self.pending_bytes += cost(&message);
        self.senders.add(message.from_id, cost(&message));
        let mailbox = self.boxes.entry(message.to_id).or_default();
        mailbox.count += 1;
        mailbox.bytes += cost(&message);
        if !self.on_demand {
            mailbox.push_head(message);
            self.resident += 1;
        }
    }

    /// Up to `limit` messages with ids above `after`, oldest first, stopping
    /// before `max_bytes` of JSON (but always at least one), when the head
    /// can say; `None` when the answer needs the store.
    pub fn read(
        &mut self,
        user: UserId,
        after: MessageId,
        limit: usize,
        max_bytes: usize,
    ) -> Option<Vec<Arc<Message>>> {
        let Some(mailbox) = self.boxes.get(&user) else {
            return (!self.on_demand).then(Vec::new);
        };
        let start = mailbox.head.partition_point(|m| m.id <= after);
        let mut bytes = 0;
        let mut out = Vec::new();
        let mut full = false;
        for m in mailbox.head.range(start..).take(limit) {
            bytes += m.json().len() + 1;
            if bytes > max_bytes && !out.is_empty() {
                full = true;
                break;
            }
            out.push(m.clone());
        }
        if out.len() == limit || full || (!mailbox.has_tail() && !self.shared) {
            return Some(out);
        }
        None
    }

    /// The lowest id the store may still hold for `user`, for a page read.
    pub fn floor(&self, user: UserId) -> MessageId {
        self.boxes.get(&user).map_or(0, |m| m.floor)
    }
}

#[cfg(test)]
mod tests;
