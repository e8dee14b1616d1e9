//! Connection deadlines in one heap, so finding what is due costs a peek,
//! never a scan of every connection. Each connection keeps the deadline it
//! has armed (`Conn::timer_at`); a later deadline needs no new entry, since
//! the server re-checks a connection when its entry comes due and re-arms
//! it for the true deadline then. A closed (or reused) connection's entries
//! are recognised by its serial and skipped.
//!
//! An entry is 16 bytes: a connection's login and request deadlines wait
//! here until due, so every idle online user pays for one or two. The
//! connection id is a slab index (well under 2^32: one per open socket)
//! and the serial is kept by its low 32 bits; an entry that matched a later
//! connection by those bits alone would be a re-check of its deadline too
//! early, which re-arms it, since the armed time must match as well.

use crate::opt_u64::OptU64;
use crate::{ConnId, Millis};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One armed deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub at: Millis,
    pub conn: ConnId,
    /// The low 32 bits of the connection's serial.
    serial: u32,
}

impl Due {
    /// Whether the entry was armed for the connection with `serial` (or
    /// one whose serial has the same low 32 bits).
    pub fn is_for(&self, serial: u64) -> bool {
        self.serial == serial as u32
    }
}

/// A heap entry: `Due` in 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Millis,
    conn: u32,
    serial: u32,
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    /// Arms `at` for a connection whose armed deadline is `*armed`, unless
    /// an earlier one is armed already.
    pub fn arm(&mut self, armed: &mut OptU64, at: Millis, conn: ConnId, serial: u64) {
        if armed.get().is_some_and(|t| t <= at) {
            return;
        }
        *armed = OptU64::some(at);
        debug_assert!(u32::try_from(conn).is_ok(), "a slab index");
        self.heap.push(Reverse(Entry {
            at,
            conn: conn as u32,
            serial: serial as u32,
        }));
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
        self.heap.pop().map(|Reverse(e)| Due {
            at: e.at,
            conn: e.conn as ConnId,
            serial: e.serial,
        })
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
        let due = timers.pop_due(100).expect("due at 100");
        assert_eq!((due.at, due.conn), (100, 1));
        assert!(due.is_for(7) && !due.is_for(8));
        assert_eq!(timers.pop_due(1000).map(|d| d.at), Some(500));
        assert!(timers.is_empty());
    }

    #[test]
    fn an_entry_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Reverse<Entry>>(), 16);
    }
}
