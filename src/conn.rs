//! One client connection's transport: its socket, unread input, bounded
//! output, flags and timers, plus [`ReplySlots`], the order replies must go
//! out in. Nothing here knows a door or what a command means: doors render
//! their replies through closures, and every byte of output, reply or push,
//! enters through [`Conn::queue`] or [`Conn::hold`], which count it against
//! the connection's cap and the server-wide [`OutputBudget`].
//!
//! The transport is a plain socket or, once the server saw a TLS
//! handshake, a [`TlsSession`] over it; either way [`Conn::read_input`]
//! gives plaintext and [`Conn::flush`] takes plaintext, so the plain path
//! pays one branch on an empty `Option` and nothing else.

use crate::bufpool;
use crate::error::CloseReason;
use crate::opt_u64::OptU64;
use crate::tls::TlsSession;
use crate::Millis;

/// A byte count as a per-turn counter (saturating).
#[inline]
fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
use mio::net::TcpStream;
use rustls::ServerConfig;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

/// Output owed to clients, all connections together, and the caps on it.
/// Past `per_conn` a connection is closed as a slow consumer; past `limit`
/// the server closes the connections holding the most unread output.
#[derive(Debug)]
pub struct OutputBudget {
    /// Bytes rendered for clients and not yet written to their sockets.
    pub queued: usize,
    /// Most bytes queued for all connections together.
    pub limit: usize,
    /// Most bytes queued for one connection.
    pub per_conn: usize,
    /// Set when `queued` went over `limit`; the server clears it once it
    /// has closed enough connections.
    pub over: bool,
}

impl OutputBudget {
    pub fn new(limit: usize, per_conn: usize) -> OutputBudget {
        OutputBudget {
            queued: 0,
            limit,
            per_conn,
            over: false,
        }
    }

    fn add(&mut self, n: usize) {
        self.queued += n;
        if self.queued > self.limit {
            self.over = true;
        }
    }

    fn sub(&mut self, n: usize) {
        self.queued -= n;
    }
}

/// What a finished write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything owed is written (the buffer was given back).
    All,
    /// The socket is full: wait for WRITABLE.
    Blocked,
    /// This turn's write budget is spent: go on next turn.
    Budget,
}

/// Written bytes kept at the front of a partly written buffer before they
/// are dropped.
const COMPACT_AFTER: usize = 64 * 1024;

pub struct Conn {
    pub socket: TcpStream,
    /// The TLS session over the socket, once the client started one.
    tls: Option<Box<TlsSession>>,
    pub peer: SocketAddr,
    /// Unique for the server's life: tells a reused connection id apart.
    pub serial: u64,
    /// Bytes read but not yet parsed. Emptied (and freed) when all is parsed.
    pub inbuf: Vec<u8>,
    out: Vec<u8>,
    /// How much of `out` the socket has taken.
    out_pos: usize,
    /// Bytes owed to the client: the unwritten part of `out` plus rendered
    /// replies held until the replies before them are ready.
    owed: usize,
    /// Set when output went over the connection's cap: it must be closed
    /// without flushing. Whatever it had not acknowledged stays in custody.
    pub overflow: Option<CloseReason>,
    /// A request the next one must wait for (LOGIN binds the connection, for
    /// example), by sequence number.
    pub barrier: OptU64,
    /// Set once no more requests will be read; the connection closes when
    /// everything owed is written.
    pub closing: Option<CloseReason>,
    /// The peer closed its sending side.
    pub read_closed: bool,
    /// Reading stopped because the client was not reading its replies.
    pub paused_on_output: bool,
    /// Whether the connection is in the server's end-of-turn write list.
    pub queued_write: bool,
    /// Whether WRITABLE interest is registered (only while output waits).
    pub writable_armed: bool,
    /// When the connection was accepted.
    pub opened: Millis,
    /// When the client last sent bytes or was last answered in full.
    pub last_active: Millis,
    /// When the first byte of the request now being read arrived.
    pub input_since: OptU64,
    /// The deadline armed in the server's timer heap, if any.
    pub timer_at: OptU64,
    /// Bytes read from and written to the socket (for the close log line).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The loop turn `read_in_turn` and `written_in_turn` count for: the
    /// per-turn budgets hold however often a turn comes back to this
    /// connection (a flush can resume reading within the same turn).
    pub budget_turn: u32,
    pub read_in_turn: u32,
    pub written_in_turn: u32,
}

impl Conn {
    pub fn new(socket: TcpStream, peer: SocketAddr, serial: u64, now: Millis) -> Conn {
        Conn {
            socket,
            tls: None,
            peer,
            serial,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            owed: 0,
            overflow: None,
            barrier: OptU64::NONE,
            closing: None,
            read_closed: false,
            paused_on_output: false,
            queued_write: false,
            writable_armed: false,
            opened: now,
            last_active: now,
            input_since: OptU64::NONE,
            timer_at: OptU64::NONE,
            bytes_in: 0,
            bytes_out: 0,
            budget_turn: 0,
            read_in_turn: 0,
            written_in_turn: 0,
        }
    }

