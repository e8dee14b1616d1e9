//! Which addresses storm so far past `--connections-per-address-per-second`
//! that their connects are better dropped by the kernel
//! (`--connection-storm-cuts`, `--connection-storm-block-seconds`).
//!
//! An address past its connection rate has each new connection closed at
//! accept. When it has had `cuts` of them closed within one second, it is
//! listed for `block` milliseconds: the listening socket's filter
//! (`syn_filter.rs`) drops its connection requests meanwhile, so neither
//! the server nor the kernel does a handshake's work for it. Then it is
//! answered again; if it storms on, it is listed again.
//!
//! Only addresses that are being cut are tracked, in a table bounded like
//! the connection rate's own; the list is bounded by [`MAX_LISTED`] so the
//! filter stays small (past it a storm is only closed at accept, counted).

use crate::peer_addr::address_key;
use crate::Millis;
use std::collections::HashMap;
use std::net::IpAddr;

/// Most addresses listed at once.
pub const MAX_LISTED: usize = 64;
/// Most addresses whose cuts are counted at once.
const MAX_COUNTED: usize = 4096;
/// The span cuts are counted over.
const WINDOW_MS: Millis = 1000;

/// What one more cut did.
#[derive(Debug, PartialEq, Eq)]
pub enum Cut {
    /// Counted (or the guard is off).
    Counted,
    /// The address reached `cuts` in a second and is listed now: install
    /// the new list.
    Listed,
    /// It reached `cuts` in a second, but the list is full.
    ListFull,
}

struct Window {
    start: Millis,
    cuts: u64,
}

pub struct StormGuard {
    /// Cuts in a second that list an address (0: never).
    cuts: u64,
    block_ms: Millis,
    counting: HashMap<IpAddr, Window>,
    /// Listed addresses (keys by `address_key`) and until when.
    listed: Vec<(IpAddr, Millis)>,
    /// The earliest of those times, so the loop's checks compare one number.
    next_expiry: Option<Millis>,
    /// Times an address was listed.
    pub listings: u64,
}

impl StormGuard {
    pub fn new(cuts: u64, block_ms: Millis) -> StormGuard {
        StormGuard {
            cuts,
            block_ms,
            counting: HashMap::new(),
            listed: Vec::new(),
            next_expiry: None,
            listings: 0,
        }
    }

    /// A connection from `peer` was closed at accept for its rate.
    pub fn cut(&mut self, peer: IpAddr, now: Millis) -> Cut {
        if self.cuts == 0 {
            return Cut::Counted;
        }
        let key = address_key(peer);
        if !self.counting.contains_key(&key) && self.counting.len() >= MAX_COUNTED {
            self.counting.retain(|_, w| now < w.start + WINDOW_MS);
            if self.counting.len() >= MAX_COUNTED {
                return Cut::Counted;
            }
        }
        let window = self.counting.entry(key).or_insert(Window {
            start: now,
            cuts: 0,
        });
        if now >= window.start + WINDOW_MS {
            *window = Window {
                start: now,
                cuts: 0,
            };
        }
        window.cuts += 1;
        if window.cuts < self.cuts {
            return Cut::Counted;
        }
        self.counting.remove(&key);
        // Connections already waiting in the backlog when it was listed
        // are still cut at accept; they do not list it twice.
        if self.listed.iter().any(|&(k, _)| k == key) {
            return Cut::Counted;
        }
        if self.listed.len() >= MAX_LISTED {
            return Cut::ListFull;
        }
        let until = now + self.block_ms;
        self.listed.push((key, until));
        self.next_expiry = Some(self.next_expiry.map_or(until, |at| at.min(until)));
        self.listings += 1;
        Cut::Listed
    }

    /// When the next listed address is due to be answered again.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.next_expiry
    }

    /// Takes off the list the addresses whose time is up, and returns them
    /// (then install the new list).
    pub fn expire(&mut self, now: Millis) -> Vec<IpAddr> {
        if self.next_expiry().is_none_or(|at| at > now) {
            return Vec::new();
        }
        let mut expired = Vec::new();
        self.listed.retain(|&(key, until)| {
            let keep = until > now;
            if !keep {
                expired.push(key);
            }
            keep
        });
        self.next_expiry = self.listed.iter().map(|&(_, until)| until).min();
        expired
    }

    /// The listed addresses, for the filter.
    pub fn listed(&self) -> Vec<IpAddr> {
        self.listed.iter().map(|&(key, _)| key).collect()
    }

    /// How many addresses are listed now.
    pub fn listed_count(&self) -> usize {
        self.listed.len()
    }

    /// The kernel would not take a filter: stop listing, for good.
    pub fn disable(&mut self) {
        self.cuts = 0;
        self.listed.clear();
        self.next_expiry = None;
        self.counting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_is_listed_at_its_cuts_within_a_second_then_answered_again() {
        let mut guard = StormGuard::new(3, 5000);
        let a = ip("192.0.2.1");
        assert_eq!(guard.cut(a, 1000), Cut::Counted);
        assert_eq!(guard.cut(a, 1500), Cut::Counted);
        assert_eq!(guard.cut(a, 1999), Cut::Listed);
        assert_eq!((guard.listed(), guard.listings), (vec![a], 1));
        assert_eq!(guard.next_expiry(), Some(6999));
        // Stragglers from the backlog do not list it again.
        for _ in 0..5 {
            assert_eq!(guard.cut(a, 2000), Cut::Counted);
        }
        assert_eq!(guard.listings, 1);
        assert!(guard.expire(6998).is_empty());
        assert_eq!(guard.expire(6999), vec![a]);
        assert!(guard.listed().is_empty());
        assert_eq!(guard.next_expiry(), None);
    }

    #[test]
    fn cuts_spread_over_more_than_a_second_do_not_list() {
        let mut guard = StormGuard::new(3, 5000);
        let a = ip("192.0.2.1");
        for t in [0, 600, 1000, 1600, 2000, 2600] {
            assert_eq!(guard.cut(a, t), Cut::Counted, "at {t}");
        }
        assert!(guard.listed().is_empty());
    }

    #[test]
    fn one_64_is_one_address_and_others_are_not_held() {
        let mut guard = StormGuard::new(2, 1000);
        assert_eq!(guard.cut(ip("2001:db8:1:2::1"), 0), Cut::Counted);
        assert_eq!(guard.cut(ip("192.0.2.9"), 0), Cut::Counted);
        assert_eq!(guard.cut(ip("2001:db8:1:2::2"), 0), Cut::Listed);
        assert_eq!(guard.listed(), vec![ip("2001:db8:1:2::")]);
    }

    #[test]
    fn the_list_is_bounded_and_off_is_off() {
        let mut guard = StormGuard::new(1, 1000);
        for n in 0..MAX_LISTED {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n as u32));
            assert_eq!(guard.cut(a, 0), Cut::Listed);
        }
        assert_eq!(guard.cut(ip("192.0.2.1"), 0), Cut::ListFull);
        assert_eq!(guard.listed().len(), MAX_LISTED);
        guard.disable();
        assert_eq!(guard.cut(ip("192.0.2.1"), 0), Cut::Counted);
        assert!(guard.listed().is_empty());
        let mut off = StormGuard::new(0, 1000);
        assert!((0..10_000).all(|_| off.cut(ip("192.0.2.1"), 0) == Cut::Counted));
    }
}
