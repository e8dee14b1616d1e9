//! The address a peer is counted under, by every per-address figure:
//! connections, the login throttle, REGISTER, lookups, the password queue
//! and handshake rates. One helper, so every budget groups peers alike.
//!
//! IPv4 counts as it is (also when written as IPv4-mapped IPv6); IPv6
//! counts by its /64 prefix, the block one host or subscriber usually
//! holds, so ten addresses of one /64 share one budget.

use std::net::{IpAddr, Ipv6Addr};

/// The key `peer` is counted under: IPv4 as is, IPv6 by its /64.
pub fn address_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_peers_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(address_key(v4), v4);
    }
}
