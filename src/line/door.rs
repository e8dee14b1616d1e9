//! The line protocol door: its framer, its replies' order (each reply
//! carries its request's `tag`, in [`Answers`], which the WebSocket door
//! shares through [`Framing`]), pushes and events, and its rules for the
//! loop (a connection must log in within `--login-timeout`, then may stay
//! idle). Runs the complete lines of a connection's input through the
//! core, writing replies in request order. Stops at a barrier (a request
//! the next one must wait for) or when the client is not reading its
//! replies; the rest of the input waits in the buffer. The one line a
//! refused connection is told is written here too.

use crate::config::limits::OUTPUT_PAUSE_BYTES;
use crate::conn::{Conn, OutputBudget, ReplySlots};
use crate::core::{Handled, SessionEvent};
use crate::door::{DoorRules, Progress, Timeouts};
use crate::error::{CloseReason, ErrorCode, Failure};
use crate::line::framer::{Framer, Step};
use crate::line::parse::{parse_line, Form, Parsed};
use crate::line::render::{self, message_event, note_event, reply_line};
use crate::message::Message;
use crate::opt_u64::OptU64;
use crate::request::{Note, Reply};
use crate::turn::Turn;
use crate::{ConnId, Millis};
use serde_json::value::RawValue;

/// A request's `tag`, echoed on its reply.
type Tag = Option<Box<RawValue>>;

/// The line door's state on one connection.
pub struct LineDoor {
    framer: Framer,
    answers: Answers,
}

impl LineDoor {
    pub fn new(max_line: usize) -> LineDoor {
        LineDoor {
            framer: Framer::new(max_line),
            answers: Answers::default(),
        }
    }
}

/// How a door lays each reply and event on the wire. Every one is rendered
/// as the line protocol's JSON line; the line door writes it as it is
/// ([`Lines`]), the WebSocket door wraps it in a text frame.
pub trait Framing {
    /// Appends what `render` writes (one reply or event line), framed.
    fn frame<R>(out: &mut Vec<u8>, render: impl FnOnce(&mut Vec<u8>) -> R) -> R;
}

/// The line door's framing: the line itself.
pub struct Lines;

impl Framing for Lines {
    #[inline(always)]
    fn frame<R>(out: &mut Vec<u8>, render: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        render(out)
    }
}

/// Requests of the line protocol run through the core, and their replies
/// in request order (each carries its request's `tag`): shared by every
/// door that speaks the line protocol, whatever its framing.
#[derive(Default)]
pub struct Answers {
    slots: ReplySlots<Tag>,
}

impl Answers {
    /// Whether every reply owed has been rendered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Runs one parsed request.
    #[inline]
    pub fn run<F: Framing>(
        &mut self,
        id: ConnId,
        conn: &mut Conn,
        turn: &mut Turn<'_>,
        parsed: Parsed<'_>,
    ) {
        let ticket = turn.ticket(id);
        let (seq, tag, form) = (ticket.seq, parsed.tag, parsed.form);
        let call = match parsed.call {
            Ok(call) => call,
            Err(failure) => {
                log::debug!("connection {id}: {failure}");
                let reply = Reply::Error(failure);
                return self.answer::<F>(conn, turn.budget, seq, tag, form, &reply);
            }
        };
        match turn.core.handle(ticket, call, turn.now, turn.outbox) {
            Handled::Now(reply) => self.answer::<F>(conn, turn.budget, seq, tag, form, &reply),
            Handled::Later { barrier } => {
                self.slots
                    .defer(ticket.seq, parsed.tag.map(RawValue::to_owned));
                if barrier {
                    conn.barrier = OptU64::some(ticket.seq);
                }
            }
        }
    }

    /// Writes a reply that is ready now: straight into the output when
    /// nothing is pending before it (no allocation), else in its place.
    /// (Only these replies differ by `form`; one that comes later is a line.)
    #[inline]
    pub fn answer<F: Framing>(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        seq: u64,
        tag: Option<&RawValue>,
        form: Form,
        reply: &Reply,
    ) {
        if self.slots.is_empty() {
            conn.queue(budget, |out| {
                F::frame(out, |out| render::reply(out, reply, tag, form))
            });
        } else {
            let tag = tag.map(RawValue::to_owned);
            self.slots.reply_now(conn, budget, seq, tag, |tag, out| {
                F::frame(out, |out| render::reply(out, reply, tag.as_deref(), form))
            });
        }
        after_reply(conn, reply);
    }

    /// Fills in a reply that came later. False if this connection has no
    /// such request.
    #[inline]
    pub fn complete<F: Framing>(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        seq: u64,
        reply: &Reply,
    ) -> bool {
        let done = self.slots.complete(conn, budget, seq, |tag, out| {
            F::frame(out, |out| reply_line(out, reply, tag.as_deref()))
        });
        if done.is_some() {
            after_reply(conn, reply);
        }
        done.is_some()
    }
}

