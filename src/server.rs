//! The event loop: one thread, one `mio::Poll`. It accepts connections
//! within their budgets, reads and runs requests through the doors, carries
//! out the core's effects (replies, pushes, password jobs, store batches),
//! writes output in one batch per connection at the end of each turn, and
//! closes connections whose deadline passed. On SIGTERM or SIGINT it stops
//! gracefully (see [`Server::begin_stop`]). The connection layer
//! ([`Conn`]) knows no door; the [`Door`] enum here dispatches to the one a
//! connection speaks. Closing a connection happens in one place,
//! [`Server::close`].

mod edge;

use crate::accept_budget::PerAddress;
use crate::config::limits::{
    ACCEPTS_PER_TURN, ACCEPT_RETRY_MS, OUTPUT_PAUSE_BYTES, OUTPUT_TOTAL_RELIEF_PERCENT,
    READ_BUDGET_PER_TURN, READ_CHUNK, TOTAL_WRITE_BUDGET_PER_TURN, WRITE_BUDGET_PER_TURN,
};
use crate::config::Config;
use crate::conn::{Conn, Flushed, OutputBudget};
use crate::core::{Core, Outbox};
use crate::error::CloseReason;
use crate::figures::{Figures, ServerFigures};
use crate::hasher::Hasher;
use crate::http::HttpDoor;
use crate::line::door::{self as line_door, LineDoor};
use crate::log_limit::LogLimit;
use crate::metrics::{Format, StatsRequest};
use crate::request::Reply;
use crate::signals::StopSignal;
use crate::sniff::{sniff, DoorKind};
use crate::store::Store;
use crate::timers::Timers;
use crate::turn::Turn;
use crate::{ConnId, Millis};
use edge::{Edge, EdgeState};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
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
}

/// A graceful stop in progress.
struct Stopping {
    signal: StopSignal,
    started: Millis,
    deadline: Millis,
}

/// What a connection speaks.
enum Door {
    /// No complete first line yet.
    Sniffing,
    Line(LineDoor),
    Http(HttpDoor),
}

impl Door {
    fn is_settled(&self) -> bool {
        match self {
            Door::Sniffing => true,
            Door::Line(door) => door.is_settled(),
            Door::Http(door) => door.is_settled(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Door::Sniffing => "sniffing",
            Door::Line(_) => "line",
            Door::Http(_) => "http",
        }
    }
}

/// One connection: its transport, its door, and who its client is.
struct Client {
    conn: Conn,
    door: Door,
    edge: Edge,
}

impl Client {
    /// Whether every reply owed has been written out to the socket.
    fn is_settled(&self) -> bool {
        self.door.is_settled() && self.conn.barrier.is_none() && self.conn.owed() == 0
    }
}

/// Warnings an attacker can repeat, each logged at most every few seconds.
struct Warnings {
    server_full: LogLimit,
    address_full: LogLimit,
    accept_failed: LogLimit,
    slow_consumer: LogLimit,
    output_budget: LogLimit,
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
        }
    }
}

