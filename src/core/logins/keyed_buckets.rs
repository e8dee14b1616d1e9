//! A table of token buckets by key, with one overflow bucket shared by new
//! keys while the table is full of live entries: the state behind two
//! budgets of `login_throttle`:
//!
//! - name→id lookups per peer address (`--lookups-per-address-minute`):
//!   LOOKUP, `/getuseridbyname`, and a SEND to a name that does not exist
//!   all answer "does this name exist?", so they share one rate;
//! - LOGINs of one username from one address that has a bucket of its own
//!   once the username's shared bucket is empty
//!   (`--login-tries-per-new-address-hour`).
//!
//! Each is one bucket per key in a [`ThrottleTable`] of at most
//! `--throttle-entries` entries; a check is one hash lookup, or none at
//! all while no bucket can be empty: a bucket empties only by a take, so
//! the table remembers until when the last emptied one stays short, and a
//! SEND to a name (which asks on every call) costs a comparison while
//! nobody has used up a budget.

use super::bucket::{Bucket, Rate};
use super::throttle_table::{Idle, ThrottleTable, PRUNE_STEP};
use crate::Millis;
use std::hash::Hash;

/// One key's bucket.
#[derive(Default)]
struct Slot(Bucket);

impl Idle for Slot {
    fn idle(&self, now: Millis) -> bool {
        self.0.is_full(now)
    }
}

/// Which bucket a take came from, to give it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken<K> {
    key: K,
    overflow: bool,
}

pub struct KeyedBuckets<K> {
    rate: Rate,
    table: ThrottleTable<K, Slot>,
    overflow: Bucket,
    /// No bucket lacks a token from this time on.
    empty_until: Millis,
}

impl<K: Hash + Eq + Copy> KeyedBuckets<K> {
    /// Buckets of `rate`, at most `entries` of them.
    pub fn new(rate: Rate, entries: usize) -> KeyedBuckets<K> {
        KeyedBuckets {
            rate,
            table: ThrottleTable::new(entries),
            overflow: Bucket::default(),
            empty_until: 0,
        }
    }

    /// How long `key` must wait for a token (`None`: one is there now).
    pub fn wait(&mut self, key: K, now: Millis) -> Option<u64> {
        if now >= self.empty_until {
            return None;
        }
        let rate = self.rate;
        match self.table.entry(key, now) {
            Some(slot) => slot.0.wait(rate, now),
            None => self.overflow.wait(rate, now),
        }
    }

    /// Takes a token for `key`, or says how long to wait, taking nothing.
    pub fn take(&mut self, key: K, now: Millis) -> Result<Taken<K>, u64> {
        let rate = self.rate;
        let (bucket, overflow) = match self.table.entry(key, now) {
            Some(slot) => (&mut slot.0, false),
            None => (&mut self.overflow, true),
        };
        if let Some(wait) = bucket.wait(rate, now) {
            return Err(wait);
        }
        bucket.take(rate, now);
        if let Some(short) = bucket.wait(rate, now) {
            self.empty_until = self.empty_until.max(now.saturating_add(short));
        }
        Ok(Taken { key, overflow })
    }

    /// Puts back a token taken by [`KeyedBuckets::take`].
    pub fn give_back(&mut self, taken: Taken<K>) {
        let rate = self.rate;
        if taken.overflow {
            self.overflow.give_back(rate);
        } else if let Some(slot) = self.table.get_mut(&taken.key) {
            slot.0.give_back(rate);
        }
    }

    /// Forgets a step of idle entries; true when the table was walked round.
    pub fn prune(&mut self, now: Millis) -> bool {
        self.table.prune(now, PRUNE_STEP)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_bucket_and_a_full_table_shares_one() {
        let mut b = KeyedBuckets::new(Rate::per(2, 60_000, 2), 2);
        for key in [1, 2] {
            b.take(key, 0).unwrap();
            b.take(key, 0).unwrap();
            assert_eq!(b.take(key, 0), Err(30_000));
        }
        let t = b.take(3, 0).unwrap();
        b.take(4, 0).unwrap();
        assert!(b.take(5, 0).is_err(), "the overflow bucket is shared");
        b.give_back(t);
        assert!(b.take(5, 0).is_ok());
        assert!(b.wait(1, 30_000).is_none(), "refilled");
        assert_eq!(b.len(), 2);
    }
}