    /// Whether the connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether a TLS handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// Starts TLS: the input read so far is the start of the handshake, and
    /// is handed to the session. What follows is read through it.
    pub fn start_tls(&mut self, config: &Arc<ServerConfig>) -> io::Result<()> {
        let result = TlsSession::start(config, &self.inbuf);
        self.consume_input(self.inbuf.len());
        let mut tls = Box::new(result?);
        // The server's first flight goes out with the turn's writes.
        if tls.wants_write() {
            let _ = tls.write_pending(&mut self.socket);
        }
        self.tls = Some(tls);
        Ok(())
    }

    /// Reads input into `buf`: what the socket gives, or over TLS the
    /// plaintext it decrypts to. Counts the bytes taken from the socket in
    /// `bytes_in` and the turn's read budget. `Ok(0)`: the peer closed.
    /// `Interrupted`: TLS took bytes in that gave no plaintext yet (call
    /// again, within the read budget). `InvalidData`: a TLS protocol error
    /// (its alert is sent if the socket takes it).
    pub fn read_input(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            let n = self.socket.read(buf)?;
            self.read_in_turn = self.read_in_turn.saturating_add(clamp_u32(n));
            self.bytes_in += n as u64;
            return Ok(n);
        };
        let mut ciphertext = 0;
        let result = tls.read(&mut self.socket, buf, &mut ciphertext);
        self.read_in_turn = self.read_in_turn.saturating_add(clamp_u32(ciphertext));
        self.bytes_in += ciphertext as u64;
        if let Err(e) = &result {
            if e.kind() == io::ErrorKind::InvalidData {
                let _ = tls.write_pending(&mut self.socket);
            }
        }
        result
    }

    /// Before an orderly close: over TLS, `close_notify`; then the socket's
    /// sending side is shut and what the peer already sent is read and
    /// dropped (bounded), so the kernel does not answer it with a reset
    /// that could destroy replies the client has not read yet.
    pub fn close_gently(&mut self, scratch: &mut [u8]) {
        if let Some(tls) = &mut self.tls {
            tls.close_notify(&mut self.socket);
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
        for _ in 0..16 {
            match self.socket.read(scratch) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }

    /// Bytes owed to the client (written into the output or held in a
    /// reply slot) and not yet taken by the socket.
    pub fn owed(&self) -> usize {
        self.owed
    }

    /// Starts the per-turn budgets afresh if `turn` is a new turn.
    pub fn enter_turn(&mut self, turn: u64) {
        // The turn's low 32 bits: only compared for equality, and a
        // connection seen again exactly 2^32 turns later keeps the counts
        // of that turn, which can only end its budget early.
        let turn = turn as u32;
        if self.budget_turn != turn {
            self.budget_turn = turn;
            self.read_in_turn = 0;
            self.written_in_turn = 0;
        }
    }

    /// Bytes in the output buffer the socket has not taken yet.
    pub fn pending_output(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Whether requests may be read and run now. Not while an earlier
    /// request's effect must be seen first, nor while the client leaves
    /// `pause_bytes` of output unread (flow control).
    pub fn accepts_requests(&self, pause_bytes: usize) -> bool {
        self.barrier.is_none()
            && self.closing.is_none()
            && self.overflow.is_none()
            && self.owed < pause_bytes
    }

    /// THE enqueue point: appends what `write` renders to the output and
    /// counts it against the caps. Past the connection's cap, `overflow`
    /// is set and the server closes the connection.
    pub fn queue<R>(
        &mut self,
        budget: &mut OutputBudget,
        write: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> R {
        bufpool::ensure(&mut self.out);
        let before = self.out.len();
        let result = write(&mut self.out);
        self.count(budget, self.out.len() - before);
        result
    }

    /// Renders output that must wait for earlier replies into a buffer of
    /// its own, counted like queued output; [`Conn::release_held`] moves it
    /// into the output later without counting it again.
    pub fn hold<R>(
        &mut self,
        budget: &mut OutputBudget,
        write: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> (Vec<u8>, R) {
        let mut held = Vec::new();
        let result = write(&mut held);
        self.count(budget, held.len());
        (held, result)
    }

    /// Appends output rendered earlier by [`Conn::hold`].
    pub fn release_held(&mut self, held: &[u8]) {
        bufpool::ensure(&mut self.out);
        self.out.extend_from_slice(held);
    }

    /// Counts `n` new bytes. One item written into an empty queue never
    /// overflows it (a SYNC reply may be larger than a small cap); anything
    /// on top of unwritten output past the cap does.
    fn count(&mut self, budget: &mut OutputBudget, n: usize) {
        let before = self.owed;
        self.owed += n;
        budget.add(n);
        if self.owed > budget.per_conn && before > 0 && self.overflow.is_none() {
            self.overflow = Some(CloseReason::SlowConsumer);
        }
    }

    /// Gives the connection's share of the budget back (it is closing).
    pub fn forget_output(&mut self, budget: &mut OutputBudget) {
        budget.sub(self.owed);
        self.owed = 0;
    }

    /// Writes output until the socket is full, everything is written, or
    /// `max_bytes` were written in this call. When all is written the
    /// buffer is freed, so idle connections hold no buffer memory. Over
    /// TLS, output counts as written once rustls took it (it takes more
    /// only when its ciphertext is on the socket), and "all" means its
    /// ciphertext (handshake messages too) is written as well.
    pub fn flush(&mut self, budget: &mut OutputBudget, max_bytes: usize) -> io::Result<Flushed> {
        let mut written = 0;
        let result = loop {
            if self.out_pos >= self.out.len() {
                break match &mut self.tls {
                    None => Ok(Flushed::All),
                    Some(tls) => match tls.write_pending(&mut self.socket) {
                        Ok(true) => Ok(Flushed::All),
                        Ok(false) => Ok(Flushed::Blocked),
                        Err(e) => Err(e),
                    },
                };
            }
            if written >= max_bytes {
                break Ok(Flushed::Budget);
            }
            let end = self.out.len().min(self.out_pos + (max_bytes - written));
            let chunk = &self.out[self.out_pos..end];
            let wrote = match &mut self.tls {
                None => self.socket.write(chunk),
                Some(tls) => tls.write(&mut self.socket, chunk),
            };
            match wrote {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_pos += n;
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        self.owed -= written;
        self.bytes_out += written as u64;
        budget.sub(written);
        match result {
            Ok(Flushed::All) => {
                bufpool::release(&mut self.out);
                self.out_pos = 0;
            }
            Ok(_) if self.out_pos >= COMPACT_AFTER => {
                self.out.drain(..self.out_pos);
                self.out_pos = 0;
            }
            _ => {}
        }
        result
    }

    /// Drops parsed input; frees the buffer when nothing is left.
    pub fn consume_input(&mut self, n: usize) {
        if n >= self.inbuf.len() {
            bufpool::release(&mut self.inbuf);
            self.input_since = OptU64::NONE;
        } else {
            self.inbuf.drain(..n);
        }
    }
}

/// A request whose reply is not written yet, or is written but waits for
/// an earlier one. `C` is the door's reply context (a line tag, an HTTP
/// endpoint and keep-alive choice).
struct Slot<C> {
    seq: u64,
    ctx: C,
    done: Option<Vec<u8>>,
}

/// Replies in request order: a reply that is ready before an earlier one
/// is rendered and held in its slot until the earlier ones are written.
pub struct ReplySlots<C> {
    slots: VecDeque<Slot<C>>,
}

impl<C> Default for ReplySlots<C> {
    fn default() -> Self {
        ReplySlots {
            slots: VecDeque::new(),
        }
    }
}

impl<C> ReplySlots<C> {
    /// Whether no reply is pending, so a new one may be written straight to
    /// the output.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Reserves the place of a reply that comes later.
    pub fn defer(&mut self, seq: u64, ctx: C) {
        self.slots.push_back(Slot {
            seq,
            ctx,
            done: None,
        });
    }

    /// Writes a reply that is ready now, in order behind any earlier reply
    /// still pending. `render` writes it and says what follows it.
    pub fn reply_now<R>(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        seq: u64,
        ctx: C,
        render: impl FnOnce(&C, &mut Vec<u8>) -> R,
    ) -> R {
        if self.slots.is_empty() {
            return conn.queue(budget, |out| render(&ctx, out));
        }
        let (done, after) = conn.hold(budget, |out| render(&ctx, out));
        self.slots.push_back(Slot {
            seq,
            ctx,
            done: Some(done),
        });
        after
    }

    /// Fills in a deferred reply. Returns `None` if there is no such
    /// request (it belonged to an earlier connection with this id).
    pub fn complete<R>(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        seq: u64,
        render: impl FnOnce(&C, &mut Vec<u8>) -> R,
    ) -> Option<R> {
        let index = self
            .slots
            .iter()
            .position(|s| s.seq == seq && s.done.is_none())?;
        let after = if index == 0 {
            // The usual case: the oldest reply is ready; write it in place.
            let slot = self.slots.pop_front().expect("index 0 exists");
            conn.queue(budget, |out| render(&slot.ctx, out))
        } else {
            let (done, after) = conn.hold(budget, |out| render(&self.slots[index].ctx, out));
            self.slots[index].done = Some(done);
            after
        };
        if conn.barrier.get() == Some(seq) {
            conn.barrier = OptU64::NONE;
        }
        while self.slots.front().is_some_and(|s| s.done.is_some()) {
            let slot = self.slots.pop_front().expect("front exists");
            conn.release_held(&slot.done.expect("checked"));
        }
        Some(after)
    }
}
