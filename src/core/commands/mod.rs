//! What each command does: [`Core::handle`] runs one request, and
//! `dispatch` hands it to its family's file: `accounts.rs` (REGISTER,
//! LOGIN, AUTH, LOGOUT), `messaging.rs` (SEND, SYNC, ACK), `sessions.rs`
//! (who is asking: tokens and the connection's user) and `lookup.rs`
//! (LOOKUP, and names as recipients). PING, HELP and QUIT answer here.

mod accounts;
mod history;
mod lookup;
mod messaging;
mod sessions;

pub(super) use messaging::mailbox_full;

use crate::core::reads::Stop;
use crate::core::waiters::Poll;
use crate::core::{Core, Handled, Outbox, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::request::{Call, Reply, Request};
use crate::store::ReadOp;
use crate::{Millis, UserId};

impl Core {
    /// Runs one request for the connection in `ticket`.
    pub fn handle(
        &mut self,
        ticket: Ticket,
        call: Call<'_>,
        now: Millis,
        out: &mut Outbox,
    ) -> Handled {
        let ticket = Ticket {
            kind: call.request.kind(),
            ..ticket
        };
        let handled = self.run(ticket, call, now, out);
        if let Handled::Now(reply) = &handled {
            self.count_reply(ticket, reply, now);
        }
        handled
    }

    /// [`Core::handle`] without counting the reply (a call that runs again
    /// after a read has its reply counted as it goes out).
    pub(in crate::core) fn run(
        &mut self,
        ticket: Ticket,
        call: Call<'_>,
        now: Millis,
        out: &mut Outbox,
    ) -> Handled {
        match self.dispatch(ticket, &call, now, out) {
            Ok(handled) => handled,
            Err(Stop::Fail(failure)) => Handled::Now(Reply::Error(failure)),
            Err(Stop::Need(op)) => {
                let beside = self.read_beside(&call, &op, now);
                self.reads.park(ticket, call.into_owned(), op, out);
                if let Some(user) = beside {
                    self.prefetch_mailbox(user, out);
                }
                Handled::Later { barrier: true }
            }
        }
    }

    pub(in crate::core) fn dispatch(
        &mut self,
        ticket: Ticket,
        call: &Call<'_>,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        match &call.request {
            Request::Ping => Ok(Handled::Now(Reply::Pong)),
            Request::Help => Ok(Handled::Now(Reply::Help)),
            Request::Quit => Ok(Handled::Now(Reply::Bye)),
            Request::Register { username, password } => {
                self.register(ticket, username, password, now, out)
            }
            Request::Login { username, password } => {
                self.login(ticket, username, password, now, out)
            }
            Request::Auth { token } => self.auth(ticket, token, now, out),
            Request::Lookup { username } => self.lookup(ticket, username, now),
            Request::Send {
                to,
                content,
                client_id,
            } => {
                let from = self.caller(ticket, call, now)?;
                self.send(ticket, from, to, content, client_id.as_deref(), now)
            }
            Request::Sync(args) => {
                let (user, token) = self.caller_token(ticket, call, now)?;
                let poll = Poll { args: *args, token };
                self.sync(ticket, user, poll, now, out)
            }
            Request::Ack { upto } => {
                let user = self.caller(ticket, call, now)?;
                self.ack(ticket, user, *upto, None)
            }
            Request::Logout { all } => self.logout(ticket, call, *all, now),
            Request::History(args) => {
                let user = self.caller(ticket, call, now)?;
                self.history(ticket, user, args, now, out)
            }
            Request::Read { with, upto } => {
                let user = self.caller(ticket, call, now)?;
                self.read_mark(ticket, user, with, *upto, now, out)
            }
            Request::Conversations { before, limit } => {
                let user = self.caller(ticket, call, now)?;
                self.conversations(ticket, user, *before, *limit, out)
            }
        }
    }

    /// An AUTH whose token opens waits for its account to be read: its
    /// mailbox is asked beside it (after it, so the account is bound and
    /// the head kept when the figures come), and the first SYNC after the
    /// reply finds them in RAM.
    pub(in crate::core) fn read_beside(
        &self,
        call: &Call<'_>,
        op: &ReadOp,
        now: Millis,
    ) -> Option<UserId> {
        let (Request::Auth { token }, ReadOp::UserById(id)) = (&call.request, op) else {
            return None;
        };
        let opened = self.key.open(token, now).ok()?;
        (opened.user == *id).then_some(opened.user)
    }
}

/// A wait in words: "3 s", "2 min" (the exact figure is `retry_after_ms`).
pub(in crate::core) fn wait_text(ms: u64) -> String {
    let seconds = ms.div_ceil(1000);
    if seconds < 120 {
        format!("{seconds} s")
    } else {
        format!("{} min", seconds.div_ceil(60))
    }
}

pub(in crate::core) fn no_such_user(name: &str) -> Failure {
    Failure::new(
        ErrorCode::NotFound,
        format!("there is no user named '{name}'"),
    )
}