pub struct Server {
    config: Config,
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
    tls: Option<Arc<rustls::ServerConfig>>,
    /// PROXY headers and the TLS handshake rate ([`edge`]).
    edge: EdgeState,
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
        Ok(Server {
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
            edge,
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
                        let open = self.clients.get(id).is_some_and(Option::is_some);
                        if event.is_read_closed() && open {
                            // The client sends no more: a long-poll it
                            // waits on is answered now, so it can close (also while a
                            // barrier keeps its input unread).
                            self.core.peer_closed(id, now, &mut self.outbox);
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

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.next_turn_reads.is_empty() || !self.next_turn_writes.is_empty() || self.accept_more
        {
            return Some(Duration::ZERO);
        }
        let deadline = self
            .core
            .next_deadline()
            .min(self.timers.next().unwrap_or(Millis::MAX))
            .min(self.accept_paused_until.unwrap_or(Millis::MAX))
            .min(self.stopping.as_ref().map_or(Millis::MAX, |s| s.deadline));
        if deadline == Millis::MAX {
            return None;
        }
        Some(Duration::from_millis(deadline.saturating_sub(now_ms()) + 1))
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

    // -----------------------------------------------------------------
    // Accepting
    // -----------------------------------------------------------------

    fn accept(&mut self, now: Millis) {
        for _ in 0..ACCEPTS_PER_TURN {
            if self.accept_paused_until.is_some() {
                return;
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_out_of_resources(&e) => {
                    // The backlog stays full and mio is edge-triggered: no
                    // new event would come, so try again on a timer.
                    self.warnings.accept_failed.warn(now, || {
                        format!(
                            "cannot accept connections: {e}; retrying every {ACCEPT_RETRY_MS} ms \
                             ({} open; lower --max-connections or raise the open-file limit)",
                            self.live
                        )
                    });
                    self.accept_paused_until = Some(now + ACCEPT_RETRY_MS);
                }
                // A connection that failed before it was accepted
                // (ECONNABORTED and the like): only it is lost.
                Err(e) => log::debug!("accept failed: {e}"),
            }
        }
        // The backlog may hold more: mio is edge-triggered, so come back
        // next turn rather than wait for an event that may not come.
        self.accept_more = true;
    }

    /// Takes a new connection in, or tells it why not and closes it.
    fn admit(&mut self, mut socket: TcpStream, peer: SocketAddr, now: Millis) {
        let max = self.config.max_connections;
        if self.live >= max {
            *self.refused.entry("server_full").or_insert(0) += 1;
            self.warnings.server_full.warn(now, || {
                format!("refusing connections: {max} open (--max-connections)")
            });
            return refuse(
                socket,
                "the server has too many connections; try again later",
            );
        }
        // A trusted proxy's connections count for their clients once
        // its PROXY header names them (see `edge`).
        let trusted = self.is_trusted_proxy(peer);
        if !trusted
            && !self
                .per_address
                .has_room(peer.ip(), self.config.max_connections_per_address)
        {
            let per = self.config.max_connections_per_address;
            *self.refused.entry("address_full").or_insert(0) += 1;
            self.warnings.address_full.warn(now, || {
                format!(
                    "refusing connections from {}: {per} open (--max-connections-per-address)",
                    peer.ip()
                )
            });
            return refuse(
                socket,
                &format!(
                    "too many connections from your address (at most {per}); close some first"
                ),
            );
        }
        let _ = socket.set_nodelay(true);
        crate::keepalive::enable(&socket);
        let id = self.free.pop().unwrap_or_else(|| {
            self.clients.push(None);
            self.clients.len() - 1
        });
        let registered =
            self.poll
                .registry()
                .register(&mut socket, Token(id + FIRST_CONN), Interest::READABLE);
        if let Err(e) = registered {
            log::error!("cannot watch connection from {peer}: {e}");
            self.free.push(id);
            return;
        }
        self.next_serial += 1;
        let mut conn = Conn::new(socket, peer, self.next_serial, now);
        let login_deadline = now + self.config.login_timeout.as_millis() as Millis;
        self.timers
            .arm(&mut conn.timer_at, login_deadline, id, conn.serial);
        let edge = Edge::new(trusted);
        if edge.awaits_header(self.config.proxy_protocol) {
            let header_deadline = now + self.config.request_timeout.as_millis() as Millis;
            self.timers
                .arm(&mut conn.timer_at, header_deadline, id, conn.serial);
        }
        log::debug!("connection {id} from {peer}");
        self.core.open_connection(id, peer.ip());
        self.clients[id] = Some(Client {
            conn,
            door: Door::Sniffing,
            edge,
        });
        self.per_address.add(peer.ip());
        self.live += 1;
    }

    // -----------------------------------------------------------------
    // Background work and figures
    // -----------------------------------------------------------------

    /// Password results, store commits and metrics requests that arrived.
    fn collect_background(&mut self, now: Millis) {
        while let Ok(done) = self.hasher.results.try_recv() {
            self.core.on_hash_done(done, now, &mut self.outbox);
        }
        while let Some(done) = self.store.completed() {
            self.core.on_committed(done, now, &mut self.outbox);
        }
        while let Some(done) = self.store.read_done() {
            self.core.on_read(done, now, &mut self.outbox);
        }
        while let Some(events) = self.store.remote() {
            self.core.on_remote(events, &mut self.outbox);
        }
        if let Some(requests) = &self.stats_requests {
            while let Ok(request) = requests.try_recv() {
                let _ = request.reply.send(self.figures(request.format));
            }
        }
        let signal = self.stop_signals.as_ref().and_then(|s| s.try_recv().ok());
        if let Some(signal) = signal {
            self.begin_stop(signal, now);
        }
    }

    // -----------------------------------------------------------------
    // Stopping
    // -----------------------------------------------------------------

    /// A graceful stop: the port is closed, nothing more is read from
    /// clients, requests already read run to their replies (password
    /// checks and commits in flight finish), long-polls end with their
    /// empty reply, line clients get `{"event":"shutdown"}`, and each
    /// connection closes once everything owed to it is written. The loop
    /// ends when no connection and no work is left, or at the deadline.
    fn begin_stop(&mut self, signal: StopSignal, now: Millis) {
        if self.stopping.is_some() {
            return;
        }
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.accept_paused_until = None;
        let deadline = now + self.config.shutdown_timeout.as_millis() as Millis;
        log::info!(
            "{signal}: shutting down; finishing the requests of {} connections (at most {} s)",
            self.live,
            self.config.shutdown_timeout.as_secs()
        );
        self.stopping = Some(Stopping {
            signal,
            started: now,
            deadline,
        });
        self.core.end_long_polls(&mut self.outbox);
        for id in 0..self.clients.len() {
            let Some(client) = self.clients[id].as_mut() else {
                continue;
            };
            if let Door::Line(_) = client.door {
                line_door::shutdown_event(&mut client.conn, &mut self.budget);
            }
            self.mark_dirty(id);
        }
    }

    /// Whether the stop is done (or out of time, then what is left is cut).
    fn stop_finished(&mut self, now: Millis) -> bool {
        let Some(stopping) = &self.stopping else {
            return false;
        };
        let (signal, started, deadline) = (stopping.signal, stopping.started, stopping.deadline);
        if self.live == 0 && self.core.is_idle() {
            log::info!(
                "stopped after {signal} in {} ms: every request read was answered",
                now.saturating_sub(started)
            );
            return true;
        }
        if now < deadline {
            return false;
        }
        let left = self.live;
        for id in 0..self.clients.len() {
            self.close(id, CloseReason::ShutdownTimeout);
        }
        log::warn!(
            "stopped after {signal}: --shutdown-timeout ({} s) ran out; closed {left} connections \
             that were still owed replies{}",
            self.config.shutdown_timeout.as_secs(),
            if self.core.is_idle() {
                ""
            } else {
                " (password checks or commits were still in progress)"
            }
        );
        true
    }

    /// The figures `/metrics` and `/stats` serve, in `format`.
    fn figures(&self, format: Format) -> String {
        let mut connections = BTreeMap::new();
        for (id, client) in self.clients.iter().enumerate() {
            let Some(client) = client else { continue };
            let state = match &client.door {
                Door::Sniffing => "new",
                Door::Line(_) if self.core.session_user(id).is_some() => "logged_in",
                Door::Line(_) => "anonymous",
                Door::Http(_) if client.is_settled() => "idle",
                Door::Http(_) => "request",
            };
            *connections.entry((client.door.name(), state)).or_insert(0) += 1;
        }
        let figures = Figures {
            core: &self.core,
            server: ServerFigures {
                connections,
                max_connections: self.config.max_connections,
                queued_output_bytes: self.budget.queued,
                max_output_total: self.budget.limit,
                accept_paused: self.accept_paused_until.is_some(),
                closed: &self.closed,
                refused: &self.refused,
            },
            password_seconds: self.hasher.seconds.snapshot(),
            store: self.store.metrics(),
        };
        match format {
            Format::Json => figures.json(),
            Format::Prometheus => figures.prometheus(),
        }
    }

    // -----------------------------------------------------------------
    // Reading and running requests
    // -----------------------------------------------------------------

    fn client(&mut self, id: ConnId) -> Option<&mut Client> {
        self.clients.get_mut(id).and_then(Option::as_mut)
    }

    /// Runs buffered input, then reads the socket until it would block, the
    /// connection must not take more requests now, or its read budget for
    /// this turn is spent.
    fn read(&mut self, id: ConnId, now: Millis) {
        self.process_input(id, now);
        let turn = self.turn;
        loop {
            let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
                return;
            };
            let conn = &mut client.conn;
            if conn.read_closed || self.stopping.is_some() {
                break;
            }
            if !conn.accepts_requests(OUTPUT_PAUSE_BYTES) {
                // Flow control: a client that does not read its replies is
                // not read from until it does.
                conn.paused_on_output = conn.owed() >= OUTPUT_PAUSE_BYTES;
                break;
            }
            conn.enter_turn(turn);
            if conn.read_in_turn >= READ_BUDGET_PER_TURN {
                self.next_turn_reads.push(id);
                break;
            }
            match conn.read_input(&mut self.scratch) {
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
                    self.core.peer_closed(id, now, &mut self.outbox);
                    break;
                }
                Ok(n) => {
                    conn.last_active = now;
                    if conn.inbuf.is_empty() {
                        conn.input_since = Some(now);
                        let request_deadline =
                            now + self.config.request_timeout.as_millis() as Millis;
                        if !matches!(client.door, Door::Line(_)) {
                            self.timers
                                .arm(&mut conn.timer_at, request_deadline, id, conn.serial);
                        }
                    }
                    crate::bufpool::ensure(&mut conn.inbuf);
                    conn.inbuf.extend_from_slice(&self.scratch[..n]);
                    self.process_input(id, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    log::debug!("connection {id} ({}): TLS error: {e}", conn.peer);
                    return self.close(id, CloseReason::TlsError);
                }
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
        if let Some(client) = self.client(id) {
            if !client.conn.queued_write {
                client.conn.queued_write = true;
                self.dirty.push(id);
            }
        }
    }

    /// Hands the connection's unparsed input to its door.
    fn process_input(&mut self, id: ConnId, now: Millis) {
        let header_pending = self.client(id).is_some_and(|c| c.edge.header_pending);
        if header_pending && !self.read_proxy_header(id, now) {
            return;
        }
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if let Door::Sniffing = client.door {
            if client.conn.closing.is_some() {
                return; // refused, its reason is on the way out
            }
            let Some(kind) = sniff(&client.conn.inbuf) else {
                return;
            };
            let secure = client.conn.is_tls();
            let plaintext_refused = !secure && self.tls.is_some() && !self.config.allow_plaintext;
            match kind {
                DoorKind::Tls if !secure => return self.start_tls(id, now),
                DoorKind::Line | DoorKind::Http if plaintext_refused => {
                    return self.refuse_plaintext(id, kind)
                }
                // Inside TLS, a second handshake byte is just a bad line.
                DoorKind::Line | DoorKind::Tls => {
                    client.door = Door::Line(LineDoor::new(self.config.max_line));
                    self.core.open_session(id);
                }
                DoorKind::Http => {
                    client.door = Door::Http(HttpDoor::new(secure, client.edge.via()))
                }
            }
        }
        let mut turn = Turn::new(
            &mut self.core,
            &mut self.outbox,
            &self.config,
            now,
            &mut self.budget,
            &mut self.next_seq,
        );
        let conn = &mut client.conn;
        match &mut client.door {
            Door::Line(door) => door.process(id, conn, &mut turn),
            Door::Http(door) => door.process(id, conn, &mut turn),
            Door::Sniffing => unreachable!("decided above"),
        }
        if !conn.queued_write {
            conn.queued_write = true;
            self.dirty.push(id);
        }
    }

    /// The client opened with a TLS handshake: its session starts, and
    /// the door is sniffed again from the first plaintext inside it. The
    /// handshake must finish within `--tls-handshake-timeout`.
    fn start_tls(&mut self, id: ConnId, now: Millis) {
        if !self.admit_handshake(id, now) {
            return;
        }
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let conn = &mut client.conn;
        let Some(config) = &self.tls else {
            log::debug!(
                "connection {id} ({}): a TLS handshake, but no --tls-cert is configured",
                conn.peer
            );
            return self.close(id, CloseReason::TlsError);
        };
        if let Err(e) = conn.start_tls(config) {
            log::debug!("connection {id} ({}): TLS error: {e}", conn.peer);
            return self.close(id, CloseReason::TlsError);
        }
        let handshake_deadline = now + self.config.tls_handshake_timeout.as_millis() as Millis;
        self.timers
            .arm(&mut conn.timer_at, handshake_deadline, id, conn.serial);
        self.mark_dirty(id);
    }

    /// A plain connection to a server that requires TLS: told why in its
    /// door's words, then closed.
    fn refuse_plaintext(&mut self, id: ConnId, kind: DoorKind) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let conn = &mut client.conn;
        log::debug!("connection {id} ({}): plaintext refused", conn.peer);
        match kind {
            DoorKind::Http => crate::http::refuse_plaintext(conn, &mut self.budget),
            _ => line_door::refuse_plaintext(conn, &mut self.budget),
        }
        conn.closing = Some(CloseReason::PlaintextRefused);
        conn.consume_input(conn.inbuf.len());
        self.mark_dirty(id);
    }

    // -----------------------------------------------------------------
    // Effects
    // -----------------------------------------------------------------

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
                self.core.count_reply(*ticket, reply, now);
                self.deliver_reply(ticket.conn, ticket.seq, reply);
            }
            let pushes = std::mem::take(&mut self.outbox.pushes);
            for (id, message) in &pushes {
                self.push(*id, message, now);
            }
            let events = std::mem::take(&mut self.outbox.events);
            for &(id, event) in &events {
                self.session_event(id, event, now);
            }
            let presence = self.core.take_presence();
            if !presence.is_empty() {
                self.store.set_presence(presence);
            }
            if let Some(batch) = self.core.take_batch() {
                self.store.submit(batch);
            }
            while let Some(done) = self.store.completed() {
                self.core.on_committed(done, now, &mut self.outbox);
            }
            // After the commits: a read asked now sees them.
            for read in self.outbox.reads.drain(..) {
                self.store.read(read);
            }
            while let Some(done) = self.store.read_done() {
                self.core.on_read(done, now, &mut self.outbox);
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
            && self.outbox.events.is_empty()
            && self.outbox.hash_jobs.is_empty()
            && self.outbox.reads.is_empty()
            && !self.core.has_open_writes()
    }

    fn deliver_reply(&mut self, id: ConnId, seq: u64, reply: &Reply) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let conn = &mut client.conn;
        let had_barrier = conn.barrier.is_some();
        let budget = &mut self.budget;
        let completed = match &mut client.door {
            Door::Line(door) => door.complete(conn, budget, seq, reply),
            Door::Http(door) => door.complete(conn, budget, seq, reply),
            Door::Sniffing => false,
        };
        if completed {
            if had_barrier && conn.barrier.is_none() {
                self.resume.push(id);
            }
            if !conn.queued_write {
                conn.queued_write = true;
                self.dirty.push(id);
            }
        }
    }

    fn push(&mut self, id: ConnId, message: &crate::message::Message, now: Millis) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if !matches!(client.door, Door::Line(_)) {
            return;
        }
        line_door::push(&mut client.conn, &mut self.budget, message);
        self.after_queued(id, now);
    }

