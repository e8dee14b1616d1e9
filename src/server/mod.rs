//! The event loop: one thread, one `mio::Poll`. This file holds the
//! server's state, the turn (poll, then dispatch each event, then settle
//! effects and write until nothing is left) and the one place a connection
//! is closed, [`Server::close`]. The jobs of a turn each have a file:
//!
//! - [`accept`]: taking connections in, within their budgets;
//! - [`read`]: reading sockets and handing input to the doors;
//! - [`effects`]: the core's effects (replies, pushes, events, password
//!   jobs, store batches) and background results (password checks, store
//!   commits and reads, figures requests, stop signals);
//! - [`write`]: the write pass at the end of a turn, and the output budget;
//! - [`clock`]: deadlines that passed, and the graceful stop;
//! - [`edge`]: PROXY headers and the TLS handshake rate.
//!
//! The loop knows no door's rules: it asks the connection's
//! [`Door`](crate::doors::Door), which hands each question to its door.

mod accept;
mod admin;
mod clock;
mod edge;
mod effects;
#[cfg(test)]
mod footprint_tests;
mod read;
mod shares;
mod write;

use crate::accept_budget::PerAddress;
use crate::config::limits::READ_CHUNK;
use crate::config::Config;
use crate::conn::{Conn, OutputBudget};
use crate::core::{Core, Outbox};
use crate::door::{Progress, Timeouts};
use crate::doors::Door;
use crate::error::CloseReason;
use crate::hasher::Hasher;
use crate::log_limit::LogLimit;
use crate::metrics::StatsRequest;
use crate::signals::StopSignal;
use crate::store::Store;
use crate::timers::Timers;
use crate::{ConnId, Millis};
use clock::Stopping;
use edge::{Edge, EdgeState};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

const LISTENER: Token = Token(0);
/// The token of the `mio::Waker` helper threads use to wake the loop.
pub const WAKER: Token = Token(1);
pub use admin::ADMIN_CONNS;
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
    /// The client port, bound (and non-blocking) before anything else.
    pub listener: TcpListener,
    pub config: Config,
    pub poll: Poll,
    pub core: Core,
    pub hasher: Hasher,
    pub store: Box<dyn Store>,
    /// Requests from the metrics listener's thread, when it runs.
    pub stats_requests: Option<crossbeam_channel::Receiver<StatsRequest>>,
    /// Stop signals from the signal thread, when it runs.
    pub stop_signals: Option<crossbeam_channel::Receiver<StopSignal>>,
    /// The TLS configuration, with `--tls-cert` and `--tls-key`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Files read again after SIGHUP, from the reload thread.
    pub reloads: Option<crossbeam_channel::Receiver<crate::reload::Reloaded>>,
    /// Requests from the admin socket's threads, when it is open.
    pub admin_calls: Option<crossbeam_channel::Receiver<crate::admin::listener::AdminCall>>,
}

/// One connection: its transport, its door, and who its client is.
struct Client {
    conn: Conn,
    door: Door,
    edge: Edge,
    /// Its read rate (`--read-bytes-per-second`).
    shaper: crate::read_shaping::ReadShaper,
}

impl Client {
    /// Whether every reply owed has been written out to the socket.
    fn is_settled(&self) -> bool {
        self.door.is_settled() && self.conn.barrier.is_none() && self.conn.owed() == 0
    }

    /// Where the connection stands, for its door's deadline.
    fn progress(&self, logged_in: bool, proxy_protocol: bool) -> Progress {
        let conn = &self.conn;
        Progress {
            opened: conn.opened,
            input_since: conn.input_since.get(),
            last_active: conn.last_active,
            barrier: conn.barrier.is_some(),
            handshaking: conn.is_handshaking(),
            logged_in,
            awaits_header: self.edge.awaits_header(proxy_protocol),
        }
    }
}

/// Warnings an attacker can repeat, each logged at most every few seconds.
struct Warnings {
    server_full: LogLimit,
    address_full: LogLimit,
    accept_failed: LogLimit,
    slow_consumer: LogLimit,
    output_budget: LogLimit,
    storm_list_full: LogLimit,
}

