//! TLS on the client port, with rustls, driven by the event loop without
//! blocking: [`TlsSession`] moves ciphertext between the socket and a
//! rustls `ServerConnection` and hands plaintext to the connection layer,
//! which treats it like a plain socket's bytes (so doors, budgets and
//! output caps work the same over TLS). [`load`] reads the certificate
//! and key; [`gen_cert`] makes a self-signed pair for trying it locally.
//!
//! Nothing here knows a door: the server decides, from the first byte
//! (0x16, a TLS handshake record), that a connection speaks TLS, and
//! sniffs the door again from the first plaintext inside it.

pub mod gen_cert;
pub mod load;

use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Plaintext handed to rustls at once: about one TLS record. Output is only
/// given to rustls once its previous ciphertext reached the socket, so the
/// unwritten output a connection holds is still counted as plaintext in
/// the connection's output queue, not hidden inside rustls.
const PLAINTEXT_CHUNK: usize = 16 * 1024;

/// One connection's TLS state.
pub struct TlsSession {
    session: ServerConnection,
    /// The peer closed the TCP connection (read returned 0).
    eof: bool,
}

impl TlsSession {
    /// Starts a server session and feeds it the bytes already read from
    /// the socket (the start of the ClientHello the door was sniffed from).
    pub fn start(config: &Arc<ServerConfig>, first: &[u8]) -> io::Result<TlsSession> {
        let session = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        let mut tls = TlsSession {
            session,
            eof: false,
        };
        let mut rest = first;
        while !rest.is_empty() {
            let n = tls.session.read_tls(&mut rest)?;
            if n == 0 {
                break;
            }
            tls.process()?;
        }
        Ok(tls)
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Whether ciphertext waits to be written to the socket.
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// Reads plaintext into `buf`. Reads at most one batch of ciphertext
    /// from the socket per call; `ciphertext` counts what was read.
    ///
    /// Returns `Ok(n)` with `n > 0` for plaintext, `Ok(0)` once the peer
    /// closed (with or without `close_notify`), `WouldBlock` when the
    /// socket has nothing more, `Interrupted` when ciphertext was taken in
    /// but gave no plaintext yet (a handshake message: call again), and
    /// `InvalidData` when the peer broke the protocol.
    pub fn read(
        &mut self,
        socket: &mut impl Read,
        buf: &mut [u8],
        ciphertext: &mut usize,
    ) -> io::Result<usize> {
        match self.session.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        if self.eof {
            return Ok(0);
        }
        let n = self.session.read_tls(socket)?;
        *ciphertext += n;
        if n == 0 {
            self.eof = true;
        }
        self.process()?;
        Err(io::ErrorKind::Interrupted.into())
    }

    /// Runs what arrived through rustls; on a protocol error the alert
    /// rustls queued is left for the caller to try to send.
    fn process(&mut self) -> io::Result<()> {
        self.session
            .process_new_packets()
            .map(|_| ())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes the ciphertext rustls holds until it is all written (true) or
    /// the socket is full (false).
    pub fn write_pending(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
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
        let taken = self.session.writer().write(chunk)?;
        if taken == 0 {
            // rustls holds output of its own (still handshaking): wait.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Encrypted now; sent now if the socket takes it.
        self.write_pending(socket)?;
        Ok(taken)
    }

    /// Tells the peer the server is done (`close_notify`), if the socket
    /// takes it now.
    pub fn close_notify(&mut self, socket: &mut impl Write) {
        self.session.send_close_notify();
        let _ = self.write_pending(socket);
    }
}
