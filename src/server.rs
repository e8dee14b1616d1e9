//! The event loop: one thread, one `mio::Poll`. It accepts connections,
//! reads and runs requests through the doors, carries out the core's
//! effects (replies, pushes, password jobs, store batches), and writes
//! output in one batch per connection at the end of each turn. Closing a
//! connection happens in one place, [`Server::close`].

use crate::config::limits::{OUTPUT_PAUSE_BYTES, READ_CHUNK};
use crate::config::Config;
use crate::conn::{Conn, Door, ReplyContext};
use crate::core::{Core, Handled, Outbox, Ticket};
use crate::error::CloseReason;
use crate::hasher::Hasher;
use crate::line::framer::Framer;
use crate::line::render::message_event;
use crate::request::Reply;
use crate::sniff::{sniff, DoorKind};
use crate::store::Store;
use crate::turn::Turn;
use crate::{ConnId, Millis};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LISTENER: Token = Token(0);
/// The token of the `mio::Waker` helper threads use to wake the loop.
pub const WAKER: Token = Token(1);
/// Connection ids are slab indexes; their tokens are offset past the two above.
const FIRST_CONN: usize = 2;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// The pieces the server is built from, made by `main`.
pub struct Parts {
    pub config: Config,
    pub poll: Poll,
    pub core: Core,
    pub hasher: Hasher,
    pub store: Box<dyn Store>,
}

pub struct Server {
    config: Config,
    poll: Poll,
    listener: TcpListener,
    core: Core,
    hasher: Hasher,
    store: Box<dyn Store>,
    conns: Vec<Option<Conn>>,
    free: Vec<ConnId>,
    live: usize,
    outbox: Outbox,
    next_seq: u64,
    /// Connections with new output to write at the end of the turn.
    dirty: Vec<ConnId>,
    /// Connections whose barrier lifted: run their buffered input again.
    resume: Vec<ConnId>,
    /// One read buffer for every connection; only unparsed leftovers are
    /// copied into a connection's own buffer.
    scratch: Box<[u8]>,
}

