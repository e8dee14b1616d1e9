//! `client_id` idempotency: a sender's second SEND with the same `client_id`
//! stores nothing and gets the first one's id. An id deduplicates for 24
//! hours or until its sender has used `--client-ids-per-sender` newer ones,
//! whichever is shorter.
//!
//! Kept compact and bounded by N per sender, whatever the rate of SENDs: an
//! id is held as a 128-bit keyed hash (two SipHash-1-3 with random keys,
//! chosen per run), not as its text. Each sender keeps its ids' insertion
//! order, where the oldest is evicted once the sender has more than N.
//! Expiry by time looks at senders, not ids: one entry per sender in
//! [`ClientIds::due`], keyed by the time of its oldest id (or earlier:
//! evictions do not move it, so it is corrected when it comes up).
//! [`ClientIds::prune`] takes at most [`PRUNE_BATCH`] steps per call. Order
//! entries carry a generation number; one whose id was removed or replaced
//! since is stale and skipped when it comes up, and a sender's order is
//! compacted when stale entries outnumber its ids (so it holds at most
//! 2 N + [`STALE_SLACK`] entries). No call walks the whole table.

use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::idhash::IdMap;
use crate::{MessageId, Millis, UserId};
use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, VecDeque};
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

/// Stale order entries a sender may hold beyond its ids before its order
/// is compacted.
pub const STALE_SLACK: usize = 16;

/// One sender's remembered ids and their insertion order.
#[derive(Default)]
struct SenderIds {
    by_key: HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>,
    order: VecDeque<(Key, u64)>,
    /// This sender's key in [`ClientIds::due`].
    due: Millis,
}

impl SenderIds {
    fn is_live(&self, &(key, generation): &(Key, u64)) -> bool {
        self.by_key
            .get(&key)
            .is_some_and(|e| e.generation == generation)
    }

    /// Pops the front of `order`, forgetting its id unless the entry is stale.
    fn pop_oldest(&mut self) -> bool {
        let Some(front) = self.order.pop_front() else {
            return false;
        };
        if self.is_live(&front) {
            self.by_key.remove(&front.0);
            return true;
        }
        false
    }

    /// Drops stale entries once they outnumber the ids (amortised: each
    /// compaction follows at least as many insertions as it visits).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.by_key.len() + STALE_SLACK {
            let by_key = &self.by_key;
            self.order
                .retain(|&(key, g)| by_key.get(&key).is_some_and(|e| e.generation == g));
        }
    }
}

/// Remembered `client_id`s by sender.
pub struct ClientIds {
    hash_keys: [RandomState; 2],
    per_sender: usize,
    senders: IdMap<UserId, SenderIds>,
    /// One entry per sender: (no later than its oldest id's time, sender).
    due: BTreeSet<(Millis, UserId)>,
    next_generation: u64,
    /// Ids remembered (not stale), for metrics.
    live: usize,
    /// Entries of every sender's order, stale ones included, for metrics.
    queued: usize,
}

