//! A map with a fixed most number of entries whose idle entries are
//! forgotten a few at a time: the state behind the login and registration
//! throttles (`login_throttle`).
//!
//! Entries live in a vector, found through a hash map of their index, so
//! [`ThrottleTable::prune`] can walk a bounded stretch from a cursor that
//! goes round the vector, and remove an entry by swapping the last one into
//! its place. Nothing walks the whole table at once; a lookup is one hash.

use crate::Millis;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// State that can tell when it holds nothing worth keeping.
pub trait Idle {
    /// Whether forgetting this entry at `now` changes nothing a client sees.
    fn idle(&self, now: Millis) -> bool;
}

/// Entries looked at by one [`ThrottleTable::prune`] call.
pub const PRUNE_STEP: usize = 1024;

/// Entries looked at before a new entry is refused for want of room.
const ROOM_STEP: usize = 64;

/// `S` hashes the keys: the std default for keys a client chooses
/// (addresses, usernames), `IdHasher` for ids the server assigns.
pub struct ThrottleTable<K, V, S = RandomState> {
    entries: Vec<(K, V)>,
    index: HashMap<K, usize, S>,
    cap: usize,
    cursor: usize,
}

impl<K: Hash + Eq + Copy, V: Idle + Default, S: BuildHasher + Default> ThrottleTable<K, V, S> {
    /// A table of at most `cap` entries.
    pub fn new(cap: usize) -> ThrottleTable<K, V, S> {
        ThrottleTable {
            entries: Vec::new(),
            index: HashMap::default(),
            cap: cap.max(1),
            cursor: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let &i = self.index.get(key)?;
        Some(&mut self.entries[i].1)
    }

    /// The entry at `slot` if it still holds `key` (a slot handed out by
    /// [`ThrottleTable::entry_slot`] and nothing pruned since): no look-up.
    pub fn at_mut(&mut self, slot: usize, key: &K) -> Option<&mut V> {
        if self.entries.get(slot).is_some_and(|(k, _)| k == key) {
            return Some(&mut self.entries[slot].1);
        }
        self.get_mut(key)
    }

    /// Whether the entry at `slot` holds `key` (a slot remembered from
    /// [`ThrottleTable::entry_slot`]; a prune may have moved it).
    #[inline]
    pub fn holds(&self, slot: usize, key: &K) -> bool {
        self.entries.get(slot).is_some_and(|(k, _)| k == key)
    }

    /// The entry at `slot`, which [`ThrottleTable::holds`] said is there.
    #[inline]
    pub fn at_index(&mut self, slot: usize) -> &mut V {
        &mut self.entries[slot].1
    }

    /// [`ThrottleTable::entry`], with the slot it is in.
    pub fn entry_slot(&mut self, key: K, now: Millis) -> Option<(usize, &mut V)> {
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.entry(key, now)?;
                self.entries.len() - 1
            }
        };
        Some((i, &mut self.entries[i].1))
    }

    /// The entry of `key`, made (empty) if there is none and there is room,
    /// after forgetting idle entries if the table is full. `None` when the
    /// table is full of entries that are not idle.
    pub fn entry(&mut self, key: K, now: Millis) -> Option<&mut V> {
        if let Some(&i) = self.index.get(&key) {
            return Some(&mut self.entries[i].1);
        }
        if self.entries.len() >= self.cap {
            self.prune(now, ROOM_STEP);
            if self.entries.len() >= self.cap {
                return None;
            }
        }
        self.index.insert(key, self.entries.len());
        self.entries.push((key, V::default()));
        self.entries.last_mut().map(|(_, v)| v)
    }

    /// Looks at up to `step` entries from where the last call stopped and
    /// forgets the idle ones. Returns whether the walk went round the whole
    /// table (call again later rather than at once).
    pub fn prune(&mut self, now: Millis, step: usize) -> bool {
        for _ in 0..step {
            if self.cursor >= self.entries.len() {
                self.cursor = 0;
                return true;
            }
            if self.entries[self.cursor].1.idle(now) {
                self.remove_at(self.cursor); // the last entry moves here
            } else {
                self.cursor += 1;
            }
        }
        false
    }

    fn remove_at(&mut self, i: usize) {
        let (key, _) = self.entries.swap_remove(i);
        self.index.remove(&key);
        if let Some((moved, _)) = self.entries.get(i) {
            self.index.insert(*moved, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_finds_its_entry_and_a_stale_one_falls_back_to_the_key() {
        let mut t: ThrottleTable<u32, Until> = ThrottleTable::new(8);
        let (a, _) = t.entry_slot(1, 0).unwrap();
        let (b, v) = t.entry_slot(2, 0).unwrap();
        v.0 = 7;
        assert_eq!((a, b), (0, 1));
        assert_eq!(t.entry_slot(2, 0).unwrap().0, 1, "found, not made again");
        assert_eq!(t.at_mut(b, &2).map(|v| v.0), Some(7));
        let stale = t.at_mut(a, &2).map(|v| v.0);
        assert_eq!(stale, Some(7), "a slot holding another key");
        assert_eq!(
            t.at_mut(99, &2).map(|v| v.0),
            Some(7),
            "a slot past the end"
        );
        assert!(t.at_mut(0, &3).is_none());
    }

    /// Idle once `now` passes its value.
    #[derive(Default)]
    struct Until(Millis);

    impl Idle for Until {
        fn idle(&self, now: Millis) -> bool {
            now > self.0
        }
    }

    #[test]
    fn a_full_table_makes_room_only_from_idle_entries() {
        let mut t: ThrottleTable<u32, Until> = ThrottleTable::new(3);
        for key in 0..3 {
            t.entry(key, 0).unwrap().0 = 10 * (key as Millis + 1); // 10, 20, 30
        }
        assert!(t.entry(9, 5).is_none(), "nothing is idle at 5");
        assert!(t.get_mut(&1).is_some());
        let e = t.entry(9, 15).expect("key 0 is idle at 15");
        e.0 = 100;
        assert_eq!(t.len(), 3);
        assert!(t.get_mut(&0).is_none());
        assert_eq!(t.get_mut(&2).unwrap().0, 30, "moved entries stay findable");
        assert_eq!(t.get_mut(&9).unwrap().0, 100);
    }

    #[test]
    fn pruning_goes_round_in_bounded_steps() {
        let mut t: ThrottleTable<u32, Until> = ThrottleTable::new(10_000);
        for key in 0..5_000 {
            t.entry(key, 0).unwrap().0 = if key % 2 == 0 { 1 } else { 1_000 };
        }
        assert!(!t.prune(2, 1_000));
        assert!(t.len() < 5_000 && t.len() > 4_000, "{}", t.len());
        while !t.prune(2, 1_000) {}
        assert_eq!(t.len(), 2_500);
        for key in (1..5_000).step_by(2) {
            assert_eq!(t.get_mut(&key).unwrap().0, 1_000);
        }
        while !t.prune(2_000, PRUNE_STEP) {}
        assert_eq!(t.len(), 0);
    }
}
