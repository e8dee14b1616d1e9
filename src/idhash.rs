//! A fast hasher for maps keyed by ids the server assigns itself (user,
//! connection, job ids). SipHash, the std default, resists keys chosen to
//! collide; these keys are not chosen by clients, so one multiplication is
//! enough, and it runs several times per message on the hot path. Maps
//! keyed by client-chosen text (usernames) keep the std hasher.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing: multiply by 2^64 / golden ratio. Sequential ids get
/// distinct low bits (bucket index) and well-mixed high bits (hashbrown's
/// control byte).
#[derive(Clone, Copy, Default)]
pub struct IdHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(K);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` keyed by a server-assigned id.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_ids_spread_over_buckets_and_control_bytes() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=4096u64).map(|id| build.hash_one(id)).collect();
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        assert_eq!(buckets.len(), 4096, "low bits are a permutation");
        let tops: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tops.len(), 128, "all control-byte values are used");
    }

    #[test]
    fn maps_work_as_usual() {
        let mut m: IdMap<u64, &str> = IdMap::default();
        m.insert(7, "seven");
        m.insert(1 << 40, "big");
        assert_eq!(m.get(&7), Some(&"seven"));
        assert_eq!(m.get(&(1 << 40)), Some(&"big"));
        assert_eq!(m.get(&8), None);
    }
}
