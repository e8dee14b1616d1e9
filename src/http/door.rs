//! The HTTP door's state on one connection and its rules: requests run
//! one at a time (a reply that comes later sets the barrier), `/sync`'s
//! acknowledgement runs once its response has reached the socket, a
//! request must arrive whole within `--request-timeout`, and a keep-alive
//! connection with nothing in progress closes after `--http-idle-timeout`,
//! and `GET /ws` hands the connection over to the WebSocket door.
//! How a reply is rendered once the core answers ([`ReplyContext`]) and
//! what a plain request to a TLS-only server is told live here too.

use super::render::{self, Persistence};
use super::routes::{self, Endpoint, Route};
use super::{form, forwarded, host, page, parse, Refusal};
use crate::config::limits::OUTPUT_PAUSE_BYTES;
use crate::conn::{Conn, OutputBudget, ReplySlots};
use crate::core::{Handled, Ticket};
use crate::door::{DoorRules, Progress, Timeouts};
use crate::doors::Door;
use crate::error::CloseReason;
use crate::opt_u64::OptU64;
use crate::request::{Call, Reply, Request, SyncArgs};
use crate::turn::Turn;
use crate::ws::door::WsDoor;
use crate::ws::handshake;
use crate::{ConnId, Millis, UserId};
use parse::Step;
use std::borrow::Cow;

/// The HTTP door's state on one connection: how far the current request
/// has been read, the replies owed, and work owed once they are written.
#[derive(Default)]
pub struct HttpDoor {
    /// The connection is TLS: responses carry HSTS.
    secure: bool,
    /// Whether a trusted proxy's forwarding headers name the client.
    via: forwarded::Via,
    reader: parse::Reader,
    slots: ReplySlots<SlotContext>,
    /// Requests to run once the output is fully written (the `/sync`
    /// acknowledgement).
    once_flushed: Vec<Call<'static>>,
    /// `GET /ws` was answered `101`: the connection is the WebSocket
    /// door's from the next byte on.
    upgraded: Option<Box<WsDoor>>,
    /// The `Host` last found to name this server: a keep-alive client
    /// sends the same one each time, and it is not checked again.
    host_accepted: Option<Box<[u8]>>,
}

/// What a reply slot of an HTTP connection renders.
enum SlotContext {
    Api(ReplyContext),
    /// A request the server runs for the connection itself (the `/sync`
    /// acknowledgement once its reply is written): no reply is written.
    Internal,
}

impl SlotContext {
    fn render(&self, reply: &Reply, out: &mut Vec<u8>) -> AfterReply {
        match self {
            SlotContext::Api(ctx) => ctx.render(reply, out),
            SlotContext::Internal => AfterReply::default(),
        }
    }
}

/// What the connection must do once a reply is written.
#[derive(Default)]
pub struct AfterReply {
    /// Close once the output is flushed (`Connection: close`).
    pub close: bool,
    /// A request to run once the reply has fully reached the socket.
    pub once_flushed: Option<Call<'static>>,
}

/// How to render the reply of one API request, kept while the core works.
pub struct ReplyContext {
    endpoint: Endpoint,
    persistence: Persistence,
    secure: bool,
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
        render::reply(out, self.endpoint, reply, self.persistence, self.secure);
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

impl HttpDoor {
    /// The door of a connection; `secure` when it is TLS, `via` whether
    /// it comes from a trusted proxy that named no client.
    pub fn new(secure: bool, via: forwarded::Via) -> HttpDoor {
        HttpDoor {
            secure,
            via,
            ..HttpDoor::default()
        }
    }

    /// Whether part of a request has been read.
    pub fn has_partial_request(conn: &Conn) -> bool {
        !conn.inbuf.is_empty()
    }

