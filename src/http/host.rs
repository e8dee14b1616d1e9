//! Which `Host` and `Origin` an HTTP request may carry, so that a web page
//! from another site cannot use a visitor's browser against this server.
//!
//! - `Host` must name this server: a name given with `--http-host`, an IP
//!   address the server listens on (any IP address when it listens on all
//!   of them), or `localhost` when it listens on loopback or on all
//!   addresses. A DNS-rebinding page (evil.example made to resolve to
//!   127.0.0.1) sends its own name and is refused with 421. The port is not
//!   compared: a proxy in front may use its own, and the name is what a
//!   rebinding changes. A request without `Host` is accepted, HTTP/1.0 or
//!   1.1: every browser sends one, so its absence is never a rebinding,
//!   and the original goTalk's clients and hand-typed requests keep working.
//! - `Origin`, when a `POST` carries one (browsers do on every cross-site
//!   and same-site POST), must be this very page: the request's own
//!   scheme ([`Scheme`]: `https` over TLS, so an `http://` page cannot
//!   post to an `https://` server), the host and port of the request's
//!   `Host`. `Origin: null` (a sandboxed
//!   frame, a `data:` page) is refused. Requests without `Origin` (curl,
//!   the Python client, the original clients) are not affected.
//!
//! Each check compares a few short strings; nothing is allocated unless a
//! request is refused.

use super::Refusal;
use crate::config::Config;
use crate::error::ErrorCode;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Status for a `Host` this server does not answer to.
pub const MISDIRECTED: u16 = 421;
/// Status for a `POST` from another site.
pub const FORBIDDEN: u16 = 403;

/// A `Host` value split into its parts: `name` without brackets (an IPv6
/// address) or trailing dot, `port` when one is given.
#[derive(Debug, PartialEq, Eq)]
struct Authority<'a> {
    name: &'a str,
    ip: Option<IpAddr>,
    port: Option<u16>,
}

fn authority(text: &str) -> Option<Authority<'_>> {
    let (name, port, bracketed) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (inside, port, true)
    } else {
        match text.split_once(':') {
            Some((name, port)) => (name, Some(port), false),
            None => (text, None, false),
        }
    };
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    let ip = if bracketed {
        Some(IpAddr::V6(name.parse::<Ipv6Addr>().ok()?))
    } else {
        name.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && (ip.is_some()
            || name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    valid.then_some(Authority { name, ip, port })
}

/// Whether the server answers to `host` (a parsed `Host`).
fn answers_to(host: &Authority<'_>, config: &Config) -> bool {
    let listen = config.listen.ip();
    if let Some(ip) = host.ip {
        return ip == listen
            || listen.is_unspecified()
            || (listen.is_loopback() && ip.is_loopback());
    }
    (host.name.eq_ignore_ascii_case("localhost")
        && (listen.is_loopback() || listen.is_unspecified()))
        || config
            .http_hosts
            .iter()
            .any(|n| n.eq_ignore_ascii_case(host.name))
}

/// Checks a request's `Host` header.
pub fn check_host(host: Option<&[u8]>, config: &Config) -> Result<(), Refusal> {
    let Some(raw) = host else {
        return Ok(());
    };
    let parsed = std::str::from_utf8(raw).ok().and_then(authority);
    match parsed {
        Some(h) if answers_to(&h, config) => Ok(()),
        _ => Err(Refusal::new(
            MISDIRECTED,
            ErrorCode::BadRequest,
            format!(
                "this server does not answer to Host '{}'; it answers to {} \
                 (an operator adds names with --http-host)",
                shown(raw),
                expected_hosts(config)
            ),
        )),
    }
}

/// The scheme a request came in with, which its page's `Origin` must
/// name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    /// Unknown: a plain connection to a server without TLS of its own may
    /// come through a TLS-terminating proxy that is not in
    /// `--trusted-proxies`, so both are taken.
    Either,
}

impl Scheme {
    fn admits(self, origin_scheme: Scheme) -> bool {
        self == Scheme::Either || self == origin_scheme
    }
}

