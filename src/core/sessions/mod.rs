//! The sessions owner: which connections can be bound to a user (line
//! connections), by which token and until when, who gets each user's
//! pushes, which clients stopped sending, and the tokens LOGOUT revoked.
//!
//! Invariants kept here: a bound connection is in its user's subscriber
//! list exactly once and has an entry in the expiry index that matches
//! its binding (entries of bindings since changed wait there until they
//! come up or are compacted away, and are skipped); a user with
//! no bound connection has no subscriber list. What a change means for
//! the other owners (pin the account, keep the mailbox's head, tell the
//! cluster) is returned as a [`Presence`] for the core to carry out.

mod bound;
mod revocations;

use super::conn_table::ConnTable;
use crate::error::{ErrorCode, Failure};
use crate::idhash::IdMap;
use crate::token::TokenId;
use crate::{ConnId, Millis, UserId};
use bound::Bound;
use revocations::Revocations;
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::BinaryHeap;

/// Why a bound line connection was unbound (a push event; the connection
/// stays open and may AUTH or LOGIN again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// Its token was revoked (LOGOUT elsewhere).
    Revoked,
    /// Its token expired.
    Expired,
}

impl SessionEvent {
    /// The event's name on the wire: `{"event":"<name>"}`.
    pub fn name(self) -> &'static str {
        match self {
            SessionEvent::Revoked => "revoked",
            SessionEvent::Expired => "expired",
        }
    }
}

/// What a bound line connection is bound by: the user, and the token
/// (LOGIN's, or the one given to AUTH), so revoking or expiring that token
/// reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub user: UserId,
    pub token: TokenId,
    pub expires: Millis,
}

/// What a LOGOUT takes back.
#[derive(Clone, Copy, Debug)]
pub(super) enum Revoke {
    /// One token, remembered until it expires.
    One { token: TokenId, expires: Millis },
    /// Every token of the account issued before `from`.
    All { from: Millis },
}

/// What a change of bindings means beyond the sessions: a user whose first
/// connection here was bound (`joined`), one whose last was unbound (`left`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Presence {
    pub joined: Option<UserId>,
    pub left: Option<UserId>,
}

#[derive(Default)]
pub(super) struct Sessions {
    /// Connections that can be bound to a user (line protocol), and by
    /// which token.
    conns: ConnTable<Option<Binding>>,
    /// Bound connections by their token's expiry, to tell them when it
    /// expires (one entry per bound connection).
    /// A heap, 16 bytes an entry (a B-tree's half-full nodes cost twice
    /// that per online user): an entry is not taken out when its binding
    /// changes, but skipped when it comes up, and such entries are dropped
    /// once they outnumber the bound connections.
    expiry: BinaryHeap<Reverse<(Millis, ConnId)>>,
    /// Bound connections (each has a matching entry in `expiry`).
    bound: usize,
    /// Bound connections by user: who gets pushes.
    subscribers: IdMap<UserId, Bound>,
    /// Connections whose client stopped sending: their SYNCs do not wait.
    input_closed: IdMap<ConnId, ()>,
    /// Tokens revoked by LOGOUT.
    pub revocations: Revocations,
}

impl Sessions {
    /// A line connection opened: it may be bound.
    pub fn open(&mut self, conn: ConnId) {
        self.conns.insert(conn, None);
    }

    /// A connection closed: forgotten, and unbound if it was bound.
    pub fn close(&mut self, conn: ConnId) -> Presence {
        self.input_closed.remove(&conn);
        match self.conns.remove(conn) {
            Some(Some(binding)) => self.unsubscribe(conn, binding),
            _ => Presence::default(),
        }
    }

    /// The client of `conn` stopped sending.
    pub fn input_closed(&mut self, conn: ConnId) {
        self.input_closed.insert(conn, ());
    }

    /// Whether the client of `conn` stopped sending.
    pub fn is_input_closed(&self, conn: ConnId) -> bool {
        self.input_closed.contains_key(&conn)
    }

    /// What `conn` is bound by, if anything.
    pub fn binding(&self, conn: ConnId) -> Option<Binding> {
        self.conns.get(conn).copied().flatten()
    }

    /// The user `conn` is bound to, if any.
    pub fn user(&self, conn: ConnId) -> Option<UserId> {
        self.binding(conn).map(|b| b.user)
    }

    /// The connections bound to `user`, if any.
    #[inline]
    pub fn subscribers(&self, user: UserId) -> Option<&[ConnId]> {
        self.subscribers.get(&user).map(|conns| conns.as_slice())
    }

    /// Whether `user` has a bound connection here.
    #[inline]
    pub fn is_online(&self, user: UserId) -> bool {
        self.subscribers.contains_key(&user)
    }

    /// The users with a bound connection here.
    pub fn online(&self) -> Vec<UserId> {
        self.subscribers.keys().copied().collect()
    }

    /// Line connections, and users with a bound one.
    pub fn len(&self) -> (usize, usize) {
        (self.conns.len(), self.subscribers.len())
    }

