//! What each command does: [`Core::handle`] and one method per command.

use super::accounts::{check_username, Account};
use super::client_ids::FirstSend;
use super::mailbox::{self, Budget, Full};
use super::reads::{Stop, Waiting};
use super::waiters::Waiter;
use super::{AfterCommit, Core, Handled, HashWait, Outbox, Ticket};
use crate::config::limits;
use crate::error::{ErrorCode, Failure};
use crate::hasher::HashJob;
use crate::message::{Message, Parties};
use crate::request::{Call, Recipient, Reply, Request, SyncArgs};
use crate::store::ReadOp;
use crate::store::WriteOp;
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
                self.park(ticket, call.into_owned(), op, out);
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
                self.register(ticket, username, password, out)
            }
            Request::Login { username, password } => self.login(ticket, username, password, out),
            Request::Auth { token } => self.auth(ticket, token, now, out),
            Request::Lookup { username } => self.lookup(username),
            Request::Send {
                to,
                content,
                client_id,
            } => {
                let from = self.caller(ticket, call, now)?;
                self.send(ticket, from, to, content, client_id.as_deref(), now)
            }
            Request::Sync(args) => {
                let user = self.caller(ticket, call, now)?;
                self.sync(ticket, user, *args, now, out)
            }
            Request::Ack { upto } => {
                let user = self.caller(ticket, call, now)?;
                self.ack(ticket, user, *upto, None)
            }
        }
    }

    /// Who is asking: the request's own token, else the connection's user.
    fn caller(&self, ticket: Ticket, call: &Call<'_>, now: Millis) -> Result<UserId, Stop> {
        let user = match &call.token {
            Some(token) => self.open_token(token, now)?,
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
        Ok(user)
    }

    fn open_token(&self, token: &str, now: Millis) -> Result<UserId, Stop> {
        let rejected = || Failure::new(ErrorCode::Unauthorized, super::help::TOKEN_REJECTED);
        let (user, identity) = self.key.open(token, now).map_err(|_| rejected())?;
        // The account must exist AND be the one the token was issued for:
        // an id alone could name a newer account after a reset.
        match self.account_by_id(user)? {
            Some(account) if account.identity == identity => Ok(user),
            _ => Err(rejected().into()),
        }
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

    fn register(
        &mut self,
        ticket: Ticket,
        username: &str,
        password: &str,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        Self::check_password(password)?;
        self.check_password_room(ticket.conn)?;
        // The store is asked whether the name is free (the database's
        // unique index has the last word); names being registered are
        // reserved meanwhile.
        if !self.accounts.is_reserved(username) {
            self.account_by_name(username)?;
        }
        self.accounts.reserve(username)?;
        let password = password.to_string();
        let job = self.new_job();
        let wait = HashWait::Register {
            ticket,
            username: username.into(),
        };
        self.queue_password_job(wait, job, HashJob::Hash { job, password }, out);
        Ok(Handled::Later { barrier: true })
    }

    fn login(
        &mut self,
        ticket: Ticket,
        username: &str,
        password: &str,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        if username.is_empty() || password.is_empty() {
            return Err(Failure::bad_request("LOGIN needs a username and a password").into());
        }
        Self::check_password(password)?;
        self.check_password_room(ticket.conn)?;
        let account = self.account_by_name(username)?.cloned();
        let hash = account
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |a| a.password_hash.clone());
        let job = self.new_job();
        let work = HashJob::Verify {
            job,
            password: password.to_string(),
            hash,
        };
        self.queue_password_job(HashWait::Login { ticket, account }, job, work, out);
        Ok(Handled::Later { barrier: true })
    }

    /// Finishes a LOGIN whose password check came back.
    pub(super) fn finish_login(
        &mut self,
        ticket: Ticket,
        account: Option<Account>,
        ok: bool,
        now: Millis,
        out: &mut Outbox,
    ) -> Reply {
        let from = self.passwords.address_of(ticket.conn);
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
        let token = self
            .key
            .seal(user.id, identity, now, now + self.settings.token_ttl_ms);
        // The cache may have dropped it while the hash ran.
        self.accounts.insert(account.clone());
        self.bind(ticket.conn, user.id);
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
        let user = self.open_token(token, now)?;
        self.check_bind(ticket.conn, user)?;
        let account = self
            .accounts
            .get(user)
            .expect("open_token checked the account");
        let reply = Reply::User(account.user_ref());
        self.bind(ticket.conn, user);
        self.warm_up(user, out);
        Ok(Handled::Now(reply))
    }

    fn lookup(&self, username: &str) -> Result<Handled, Stop> {
        check_username(username)?;
        self.account_by_name(username)?
            .map(|a| Handled::Now(Reply::User(a.user_ref())))
            .ok_or_else(|| no_such_user(username).into())
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
            Recipient::Name(name) => {
                self.account_by_name(name)?
                    .ok_or_else(|| no_such_user(name))?
                    .id
            }
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
            return Err(Stop::Need(ReadOp::Mailbox(to_id)));
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
        if let Err(full) = self.mailboxes.reserve(to_id, cost, &budget) {
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
        args: SyncArgs,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        if let Some(after) = args.after {
            match self.mailboxes.would_ack(user, after) {
                None => return Err(Stop::Need(ReadOp::Mailbox(user))),
                Some(true) => return self.ack(ticket, user, after, Some(args)),
                Some(false) => {}
            }
        }
        Ok(match self.read_or_wait(ticket, user, args, now, out) {
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
        args: SyncArgs,
        now: Millis,
        out: &mut Outbox,
    ) -> Option<Reply> {
        let (after, limit) = sync_window(args);
        match self
            .mailboxes
            .read(user, after, limit, limits::SYNC_MAX_BYTES)
        {
            Some(messages) => self.answer_sync(ticket, user, args, messages, now, out),
            None => {
                let op = ReadOp::Page {
                    user,
                    after: after.max(self.mailboxes.floor(user)),
                    limit,
                    max_bytes: limits::SYNC_MAX_BYTES,
                };
                self.submit_read(op, Waiting::Sync { ticket, user, args }, out);
                None
            }
        }
    }

    /// SYNC's answer once its messages are known: them, or (none there,
    /// and it may wait) `None` while it waits for one.
    pub(super) fn answer_sync(
        &mut self,
        ticket: Ticket,
        user: UserId,
        args: SyncArgs,
        messages: Vec<Arc<Message>>,
        now: Millis,
        out: &mut Outbox,
    ) -> Option<Reply> {
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
            let deadline = now + args.wait_ms.min(limits::MAX_WAIT_MS);
            if let Some(old) = self.waiters.add(Waiter { ticket, user, args }, deadline) {
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
        then_sync: Option<SyncArgs>,
    ) -> Result<Handled, Stop> {
        match self.mailboxes.would_ack(user, upto) {
            None => return Err(Stop::Need(ReadOp::Mailbox(user))),
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
fn mailbox_full(full: Full, cost: usize, recipient: &str, budget: &Budget) -> Failure {
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
        Full::Pending(held) => format!(
            "the server holds {held} bytes of unacknowledged messages for all users, the limit is {} (--pending-bytes); try again later",
            budget.pending_bytes
        ),
    };
    Failure::new(ErrorCode::RateLimited, message)
}

fn no_such_user(name: &str) -> Failure {
    Failure::new(
        ErrorCode::NotFound,
        format!("there is no user named '{name}'"),
    )
}
