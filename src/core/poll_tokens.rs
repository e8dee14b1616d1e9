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
            && !self.revocations.is_revoked(token)
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
