//! Long-polls: SYNC requests with `wait_ms` that found nothing and wait for
//! a message or their deadline, whichever comes first.

use super::Ticket;
use crate::idhash::IdMap;
use crate::request::SyncArgs;
use crate::{Millis, UserId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One waiting SYNC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub ticket: Ticket,
    pub user: UserId,
    pub args: SyncArgs,
}

/// Waiting SYNCs by user, with their deadlines in a heap. A waiter that is
/// answered early leaves a stale heap entry, skipped when it comes due.
#[derive(Default)]
pub struct Waiters {
    by_user: IdMap<UserId, Vec<(u64, Waiter)>>,
    deadlines: BinaryHeap<Reverse<(Millis, u64, UserId)>>,
    next_key: u64,
}

impl Waiters {
    pub fn add(&mut self, waiter: Waiter, deadline: Millis) {
        self.next_key += 1;
        let key = self.next_key;
        self.by_user
            .entry(waiter.user)
            .or_default()
            .push((key, waiter));
        self.deadlines.push(Reverse((deadline, key, waiter.user)));
    }

    /// Waiters waiting now.
    pub fn len(&self) -> usize {
        self.by_user.values().map(Vec::len).sum()
    }

    /// Removes and returns every waiter of `user` (a message arrived).
    pub fn take_user(&mut self, user: UserId) -> Vec<Waiter> {
        self.by_user
            .remove(&user)
            .map(|v| v.into_iter().map(|(_, w)| w).collect())
            .unwrap_or_default()
    }

    /// Removes and returns the waiters whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Millis) -> Vec<Waiter> {
        let mut due = Vec::new();
        while let Some(&Reverse((deadline, key, user))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if let Some(list) = self.by_user.get_mut(&user) {
                if let Some(pos) = list.iter().position(|(k, _)| *k == key) {
                    due.push(list.swap_remove(pos).1);
                }
                if list.is_empty() {
                    self.by_user.remove(&user);
                }
            }
        }
        due
    }

    /// The earliest deadline still pending (possibly of a stale entry).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.peek().map(|Reverse((d, _, _))| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(conn: usize, user: UserId) -> Waiter {
        Waiter {
            ticket: Ticket {
                conn,
                seq: conn as u64,
            },
            user,
            args: SyncArgs::default(),
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
}