    /// Whether `conn` may be bound to `user`: not past `limit`
    /// (`--conns-per-user`). Connections that cannot be bound (HTTP's),
    /// and one bound to that user already, always may.
    pub fn check_bind(&self, conn: ConnId, user: UserId, limit: usize) -> Result<(), Failure> {
        match self.conns.get(conn) {
            Some(bound) if bound.map(|b| b.user) != Some(user) => {}
            _ => return Ok(()),
        }
        if self.subscribers.get(&user).map_or(0, |c| c.len()) >= limit {
            return Err(Failure::new(
                ErrorCode::RateLimited,
                format!(
                    "{limit} connections are logged in as this user, the limit (--conns-per-user); close one first"
                ),
            ));
        }
        Ok(())
    }

    /// Binds `conn` by `binding`; `None` when `conn` cannot be bound (an
    /// HTTP request is not bound to its connection).
    pub fn bind(&mut self, conn: ConnId, binding: Binding) -> Option<Presence> {
        let bound = self.conns.get_mut(conn)?;
        let previous = bound.replace(binding);
        let presence = match previous {
            Some(old) if old.user == binding.user => {
                if old.expires == binding.expires {
                    // Its entry is there already.
                    return Some(Presence::default());
                }
                self.bound -= 1; // counted again below
                Presence::default()
            }
            Some(old) => {
                let left = self.unsubscribe(conn, old).left;
                let joined = self.subscribe(conn, binding.user);
                Presence { joined, left }
            }
            None => Presence {
                joined: self.subscribe(conn, binding.user),
                left: None,
            },
        };
        self.bound += 1;
        self.expiry.push(Reverse((binding.expires, conn)));
        if self.expiry.len() > 2 * self.bound + 32 {
            self.compact_expiry();
        }
        Some(presence)
    }

    /// Unbinds `conn` (it stays open); `None` if it was not bound.
    pub fn unbind(&mut self, conn: ConnId) -> Option<Presence> {
        let binding = self.conns.get_mut(conn).and_then(Option::take)?;
        Some(self.unsubscribe(conn, binding))
    }

    /// A bound connection whose token expired by `now`, if any (its entry
    /// in the expiry index is gone; the caller unbinds it).
    pub fn next_expired(&mut self, now: Millis) -> Option<ConnId> {
        while let Some(&Reverse((expires, conn))) = self.expiry.peek() {
            if expires > now {
                return None;
            }
            self.expiry.pop();
            if self.binding(conn).is_some_and(|b| b.expires == expires) {
                return Some(conn);
            }
        }
        None
    }

    /// When the next bound connection's token expires.
    pub fn next_deadline(&self) -> Millis {
        self.expiry
            .peek()
            .map_or(Millis::MAX, |&Reverse((at, _))| at)
    }

    /// `user`'s bound connections that `revoke` takes back.
    pub fn bound_by(&self, user: UserId, revoke: Revoke) -> Vec<ConnId> {
        let Some(conns) = self.subscribers.get(&user) else {
            return Vec::new();
        };
        conns
            .as_slice()
            .iter()
            .copied()
            .filter(|conn| match revoke {
                Revoke::One { token, .. } => self.binding(*conn).is_some_and(|b| b.token == token),
                Revoke::All { .. } => true,
            })
            .collect()
    }

    /// Returns `Some(user)` if `conn` is the user's first bound connection.
    fn subscribe(&mut self, conn: ConnId, user: UserId) -> Option<UserId> {
        match self.subscribers.entry(user) {
            Entry::Vacant(entry) => {
                entry.insert(Bound::One(conn));
                Some(user)
            }
            Entry::Occupied(mut entry) => {
                entry.get_mut().push(conn);
                None
            }
        }
    }

    /// Keeps only the expiry entries that match a binding, once each.
    fn compact_expiry(&mut self) {
        let mut entries = std::mem::take(&mut self.expiry).into_vec();
        entries.retain(|Reverse((at, conn))| {
            self.conns
                .get(*conn)
                .copied()
                .flatten()
                .is_some_and(|b| b.expires == *at)
        });
        entries.sort_unstable();
        entries.dedup();
        self.expiry = BinaryHeap::from(entries);
    }