    /// Tells a line connection its token was revoked or expired.
    fn session_event(&mut self, id: ConnId, event: crate::core::SessionEvent, now: Millis) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        line_door::session_event(&mut client.conn, &mut self.budget, event);
        self.after_queued(id, now);
    }

    /// Output was queued for `id` outside its own input: a connection past
    /// its output cap is closed, any other is written at the turn's end.
    fn after_queued(&mut self, id: ConnId, now: Millis) {
        match self.client(id).and_then(|client| client.conn.overflow) {
            Some(reason) => self.close_overflowing(id, reason, now),
            None => self.mark_dirty(id),
        }
    }

    // -----------------------------------------------------------------
    // Writing
    // -----------------------------------------------------------------

    /// Writes every connection's new output, arms WRITABLE where the socket
    /// is full, runs work owed once output is flushed, and closes what is done.
    fn write_all(&mut self, now: Millis) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for (i, &id) in dirty.iter().enumerate() {
            if self.written_this_turn >= TOTAL_WRITE_BUDGET_PER_TURN {
                // The turn's write budget is spent: the rest go first next turn.
                for &later in &dirty[i..] {
                    if let Some(client) = self.client(later) {
                        client.conn.queued_write = false;
                    }
                    self.next_turn_writes.push(later);
                }
                break;
            }
            self.write(id, now);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty; // keep the allocation for the next turn
        }
    }

    fn write(&mut self, id: ConnId, now: Millis) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        client.conn.queued_write = false;
        if let Some(reason) = client.conn.overflow {
            return self.close_overflowing(id, reason, now);
        }
        let conn = &mut client.conn;
        conn.enter_turn(self.turn);
        let written_before = conn.bytes_out;
        let allowed = WRITE_BUDGET_PER_TURN.saturating_sub(conn.written_in_turn);
        let flushed = conn.flush(&mut self.budget, allowed);
        let written = (conn.bytes_out - written_before) as usize;
        conn.written_in_turn += written;
        self.written_this_turn += written;
        let flushed = match flushed {
            Ok(flushed) => flushed,
            Err(e) => {
                log::debug!("connection {id}: write error {e}");
                return self.close(id, CloseReason::IoError);
            }
        };
        let all = flushed == Flushed::All;
        if all {
            if let Door::Http(door) = &mut client.door {
                let mut turn = Turn::new(
                    &mut self.core,
                    &mut self.outbox,
                    &self.config,
                    now,
                    &mut self.budget,
                    &mut self.next_seq,
                );
                if door.on_flushed(id, &mut client.conn, &mut turn) {
                    // It took no requests while this work was owed.
                    self.resume.push(id);
                }
            }
        }
        let settled = client.is_settled();
        let conn = &mut client.conn;
        if all && settled && !conn.paused_on_output {
            if let Some(reason) = conn.closing {
                return self.close(id, reason);
            }
            if conn.read_closed {
                return self.close(id, CloseReason::PeerClosed);
            }
            if self.stopping.is_some() {
                return self.close(id, CloseReason::ServerShutdown);
            }
            if let Door::Http(_) = client.door {
                // Idle between requests: keep-alive has a time limit.
                conn.last_active = now;
                let idle_deadline = now + self.config.http_idle_timeout.as_millis() as Millis;
                self.timers
                    .arm(&mut conn.timer_at, idle_deadline, id, conn.serial);
            }
        }
        if all && conn.paused_on_output {
            // The client read its replies: take its requests again.
            conn.paused_on_output = false;
            self.resume.push(id);
        }
        if flushed == Flushed::Budget {
            self.next_turn_writes.push(id);
        }
        let want_writable = flushed == Flushed::Blocked;
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

    // -----------------------------------------------------------------
    // Budgets and deadlines
    // -----------------------------------------------------------------

    fn close_overflowing(&mut self, id: ConnId, reason: CloseReason, now: Millis) {
        if let Some(client) = self.client(id) {
            let (peer, owed) = (client.conn.peer, client.conn.owed());
            let per_conn = self.budget.per_conn;
            self.warnings.slow_consumer.warn(now, || {
                format!(
                    "connection {id} ({peer}) reads too slowly: {owed} bytes queued, more than \
                     {per_conn} (--max-output); disconnecting (its messages stay in the mailbox)"
                )
            });
        }
        self.close(id, reason);
    }

    /// All clients together hold more unread output than the budget:
    /// close the ones holding the most until there is room again. Only
    /// runs past the budget; the check itself is a comparison.
    fn relieve_output_budget(&mut self, now: Millis) {
        let target = self.budget.limit / 100 * OUTPUT_TOTAL_RELIEF_PERCENT;
        let mut holders: Vec<(usize, ConnId)> = self
            .clients
            .iter()
            .enumerate()
            .filter_map(|(id, c)| c.as_ref().map(|c| (c.conn.owed(), id)))
            .filter(|&(owed, _)| owed > 0)
            .collect();
        holders.sort_unstable_by(|a, b| b.cmp(a));
        let mut closed = 0;
        for (owed, id) in holders {
            if self.budget.queued <= target {
                break;
            }
            log::debug!("connection {id}: closed to relieve the output budget ({owed} bytes)");
            self.close(id, CloseReason::OutputBudget);
            closed += 1;
        }
        self.budget.over = self.budget.queued > self.budget.limit;
        let (queued, limit) = (self.budget.queued, self.budget.limit);
        self.warnings.output_budget.warn(now, || {
            format!(
                "unread output passed {limit} bytes (--max-output-total): disconnected the \
                 {closed} clients holding the most; {queued} bytes remain queued"
            )
        });
    }

    /// Closes connections whose deadline passed; re-arms the others.
    fn expire(&mut self, now: Millis) {
        while let Some(due) = self.timers.pop_due(now) {
            let Some(client) = self.client(due.conn) else {
                continue;
            };
            if client.conn.serial != due.serial || client.conn.timer_at != Some(due.at) {
                continue; // closed and reused, or re-armed earlier
            }
            client.conn.timer_at = None;
            let logged_in = self.core.session_user(due.conn).is_some();
            let Some(client) = self.clients[due.conn].as_mut() else {
                continue;
            };
            match deadline(client, logged_in, &self.config) {
                Some((at, reason)) if at <= now => {
                    log::debug!(
                        "connection {} from {}: {reason:?}",
                        due.conn,
                        client.conn.peer
                    );
                    self.close(due.conn, reason);
                }
                Some((at, _)) => {
                    let conn = &mut client.conn;
                    self.timers
                        .arm(&mut conn.timer_at, at, due.conn, conn.serial);
                }
                None => {}
            }
        }
    }

    /// The one place a connection is closed.
    fn close(&mut self, id: ConnId, reason: CloseReason) {
        let Some(Client { mut conn, door, .. }) = self.clients.get_mut(id).and_then(Option::take)
        else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.socket);
        if !conn.read_closed && is_orderly(reason) {
            conn.close_gently(&mut self.scratch);
        }
        conn.forget_output(&mut self.budget);
        self.core.close_session(id);
        self.free.push(id);
        self.live -= 1;
        self.per_address.remove(conn.peer.ip());
        *self.closed.entry(close_reason_name(reason)).or_insert(0) += 1;
        log::debug!(
            "connection {id} ({} door) from {} closed after {} ms: {}, {} bytes in, {} bytes out",
            door.name(),
            conn.peer,
            now_ms().saturating_sub(conn.opened),
            close_reason_name(reason),
            conn.bytes_in,
            conn.bytes_out
        );
    }
}