/// Checks the `Origin` of a state-changing request (every `POST`) that
/// came in with `scheme`. The `Host` has passed [`check_host`] already.
pub fn check_origin(
    origin: Option<&[u8]>,
    host: Option<&[u8]>,
    scheme: Scheme,
) -> Result<(), Refusal> {
    let Some(raw) = origin else {
        return Ok(());
    };
    let same = std::str::from_utf8(raw)
        .ok()
        .zip(host.and_then(|h| std::str::from_utf8(h).ok()))
        .is_some_and(|(origin, host)| same_origin(origin, host, scheme));
    if same {
        return Ok(());
    }
    Err(Refusal::new(
        FORBIDDEN,
        ErrorCode::BadRequest,
        format!(
            "a page from {} may not post to this server; only this server's own page may \
             (requests without an Origin header, like curl's, are accepted)",
            if raw == b"null" {
                "an opaque origin (Origin: null)".to_string()
            } else {
                format!("the origin '{}'", shown(raw))
            }
        ),
    ))
}

/// Whether `origin` (`scheme://host[:port]`) is the page at `host` (the
/// request's `Host`) reached with `scheme`: the same scheme, the same
/// name and the same port, the scheme's default standing in for a port
/// not given.
fn same_origin(origin: &str, host: &str, scheme: Scheme) -> bool {
    let (origin_scheme, default_port, rest) = if let Some(rest) = origin.strip_prefix("http://") {
        (Scheme::Http, 80, rest)
    } else if let Some(rest) = origin.strip_prefix("https://") {
        (Scheme::Https, 443, rest)
    } else {
        return false;
    };
    if !scheme.admits(origin_scheme) {
        return false;
    }
    let (Some(o), Some(h)) = (authority(rest), authority(host)) else {
        return false;
    };
    let same_name = match (o.ip, h.ip) {
        (Some(a), Some(b)) => a == b,
        (None, None) => o.name.eq_ignore_ascii_case(h.name),
        _ => false,
    };
    same_name && o.port.unwrap_or(default_port) == h.port.unwrap_or(default_port)
}

/// Whether the metrics listener at `listen` answers to `host`: a loopback
/// name or address, its own address, or a `--http-host` name (the port is
/// not compared).
pub fn metrics_host_ok(host: &str, listen: IpAddr, names: &[String]) -> bool {
    let Some(h) = authority(host) else {
        return false;
    };
    match h.ip {
        Some(ip) => ip.is_loopback() || ip == listen,
        None => {
            h.name.eq_ignore_ascii_case("localhost")
                || names.iter().any(|n| n.eq_ignore_ascii_case(h.name))
        }
    }
}

/// The start-up note on which names the web page answers to.
pub fn startup_note(config: &Config) -> String {
    format!(
        "the web page and HTTP forms answer to Host {} (add names with --http-host)",
        expected_hosts(config)
    )
}

/// The names the server answers to, for a refusal's message.
fn expected_hosts(config: &Config) -> String {
    let listen = config.listen.ip();
    let mut names: Vec<String> = Vec::new();
    if listen.is_unspecified() {
        names.push("any of its IP addresses".into());
    } else {
        names.push(match listen {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        });
    }
    if listen.is_loopback() || listen.is_unspecified() {
        names.push("localhost".into());
    }
    names.extend(config.http_hosts.iter().cloned());
    names.join(", ")
}

