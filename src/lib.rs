//! goTalk: an instant-messaging server with one transport-free command core
//! and two doors onto it (a newline-delimited line protocol and an HTTP
//! compatibility shim) on one port.
//!
//! Map of the crate:
//! - [`config`]: command-line flags and every limit as a named value.
//! - [`error`]: the contract's error codes and why connections close.
//! - [`request`]: the requests and replies both doors share.
//! - [`message`]: a stored message, serialised once at creation.
//! - [`token`]: AES-256-GCM sealed session tokens.
//! - [`core`]: accounts, mailboxes, delivery, acknowledgements, long-polls.
//! - [`hasher`]: password-hashing worker threads.
//! - [`histogram`]: lock-free histograms helper threads record into.
//! - [`store`]: where durable state goes (SQLite, or nothing with `--memory`).
//! - [`line`]: the line protocol: framing, parsing, rendering replies.
//! - [`http`]: the HTTP shim: request parsing, form fields, JSON replies.
//! - [`door`]: what the event loop asks of a door ([`door::DoorRules`]).
//! - [`doors`]: the doors there are, in the enum the event loop calls.
//! - [`conn`]: one client connection's socket, buffers, output budget and
//!   reply order; no door.
//! - [`timers`]: connection deadlines in a heap.
//! - [`tls`]: TLS sessions on the client port (rustls), certificates.
//! - [`peer_addr`]: the key every per-address budget counts a peer under.
//! - [`fdlimit`]: the open-file limit and the connection limit it implies.
//! - [`keepalive`]: TCP keep-alive, which finds vanished idle peers.
//! - [`logging`]: the log's shape (text, or JSON lines).
//! - [`log_limit`]: warnings an attacker could repeat, logged once a while.
//! - [`server`]: the `mio` event loop that ties them together.
//! - [`signals`]: SIGTERM/SIGINT handed to the loop for a graceful stop.
//! - [`figures`]: the server's figures as Prometheus text and JSON.
//! - [`metrics`]: the `--metrics` listener's thread (`GET /stats`).

pub mod accept_budget;
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
pub mod peer_addr;
pub mod proxy_protocol;
pub mod request;
pub mod server;
pub mod signals;
pub mod sniff;
pub mod store;
pub mod timers;
pub mod tls;
pub mod token;
pub mod token_file;
pub mod turn;
pub mod username;

/// A user's numeric id, as the contract's `id`/`to_id`/`from_id`.
pub type UserId = u64;
/// A message id: unique on the server and growing with time.
pub type MessageId = u64;
/// Milliseconds since the Unix epoch.
pub type Millis = u64;
/// Identifies one client connection inside the server (its `mio` token).
pub type ConnId = usize;