impl Server {
    /// Binds the listening socket.
    pub fn bind(parts: Parts) -> io::Result<Server> {
        let mut listener = TcpListener::bind(parts.config.listen)?;
        parts
            .poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            config: parts.config,
            poll: parts.poll,
            listener,
            core: parts.core,
            hasher: parts.hasher,
            store: parts.store,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            outbox: Outbox::default(),
            next_seq: 0,
            dirty: Vec::new(),
            resume: Vec::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs the loop forever.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = now_ms();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.collect_background(now),
                    Token(t) => {
                        let id = t - FIRST_CONN;
                        if event.is_writable() {
                            self.mark_dirty(id);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(id, now);
                        }
                        if event.is_read_closed() {
                            // Also while a barrier keeps its input unread.
                            self.core.peer_closed(id, now, &mut self.outbox);
                        }
                    }
                }
            }
            self.core.tick(now, &mut self.outbox);
            // Effects can lift barriers and flushes can resume paused
            // connections; go on until the turn has nothing left to do.
            loop {
                self.settle(now);
                self.write_all();
                if self.is_quiet() {
                    break;
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let deadline = self.core.next_deadline();
        if deadline == Millis::MAX {
            return None;
        }
        Some(Duration::from_millis(deadline.saturating_sub(now_ms()) + 1))
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut socket, peer)) => {
                    if self.live >= self.config.max_connections {
                        log::warn!("refusing {peer}: {:?}", CloseReason::ServerFull);
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    let id = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    let registered = self.poll.registry().register(
                        &mut socket,
                        Token(id + FIRST_CONN),
                        Interest::READABLE,
                    );
                    if let Err(e) = registered {
                        log::error!("cannot watch connection from {peer}: {e}");
                        self.free.push(id);
                        continue;
                    }
                    log::debug!("connection {id} from {peer}");
                    self.core.open_connection(id, peer.ip());
                    self.conns[id] = Some(Conn::new(socket, peer));
                    self.live += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors, for example: log and go on.
                    log::error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Password results and store commits that arrived.
    fn collect_background(&mut self, now: Millis) {
        while let Ok(done) = self.hasher.results.try_recv() {
            self.core.on_hash_done(done, now, &mut self.outbox);
        }
        while let Some(done) = self.store.completed() {
            self.core.on_committed(done, now, &mut self.outbox);
        }
    }

    /// Runs buffered input, then reads the socket until it would block or
    /// the connection must not take more requests now.
    fn read(&mut self, id: ConnId, now: Millis) {
        self.process_input(id, now);
        loop {
            let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
                return;
            };
            if conn.read_closed {
                break;
            }
            if !conn.accepts_requests(OUTPUT_PAUSE_BYTES) {
                // Flow control: a client that does not read its replies is
                // not read from until it does.
                conn.paused_on_output = conn.pending_output() >= OUTPUT_PAUSE_BYTES;
                break;
            }
            match conn.socket.read(&mut self.scratch) {
                Ok(0) => {
                    conn.read_closed = true;
                    self.core.peer_closed(id, now, &mut self.outbox);
                    if !conn.inbuf.is_empty() {
                        // A request is a whole line: a client that stopped
                        // mid-line (it may have crashed mid-write) did not
                        // finish asking, so nothing of it is run.
                        log::debug!(
                            "connection {id}: closed with {} bytes of an unfinished request, ignored",
                            conn.inbuf.len()
                        );
                    }
                    break;
                }
                Ok(n) => {
                    crate::bufpool::ensure(&mut conn.inbuf);
                    conn.inbuf.extend_from_slice(&self.scratch[..n]);
                    self.process_input(id, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("connection {id}: read error {e}");
                    return self.close(id, CloseReason::IoError);
                }
            }
        }
        self.mark_dirty(id);
    }

    /// Queues the connection for the end-of-turn write, once.
    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) {
            if !conn.queued_write {
                conn.queued_write = true;
                self.dirty.push(id);
            }
        }
    }

    /// Hands the connection's unparsed input to its door.
    fn process_input(&mut self, id: ConnId, now: Millis) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if let Door::Sniffing = conn.door {
            match sniff(&conn.inbuf) {
                None => return,
                Some(DoorKind::Line) => {
                    conn.door = Door::Line(Framer::new(self.config.max_line));
                    self.core.open_session(id);
                }
                Some(DoorKind::Http) => conn.door = Door::Http(Default::default()),
            }
        }
        let mut turn = Turn::new(
            &mut self.core,
            &mut self.outbox,
            &self.config,
            now,
            &mut self.next_seq,
        );
        match conn.door {
            Door::Line(_) => crate::line::door::process(id, conn, &mut turn),
            Door::Http(_) => crate::http::process(id, conn, &mut turn),
            Door::Sniffing => unreachable!("decided above"),
        }
        if !conn.queued_write {
            conn.queued_write = true;
            self.dirty.push(id);
        }
    }

    /// Carries out the core's effects until nothing more follows from them
    /// this turn: replies, pushes, password jobs, the store batch and, with
    /// an immediate store, its commit.
    fn settle(&mut self, now: Millis) {
        loop {
            for job in self.outbox.hash_jobs.drain(..) {
                self.hasher.submit(job);
            }
            let replies = std::mem::take(&mut self.outbox.replies);
            for (ticket, reply) in &replies {
                self.deliver_reply(ticket.conn, ticket.seq, reply);
            }
            let pushes = std::mem::take(&mut self.outbox.pushes);
            for (id, message) in &pushes {
                self.push(*id, message);
            }
            if let Some(batch) = self.core.take_batch() {
                self.store.submit(batch);
            }
            while let Some(done) = self.store.completed() {
                self.core.on_committed(done, now, &mut self.outbox);
            }
            let resume = std::mem::take(&mut self.resume);
            for &id in &resume {
                self.read(id, now);
            }
            if self.is_quiet() {
                return;
            }
        }
    }

    /// Whether no effect or resumed connection waits to be handled.
    fn is_quiet(&self) -> bool {
        self.resume.is_empty()
            && self.outbox.replies.is_empty()
            && self.outbox.pushes.is_empty()
            && self.outbox.hash_jobs.is_empty()
            && !self.core.has_open_writes()
    }

    fn deliver_reply(&mut self, id: ConnId, seq: u64, reply: &Reply) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let had_barrier = conn.barrier.is_some();
        if conn.complete(seq, reply) {
            if had_barrier && conn.barrier.is_none() {
                self.resume.push(id);
            }
            if !conn.queued_write {
                conn.queued_write = true;
                self.dirty.push(id);
            }
        }
    }

    fn push(&mut self, id: ConnId, message: &crate::message::Message) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if !matches!(conn.door, Door::Line(_)) || conn.closing.is_some() {
            return;
        }
        message_event(conn.out_mut(), message);
        if conn.pending_output() > self.config.max_output {
            log::warn!(
                "connection {id} ({}) reads too slowly: {} bytes queued; disconnecting (its messages stay in the mailbox)",
                conn.peer,
                conn.pending_output()
            );
            return self.close(id, CloseReason::SlowConsumer);
        }
        if !conn.queued_write {
            conn.queued_write = true;
            self.dirty.push(id);
        }
    }

    /// Writes every connection's new output, arms WRITABLE where the socket
    /// is full, runs work owed once output is flushed, and closes what is done.
    fn write_all(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            self.write(id);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty; // keep the allocation for the next turn
        }
    }

    fn write(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        conn.queued_write = false;
        let flushed = match conn.flush() {
            Ok(flushed) => flushed,
            Err(e) => {
                log::debug!("connection {id}: write error {e}");
                return self.close(id, CloseReason::IoError);
            }
        };
        if flushed && !conn.once_flushed.is_empty() {
            let calls = std::mem::take(&mut conn.once_flushed);
            let now = now_ms();
            for call in calls {
                self.next_seq += 1;
                let ticket = Ticket {
                    conn: id,
                    seq: self.next_seq,
                };
                // Nobody reads this reply, but the connection's next request
                // waits for it: an HTTP /sync must not return again what the
                // acknowledgement being stored covers.
                if let Handled::Later { .. } = self.core.handle(ticket, call, now, &mut self.outbox)
                {
                    conn.defer(ticket.seq, ReplyContext::Internal);
                    conn.barrier = Some(ticket.seq);
                }
            }
            // It took no requests while this work was owed.
            self.resume.push(id);
        }
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if flushed && conn.is_settled() && !conn.paused_on_output {
            if let Some(reason) = conn.closing {
                return self.close(id, reason);
            }
            if conn.read_closed {
                return self.close(id, CloseReason::PeerClosed);
            }
        }
        if flushed && conn.paused_on_output {
            // The client read its replies: take its requests again.
            conn.paused_on_output = false;
            self.resume.push(id);
        }
        let want_writable = !flushed;
        if want_writable != conn.writable_armed {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(id + FIRST_CONN);
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.socket, token, interest)
            {
                log::error!("connection {id}: cannot change interest: {e}");
                return self.close(id, CloseReason::IoError);
            }
            conn.writable_armed = want_writable;
        }
    }

    /// The one place a connection is closed.
    fn close(&mut self, id: ConnId, reason: CloseReason) {
        let Some(mut conn) = self.conns.get_mut(id).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.socket);
        self.core.close_session(id);
        self.free.push(id);
        self.live -= 1;
        log::debug!("connection {id} from {} closed: {reason:?}", conn.peer);
    }
}
