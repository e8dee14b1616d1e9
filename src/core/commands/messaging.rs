//! SEND, SYNC and ACK: the messaging hot path. A SEND reserves room in
//! the receiver's mailbox and waits for its commit; a SYNC reads the head
//! (or a page of the store) or waits as a long-poll; an ACK ends custody
//! once stored.

use crate::config::limits;
use crate::core::client_ids::FirstSend;
use crate::core::mailbox::{self, Budget, Full};
use crate::core::poll_tokens;
use crate::core::reads::{Stop, Waiting};
use crate::core::waiters::{Poll, Waiter};
use crate::core::{AfterCommit, Core, Handled, Outbox, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::message::{Message, Parties};
use crate::request::{Recipient, Reply, SyncArgs};
use crate::store::{ReadOp, WriteOp};
use crate::{MessageId, Millis, UserId};
use std::sync::Arc;

impl Core {
    pub(in crate::core) fn send(
        &mut self,
        ticket: Ticket,
        from: UserId,
        to: &Recipient<'_>,
        content: &str,
        client_id: Option<&str>,
        now: Millis,
    ) -> Result<Handled, Stop> {
        let to_id = self.recipient(ticket, to, now)?;
        if content.trim().is_empty() {
            return Err(Failure::bad_request(
                "the message content must not be empty or only white space",
            )
            .into());
        }
        if content.len() > limits::MAX_CONTENT_BYTES {
            return Err(Failure::new(
                ErrorCode::TooLarge,
                format!(
                    "a message is at most {} bytes of content",
                    limits::MAX_CONTENT_BYTES
                ),
            )
            .into());
        }
        if let Some(cid) = client_id {
            if cid.is_empty() || cid.len() > limits::MAX_CLIENT_ID_BYTES {
                return Err(Failure::bad_request(format!(
                    "a client_id is 1 to {} bytes",
                    limits::MAX_CLIENT_ID_BYTES
                ))
                .into());
            }
            if let Some(first) = self.client_ids.get(from, cid) {
                if first.committed {
                    return Ok(Handled::Now(Reply::Sent {
                        id: first.id,
                        ts: first.ts,
                    }));
                }
                self.writes.after_commit(AfterCommit::Duplicate {
                    ticket,
                    first,
                    sender: from,
                    client_id: cid.into(),
                });
                return Ok(Handled::Later { barrier: false });
            }
        }
        if !self.mailboxes.is_known(to_id) {
            return Err(self.need_mailbox(to_id));
        }
        // Fair shares (`core/shares.rs`): the send token is taken here and
        // given back if the mailbox refuses.
        let share = (self.shares.check(from, to_id, now))
            .map_err(|refused| refused.failure(&self.settings.shares))?;
        // Both were found above, and nothing was cached since.
        let (Some(sender), Some(recipient)) = (self.accounts.get(from), self.accounts.get(to_id))
        else {
            self.shares.give_back(share, from);
            return Err(Failure::new(ErrorCode::Internal, "an account went missing").into());
        };
        let parties = Parties {
            from_id: sender.id,
            from: &sender.username,
            to_id,
            to: &recipient.username,
        };
        let id = self.last_message_id + 1;
        let message = Message::new(id, &parties, now, content, client_id);
        self.counters.message_bytes_rendered += message.cost() as u64;
        // Room in the mailbox is taken now, before the commit, so SENDs in
        // flight count against its caps; the commit stores or releases it.
        let budget = self.budget();
        let cost = mailbox::cost(&message);
        if let Err(full) = self.mailboxes.reserve(to_id, from, cost, &budget) {
            self.shares.give_back(share, from);
            let name = self.accounts.get(to_id).map_or("", |a| &a.username);
            return Err(mailbox_full(full, cost, name, &budget).into());
        }
        self.shares.accepted(share, from, to_id, now);
        self.last_message_id = id;
        if let Some(cid) = client_id {
            let first = FirstSend {
                id,
                ts: now,
                committed: false,
            };
            self.client_ids.insert(from, cid, first);
        }
        self.writes.push(WriteOp::Append(message.clone()));
        self.writes
            .after_commit(AfterCommit::Sent { ticket, message });
        Ok(Handled::Later { barrier: false })
    }

    pub(in crate::core) fn sync(
        &mut self,
        ticket: Ticket,
        user: UserId,
        poll: Poll,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        if let Some(after) = poll.args.after {
            match self.mailboxes.would_ack(user, after) {
                None => return Err(self.need_mailbox(user)),
                Some(true) => return self.ack(ticket, user, after, Some(poll)),
                Some(false) => {}
            }
        }
        Ok(match self.read_or_wait(ticket, user, poll, now, out) {
            Some(reply) => Handled::Now(reply),
            None => Handled::Later { barrier: true },
        })
    }

    /// SYNC's read: the messages, or `None` when it now waits for one or
    /// for a page from the store.
    pub(in crate::core) fn read_or_wait(
        &mut self,
        ticket: Ticket,
        user: UserId,
        poll: Poll,
        now: Millis,
        out: &mut Outbox,
    ) -> Option<Reply> {
        let (after, limit) = sync_window(poll.args);
        match self
            .mailboxes
            .read(user, after, limit, limits::SYNC_MAX_BYTES)
        {
            Some(messages) => self.answer_sync(ticket, user, poll, messages, now, out),
            None => {
                let op = ReadOp::Page {
                    user,
                    after: after.max(self.mailboxes.floor(user)),
                    limit,
                    max_bytes: limits::SYNC_MAX_BYTES,
                };
                self.reads
                    .submit(op, Waiting::Sync { ticket, user, poll }, out);
                None
            }
        }
    }

    /// SYNC's answer once its messages are known: them, or (none there,
    /// and it may wait) `None` while it waits for one. A token the SYNC
    /// carried is checked again first: a long-poll may have waited past a
    /// LOGOUT or its expiry (see `poll_tokens.rs`).
    pub(in crate::core) fn answer_sync(
        &mut self,
        ticket: Ticket,
        user: UserId,
        poll: Poll,
        messages: Vec<Arc<Message>>,
        now: Millis,
        out: &mut Outbox,
    ) -> Option<Reply> {
        if poll.token.is_some_and(|t| !self.poll_token_holds(&t, now)) {
            return Some(poll_tokens::token_gone());
        }
        let args = poll.args;
        if messages.is_empty() && args.wait_ms > 0 && !self.sessions.is_input_closed(ticket.conn) {
            let limit = self.settings.waiters_per_user;
            if self.waiters.count_of(user) >= limit {
                return Some(Reply::Error(Failure::new(
                    ErrorCode::RateLimited,
                    format!(
                        "{limit} long-polls already wait for this user, the limit (--waiters-per-user); end one, or sync without waiting"
                    ),
                )));
            }
            let wait_ms = args.wait_ms.min(limits::MAX_WAIT_MS);
            let deadline = Self::poll_deadline(poll.token.as_ref(), now, wait_ms);
            let bound = self.sessions.is_online(user);
            self.cluster.polling(user, bound);
            if let Some(old) = self.waiters.add(Waiter { ticket, user, poll }, deadline) {
                // Not expected (a waiting SYNC is a barrier), but never left
                // unanswered.
                out.replies.push((old.ticket, Reply::Messages(Vec::new())));
            }
            return None;
        }
        Some(Reply::Messages(messages))
    }

    pub(in crate::core) fn ack(
        &mut self,
        ticket: Ticket,
        user: UserId,
        upto: MessageId,
        then_sync: Option<Poll>,
    ) -> Result<Handled, Stop> {
        match self.mailboxes.would_ack(user, upto) {
            None => return Err(self.need_mailbox(user)),
            Some(false) => return Ok(Handled::Now(Reply::Acked)),
            Some(true) => {}
        }
        self.mailboxes.begin_ack(user);
        self.writes.push(WriteOp::Ack { user, upto });
        self.writes.after_commit(AfterCommit::Acked {
            ticket,
            user,
            upto,
            then_sync: then_sync.map(Box::new),
        });
        Ok(Handled::Later { barrier: true })
    }
}

/// The ids above which, and how many, a SYNC asks for.
pub(in crate::core) fn sync_window(args: SyncArgs) -> (MessageId, usize) {
    let limit = args
        .limit
        .unwrap_or(limits::SYNC_DEFAULT_LIMIT)
        .clamp(1, limits::SYNC_MAX_LIMIT);
    (args.after.unwrap_or(0), limit)
}

/// The reply to a SEND that a mailbox budget refused, naming the limit.
pub(in crate::core) fn mailbox_full(
    full: Full,
    cost: usize,
    recipient: &str,
    budget: &Budget,
) -> Failure {
    let message = match full {
        Full::Bytes(_) if cost > budget.bytes => format!(
            "this message takes {cost} bytes as stored, more than a mailbox may hold, {} (--mailbox-bytes)",
            budget.bytes
        ),
        Full::Messages(held) => format!(
            "{recipient}'s mailbox is full: {held} unacknowledged messages, the limit is {} (--mailbox-limit); try again later",
            budget.messages
        ),
        Full::Bytes(held) => format!(
            "{recipient}'s mailbox is full: {held} bytes of unacknowledged messages, the limit is {} (--mailbox-bytes); try again later",
            budget.bytes
        ),
        Full::Sender(held) => format!(
            "your unacknowledged messages take {held} bytes in their receivers' mailboxes, the limit is {} (--pending-bytes-per-sender); try again once some are read",
            budget.per_sender
        ),
        Full::Pending(held) => format!(
            "the server holds {held} bytes of unacknowledged messages for all users, the limit is {} (--pending-bytes); try again later",
            budget.pending_bytes
        ),
    };
    Failure::new(ErrorCode::RateLimited, message)
}
