//! `client_id` idempotency: a sender's second SEND with the same `client_id`
//! stores nothing and gets the first one's id. An id deduplicates for 24
//! hours or until its sender has used `--client-ids-per-sender` newer ones,
//! whichever is shorter.
//!
//! Kept compact and bounded: an id is held as a 128-bit keyed hash (two
//! SipHash-1-3 with random keys, chosen per run), not as its text. Every
//! insertion is queued twice in insertion order: per sender, where the
//! oldest is evicted once the sender has more than N, and globally by time,
//! where [`ClientIds::prune`] pops at most [`PRUNE_BATCH`] expired entries
//! per call. Queue entries carry a generation number; one whose id was
//! removed or replaced since is stale and skipped when it comes up. No call
//! walks the whole table.

use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::idhash::IdMap;
use crate::{MessageId, Millis, UserId};
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// Most expired ids [`ClientIds::prune`] forgets per call.
pub const PRUNE_BATCH: usize = 4096;

/// What a `client_id` was first used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstSend {
    pub id: MessageId,
    pub ts: Millis,
    /// Whether that SEND's commit has finished.
    pub committed: bool,
}

/// A `client_id` as remembered: its 128-bit keyed hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key([u64; 2]);

/// The key is a keyed hash already: its first half is the map's hash.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0]);
    }
}

/// Takes the one `u64` a [`Key`] writes as it is.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Copy)]
struct Entry {
    first: FirstSend,
    generation: u64,
}

/// One sender's remembered ids and their insertion order.
#[derive(Default)]
struct SenderIds {
    by_key: HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>,
    order: VecDeque<(Key, u64)>,
}

impl SenderIds {
    /// Pops the front of `order`, forgetting its id unless the entry is stale.
    fn pop_oldest(&mut self) -> bool {
        let Some((key, generation)) = self.order.pop_front() else {
            return false;
        };
        if self
            .by_key
            .get(&key)
            .is_some_and(|e| e.generation == generation)
        {
            self.by_key.remove(&key);
            return true;
        }
        false
    }
}

/// Remembered `client_id`s by sender.
pub struct ClientIds {
    hash_keys: [RandomState; 2],
    per_sender: usize,
    senders: IdMap<UserId, SenderIds>,
    /// Every insertion, oldest first: (time, sender, generation).
    by_time: VecDeque<(Millis, UserId, u64)>,
    next_generation: u64,
    /// Ids remembered (not stale), for metrics.
    live: usize,
}

impl ClientIds {
    /// Remembers at most `per_sender` ids per sender (the newest).
    pub fn new(per_sender: usize) -> ClientIds {
        ClientIds {
            hash_keys: [RandomState::new(), RandomState::new()],
            per_sender: per_sender.max(1),
            senders: IdMap::default(),
            by_time: VecDeque::new(),
            next_generation: 0,
            live: 0,
        }
    }

    fn key(&self, client_id: &str) -> Key {
        Key(self
            .hash_keys
            .each_ref()
            .map(|state| state.hash_one(client_id)))
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn get(&self, sender: UserId, client_id: &str) -> Option<FirstSend> {
        let key = self.key(client_id);
        self.senders.get(&sender)?.by_key.get(&key).map(|e| e.first)
    }

    /// Remembers `client_id` as of `first.ts`, forgetting the sender's
    /// oldest id when it has more than its share.
    pub fn insert(&mut self, sender: UserId, client_id: &str, first: FirstSend) {
        let key = self.key(client_id);
        self.next_generation += 1;
        let generation = self.next_generation;
        let ids = self.senders.entry(sender).or_default();
        if ids
            .by_key
            .insert(key, Entry { first, generation })
            .is_none()
        {
            self.live += 1;
        }
        ids.order.push_back((key, generation));
        self.by_time.push_back((first.ts, sender, generation));
        while ids.by_key.len() > self.per_sender {
            if ids.pop_oldest() {
                self.live -= 1;
            }
        }
    }

    /// The first SEND with `client_id` is stored, as message `id` (which
    /// the store may have given in place of the provisional one).
    pub fn mark_committed(&mut self, sender: UserId, client_id: &str, id: MessageId) {
        let key = self.key(client_id);
        if let Some(entry) = self
            .senders
            .get_mut(&sender)
            .and_then(|ids| ids.by_key.get_mut(&key))
        {
            entry.first.committed = true;
            entry.first.id = id;
        }
    }

    pub fn remove(&mut self, sender: UserId, client_id: &str) {
        let key = self.key(client_id);
        let Some(ids) = self.senders.get_mut(&sender) else {
            return;
        };
        if ids.by_key.remove(&key).is_some() {
            self.live -= 1;
        }
        if ids.by_key.is_empty() {
            // Its queued entries are all stale now; the time queue's find
            // no sender, or a newer one, and are skipped.
            self.senders.remove(&sender);
        }
    }

    /// Forgets up to [`PRUNE_BATCH`] ids first used more than 24 hours
    /// before `now`. Returns whether more are due (call again soon).
    pub fn prune(&mut self, now: Millis) -> bool {
        let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS);
        for _ in 0..PRUNE_BATCH {
            match self.by_time.front() {
                Some(&(ts, sender, generation)) if ts < cutoff => {
                    self.by_time.pop_front();
                    self.expire(sender, generation);
                }
                _ => return false,
            }
        }
        self.by_time.front().is_some_and(|&(ts, _, _)| ts < cutoff)
    }

