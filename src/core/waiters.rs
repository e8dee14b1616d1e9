//! Long-polls: SYNC requests with `wait_ms` that found nothing and wait for
//! a message or their deadline, whichever comes first.
//!
//! At most one per connection (a waiting SYNC is a barrier: its connection
//! runs nothing else until it is answered), indexed by connection so one
//! that closes is dropped at once; counted per user for
//! `--waiters-per-user`. Deadlines are a heap. A waiter answered early
//! leaves a stale heap entry, skipped when it comes due; when stale entries
//! outnumber live ones the heap is rebuilt from the live ones, which costs
//! O(1) per removal amortised and keeps the heap's size bounded by the
//! waiters that exist.
//!
//! A long-poll started by a request that carried its own token (HTTP, or a
//! line SYNC with `token`) records that token: revoking it (LOGOUT, LOGOUT
//! all) takes the account's matching waiters out through the per-user list
//! ([`Waiters::take_matching`]), and its expiry is a deadline like the
//! wait's own (see `poll_tokens.rs`).

use super::Ticket;
use crate::idhash::IdMap;
use crate::request::SyncArgs;
use crate::token::OpenedToken;
use crate::{ConnId, Millis, UserId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Stale heap entries tolerated beyond the live ones before a rebuild.
const STALE_SLACK: usize = 1024;

/// A SYNC as asked: its arguments, and the token its request carried
/// (none when it runs as the connection's bound user: unbinding the
/// connection ends its long-poll).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    pub args: SyncArgs,
    pub token: Option<OpenedToken>,
}

/// One waiting SYNC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub ticket: Ticket,
    pub user: UserId,
    pub poll: Poll,
}

/// Waiting SYNCs by connection and by user, with their deadlines in a heap.
#[derive(Default)]
pub struct Waiters {
    /// The waiter of each connection, with the key of its heap entry.
    by_conn: IdMap<ConnId, (u64, Waiter)>,
    /// The connections waiting for each user (a short list: it is capped).
    by_user: IdMap<UserId, Vec<ConnId>>,
    deadlines: BinaryHeap<Reverse<(Millis, u64, ConnId)>>,
    next_key: u64,
}

impl Waiters {
    /// Adds a waiter. A connection has one at most: a waiter it had
    /// already is replaced and returned, to be answered.
    pub fn add(&mut self, waiter: Waiter, deadline: Millis) -> Option<Waiter> {
        let conn = waiter.ticket.conn;
        let replaced = self.remove_conn(conn);
        self.next_key += 1;
        let key = self.next_key;
        self.by_conn.insert(conn, (key, waiter));
        self.by_user.entry(waiter.user).or_default().push(conn);
        self.deadlines.push(Reverse((deadline, key, conn)));
        replaced
    }

    /// Waiters in all.
    pub fn len(&self) -> usize {
        self.by_conn.len()
    }

    /// Waiters of `user`.
    pub fn count_of(&self, user: UserId) -> usize {
        self.by_user.get(&user).map_or(0, Vec::len)
    }

    /// Removes and returns every waiter of `user` (a message arrived).
    pub fn take_user(&mut self, user: UserId) -> Vec<Waiter> {
        let Some(conns) = self.by_user.remove(&user) else {
            return Vec::new();
        };
        let taken = conns
            .into_iter()
            .filter_map(|conn| self.by_conn.remove(&conn).map(|(_, w)| w))
            .collect();
        self.compact();
        taken
    }

    /// Removes and returns the waiters of `user` that `matches` picks (a
    /// token was revoked). Only `user`'s list is looked at: at most
    /// `--waiters-per-user`.
    pub fn take_matching(
        &mut self,
        user: UserId,
        matches: impl Fn(&Waiter) -> bool,
    ) -> Vec<Waiter> {
        let picked: Vec<ConnId> = self
            .by_user
            .get(&user)
            .into_iter()
            .flatten()
            .copied()
            .filter(|conn| self.by_conn.get(conn).is_some_and(|(_, w)| matches(w)))
            .collect();
        picked
            .into_iter()
            .filter_map(|conn| self.remove_conn(conn))
            .collect()
    }

    /// Removes and returns the waiter of `conn`, if it has one.
    pub fn remove_conn(&mut self, conn: ConnId) -> Option<Waiter> {
        let (_, waiter) = self.by_conn.remove(&conn)?;
        self.unlist(waiter.user, conn);
        self.compact();
        Some(waiter)
    }