/// When a connection must be closed, and why, given what it is doing now;
/// `None` when no deadline applies. A line connection must log in within
/// `--login-timeout` of connecting; once logged in it may stay idle (TCP
/// keep-alive finds dead peers; a client that wants to know sends PING).
/// An HTTP request must arrive whole within `--request-timeout` of its first
/// byte, and a keep-alive connection with nothing in progress is closed
/// after `--http-idle-timeout`.
fn deadline(client: &Client, logged_in: bool, config: &Config) -> Option<(Millis, CloseReason)> {
    let conn = &client.conn;
    let login = conn.opened + config.login_timeout.as_millis() as Millis;
    let request = conn
        .input_since
        .map(|since| since + config.request_timeout.as_millis() as Millis);
    match &client.door {
        Door::Sniffing if client.edge.awaits_header(config.proxy_protocol) => {
            let header = conn.opened + config.request_timeout.as_millis() as Millis;
            Some((header, CloseReason::RequestTimeout))
        }
        Door::Sniffing if conn.is_handshaking() => {
            let handshake = conn.opened + config.tls_handshake_timeout.as_millis() as Millis;
            Some((handshake.min(login), CloseReason::TlsHandshakeTimeout))
        }
        Door::Sniffing => match request {
            Some(at) if at < login => Some((at, CloseReason::RequestTimeout)),
            _ => Some((login, CloseReason::LoginTimeout)),
        },
        Door::Line(_) if logged_in => None,
        Door::Line(_) => Some((login, CloseReason::LoginTimeout)),
        Door::Http(door) => {
            if let Some(at) = request {
                Some((at, CloseReason::RequestTimeout))
            } else if door.is_settled() && conn.barrier.is_none() {
                let idle = conn.last_active + config.http_idle_timeout.as_millis() as Millis;
                Some((idle, CloseReason::IdleTimeout))
            } else {
                None // a request in progress (a long-poll, a password check)
            }
        }
    }
}

