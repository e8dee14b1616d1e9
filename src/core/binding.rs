//! Binding connections to users, as the dispatcher carries it out: the
//! [`Sessions`](super::sessions::Sessions) owner keeps who is bound, and
//! each change it reports ([`Presence`]) reaches the other owners here
//! (the account stays cached and the mailbox's head in RAM while a user is
//! logged in; the cluster records the user present on this node).

use super::sessions::{Binding, Presence, SessionEvent};
use super::{Core, Outbox};
use crate::request::Reply;
use crate::{ConnId, Millis, UserId};

impl Core {
    /// A line-protocol connection opened: LOGIN/AUTH may bind it.
    pub fn open_session(&mut self, conn: ConnId) {
        self.sessions.open(conn);
    }

    /// A connection closed (line or HTTP; the server calls this for every
    /// one): it gets no more pushes, its long-poll is dropped, and its
    /// password jobs are dropped (nobody reads their replies).
    pub fn close_session(&mut self, conn: ConnId) {
        let presence = self.sessions.close(conn);
        self.presence(presence);
        self.waiters.remove_conn(conn);
        self.drop_password_jobs(conn);
    }

    /// The client closed its sending side but the connection still owes it
    /// replies: work that only it waits for is settled now (its long-poll
    /// answered, password jobs not yet started cancelled), so the
    /// connection can finish and close.
    pub fn peer_closed(&mut self, conn: ConnId, now: Millis, out: &mut Outbox) {
        self.stop_waiting(conn, now, out);
        // Password jobs not yet started.
        self.cancel_waiting_password_jobs(conn, out);
    }

    /// Long-polls of `conn` get their normal empty reply: the one waiting
    /// now at once, later ones (still buffered) without waiting.
    fn stop_waiting(&mut self, conn: ConnId, _now: Millis, out: &mut Outbox) {
        self.sessions.input_closed(conn);
        if let Some(waiter) = self.waiters.remove_conn(conn) {
            out.replies
                .push((waiter.ticket, Reply::Messages(Vec::new())));
        }
    }

    /// The user a connection is bound to, if any.
    pub fn session_user(&self, conn: ConnId) -> Option<UserId> {
        self.sessions.user(conn)
    }

    pub(super) fn bind(&mut self, conn: ConnId, binding: Binding) {
        let Some(presence) = self.sessions.bind(conn, binding) else {
            return; // HTTP requests are not bound to a connection
        };
        self.presence(presence);
        // A logged-in user's account stays cached, and their mailbox in
        // RAM, so what is sent to them is pushed without reading the store.
        self.accounts.pin(binding.user, true);
        self.mailboxes.set_active(binding.user, true);
    }

    /// What a change of bindings means for the other owners.
    fn presence(&mut self, presence: Presence) {
        if let Some(user) = presence.left {
            self.cluster.unbound(user);
            self.accounts.pin(user, false);
            self.mailboxes.set_active(user, false);
        }
        if let Some(user) = presence.joined {
            self.cluster.bound(user);
        }
    }

    /// After a bind: the user's mailbox figures are read if not known
    /// (SENDs to them wait for it), and their head filled.
    pub(super) fn warm_up(&mut self, user: UserId, out: &mut Outbox) {
        if self.mailboxes.is_known(user) {
            self.fill(user, out);
        } else {
            self.prefetch_mailbox(user, out);
        }
    }

    /// Unbinds a connection (its token was revoked or expired): it gets
    /// `event` if one is given, no more pushes, and its long-poll ends
    /// with the normal empty reply.
    pub(super) fn unbind(&mut self, conn: ConnId, event: Option<SessionEvent>, out: &mut Outbox) {
        let Some(presence) = self.sessions.unbind(conn) else {
            return;
        };
        self.presence(presence);
        if let Some(waiter) = self.waiters.remove_conn(conn) {
            out.replies
                .push((waiter.ticket, Reply::Messages(Vec::new())));
        }
        if let Some(event) = event {
            out.events.push((conn, event));
        }
    }

    /// Tells bound connections whose token expired, and unbinds them.
    pub(super) fn expire_bindings(&mut self, now: Millis, out: &mut Outbox) {
        while let Some(conn) = self.sessions.next_expired(now) {
            self.unbind(conn, Some(SessionEvent::Expired), out);
        }
    }
}
