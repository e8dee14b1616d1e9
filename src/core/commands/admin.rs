//! `gotalk admin`'s requests ([`AdminRequest`]), run like a client's:
//! accounts found through the cache (or read), password jobs on the
//! password workers, changes stored in the turn's batch and answered once
//! committed. What an account's sessions go through is LOGOUT all's path
//! (`take_back`), so bound connections get `revoked`, long-polls end and,
//! on PostgreSQL, the other nodes follow through its NOTIFY. Each action
//! is logged at info once it is stored, without any password.
//!
//! A disabled account's stored hash is locked (`store::admin::LOCK`, as
//! `passwd -l` does): LOGIN checks the password against the dummy hash and
//! fails with the wrong-password reply, its tokens were voided, and
//! messages sent to it are kept for when it is enabled again.

use super::no_such_user;
use crate::admin::{AdminReply, AdminRequest};
use crate::core::accounts::{check_username, Account};
use crate::core::reads::{Stop, Waiting};
use crate::core::{AfterCommit, Core, Handled, HashWait, Outbox, Revoke, Ticket};
use crate::hasher::HashJob;
use crate::request::Reply;
use crate::store::admin::{
    self as lock, AccountExport, AccountRecord, AccountRow, AdminAnswer, AdminQuery,
    ExportedMessage,
};
use crate::store::{ReadOp, WriteOp};
use crate::{Millis, UserId};

/// Every message id: a deleted account's whole mailbox is acknowledged.
const EVERY_ID: u64 = i64::MAX as u64;

impl Core {
    pub(in crate::core) fn admin(
        &mut self,
        ticket: Ticket,
        request: &AdminRequest,
        now: Millis,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        match request {
            AdminRequest::Add { name, password } => {
                Self::check_new_password(password)?;
                check_username(name)?;
                crate::username::check_new_shape(name)?;
                // The store is asked whether the name is free, as for
                // REGISTER; a name found is then cached, and reserving it
                // says `conflict` in REGISTER's words.
                if !self.accounts.is_reserved(name) {
                    self.account_by_name(name)?;
                }
                self.accounts.reserve(name)?;
                let wait = HashWait::Admin {
                    ticket,
                    username: name.as_str().into(),
                    user: None,
                };
                self.hash_for_admin(wait, password, out);
                Ok(Handled::Later { barrier: true })
            }
            AdminRequest::List { prefix, limit } => {
                let query = AdminQuery::List {
                    prefix: prefix.clone(),
                    limit: *limit,
                };
                if !self.settings.on_demand {
                    let rows = self.accounts.rows(prefix, *limit);
                    return Ok(found(AdminAnswer::List(rows), 0));
                }
                self.ask_store(ticket, query, 0, out)
            }
            AdminRequest::Show { name } | AdminRequest::Export { name } => {
                let account = self.admin_account(ticket, name)?;
                let online = self.sessions.subscribers(account.id).map_or(0, <[_]>::len);
                if !self.settings.on_demand {
                    let answer = match request {
                        AdminRequest::Show { .. } => self.record_in_ram(&account),
                        _ => self.export_in_ram(&account),
                    };
                    return Ok(found(answer, online));
                }
                let query = match request {
                    AdminRequest::Show { .. } => AdminQuery::Show(account.id),
                    _ => AdminQuery::Export(account.id),
                };
                self.ask_store(ticket, query, online, out)
            }
            AdminRequest::Disable { name } | AdminRequest::Enable { name } => {
                let account = self.admin_account(ticket, name)?;
                let disable = matches!(request, AdminRequest::Disable { .. });
                let hash: std::sync::Arc<str> =
                    lock::with_lock(&account.password_hash, disable).into();
                self.accounts.set_password_hash(account.id, hash.clone());
                self.writes.push(WriteOp::SetPasswordHash {
                    id: account.id,
                    password_hash: hash,
                });
                // Enabling voids too, though a disabled account has no
                // token left that opens: on PostgreSQL that is what tells
                // the other nodes to read the account again.
                let revoke = Some(self.void_all(account.id, now));
                let what = format!(
                    "{} {} (id {})",
                    if disable { "disabled" } else { "enabled" },
                    account.username,
                    account.id
                );
                self.after_admin(ticket, account.id, revoke, false, what);
                Ok(Handled::Later { barrier: true })
            }
            AdminRequest::ResetPassword { name, password } => {
                Self::check_new_password(password)?;
                let account = self.admin_account(ticket, name)?;
                let wait = HashWait::Admin {
                    ticket,
                    username: account.username.as_ref().into(),
                    user: Some(account.id),
                };
                self.hash_for_admin(wait, password, out);
                Ok(Handled::Later { barrier: true })
            }
            AdminRequest::Logout { name } => {
                let account = self.admin_account(ticket, name)?;
                let revoke = Some(self.void_all(account.id, now));
                let what = format!(
                    "logged out every session of {} (id {})",
                    account.username, account.id
                );
                self.after_admin(ticket, account.id, revoke, false, what);
                Ok(Handled::Later { barrier: true })
            }
            AdminRequest::Delete { name } => {
                let account = self.admin_account(ticket, name)?;
                let user = account.id;
                // Its mailbox leaves custody as by an ACK of every id, so
                // every figure (totals, each sender's) follows.
                if self.mailboxes.would_ack(user, EVERY_ID).is_none() {
                    return Err(self.need_mailbox(user));
                }
                self.mailboxes.begin_ack(user);
                self.writes.push(WriteOp::Ack {
                    user,
                    upto: EVERY_ID,
                });
                let revoke = Some(self.void_all(user, now));
                self.writes.push(WriteOp::DeleteUser { id: user });
                // With --memory its conversations live here (a durable
                // store deletes them in the same transaction as the row).
                self.history.forget_user(user);
                let what = format!("deleted {} (id {user})", account.username);
                self.after_admin(ticket, user, revoke, true, what);
                Ok(Handled::Later { barrier: true })
            }
        }
    }