    /// Answers one complete request.
    fn run(
        &mut self,
        id: ConnId,
        conn: &mut Conn,
        turn: &mut Turn<'_>,
        request: &parse::Request<'_>,
    ) {
        let persistence = Persistence::of(request.keep_alive, request.http10);
        let secure = self.secure;
        let head_only = request.method == "HEAD";
        let budget = &mut *turn.budget;
        if request.host.is_some() && request.host != self.host_accepted.as_deref() {
            if let Err(refusal) = host::check_host(request.host, turn.config) {
                return refuse(id, conn, budget, &refusal, persistence, secure);
            }
            self.host_accepted = request.host.map(Box::from);
        }
        let endpoint = match routes::route(request.method, request.path) {
            Ok(Route::Api(endpoint)) => endpoint,
            Ok(Route::Page(asset)) => {
                conn.queue(budget, |out| {
                    page::respond(out, asset, head_only, persistence, secure)
                });
                return finish_direct(conn, persistence);
            }
            Ok(Route::Health) => {
                let body = b"{\"ok\":true}";
                conn.queue(budget, |out| {
                    render::push_head(
                        out,
                        200,
                        persistence,
                        secure,
                        "application/json",
                        body.len(),
                        &[("Cache-Control", "no-store")],
                    );
                    if !head_only {
                        out.extend_from_slice(body);
                    }
                });
                return finish_direct(conn, persistence);
            }
            Ok(Route::WebSocket) => return self.upgrade(id, conn, turn, request, persistence),
            Err(refusal) => return refuse(id, conn, budget, &refusal, persistence, secure),
        };
        // Every API route is a POST that may change something.
        let scheme = forwarded::scheme(
            secure,
            self.via,
            turn.config.tls_cert.is_some(),
            request.forwarded_proto,
        );
        if let Err(refusal) = host::check_origin(request.origin, request.host, scheme) {
            return refuse(id, conn, budget, &refusal, persistence, secure);
        }
        let fields = match form::Fields::parse(request.body, request.query, request.content_type) {
            Ok(fields) => fields,
            Err(refusal) => return refuse(id, conn, budget, &refusal, persistence, secure),
        };
        let mut ctx = ReplyContext {
            endpoint,
            persistence,
            secure,
            ack_as: None,
        };
        let call = match routes::call(endpoint, &fields) {
            Ok(call) => call,
            Err(failure) => {
                log::debug!("connection {id}: {failure}");
                let after = conn.queue(budget, |out| ctx.render(&Reply::Error(failure), out));
                return self.apply(conn, after);
            }
        };
        if let (Request::Sync(SyncArgs { after: None, .. }), Some(token)) =
            (&call.request, &call.token)
        {
            ctx.ack_as = Some(AckAs {
                token: token.clone().into_owned(),
                claimed_id: call.claimed_id,
            });
        }
        if self.via == forwarded::Via::TrustedProxy {
            // Throttles count this request under the client the proxy
            // names (its own address when it names none).
            let client = forwarded::last_hop(request.forwarded_for).unwrap_or(conn.peer.ip());
            turn.core.set_address(id, client);
        }
        let ticket = turn.ticket(id);
        match turn.core.handle(ticket, call, turn.now, turn.outbox) {
            Handled::Now(reply) => {
                let after = self.slots.reply_now(
                    conn,
                    turn.budget,
                    ticket.seq,
                    SlotContext::Api(ctx),
                    |ctx, out| ctx.render(&reply, out),
                );
                self.apply(conn, after);
            }
            Handled::Later { .. } => {
                self.slots.defer(ticket.seq, SlotContext::Api(ctx));
                // Every deferred HTTP request is a barrier: one at a time.
                conn.barrier = OptU64::some(ticket.seq);
            }
        }
    }

