//! The second half of deferred requests: password jobs that came back, and
//! batches the store has committed (or failed to). Delivery happens here:
//! a message is pushed and put in its mailbox only once it is stored.

use super::client_ids::FirstSend;
use super::poll_tokens::PollsOf;
use super::{Account, AfterCommit, Core, HashWait, Outbox, Revoke, SessionEvent, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::hasher::HashDone;
use crate::message::Message;
use crate::request::Reply;
use crate::store::{Committed, Duplicate, Removed, StoreError, WriteOp};
use crate::{ConnId, Millis, UserId};
use std::sync::Arc;

/// The reply to a request whose batch could not be committed.
fn unavailable(result: &Result<(), StoreError>) -> Reply {
    let message = match result {
        Err(StoreError::DiskFull) => {
            "the server's disk is full; nothing was changed, try again later"
        }
        _ => "the server could not store this; nothing was changed, try again",
    };
    Reply::Error(Failure::new(ErrorCode::Unavailable, message))
}

impl Core {
    /// A password worker finished a job.
    pub fn on_hash_done(&mut self, done: HashDone, now: Millis, out: &mut Outbox) {
        let job = match &done {
            HashDone::Hashed { job, .. } | HashDone::Verified { job, .. } => *job,
        };
        let Some(wait) = self.password_job_done(job, out) else {
            return;
        };
        match (wait, done) {
            (
                HashWait::Register {
                    ticket,
                    username,
                    charge,
                },
                HashDone::Hashed { hash, .. },
            ) => match hash {
                Ok(hash) => {
                    let account = Account {
                        id: self.accounts.next_id(),
                        identity: crate::token::new_identity(),
                        username: Arc::from(&*username),
                        password_hash: hash.into(),
                        tokens_valid_from: 0,
                    };
                    self.logins
                        .throttle
                        .registered(&username, charge.addr(), now);
                    self.write_account(ticket, account, now);
                }
                Err(e) => {
                    log::error!("hashing a password failed: {e}");
                    self.accounts.release(&username);
                    self.logins.throttle.register_failed(charge);
                    let failure = Failure::new(ErrorCode::Internal, "could not hash the password");
                    out.replies.push((ticket, Reply::Error(failure)));
                }
            },
            (
                HashWait::Login {
                    ticket,
                    account,
                    charge,
                },
                HashDone::Verified { ok, rehashed, .. },
            ) => {
                let reply = self.finish_login(ticket, account, charge, ok, now, out);
                if let (Reply::LoggedIn { user, .. }, Some(hash)) = (&reply, rehashed) {
                    // Stored with the next batch; nobody waits for it (the
                    // old hash still verifies if the write is lost). The
                    // account is cached (the LOGIN pinned it); a read of it
                    // answered before the write commits may bring the old
                    // hash back, which still verifies and is upgraded again.
                    let hash: Arc<str> = hash.into();
                    self.accounts.set_password_hash(user.id, hash.clone());
                    self.writes.push(WriteOp::SetPasswordHash {
                        id: user.id,
                        password_hash: hash,
                    });
                }
                out.replies.push((ticket, reply));
            }
            (
                HashWait::Admin {
                    ticket,
                    username,
                    user,
                },
                HashDone::Hashed { hash, .. },
            ) => match hash {
                Ok(hash) => self.admin_hashed(ticket, &username, user, hash, now),
                Err(e) => {
                    log::error!("hashing a password failed: {e}");
                    if user.is_none() {
                        self.accounts.release(&username);
                    }
                    let failure = Failure::new(ErrorCode::Internal, "could not hash the password");
                    out.replies.push((ticket, Reply::Error(failure)));
                }
            },
            _ => unreachable!("a job's result matches its kind"),
        }
    }

    /// The store finished a batch.
    pub fn on_committed(&mut self, done: Committed, now: Millis, out: &mut Outbox) {
        match &done.result {
            Ok(()) => {}
            // The store says so once, not once per batch.
            Err(StoreError::DiskFull | StoreError::Unavailable(_)) => {
                log::debug!("batch {}: {:?}", done.seq, done.result)
            }
            Err(cause) => log::error!("storing batch {} failed: {cause}", done.seq),
        }
        self.expired(&done, now, out);
        let mut removed = done.removed.iter();
        let mut marks = done.marks.iter();
        let mut final_ids = super::assigned::FinalIds::new(&done.assigned);
        let renumber = !final_ids.is_empty();
        while let Some(then) = self.writes.next_done(done.seq) {
            let then = match renumber {
                false => then,
                true => match self.with_final_ids(then, &mut final_ids, out) {
                    Some(then) => then,
                    None => continue,
                },
            };
            let result = match then {
                AfterCommit::Acked { .. } => &done.acks,
                _ => &done.result,
            };
            // The store reports each ACK it wrote, in order.
            let removed = match then {
                AfterCommit::Acked { .. } | AfterCommit::Admin { deleted: true, .. }
                    if done.acks.is_ok() =>
                {
                    removed.next().cloned()
                }
                _ => None,
            };
            if let AfterCommit::Read { ticket, note } = then {
                match result {
                    Ok(()) => self.read_stored(ticket, *note, marks.next().copied(), out),
                    Err(_) => out.replies.push((ticket, unavailable(result))),
                }
                continue;
            }
            self.finish(then, result, &done.duplicates, removed, now, out);
        }
    }

    fn finish(
        &mut self,
        then: AfterCommit,
        result: &Result<(), StoreError>,
        duplicates: &[Duplicate],
        removed: Option<Removed>,
        now: Millis,
        out: &mut Outbox,
    ) {
        let ok = result.is_ok();
        match then {
            AfterCommit::Registered { ticket, account } => {
                if ok {
                    let by = match ticket.kind {
                        crate::request::CommandKind::Admin => " by gotalk admin",
                        _ => "",
                    };
                    log::info!("registered user {} ({}){by}", account.id, account.username);
                    out.replies.push((ticket, Reply::User(account.user_ref())));
                    self.accounts.insert(account);
                } else {
                    self.accounts.release(&account.username);
                    out.replies.push((ticket, unavailable(result)));
                }
            }
            AfterCommit::Sent { ticket, message } => {
                let client_id = message.client_id();
                let duplicate = duplicates.iter().find(|d| d.message_id == message.id);
                if let (true, Some(first), Some(cid)) = (ok, duplicate, &client_id) {
                    // The database knew this client_id: nothing was stored.
                    let first = FirstSend {
                        id: first.first_id,
                        ts: first.first_ts,
                        committed: true,
                    };
                    self.client_ids.insert(message.from_id, cid, first);
                    let cost = super::mailbox::cost(&message);
                    self.mailboxes.release(message.to_id, message.from_id, cost);
                    // An id is for a stored message: give it back if no
                    // later SEND took one meanwhile (a retry alone, as
                    // clients retry; one that shared a batch with later
                    // SENDs leaves a gap). On a shared store ids are the
                    // store's to give.
                    if !self.settings.cluster && message.id == self.last_message_id {
                        self.last_message_id -= 1;
                    }
                    let reply = Reply::Sent {
                        id: first.id,
                        ts: first.ts,
                    };
                    out.replies.push((ticket, reply));
                } else if ok {
                    if let Some(cid) = &client_id {
                        self.client_ids
                            .mark_committed(message.from_id, cid, message.id);
                    }
                    let reply = Reply::Sent {
                        id: message.id,
                        ts: message.ts,
                    };
                    self.tell_sent(&message, Some(ticket.conn), out);
                    self.deliver(message, now, out);
                    out.replies.push((ticket, reply));
                } else {
                    if let Some(cid) = &client_id {
                        self.client_ids.remove(message.from_id, cid);
                    }
                    let cost = super::mailbox::cost(&message);
                    self.mailboxes.release(message.to_id, message.from_id, cost);
                    out.replies.push((ticket, unavailable(result)));
                }
            }
            AfterCommit::Duplicate {
                ticket,
                first,
                sender,
                client_id,
            } => {
                let first = self
                    .client_ids
                    .get(sender, &client_id)
                    .filter(|f| f.committed)
                    .unwrap_or(first);
                let reply = if ok {
                    Reply::Sent {
                        id: first.id,
                        ts: first.ts,
                    }
                } else {
                    unavailable(result)
                };
                out.replies.push((ticket, reply));
            }
            AfterCommit::Acked {
                ticket,
                user,
                upto,
                then_sync,
            } => {
                if !ok {
                    self.mailboxes.ack_failed(user);
                    out.replies.push((ticket, unavailable(result)));
                    return;
                }
                let removed = removed.filter(|r| (r.user, r.upto) == (user, upto));
                let removed = removed.as_ref().map(|r| super::mailbox::Taken {
                    count: r.count,
                    bytes: r.bytes,
                    senders: &r.senders,
                });
                // Shared store: the floor only up to ids known to exist (a
                // message committed after an ACK above every id gets an id
                // below that ACK's, and must not be hidden by the floor).
                let floor = self.cluster.known_floor(upto, self.last_message_id);
                self.counters.messages_acknowledged +=
                    self.mailboxes.ack(user, floor, removed) as u64;
                self.fill(user, out);
                match then_sync {
                    None => out.replies.push((ticket, Reply::Acked)),
                    Some(args) => {
                        if let Some(reply) = self.read_or_wait(ticket, user, *args, now, out) {
                            out.replies.push((ticket, reply));
                        }
                    }
                }
            }
            AfterCommit::Read { ticket, .. } => out.replies.push((ticket, unavailable(result))),
            AfterCommit::LoggedOut {
                ticket,
                user,
                revoke,
                capped,
            } => {
                if !ok {
                    out.replies.push((ticket, unavailable(result)));
                    return;
                }
                self.logged_out(ticket, user, revoke, out);
                let all = matches!(revoke, Revoke::All { .. });
                out.replies.push((ticket, Reply::LoggedOut { all, capped }));
            }
            AfterCommit::Admin {
                ticket,
                user,
                revoke,
                deleted,
                what,
            } => {
                let reply = self.admin_committed(user, revoke, deleted, what, result, removed, out);
                out.replies.push((ticket, reply));
            }
        }
    }

    /// A LOGOUT is stored: the token (or all the account's) no longer
    /// opens, and the account's connections bound by it are unbound. They
    /// are found among the account's bound connections (at most
    /// `--conns-per-user`), not by a scan. The connection that asked gets
    /// its reply; the others an event.
    fn logged_out(&mut self, ticket: Ticket, user: UserId, revoke: Revoke, out: &mut Outbox) {
        self.take_back(user, revoke, Some(ticket.conn), out);
        log::info!(
            "logout: user {user} revoked {}",
            match revoke {
                Revoke::One { .. } => "a token",
                Revoke::All { .. } => "all their tokens",
            }
        );
    }

    /// A new account (REGISTER, or `gotalk admin user add`): its row goes
    /// with the next batch, and `ticket` is answered once that commits.
    pub(super) fn write_account(&mut self, ticket: Ticket, account: Account, now: Millis) {
        self.writes.push(WriteOp::CreateUser {
            id: account.id,
            identity: account.identity,
            username: account.username.clone(),
            password_hash: account.password_hash.clone(),
            created: now,
        });
        self.writes
            .after_commit(AfterCommit::Registered { ticket, account });
    }

    /// The token (or all the account's) no longer opens, and the account's
    /// bound connections it opened are unbound, each told by an event but
    /// `asking` (the connection whose LOGOUT it is, answered instead). A
    /// LOGOUT through another node comes here too.
    pub(super) fn take_back(
        &mut self,
        user: UserId,
        revoke: Revoke,
        asking: Option<ConnId>,
        out: &mut Outbox,
    ) {
        match revoke {
            Revoke::One { token, expires } => {
                self.sessions.revocations.revoke(token, expires, user)
            }
            Revoke::All { from } => {
                // The moment covers every token revoked one by one.
                self.sessions.revocations.forget_user(user);
                // The account (cached, or read later from the store) says
                // so from now on; this run's tokens are checked against the
                // moment here too until they have all expired.
                let keep_until = from.saturating_add(self.settings.token_ttl_ms);
                self.sessions
                    .revocations
                    .void_before(user, from, keep_until);
                self.accounts.void_tokens_before(user, from);
            }
        }
        // Long-polls started by a revoked token end now, `unauthorized`.
        self.refuse_polls(user, PollsOf::of(revoke), out);
        for conn in self.sessions.bound_by(user, revoke) {
            let event = (Some(conn) != asking).then_some(SessionEvent::Revoked);
            self.unbind(conn, event, out);
        }
    }

    /// A stored message reaches its recipient: pushed to every bound
    /// connection, kept in the mailbox (where its SEND reserved its
    /// room) until acknowledged, and handed to
    /// any long-poll that waits for it.
    fn deliver(&mut self, message: Arc<Message>, now: Millis, out: &mut Outbox) {
        let to = message.to_id;
        let mut pushed = false;
        self.counters.messages_stored += 1;
        if let Some(conns) = self.sessions.subscribers(to) {
            for &conn in conns {
                out.pushes.push((conn, message.clone()));
                pushed = true;
            }
            self.counters.messages_pushed += conns.len() as u64;
        }
        let waiting = self.waiters.count_of(to) > 0;
        self.cluster.delivered(&message);
        if let Some(ram) = self.history.ram() {
            ram.append(&message);
        }
        self.mailboxes.deliver_reserved(message, pushed || waiting);
        if waiting {
            for waiter in self.waiters.take_user(to) {
                // From the head, or from a page of the store; a waiter
                // whose token no longer opens gets `unauthorized` there.
                let poll = waiter.poll;
                if let Some(reply) = self.read_or_wait(waiter.ticket, to, poll, now, out) {
                    out.replies.push((waiter.ticket, reply));
                }
            }
        }
    }
}
