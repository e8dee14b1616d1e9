//! `gotalk admin`: managing accounts on a running server. The server
//! listens on a Unix socket (`DATA/admin.sock`, `--admin-socket`), mode
//! 0600, so only its own user (and root) can connect; no network port
//! takes admin requests. Each request is a JSON line; it enters the loop
//! like a client's request and runs in the core, so caches, bound
//! connections and other nodes follow at once (see docs/operating.md,
//! "Accounts").
//!
//! - [`vocab`]: what the core is asked and answers (no I/O);
//! - [`wire`]: the JSON lines on the socket, both ways;
//! - [`listener`]: the server's socket and its threads;
//! - [`cli`]: the `gotalk admin …` subcommands, a client of that socket.

pub mod cli;
pub mod listener;
pub mod vocab;
pub mod wire;

pub use vocab::{AdminReply, AdminRequest};