    /// `GET /ws`: answered `101` and handed to the WebSocket door when its
    /// `Origin` passes (as a POST's must) and it says what RFC 6455 asks;
    /// otherwise an HTTP error, and the connection stays HTTP.
    fn upgrade(
        &mut self,
        id: ConnId,
        conn: &mut Conn,
        turn: &mut Turn<'_>,
        request: &parse::Request<'_>,
        persistence: Persistence,
    ) {
        let secure = self.secure;
        let scheme = forwarded::scheme(
            secure,
            self.via,
            turn.config.tls_cert.is_some(),
            request.forwarded_proto,
        );
        let accepted = host::check_origin(request.origin, request.host, scheme)
            .and_then(|()| handshake::accept(request, turn.config));
        match accepted {
            Ok(accepted) => {
                if self.via == forwarded::Via::TrustedProxy {
                    let client =
                        forwarded::last_hop(request.forwarded_for).unwrap_or(conn.peer.ip());
                    turn.core.set_address(id, client);
                }
                conn.queue(turn.budget, |out| {
                    handshake::switching_protocols(out, &accepted, secure)
                });
                self.upgraded = Some(Box::new(WsDoor::new(turn.config.max_line, turn.now)));
            }
            Err(refusal) => {
                log::debug!("connection {id}: {} {}", refusal.status, refusal.message);
                conn.queue(turn.budget, |out| {
                    handshake::refusal(out, &refusal, persistence, secure)
                });
                finish_direct(conn, persistence);
            }
        }
    }

    fn apply(&mut self, conn: &mut Conn, after: AfterReply) {
        if after.close && conn.closing.is_none() {
            conn.closing = Some(CloseReason::ClientQuit);
        }
        if let Some(call) = after.once_flushed {
            self.once_flushed.push(call);
        }
    }
}

impl DoorRules for HttpDoor {
    fn name(&self) -> &'static str {
        "http"
    }

    fn state(&self, _logged_in: bool, settled: bool) -> &'static str {
        if settled {
            "idle"
        } else {
            "request"
        }
    }

    /// Whether every reply owed has been rendered and no work waits for
    /// the output to be written.
    fn is_settled(&self) -> bool {
        self.slots.is_empty() && self.once_flushed.is_empty()
    }

    /// HTTP connections are never bound to a user: the token in each
    /// request decides who acts.
    fn opens_session(&self) -> bool {
        false
    }

    /// Runs the complete HTTP requests in `conn.inbuf` that may run now:
    /// one at a time, stopping at a barrier (a reply still to come), at a
    /// reply whose acknowledgement waits for the output to be written, or
    /// when the client is not reading its responses.
    fn process(&mut self, id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) {
        let input = std::mem::take(&mut conn.inbuf);
        let mut pos = 0;
        while turn.requests_left > 0
            && conn.accepts_requests(OUTPUT_PAUSE_BYTES)
            && self.once_flushed.is_empty()
            && self.upgraded.is_none()
        {
            match self.reader.next(&input[pos..]) {
                Step::Skip { consumed } => pos += consumed,
                Step::Request { request, consumed } => {
                    pos += consumed;
                    turn.requests_left -= 1;
                    self.run(id, conn, turn, &request);
                }
                Step::Continue => {
                    debug_assert!(self.slots.is_empty(), "requests run one at a time");
                    conn.queue(turn.budget, |out| {
                        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n")
                    });
                }
                Step::NeedMore => break,
                Step::Refuse(refusal) => {
                    log::debug!(
                        "connection {id} ({}): refused HTTP request: {} {}",
                        conn.peer,
                        refusal.status,
                        refusal.message
                    );
                    debug_assert!(self.slots.is_empty(), "requests run one at a time");
                    conn.queue(turn.budget, |out| {
                        render::refusal(out, &refusal, Persistence::Close, self.secure)
                    });
                    conn.closing = Some(CloseReason::ProtocolError);
                    pos = input.len();
                    break;
                }
            }
        }
        conn.inbuf = input;
        conn.consume_input(pos);
    }

    /// Fills in a reply that came later. False if this connection has no
    /// such request.
    fn complete(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        seq: u64,
        reply: &Reply,
    ) -> bool {
        match self
            .slots
            .complete(conn, budget, seq, |ctx, out| ctx.render(reply, out))
        {
            Some(after) => {
                self.apply(conn, after);
                true
            }
            None => false,
        }
    }

    /// A request must arrive whole within `--request-timeout` of its first
    /// byte; a keep-alive connection with nothing in progress is closed
    /// after `--http-idle-timeout`; a request in progress (a long-poll, a
    /// password check) has no deadline.
    fn deadline(&self, at: &Progress, limits: &Timeouts) -> Option<(Millis, CloseReason)> {
        if let Some(since) = at.input_since {
            Some((since + limits.request, CloseReason::RequestTimeout))
        } else if self.is_settled() && !at.barrier {
            Some((at.last_active + limits.http_idle, CloseReason::IdleTimeout))
        } else {
            None
        }
    }

    fn times_requests(&self) -> bool {
        true
    }

    /// The output was written in full: runs the work owed at that point.
    /// Returns true if the connection may take requests again.
    fn on_flushed(&mut self, id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) -> bool {
        if self.once_flushed.is_empty() {
            return false;
        }
        for call in std::mem::take(&mut self.once_flushed) {
            let ticket: Ticket = turn.ticket(id);
            // Nobody reads this reply, but the connection's next request
            // waits for it: an HTTP /sync must not return again what the
            // acknowledgement being stored covers.
            if let Handled::Later { .. } = turn.core.handle(ticket, call, turn.now, turn.outbox) {
                self.slots.defer(ticket.seq, SlotContext::Internal);
                conn.barrier = OptU64::some(ticket.seq);
            }
        }
        true
    }

    /// Idle between requests: keep-alive has a time limit.
    fn idle_deadline(&self, now: Millis, limits: &Timeouts) -> Option<Millis> {
        Some(now + limits.http_idle)
    }

    /// After `GET /ws` was answered `101`: the WebSocket door.
    fn next_door(&mut self) -> Option<Door> {
        self.upgraded.take().map(Door::Ws)
    }
}

