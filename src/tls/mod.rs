//! TLS on the client port, with rustls, driven by the event loop without
//! blocking: [`TlsSession`] moves ciphertext between the socket and a
//! rustls `UnbufferedServerConnection` and hands plaintext to the
//! connection layer, which treats it like a plain socket's bytes (so doors,
//! budgets and output caps work the same over TLS). [`load`] reads the
//! certificate and key; [`gen_cert`] makes a self-signed pair for trying it
//! locally.
//!
//! rustls's unbuffered API leaves the buffers to the caller: the session
//! takes them from [`crate::bufpool`] while bytes are in flight and gives
//! them back once they are processed or written, so an idle TLS connection
//! holds no buffer, only rustls's keys and state (see `docs/tls.md`).
//!
//! Nothing here knows a door: the server decides, from the first byte
//! (0x16, a TLS handshake record), that a connection speaks TLS, and
//! sniffs the door again from the first plaintext inside it.

pub mod gen_cert;
pub mod load;

use crate::bufpool;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ServerConfig;
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Plaintext encrypted at once: about one TLS record. Output is only
/// encrypted once the previous ciphertext reached the socket, so the
/// unwritten output a connection holds is still counted as plaintext in
/// the connection's output queue, not hidden in the session.
const PLAINTEXT_CHUNK: usize = 16 * 1024;

/// Room for a record's header, content type, padding and tag on top of its
/// plaintext (a TLS 1.3 record adds 22 bytes, a TLS 1.2 one 29); if rustls
/// asks for more, the buffer grows to what it asks.
const RECORD_OVERHEAD: usize = 256;

/// One connection's TLS state. The three buffers are empty and unallocated
/// while the connection is idle.
pub struct TlsSession {
    session: UnbufferedServerConnection,
    /// Ciphertext read but not processed yet: the start of a record whose
    /// rest has not arrived.
    incoming: Vec<u8>,
    /// Plaintext decrypted but not handed to the connection yet, from
    /// `plain_pos` on.
    plaintext: Vec<u8>,
    plain_pos: usize,
    /// Ciphertext (handshake, records, alerts) not written to the socket
    /// yet, from `out_pos` on.
    outgoing: Vec<u8>,
    out_pos: usize,
    /// The peer closed the TCP connection (read returned 0).
    eof: bool,
    /// The peer sent `close_notify`: no more plaintext comes.
    peer_closed: bool,
}

thread_local! {
    /// Where a record is sealed when nothing else waits to be written: it
    /// goes from here to the socket, and only what the socket does not
    /// take is copied into the connection's own buffer. Zeroed once and
    /// shared by every connection of the loop thread.
    static SEAL: RefCell<Vec<u8>> = RefCell::new(vec![0; PLAINTEXT_CHUNK + RECORD_OVERHEAD]);
    /// Where ciphertext is read and opened, so its plaintext can go
    /// straight into the caller's buffer. Shared like [`SEAL`].
    static OPEN: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Ciphertext read from the socket at once at most.
const READ_CHUNK: usize = 64 * 1024;

/// What [`TlsSession::run`] does once the session can send application data.
enum Then<'a> {
    Nothing,
    /// Encrypts the plaintext into the seal (the second slice) if nothing
    /// waits in `outgoing` and it fits, else onto `outgoing`.
    Encrypt(&'a [u8], &'a mut [u8]),
    CloseNotify,
}

/// The buffers one [`pump`] fills.
struct Sink<'a> {
    plaintext: &'a mut Vec<u8>,
    outgoing: &'a mut Vec<u8>,
    peer_closed: &'a mut bool,
    /// Ciphertext bytes put in the seal (nothing waits in `outgoing`).
    sealed: usize,
    /// The caller's buffer: plaintext goes here first, and to `plaintext`
    /// once it is full; `direct_len` bytes of it are filled.
    direct: &'a mut [u8],
    direct_len: usize,
}