    /// Forgets `sender`'s id of `generation`, unless it went already. The
    /// sender's queue is in generation order and its older entries went
    /// before (evicted, or expired by earlier entries of the time queue).
    fn expire(&mut self, sender: UserId, generation: u64) {
        let Some(ids) = self.senders.get_mut(&sender) else {
            return;
        };
        while ids.order.front().is_some_and(|&(_, g)| g <= generation) {
            if ids.pop_oldest() {
                self.live -= 1;
            }
        }
        if ids.by_key.is_empty() {
            self.senders.remove(&sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(id: MessageId, ts: Millis) -> FirstSend {
        FirstSend {
            id,
            ts,
            committed: false,
        }
    }

    #[test]
    fn ids_are_per_sender_and_expire_after_a_day() {
        let mut ids = ClientIds::new(100);
        let f = first(5, 1000);
        ids.insert(1, "x", f);
        assert_eq!(ids.get(1, "x"), Some(f));
        assert_eq!(ids.get(2, "x"), None);
        ids.mark_committed(1, "x", 7);
        assert!(ids.get(1, "x").unwrap().committed);
        assert_eq!(ids.get(1, "x").unwrap().id, 7, "the stored id");
        assert!(!ids.prune(1000 + CLIENT_ID_RETENTION_MS));
        assert!(ids.get(1, "x").is_some());
        ids.prune(1001 + CLIENT_ID_RETENTION_MS);
        assert_eq!(ids.get(1, "x"), None);
        assert_eq!(ids.len(), 0);
        assert!(ids.senders.is_empty());
    }

    #[test]
    fn a_sender_keeps_only_its_newest_ids() {
        let mut ids = ClientIds::new(3);
        for n in 0..5 {
            ids.insert(1, &format!("c{n}"), first(n, 10));
        }
        ids.insert(2, "c0", first(9, 10));
        assert_eq!(ids.get(1, "c0"), None);
        assert_eq!(ids.get(1, "c1"), None);
        for n in 2..5 {
            assert_eq!(ids.get(1, &format!("c{n}")).unwrap().id, n);
        }
        assert_eq!(ids.get(2, "c0").unwrap().id, 9);
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn a_removed_id_can_come_back_and_stale_entries_are_skipped() {
        let mut ids = ClientIds::new(2);
        ids.insert(1, "a", first(1, 10));
        ids.insert(1, "b", first(2, 10));
        ids.remove(1, "a");
        ids.insert(1, "a", first(3, 20));
        // The first "a" is stale: evicting it must not forget the new one.
        ids.insert(1, "c", first(4, 30));
        assert_eq!(ids.get(1, "b"), None);
        assert_eq!(ids.get(1, "a").unwrap().id, 3);
        assert_eq!(ids.get(1, "c").unwrap().id, 4);
        assert_eq!(ids.len(), 2);
        // Expiry by time skips the stale entry too.
        ids.prune(15 + CLIENT_ID_RETENTION_MS);
        assert_eq!(ids.get(1, "a").unwrap().id, 3);
        ids.prune(25 + CLIENT_ID_RETENTION_MS);
        assert_eq!(ids.get(1, "a"), None);
        assert_eq!(ids.get(1, "c").unwrap().id, 4);
        assert_eq!(ids.len(), 1);
    }

    #[test]
    fn pruning_is_done_in_bounded_steps() {
        let mut ids = ClientIds::new(usize::MAX);
        let n = PRUNE_BATCH as u64 * 2 + 10;
        for i in 0..n {
            ids.insert(i % 7, &i.to_string(), first(i, i));
        }
        let now = n + CLIENT_ID_RETENTION_MS;
        assert!(ids.prune(now));
        assert_eq!(ids.len(), n as usize - PRUNE_BATCH);
        assert!(ids.prune(now));
        assert!(!ids.prune(now));
        assert_eq!(ids.len(), 0);
        assert!(ids.by_time.is_empty() && ids.senders.is_empty());
    }
}
