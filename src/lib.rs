//! goTalk: an instant-messaging server with one transport-free command core
//! and two doors onto it (a newline-delimited line protocol and an HTTP
//! compatibility shim) on one port.
//!
//! Map of the crate, from the outside in (the load generator is its own
//! crate, `bench/`):
//!
//! Settings and start-up
//! - [`config`]: the flag table (clap, with a `GOTALK_*` variable for each
//!   flag) and every limit as a named value; no I/O.
//! - [`cidr`]: address blocks (`--trusted-proxies`).
//! - [`logging`]: the log's shape (text, or JSON lines).
//! - [`fdlimit`]: the open-file limit and the connection limit it implies.
//! - [`signals`]: SIGTERM/SIGINT handed to the loop for a graceful stop.
//! - [`reload`]: SIGHUP reads the TLS certificate and token keys again.
//!
//! The event loop and the connection layer (no command semantics)
//! - [`server`]: the `mio` loop, split by job: accepting, reading and
//!   dispatch, the core's effects, the end-of-turn write pass, deadlines.
//! - [`door`]: what the loop asks of a door ([`door::DoorRules`]).
//! - [`doors`]: the doors there are, in the enum the loop calls.
//! - [`sniff`]: TLS, HTTP or line, from a connection's first bytes.
//! - [`proxy_protocol`]: PROXY v1/v2 headers from trusted proxies.
//! - [`conn`]: one connection's socket, buffers, output budget and reply
//!   order; no door.
//! - [`bufpool`]: buffers lent to busy connections only while they read
//!   or write, so an idle connection holds none.
//! - [`timers`]: connection deadlines in a heap.
//! - [`turn`]: what a door needs while it runs requests in one loop turn.
//! - [`tls`]: TLS sessions on the client port (rustls), certificates.
//! - [`accept_budget`], [`handshake_rate`], [`peer_addr`]: per-address
//!   connection and handshake budgets, and the key (IPv6 by /64) every
//!   per-address figure counts a peer under.
//! - [`storm_guard`], [`syn_filter`]: an address that storms far past its
//!   connection rate has its connects dropped by the kernel for a while.
//! - [`keepalive`]: TCP keep-alive, which finds vanished idle peers.
//!
//! The doors (they only translate)
//! - [`line`]: the line protocol: framing, parsing, rendering replies.
//! - [`http`]: the HTTP shim: request parsing, form fields, JSON replies,
//!   the web page.
//! - [`ws`]: the WebSocket door (`GET /ws`), the line protocol in text
//!   messages.
//!
//! What both doors share
//! - [`request`]: the requests and replies.
//! - [`error`]: the contract's error codes and why connections close.
//! - [`message`]: a stored message, serialised once at creation, and its
//!   cost.
//! - [`json`]: JSON fragments appended straight to an output buffer.
//! - [`username`]: how usernames are checked and compared (folded).
//!
//! The core (no I/O) and what it hands work to
//! - [`core`]: a dispatcher over owners: sessions, accounts, logins,
//!   mailboxes, reads, writes, waiters and the cluster.
//! - [`token`], [`token_file`]: AES-256-GCM sealed session tokens, and the
//!   key file they are sealed with.
//! - [`hasher`]: password-hashing worker threads.
//! - [`store`]: where durable state goes: SQLite, PostgreSQL (several nodes
//!   on one database) or nothing with `--memory`, behind one threaded
//!   `Store` and one vocabulary (`store::vocab`).
//!
//! Figures
//! - [`histogram`]: lock-free histograms helper threads record into.
//! - [`figures`]: the server's figures as Prometheus text and JSON.
//! - [`metrics`]: the `--metrics` listener (`GET /stats`, `/metrics`).
//! - [`log_limit`]: warnings an attacker could repeat, logged once a while.
//! - [`idhash`]: the cheap hasher for maps keyed by ids.

pub mod accept_budget;
pub mod admin;
pub mod bufpool;
pub mod cidr;
pub mod config;
pub mod conn;
pub mod core;
pub mod door;
pub mod doors;
pub mod error;
pub mod fdlimit;
pub mod figures;
pub mod handshake_rate;
pub mod hasher;
pub mod histogram;
pub mod http;
pub mod idhash;
pub mod json;
pub mod keepalive;
pub mod line;
pub mod log_limit;
pub mod logging;
pub mod message;
pub mod metrics;
pub mod opt_u64;
pub mod peer_addr;
pub mod proxy_protocol;
pub mod read_shaping;
pub mod reload;
pub mod request;
pub mod server;
pub mod signals;
pub mod sniff;
pub mod store;
pub mod storm_guard;
pub mod syn_filter;
pub mod timers;
pub mod tls;
pub mod token;
pub mod token_file;
pub mod turn;
pub mod username;
pub mod ws;

/// A user's numeric id, as the contract's `id`/`to_id`/`from_id`.
pub type UserId = u64;
/// A message id: unique on the server and growing with time.
pub type MessageId = u64;
/// Milliseconds since the Unix epoch.
pub type Millis = u64;
/// Identifies one client connection inside the server (its `mio` token).
pub type ConnId = usize;