    /// Removes and returns the waiters whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Millis) -> Vec<Waiter> {
        let mut due = Vec::new();
        while let Some(&Reverse((deadline, key, conn))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if self.by_conn.get(&conn).is_some_and(|(k, _)| *k == key) {
                let (_, waiter) = self.by_conn.remove(&conn).expect("just seen");
                self.unlist(waiter.user, conn);
                due.push(waiter);
            }
        }
        due
    }

    /// The earliest deadline still pending (possibly of a stale entry).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.peek().map(|Reverse((d, _, _))| *d)
    }

    fn unlist(&mut self, user: UserId, conn: ConnId) {
        if let Some(conns) = self.by_user.get_mut(&user) {
            if let Some(pos) = conns.iter().position(|&c| c == conn) {
                conns.swap_remove(pos);
            }
            if conns.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }

    /// Rebuilds the heap from the live waiters once stale entries dominate.
    fn compact(&mut self) {
        if self.deadlines.len() <= 2 * self.by_conn.len() + STALE_SLACK {
            return;
        }
        let by_conn = &self.by_conn;
        self.deadlines
            .retain(|Reverse((_, key, conn))| by_conn.get(conn).is_some_and(|(k, _)| k == key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(conn: usize, user: UserId) -> Waiter {
        Waiter {
            ticket: Ticket::new(conn, conn as u64),
            user,
            poll: Poll::default(),
        }
    }

    #[test]
    fn waiters_expire_in_deadline_order() {
        let mut w = Waiters::default();
        w.add(waiter(1, 10), 300);
        w.add(waiter(2, 10), 100);
        assert_eq!(w.next_deadline(), Some(100));
        assert_eq!(w.expire(99), vec![]);
        assert_eq!(w.expire(100), vec![waiter(2, 10)]);
        assert_eq!(w.expire(1000), vec![waiter(1, 10)]);
        assert_eq!(w.next_deadline(), None);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn taken_waiters_do_not_expire_later() {
        let mut w = Waiters::default();
        w.add(waiter(1, 10), 100);
        w.add(waiter(2, 11), 100);
        assert_eq!(w.take_user(10), vec![waiter(1, 10)]);
        assert_eq!(w.take_user(10), vec![]);
        assert_eq!(w.expire(100), vec![waiter(2, 11)]);
    }

    #[test]
    fn a_closed_connection_drops_its_waiter() {
        let mut w = Waiters::default();
        w.add(waiter(1, 10), 100);
        w.add(waiter(2, 10), 100);
        assert_eq!(w.count_of(10), 2);
        assert_eq!(w.remove_conn(1), Some(waiter(1, 10)));
        assert_eq!(w.remove_conn(1), None);
        assert_eq!(w.count_of(10), 1);
        // The connection id is reused: its old heap entry does not expire
        // the new waiter early.
        w.add(waiter(1, 12), 500);
        assert_eq!(w.expire(100), vec![waiter(2, 10)]);
        assert_eq!(w.take_user(12), vec![waiter(1, 12)]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn matching_waiters_are_taken_and_free_their_slots() {
        let mut w = Waiters::default();
        let mut a = waiter(1, 10);
        a.poll.token = Some(OpenedToken {
            user: 10,
            identity: 0,
            id: 77,
            issued: 5,
            expires: 1000,
            kid: 0,
        });
        w.add(a, 100);
        w.add(waiter(2, 10), 100);
        w.add(waiter(3, 11), 100);
        let by_77 = |w: &Waiter| w.poll.token.is_some_and(|t| t.id == 77);
        assert_eq!(w.take_matching(11, by_77), vec![]);
        assert_eq!(w.take_matching(10, by_77), vec![a]);
        assert_eq!((w.len(), w.count_of(10)), (2, 1));
        assert_eq!(w.expire(100), vec![waiter(2, 10), waiter(3, 11)]);
    }

    #[test]
    fn one_waiter_per_connection() {
        let mut w = Waiters::default();
        assert_eq!(w.add(waiter(1, 10), 100), None);
        assert_eq!(w.add(waiter(1, 10), 200), Some(waiter(1, 10)));
        assert_eq!((w.len(), w.count_of(10)), (1, 1));
    }

    #[test]
    fn stale_heap_entries_stay_bounded() {
        let mut w = Waiters::default();
        w.add(waiter(0, 1), 1_000_000);
        for i in 0..20_000 {
            w.add(waiter(1, 2), 1000 + i);
            w.remove_conn(1);
        }
        assert!(
            w.deadlines.len() <= 2 + STALE_SLACK + 1,
            "{}",
            w.deadlines.len()
        );
        assert_eq!(w.expire(999_999), vec![]);
        assert_eq!(w.expire(1_000_000), vec![waiter(0, 1)]);
    }
}
