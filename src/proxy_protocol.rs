//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a proxy
//! sends before the client's first byte to say whom it connects for. It
//! is read before TLS and before the door is sniffed, and only from a
//! peer in `--trusted-proxies` (the server decides that; this file only
//! recognises and parses).
//!
//! - v1, text: `PROXY TCP4 203.0.113.7 192.0.2.1 51234 9000\r\n` (or
//!   `TCP6`, or `UNKNOWN …`), at most 107 bytes.
//! - v2, binary: a 12-byte signature, version and command, family, a
//!   16-bit length, the addresses, then optional TLVs (skipped). The
//!   `LOCAL` command (a proxy's own health check) names no client.
//!
//! Like the line framer, "need more bytes" is not a failure: [`parse`]
//! answers [`Parsed::NeedMore`] until the header is whole, so it may
//! arrive one byte at a time. No crate is used: the well-kept ones pull
//! in an async stack or a larger API than these ~150 lines.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 start.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 header, `\r\n` included (from the specification).
pub const V1_MAX: usize = 107;
/// The most address and TLV bytes taken after a v2 header's first 16: the
/// largest address block is 216 bytes (two Unix paths); TLVs a proxy adds
/// (a unique id, TLS details) fit in the rest.
pub const V2_MAX_BODY: usize = 1024;

/// Whether input starts with a PROXY header.
#[derive(Debug, PartialEq, Eq)]
pub enum Detect {
    Header,
    NotHeader,
    /// The bytes so far could still become one.
    NeedMore,
}

/// Whether `buf`, a connection's first bytes, start a PROXY header.
pub fn detect(buf: &[u8]) -> Detect {
    for start in [V1_PREFIX, &V2_SIGNATURE[..]] {
        if buf.starts_with(start) {
            return Detect::Header;
        }
        if buf.len() < start.len() && start.starts_with(buf) {
            return Detect::NeedMore;
        }
    }
    Detect::NotHeader
}

/// A whole header.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    /// Bytes of input the header took.
    pub consumed: usize,
    /// The client's address and port; `None` for v2 `LOCAL`, v1
    /// `UNKNOWN` and families without an IP address: the connection is
    /// the proxy's own.
    pub source: Option<SocketAddr>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Header(Header),
    NeedMore,
}

/// Parses the header at the start of `buf` (which [`detect`] found), or
/// says what is wrong with it.
pub fn parse(buf: &[u8]) -> Result<Parsed, &'static str> {
    if buf.starts_with(&V2_SIGNATURE) {
        return parse_v2(buf);
    }
    if !buf.starts_with(V1_PREFIX) {
        return Err("not a PROXY protocol header");
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX || window.contains(&b'\n') {
            return Err("PROXY v1 header without its CRLF within 107 bytes");
        }
        return Ok(Parsed::NeedMore);
    };
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..end])
        .map_err(|_| "PROXY v1 header is not ASCII")?;
    let consumed = end + 2;
    let mut fields = line.split(' ');
    let source = match fields.next() {
        Some("UNKNOWN") => None,
        Some(family @ ("TCP4" | "TCP6")) => {
            let parts: Vec<&str> = fields.collect();
            let [src, dst, sport, dport] = parts[..] else {
                return Err("PROXY v1 header needs source, destination and two ports");
            };
            let src = ip_of(family, src)?;
            ip_of(family, dst)?;
            let sport = port(sport)?;
            port(dport)?;
            Some(SocketAddr::new(src, sport))
        }
        _ => return Err("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN"),
    };
    Ok(Parsed::Header(Header { consumed, source }))
}

fn ip_of(family: &str, text: &str) -> Result<IpAddr, &'static str> {
    let ip = match family {
        "TCP4" => text.parse::<Ipv4Addr>().map(IpAddr::V4),
        _ => text.parse::<Ipv6Addr>().map(IpAddr::V6),
    };
    ip.map_err(|_| "PROXY v1 address does not match its family")
}