    /// The account an admin request names, or `not_found`. With several
    /// nodes it is read from the store once per request, whatever the
    /// cache holds: another node may have changed it a moment ago (its
    /// wake-up on the way), and a change made on a stale copy would undo
    /// that one.
    fn admin_account(&mut self, ticket: Ticket, name: &str) -> Result<Account, Stop> {
        if self.settings.cluster && self.admin_fresh.insert(ticket.conn) {
            if let Some(id) = self.accounts.find(name).map(|a| a.id) {
                self.accounts.forget(id, false);
            }
        }
        let found = self.account_by_name(name)?.cloned();
        self.admin_fresh.remove(&ticket.conn);
        found.ok_or_else(|| no_such_user(name).into())
    }

    /// Every token of `user` issued until now is void (as LOGOUT all).
    fn void_all(&mut self, user: UserId, now: Millis) -> Revoke {
        let from = now + 1;
        self.writes.push(WriteOp::VoidTokens { user, from });
        Revoke::All { from }
    }

    fn after_admin(
        &mut self,
        ticket: Ticket,
        user: UserId,
        revoke: Option<Revoke>,
        deleted: bool,
        what: String,
    ) {
        self.writes.after_commit(AfterCommit::Admin {
            ticket,
            user,
            revoke,
            deleted,
            what,
        });
    }

    fn hash_for_admin(&mut self, wait: HashWait, password: &str, out: &mut Outbox) {
        let job = self.logins.new_job();
        let work = HashJob::Hash {
            job,
            password: password.to_string(),
        };
        self.queue_password_job(wait, job, work, out);
    }

    /// Asks the store; the answer is the reply (see `answers.rs`).
    fn ask_store(
        &mut self,
        ticket: Ticket,
        query: AdminQuery,
        sessions_online: usize,
        out: &mut Outbox,
    ) -> Result<Handled, Stop> {
        let waiting = Waiting::Admin {
            ticket,
            sessions_online,
        };
        self.reads.submit(ReadOp::Admin(query), waiting, out);
        Ok(Handled::Later { barrier: true })
    }

    /// `show` without a store (`--memory`): what RAM holds.
    fn record_in_ram(&self, account: &Account) -> AdminAnswer {
        AdminAnswer::Show(Some(AccountRecord {
            row: row_of(account),
            pending_messages: self.mailboxes.figures_of(account.id).0,
            pending_bytes: self.mailboxes.figures_of(account.id).1,
            history_messages: None,
        }))
    }

