//! REGISTER, LOGIN, AUTH and LOGOUT: the password rules, the login
//! throttle's charges, the password jobs they queue, and binding a
//! connection to the account.

use super::wait_text;
use crate::config::limits;
use crate::core::accounts::{check_username, Account};
use crate::core::logins::login_throttle::{LoginCharge, Throttled};
use crate::core::reads::Stop;
use crate::core::{AfterCommit, Binding, Core, Handled, HashWait, Outbox, Revoke, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::hasher::HashJob;
use crate::request::{Call, Reply};
use crate::store::WriteOp;
use crate::Millis;

/// The one reply for a failed LOGIN, whatever the cause.
const BAD_LOGIN: &str = "wrong username or password";

impl Core {
    /// The rule for every password: not empty, and at most the maximum.
    pub(in crate::core) fn check_password(password: &str) -> Result<(), Failure> {
        if password.is_empty() {
            return Err(Failure::bad_request("the password must not be empty"));
        }
        if password.len() > limits::MAX_PASSWORD_BYTES {
            return Err(Failure::bad_request(format!(
                "a password is at most {} bytes",
                limits::MAX_PASSWORD_BYTES
            )));
        }
        Ok(())
    }

    /// The rule for a new password (REGISTER): also at least the minimum
    /// length, in characters. LOGIN does not check it, so a failed LOGIN
    /// looks the same whatever the password tried.
    pub(in crate::core) fn check_new_password(password: &str) -> Result<(), Failure> {
        if password.chars().count() < limits::MIN_PASSWORD_CHARS {
            return Err(Failure::bad_request(format!(
                "a new password has at least {} characters",
                limits::MIN_PASSWORD_CHARS
            )));
        }
        Self::check_password(password)
    }

    pub(in crate::core) fn register(
        &mut self,
        ticket: Ticket,
        username: &str,
        password: &str,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        Self::check_new_password(password)?;
        self.check_password_room(ticket.conn)?;
        check_username(username)?;
        crate::username::check_new_shape(username)?;
        // Charged before the name is looked at: a `conflict` costs a
        // registration too, so REGISTER cannot list which names exist
        // faster than accounts can be made.
        let peer = self.logins.address_of(ticket.conn);
        let charge = match self.logins.throttle.admit_register(peer, now) {
            Ok(charge) => charge,
            Err(retry_after_ms) => {
                let per_hour = self.logins.throttle.settings().registers_per_address_hour;
                return Err(Failure::retry_after(
                    format!(
                        "too many new accounts from your address: at most {per_hour} an hour \
                         (--registers-per-address-hour); try again in {}",
                        wait_text(retry_after_ms)
                    ),
                    retry_after_ms,
                )
                .into());
            }
        };
        // The store is asked whether the name is free (the database's
        // unique index has the last word); names being registered are
        // reserved meanwhile.
        if !self.accounts.is_reserved(username) {
            if let Err(stop) = self.account_by_name(username) {
                // It runs again once the name is read, and is charged then.
                self.logins.throttle.register_failed(charge);
                return Err(stop);
            }
        }
        self.accounts.reserve(username)?;
        let password = password.to_string();
        let job = self.logins.new_job();
        let wait = HashWait::Register {
            ticket,
            username: username.into(),
            charge,
        };
        self.queue_password_job(wait, job, HashJob::Hash { job, password }, out);
        Ok(Handled::Later { barrier: true })
    }

    pub(in crate::core) fn login(
        &mut self,
        ticket: Ticket,
        username: &str,
        password: &str,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        if username.is_empty() || password.is_empty() {
            return Err(Failure::bad_request("LOGIN needs a username and a password").into());
        }
        Self::check_password(password)?;
        self.check_password_room(ticket.conn)?;
        // Before any hashing (or reading): a throttled attempt costs
        // nothing.
        let peer = self.logins.address_of(ticket.conn);
        let charge = self
            .logins
            .throttle
            .admit_login(username, peer, now)
            .map_err(|refused| self.login_throttled(refused))?;
        let account = match self.account_by_name(username) {
            Ok(account) => account.cloned(),
            Err(stop) => {
                // It runs again once the account is read, and is charged
                // then.
                self.logins.throttle.login_not_tried(charge, now);
                return Err(stop);
            }
        };
        // A disabled account (`gotalk admin user disable`) is checked
        // against the dummy hash, like an unknown name: the same work,
        // the same reply as a wrong password.
        let hash = account
            .as_ref()
            .filter(|a| !crate::store::admin::locked(&a.password_hash))
            .map_or_else(
                || self.logins.dummy_hash.clone(),
                |a| a.password_hash.clone(),
            );
        let job = self.logins.new_job();
        let work = HashJob::Verify {
            job,
            password: password.to_string(),
            hash,
        };
        let wait = HashWait::Login {
            ticket,
            account,
            charge,
        };
        self.queue_password_job(wait, job, work, out);
        Ok(Handled::Later { barrier: true })
    }

    /// The reply to a throttled LOGIN: the same for every username, known
    /// or not, naming the limit that refused it.
    pub(in crate::core) fn login_throttled(&self, refused: Throttled) -> Failure {
        let s = self.logins.throttle.settings();
        if refused.logins {
            return Failure::retry_after(
                format!(
                    "too many logins for this username: at most {} a minute \
                     (--logins-per-account-minute); try again in {}",
                    s.logins_per_account_minute,
                    wait_text(refused.retry_after_ms)
                ),
                refused.retry_after_ms,
            );
        }
        let (what, per_minute, flag) = if refused.by_address {
            (
                "from your address",
                s.login_failures_per_address_minute,
                "--login-failures-per-address-minute",
            )
        } else {
            (
                "for this username",
                s.login_failures_per_minute,
                "--login-failures-per-minute",
            )
        };
        Failure::retry_after(
            format!(
                "too many failed logins {what}: at most {per_minute} a minute ({flag}); \
                 try again in {}",
                wait_text(refused.retry_after_ms)
            ),
            refused.retry_after_ms,
        )
    }

    /// Finishes a LOGIN whose password check came back.
    pub(in crate::core) fn finish_login(
        &mut self,
        ticket: Ticket,
        account: Option<Account>,
        charge: LoginCharge,
        ok: bool,
        now: Millis,
        out: &mut Outbox,
    ) -> Reply {
        let from = self.logins.address_of(ticket.conn);
        if ok && account.is_some() {
            self.logins.throttle.login_succeeded(charge, now);
        }
        let Some(account) = account.as_ref().filter(|_| ok) else {
            let who = account.as_ref().map_or_else(
                || "an unknown username".to_string(),
                |a| a.username.to_string(),
            );
            self.logins
                .failed_logins
                .info(now, || format!("failed login for {who} from {from}"));
            return Reply::Error(Failure::new(ErrorCode::Unauthorized, BAD_LOGIN));
        };
        if let Err(failure) =
            self.sessions
                .check_bind(ticket.conn, account.id, self.settings.conns_per_user)
        {
            return Reply::Error(failure);
        }
        let identity = account.identity;
        let user = account.user_ref();
        // Never issued before a LOGOUT all of the same millisecond.
        let issued = now.max(self.tokens_valid_from(account));
        let expires = issued + self.settings.token_ttl_ms;
        let sealed = self.key.issue(user.id, identity, issued, expires);
        let token = sealed.token;
        let binding = Binding {
            user: user.id,
            token: sealed.id,
            expires,
        };
        // The cache may have dropped it while the hash ran.
        self.accounts.insert(account.clone());
        self.bind(ticket.conn, binding);
        self.warm_up(user.id, out);
        // For `gotalk admin user show`; nobody waits for it.
        self.writes.push(WriteOp::LastLogin {
            id: user.id,
            at: now,
        });
        log::info!(
            "login: {} (id {}) from {from} on connection {}",
            user.username,
            user.id,
            ticket.conn
        );
        Reply::LoggedIn { token, user }
    }

    pub(in crate::core) fn auth(
        &mut self,
        ticket: Ticket,
        token: &str,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        let opened = self.open_token(token, now)?;
        let user = opened.user;
        self.sessions
            .check_bind(ticket.conn, user, self.settings.conns_per_user)?;
        let binding = Binding {
            user,
            token: opened.id,
            expires: opened.expires,
        };
        let account = self
            .accounts
            .get(user)
            .expect("open_token checked the account");
        let reply = Reply::User(account.user_ref());
        self.bind(ticket.conn, binding);
        self.warm_up(user, out);
        Ok(Handled::Now(reply))
    }

    /// LOGOUT: revokes the request's own token if it carries one, else the
    /// token that bound this connection; with `all`, every token of that
    /// account issued until now. Answered once stored; connections bound
    /// by a revoked token are then unbound (see `commit.rs`).
    pub(in crate::core) fn logout(
        &mut self,
        ticket: Ticket,
        call: &Call<'_>,
        all: bool,
        now: Millis,
    ) -> Result<Handled, Stop> {
        let binding = match &call.token {
            Some(token) => {
                let t = self.open_token(token, now)?;
                Binding {
                    user: t.user,
                    token: t.id,
                    expires: t.expires,
                }
            }
            None => self.sessions.binding(ticket.conn).ok_or_else(|| {
                Failure::new(
                    ErrorCode::Unauthorized,
                    "LOGOUT takes back the token this connection logged in with; \
                         log in first (LOGIN or AUTH), or give the token",
                )
            })?,
        };
        let user = binding.user;
        if call.claimed_id.is_some_and(|claimed| claimed != user) {
            return Err(Failure::new(
                ErrorCode::Unauthorized,
                "the token belongs to another user than the id given",
            )
            .into());
        }
        // Past the account's share of single revocations, every session
        // ends instead: one moment stored, and the single ones forgotten.
        let capped =
            !all && self.sessions.revocations.count(user) >= self.settings.revocations_per_account;
        let revoke = if all || capped {
            // Every token issued up to this millisecond.
            let from = now + 1;
            self.writes.push(WriteOp::VoidTokens { user, from });
            Revoke::All { from }
        } else {
            let (token, expires) = (binding.token, binding.expires);
            self.writes.push(WriteOp::RevokeToken {
                user,
                token,
                expires,
            });
            Revoke::One { token, expires }
        };
        self.writes.after_commit(AfterCommit::LoggedOut {
            ticket,
            user,
            revoke,
            capped,
        });
        Ok(Handled::Later { barrier: true })
    }
}
