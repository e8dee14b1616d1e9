//! A token bucket per client address (IPv6 by its /64, through
//! [`address_key`]), for two rates checked at the edge:
//!
//! - `--tls-handshakes-per-address-second` with `--tls-handshake-burst`:
//!   a handshake costs the loop about 120 µs of CPU, so one address
//!   starting thousands a second would slow every client; past its rate
//!   a connection that starts a handshake is closed at once;
//! - `--connections-per-address-per-second` with
//!   `--connections-per-address-burst`: past it a new connection is closed
//!   at accept, before it costs a read (`server/shares.rs`).
//!
//! Each bucket also remembers when its address was last logged, so a
//! refusal is logged at most once per period per address.
//!
//! The table is bounded: when it is full, buckets that have filled up
//! again (addresses idle for a while) are dropped in one pass, at most
//! once a second; if it is still full, new addresses pass untracked
//! (counted), so the bound costs memory nothing and no client its turn.

use crate::peer_addr::address_key;
use crate::Millis;
use std::collections::HashMap;
use std::net::IpAddr;

/// Most addresses tracked at once.
pub const MAX_ADDRESSES: usize = 65_536;

struct Bucket {
    /// Tokens in thousandths, so whole-millisecond refills add up.
    milli_tokens: u64,
    at: Millis,
    /// When a refusal of this address was last logged.
    warned_at: Option<Millis>,
}

pub struct HandshakeRate {
    /// Handshakes per second (0: no limit).
    rate: u64,
    burst: u64,
    max_addresses: usize,
    buckets: HashMap<IpAddr, Bucket>,
    last_prune: Millis,
    /// Handshakes let through untracked because the table was full.
    pub untracked: u64,
}

impl HandshakeRate {
    pub fn new(rate: u64, burst: u64) -> HandshakeRate {
        HandshakeRate::with_capacity(rate, burst, MAX_ADDRESSES)
    }

    pub fn with_capacity(rate: u64, burst: u64, max_addresses: usize) -> HandshakeRate {
        HandshakeRate {
            rate,
            burst: burst.max(1),
            max_addresses,
            buckets: HashMap::new(),
            last_prune: 0,
            untracked: 0,
        }
    }

    /// Whether `peer` may start a handshake now; takes one token if so.
    pub fn admit(&mut self, peer: IpAddr, now: Millis) -> bool {
        if self.rate == 0 {
            return true;
        }
        let key = address_key(peer);
        let full = self.burst * 1000;
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_addresses {
            self.prune(now);
            if self.buckets.len() >= self.max_addresses {
                self.untracked += 1;
                return true;
            }
        }
        let rate = self.rate;
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            milli_tokens: full,
            at: now,
            warned_at: None,
        });
        let refill = now.saturating_sub(bucket.at).saturating_mul(rate);
        bucket.milli_tokens = (bucket.milli_tokens.saturating_add(refill)).min(full);
        bucket.at = now;
        if bucket.milli_tokens < 1000 {
            return false;
        }
        bucket.milli_tokens -= 1000;
        true
    }

    /// Whether a refusal of `peer` should be logged now: not if one was
    /// within `every_ms` (an untracked address is not logged).
    pub fn warn_due(&mut self, peer: IpAddr, now: Millis, every_ms: Millis) -> bool {
        let Some(bucket) = self.buckets.get_mut(&address_key(peer)) else {
            return false;
        };
        if bucket.warned_at.is_some_and(|at| now < at + every_ms) {
            return false;
        }
        bucket.warned_at = Some(now);
        true
    }

    /// Drops the buckets that are full again, at most once a second.
    fn prune(&mut self, now: Millis) {
        if now < self.last_prune + 1000 {
            return;
        }
        self.last_prune = now;
        let (rate, full) = (self.rate, self.burst * 1000);
        self.buckets.retain(|_, b| {
            b.milli_tokens
                .saturating_add(now.saturating_sub(b.at).saturating_mul(rate))
                < full
        });
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_burst_then_the_rate_per_address() {
        let mut rate = HandshakeRate::new(10, 3);
        let a = ip("192.0.2.1");
        assert!((0..3).all(|_| rate.admit(a, 1000)), "the burst");
        assert!(!rate.admit(a, 1000), "past the burst");
        assert!(
            rate.admit(ip("192.0.2.2"), 1000),
            "another address is not held"
        );
        assert!(!rate.admit(a, 1099), "0.99 of a token after 99 ms");
        assert!(rate.admit(a, 1100), "one token per 100 ms");
        assert!(!rate.admit(a, 1100));
        assert!(
            (0..3).all(|_| rate.admit(a, 60_000)),
            "refilled to the burst, no more"
        );
        assert!(!rate.admit(a, 60_000));
    }

    #[test]
    fn one_64_shares_a_bucket() {
        let mut rate = HandshakeRate::new(1, 2);
        assert!(rate.admit(ip("2001:db8:1:1::1"), 0));
        assert!(rate.admit(ip("2001:db8:1:1::2"), 0));
        assert!(!rate.admit(ip("2001:db8:1:1::3"), 0));
        assert!(rate.admit(ip("2001:db8:1:2::1"), 0));
    }

    #[test]
    fn a_refused_address_is_logged_once_per_period() {
        let mut rate = HandshakeRate::new(1, 1);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert!(rate.admit(a, 0) && !rate.admit(a, 0));
        assert!(rate.admit(b, 0) && !rate.admit(b, 0));
        assert!(rate.warn_due(a, 0, 10_000));
        assert!(!rate.warn_due(a, 9_999, 10_000));
        assert!(rate.warn_due(b, 5, 10_000), "each address has its own");
        assert!(rate.warn_due(a, 10_000, 10_000));
    }

    #[test]
    fn zero_is_no_limit() {
        let mut rate = HandshakeRate::new(0, 1);
        assert!((0..1000).all(|_| rate.admit(ip("192.0.2.1"), 0)));
        assert_eq!(rate.tracked(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_idle_addresses_make_room() {
        let mut rate = HandshakeRate::with_capacity(10, 2, 4);
        for n in 1..=4 {
            assert!(rate.admit(ip(&format!("192.0.2.{n}")), 0));
        }
        // Full of busy addresses: a new one passes untracked.
        assert!(rate.admit(ip("192.0.2.9"), 10));
        assert_eq!((rate.tracked(), rate.untracked), (4, 1));
        // A second later every bucket is full again: they make room.
        assert!(rate.admit(ip("192.0.2.9"), 2000));
        assert_eq!(rate.tracked(), 1);
    }
}
