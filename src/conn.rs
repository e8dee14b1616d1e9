//! One client connection: its socket, which door it speaks, its unread
//! input, its bounded output, and the order its replies must go out in.
//! Nothing here knows what a command means.

use crate::bufpool;
use crate::error::CloseReason;
use crate::http::HttpState;
use crate::line::framer::Framer;
use crate::request::{Call, Reply};
use mio::net::TcpStream;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;

/// What the connection speaks.
pub enum Door {
    /// No complete first line yet.
    Sniffing,
    Line(Framer),
    Http(HttpState),
}

/// How a deferred reply is to be written, decided by the door when the
/// request was read.
pub enum ReplyContext {
    /// Line protocol: the request's `tag`, echoed on the reply.
    Line(Option<Box<RawValue>>),
    Http(crate::http::ReplyContext),
    /// A request the server runs for the connection itself (the `/sync`
    /// acknowledgement once its reply is written): no reply is written.
    Internal,
}

/// What the connection must do once a reply is written.
#[derive(Default)]
pub struct AfterReply {
    /// Close once the output is flushed (QUIT, HTTP `Connection: close`).
    pub close: bool,
    /// A request to run once the reply has fully reached the socket (HTTP
    /// `/sync` acknowledges what it returned only then).
    pub once_flushed: Option<Call<'static>>,
}

impl ReplyContext {
    /// Renders `reply` and says what follows it.
    pub fn render(&self, reply: &Reply, out: &mut Vec<u8>) -> AfterReply {
        match self {
            ReplyContext::Line(tag) => {
                crate::line::render::reply_line(out, reply, tag.as_deref());
                AfterReply {
                    close: matches!(reply, Reply::Bye),
                    once_flushed: None,
                }
            }
            ReplyContext::Http(ctx) => ctx.render(reply, out),
            ReplyContext::Internal => AfterReply::default(),
        }
    }
}

/// A request whose reply is not written yet, or is written but waits for
/// an earlier one.
struct Slot {
    seq: u64,
    ctx: ReplyContext,
    done: Option<Vec<u8>>,
}

/// Written bytes kept at the front of a partly written buffer before they
/// are dropped.
const COMPACT_AFTER: usize = 64 * 1024;

pub struct Conn {
    pub socket: TcpStream,
    pub peer: SocketAddr,
    pub door: Door,
    /// Bytes read but not yet parsed. Emptied (and freed) when all is parsed.
    pub inbuf: Vec<u8>,
    out: Vec<u8>,
    /// How much of `out` the socket has taken.
    out_pos: usize,
    /// Replies in request order that are not yet in `out`.
    slots: VecDeque<Slot>,
    /// A request the next one must wait for (LOGIN binds the connection, for
    /// example), by sequence number.
    pub barrier: Option<u64>,
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
    /// Requests to run once the output is fully written.
    pub once_flushed: Vec<Call<'static>>,
}

impl Conn {
    pub fn new(socket: TcpStream, peer: SocketAddr) -> Conn {
        Conn {
            socket,
            peer,
            door: Door::Sniffing,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            slots: VecDeque::new(),
            barrier: None,
            closing: None,
            read_closed: false,
            paused_on_output: false,
            queued_write: false,
            writable_armed: false,
            once_flushed: Vec::new(),
        }
    }

    /// Bytes waiting to be written.
    pub fn pending_output(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Whether requests may be read and run now. Not while work waits for
    /// the output to be written: the next request must see its effect.
    pub fn accepts_requests(&self, pause_bytes: usize) -> bool {
        self.barrier.is_none()
            && self.closing.is_none()
            && self.once_flushed.is_empty()
            && self.pending_output() < pause_bytes
    }

    /// Whether every reply owed has been written out to the socket.
    pub fn is_settled(&self) -> bool {
        self.slots.is_empty() && self.barrier.is_none() && self.pending_output() == 0
    }

    /// Writes a reply now, in order behind any earlier reply still pending.
    pub fn reply_now(&mut self, seq: u64, ctx: ReplyContext, reply: &Reply) {
        if self.slots.is_empty() {
            bufpool::ensure(&mut self.out);
            let after = ctx.render(reply, &mut self.out);
            self.apply(after);
        } else {
            let mut done = Vec::new();
            let after = ctx.render(reply, &mut done);
            self.apply(after);
            self.slots.push_back(Slot {
                seq,
                ctx,
                done: Some(done),
            });
        }
    }

    /// Reserves the place of a reply that comes later.
    pub fn defer(&mut self, seq: u64, ctx: ReplyContext) {
        self.slots.push_back(Slot {
            seq,
            ctx,
            done: None,
        });
    }

    /// Fills in a deferred reply. Returns false if this connection has no
    /// such request (it belonged to an earlier connection with this id).
    pub fn complete(&mut self, seq: u64, reply: &Reply) -> bool {
        let Some(index) = self
            .slots
            .iter()
            .position(|s| s.seq == seq && s.done.is_none())
        else {
            return false;
        };
        let after = if index == 0 {
            // The usual case: the oldest reply is ready; write it in place.
            let slot = self.slots.pop_front().expect("index 0 exists");
            bufpool::ensure(&mut self.out);
            slot.ctx.render(reply, &mut self.out)
        } else {
            let slot = &mut self.slots[index];
            let mut done = Vec::new();
            let after = slot.ctx.render(reply, &mut done);
            slot.done = Some(done);
            after
        };
        self.apply(after);
        if self.barrier == Some(seq) {
            self.barrier = None;
        }
        while self.slots.front().is_some_and(|s| s.done.is_some()) {
            let slot = self.slots.pop_front().expect("front exists");
            bufpool::ensure(&mut self.out);
            self.out.extend_from_slice(&slot.done.expect("checked"));
        }
        true
    }

    pub fn apply(&mut self, after: AfterReply) {
        if after.close && self.closing.is_none() {
            self.closing = Some(CloseReason::ClientQuit);
        }
        if let Some(call) = after.once_flushed {
            self.once_flushed.push(call);
        }
    }

    /// Whether no reply is pending, so a new one may be written straight to
    /// the output buffer.
    pub fn in_order(&self) -> bool {
        self.slots.is_empty()
    }

    /// Output buffer for events (pushes), which need no reply slot, and for
    /// replies written while [`Conn::in_order`].
    pub fn out_mut(&mut self) -> &mut Vec<u8> {
        bufpool::ensure(&mut self.out);
        &mut self.out
    }

    /// Writes as much output as the socket takes. Returns true when all of
    /// it is written; the buffer is then freed, so idle connections hold no
    /// buffer memory.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.out_pos < self.out.len() {
            match self.socket.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.out_pos >= COMPACT_AFTER {
                        self.out.drain(..self.out_pos);
                        self.out_pos = 0;
                    }
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        bufpool::release(&mut self.out);
        self.out_pos = 0;
        Ok(true)
    }

    /// Drops parsed input; frees the buffer when nothing is left.
    pub fn consume_input(&mut self, n: usize) {
        if n >= self.inbuf.len() {
            bufpool::release(&mut self.inbuf);
        } else {
            self.inbuf.drain(..n);
        }
    }
}