/// Answers a request the shim refuses itself; the connection stays usable.
fn refuse(
    id: ConnId,
    conn: &mut Conn,
    budget: &mut OutputBudget,
    refusal: &Refusal,
    persistence: Persistence,
    secure: bool,
) {
    log::debug!("connection {id}: {} {}", refusal.status, refusal.message);
    conn.queue(budget, |out| {
        render::refusal(out, refusal, persistence, secure)
    });
    finish_direct(conn, persistence);
}

/// What a plain HTTP request to a server that requires TLS is told.
pub const PLAINTEXT_REFUSED: &str =
    "This server requires TLS: use https:// instead of http:// for this address.\n";

/// Answers a plain HTTP request on a server that requires TLS: 400 with a
/// plain-text reason a person reads in the browser, then close.
pub fn refuse_plaintext(conn: &mut Conn, budget: &mut OutputBudget) {
    conn.queue(budget, plaintext_refusal);
}

/// Appends the response [`refuse_plaintext`] sends.
fn plaintext_refusal(out: &mut Vec<u8>) {
    render::push_head(
        out,
        400,
        Persistence::Close,
        false,
        "text/plain; charset=utf-8",
        PLAINTEXT_REFUSED.len(),
        &[("Cache-Control", "no-store")],
    );
    out.extend_from_slice(PLAINTEXT_REFUSED.as_bytes());
}

/// After a response written straight to the output (requests run one at a
/// time, so nothing is pending before it).
fn finish_direct(conn: &mut Conn, persistence: Persistence) {
    if persistence == Persistence::Close && conn.closing.is_none() {
        conn.closing = Some(CloseReason::ClientQuit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_request_to_a_tls_only_server_gets_a_readable_400_and_a_close() {
        let mut out = Vec::new();
        plaintext_refusal(&mut out);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"));
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
        assert!(head.ends_with("\r\nConnection: close"), "{head}");
        assert!(!head.contains("Strict-Transport-Security"));
        assert_eq!(body, PLAINTEXT_REFUSED);
    }
}
