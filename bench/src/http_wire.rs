//! The client side of HTTP/1.1 for `gotalk-bench http`: the form posts it
//! sends (built once per connection and sent again and again), a response
//! reader that takes `Content-Length` and chunked bodies (the original Go
//! goTalk answers a large `/sync` chunked), the count of messages in a
//! `/sync` body, and which process listens on a port (for the CPU of a
//! server the bench did not start).

use std::net::SocketAddr;
use std::ops::Range;

/// Headers a response may have; goTalk sends about ten.
const MAX_HEADERS: usize = 32;

/// Every message object in a `/sync` body starts with these bytes, in
/// goTalk's array and in the original's (`{"Content":…,"UserIdSend":…}`).
pub const MESSAGE_START: &[u8] = b"{\"Content\":";

/// `application/x-www-form-urlencoded` encoding of one value: unreserved
/// bytes as they are, everything else as `%XX`.
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A whole form post, as a browser's form (or jQuery's `$.post`) sends it.
pub fn post(addr: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Where a response's body is.
#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    /// These bytes of the input (a `Content-Length` body).
    Input(Range<usize>),
    /// The scratch buffer given to [`take_response`] (a chunked body, its
    /// chunks joined).
    Scratch,
}

/// One whole response at the start of the input.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Bytes of the input it took.
    pub consumed: usize,
    pub body: Body,
    /// The server closes the connection after it.
    pub close: bool,
}

impl Response {
    /// The body's bytes.
    pub fn body<'a>(&self, input: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match &self.body {
            Body::Input(range) => &input[range.clone()],
            Body::Scratch => scratch,
        }
    }
}

/// The first whole response in `input`, `Ok(None)` if it has not all
/// arrived. A chunked body is joined into `scratch`.
pub fn take_response(input: &[u8], scratch: &mut Vec<u8>) -> Result<Option<Response>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).unwrap_or("");
            length = Some(
                text.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length '{text}'"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    if chunked {
        return Ok(dechunk(&input[head_len..], scratch)?.map(|used| Response {
            status,
            consumed: head_len + used,
            body: Body::Scratch,
            close,
        }));
    }
    let Some(length) = length else {
        return Err("a response with neither Content-Length nor chunked encoding".into());
    };
    if input.len() < head_len + length {
        return Ok(None);
    }
    Ok(Some(Response {
        status,
        consumed: head_len + length,
        body: Body::Input(head_len..head_len + length),
        close,
    }))
}

/// Joins a chunked body into `out`; the bytes it took, or `None` if it
/// has not all arrived. Trailers are not expected (neither server sends
/// them).
fn dechunk(input: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, String> {
    out.clear();
    let mut at = 0;
    loop {
        let Some(eol) = memchr::memmem::find(&input[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = &input[at..at + eol];
        let hex = line.split(|&b| b == b';').next().unwrap_or(line);
        let size = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
            .ok_or_else(|| format!("bad chunk size '{}'", String::from_utf8_lossy(line)))?;
        at += eol + 2;
        if size == 0 {
            return Ok((input.len() >= at + 2).then_some(at + 2));
        }
        if input.len() < at + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&input[at..at + size]);
        at += size + 2;
    }
}

/// How many messages a `/sync` body holds.
pub fn count_messages(body: &[u8]) -> u64 {
    memchr::memmem::find_iter(body, MESSAGE_START).count() as u64
}

/// The process that listens on `port` of the loopback (from
/// `/proc/net/tcp*` and each process's open sockets), if it can be seen.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str()) {
                return Some(pid);
            }
        }
    }
    None
}

/// The inode of the socket listening on `port` in one `/proc/net/tcp` table.
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    let port_hex = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // local_address, state (0A is LISTEN), inode.
        (f.len() > 9 && f[1].ends_with(&port_hex) && f[3] == "0A")
            .then(|| f[9].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded_with_their_length() {
        let addr: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let req = post(
            addr,
            "/send",
            &[("token", "a+b/c="), ("content", "hi there")],
        );
        let text = String::from_utf8(req).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "token=a%2Bb%2Fc%3D&content=hi%20there");
        assert!(head.starts_with("POST /send HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"));
        assert!(head.ends_with(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn length_and_chunked_responses_are_framed() {
        let mut scratch = Vec::new();
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n\"message received\"";
        let r = take_response(one, &mut scratch).unwrap().unwrap();
        assert_eq!((r.status, r.consumed, r.close), (200, one.len(), false));
        assert_eq!(r.body(one, &scratch), b"\"message received\"");
        assert_eq!(take_response(&one[..one.len() - 1], &mut scratch), Ok(None));

        let body = br#"[{"Content":"a","UserIdSend":1},{"Content":"b","UserIdSend":1}]"#;
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in body.chunks(20) {
            chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            chunked.extend_from_slice(part);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let whole = chunked.len();
        chunked.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        for cut in 0..whole {
            assert_eq!(
                take_response(&chunked[..cut], &mut scratch),
                Ok(None),
                "{cut}"
            );
        }
        let r = take_response(&chunked, &mut scratch).unwrap().unwrap();
        assert_eq!(r.consumed, whole);
        assert_eq!(r.body, Body::Scratch);
        assert_eq!(r.body(&chunked, &scratch), body);
        assert_eq!(count_messages(r.body(&chunked, &scratch)), 2);
        assert_eq!(count_messages(b"\"no message\""), 0);
    }

    #[test]
    fn bad_responses_are_errors() {
        let mut s = Vec::new();
        assert!(take_response(b"HTTP/1.1 200 OK\r\n\r\n", &mut s).is_err());
        assert!(take_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", &mut s).is_err());
        assert!(take_response(b"garbage\r\n\r\n", &mut s).is_err());
    }

    #[test]
    fn finds_a_listening_socket_in_a_proc_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n\
   1: 0100007F:2328 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inode(table, 9000), Some(4242));
        assert_eq!(listening_inode(table, 9001), None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
    }
}