impl TlsSession {
    /// Starts a server session and feeds it the bytes already read from
    /// the socket (the start of the ClientHello the door was sniffed from).
    pub fn start(config: &Arc<ServerConfig>, first: &[u8]) -> io::Result<TlsSession> {
        let session = UnbufferedServerConnection::new(config.clone()).map_err(io::Error::other)?;
        let mut tls = TlsSession {
            session,
            incoming: Vec::new(),
            plaintext: Vec::new(),
            plain_pos: 0,
            outgoing: Vec::new(),
            out_pos: 0,
            eof: false,
            peer_closed: false,
        };
        bufpool::ensure(&mut tls.incoming);
        tls.incoming.extend_from_slice(first);
        tls.run(Then::Nothing)?;
        Ok(tls)
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Whether ciphertext waits to be written to the socket.
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.outgoing.len()
    }

    /// Reads plaintext into `buf`, reading at most `buf.len()` bytes of
    /// ciphertext from the socket per call; `ciphertext` counts what was
    /// read.
    ///
    /// Returns `Ok(n)` with `n > 0` for plaintext, `Ok(0)` once the peer
    /// closed (with or without `close_notify`), `WouldBlock` when the
    /// socket has nothing more, `Interrupted` when ciphertext was taken in
    /// but gave no plaintext yet (a handshake message: call again), and
    /// `InvalidData` when the peer broke the protocol (the alert for it is
    /// queued: call [`TlsSession::write_pending`]).
    pub fn read(
        &mut self,
        socket: &mut impl Read,
        buf: &mut [u8],
        ciphertext: &mut usize,
    ) -> io::Result<usize> {
        if self.plain_pos < self.plaintext.len() {
            return Ok(self.take_plaintext(buf));
        }
        if self.peer_closed || self.eof {
            return Ok(0);
        }
        OPEN.with(|open| {
            let mut open = open.borrow_mut();
            let limit = buf.len().min(open.len());
            let n = socket.read(&mut open[..limit])?;
            *ciphertext += n;
            if n == 0 {
                self.eof = true;
                return Ok(0);
            }
            self.open(&mut open[..n], buf)
        })
    }

    /// Runs `n` bytes of fresh ciphertext through the session, plaintext
    /// into `buf` first; returns like [`TlsSession::read`].
    fn open(&mut self, fresh: &mut [u8], buf: &mut [u8]) -> io::Result<usize> {
        let n = fresh.len();
        let mut sink = Sink {
            plaintext: &mut self.plaintext,
            outgoing: &mut self.outgoing,
            peer_closed: &mut self.peer_closed,
            sealed: 0,
            direct: buf,
            direct_len: 0,
        };
        let fresh_start = self.incoming.is_empty();
        let (used, result) = if fresh_start {
            // The usual case: whole records, opened where they were read.
            pump(&mut self.session, fresh, &mut sink, Then::Nothing)
        } else {
            self.incoming.extend_from_slice(fresh);
            pump(
                &mut self.session,
                &mut self.incoming,
                &mut sink,
                Then::Nothing,
            )
        };
        let direct = sink.direct_len;
        if !fresh_start {
            self.discard_incoming(used);
        } else if used < n {
            bufpool::ensure(&mut self.incoming);
            self.incoming.extend_from_slice(&fresh[used..]);
        }
        if let Err(e) = result {
            return Err(self.failed(e));
        }
        if direct > 0 {
            return Ok(direct);
        }
        if self.peer_closed {
            return Ok(0);
        }
        Err(io::ErrorKind::Interrupted.into())
    }

    /// Copies held plaintext into `buf`; frees the buffer once all is taken.
    fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let rest = &self.plaintext[self.plain_pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.plain_pos += n;
        if self.plain_pos >= self.plaintext.len() {
            bufpool::release(&mut self.plaintext);
            self.plain_pos = 0;
        }
        n
    }

    /// Drops the first `used` bytes of `incoming`; frees it when empty.
    fn discard_incoming(&mut self, used: usize) {
        if used >= self.incoming.len() {
            bufpool::release(&mut self.incoming);
        } else {
            self.incoming.drain(..used);
        }
    }

