//! Connection deadlines in one heap, so finding what is due costs a peek,
//! never a scan of every connection. Each connection keeps the deadline it
//! has armed (`Conn::timer_at`); a later deadline needs no new entry, since
//! the server re-checks a connection when its entry comes due and re-arms
//! it for the true deadline then. A closed (or reused) connection's entries
//! are recognised by its serial and skipped.

use crate::opt_u64::OptU64;
use crate::{ConnId, Millis};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One armed deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Due {
    pub at: Millis,
    pub conn: ConnId,
    pub serial: u64,
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Due>>,
}

impl Timers {
    /// Arms `at` for a connection whose armed deadline is `*armed`, unless
    /// an earlier one is armed already.
    pub fn arm(&mut self, armed: &mut OptU64, at: Millis, conn: ConnId, serial: u64) {
        if armed.get().is_some_and(|t| t <= at) {
            return;
        }
        *armed = OptU64::some(at);
        self.heap.push(Reverse(Due { at, conn, serial }));
    }

    /// The earliest deadline armed (possibly of a closed connection).
    pub fn next(&self) -> Option<Millis> {
        self.heap.peek().map(|Reverse(due)| due.at)
    }

    /// Takes the next entry due at or before `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<Due> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(due)| due)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_deadlines_replace_later_ones_and_later_ones_wait() {
        let mut timers = Timers::default();
        let mut armed = OptU64::NONE;
        timers.arm(&mut armed, 500, 1, 7);
        timers.arm(&mut armed, 900, 1, 7); // later: no new entry
        assert_eq!(timers.len(), 1);
        timers.arm(&mut armed, 100, 1, 7); // earlier: armed
        assert_eq!(armed.get(), Some(100));
        assert_eq!(timers.next(), Some(100));
        assert_eq!(timers.pop_due(99), None);
        assert_eq!(
            timers.pop_due(100),
            Some(Due {
                at: 100,
                conn: 1,
                serial: 7
            })
        );
        assert_eq!(timers.pop_due(1000).map(|d| d.at), Some(500));
        assert!(timers.is_empty());
    }
}
