//! The store answered a read (see `reads.rs`): the dispatcher puts the
//! answer into the owners' caches (accounts, mailboxes) and runs the calls
//! parked on it again, as if they had just arrived; a SYNC's page, a head's
//! fill and the cluster's reads go to their owners.

use super::accounts::Account;
use super::reads::{message_of, unavailable, Stop, Waiting};
use super::{Core, Handled, Outbox};
use crate::store::{ReadAnswer, ReadDone, ReadOp};
use crate::{Millis, UserId};

impl Core {
    /// What a command that needs `user`'s mailbox figures waits for.
    pub(super) fn need_mailbox(&self, user: UserId) -> Stop {
        Stop::Need(self.reads.mailbox_read(user, self.sessions.is_online(user)))
    }

    /// Asks for `user`'s mailbox figures and oldest messages unless known
    /// or asked already: at a LOGIN or AUTH, so the first SYNC finds them
    /// in RAM.
    pub(super) fn prefetch_mailbox(&mut self, user: UserId, out: &mut Outbox) {
        if !self.mailboxes.is_known(user) {
            let op = self.reads.mailbox_read(user, true);
            self.reads.prefetch(op, out);
        }
    }

    /// Asks for more of `user`'s messages if their head runs low.
    pub(super) fn fill(&mut self, user: UserId, out: &mut Outbox) {
        if let Some(op) = self.mailboxes.fill(user) {
            self.reads.submit(op, Waiting::Fill(user), out);
        }
    }

    /// The store answered a read.
    pub fn on_read(&mut self, done: ReadDone, now: Millis, out: &mut Outbox) {
        let Some((op, waiting)) = self.reads.answered(done.id) else {
            return;
        };
        match waiting {
            Waiting::Calls(calls) => {
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
                    ReadAnswer::User(None) => self.reads.set_absent(Some(op.clone())),
                    ReadAnswer::Mailbox { count, bytes, head } => {
                        if let ReadOp::Mailbox(user) | ReadOp::MailboxAndHead { user, .. } = op {
                            if self.expiry.take_stale(user) {
                                // An expiry step took some of these meanwhile:
                                // the calls below ask again.
                                for (ticket, call) in calls {
                                    if let Handled::Now(reply) = self.run(ticket, call, now, out) {
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
                    ReadAnswer::Page(_)
                    | ReadAnswer::History { .. }
                    | ReadAnswer::Conversations { .. } => {}
                }
                for (ticket, call) in calls {
                    if let Handled::Now(reply) = self.run(ticket, call, now, out) {
                        out.replies.push((ticket, reply));
                    }
                }
                self.reads.set_absent(None);
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
            Waiting::Answer(ticket) => {
                let reply = match done.answer {
                    Ok(answer) => self.history_answer(answer),
                    Err(e) => {
                        log::warn!("a history read from the store failed: {e}");
                        unavailable()
                    }
                };
                out.replies.push((ticket, reply));
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
