//! The HTTP/1.1 door: the original goTalk's form posts (and the web chat
//! page) on the same port as the line protocol, through the same core.
//!
//! - [`parse`]: bytes → requests (head with `httparse`, `Content-Length`
//!   bodies, limits), resumable between reads.
//! - [`form`]: form fields from a urlencoded body and the query string.
//! - [`routes`]: method and path → endpoint; fields → [`Call`].
//! - [`render`]: [`Reply`] → status and JSON; the response head.
//! - [`host`]: the `Host` and `Origin` a request may carry.
//! - [`forwarded`]: the client address and scheme a trusted proxy names.
//! - [`page`]: `GET /`, the embedded chat page, its script and style.
//! - [`door`]: the door's state on one connection, how each reply is
//!   rendered, and its rules (what the event loop asks of it: deadlines,
//!   what follows a flush).
//!
//! Requests on one connection run one at a time: a request whose reply
//! comes later (a password hash, a commit, a long-poll) sets the
//! connection's barrier, and the next request is read when that reply is
//! in place, so pipelined responses go out in order and a later request
//! sees what an earlier one did. HTTP connections are never bound to a
//! user: the token in each request decides who acts.

pub mod door;
pub mod form;
pub mod forwarded;
pub mod host;
pub mod page;
pub mod parse;
pub mod render;
pub mod routes;

use crate::error::ErrorCode;
use std::borrow::Cow;

/// A request the shim answers itself, with an HTTP status the core's error
/// codes do not cover (405, 411, 415, 431) or before the core is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// The contract error code in the body.
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// For 405: the methods the path takes.
    pub allow: Option<&'static str>,
}

impl Refusal {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    pub fn allow(mut self, methods: &'static str) -> Refusal {
        self.allow = Some(methods);
        self
    }
}
