//! Requests that wait for the store. A command that needs what RAM does
//! not hold (an account not in the cache, a mailbox's figures, a page of
//! messages beyond a mailbox's head) stops with [`Stop::Need`]; the call is
//! kept, the read goes to the store, and the connection runs nothing else
//! meanwhile (the reply is `Later` with a barrier), so its requests keep
//! their order. When the answer comes, it goes into the caches and the
//! kept calls run again from the start, as if they had just arrived.
//! Reads of the same thing are asked once; everyone waiting for it runs
//! again when it comes.

use super::accounts::Account;
use super::{Core, Outbox, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::message::{Message, Parties};
use crate::request::{Call, Reply};
use crate::store::{Read, ReadAnswer, ReadDone, ReadOp, StoredMessage};
use crate::{Millis, UserId};
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
    /// Following a change another node made (see `cluster`).
    Cluster(super::cluster::ClusterRead),
}

/// The reply to a request whose read failed.
fn unavailable() -> Reply {
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
    Arc::new(Message::new(
        m.id,
        &parties,
        m.ts,
        &m.content,
        m.client_id.as_deref(),
    ))
}

impl Core {
    /// Keeps `call` until `op` is answered (asking for it unless it is
    /// asked already).
    pub(super) fn park(
        &mut self,
        ticket: Ticket,
        call: Call<'static>,
        op: ReadOp,
        out: &mut Outbox,
    ) {
        // Whoever needs a mailbox's figures waits for a read of them with
        // its head as well, if one is asked.
        let op = match op {
            ReadOp::Mailbox(user)
                if self.read_keys.contains_key(&self.mailbox_read(user, true)) =>
            {
                self.mailbox_read(user, true)
            }
            op => op,
        };
        if let Some(id) = self.read_keys.get(&op) {
            if let Some((_, Waiting::Calls(calls))) = self.reads.get_mut(id) {
                calls.push((ticket, call));
                return;
            }
        }
        let id = self.submit_read(op.clone(), Waiting::Calls(vec![(ticket, call)]), out);
        self.read_keys.insert(op, id);
    }

    /// Asks for `op` unless it is asked already, with nobody waiting: the
    /// answer only fills a cache.
    pub(super) fn prefetch(&mut self, op: ReadOp, out: &mut Outbox) {
        if !self.read_keys.contains_key(&op) {
            let id = self.submit_read(op.clone(), Waiting::Calls(Vec::new()), out);
            self.read_keys.insert(op, id);
        }
    }

    pub(super) fn submit_read(&mut self, op: ReadOp, waiting: Waiting, out: &mut Outbox) -> u64 {
        self.next_read += 1;
        let id = self.next_read;
        out.reads.push(Read { id, op: op.clone() });
        self.reads.insert(id, (op, waiting));
        id
    }

    /// The read of `user`'s mailbox figures: with its oldest messages for
    /// a user whose head RAM keeps (`head`), else the figures alone.
    pub(super) fn mailbox_read(&self, user: UserId, head: bool) -> ReadOp {
        if !head {
            return ReadOp::Mailbox(user);
        }
        ReadOp::MailboxAndHead {
            user,
            limit: self.settings.mailbox_window.max(1),
            max_bytes: self.settings.mailbox_window_bytes.max(1),
        }
    }

    /// What a command that needs `user`'s mailbox figures waits for.
    pub(super) fn need_mailbox(&self, user: UserId) -> Stop {
        Stop::Need(self.mailbox_read(user, self.sessions.is_online(user)))
    }

    /// Asks for `user`'s mailbox figures and oldest messages unless known
    /// or asked already: at a LOGIN or AUTH, so the first SYNC finds them
    /// in RAM.
    pub(super) fn prefetch_mailbox(&mut self, user: UserId, out: &mut Outbox) {
        if !self.mailboxes.is_known(user) {
            self.prefetch(self.mailbox_read(user, true), out);
        }
    }

    /// Asks for more of `user`'s messages if their head runs low.
    pub(super) fn fill(&mut self, user: UserId, out: &mut Outbox) {
        if let Some(op) = self.mailboxes.fill(user) {
            self.submit_read(op, Waiting::Fill(user), out);
        }
    }

    /// Whether the store said, in the answer being handled, that `op`
    /// finds nothing.
    pub(super) fn is_absent(&self, op: &ReadOp) -> bool {
        self.absent.as_ref() == Some(op)
    }

    /// The store answered a read.
    pub fn on_read(&mut self, done: ReadDone, now: Millis, out: &mut Outbox) {
        let Some((op, waiting)) = self.reads.remove(&done.id) else {
            return;
        };
        match waiting {
            Waiting::Calls(calls) => {
                self.read_keys.remove(&op);
                let answer = match done.answer {
                    Ok(answer) => answer,
                    Err(e) => {
                        log::warn!("a read from the store failed: {e}");
                        for (ticket, _) in calls {
                            out.replies.push((ticket, unavailable()));
                        }
                        return;
                    }
                };
                match answer {
                    ReadAnswer::User(Some(user)) => self.accounts.insert(Account {
                        id: user.id,
                        identity: user.identity,
                        username: user.username.into(),
                        password_hash: user.password_hash.into(),
                        tokens_valid_from: user.tokens_valid_from,
                    }),
                    ReadAnswer::User(None) => self.absent = Some(op.clone()),
                    ReadAnswer::Mailbox { count, bytes, head } => {
                        if let ReadOp::Mailbox(user) | ReadOp::MailboxAndHead { user, .. } = op {
                            if self.expiry.take_stale(user) {
                                // An expiry step took some of these meanwhile:
                                // the calls below ask again.
                                for (ticket, call) in calls {
                                    if let super::Handled::Now(reply) =
                                        self.run(ticket, call, now, out)
                                    {
                                        out.replies.push((ticket, reply));
                                    }
                                }
                                return;
                            }
                            let active = self.sessions.is_online(user);
                            let head = head.iter().map(message_of).collect();
                            self.mailboxes.load(user, count, bytes, active, head);
                            self.fill(user, out);
                        }
                    }
                    ReadAnswer::Page(_) => {}
                }
                for (ticket, call) in calls {
                    if let super::Handled::Now(reply) = self.run(ticket, call, now, out) {
                        out.replies.push((ticket, reply));
                    }
                }
                self.absent = None;
            }
            Waiting::Sync { ticket, user, poll } => {
                let page = match done.answer {
                    Ok(ReadAnswer::Page(page)) => page,
                    _ => return out.replies.push((ticket, unavailable())),
                };
                let floor = self.mailboxes.floor(user);
                let messages = page
                    .iter()
                    .filter(|m| m.id > floor)
                    .map(message_of)
                    .collect();
                if let Some(reply) = self.answer_sync(ticket, user, poll, messages, now, out) {
                    out.replies.push((ticket, reply));
                }
            }
            Waiting::Cluster(read) => self.on_cluster_read(read, done.answer, now, out),
            Waiting::Fill(user) => {
                let page = match done.answer {
                    Ok(ReadAnswer::Page(page)) => Some(page.iter().map(message_of).collect()),
                    _ => None,
                };
                let ok = page.is_some();
                self.mailboxes.filled(user, page);
                if ok {
                    self.fill(user, out);
                }
            }
        }
    }
}