impl Default for Warnings {
    fn default() -> Warnings {
        const EVERY_MS: Millis = 10_000;
        Warnings {
            server_full: LogLimit::new(EVERY_MS),
            address_full: LogLimit::new(EVERY_MS),
            accept_failed: LogLimit::new(EVERY_MS),
            slow_consumer: LogLimit::new(EVERY_MS),
            output_budget: LogLimit::new(EVERY_MS),
            storm_list_full: LogLimit::new(EVERY_MS),
        }
    }
}

pub struct Server {
    config: Config,
    /// The doors' time limits, from `config`.
    timeouts: Timeouts,
    poll: Poll,
    /// `None` once stopping: the port is closed so new clients are refused.
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    core: Core,
    hasher: Hasher,
    store: Box<dyn Store>,
    clients: Vec<Option<Client>>,
    free: Vec<ConnId>,
    live: usize,
    /// Open connections per client address (IPv6 by /64).
    per_address: PerAddress,
    next_serial: u64,
    outbox: Outbox,
    next_seq: u64,
    budget: OutputBudget,
    timers: Timers,
    /// Accepting paused (out of file descriptors) until then.
    accept_paused_until: Option<Millis>,
    /// This turn's accept budget ran out: accept again next turn.
    accept_more: bool,
    /// Connections with new output to write at the end of the turn.
    dirty: Vec<ConnId>,
    /// Connections whose barrier lifted: run their buffered input again.
    resume: Vec<ConnId>,
    /// Connections that spent their read or write budget this turn and go
    /// on in the next one.
    next_turn_reads: Vec<ConnId>,
    next_turn_writes: Vec<ConnId>,
    /// Bytes written to all connections in this turn.
    written_this_turn: usize,
    /// Counts loop turns, for the per-connection budgets.
    turn: u64,
    /// One read buffer for every connection; only unparsed leftovers are
    /// copied into a connection's own buffer.
    scratch: Box<[u8]>,
    stats_requests: Option<crossbeam_channel::Receiver<StatsRequest>>,
    warnings: Warnings,
    /// Connections closed, by reason (for metrics).
    closed: HashMap<&'static str, u64>,
    /// Connections refused when accepted, by reason (for metrics).
    refused: HashMap<&'static str, u64>,
    stop_signals: Option<crossbeam_channel::Receiver<StopSignal>>,
    stopping: Option<Stopping>,
    /// Swapped by a reload; open TLS sessions keep the one they started with.
    tls: Option<Arc<rustls::ServerConfig>>,
    reloads: Option<crossbeam_channel::Receiver<crate::reload::Reloaded>>,
    /// PROXY headers and the TLS handshake rate ([`edge`]).
    edge: EdgeState,
    /// New connections per address, read shaping ([`shares`]).
    shares: shares::ShareState,
    /// Admin requests ([`admin`]).
    admin: admin::AdminRequests,
}