    /// `export` without a store (`--memory`): the account and the
    /// messages waiting for it (what it sent sits in other mailboxes,
    /// which RAM does not index by sender).
    fn export_in_ram(&mut self, account: &Account) -> AdminAnswer {
        let held = self
            .mailboxes
            .read(account.id, 0, usize::MAX, usize::MAX)
            .unwrap_or_default();
        let received = held
            .iter()
            .map(|m| ExportedMessage {
                id: m.id,
                from_id: m.from_id,
                to_id: m.to_id,
                ts: m.ts,
                content: m.content(),
                client_id: m.client_id(),
            })
            .collect();
        AdminAnswer::Export(Box::new(AccountExport {
            row: Some(row_of(account)),
            tokens_valid_from: account.tokens_valid_from,
            received,
            ..AccountExport::default()
        }))
    }

    /// A password for `add` or `reset-password` is hashed.
    pub(in crate::core) fn admin_hashed(
        &mut self,
        ticket: Ticket,
        username: &str,
        user: Option<UserId>,
        hash: String,
        now: Millis,
    ) {
        match user {
            None => {
                let account = Account {
                    id: self.accounts.next_id(),
                    identity: crate::token::new_identity(),
                    username: username.into(),
                    password_hash: hash.into(),
                    tokens_valid_from: 0,
                };
                self.write_account(ticket, account, now);
            }
            Some(user) => {
                // A disabled account stays disabled with its new password.
                let disabled = self
                    .accounts
                    .get(user)
                    .is_some_and(|a| lock::locked(&a.password_hash));
                let hash: std::sync::Arc<str> = lock::with_lock(&hash, disabled).into();
                self.accounts.set_password_hash(user, hash.clone());
                self.writes.push(WriteOp::SetPasswordHash {
                    id: user,
                    password_hash: hash,
                });
                let revoke = Some(self.void_all(user, now));
                let what = format!("reset the password of {username} (id {user})");
                self.after_admin(ticket, user, revoke, false, what);
            }
        }
    }
}

fn found(answer: AdminAnswer, sessions_online: usize) -> Handled {
    Handled::Now(Reply::Admin(Box::new(AdminReply::Found {
        answer,
        sessions_online,
    })))
}

/// An account as `list` shows it, from RAM (`--memory` keeps no times).
pub(in crate::core) fn row_of(account: &Account) -> AccountRow {
    AccountRow {
        id: account.id,
        username: account.username.to_string(),
        created: 0,
        last_login: 0,
        disabled: lock::locked(&account.password_hash),
    }
}

impl Core {
    /// An admin change's batch is done: on success, its sessions end as
    /// at LOGOUT all, a deleted account leaves every cache, and the action
    /// is logged; the reply says what was done, or why not.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::core) fn admin_committed(
        &mut self,
        user: UserId,
        revoke: Option<Revoke>,
        deleted: bool,
        what: String,
        result: &Result<(), crate::store::StoreError>,
        removed: Option<crate::store::Removed>,
        out: &mut Outbox,
    ) -> Reply {
        if deleted {
            // The mailbox's ACK (committed on its own on a full disk).
            match &removed {
                Some(r) => {
                    let taken = crate::core::mailbox::Taken {
                        count: r.count,
                        bytes: r.bytes,
                        senders: &r.senders,
                    };
                    let floor = self.cluster.known_floor(EVERY_ID, self.last_message_id);
                    self.mailboxes.ack(user, floor, Some(taken));
                }
                None if result.is_ok() => {
                    // A store that keeps nothing: RAM held them all.
                    let floor = self.cluster.known_floor(EVERY_ID, self.last_message_id);
                    self.mailboxes.ack(user, floor, None);
                }
                None => self.mailboxes.ack_failed(user),
            }
        }
        if result.is_err() {
            log::warn!("admin: could not store this change: {what}");
            return Reply::Error(crate::error::Failure::new(
                crate::error::ErrorCode::Unavailable,
                "the server could not store this; nothing was changed, try again",
            ));
        }
        if let Some(revoke) = revoke {
            self.take_back(user, revoke, None, out);
        }
        if deleted {
            self.accounts.forget(user, true);
        }
        log::info!("admin: {what}");
        Reply::Admin(Box::new(AdminReply::Done { what }))
    }
}
