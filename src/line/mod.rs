//! The line protocol door: bytes → lines ([`framer`]), lines → calls
//! ([`parse`]), replies and events → JSON lines ([`render`]). Pure
//! functions and small state machines; no sockets.

pub mod door;
mod fast_json;
pub mod framer;
mod json_request;
pub mod parse;
pub mod render;
