//! The WebSocket door: `GET /ws` with `Upgrade: websocket` on the same
//! port (plain, or `wss://` through the same TLS), switched over from the
//! HTTP door once its `Host` and `Origin` checks pass. Inside, each text
//! message is one request of the line protocol and each reply or event one
//! text message: the line door's JSON line without its newline. Frames are
//! read and written over the connection's own buffers, so the loop's
//! budgets and the one bounded output queue own every byte.
//!
//! - [`handshake`]: what an upgrade request must say; the `101` answer.
//! - [`frames`]: input frames → messages, with each limit's close code.
//! - [`output`]: replies and events as text frames; ping, pong, close.
//! - [`door`]: the door's state on one connection and its rules
//!   (login deadline, keep-alive pings, the close handshake).

pub mod door;
pub mod frames;
pub mod handshake;
pub mod output;
