//! Who is asking: the token a request carries, else the user its
//! connection is bound to; and the accounts a command names, from the
//! cache or (`Stop::Need`) a read of the store.

use crate::core::accounts::{check_username, Account};
use crate::core::help;
use crate::core::reads::Stop;
use crate::core::{Core, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::request::Call;
use crate::store::ReadOp;
use crate::token::OpenedToken;
use crate::{Millis, UserId};

impl Core {
    /// Who is asking: the request's own token, else the connection's user.
    pub(in crate::core) fn caller(
        &self,
        ticket: Ticket,
        call: &Call<'_>,
        now: Millis,
    ) -> Result<UserId, Stop> {
        self.caller_token(ticket, call, now).map(|(user, _)| user)
    }

    /// [`Core::caller`], and the request's own token if it carried one.
    pub(in crate::core) fn caller_token(
        &self,
        ticket: Ticket,
        call: &Call<'_>,
        now: Millis,
    ) -> Result<(UserId, Option<OpenedToken>), Stop> {
        let opened = match &call.token {
            Some(token) => Some(self.open_token(token, now)?),
            None => None,
        };
        let user = match opened {
            Some(t) => t.user,
            None => self.session_user(ticket.conn).ok_or_else(|| {
                Failure::new(
                    ErrorCode::Unauthorized,
                    "log in first: LOGIN <username> <password>, or AUTH <token>",
                )
            })?,
        };
        if call.claimed_id.is_some_and(|claimed| claimed != user) {
            return Err(Failure::new(
                ErrorCode::Unauthorized,
                "the token belongs to another user than the id given",
            )
            .into());
        }
        Ok((user, opened))
    }

    pub(in crate::core) fn open_token(
        &self,
        token: &str,
        now: Millis,
    ) -> Result<OpenedToken, Stop> {
        let rejected = || Failure::new(ErrorCode::Unauthorized, help::TOKEN_REJECTED);
        let t = (self.token_memo.borrow_mut())
            .open(&self.key, token, now)
            .map_err(|_| rejected())?;
        // The account must exist AND be the one the token was issued for:
        // an id alone could name a newer account after a reset. And the
        // token must not have been revoked by LOGOUT (one token, or all
        // the account's: the account read from the store says since when).
        match self.account_by_id(t.user)? {
            Some(account)
                if account.identity == t.identity
                    && t.issued >= self.tokens_valid_from(account)
                    && !self.sessions.revocations.is_revoked(&t) =>
            {
                Ok(t)
            }
            _ => Err(rejected().into()),
        }
    }

    /// Tokens of `account` issued before this are void (`LOGOUT all`): as
    /// stored with it, or as set since it was read.
    pub(in crate::core) fn tokens_valid_from(&self, account: &Account) -> Millis {
        account
            .tokens_valid_from
            .max(self.sessions.revocations.valid_from(account.id))
    }

    /// The account with `id`: `None` if there is none, or the read it needs.
    pub(in crate::core) fn account_by_id(&self, id: UserId) -> Result<Option<&Account>, Stop> {
        if let Some(account) = self.accounts.get(id) {
            return Ok(Some(account));
        }
        let op = ReadOp::UserById(id);
        if !self.settings.on_demand || self.reads.is_absent(&op) {
            return Ok(None);
        }
        Err(Stop::Need(op))
    }

    /// The account named `username`: `None` if there is none, or the read
    /// it needs.
    pub(in crate::core) fn account_by_name(
        &self,
        username: &str,
    ) -> Result<Option<&Account>, Stop> {
        if let Some(account) = self.accounts.find(username) {
            return Ok(Some(account));
        }
        let op = ReadOp::UserByName(username.into());
        if !self.settings.on_demand
            || self.reads.is_absent(&op)
            || check_username(username).is_err()
        {
            return Ok(None);
        }
        Err(Stop::Need(op))
    }
}