fn port(text: &str) -> Result<u16, &'static str> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    match text.parse() {
        Ok(p) if digits && !leading_zero => Ok(p),
        _ => Err("PROXY v1 port is not a number from 0 to 65535"),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, &'static str> {
    if buf.len() < 16 {
        return Ok(Parsed::NeedMore);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Err("PROXY v2 header with a version other than 2");
    }
    let family = buf[13];
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if len > V2_MAX_BODY {
        return Err("PROXY v2 header longer than the server takes");
    }
    if buf.len() < 16 + len {
        return Ok(Parsed::NeedMore);
    }
    let body = &buf[16..16 + len];
    let consumed = 16 + len;
    let source = match command {
        0x0 => None, // LOCAL: the proxy's own connection
        0x1 => match family {
            // TCP or UDP over IPv4.
            0x11 | 0x12 => {
                let b = body.get(..12).ok_or("PROXY v2 IPv4 block is too short")?;
                let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                Some(SocketAddr::new(ip.into(), u16::from_be_bytes([b[8], b[9]])))
            }
            // TCP or UDP over IPv6.
            0x21 | 0x22 => {
                let b = body.get(..36).ok_or("PROXY v2 IPv6 block is too short")?;
                let octets: [u8; 16] = b[..16].try_into().expect("16 bytes");
                let port = u16::from_be_bytes([b[32], b[33]]);
                Some(SocketAddr::new(Ipv6Addr::from(octets).into(), port))
            }
            // UNSPEC and Unix sockets: no IP address to name.
            0x00 | 0x31 | 0x32 => None,
            _ => return Err("PROXY v2 header with an unknown address family"),
        },
        _ => return Err("PROXY v2 header with an unknown command"),
    };
    Ok(Parsed::Header(Header { consumed, source }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    /// Feeds `input` one byte more at a time: every prefix short of the
    /// header must ask for more, the whole one must give `expect`.
    fn byte_by_byte(input: &[u8], expect: Option<SocketAddr>, consumed: usize) {
        for n in 1..consumed {
            assert_ne!(detect(&input[..n]), Detect::NotHeader, "{n}");
            if detect(&input[..n]) == Detect::Header {
                assert_eq!(parse(&input[..n]), Ok(Parsed::NeedMore), "{n} bytes");
            }
        }
        let header = Header {
            consumed,
            source: expect,
        };
        assert_eq!(parse(input), Ok(Parsed::Header(header)));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn v1_headers_name_the_client() {
        let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 9000\r\nPING\n";
        byte_by_byte(line, addr("203.0.113.7:51234"), line.len() - 5);
        let six = b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n\x16\x03";
        byte_by_byte(six, addr("[2001:db8::7]:4711"), six.len() - 2);
        let unknown = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        byte_by_byte(unknown, None, unknown.len());
        byte_by_byte(b"PROXY UNKNOWN\r\n", None, 15);
    }

    #[test]
    fn v2_headers_name_the_client_and_local_keeps_the_proxy() {
        let mut body = vec![198, 51, 100, 9, 192, 0, 2, 1];
        body.extend_from_slice(&40000u16.to_be_bytes());
        body.extend_from_slice(&9000u16.to_be_bytes());
        let mut input = v2(1, 0x11, &body);
        let len = input.len();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        byte_by_byte(&input, addr("198.51.100.9:40000"), len);

        let mut body6 = "2001:db8::9".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        body6.extend_from_slice(&[0; 16]);
        body6.extend_from_slice(&[0x12, 0x34, 0x00, 0x50]);
        body6.extend_from_slice(&[0x05, 0x00, 0x02, 0xab, 0xcd]); // a TLV, skipped
        let input = v2(1, 0x21, &body6);
        byte_by_byte(&input, addr("[2001:db8::9]:4660"), input.len());

        let local = v2(0, 0x00, &[]);
        byte_by_byte(&local, None, 16);
        let unix = v2(1, 0x31, &[0; 216]);
        byte_by_byte(&unix, None, 16 + 216);
    }

    #[test]
    fn other_first_bytes_are_not_a_header() {
        for input in [
            &b"PING\n"[..],
            b"POST /send HTTP/1.1\r\n",
            b"\x16\x03\x01",
            b"PROXY\n",
        ] {
            assert_eq!(detect(input), Detect::NotHeader, "{input:?}");
        }
        assert_eq!(detect(b"PRO"), Detect::NeedMore);
        assert_eq!(detect(b"\r\n\r\n\0"), Detect::NeedMore);
        assert_eq!(detect(b"\r\n\r\nPING"), Detect::NotHeader);
    }

    #[test]
    fn malformed_headers_are_refused() {
        let long_v2 = {
            let mut h = V2_SIGNATURE.to_vec();
            h.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
            h
        };
        let mut too_long_v1 = b"PROXY TCP4 ".to_vec();
        too_long_v1.extend([b'1'; 100]);
        let cases: Vec<(&[u8], &str)> = vec![
            (b"PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n", "not TCP4"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n", "two ports"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.5 1 2 3\r\n", "two ports"),
            (b"PROXY TCP4 2001:db8::1 1.2.3.5 1 2\r\n", "family"),
            (b"PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n", "family"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n", "port"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.5 080 2\r\n", "port"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.5 -1 2\r\n", "port"),
            (b"PROXY TCP4  1.2.3.4 1.2.3.5 1 2\r\n", "two ports"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.5 1 2\n", "CRLF"),
            (&too_long_v1, "CRLF"),
            (b"PROXY TCP4 \xff 1.2.3.5 1 2\r\n", "ASCII"),
            (&long_v2, "longer"),
        ];
        for (input, why) in cases {
            let err = parse(input).unwrap_err();
            assert!(err.contains(why), "{input:?}: {err}");
        }
        let bad_version = [&V2_SIGNATURE[..], &[0x11, 0x11, 0, 0]].concat();
        assert!(parse(&bad_version).unwrap_err().contains("version"));
        let bad_command = [&V2_SIGNATURE[..], &[0x22, 0x11, 0, 12], &[0; 12]].concat();
        assert!(parse(&bad_command).unwrap_err().contains("command"));
        let bad_family = v2(1, 0x41, &[]);
        assert!(parse(&bad_family).unwrap_err().contains("family"));
        let short = v2(1, 0x11, &[1, 2, 3]);
        assert!(parse(&short).unwrap_err().contains("too short"));
    }
}
