//! Long-polls and the token that started them. A SYNC that carries its own
//! token (HTTP, or a line SYNC with `token`) may wait up to 5 minutes; the
//! token is recorded with the waiter (`waiters::Poll`) so that taking it
//! back reaches the wait too:
//!
//! - LOGOUT and LOGOUT all answer the account's matching waiters at once
//!   with `unauthorized` and free their slots; they are found in the
//!   account's own waiter list (at most `--waiters-per-user`), no scan;
//! - the token's expiry is a deadline of the wait (the earlier of the two);
//!   a waiter due by it is answered `unauthorized`;
//! - a waiter is checked again before any message is handed to it
//!   ([`Core::poll_token_holds`], in `answer_sync`), so nothing reaches a
//!   token that no longer opens, whatever the path (delivery, a page read,
//!   another node's write).
//!
//! A long-poll of a bound connection (no token in the request) ends when
//! the connection is unbound (its event says why), as before.
//!
//! Hook for an admin "disable account": [`Core::refuse_polls`] with
//! [`PollsOf::Every`] ends every long-poll of the account, whatever token
//! started it; unbinding its connections is `take_back` with a
//! `Revoke::All` from the moment of disabling.

use super::waiters::Waiter;
use super::{Core, Outbox, Revoke};
use crate::error::{ErrorCode, Failure};
use crate::request::Reply;
use crate::token::{OpenedToken, TokenId};
use crate::{Millis, UserId};

/// Which of an account's token-started long-polls to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PollsOf {
    /// Those started by this token (LOGOUT).
    Token(TokenId),
    /// Those started by a token issued before this moment (LOGOUT all).
    IssuedBefore(Millis),
    /// All of them, bound or not (an account taken out of service).
    #[allow(dead_code)]
    Every,
}

impl PollsOf {
    /// The long-polls a LOGOUT takes back.
    pub(super) fn of(revoke: Revoke) -> PollsOf {
        match revoke {
            Revoke::One { token, .. } => PollsOf::Token(token),
            Revoke::All { from } => PollsOf::IssuedBefore(from),
        }
    }

    fn matches(self, waiter: &Waiter) -> bool {
        match (self, waiter.poll.token) {
            (PollsOf::Every, _) => true,
            (PollsOf::Token(id), Some(t)) => t.id == id,
            (PollsOf::IssuedBefore(from), Some(t)) => t.issued < from,
            (_, None) => false,
        }
    }
}

/// The reply to a long-poll whose token was taken back or expired.
pub(super) fn token_gone() -> Reply {
    Reply::Error(Failure::new(
        ErrorCode::Unauthorized,
        super::help::TOKEN_REJECTED,
    ))
}

impl Core {
    /// Ends the long-polls of `user` that `which` names with
    /// `unauthorized`; their slots are free at once.
    pub(super) fn refuse_polls(&mut self, user: UserId, which: PollsOf, out: &mut Outbox) {
        for waiter in self.waiters.take_matching(user, |w| which.matches(w)) {
            out.replies.push((waiter.ticket, token_gone()));
        }
    }

    /// Whether a token a long-poll recorded still opens at `now`: not
    /// expired, not revoked alone, not voided by a `LOGOUT all` (of this
    /// run, or stored with the account if it is cached; a LOGOUT of this
    /// account on this node or another reaches the waiters directly).
    pub(super) fn poll_token_holds(&self, token: &OpenedToken, now: Millis) -> bool {
        now < token.expires
            && !self.sessions.revocations.is_revoked(token)
            && self
                .accounts
                .get(token.user)
                .is_none_or(|a| a.identity == token.identity && token.issued >= a.tokens_valid_from)
    }

    /// When a long-poll asked at `now` to wait `wait_ms` is due: its own
    /// deadline, or its token's expiry if that comes first.
    pub(super) fn poll_deadline(
        token: Option<&OpenedToken>,
        now: Millis,
        wait_ms: Millis,
    ) -> Millis {
        let deadline = now + wait_ms;
        token.map_or(deadline, |t| deadline.min(t.expires))
    }

    /// The reply to a waiter that came due: the normal empty list, or
    /// `unauthorized` if its token expired.
    pub(super) fn due_reply(waiter: &Waiter, now: Millis) -> Reply {
        match waiter.poll.token {
            Some(t) if now >= t.expires => token_gone(),
            _ => Reply::Messages(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::user;
    use super::super::{Core, CoreSettings, Handled, Outbox, Ticket};
    use crate::error::ErrorCode;
    use crate::request::{Call, Recipient, Reply, Request, SyncArgs};
    use crate::store::{Committed, Snapshot};
    use crate::token::TokenKey;
    use crate::Millis;
    use std::borrow::Cow;

    const NOW: Millis = 1_764_000_000_000;

    fn with_token(request: Request<'static>, token: &str) -> Call<'static> {
        Call {
            token: Some(Cow::Owned(token.to_string())),
            ..Call::new(request)
        }
    }

    fn wait(ms: u64) -> Request<'static> {
        Request::Sync(SyncArgs {
            wait_ms: ms,
            ..SyncArgs::default()
        })
    }

    /// A message committed when the waiting token has just expired (before
    /// the tick that would answer the wait) is not handed to it: the wait
    /// is answered `unauthorized`, and the message stays for a valid token.
    #[test]
    fn delivery_checks_the_token_of_a_long_poll_again() {
        let mut core = Core::new(CoreSettings::default(), TokenKey::random(), "x".into());
        core.restore(Snapshot {
            users: vec![user(1, "alice"), user(2, "bob")],
            ..Snapshot::default()
        });
        let mut out = Outbox::default();
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        let short = core.key.seal(1, 1, NOW, NOW + 1000);
        let long = core.key.seal(1, 1, NOW, NOW + 3_600_000);
        let bob = core.key.seal(2, 2, NOW, NOW + 3_600_000);
        for conn in [1, 2, 3] {
            core.open_connection(conn, peer);
        }
        let poll = Ticket::new(1, 1);
        let handled = core.handle(poll, with_token(wait(60_000), &short), NOW, &mut out);
        assert!(matches!(handled, Handled::Later { .. }), "{handled:?}");
        let send = Request::Send {
            to: Recipient::Name(Cow::Borrowed("alice")),
            content: Cow::Borrowed("for alice"),
            client_id: None,
        };
        core.handle(
            Ticket::new(2, 2),
            with_token(send, &bob),
            NOW + 500,
            &mut out,
        );
        let batch = core.take_batch().expect("the SEND waits on a commit");
        let at = NOW + 1000;
        core.on_committed(Committed::of(batch.seq, Ok(())), at, &mut out);
        let answers: Vec<&Reply> = out
            .replies
            .iter()
            .filter(|(t, _)| *t == poll)
            .map(|(_, r)| r)
            .collect();
        assert!(
            matches!(answers[..], [Reply::Error(ref f)] if f.code == ErrorCode::Unauthorized),
            "{answers:?}"
        );
        assert_eq!(core.waiters.len(), 0, "its slot is free");
        let handled = core.handle(Ticket::new(3, 3), with_token(wait(0), &long), at, &mut out);
        let Handled::Now(Reply::Messages(messages)) = handled else {
            panic!("{handled:?}");
        };
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].content(), "for alice");
    }
}
