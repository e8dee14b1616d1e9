//! Open connections counted per client address, for
//! `--max-connections-per-address`. Every count is kept under
//! [`address_key`], so the ten addresses of one IPv6 /64 share one budget
//! as they do for the login throttle and the password queue. A connection
//! from a trusted proxy is counted under the proxy's address until its
//! PROXY header names the client, then moved ([`PerAddress::move_to`]).

use crate::peer_addr::address_key;
use std::collections::HashMap;
use std::net::IpAddr;

/// Open connections per address key. Only keys with open connections
/// have an entry, so the table is bounded by the open connections.
#[derive(Debug, Default)]
pub struct PerAddress {
    open: HashMap<IpAddr, usize>,
}

impl PerAddress {
    /// Connections open under `peer`'s key.
    pub fn count(&self, peer: IpAddr) -> usize {
        self.open.get(&address_key(peer)).copied().unwrap_or(0)
    }

    /// Whether one more connection from `peer` stays within `max`.
    pub fn has_room(&self, peer: IpAddr, max: usize) -> bool {
        self.count(peer) < max
    }

    /// A connection from `peer` opened.
    pub fn add(&mut self, peer: IpAddr) {
        *self.open.entry(address_key(peer)).or_insert(0) += 1;
    }

    /// A connection counted under `peer` closed.
    pub fn remove(&mut self, peer: IpAddr) {
        let key = address_key(peer);
        if let Some(n) = self.open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&key);
            }
        }
    }

    /// A connection counted under `from` turned out to be `to`'s (a PROXY
    /// header named the client). Returns the count under `to` now, the
    /// moved connection included.
    pub fn move_to(&mut self, from: IpAddr, to: IpAddr) -> usize {
        self.remove(from);
        self.add(to);
        self.count(to)
    }

    /// Address keys with open connections (for tests and figures).
    pub fn keys(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ten_addresses_of_one_64_share_one_budget() {
        let mut table = PerAddress::default();
        let max = 5;
        let mut admitted = 0;
        for host in 1..=10 {
            for _ in 0..5 {
                let peer = ip(&format!("2001:db8:7:9::{host:x}"));
                if table.has_room(peer, max) {
                    table.add(peer);
                    admitted += 1;
                }
            }
        }
        assert_eq!(admitted, 5, "50 tries from one /64 under a budget of 5");
        assert_eq!(table.keys(), 1);
        // Another /64 has its own budget; IPv4 counts per address.
        assert!(table.has_room(ip("2001:db8:7:a::1"), max));
        assert!(table.has_room(ip("192.0.2.1"), max));
    }

    #[test]
    fn closing_frees_the_shared_key_and_forgets_empty_ones() {
        let mut table = PerAddress::default();
        table.add(ip("2001:db8::1"));
        table.add(ip("2001:db8::2"));
        assert_eq!(table.count(ip("2001:db8::ffff")), 2);
        table.remove(ip("2001:db8::2"));
        table.remove(ip("2001:db8::1"));
        assert_eq!(table.keys(), 0);
        // A mapped IPv4 address is the IPv4 address.
        table.add(ip("::ffff:10.0.0.1"));
        assert_eq!(table.count(ip("10.0.0.1")), 1);
    }

    #[test]
    fn a_proxied_connection_moves_to_its_client() {
        let mut table = PerAddress::default();
        let proxy = ip("10.0.0.9");
        table.add(proxy);
        table.add(proxy);
        assert_eq!(table.move_to(proxy, ip("198.51.100.1")), 1);
        assert_eq!(table.move_to(proxy, ip("198.51.100.1")), 2);
        assert_eq!(table.count(proxy), 0);
        assert_eq!(table.keys(), 1);
    }
}
