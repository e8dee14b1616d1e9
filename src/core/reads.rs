//! The reads owner: requests that wait for the store. A command that needs what RAM does
//! not hold (an account not in the cache, a mailbox's figures, a page of
//! messages beyond a mailbox's head) stops with [`Stop::Need`]; the call is
//! kept, the read goes to the store, and the connection runs nothing else
//! meanwhile (the reply is `Later` with a barrier), so its requests keep
//! their order. When the answer comes, it goes into the caches and the
//! kept calls run again from the start, as if they had just arrived.
//! Reads of the same thing are asked once; everyone waiting for it runs
//! again when it comes.
//!
//! [`Reads`] keeps the reads in flight and the parked calls; `answers.rs`
//! is the dispatcher's side, which puts an answer into the other owners'
//! caches and runs the parked calls again.

use super::{Outbox, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::idhash::IdMap;
use crate::message::{Message, Parties};
use crate::request::{Call, Reply};
use crate::store::{Read, ReadOp, StoredMessage};
use crate::UserId;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a command did not finish now.
pub(super) enum Stop {
    /// It failed: the reply says why.
    Fail(Failure),
    /// It needs this read first; it runs again once answered.
    Need(ReadOp),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Stop {
        Stop::Fail(f)
    }
}

/// Who waits for a read.
pub(super) enum Waiting {
    /// Calls that run again once it is answered (none for a prefetch).
    Calls(Vec<(Ticket, Call<'static>)>),
    /// A SYNC whose messages are beyond the head: the page is its answer.
    Sync {
        ticket: Ticket,
        user: UserId,
        poll: super::waiters::Poll,
    },
    /// Extending an active user's head.
    Fill(UserId),
    /// A HISTORY or CONVERSATIONS: the answer is its reply.
    Answer(Ticket),
    /// Following a change another node made (see `cluster`).
    Cluster(super::cluster::ClusterRead),
    /// An operator's question (`gotalk admin`): the answer is the reply,
    /// with this node's bound connections of the account.
    Admin {
        ticket: Ticket,
        sessions_online: usize,
    },
}

/// The reply to a request whose read failed.
pub(super) fn unavailable() -> Reply {
    Reply::Error(Failure::new(
        ErrorCode::Unavailable,
        "the server could not read its store; try again",
    ))
}

/// A message as read from the store.
pub(super) fn message_of(m: &StoredMessage) -> Arc<Message> {
    let parties = Parties {
        from_id: m.from_id,
        from: &m.from,
        to_id: m.to_id,
        to: &m.to,
    };
    Message::new(m.id, &parties, m.ts, &m.content, m.client_id.as_deref())
}

/// The reads in flight, what each asked and who waits for it; the same
/// question is asked once at a time.
pub(super) struct Reads {
    asked: IdMap<u64, (ReadOp, Waiting)>,
    /// The read asking each question whose callers are parked on it.
    keys: HashMap<ReadOp, u64>,
    next: u64,
    /// While calls run again after a read that found nothing: that read.
    absent: Option<ReadOp>,
    /// A mailbox's head read with its figures: most messages and bytes
    /// (`--mailbox-window`, `--mailbox-window-bytes`).
    window: (usize, usize),
}

impl Reads {
    pub fn new(window_messages: usize, window_bytes: usize) -> Reads {
        Reads {
            asked: IdMap::default(),
            keys: HashMap::new(),
            next: 0,
            absent: None,
            window: (window_messages.max(1), window_bytes.max(1)),
        }
    }

    /// Keeps `call` until `op` is answered (asking for it unless it is
    /// asked already).
    pub fn park(&mut self, ticket: Ticket, call: Call<'static>, op: ReadOp, out: &mut Outbox) {
        // Whoever needs a mailbox's figures waits for a read of them with
        // its head as well, if one is asked.
        let op = match op {
            ReadOp::Mailbox(user) if self.keys.contains_key(&self.mailbox_read(user, true)) => {
                self.mailbox_read(user, true)
            }
            op => op,
        };
        if let Some(id) = self.keys.get(&op) {
            if let Some((_, Waiting::Calls(calls))) = self.asked.get_mut(id) {
                calls.push((ticket, call));
                return;
            }
        }
        let id = self.submit(op.clone(), Waiting::Calls(vec![(ticket, call)]), out);
        self.keys.insert(op, id);
    }

    /// Asks for `op` unless it is asked already, with nobody waiting: the
    /// answer only fills a cache.
    pub fn prefetch(&mut self, op: ReadOp, out: &mut Outbox) {
        if !self.keys.contains_key(&op) {
            let id = self.submit(op.clone(), Waiting::Calls(Vec::new()), out);
            self.keys.insert(op, id);
        }
    }

    /// Asks for `op` for `waiting`, whether or not it is asked already.
    pub fn submit(&mut self, op: ReadOp, waiting: Waiting, out: &mut Outbox) -> u64 {
        self.next += 1;
        let id = self.next;
        out.reads.push(Read { id, op: op.clone() });
        self.asked.insert(id, (op, waiting));
        id
    }

    /// The read of `user`'s mailbox figures: with its oldest messages for
    /// a user whose head RAM keeps (`head`), else the figures alone.
    pub fn mailbox_read(&self, user: UserId, head: bool) -> ReadOp {
        if !head {
            return ReadOp::Mailbox(user);
        }
        ReadOp::MailboxAndHead {
            user,
            limit: self.window.0,
            max_bytes: self.window.1,
        }
    }

    /// Whether callers are parked on a read of `user`'s mailbox figures.
    pub fn is_mailbox_asked(&self, user: UserId) -> bool {
        self.keys.contains_key(&self.mailbox_read(user, true))
            || self.keys.contains_key(&self.mailbox_read(user, false))
    }

    /// Whether the store said, in the answer being handled, that `op`
    /// finds nothing.
    pub fn is_absent(&self, op: &ReadOp) -> bool {
        self.absent.as_ref() == Some(op)
    }

    /// While the calls parked on `op` run again: it found nothing
    /// (`Some`), or that is over (`None`).
    pub fn set_absent(&mut self, op: Option<ReadOp>) {
        self.absent = op;
    }

    /// The read `id` was answered: what it asked and who waits. Parked
    /// calls take their question with them (a new caller asks again).
    pub fn answered(&mut self, id: u64) -> Option<(ReadOp, Waiting)> {
        let (op, waiting) = self.asked.remove(&id)?;
        if let Waiting::Calls(_) = waiting {
            self.keys.remove(&op);
        }
        Some((op, waiting))
    }

    /// Whether no read is in flight.
    pub fn is_empty(&self) -> bool {
        self.asked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;

    fn ops(out: &Outbox) -> Vec<ReadOp> {
        out.reads.iter().map(|r| r.op.clone()).collect()
    }

    #[test]
    fn the_same_question_is_asked_once_and_answers_everyone() {
        let mut reads = Reads::new(10, 1000);
        let mut out = Outbox::default();
        let op = ReadOp::UserById(7);
        reads.park(
            Ticket::new(1, 1),
            Call::new(Request::Ping),
            op.clone(),
            &mut out,
        );
        reads.park(
            Ticket::new(2, 2),
            Call::new(Request::Ping),
            op.clone(),
            &mut out,
        );
        reads.prefetch(op.clone(), &mut out);
        assert_eq!(ops(&out), std::slice::from_ref(&op));
        let (asked, waiting) = reads.answered(out.reads[0].id).expect("in flight");
        assert_eq!(asked, op);
        assert!(matches!(waiting, Waiting::Calls(ref calls) if calls.len() == 2));
        assert!(reads.is_empty());
        reads.prefetch(op.clone(), &mut out);
        assert_eq!(out.reads.len(), 2, "asked again once answered");
    }

    #[test]
    fn a_caller_needing_figures_joins_a_read_of_them_with_the_head() {
        let mut reads = Reads::new(10, 1000);
        let mut out = Outbox::default();
        reads.prefetch(reads.mailbox_read(7, true), &mut out);
        assert!(reads.is_mailbox_asked(7));
        reads.park(
            Ticket::new(1, 1),
            Call::new(Request::Ping),
            ReadOp::Mailbox(7),
            &mut out,
        );
        assert_eq!(out.reads.len(), 1, "no second read");
        assert!(!reads.is_mailbox_asked(8));
    }

    #[test]
    fn a_read_for_a_fill_leaves_no_question_behind() {
        let mut reads = Reads::new(10, 1000);
        let mut out = Outbox::default();
        let op = ReadOp::Mailbox(7);
        let id = reads.submit(op.clone(), Waiting::Fill(7), &mut out);
        assert!(reads.answered(id).is_some());
        assert!(reads.answered(id).is_none(), "answered once");
        assert!(reads.is_empty());
    }
}
