//! Ids the store gave in place of the core's. Where the database numbers
//! messages and accounts inside the writing transaction (PostgreSQL, see
//! [`crate::store::Assigned`]), the core's ids are provisional: each
//! finished request is rewritten here with the stored ids before it is
//! answered, so replies, pushes, mailboxes and remembered `client_id`s
//! carry those. A REGISTER whose name the database found taken (through
//! another node) is answered `conflict` here. With SQLite the lists are
//! empty and none of this runs.

use super::mailbox::Full;
use super::{AfterCommit, Core, Outbox};
use crate::error::{ErrorCode, Failure};
use crate::message::Message;
use crate::request::Reply;
use crate::store::{Assigned, MailboxFull};
use crate::MessageId;
use std::iter::Peekable;
use std::slice::Iter;

/// The stored ids of one finished batch, looked up in the order the core
/// wrote its operations (provisional ids grow, so each lookup moves on).
pub(super) struct FinalIds<'a> {
    messages: Peekable<Iter<'a, (MessageId, MessageId)>>,
    assigned: &'a Assigned,
}

impl<'a> FinalIds<'a> {
    pub fn new(assigned: &'a Assigned) -> FinalIds<'a> {
        FinalIds {
            messages: assigned.messages.iter().peekable(),
            assigned,
        }
    }

    /// Whether the store kept the core's ids (nothing to rewrite).
    pub fn is_empty(&self) -> bool {
        let a = self.assigned;
        a.messages.is_empty() && a.users.is_empty() && a.taken_names.is_empty() && a.full.is_empty()
    }

    /// Whether the database refused the message the core numbered
    /// `provisional` for a full mailbox.
    fn is_full(&self, provisional: MessageId) -> Option<MailboxFull> {
        self.assigned
            .full
            .iter()
            .find(|f| f.message == provisional)
            .copied()
    }

    /// The stored id of the message the core numbered `provisional`.
    fn message(&mut self, provisional: MessageId) -> Option<MessageId> {
        while let Some(&&(p, stored)) = self.messages.peek() {
            if p > provisional {
                break;
            }
            self.messages.next();
            if p == provisional {
                return Some(stored);
            }
        }
        None
    }
}

impl Core {
    /// A SEND the database refused for a full mailbox: its room and its
    /// `client_id` are given back and it is answered as the core's own
    /// cap check answers.
    fn refuse_full(
        &mut self,
        ticket: super::Ticket,
        message: &Message,
        full: MailboxFull,
        out: &mut Outbox,
    ) {
        let cost = super::mailbox::cost(message);
        self.mailboxes.release(message.to_id, message.from_id, cost);
        if let Some(cid) = message.client_id() {
            self.client_ids.remove(message.from_id, &cid);
        }
        let held = if full.by_sender {
            Full::Sender(full.held_bytes)
        } else if full.by_bytes {
            Full::Bytes(full.held_bytes)
        } else {
            Full::Messages(full.held)
        };
        let budget = super::mailbox::Budget {
            per_sender: self.settings.pending_bytes_per_sender,
            ..self.budget()
        };
        let failure = super::commands::mailbox_full(held, cost, "the recipient", &budget);
        out.replies.push((ticket, Reply::Error(failure)));
    }

    /// `then` with the stored ids; `None` when it was answered here.
    pub(super) fn with_final_ids(
        &mut self,
        then: AfterCommit,
        ids: &mut FinalIds<'_>,
        out: &mut Outbox,
    ) -> Option<AfterCommit> {
        match then {
            AfterCommit::Sent { ticket, message } if ids.is_full(message.id).is_some() => {
                let full = ids.is_full(message.id).expect("checked");
                self.refuse_full(ticket, &message, full, out);
                None
            }
            AfterCommit::Sent { ticket, message } => match ids.message(message.id) {
                Some(id) if id != message.id => {
                    let stored = message.renumbered(id);
                    let (was, is) = (
                        super::mailbox::cost(&message),
                        super::mailbox::cost(&stored),
                    );
                    let (to, from) = (message.to_id, message.from_id);
                    self.mailboxes.resize_reservation(to, from, was, is);
                    Some(AfterCommit::Sent {
                        ticket,
                        message: stored,
                    })
                }
                _ => Some(AfterCommit::Sent { ticket, message }),
            },
            AfterCommit::Registered {
                ticket,
                mut account,
            } => {
                if ids.assigned.taken_names.contains(&account.id) {
                    self.accounts.release(&account.username);
                    let failure = Failure::new(
                        ErrorCode::Conflict,
                        format!("the username '{}' is taken", account.username),
                    );
                    out.replies.push((ticket, Reply::Error(failure)));
                    return None;
                }
                let stored = ids.assigned.users.iter().find(|(p, _)| *p == account.id);
                if let Some(&(_, id)) = stored {
                    account.id = id;
                }
                Some(AfterCommit::Registered { ticket, account })
            }
            other => Some(other),
        }
    }
}
