//! Name→id lookups a client can make: LOOKUP (and HTTP's
//! `/getuseridbyname`), and a SEND to a name. Each answers "does this name
//! exist?", so they share one budget per peer address
//! (`--lookups-per-address-minute`, kept by `login_throttle`): a LOOKUP
//! takes a token whatever it finds; a SEND to a name takes one only when
//! the name does not exist (ordinary messaging is not slowed), and is
//! refused while the address has none left, found or not, so the refusal
//! says nothing about the name. REGISTER's `conflict` is charged to the
//! registration budget instead (see `commands/accounts.rs`).

use super::{no_such_user, wait_text};
use crate::core::accounts::check_username;
use crate::core::reads::Stop;
use crate::core::{Core, Handled, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::request::{Recipient, Reply};
use crate::{Millis, UserId};

impl Core {
    /// LOOKUP: the user named `username`, charged to the caller's address.
    pub(in crate::core) fn lookup(
        &mut self,
        ticket: Ticket,
        username: &str,
        now: Millis,
    ) -> Result<Handled, Stop> {
        check_username(username)?;
        let peer = self.logins.address_of(ticket.conn);
        let taken = self
            .logins
            .throttle
            .admit_lookup(peer, now)
            .map_err(|wait| self.lookups_refused(wait))?;
        match self.account_by_name(username) {
            Ok(Some(account)) => Ok(Handled::Now(Reply::User(account.user_ref()))),
            Ok(None) => Err(no_such_user(username).into()),
            Err(stop) => {
                // It runs again once the account is read, and is charged then.
                self.logins.throttle.lookup_not_done(taken);
                Err(stop)
            }
        }
    }

    /// A SEND's recipient named `name`: refused while the caller's address
    /// has no lookup left; a name that does not exist takes one. The user
    /// this connection last sent to is found without hashing the name
    /// (`recent_to.rs`).
    pub(in crate::core) fn recipient_by_name(
        &mut self,
        ticket: Ticket,
        name: &str,
        now: Millis,
    ) -> Result<UserId, Stop> {
        let peer = self.logins.address_of(ticket.conn);
        if let Some(wait) = self.logins.throttle.lookup_wait(peer, now) {
            return Err(self.lookups_refused(wait).into());
        }
        if let Some(id) = self.recent_to.get(ticket.conn, name, &self.accounts) {
            return Ok(id);
        }
        match self.account_by_name(name)? {
            Some(account) => {
                let id = account.id;
                self.recent_to.set(ticket.conn, id);
                Ok(id)
            }
            None => {
                let _ = self.logins.throttle.admit_lookup(peer, now);
                Err(no_such_user(name).into())
            }
        }
    }

    /// A user named by a request (a SEND's `to`, a conversation's
    /// `with`): by name as [`Core::recipient_by_name`], or by id.
    pub(in crate::core) fn recipient(
        &mut self,
        ticket: Ticket,
        who: &Recipient<'_>,
        now: Millis,
    ) -> Result<UserId, Stop> {
        match who {
            Recipient::Name(name) => self.recipient_by_name(ticket, name, now),
            Recipient::Id(id) => Ok(self
                .account_by_id(*id)?
                .ok_or_else(|| {
                    Failure::new(
                        ErrorCode::NotFound,
                        format!("there is no user with id {id}"),
                    )
                })?
                .id),
        }
    }

    fn lookups_refused(&self, retry_after_ms: u64) -> Failure {
        let per_minute = self.logins.throttle.settings().lookups_per_address_minute;
        Failure::retry_after(
            format!(
                "too many name lookups from your address: at most {per_minute} a minute \
                 (--lookups-per-address-minute); try again in {}",
                wait_text(retry_after_ms)
            ),
            retry_after_ms,
        )
    }
}