    fn unsubscribe(&mut self, conn: ConnId, binding: Binding) -> Presence {
        // Its expiry entry no longer matches (and is skipped).
        self.bound -= 1;
        if self.bound == 0 {
            self.expiry.clear();
        }
        let user = binding.user;
        let mut presence = Presence::default();
        if let Some(conns) = self.subscribers.get_mut(&user) {
            if conns.remove(conn) {
                self.subscribers.remove(&user);
                presence.left = Some(user);
            }
        }
        presence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(user: UserId, token: TokenId, expires: Millis) -> Binding {
        Binding {
            user,
            token,
            expires,
        }
    }

    /// What an online user's entries here cost (printed with
    /// `--nocapture` for the per-user accounting): a connection's binding,
    /// and the user's bound connections, inline for one.
    #[test]
    fn an_online_users_entries_stay_small() {
        use std::mem::size_of;
        let conn_entry = size_of::<Option<Option<Binding>>>();
        let user_entry = size_of::<(UserId, Bound)>();
        let expiry_entry = size_of::<(Millis, ConnId)>();
        println!("sessions.conns slot           {conn_entry:4} B (dense, by connection id)");
        println!("sessions.subscribers entry    {user_entry:4} B (+1 control byte)");
        println!("sessions.expiry entry         {expiry_entry:4} B (in a heap)");
        assert!(conn_entry <= 32 && user_entry <= 24 && expiry_entry <= 16);
        let mut s = Sessions::default();
        s.open(1);
        s.bind(1, binding(7, 1, 100));
        assert!(
            !s.subscribers.get(&7).unwrap().spilled(),
            "one connection is inline"
        );
    }

    #[test]
    fn the_first_and_last_connection_of_a_user_are_reported() {
        let mut s = Sessions::default();
        s.open(1);
        s.open(2);
        let first = s.bind(1, binding(7, 1, 100)).expect("a line connection");
        assert_eq!(first.joined, Some(7));
        assert_eq!(s.bind(2, binding(7, 2, 100)).unwrap().joined, None);
        assert_eq!(s.subscribers(7).unwrap(), &[1, 2]);
        assert_eq!(s.unbind(1).unwrap().left, None);
        assert_eq!(s.close(2).left, Some(7));
        assert!(!s.is_online(7));
        assert_eq!(s.next_deadline(), Millis::MAX, "no expiry entry is left");
    }

    #[test]
    fn rebinding_to_another_user_moves_the_connection() {
        let mut s = Sessions::default();
        s.open(1);
        s.bind(1, binding(7, 1, 100));
        let moved = s.bind(1, binding(8, 2, 200)).unwrap();
        assert_eq!((moved.left, moved.joined), (Some(7), Some(8)));
        assert_eq!(s.user(1), Some(8));
        assert_eq!(s.next_expired(150), None, "the old token's entry is gone");
        assert_eq!(s.next_expired(200), Some(1));
    }

    #[test]
    fn an_http_request_is_not_bound_and_passes_the_limit() {
        let mut s = Sessions::default();
        assert!(s.bind(9, binding(7, 1, 100)).is_none());
        s.open(1);
        s.open(2);
        s.bind(1, binding(7, 1, 100));
        assert!(s.check_bind(9, 7, 1).is_ok(), "not a line connection");
        assert!(s.check_bind(1, 7, 1).is_ok(), "bound to that user already");
        let refused = s.check_bind(2, 7, 1).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
    }

    #[test]
    fn a_revoked_token_reaches_only_the_connections_it_bound() {
        let mut s = Sessions::default();
        for conn in 1..=3 {
            s.open(conn);
        }
        s.bind(1, binding(7, 10, 100));
        s.bind(2, binding(7, 11, 100));
        s.bind(3, binding(7, 10, 100));
        let one = Revoke::One {
            token: 10,
            expires: 100,
        };
        assert_eq!(s.bound_by(7, one), [1, 3]);
        assert_eq!(s.bound_by(7, Revoke::All { from: 5 }), [1, 2, 3]);
        assert!(s.bound_by(8, one).is_empty());
    }

    #[test]
    fn a_rebound_connection_expires_by_its_new_token_only() {
        let mut s = Sessions::default();
        s.open(1);
        s.open(2);
        s.bind(1, binding(7, 1, 100));
        s.bind(2, binding(8, 2, 500));
        s.bind(1, binding(7, 3, 300)); // AUTH again with a later token
        assert_eq!(
            s.next_expired(200),
            None,
            "the old token's entry is skipped"
        );
        assert_eq!(s.next_expired(300), Some(1));
        s.unbind(1);
        assert_eq!(s.next_expired(400), None);
        assert_eq!(s.next_expired(500), Some(2));
    }

    #[test]
    fn rebinding_over_and_over_keeps_the_expiry_index_small() {
        let mut s = Sessions::default();
        s.open(1);
        s.open(2);
        s.bind(2, binding(8, 2, 10_000));
        for i in 0..1_000 {
            s.bind(1, binding(7, i, 1_000 + i % 2)); // two tokens, in turn
        }
        assert!(
            s.expiry.len() <= 2 * 2 + 32 + 1,
            "{} entries",
            s.expiry.len()
        );
        assert_eq!(
            s.next_expired(1_000),
            None,
            "bound by the token ending at 1001"
        );
        assert_eq!(s.next_expired(1_001), Some(1));
        s.close(1);
        assert_eq!(s.next_expired(9_999), None);
        s.close(2);
        assert_eq!(
            s.next_deadline(),
            Millis::MAX,
            "nothing bound, no entry left"
        );
    }
}
