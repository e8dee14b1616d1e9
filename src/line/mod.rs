//! The line protocol door: bytes → lines ([`framer`]), lines → calls
//! ([`parse`]), replies and events → JSON lines ([`render`]). Pure
//! functions and small state machines; no sockets.

pub mod door;
pub mod framer;
pub mod parse;
pub mod render;