/// A header value as it may be quoted in a message: short and printable.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, names: &[&str]) -> Config {
        Config {
            listen: listen.parse().unwrap(),
            http_hosts: names.iter().map(|n| n.to_string()).collect(),
            ..Config::default()
        }
    }

    fn host_ok(host: &str, config: &Config) -> bool {
        check_host(Some(host.as_bytes()), config).is_ok()
    }

    #[test]
    fn loopback_answers_to_loopback_names_and_configured_ones() {
        let c = config("127.0.0.1:9000", &["chat.example.com"]);
        for ok in [
            "localhost",
            "LOCALHOST:9000",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:9000",
            "[::1]",
            "[::1]:9000",
            "chat.example.com",
            "Chat.Example.COM:443",
        ] {
            assert!(host_ok(ok, &c), "{ok} refused");
        }
        for bad in [
            "evil.example",
            "evil.example:9000",
            "localhost.evil.example",
            "10.0.0.1",
            "",
            "localhost:",
            "localhost:99999",
            "[::1",
            "a:b:c",
            "chat.example.com.evil",
        ] {
            let refusal = check_host(Some(bad.as_bytes()), &c).unwrap_err();
            assert!(refusal.status == MISDIRECTED, "{bad}: {}", refusal.status);
        }
    }

    #[test]
    fn a_public_address_answers_to_itself_and_configured_names_only() {
        let c = config("192.0.2.7:443", &["chat.example.com"]);
        assert!(host_ok("192.0.2.7", &c));
        assert!(host_ok("chat.example.com", &c));
        assert!(!host_ok("localhost", &c));
        assert!(!host_ok("127.0.0.1", &c));
        let all = config("0.0.0.0:9000", &[]);
        assert!(host_ok("192.0.2.7:9000", &all));
        assert!(host_ok("[2001:db8::1]", &all));
        assert!(host_ok("localhost", &all));
        assert!(!host_ok("chat.example.com", &all));
        let err = check_host(Some(b"evil.example"), &all).unwrap_err();
        assert!(err.message.contains("any of its IP addresses, localhost"));
    }

    #[test]
    fn the_metrics_listener_answers_to_loopback_itself_and_configured_names() {
        let names = vec!["chat.example.com".to_string()];
        let listen: IpAddr = "10.0.0.5".parse().unwrap();
        for ok in [
            "localhost:9100",
            "127.0.0.1",
            "[::1]:9100",
            "10.0.0.5:9100",
            "chat.example.com",
        ] {
            assert!(metrics_host_ok(ok, listen, &names), "{ok}");
        }
        for bad in [
            "evil.example",
            "10.0.0.6",
            "",
            "x",
            "localhost.evil.example",
        ] {
            assert!(!metrics_host_ok(bad, listen, &names), "{bad}");
        }
    }

    #[test]
    fn a_missing_host_is_accepted() {
        assert!(check_host(None, &config("127.0.0.1:9000", &[])).is_ok());
    }

    #[test]
    fn origin_must_be_the_page_itself() {
        let host = Some(&b"localhost:9000"[..]);
        let any = Scheme::Either;
        assert!(check_origin(None, host, any).is_ok());
        assert!(check_origin(Some(b"http://localhost:9000"), host, any).is_ok());
        assert!(check_origin(Some(b"https://LOCALHOST:9000"), host, any).is_ok());
        assert!(check_origin(Some(b"http://example.com"), Some(b"example.com:80"), any).is_ok());
        assert!(check_origin(Some(b"https://example.com"), Some(b"example.com"), any).is_ok());
        assert!(check_origin(Some(b"http://[::1]:9000"), Some(b"[::1]:9000"), any).is_ok());
        for bad in [
            &b"null"[..],
            b"http://evil.example:9000",
            b"http://localhost:9001",
            b"http://localhost",
            b"http://127.0.0.1:9000",
            b"file://",
            b"localhost:9000",
            b"ftp://localhost:9000",
        ] {
            let refusal = check_origin(Some(bad), host, any).unwrap_err();
            assert_eq!(
                refusal.status,
                FORBIDDEN,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(check_origin(Some(b"null"), host, any)
            .unwrap_err()
            .message
            .contains("Origin: null"));
        assert!(check_origin(Some(b"http://localhost:9000"), None, any).is_err());
    }

    #[test]
    fn origin_must_name_the_scheme_the_request_came_in_with() {
        let host = Some(&b"chat.example.com"[..]);
        let https = Scheme::Https;
        assert!(check_origin(Some(b"https://chat.example.com"), host, https).is_ok());
        // An http:// page of the same name, posting to the https:// server.
        let refusal = check_origin(Some(b"http://chat.example.com"), host, https).unwrap_err();
        assert_eq!(refusal.status, FORBIDDEN);
        assert!(check_origin(Some(b"http://chat.example.com:443"), host, https).is_err());
        let http = Scheme::Http;
        assert!(check_origin(Some(b"http://chat.example.com"), host, http).is_ok());
        assert!(check_origin(Some(b"https://chat.example.com:80"), host, http).is_err());
    }
}