/// Whether the client should get everything written before the close (a
/// close it asked for, or the server's stop), rather than being cut off.
fn is_orderly(reason: CloseReason) -> bool {
    matches!(
        reason,
        CloseReason::ClientQuit
            | CloseReason::ServerShutdown
            | CloseReason::ProtocolError
            | CloseReason::PlaintextRefused
    )
}

/// Tells a connection that is not taken in why, in one line, and closes it.
fn refuse(mut socket: TcpStream, why: &str) {
    // A fresh socket's buffer takes one line; if it does not, the client
    // only misses the reason.
    let _ = socket.write(&refusal_line(why));
}

/// The one line a refused connection is told.
fn refusal_line(why: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(why.len() + 64);
    line.extend_from_slice(b"{\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":");
    crate::json::push_str(&mut line, why);
    line.extend_from_slice(b"}}\n");
    line
}

/// Errors after which `accept` keeps failing until descriptors or memory
/// are freed.
fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == 23 /* ENFILE */ || code == 24 /* EMFILE */
            || code == 105 /* ENOBUFS */ || code == 12 /* ENOMEM */
    )
}

fn close_reason_name(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::PeerClosed => "peer_closed",
        CloseReason::ClientQuit => "client_quit",
        CloseReason::SlowConsumer => "slow_consumer",
        CloseReason::ProtocolError => "protocol_error",
        CloseReason::IoError => "io_error",
        CloseReason::ServerFull => "server_full",
        CloseReason::AddressFull => "address_full",
        CloseReason::OutputBudget => "output_budget",
        CloseReason::LoginTimeout => "login_timeout",
        CloseReason::RequestTimeout => "request_timeout",
        CloseReason::IdleTimeout => "idle_timeout",
        CloseReason::ServerShutdown => "server_shutdown",
        CloseReason::ShutdownTimeout => "shutdown_timeout",
        CloseReason::TlsError => "tls_error",
        CloseReason::TlsHandshakeTimeout => "tls_handshake_timeout",
        CloseReason::PlaintextRefused => "plaintext_refused",
        CloseReason::ProxyRefused => "proxy_refused",
        CloseReason::HandshakeRate => "tls_handshake_rate",
    }
}