impl ClientIds {
    /// Remembers at most `per_sender` ids per sender (the newest).
    pub fn new(per_sender: usize) -> ClientIds {
        ClientIds {
            hash_keys: [RandomState::new(), RandomState::new()],
            per_sender: per_sender.max(1),
            senders: IdMap::default(),
            due: BTreeSet::new(),
            next_generation: 0,
            live: 0,
            queued: 0,
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

    /// How many entries the order queues hold, stale ones included: what
    /// the structure costs besides the ids (at most 2 N + [`STALE_SLACK`]
    /// per sender).
    pub fn queued(&self) -> usize {
        self.queued
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
        let ids = self.senders.entry(sender).or_insert_with(|| {
            self.due.insert((first.ts, sender));
            SenderIds {
                due: first.ts,
                ..SenderIds::default()
            }
        });
        if first.ts < ids.due {
            // An id older than the sender's oldest (a first SEND the
            // store named): expiry must not come later than it.
            self.due.remove(&(ids.due, sender));
            ids.due = first.ts;
            self.due.insert((ids.due, sender));
        }
        let before = ids.order.len();
        if ids
            .by_key
            .insert(key, Entry { first, generation })
            .is_none()
        {
            self.live += 1;
        }
        ids.order.push_back((key, generation));
        while ids.by_key.len() > self.per_sender {
            if ids.pop_oldest() {
                self.live -= 1;
            }
        }
        ids.compact();
        self.queued = self.queued + ids.order.len() - before;
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
        let before = ids.order.len();
        if ids.by_key.is_empty() {
            self.due.remove(&(ids.due, sender));
            self.senders.remove(&sender);
            self.queued -= before;
        } else {
            ids.compact();
            self.queued -= before - ids.order.len();
        }
    }

    /// Forgets ids first used more than 24 hours before `now`, in at most
    /// [`PRUNE_BATCH`] steps. Returns whether more are due (call again
    /// soon).
    pub fn prune(&mut self, now: Millis) -> bool {
        let cutoff = now.saturating_sub(CLIENT_ID_RETENTION_MS);
        let mut steps = 0;
        while steps < PRUNE_BATCH {
            let Some(&(ts, sender)) = self.due.first() else {
                return false;
            };
            if ts >= cutoff {
                return false;
            }
            self.due.pop_first();
            let Some(ids) = self.senders.get_mut(&sender) else {
                continue;
            };
            // The front, stale entries and expired ids, until one is not.
            while steps < PRUNE_BATCH {
                let Some(&front) = ids.order.front() else {
                    break;
                };
                let expired = ids
                    .by_key
                    .get(&front.0)
                    .filter(|e| e.generation == front.1)
                    .map(|e| e.first.ts < cutoff);
                if expired == Some(false) {
                    break;
                }
                steps += 1;
                self.queued -= 1;
                if ids.pop_oldest() {
                    self.live -= 1;
                }
            }
            steps += 1;
            match ids.order.front() {
                Some(front) => {
                    // The oldest id's time; a stale front (the step budget
                    // ran out) keeps the sender due.
                    ids.due = match ids.by_key.get(&front.0) {
                        Some(e) if e.generation == front.1 => e.first.ts,
                        _ => ts,
                    };
                    self.due.insert((ids.due, sender));
                }
                None => {
                    self.senders.remove(&sender);
                }
            }
        }
        self.due.first().is_some_and(|&(ts, _)| ts < cutoff)
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
        assert!(ids.len() >= n as usize - PRUNE_BATCH, "{}", ids.len());
        let mut calls = 1;
        while ids.prune(now) {
            calls += 1;
        }
        assert!(calls <= 4, "{calls} calls");
        assert_eq!(ids.len(), 0);
        assert!(ids.due.is_empty() && ids.senders.is_empty());
    }

    #[test]
    fn fresh_ids_without_end_cost_at_most_the_newest_n() {
        let n = 50;
        let mut ids = ClientIds::new(n);
        for i in 0..100 * n as u64 {
            ids.insert(1, &format!("fresh-{i}"), first(i, 1000 + i));
            // A failed SEND's id given back, and the same id used again.
            if i % 3 == 0 {
                ids.remove(1, &format!("fresh-{i}"));
                ids.insert(1, &format!("fresh-{i}"), first(i, 1000 + i));
            }
            assert!(ids.len() <= n);
            assert!(ids.queued() <= 2 * n + STALE_SLACK + 1, "{}", ids.queued());
            let counted: usize = ids.senders.values().map(|s| s.order.len()).sum();
            assert_eq!(ids.queued(), counted);
        }
        assert_eq!(ids.due.len(), 1, "one time entry per sender");
        // The oldest of the newest N is still known; the one before is not.
        let last = 100 * n as u64 - 1;
        assert!(ids
            .get(1, &format!("fresh-{}", last + 1 - n as u64))
            .is_some());
        assert!(ids.get(1, &format!("fresh-{}", last - n as u64)).is_none());
        // Eviction leaves the sender's time entry early; expiry corrects it.
        assert!(!ids.prune(1000 + last - n as u64 + CLIENT_ID_RETENTION_MS));
        assert_eq!(ids.len(), n);
        assert!(!ids.prune(1001 + last + CLIENT_ID_RETENTION_MS));
        assert_eq!((ids.len(), ids.queued()), (0, 0));
        assert!(ids.due.is_empty() && ids.senders.is_empty());
    }
}
