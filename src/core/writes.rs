//! The writes owner: what this loop turn's requests change in the store,
//! collected as one batch (group commit), and what each request does once
//! the batch that holds its writes has committed ([`AfterCommit`], run by
//! `commit.rs`). Batches commit in order of their sequence numbers; a
//! request waits on the batch that was open when it ran.

use super::accounts::Account;
use super::client_ids::FirstSend;
use super::sessions::Revoke;
use super::waiters::Poll;
use super::Ticket;
use crate::message::Message;
use crate::store::{Batch, WriteOp};
use crate::{MessageId, UserId};
use std::collections::VecDeque;
use std::sync::Arc;

/// What to do once the batch holding a request's writes has committed.
pub(super) enum AfterCommit {
    Registered {
        ticket: Ticket,
        account: Account,
    },
    Sent {
        ticket: Ticket,
        message: Arc<Message>,
    },
    /// A repeated `client_id` whose first SEND was still being committed.
    Duplicate {
        ticket: Ticket,
        first: FirstSend,
        /// Where the first one is remembered: its id there is the stored
        /// one once it commits (the store may renumber it).
        sender: UserId,
        client_id: Box<str>,
    },
    Acked {
        ticket: Ticket,
        user: UserId,
        upto: MessageId,
        /// A SYNC with `after` continues with its read once the ack is stored.
        /// Boxed: a poll is 128 bytes, and every request waiting on a
        /// commit (each SEND of the relay) moves through this enum.
        then_sync: Option<Box<Poll>>,
    },
    /// READ: the store reports the marker ([`crate::store::Marked`]).
    Read {
        ticket: Ticket,
        note: Box<crate::request::ReadNote>,
    },
    LoggedOut {
        ticket: Ticket,
        user: UserId,
        revoke: Revoke,
        /// A LOGOUT of one token that ended all the account's sessions:
        /// `--revocations-per-account` were revoked already.
        capped: bool,
    },
    /// `gotalk admin` (see `commands/admin.rs`): `revoke` takes effect
    /// as LOGOUT all's does; `deleted`: the batch also acknowledged the
    /// whole mailbox and deleted the account. `what` is logged and
    /// answered.
    Admin {
        ticket: Ticket,
        user: UserId,
        revoke: Option<Revoke>,
        deleted: bool,
        what: String,
    },
}

/// Most writes a new batch has room for before it grows.
const BATCH_ROOM: usize = 1024;

pub(super) struct Writes {
    /// Writes collected this turn, and the sequence number they will
    /// commit as.
    ops: Vec<WriteOp>,
    seq: u64,
    /// Requests waiting on a commit, with the batch each waits on, in
    /// order.
    awaiting: VecDeque<(u64, AfterCommit)>,
}

impl Default for Writes {
    fn default() -> Writes {
        Writes {
            ops: Vec::new(),
            seq: 1,
            awaiting: VecDeque::new(),
        }
    }
}

impl Writes {
    /// A write for the open batch.
    #[inline]
    pub fn push(&mut self, op: WriteOp) {
        self.ops.push(op);
    }

    /// What to do once the open batch has committed.
    #[inline]
    pub fn after_commit(&mut self, then: AfterCommit) {
        self.awaiting.push_back((self.seq, then));
    }

    /// The sequence number the open batch will commit as.
    pub fn open_seq(&self) -> u64 {
        self.seq
    }

    /// Whether writes (or requests waiting on a commit) are collected but
    /// not yet taken as a batch.
    pub fn has_open(&self) -> bool {
        !self.ops.is_empty()
            || self
                .awaiting
                .back()
                .is_some_and(|(seq, _)| *seq == self.seq)
    }

    /// Whether nothing waits on a commit, and nothing is collected.
    pub fn is_idle(&self) -> bool {
        self.awaiting.is_empty() && !self.has_open()
    }

    /// The writes collected since the last call, as a batch; `None` when
    /// no request waits on a commit.
    pub fn take(
        &mut self,
        last_message_id: MessageId,
        client_ids_per_sender: usize,
    ) -> Option<Batch> {
        if !self.has_open() {
            return None;
        }
        // The next batch starts with room for as many writes as this one
        // (up to a bound): one allocation per batch, not a growth by
        // doubling that copies the writes into fresh, cold memory again
        // and again while history in RAM churns the heap.
        let room = self.ops.len().min(BATCH_ROOM);
        let batch = Batch {
            seq: self.seq,
            ops: std::mem::replace(&mut self.ops, Vec::with_capacity(room)),
            last_message_id,
            client_ids_per_sender,
        };
        self.seq += 1;
        Some(batch)
    }

    /// The next request whose batch is among those committed up to `seq`.
    pub fn next_done(&mut self, seq: u64) -> Option<AfterCommit> {
        if self.awaiting.front().is_some_and(|(s, _)| *s <= seq) {
            return self.awaiting.pop_front().map(|(_, then)| then);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(seq: u64) -> AfterCommit {
        AfterCommit::Acked {
            ticket: Ticket::new(1, seq),
            user: 1,
            upto: seq,
            then_sync: None,
        }
    }

    fn upto(then: Option<AfterCommit>) -> Option<MessageId> {
        match then {
            Some(AfterCommit::Acked { upto, .. }) => Some(upto),
            Some(_) => panic!("another kind"),
            None => None,
        }
    }

    #[test]
    fn a_request_waiting_on_a_commit_opens_a_batch_even_without_writes() {
        let mut w = Writes::default();
        assert!(w.take(0, 1).is_none(), "nothing to commit");
        w.after_commit(acked(7));
        let batch = w.take(3, 1).expect("a request waits");
        assert_eq!(
            (batch.seq, batch.ops.len(), batch.last_message_id),
            (1, 0, 3)
        );
        assert!(!w.has_open(), "taken");
        assert!(!w.is_idle(), "it still waits for the commit");
    }

    #[test]
    fn requests_finish_in_order_up_to_the_committed_batch() {
        let mut w = Writes::default();
        w.after_commit(acked(1));
        w.take(0, 1);
        w.after_commit(acked(2));
        w.after_commit(acked(3));
        w.take(0, 1);
        assert_eq!(upto(w.next_done(1)), Some(1));
        assert_eq!(upto(w.next_done(1)), None, "batch 2 has not committed");
        assert_eq!(upto(w.next_done(2)), Some(2));
        assert_eq!(upto(w.next_done(2)), Some(3));
        assert!(w.is_idle());
    }
}