impl Server {
    /// Watches the listening socket and builds the server around it.
    pub fn new(parts: Parts) -> io::Result<Server> {
        let mut listener = parts.listener;
        parts
            .poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let budget = OutputBudget::new(parts.config.max_output_total, parts.config.max_output);
        let local_addr = listener.local_addr()?;
        let edge = EdgeState::new(&parts.config);
        let shares = shares::ShareState::new(&parts.config);
        Ok(Server {
            timeouts: Timeouts::of(&parts.config),
            config: parts.config,
            poll: parts.poll,
            listener: Some(listener),
            local_addr,
            core: parts.core,
            hasher: parts.hasher,
            store: parts.store,
            clients: Vec::new(),
            free: Vec::new(),
            live: 0,
            per_address: PerAddress::default(),
            next_serial: 0,
            outbox: Outbox::default(),
            next_seq: 0,
            budget,
            timers: Timers::default(),
            accept_paused_until: None,
            accept_more: false,
            dirty: Vec::new(),
            resume: Vec::new(),
            next_turn_reads: Vec::new(),
            next_turn_writes: Vec::new(),
            written_this_turn: 0,
            turn: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            stats_requests: parts.stats_requests,
            warnings: Warnings::default(),
            closed: HashMap::new(),
            refused: HashMap::new(),
            stop_signals: parts.stop_signals,
            stopping: None,
            tls: parts.tls,
            reloads: parts.reloads,
            edge,
            shares,
            admin: admin::AdminRequests::new(parts.admin_calls),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    /// Runs the loop until a graceful stop has finished.
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
            self.written_this_turn = 0;
            self.turn += 1;
            self.carry_over(now);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
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
                            self.peer_closed(id, now);
                        }
                    }
                }
            }
            if self.accept_paused_until.is_some_and(|t| now >= t) {
                self.accept_paused_until = None;
                self.accept(now);
            }
            self.core.tick(now, &mut self.outbox);
            self.expire(now);
            // Effects can lift barriers and flushes can resume paused
            // connections; go on until the turn has nothing left to do.
            loop {
                self.settle(now);
                self.write_all(now);
                if self.budget.over {
                    self.relieve_output_budget(now);
                }
                if self.is_quiet() {
                    break;
                }
            }
            if self.stopping.is_some() && self.stop_finished(now) {
                return Ok(());
            }
        }
    }

    /// Connections that spent their budget last turn go on now.
    fn carry_over(&mut self, now: Millis) {
        if std::mem::take(&mut self.accept_more) {
            self.accept(now);
        }
        for id in std::mem::take(&mut self.next_turn_writes) {
            self.mark_dirty(id);
        }
        for id in std::mem::take(&mut self.next_turn_reads) {
            self.read(id, now);
        }
    }

    fn client(&mut self, id: ConnId) -> Option<&mut Client> {
        self.clients.get_mut(id).and_then(Option::as_mut)
    }

    /// The client sends no more: a long-poll it waits on is answered now,
    /// so it can close (also while a barrier keeps its input unread).
    fn peer_closed(&mut self, id: ConnId, now: Millis) {
        if self.clients.get(id).is_some_and(Option::is_some) {
            self.core.peer_closed(id, now, &mut self.outbox);
        }
    }

    /// Queues the connection for the end-of-turn write, once.
    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) {
            queue_write(&mut self.dirty, id, &mut client.conn);
        }
    }

    /// The one place a connection is closed.
    fn close(&mut self, id: ConnId, reason: CloseReason) {
        let Some(Client { mut conn, door, .. }) = self.clients.get_mut(id).and_then(Option::take)
        else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.socket);
        if !conn.read_closed && reason.is_orderly() {
            conn.close_gently(&mut self.scratch);
        }
        conn.forget_output(&mut self.budget);
        self.core.close_session(id);
        self.free.push(id);
        self.live -= 1;
        self.per_address.remove(conn.peer.ip());
        *self.closed.entry(reason.name()).or_insert(0) += 1;
        log::debug!(
            "connection {id} ({} door) from {} closed after {} ms: {}, {} bytes in, {} bytes out",
            door.name(),
            conn.peer,
            now_ms().saturating_sub(conn.opened),
            reason.name(),
            conn.bytes_in,
            conn.bytes_out
        );
    }
}

/// Puts connection `id` on the end-of-turn write list `dirty`, once: the
/// one step every piece of new output ends with.
#[inline]
fn queue_write(dirty: &mut Vec<ConnId>, id: ConnId, conn: &mut Conn) {
    if !conn.queued_write {
        conn.queued_write = true;
        dirty.push(id);
    }
}

/// Tells a connection that is not taken in why, in one line (before its
/// door is known, in the words [`Door::refusal`] picks); the caller then
/// drops it.
fn refuse(socket: &mut TcpStream, why: &str) {
    // A fresh socket's buffer takes one line; if it does not, the client
    // only misses the reason.
    let _ = socket.write(&Door::refusal(why));
}
