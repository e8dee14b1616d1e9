//! Which door a new connection speaks, from its first bytes: a TLS
//! handshake record (first byte 0x16) means TLS, inside which the door is
//! sniffed again; an HTTP/1.x request line (`POST /send HTTP/1.1`) means
//! HTTP; anything else is the line protocol. Line-protocol commands never
//! start with an HTTP method name in capitals followed by a path and a
//! version, nor with the control byte 0x16, so none can be confused.

/// The two doors, and TLS around them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoorKind {
    Line,
    Http,
    /// A TLS ClientHello: the door is known once it is decrypted.
    Tls,
}

/// The first byte of every TLS handshake record (content type 22).
pub const TLS_HANDSHAKE: u8 = 0x16;

const METHODS: [&[u8]; 9] = [
    b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
];

/// A request line longer than this without its end is still taken as HTTP
/// (and then refused by the HTTP parser's own limits).
const LONGEST_REQUEST_LINE: usize = 8 * 1024;

/// Decides the door, or `None` while the first bytes could still be either.
pub fn sniff(buf: &[u8]) -> Option<DoorKind> {
    match buf.first() {
        None => return None,
        Some(&TLS_HANDSHAKE) => return Some(DoorKind::Tls),
        Some(_) => {}
    }
    let method = METHODS
        .iter()
        .find(|m| buf.len() > m.len() && buf.starts_with(m) && buf[m.len()] == b' ');
    let Some(method) = method else {
        // Could it still become "METHOD "?
        let maybe = METHODS
            .iter()
            .any(|m| buf.len() <= m.len() && m.starts_with(buf));
        return if maybe { None } else { Some(DoorKind::Line) };
    };
    // The end is looked for within the limit only: a line that runs past
    // it is HTTP once that many bytes are here, and must stay HTTP when its
    // newline comes later, whether or not both arrive in the same read.
    let first_line = &buf[..buf.len().min(LONGEST_REQUEST_LINE + 1)];
    let Some(end) = first_line.iter().position(|&b| b == b'\n') else {
        return (buf.len() > LONGEST_REQUEST_LINE).then_some(DoorKind::Http);
    };
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    let rest = &line[method.len() + 1..];
    let is_http = match rest.iter().rposition(|&b| b == b' ') {
        Some(space) => {
            let (target, version) = (&rest[..space], &rest[space + 1..]);
            !target.is_empty()
                && !target.contains(&b' ')
                && version.len() == 8
                && version.starts_with(b"HTTP/1.")
                && version[7].is_ascii_digit()
        }
        None => false,
    };
    Some(if is_http {
        DoorKind::Http
    } else {
        DoorKind::Line
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_lines_are_http() {
        assert_eq!(sniff(b"POST /send HTTP/1.1\r\n"), Some(DoorKind::Http));
        assert_eq!(sniff(b"GET / HTTP/1.0\n"), Some(DoorKind::Http));
    }

    #[test]
    fn everything_else_is_the_line_protocol() {
        for line in [
            &b"PING\n"[..],
            b"{\"cmd\":\"ping\"}\n",
            b"GET me a coffee\n",
            b"get / HTTP/1.1\n",
            b"SEND bob GET / HTTP/1.1\n",
            b"\n",
            b"x",
        ] {
            assert_eq!(
                sniff(line),
                Some(DoorKind::Line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn partial_first_bytes_wait() {
        for partial in [
            &b"G"[..],
            b"GE",
            b"POST",
            b"POST /se",
            b"POST /send HTTP/1.1",
        ] {
            assert_eq!(sniff(partial), None, "{}", String::from_utf8_lossy(partial));
        }
        assert_eq!(sniff(b"P"), None);
        assert_eq!(sniff(b"PI"), Some(DoorKind::Line));
    }

    #[test]
    fn a_request_line_past_the_limit_is_http_however_it_arrives() {
        let mut input = b"GET /".to_vec();
        input.extend([b'a'; LONGEST_REQUEST_LINE]);
        assert_eq!(sniff(&input), Some(DoorKind::Http), "without its end");
        input.extend_from_slice(b"\r\n");
        assert_eq!(sniff(&input), Some(DoorKind::Http), "with its end");
    }

    #[test]
    fn a_tls_handshake_record_is_tls_from_its_first_byte() {
        // The first bytes of a real ClientHello: handshake, TLS 1.0 record
        // version, length, then client_hello (1).
        let hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
        for n in 1..=hello.len() {
            assert_eq!(sniff(&hello[..n]), Some(DoorKind::Tls), "{n} bytes");
        }
        // Whatever follows 0x16 (garbage included) is for TLS to judge.
        assert_eq!(sniff(b"\x16garbage\n"), Some(DoorKind::Tls));
        // Only the first byte counts: later 0x16 bytes are line content.
        assert_eq!(sniff(b"SEND bob \x16\n"), Some(DoorKind::Line));
        assert_eq!(sniff(b" \x16"), Some(DoorKind::Line));
    }

    #[test]
    fn byte_by_byte_reaches_the_same_decision() {
        let input = b"POST /sync HTTP/1.1\r\nHost: x\r\n\r\n";
        let decided = (1..=input.len()).find_map(|n| sniff(&input[..n]));
        assert_eq!(decided, Some(DoorKind::Http));
    }
}
