//! The client side of the wire. Setup (REGISTER, LOGIN, AUTH) goes through
//! a blocking [`Client`] that parses replies with serde_json; the hot paths
//! never parse JSON: they split input into lines with a word-at-a-time
//! newline search ([`find_newline`], [`LineBuf`]) and look only at the
//! first bytes of a line ([`push_id`], [`is_error_reply`]).

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest wait for one setup reply (LOGIN runs argon2 on the server).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Password of every bench account.
pub const PASSWORD: &str = "bench-password";

/// A push event line starts with exactly these bytes, then the message id
/// (the server writes a message's JSON with `id` first).
pub const PUSH_PREFIX: &[u8] = br#"{"event":"message","message":{"id":"#;

/// The position of the first `\n` in `hay`, eight bytes at a time.
pub fn find_newline(hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut i = 0;
    while i + 8 <= hay.len() {
        let word = u64::from_le_bytes(hay[i..i + 8].try_into().expect("8 bytes")) ^ NL;
        // Zero bytes of `word` are newlines; the lowest set high bit marks
        // the first one exactly (borrows only reach higher bytes).
        let zeros = word.wrapping_sub(LO) & !word & HI;
        if zeros != 0 {
            return Some(i + (zeros.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i..].iter().position(|&b| b == b'\n').map(|p| i + p)
}

/// The message id of a push event line, or `None` for any other line.
pub fn push_id(line: &[u8]) -> Option<u64> {
    let digits = line.strip_prefix(PUSH_PREFIX)?;
    let mut id: u64 = 0;
    let mut any = false;
    for &b in digits.iter().take(20) {
        if !b.is_ascii_digit() {
            break;
        }
        id = id.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        any = true;
    }
    any.then_some(id)
}

/// Whether a reply line is `{"ok":false,...}`.
pub fn is_error_reply(line: &[u8]) -> bool {
    line.starts_with(br#"{"ok":false"#)
}

/// An input buffer for a non-blocking connection: reads go into its spare
/// space, complete lines are handed out, a partial last line is kept.
pub struct LineBuf {
    buf: Box<[u8]>,
    len: usize,
}

impl LineBuf {
    pub fn new(capacity: usize) -> LineBuf {
        LineBuf {
            buf: vec![0; capacity].into_boxed_slice(),
            len: 0,
        }
    }

    /// Where the next read goes.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// `n` bytes were read into [`LineBuf::spare`].
    pub fn filled(&mut self, n: usize) {
        self.len += n;
    }

    /// Calls `each` for every complete line (without its `\n`; a `\r`
    /// before it is kept) and keeps the rest. Fails if one line fills the
    /// whole buffer.
    pub fn lines(&mut self, mut each: impl FnMut(&[u8])) -> Result<(), String> {
        let mut start = 0;
        while let Some(p) = find_newline(&self.buf[start..self.len]) {
            each(&self.buf[start..start + p]);
            start += p + 1;
        }
        self.buf.copy_within(start..self.len, 0);
        self.len -= start;
        if self.len == self.buf.len() {
            return Err(format!("a line longer than {} bytes", self.buf.len()));
        }
        Ok(())
    }
}

/// A blocking line-protocol connection for setup requests.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Result<Client, String> {
        let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .and_then(|_| stream.set_write_timeout(Some(REPLY_TIMEOUT)))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Writes one request line (the `\n` is added).
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.writer
            .write_all(&bytes)
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Reads the next reply line, skipping server events; fails on an
    /// `"ok":false` reply.
    pub fn reply(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        for _ in 0..1_000_000 {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("no reply: {e}")),
            }
            let value: Value = serde_json::from_str(line.trim_end())
                .map_err(|e| format!("reply is not JSON ({e}): {}", line.trim_end()))?;
            if value.get("ok").is_none() {
                continue; // a push event
            }
            if value["ok"] != Value::Bool(true) {
                return Err(format!("request failed: {}", line.trim_end()));
            }
            return Ok(value);
        }
        Err("no reply among a million events".into())
    }

    /// Sends one request and reads its reply.
    pub fn request(&mut self, line: &str) -> Result<Value, String> {
        self.send(line)?;
        self.reply()
    }

    /// Logs in (binding this connection to `user`); returns the token.
    pub fn login(&mut self, user: &str) -> Result<String, String> {
        let reply = self
            .request(&format!("LOGIN {user} {PASSWORD}"))
            .map_err(|e| format!("LOGIN {user}: {e}"))?;
        reply["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("LOGIN {user}: no token in {reply}"))
    }

    /// Binds this connection to the token's user.
    pub fn auth(&mut self, token: &str) -> Result<(), String> {
        self.request(&format!("AUTH {token}")).map(|_| ())
    }

    /// The socket, for the hot path; fails if replies were read ahead.
    pub fn into_stream(self) -> Result<TcpStream, String> {
        if !self.reader.buffer().is_empty() {
            return Err("unexpected bytes after the setup replies".into());
        }
        Ok(self.reader.into_inner())
    }
}

/// Registers every name on one connection, pipelined (REGISTER is one
/// argon2 hash per account on the server's password threads).
pub fn register_all(addr: SocketAddr, names: &[String]) -> Result<(), String> {
    let mut client = Client::connect(addr)?;
    for name in names {
        client.send(&format!("REGISTER {name} {PASSWORD}"))?;
    }
    for name in names {
        client
            .reply()
            .map_err(|e| format!("REGISTER {name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_search_matches_a_plain_scan() {
        let mut data = vec![b'x'; 40];
        assert_eq!(find_newline(&data), None);
        for pos in [0, 1, 7, 8, 9, 15, 16, 33, 39] {
            data.fill(b'x');
            data[pos] = b'\n';
            if pos + 3 < data.len() {
                data[pos + 3] = b'\n';
            }
            assert_eq!(find_newline(&data), Some(pos), "at {pos}");
            assert_eq!(find_newline(&data[..pos]), None);
        }
        // Bytes just above and below '\n' are not newlines.
        assert_eq!(find_newline(&[9, 11, 9, 11, 9, 11, 9, 11, 9, 10]), Some(9));
    }

    #[test]
    fn push_ids_are_read_from_the_line_start() {
        let line = br#"{"event":"message","message":{"id":4711,"from":"a","from_id":1}}"#;
        assert_eq!(push_id(line), Some(4711));
        assert_eq!(push_id(br#"{"ok":true,"id":5,"ts":1}"#), None);
        assert_eq!(push_id(PUSH_PREFIX), None);
        assert!(is_error_reply(br#"{"ok":false,"error":{}}"#));
        assert!(!is_error_reply(br#"{"ok":true}"#));
    }

    #[test]
    fn line_buffer_keeps_partial_lines() {
        let mut buf = LineBuf::new(16);
        let mut seen = Vec::new();
        for chunk in [&b"ab\ncd"[..], b"e\n\nf", b"g\n"] {
            buf.spare()[..chunk.len()].copy_from_slice(chunk);
            buf.filled(chunk.len());
            buf.lines(|l| seen.push(l.to_vec())).unwrap();
        }
        assert_eq!(seen, [&b"ab"[..], b"cde", b"", b"fg"]);
        buf.spare().fill(b'z');
        buf.filled(16);
        assert!(buf.lines(|_| {}).is_err());
    }
}
