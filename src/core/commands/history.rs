//! HISTORY, READ and CONVERSATIONS, and the events beside delivery: the
//! `sent` copy a sender's other connections get, and the `read` event.
//! Mailbox custody is untouched by all of it (see `core/history/`). With
//! a durable store HISTORY and CONVERSATIONS are reads on the store's
//! reading thread and READ a write; with `--memory` the history owner
//! answers from RAM at once.

use crate::config::limits;
use crate::core::reads::{message_of, Stop, Waiting};
use crate::core::{AfterCommit, Core, Handled, Outbox, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::message::Message;
use crate::request::{Conversation, HistoryArgs, Note, ReadNote, Recipient, Reply};
use crate::store::{Marked, ReadOp, StoredConversation, WriteOp};
use crate::{ConnId, MessageId, Millis, UserId};
use std::sync::Arc;

impl Core {
    /// HISTORY: one page of the conversation between `user` and `with`.
    pub(in crate::core) fn history(
        &mut self,
        ticket: Ticket,
        user: UserId,
        args: &HistoryArgs<'_>,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        self.history_on()?;
        let with = self.partner(ticket, &args.with, now)?.0;
        let limit = page_limit(
            args.limit,
            limits::HISTORY_DEFAULT_LIMIT,
            limits::HISTORY_MAX_LIMIT,
        )?;
        let before = args.before.unwrap_or(MessageId::MAX);
        let max_bytes = limits::HISTORY_MAX_BYTES;
        if let Some(ram) = self.history.ram() {
            let (messages, more) = ram.page(user, with, before, limit, max_bytes);
            return Ok(Handled::Now(Reply::History { messages, more }));
        }
        let op = ReadOp::History {
            user,
            with,
            before,
            limit,
            max_bytes,
        };
        self.reads.submit(op, Waiting::Answer(ticket), out);
        Ok(Handled::Later { barrier: true })
    }

    /// CONVERSATIONS: one page of `user`'s conversations, newest first.
    pub(in crate::core) fn conversations(
        &mut self,
        ticket: Ticket,
        user: UserId,
        before: Option<MessageId>,
        limit: Option<u64>,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        self.history_on()?;
        let limit = page_limit(
            limit,
            limits::CONVERSATIONS_DEFAULT_LIMIT,
            limits::CONVERSATIONS_MAX_LIMIT,
        )?;
        let before = before.unwrap_or(MessageId::MAX);
        if self.history.ram().is_some() {
            return Ok(Handled::Now(self.conversations_in_ram(user, before, limit)));
        }
        let op = ReadOp::Conversations {
            user,
            before,
            limit,
        };
        self.reads.submit(op, Waiting::Answer(ticket), out);
        Ok(Handled::Later { barrier: true })
    }

    fn conversations_in_ram(&mut self, user: UserId, before: MessageId, limit: usize) -> Reply {
        let Some(ram) = self.history.ram() else {
            return Reply::Conversations {
                list: Vec::new(),
                more: false,
            };
        };
        let (listed, more) = ram.conversations(user, before, limit);
        let list = listed
            .into_iter()
            .map(|l| Conversation {
                with: self
                    .accounts
                    .get(l.with_id)
                    .map_or_else(|| Arc::from(""), |a| a.username.clone()),
                with_id: l.with_id,
                last: l.last,
                unread: l.side.unread,
                read_upto: l.read_upto,
            })
            .collect();
        Reply::Conversations { list, more }
    }

    /// READ: `user` has read `with`'s messages up to `upto`.
    pub(in crate::core) fn read_mark(
        &mut self,
        ticket: Ticket,
        user: UserId,
        with: &Recipient<'_>,
        upto: MessageId,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        self.history_on()?;
        let (with, with_name) = self.partner(ticket, with, now)?;
        let by = self
            .accounts
            .get(user)
            .map_or_else(|| Arc::from(""), |a| a.username.clone());
        let note = ReadNote {
            by,
            by_id: user,
            with: with_name,
            with_id: with,
            upto,
        };
        if let Some(ram) = self.history.ram() {
            let (stored, moved) = ram.read(user, with, upto);
            if moved {
                self.tell_read(
                    ReadNote {
                        upto: stored,
                        ..note
                    },
                    Some(ticket.conn),
                    out,
                );
            }
            return Ok(Handled::Now(Reply::ReadUpto(stored)));
        }
        self.writes.push(WriteOp::ReadMark {
            user,
            with,
            upto,
            names: (note.by.clone(), note.with.clone()),
        });
        self.writes.after_commit(AfterCommit::Read {
            ticket,
            note: Box::new(note),
        });
        Ok(Handled::Later { barrier: true })
    }

    /// A READ is stored: its reply, and the events if the marker moved.
    pub(in crate::core) fn read_stored(
        &mut self,
        ticket: Ticket,
        note: ReadNote,
        marked: Option<Marked>,
        out: &mut Outbox,
    ) {
        let marked = marked.filter(|m| (m.user, m.with) == (note.by_id, note.with_id));
        let Some(marked) = marked else {
            return out.replies.push((ticket, Reply::ReadUpto(0)));
        };
        out.replies.push((ticket, Reply::ReadUpto(marked.upto)));
        if marked.moved {
            let note = ReadNote {
                upto: marked.upto,
                ..note
            };
            self.tell_read(note, Some(ticket.conn), out);
        }
    }

    /// The `read` event to the partner's bound connections and the
    /// reader's own, but `asking` (answered instead).
    pub(in crate::core) fn tell_read(
        &self,
        note: ReadNote,
        asking: Option<ConnId>,
        out: &mut Outbox,
    ) {
        let (by, with) = (note.by_id, note.with_id);
        let note = Note::Read(Arc::new(note));
        if with != by {
            if let Some(conns) = self.sessions.subscribers(with) {
                for &conn in conns {
                    out.notes.push((conn, note.clone()));
                }
            }
        }
        if let Some(conns) = self.sessions.subscribers(by) {
            for &conn in conns.iter().filter(|&&c| Some(c) != asking) {
                out.notes.push((conn, note.clone()));
            }
        }
    }

    /// The `sent` copy of a stored message for its sender's bound
    /// connections but `sending` (answered instead). The message's JSON is
    /// shared, not written again.
    #[inline]
    pub(in crate::core) fn tell_sent(
        &self,
        message: &Arc<Message>,
        sending: Option<ConnId>,
        out: &mut Outbox,
    ) {
        if message.from_id == message.to_id || !self.history.is_enabled() {
            return;
        }
        if let Some(conns) = self.sessions.subscribers(message.from_id) {
            for &conn in conns.iter().filter(|&&c| Some(c) != sending) {
                out.notes.push((conn, Note::Sent(message.clone())));
            }
        }
    }

    /// The store's answer to a HISTORY or CONVERSATIONS read.
    pub(in crate::core) fn history_answer(&self, answer: crate::store::ReadAnswer) -> Reply {
        use crate::store::ReadAnswer;
        match answer {
            ReadAnswer::History { messages, more } => Reply::History {
                messages: messages.iter().map(message_of).collect(),
                more,
            },
            ReadAnswer::Conversations { list, more } => Reply::Conversations {
                list: list.into_iter().map(conversation_of).collect(),
                more,
            },
            _ => super::super::reads::unavailable(),
        }
    }

    /// Refuses while history is off (`--no-history`).
    fn history_on(&self) -> Result<(), Failure> {
        match self.history.is_enabled() {
            true => Ok(()),
            false => Err(Failure::new(
                ErrorCode::Unavailable,
                "this server keeps no history (--no-history): messages leave it once acknowledged",
            )),
        }
    }

    /// The other party of a conversation, by name or id, with its name.
    fn partner(
        &mut self,
        ticket: Ticket,
        with: &Recipient<'_>,
        now: Millis,
    ) -> Result<(UserId, Arc<str>), Stop> {
        let id = self.recipient(ticket, with, now)?;
        let name = self
            .accounts
            .get(id)
            .map_or_else(|| Arc::from(""), |a| a.username.clone());
        Ok((id, name))
    }
}

/// A page's `limit`: the default when absent, 0 refused, clamped to `max`.
fn page_limit(limit: Option<u64>, default: usize, max: usize) -> Result<usize, Failure> {
    match limit {
        None => Ok(default),
        Some(0) => Err(Failure::bad_request(format!(
            "\"limit\" is 1 to {max} (larger is taken as {max})"
        ))),
        Some(n) => Ok(n.min(max as u64) as usize),
    }
}

fn conversation_of(c: StoredConversation) -> Conversation {
    Conversation {
        with: c.with.into(),
        with_id: c.with_id,
        last: c.last.as_ref().map(message_of),
        unread: c.unread,
        read_upto: c.read_upto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_defaults_refuses_zero_and_clamps() {
        assert_eq!(page_limit(None, 50, 200), Ok(50));
        assert!(page_limit(Some(0), 50, 200).is_err());
        assert_eq!(page_limit(Some(7), 50, 200), Ok(7));
        assert_eq!(page_limit(Some(10_000), 50, 200), Ok(200));
    }
}
