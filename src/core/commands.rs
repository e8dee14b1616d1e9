//! What each command does: [`Core::handle`] and one method per command.

use super::accounts::{check_username, Account};
use super::client_ids::FirstSend;
use super::login_throttle::{LoginCharge, Throttled};
use super::mailbox::{self, Budget, Full};
use super::reads::{Stop, Waiting};
use super::waiters::{Poll, Waiter};
use super::{AfterCommit, Binding, Core, Handled, HashWait, Outbox, Revoke, Ticket};
use crate::config::limits;
use crate::error::{ErrorCode, Failure};
use crate::hasher::HashJob;
use crate::message::{Message, Parties};
use crate::request::{Call, Recipient, Reply, Request, SyncArgs};
use crate::store::ReadOp;
use crate::store::WriteOp;
use crate::token::OpenedToken;
use crate::{MessageId, Millis, UserId};
use std::sync::Arc;

/// The one reply for a failed LOGIN, whatever the cause.
const BAD_LOGIN: &str = "wrong username or password";

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
    pub(super) fn run(
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
                self.park(ticket, call.into_owned(), op, out);
                if let Some(user) = beside {
                    self.prefetch_mailbox(user, out);
                }
                Handled::Later { barrier: true }
            }
        }
    }

    fn dispatch(
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
        }
    }

    /// An AUTH whose token opens waits for its account to be read: its
    /// mailbox is asked beside it (after it, so the account is bound and
    /// the head kept when the figures come), and the first SYNC after the
    /// reply finds them in RAM.
    fn read_beside(&self, call: &Call<'_>, op: &ReadOp, now: Millis) -> Option<UserId> {
        let (Request::Auth { token }, ReadOp::UserById(id)) = (&call.request, op) else {
            return None;
        };
        let opened = self.key.open(token, now).ok()?;
        (opened.user == *id).then_some(opened.user)
    }

    /// Who is asking: the request's own token, else the connection's user.
    fn caller(&self, ticket: Ticket, call: &Call<'_>, now: Millis) -> Result<UserId, Stop> {
        self.caller_token(ticket, call, now).map(|(user, _)| user)
    }

    /// [`Core::caller`], and the request's own token if it carried one.
    fn caller_token(
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

    fn open_token(&self, token: &str, now: Millis) -> Result<OpenedToken, Stop> {
        let rejected = || Failure::new(ErrorCode::Unauthorized, super::help::TOKEN_REJECTED);
        let t = self.key.open(token, now).map_err(|_| rejected())?;
        // The account must exist AND be the one the token was issued for:
        // an id alone could name a newer account after a reset. And the
        // token must not have been revoked by LOGOUT (one token, or all
        // the account's: the account read from the store says since when).
        match self.account_by_id(t.user)? {
            Some(account)
                if account.identity == t.identity
                    && t.issued >= self.tokens_valid_from(account)
                    && !self.revocations.is_revoked(&t) =>
            {
                Ok(t)
            }
            _ => Err(rejected().into()),
        }
    }

    /// Tokens of `account` issued before this are void (`LOGOUT all`): as
    /// stored with it, or as set since it was read.
    pub(super) fn tokens_valid_from(&self, account: &Account) -> Millis {
        account
            .tokens_valid_from
            .max(self.revocations.valid_from(account.id))
    }

    /// The account with `id`: `None` if there is none, or the read it needs.
    pub(super) fn account_by_id(&self, id: UserId) -> Result<Option<&Account>, Stop> {
        if let Some(account) = self.accounts.get(id) {
            return Ok(Some(account));
        }
        let op = ReadOp::UserById(id);
        if !self.settings.on_demand || self.is_absent(&op) {
            return Ok(None);
        }
        Err(Stop::Need(op))
    }

    /// The account named `username`: `None` if there is none, or the read
    /// it needs.
    pub(super) fn account_by_name(&self, username: &str) -> Result<Option<&Account>, Stop> {
        if let Some(account) = self.accounts.find(username) {
            return Ok(Some(account));
        }
        let op = ReadOp::UserByName(username.into());
        if !self.settings.on_demand || self.is_absent(&op) || check_username(username).is_err() {
            return Ok(None);
        }
        Err(Stop::Need(op))
    }

    /// The rule for every password: not empty, and at most the maximum.
    fn check_password(password: &str) -> Result<(), Failure> {
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
    fn check_new_password(password: &str) -> Result<(), Failure> {
        if password.chars().count() < limits::MIN_PASSWORD_CHARS {
            return Err(Failure::bad_request(format!(
                "a new password has at least {} characters",
                limits::MIN_PASSWORD_CHARS
            )));
        }
        Self::check_password(password)
    }

    fn register(
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
        let peer = self.passwords.address_of(ticket.conn);
        let charge = match self.throttle.admit_register(peer, now) {
            Ok(charge) => charge,
            Err(retry_after_ms) => {
                let per_hour = self.throttle.settings().registers_per_address_hour;
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
                self.throttle.register_failed(charge);
                return Err(stop);
            }
        }
        self.accounts.reserve(username)?;
        let password = password.to_string();
        let job = self.new_job();
        let wait = HashWait::Register {
            ticket,
            username: username.into(),
            charge,
        };
        self.queue_password_job(wait, job, HashJob::Hash { job, password }, out);
        Ok(Handled::Later { barrier: true })
    }

    fn login(
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
        let peer = self.passwords.address_of(ticket.conn);
        let charge = self
            .throttle
            .admit_login(username, peer, now)
            .map_err(|refused| self.login_throttled(refused))?;
        let account = match self.account_by_name(username) {
            Ok(account) => account.cloned(),
            Err(stop) => {
                // It runs again once the account is read, and is charged
                // then.
                self.throttle.login_not_tried(charge, now);
                return Err(stop);
            }
        };
        let hash = account
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |a| a.password_hash.clone());
        let job = self.new_job();
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
    fn login_throttled(&self, refused: Throttled) -> Failure {
        let s = self.throttle.settings();
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
    pub(super) fn finish_login(
        &mut self,
        ticket: Ticket,
        account: Option<Account>,
        charge: LoginCharge,
        ok: bool,
        now: Millis,
        out: &mut Outbox,
    ) -> Reply {
        let from = self.passwords.address_of(ticket.conn);
        if ok && account.is_some() {
            self.throttle.login_succeeded(charge, now);
        }
        let Some(account) = account.as_ref().filter(|_| ok) else {
            let who = account.as_ref().map_or_else(
                || "an unknown username".to_string(),
                |a| a.username.to_string(),
            );
            self.failed_logins
                .info(now, || format!("failed login for {who} from {from}"));
            return Reply::Error(Failure::new(ErrorCode::Unauthorized, BAD_LOGIN));
        };
        if let Err(failure) = self.check_bind(ticket.conn, account.id) {
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
        log::info!(
            "login: {} (id {}) from {from} on connection {}",
            user.username,
            user.id,
            ticket.conn
        );
        Reply::LoggedIn { token, user }
    }

    fn auth(
        &mut self,
        ticket: Ticket,
        token: &str,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        let opened = self.open_token(token, now)?;
        let user = opened.user;
        self.check_bind(ticket.conn, user)?;
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
    fn logout(
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
            None => self
                .sessions
                .get(&ticket.conn)
                .copied()
                .flatten()
                .ok_or_else(|| {
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
        let capped = !all && self.revocations.count(user) >= self.settings.revocations_per_account;
        let revoke = if all || capped {
            // Every token issued up to this millisecond.
            let from = now + 1;
            self.open_ops.push(WriteOp::VoidTokens { user, from });
            Revoke::All { from }
        } else {
            let (token, expires) = (binding.token, binding.expires);
            self.open_ops.push(WriteOp::RevokeToken {
                user,
                token,
                expires,
            });
            Revoke::One { token, expires }
        };
        self.after_commit(AfterCommit::LoggedOut {
            ticket,
            user,
            revoke,
            capped,
        });
        Ok(Handled::Later { barrier: true })
    }

    fn send(
        &mut self,
        ticket: Ticket,
        from: UserId,
        to: &Recipient<'_>,
        content: &str,
        client_id: Option<&str>,
        now: Millis,
    ) -> Result<Handled, Stop> {
        let to_id = match to {
            Recipient::Name(name) => self.recipient_by_name(ticket, name, now)?,
            Recipient::Id(id) => {
                self.account_by_id(*id)?
                    .ok_or_else(|| {
                        Failure::new(
                            ErrorCode::NotFound,
                            format!("there is no user with id {id}"),
                        )
                    })?
                    .id
            }
        };
        if content.trim().is_empty() {
            return Err(Failure::bad_request(
                "the message content must not be empty or only white space",
            )
            .into());
        }
        if content.len() > limits::MAX_CONTENT_BYTES {
            return Err(Failure::new(
                ErrorCode::TooLarge,
                format!(
                    "a message is at most {} bytes of content",
                    limits::MAX_CONTENT_BYTES
                ),
            )
            .into());
        }
        if let Some(cid) = client_id {
            if cid.is_empty() || cid.len() > limits::MAX_CLIENT_ID_BYTES {
                return Err(Failure::bad_request(format!(
                    "a client_id is 1 to {} bytes",
                    limits::MAX_CLIENT_ID_BYTES
                ))
                .into());
            }
            if let Some(first) = self.client_ids.get(from, cid) {
                if first.committed {
                    return Ok(Handled::Now(Reply::Sent {
                        id: first.id,
                        ts: first.ts,
                    }));
                }
                self.after_commit(AfterCommit::Duplicate {
                    ticket,
                    first,
                    sender: from,
                    client_id: cid.into(),
                });
                return Ok(Handled::Later { barrier: false });
            }
        }
        if !self.mailboxes.is_known(to_id) {
            return Err(self.need_mailbox(to_id));
        }
        // Both were found above, and nothing was cached since.
        let (Some(sender), Some(recipient)) = (self.accounts.get(from), self.accounts.get(to_id))
        else {
            return Err(Failure::new(ErrorCode::Internal, "an account went missing").into());
        };
        let parties = Parties {
            from_id: sender.id,
            from: &sender.username,
            to_id,
            to: &recipient.username,
        };
        let id = self.last_message_id + 1;
        let message = Arc::new(Message::new(id, &parties, now, content, client_id));
        // Room in the mailbox is taken now, before the commit, so SENDs in
        // flight count against its caps; the commit stores or releases it.
        let budget = self.budget();
        let cost = mailbox::cost(&message);
        if let Err(full) = self.mailboxes.reserve(to_id, from, cost, &budget) {
            let name = self.accounts.get(to_id).map_or("", |a| &a.username);
            return Err(mailbox_full(full, cost, name, &budget).into());
        }
        self.last_message_id = id;
        if let Some(cid) = client_id {
            let first = FirstSend {
                id,
                ts: now,
                committed: false,
            };
            self.client_ids.insert(from, cid, first);
        }
        self.open_ops.push(WriteOp::Append(message.clone()));
        self.after_commit(AfterCommit::Sent { ticket, message });
        Ok(Handled::Later { barrier: false })
    }

    fn sync(
        &mut self,
        ticket: Ticket,
        user: UserId,
        poll: Poll,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        if let Some(after) = poll.args.after {
            match self.mailboxes.would_ack(user, after) {
                None => return Err(self.need_mailbox(user)),
                Some(true) => return self.ack(ticket, user, after, Some(poll)),
                Some(false) => {}
            }
        }
        Ok(match self.read_or_wait(ticket, user, poll, now, out) {
            Some(reply) => Handled::Now(reply),
            None => Handled::Later { barrier: true },
        })
    }

    /// SYNC's read: the messages, or `None` when it now waits for one or
    /// for a page from the store.
    pub(super) fn read_or_wait(
        &mut self,
        ticket: Ticket,
        user: UserId,
        poll: Poll,
        now: Millis,
        out: &mut Outbox,
    ) -> Option<Reply> {
        let (after, limit) = sync_window(poll.args);
        match self
            .mailboxes
            .read(user, after, limit, limits::SYNC_MAX_BYTES)
        {
            Some(messages) => self.answer_sync(ticket, user, poll, messages, now, out),
            None => {
                let op = ReadOp::Page {
                    user,
                    after: after.max(self.mailboxes.floor(user)),
                    limit,
                    max_bytes: limits::SYNC_MAX_BYTES,
                };
                self.submit_read(op, Waiting::Sync { ticket, user, poll }, out);
                None
            }
        }
    }

    /// SYNC's answer once its messages are known: them, or (none there,
    /// and it may wait) `None` while it waits for one. A token the SYNC
    /// carried is checked again first: a long-poll may have waited past a
    /// LOGOUT or its expiry (see `poll_tokens.rs`).
    pub(super) fn answer_sync(
        &mut self,
        ticket: Ticket,
        user: UserId,
        poll: Poll,
        messages: Vec<Arc<Message>>,
        now: Millis,
        out: &mut Outbox,
    ) -> Option<Reply> {
        if poll.token.is_some_and(|t| !self.poll_token_holds(&t, now)) {
            return Some(super::poll_tokens::token_gone());
        }
        let args = poll.args;
        if messages.is_empty() && args.wait_ms > 0 && !self.input_closed.contains_key(&ticket.conn)
        {
            let limit = self.settings.waiters_per_user;
            if self.waiters.count_of(user) >= limit {
                return Some(Reply::Error(Failure::new(
                    ErrorCode::RateLimited,
                    format!(
                        "{limit} long-polls already wait for this user, the limit (--waiters-per-user); end one, or sync without waiting"
                    ),
                )));
            }
            let wait_ms = args.wait_ms.min(limits::MAX_WAIT_MS);
            let deadline = Self::poll_deadline(poll.token.as_ref(), now, wait_ms);
            let bound = self.subscribers.contains_key(&user);
            self.cluster.polling(user, bound);
            if let Some(old) = self.waiters.add(Waiter { ticket, user, poll }, deadline) {
                // Not expected (a waiting SYNC is a barrier), but never left
                // unanswered.
                out.replies.push((old.ticket, Reply::Messages(Vec::new())));
            }
            return None;
        }
        Some(Reply::Messages(messages))
    }

    fn ack(
        &mut self,
        ticket: Ticket,
        user: UserId,
        upto: MessageId,
        then_sync: Option<Poll>,
    ) -> Result<Handled, Stop> {
        match self.mailboxes.would_ack(user, upto) {
            None => return Err(self.need_mailbox(user)),
            Some(false) => return Ok(Handled::Now(Reply::Acked)),
            Some(true) => {}
        }
        self.mailboxes.begin_ack(user);
        self.open_ops.push(WriteOp::Ack { user, upto });
        self.after_commit(AfterCommit::Acked {
            ticket,
            user,
            upto,
            then_sync,
        });
        Ok(Handled::Later { barrier: true })
    }
}

/// The ids above which, and how many, a SYNC asks for.
fn sync_window(args: SyncArgs) -> (MessageId, usize) {
    let limit = args
        .limit
        .unwrap_or(limits::SYNC_DEFAULT_LIMIT)
        .clamp(1, limits::SYNC_MAX_LIMIT);
    (args.after.unwrap_or(0), limit)
}

/// The reply to a SEND that a mailbox budget refused, naming the limit.
pub(super) fn mailbox_full(full: Full, cost: usize, recipient: &str, budget: &Budget) -> Failure {
    let message = match full {
        Full::Bytes(_) if cost > budget.bytes => format!(
            "this message takes {cost} bytes as stored, more than a mailbox may hold, {} (--mailbox-bytes)",
            budget.bytes
        ),
        Full::Messages(held) => format!(
            "{recipient}'s mailbox is full: {held} unacknowledged messages, the limit is {} (--mailbox-limit); try again later",
            budget.messages
        ),
        Full::Bytes(held) => format!(
            "{recipient}'s mailbox is full: {held} bytes of unacknowledged messages, the limit is {} (--mailbox-bytes); try again later",
            budget.bytes
        ),
        Full::Sender(held) => format!(
            "your unacknowledged messages take {held} bytes in their receivers' mailboxes, the limit is {} (--pending-bytes-per-sender); try again once some are read",
            budget.per_sender
        ),
        Full::Pending(held) => format!(
            "the server holds {held} bytes of unacknowledged messages for all users, the limit is {} (--pending-bytes); try again later",
            budget.pending_bytes
        ),
    };
    Failure::new(ErrorCode::RateLimited, message)
}

/// A wait in words: "3 s", "2 min" (the exact figure is `retry_after_ms`).
pub(super) fn wait_text(ms: u64) -> String {
    let seconds = ms.div_ceil(1000);
    if seconds < 120 {
        format!("{seconds} s")
    } else {
        format!("{} min", seconds.div_ceil(60))
    }
}

pub(super) fn no_such_user(name: &str) -> Failure {
    Failure::new(
        ErrorCode::NotFound,
        format!("there is no user named '{name}'"),
    )
}