impl DoorRules for LineDoor {
    fn name(&self) -> &'static str {
        "line"
    }

    fn state(&self, logged_in: bool, _settled: bool) -> &'static str {
        if logged_in {
            "logged_in"
        } else {
            "anonymous"
        }
    }

    /// Whether every reply owed has been rendered.
    #[inline]
    fn is_settled(&self) -> bool {
        self.answers.is_empty()
    }

    /// A line connection can be bound to a user (LOGIN), and gets the
    /// pushes and events of its session.
    fn opens_session(&self) -> bool {
        true
    }

    /// Runs every complete line in `conn.inbuf` that may run now.
    fn process(&mut self, id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) {
        let input = std::mem::take(&mut conn.inbuf);
        let mut pos = 0;
        while turn.requests_left > 0 && conn.accepts_requests(OUTPUT_PAUSE_BYTES) {
            match self.framer.next(&input[pos..]) {
                Step::Line { line, consumed } => {
                    pos += consumed;
                    turn.requests_left -= 1;
                    if let Some(parsed) = parse_line(line) {
                        self.answers.run::<Lines>(id, conn, turn, parsed);
                    }
                }
                Step::TooLong { consumed } => {
                    pos += consumed;
                    turn.requests_left -= 1;
                    let failure = Failure::new(
                        ErrorCode::TooLarge,
                        format!(
                            "the line is longer than {} bytes; it was discarded",
                            turn.config.max_line
                        ),
                    );
                    let seq = turn.ticket(id).seq;
                    let reply = Reply::Error(failure);
                    self.answers
                        .answer::<Lines>(conn, turn.budget, seq, None, Form::Json, &reply);
                }
                Step::Skip { consumed } => pos += consumed,
                Step::NeedMore => break,
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
        self.answers.complete::<Lines>(conn, budget, seq, reply)
    }

    /// A line connection must log in within `--login-timeout` of
    /// connecting; once logged in it may stay idle (TCP keep-alive finds
    /// dead peers; a client that wants to know sends PING).
    fn deadline(&self, at: &Progress, limits: &Timeouts) -> Option<(Millis, CloseReason)> {
        if at.logged_in {
            None
        } else {
            Some((at.opened + limits.login, CloseReason::LoginTimeout))
        }
    }

    /// A line is read as it comes; the login deadline covers a client
    /// that never finishes one.
    #[inline]
    fn times_requests(&self) -> bool {
        false
    }

    /// Writes a message event (a push).
    #[inline]
    fn push(&mut self, conn: &mut Conn, budget: &mut OutputBudget, message: &Message) {
        if conn.closing.is_none() {
            conn.queue(budget, |out| message_event(out, message));
        }
    }

    /// A `sent` or `read` event.
    #[inline]
    fn note(&mut self, conn: &mut Conn, budget: &mut OutputBudget, note: &Note) {
        if conn.closing.is_none() {
            conn.queue(budget, |out| note_event(out, note));
        }
    }

    /// `{"event":"revoked"}` or `{"event":"expired"}`: the connection is no
    /// longer bound.
    fn session_event(&mut self, conn: &mut Conn, budget: &mut OutputBudget, event: SessionEvent) {
        if conn.closing.is_none() {
            conn.queue(budget, |out| session_event(out, event));
        }
    }

    /// `{"event":"shutdown"}`.
    fn shutdown_event(&mut self, conn: &mut Conn, budget: &mut OutputBudget) {
        conn.queue(budget, |out| out.extend_from_slice(SHUTDOWN_EVENT));
    }
}

/// QUIT closes the connection once its reply is written.
fn after_reply(conn: &mut Conn, reply: &Reply) {
    if matches!(reply, Reply::Bye) && conn.closing.is_none() {
        conn.closing = Some(CloseReason::ClientQuit);
    }
}

/// What a plain line connection to a server that requires TLS is told,
/// in one line, before it is closed.
pub const PLAINTEXT_REFUSED: &[u8] =
    b"{\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\
\"this server requires TLS: connect with TLS (openssl s_client, the Python client's --tls)\"}}\n";

/// Tells a plain line connection that the server requires TLS.
pub fn refuse_plaintext(conn: &mut Conn, budget: &mut OutputBudget) {
    conn.queue(budget, |out| out.extend_from_slice(PLAINTEXT_REFUSED));
}

/// The event a line connection gets when the server begins a graceful stop.
pub const SHUTDOWN_EVENT: &[u8] = b"{\"event\":\"shutdown\"}\n";

/// Appends the event telling a line connection its session ended.
pub fn session_event(out: &mut Vec<u8>, event: SessionEvent) {
    out.extend_from_slice(b"{\"event\":\"");
    out.extend_from_slice(event.name().as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// The one line a connection the server does not take in is told (before
/// its door is known, in the line door's words): an `unavailable` error.
pub fn unavailable(why: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(why.len() + 64);
    let failure = Failure::new(ErrorCode::Unavailable, why.to_owned());
    reply_line(&mut line, &Reply::Error(failure), None);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_told_why_in_one_error_line() {
        let line = unavailable("too many \"connections\"; try again later");
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\
             \"too many \\\"connections\\\"; try again later\"}}\n"
        );
    }

    #[test]
    fn events_are_one_json_line_each() {
        let mut out = Vec::new();
        session_event(&mut out, SessionEvent::Revoked);
        out.extend_from_slice(SHUTDOWN_EVENT);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"event\":\"revoked\"}\n{\"event\":\"shutdown\"}\n"
        );
    }

    #[test]
    fn the_plaintext_refusal_is_a_bad_request_line() {
        let line: serde_json::Value = serde_json::from_slice(PLAINTEXT_REFUSED).unwrap();
        assert_eq!(line["ok"], false);
        assert_eq!(line["error"]["code"], "bad_request");
        assert!(PLAINTEXT_REFUSED.ends_with(b"}\n"));
        assert_eq!(PLAINTEXT_REFUSED.iter().filter(|&&b| b == b'\n').count(), 1);
    }
}