    /// Runs what `incoming` holds through rustls, then does `then` if the
    /// session may send application data. Returns the plaintext bytes
    /// encrypted (0 while handshaking).
    fn run(&mut self, then: Then<'_>) -> io::Result<(usize, usize)> {
        let mut sink = Sink {
            plaintext: &mut self.plaintext,
            outgoing: &mut self.outgoing,
            peer_closed: &mut self.peer_closed,
            sealed: 0,
            direct: &mut [],
            direct_len: 0,
        };
        let (used, result) = pump(&mut self.session, &mut self.incoming, &mut sink, then);
        let sealed = sink.sealed;
        self.discard_incoming(used);
        match result {
            Ok(taken) => Ok((taken, sealed)),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// After a protocol error: queues the alert rustls has for the peer
    /// (if any) and says what went wrong.
    fn failed(&mut self, e: rustls::Error) -> io::Error {
        bufpool::release(&mut self.incoming);
        let mut sink = Sink {
            plaintext: &mut self.plaintext,
            outgoing: &mut self.outgoing,
            peer_closed: &mut self.peer_closed,
            sealed: 0,
            direct: &mut [],
            direct_len: 0,
        };
        // The session is dead now: this only moves out what it queued.
        let _ = pump(&mut self.session, &mut [], &mut sink, Then::Nothing);
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    /// Writes the ciphertext held until it is all written (true) or the
    /// socket is full (false). The buffer is freed once all is written.
    pub fn write_pending(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        while self.out_pos < self.outgoing.len() {
            match socket.write(&self.outgoing[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.outgoing.capacity() > 0 {
            bufpool::release(&mut self.outgoing);
            self.out_pos = 0;
        }
        Ok(true)
    }

    /// Like a socket's `write`: takes some of `plaintext` (one record at
    /// most) once earlier ciphertext is written; `WouldBlock` while the
    /// socket is full.
    pub fn write(&mut self, socket: &mut impl Write, plaintext: &[u8]) -> io::Result<usize> {
        if !self.write_pending(socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let chunk = &plaintext[..plaintext.len().min(PLAINTEXT_CHUNK)];
        SEAL.with(|seal| {
            let mut seal = seal.borrow_mut();
            let (taken, sealed) = self.run(Then::Encrypt(chunk, &mut seal))?;
            // Encrypted now; sent now as far as the socket takes it.
            self.send_sealed(socket, &seal[..sealed])?;
            self.write_pending(socket)?;
            if taken == 0 {
                // Still handshaking: wait.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(taken)
        })
    }

    /// Writes a record sealed outside `outgoing` (which was empty) to the
    /// socket; what it does not take is kept in `outgoing`.
    fn send_sealed(&mut self, socket: &mut impl Write, mut sealed: &[u8]) -> io::Result<()> {
        while !sealed.is_empty() {
            match socket.write(sealed) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sealed = &sealed[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !sealed.is_empty() {
            bufpool::ensure(&mut self.outgoing);
            self.outgoing.extend_from_slice(sealed);
        }
        Ok(())
    }

    /// Tells the peer the server is done (`close_notify`), if the socket
    /// takes it now.
    pub fn close_notify(&mut self, socket: &mut impl Write) {
        let _ = self.run(Then::CloseNotify);
        let _ = self.write_pending(socket);
    }
}

/// Drives `session` over the ciphertext in `input` until it needs more:
/// handshake messages and alerts go to `sink.outgoing`, application data
/// to `sink.plaintext`; then `then` is done if the session may send
/// application data. Returns how many bytes of `input` were used (the
/// rest is the start of a record) and the plaintext bytes encrypted.
fn pump(
    session: &mut UnbufferedServerConnection,
    input: &mut [u8],
    sink: &mut Sink<'_>,
    mut then: Then<'_>,
) -> (usize, Result<usize, rustls::Error>) {
    let mut used = 0;
    loop {
        let UnbufferedStatus { discard, state } = session.process_tls_records(&mut input[used..]);
        let mut extra = 0;
        let step = match state {
            Err(e) => Err(e),
            Ok(ConnectionState::ReadTraffic(mut records)) => {
                let mut result = Ok(true);
                while let Some(record) = records.next_record() {
                    match record {
                        Ok(record) => {
                            extra += record.discard;
                            let mut payload = record.payload;
                            if sink.plaintext.is_empty() {
                                let room = &mut sink.direct[sink.direct_len..];
                                let fit = room.len().min(payload.len());
                                room[..fit].copy_from_slice(&payload[..fit]);
                                sink.direct_len += fit;
                                payload = &payload[fit..];
                            }
                            if !payload.is_empty() {
                                bufpool::ensure(sink.plaintext);
                                sink.plaintext.extend_from_slice(payload);
                            }
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                result
            }
            Ok(ConnectionState::EncodeTlsData(mut data)) => {
                encode(sink.outgoing, |out| data.encode(out)).map(|_| true)
            }
            Ok(ConnectionState::TransmitTlsData(done)) => {
                // The records are in `outgoing`, ahead of anything written
                // later, and go out with the connection's next write.
                done.done();
                Ok(true)
            }
            Ok(ConnectionState::PeerClosed) => {
                *sink.peer_closed = true;
                Ok(true)
            }
            Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                let taken = match std::mem::replace(&mut then, Then::Nothing) {
                    Then::Nothing => Ok(0),
                    Then::Encrypt(plaintext, seal) => {
                        let direct = if sink.outgoing.is_empty() {
                            match traffic.encrypt(plaintext, seal) {
                                Ok(n) => {
                                    sink.sealed = n;
                                    Some(Ok(plaintext.len()))
                                }
                                // More than a record's room (a key update
                                // goes first): onto `outgoing` instead.
                                Err(EncryptError::InsufficientSize(_)) => None,
                                Err(e) => Some(Err(rustls::Error::General(e.to_string()))),
                            }
                        } else {
                            None
                        };
                        direct.unwrap_or_else(|| {
                            encrypt(sink.outgoing, plaintext.len(), |out| {
                                traffic.encrypt(plaintext, out)
                            })
                            .map(|_| plaintext.len())
                        })
                    }
                    Then::CloseNotify => {
                        encrypt(sink.outgoing, 0, |out| traffic.queue_close_notify(out)).map(|_| 0)
                    }
                };
                used += discard;
                return (used, taken);
            }
            // Waiting for the peer (BlockedHandshake), both sides closed
            // (Closed), or early data, which the configuration never takes.
            Ok(_) => Ok(false),
        };
        used += discard + extra;
        match step {
            Ok(true) => {}
            Ok(false) => return (used, Ok(0)),
            Err(e) => return (used, Err(e)),
        }
    }
}

/// Appends what `write` encodes to `out`, growing it to the size rustls
/// asks for.
fn encode(
    out: &mut Vec<u8>,
    write: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
) -> Result<(), rustls::Error> {
    append_growing(out, 1024, write, |e| match e {
        EncodeError::InsufficientSize(need) => Some(need.required_size),
        _ => None,
    })
}

/// Appends what `write` encrypts from `len` plaintext bytes to `out`,
/// growing it to the size rustls asks for.
fn encrypt(
    out: &mut Vec<u8>,
    len: usize,
    write: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), rustls::Error> {
    append_growing(out, len + RECORD_OVERHEAD, write, |e| match e {
        EncryptError::InsufficientSize(need) => Some(need.required_size),
        _ => None,
    })
}

/// Appends what `write` puts into `room` bytes to `out`; when `write`
/// fails for want of room (`required` names the size it needs), tries
/// again with that much.
fn append_growing<E: std::fmt::Display>(
    out: &mut Vec<u8>,
    mut room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<usize>,
) -> Result<(), rustls::Error> {
    loop {
        let start = grow(out, room);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => {
                out.truncate(start);
                match required(&e) {
                    Some(size) => room = size,
                    None => return Err(rustls::Error::General(e.to_string())),
                }
            }
        }
    }
}

/// Makes `room` zeroed bytes at the end of `out` (a pooled buffer);
/// returns where they start.
fn grow(out: &mut Vec<u8>, room: usize) -> usize {
    bufpool::ensure(out);
    let start = out.len();
    out.resize(start + room, 0);
    start
}

#[cfg(test)]
mod session_tests;
