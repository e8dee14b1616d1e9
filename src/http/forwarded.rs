//! What an HTTP request says about the client behind a trusted proxy: the
//! last hop of `X-Forwarded-For` (the address the proxy itself saw; the
//! hops before it are whatever the client wrote) and `X-Forwarded-Proto`.
//! Both are read only when the connection comes from a proxy listed in
//! `--trusted-proxies` that sent no PROXY header; from anyone else they
//! are the client's own words and ignored.

use super::host::Scheme;
use std::net::{IpAddr, SocketAddr};

/// Where an HTTP connection comes from, for its forwarding headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Via {
    /// A client (or a proxy whose PROXY header named the client): the
    /// forwarding headers are ignored.
    #[default]
    Direct,
    /// A trusted proxy that named no client: each request's headers do.
    TrustedProxy,
}

/// The client address a trusted proxy put last in `X-Forwarded-For`:
/// an IP address, optionally `[v6]:port` or `v4:port`. `None` when the
/// header is missing or its last hop is no address.
pub fn last_hop(forwarded_for: Option<&[u8]>) -> Option<IpAddr> {
    let text = std::str::from_utf8(forwarded_for?).ok()?;
    let hop = text.rsplit(',').next()?.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// The scheme a request came in with, which its page's `Origin` must name.
/// Over TLS it is https. From a trusted proxy, `X-Forwarded-Proto` says,
/// and without it https (the proxy in front terminates TLS). On a plain
/// connection to a server with TLS of its own (`--allow-plaintext`) it is
/// http. A plain connection to a server without TLS may come through a
/// TLS-terminating proxy that is not listed in `--trusted-proxies`, so
/// either is taken there.
pub fn scheme(secure: bool, via: Via, tls_configured: bool, proto: Option<&[u8]>) -> Scheme {
    if secure {
        return Scheme::Https;
    }
    match via {
        Via::TrustedProxy => match proto {
            Some(p) if p.eq_ignore_ascii_case(b"http") => Scheme::Http,
            _ => Scheme::Https,
        },
        Via::Direct if tls_configured => Scheme::Http,
        Via::Direct => Scheme::Either,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_hop_is_the_one_the_proxy_saw() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(last_hop(Some(b"203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(last_hop(Some(b"1.2.3.4, 203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(last_hop(Some(b"evil, 2001:db8::5 ")), ip("2001:db8::5"));
        assert_eq!(last_hop(Some(b"[2001:db8::5]:4711")), ip("2001:db8::5"));
        assert_eq!(last_hop(Some(b"198.51.100.2:80")), ip("198.51.100.2"));
        for bad in [&b""[..], b"unknown", b"1.2.3.4, ", b"1.2.3.4,x", b"\xff"] {
            assert_eq!(last_hop(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(last_hop(None), None);
    }

    #[test]
    fn the_scheme_follows_tls_then_the_trusted_proxy() {
        assert_eq!(scheme(true, Via::Direct, true, None), Scheme::Https);
        assert_eq!(
            scheme(true, Via::Direct, true, Some(b"http")),
            Scheme::Https
        );
        assert_eq!(scheme(false, Via::TrustedProxy, false, None), Scheme::Https);
        assert_eq!(
            scheme(false, Via::TrustedProxy, false, Some(b"HTTP")),
            Scheme::Http
        );
        assert_eq!(scheme(false, Via::Direct, true, None), Scheme::Http);
        assert_eq!(
            scheme(false, Via::Direct, true, Some(b"https")),
            Scheme::Http
        );
        assert_eq!(scheme(false, Via::Direct, false, None), Scheme::Either);
    }
}
