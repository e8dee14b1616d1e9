//! The HTTP/1.1 door: the original goTalk's form posts (and the web chat
//! page) on the same port as the line protocol, through the same core.
//!
//! - [`parse`]: bytes → requests (head with `httparse`, `Content-Length`
//!   bodies, limits), resumable between reads.
//! - [`form`]: form fields from a urlencoded body and the query string.
//! - [`routes`]: method and path → endpoint; fields → [`Call`].
//! - [`render`]: [`Reply`] → status and JSON; the response head.
//! - [`page`]: `GET /`, the embedded chat page.
//!
//! Requests on one connection run one at a time: a request whose reply
//! comes later (a password hash, a commit, a long-poll) sets the
//! connection's barrier, and the next request is read when that reply is
//! in place, so pipelined responses go out in order and a later request
//! sees what an earlier one did. HTTP connections are never bound to a
//! user: the token in each request decides who acts.

pub mod form;
pub mod page;
pub mod parse;
pub mod render;
pub mod routes;

use crate::config::limits::OUTPUT_PAUSE_BYTES;
use crate::conn::{AfterReply, Conn, Door};
use crate::core::Handled;
use crate::error::{CloseReason, ErrorCode};
use crate::request::{Call, Reply, Request, SyncArgs};
use crate::turn::Turn;
use crate::{ConnId, UserId};
use parse::Step;
use render::Persistence;
use routes::{Endpoint, Route};
use std::borrow::Cow;

/// Per-connection HTTP state: how far the current request has been read.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpState {
    reader: parse::Reader,
}

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

/// How to render the reply of one API request, kept while the core works.
pub struct ReplyContext {
    endpoint: Endpoint,
    persistence: Persistence,
    /// For `/sync` without `after`: whose messages to acknowledge once the
    /// response has been written in full.
    ack_as: Option<AckAs>,
}

struct AckAs {
    token: String,
    claimed_id: Option<UserId>,
}

impl ReplyContext {
    pub fn render(&self, reply: &Reply, out: &mut Vec<u8>) -> AfterReply {
        render::reply(out, self.endpoint, reply, self.persistence);
        let once_flushed = match (&self.ack_as, reply) {
            (Some(ack), Reply::Messages(messages)) => {
                messages.iter().map(|m| m.id).max().map(|upto| Call {
                    request: Request::Ack { upto },
                    token: Some(Cow::Owned(ack.token.clone())),
                    claimed_id: ack.claimed_id,
                })
            }
            _ => None,
        };
        AfterReply {
            close: self.persistence == Persistence::Close,
            once_flushed,
        }
    }
}

/// Runs the complete HTTP requests in `conn.inbuf` that may run now: one
/// at a time, stopping at a barrier (a reply still to come), at a reply
/// whose acknowledgement waits for the output to be written, or when the
/// client is not reading its responses.
pub fn process(id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) {
    let Door::Http(HttpState { mut reader }) = conn.door else {
        return;
    };
    let input = std::mem::take(&mut conn.inbuf);
    let mut pos = 0;
    while conn.accepts_requests(OUTPUT_PAUSE_BYTES) {
        match reader.next(&input[pos..]) {
            Step::Skip { consumed } => pos += consumed,
            Step::Request { request, consumed } => {
                pos += consumed;
                run(id, conn, turn, &request);
            }
            Step::Continue => {
                debug_assert!(conn.in_order(), "requests run one at a time");
                conn.out_mut()
                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            Step::NeedMore => break,
            Step::Refuse(refusal) => {
                log::debug!(
                    "connection {id} ({}): refused HTTP request: {} {}",
                    conn.peer,
                    refusal.status,
                    refusal.message
                );
                debug_assert!(conn.in_order(), "requests run one at a time");
                render::refusal(conn.out_mut(), &refusal, Persistence::Close);
                conn.closing = Some(CloseReason::ProtocolError);
                pos = input.len();
                break;
            }
        }
    }
    conn.door = Door::Http(HttpState { reader });
    conn.inbuf = input;
    conn.consume_input(pos);
}

/// Answers one complete request.
fn run(id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>, request: &parse::Request<'_>) {
    let persistence = Persistence::of(request.keep_alive, request.http10);
    let head_only = request.method == "HEAD";
    let endpoint = match routes::route(request.method, request.path) {
        Ok(Route::Api(endpoint)) => endpoint,
        Ok(Route::Page) => {
            page::respond(conn.out_mut(), head_only, persistence);
            return finish_direct(conn, persistence);
        }
        Ok(Route::Health) => {
            let body = b"{\"ok\":true}";
            render::push_head(
                conn.out_mut(),
                200,
                persistence,
                "application/json",
                body.len(),
                &[("Cache-Control", "no-store")],
            );
            if !head_only {
                conn.out_mut().extend_from_slice(body);
            }
            return finish_direct(conn, persistence);
        }
        Err(refusal) => return refuse(id, conn, &refusal, persistence),
    };
    let fields = match form::Fields::parse(request.body, request.query, request.content_type) {
        Ok(fields) => fields,
        Err(refusal) => return refuse(id, conn, &refusal, persistence),
    };
    let mut ctx = ReplyContext {
        endpoint,
        persistence,
        ack_as: None,
    };
    let call = match routes::call(endpoint, &fields) {
        Ok(call) => call,
        Err(failure) => {
            log::debug!("connection {id}: {failure}");
            let after = ctx.render(&Reply::Error(failure), conn.out_mut());
            return conn.apply(after);
        }
    };
    if let (Request::Sync(SyncArgs { after: None, .. }), Some(token)) = (&call.request, &call.token)
    {
        ctx.ack_as = Some(AckAs {
            token: token.clone().into_owned(),
            claimed_id: call.claimed_id,
        });
    }
    let ticket = turn.ticket(id);
    match turn.core.handle(ticket, call, turn.now, turn.outbox) {
        Handled::Now(reply) => {
            conn.reply_now(ticket.seq, crate::conn::ReplyContext::Http(ctx), &reply)
        }
        Handled::Later { .. } => {
            conn.defer(ticket.seq, crate::conn::ReplyContext::Http(ctx));
            // Every deferred HTTP request is a barrier: one at a time.
            conn.barrier = Some(ticket.seq);
        }
    }
}

/// Answers a request the shim refuses itself; the connection stays usable.
fn refuse(id: ConnId, conn: &mut Conn, refusal: &Refusal, persistence: Persistence) {
    log::debug!("connection {id}: {} {}", refusal.status, refusal.message);
    render::refusal(conn.out_mut(), refusal, persistence);
    finish_direct(conn, persistence);
}

/// After a response written straight to the output (requests run one at a
/// time, so nothing is pending before it).
fn finish_direct(conn: &mut Conn, persistence: Persistence) {
    debug_assert!(conn.in_order(), "requests run one at a time");
    conn.apply(AfterReply {
        close: persistence == Persistence::Close,
        once_flushed: None,
    });
}
