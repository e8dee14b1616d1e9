//! The WebSocket door's state on one connection and its rules. Each text
//! message is one request of the line protocol (JSON or text form), run
//! through the line door's own parser and [`Answers`]; each reply and
//! event is the line door's JSON line in one text frame ([`Frames`]).
//!
//! Its rules for the loop: the client must log in within
//! `--login-timeout` of the upgrade; once logged in, a connection the
//! client has sent nothing on for `--ws-ping-interval` is pinged, and
//! closed if it then stays silent for another interval. A ping from the
//! client is answered by one pong for its newest ping once the output has
//! drained, so a ping flood costs its sender's read budget and nothing
//! more. Whatever ends the connection (a violation, the client's close, a
//! QUIT, the server's stop) is said in one close frame, written after the
//! replies still owed and followed by nothing.

use super::frames::{Decoder, Step, Violation};
use super::output::{self, Frames};
use crate::config::limits::OUTPUT_PAUSE_BYTES;
use crate::conn::{Conn, OutputBudget};
use crate::core::SessionEvent;
use crate::door::{DoorRules, Progress, Timeouts};
use crate::error::CloseReason;
use crate::line::door::{session_event, Answers, Framing, SHUTDOWN_EVENT};
use crate::line::parse::{parse_line, Form};
use crate::line::render::{message_event, note_event};
use crate::message::Message;
use crate::request::{Note, Reply};
use crate::turn::Turn;
use crate::{ConnId, Millis};
use tungstenite::protocol::frame::coding::{CloseCode, Control};

/// The WebSocket door's state on one connection.
pub struct WsDoor {
    decoder: Decoder,
    answers: Answers,
    /// When the connection switched to this door: the login deadline runs
    /// from here.
    since: Millis,
    /// When the server's keep-alive ping went out, if it did.
    ping_sent: Option<Millis>,
    /// The payload of the client's newest ping not answered yet.
    pong_owed: Option<Vec<u8>>,
    /// The close frame to send once every reply owed is written.
    close_owed: Option<(CloseCode, &'static str)>,
    /// The close frame is written: nothing more goes out.
    close_sent: bool,
}

impl WsDoor {
    /// The door of a connection upgraded at `now`; messages up to
    /// `max_message` bytes (`--max-line`).
    pub fn new(max_message: usize, now: Millis) -> WsDoor {
        WsDoor {
            decoder: Decoder::new(max_message),
            answers: Answers::default(),
            since: now,
            ping_sent: None,
            pong_owed: None,
            close_owed: None,
            close_sent: false,
        }
    }

    /// Whether events may still be written (no close is under way).
    fn open(&self, conn: &Conn) -> bool {
        self.close_owed.is_none() && conn.closing.is_none()
    }

    /// Ends the connection with `code`: no more input is read, and the
    /// close frame follows the replies owed.
    fn begin_close(
        &mut self,
        conn: &mut Conn,
        reason: CloseReason,
        code: CloseCode,
        why: &'static str,
    ) {
        if conn.closing.is_none() {
            conn.closing = Some(reason);
        }
        if self.close_owed.is_none() {
            self.close_owed = Some((code, why));
        }
    }

    /// Writes what is owed outside the replies: the close frame once no
    /// reply is pending (a QUIT's reply asks for one), or else the pong.
    fn settle(&mut self, conn: &mut Conn, budget: &mut OutputBudget) {
        if self.close_sent {
            return;
        }
        if self.close_owed.is_none() && conn.closing == Some(CloseReason::ClientQuit) {
            self.close_owed = Some((CloseCode::Normal, "bye"));
        }
        if let Some((code, why)) = self.close_owed {
            if self.answers.is_empty() {
                conn.queue(budget, |out| {
                    if let Some(payload) = self.pong_owed.take() {
                        output::control(out, Control::Pong, &payload);
                    }
                    output::close(out, code, why)
                });
                self.close_sent = true;
            }
            return;
        }
        if conn.owed() == 0 {
            if let Some(payload) = self.pong_owed.take() {
                conn.queue(budget, |out| output::control(out, Control::Pong, &payload));
            }
        }
    }
}

impl DoorRules for WsDoor {
    fn name(&self) -> &'static str {
        "ws"
    }

    fn state(&self, logged_in: bool, _settled: bool) -> &'static str {
        if logged_in {
            "logged_in"
        } else {
            "anonymous"
        }
    }

    #[inline]
    fn is_settled(&self) -> bool {
        self.answers.is_empty()
    }

    /// Bound to a user by LOGIN or AUTH, like a line connection.
    fn opens_session(&self) -> bool {
        true
    }

    /// Runs every complete message in `conn.inbuf` that may run now.
    fn process(&mut self, id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) {
        let mut input = std::mem::take(&mut conn.inbuf);
        let mut pos = 0;
        while turn.requests_left > 0
            && conn.accepts_requests(OUTPUT_PAUSE_BYTES)
            && self.close_owed.is_none()
        {
            let step = self.decoder.next(&mut input[pos..]);
            match step {
                Step::Text { text, consumed } => {
                    turn.requests_left -= 1;
                    run(&mut self.answers, id, conn, turn, text);
                    pos += consumed;
                }
                Step::Assembled { text, consumed } => {
                    turn.requests_left -= 1;
                    run(&mut self.answers, id, conn, turn, &text);
                    pos += consumed;
                }
                Step::Fragment { consumed } | Step::Pong { consumed } => pos += consumed,
                Step::Ping { payload, consumed } => {
                    let owed = self.pong_owed.get_or_insert_with(Vec::new);
                    owed.clear();
                    owed.extend_from_slice(payload);
                    pos += consumed;
                }
                Step::Close { code, consumed } => {
                    pos += consumed;
                    log::debug!("connection {id}: WebSocket closed by the client ({code:?})");
                    // The usual answer echoes the client's code.
                    let code = code.map_or(CloseCode::Normal, CloseCode::from);
                    self.begin_close(conn, CloseReason::WsClosed, code, "");
                }
                Step::NeedMore => break,
                Step::Fail(violation) => {
                    log::debug!(
                        "connection {id} ({}): WebSocket closed: {}",
                        conn.peer,
                        violation.reason()
                    );
                    let reason = match violation {
                        Violation::TooBig => CloseReason::WsMessageTooBig,
                        Violation::InvalidUtf8 => CloseReason::WsInvalidUtf8,
                        Violation::Binary => CloseReason::WsUnsupportedData,
                        Violation::Protocol(_) => CloseReason::WsProtocolError,
                    };
                    self.begin_close(conn, reason, violation.code(), violation.reason());
                    pos = input.len();
                }
            }
        }
        if conn.closing.is_some() || self.close_owed.is_some() {
            // Nothing after a close is read.
            pos = input.len();
        }
        conn.inbuf = input;
        conn.consume_input(pos);
        self.settle(conn, turn.budget);
    }

    fn complete(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        seq: u64,
        reply: &Reply,
    ) -> bool {
        let done = self.answers.complete::<Frames>(conn, budget, seq, reply);
        if done {
            self.settle(conn, budget);
        }
        done
    }

    /// Not logged in: the login deadline. Logged in: the keep-alive, one
    /// interval after the client was last heard from (when the door pings
    /// it, see [`WsDoor::deadline_due`]), or one after that ping.
    fn deadline(&self, at: &Progress, limits: &Timeouts) -> Option<(Millis, CloseReason)> {
        if !at.logged_in {
            return Some((self.since + limits.login, CloseReason::LoginTimeout));
        }
        if limits.ws_ping == 0 {
            return None;
        }
        let heard = at.last_active.max(self.since);
        let from = match self.ping_sent {
            Some(sent) if heard <= sent => sent,
            _ => heard,
        };
        Some((from + limits.ws_ping, CloseReason::WsPingTimeout))
    }

    #[inline]
    fn times_requests(&self) -> bool {
        false
    }

    /// The keep-alive deadline came with no ping out: ping now (the
    /// connection stays). With a ping out and nothing heard since, the
    /// connection is closed.
    fn deadline_due(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        now: Millis,
        reason: CloseReason,
    ) -> bool {
        if reason != CloseReason::WsPingTimeout || self.close_sent {
            return false;
        }
        let unanswered = self.ping_sent.is_some_and(|sent| conn.last_active <= sent);
        if unanswered {
            return false;
        }
        self.ping_sent = Some(now);
        conn.queue(budget, |out| output::control(out, Control::Ping, b"gotalk"));
        true
    }

    /// A pong owed waits for the output to drain: it goes now, and the
    /// connection is handed back to the loop to write it.
    fn on_flushed(&mut self, _id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) -> bool {
        if self.pong_owed.is_none() || self.close_owed.is_some() {
            return false;
        }
        self.settle(conn, turn.budget);
        true
    }

    #[inline]
    fn push(&mut self, conn: &mut Conn, budget: &mut OutputBudget, message: &Message) {
        if self.open(conn) {
            conn.queue(budget, |out| {
                Frames::frame(out, |out| message_event(out, message))
            });
        }
    }

    /// A `sent` or `read` event, as the line door writes it.
    fn note(&mut self, conn: &mut Conn, budget: &mut OutputBudget, note: &Note) {
        if self.open(conn) {
            conn.queue(budget, |out| {
                Frames::frame(out, |out| note_event(out, note))
            });
        }
    }

    fn session_event(&mut self, conn: &mut Conn, budget: &mut OutputBudget, event: SessionEvent) {
        if self.open(conn) {
            conn.queue(budget, |out| {
                Frames::frame(out, |out| session_event(out, event))
            });
        }
    }

    /// `{"event":"shutdown"}`, then close code 1001 once the replies owed
    /// are written.
    fn shutdown_event(&mut self, conn: &mut Conn, budget: &mut OutputBudget) {
        if !self.open(conn) {
            return;
        }
        conn.queue(budget, |out| {
            Frames::frame(out, |out| out.extend_from_slice(SHUTDOWN_EVENT))
        });
        self.close_owed = Some((CloseCode::Away, "the server is shutting down"));
        self.settle(conn, budget);
    }
}

/// Runs one text message as a request of the line protocol. A trailing
/// newline (a tool that sends lines) is not part of it; replies are
/// always JSON, one message each (HELP too).
#[inline]
fn run(answers: &mut Answers, id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>, text: &[u8]) {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if let Some(mut parsed) = parse_line(text) {
        parsed.form = Form::Json;
        answers.run::<Frames>(id, conn, turn, parsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Timeouts = Timeouts {
        login: 60_000,
        request: 10_000,
        http_idle: 30_000,
        tls_handshake: 5_000,
        ws_ping: 30_000,
    };

    fn at(logged_in: bool, last_active: Millis) -> Progress {
        Progress {
            opened: 0,
            last_active,
            logged_in,
            ..Progress::default()
        }
    }

    #[test]
    fn login_runs_from_the_upgrade_then_the_keep_alive_from_the_last_word() {
        let mut door = WsDoor::new(1024, 5_000);
        assert_eq!(door.name(), "ws");
        assert!(door.opens_session());
        assert!(!door.times_requests());
        assert_eq!(
            door.deadline(&at(false, 0), &LIMITS),
            Some((65_000, CloseReason::LoginTimeout))
        );
        // Logged in: one interval after the client was last heard from.
        assert_eq!(
            door.deadline(&at(true, 9_000), &LIMITS),
            Some((39_000, CloseReason::WsPingTimeout))
        );
        // A ping went out at 39 s and nothing came since: one more interval.
        door.ping_sent = Some(39_000);
        assert_eq!(
            door.deadline(&at(true, 9_000), &LIMITS),
            Some((69_000, CloseReason::WsPingTimeout))
        );
        // Something came after the ping: the next ping is due from then.
        assert_eq!(
            door.deadline(&at(true, 40_000), &LIMITS),
            Some((70_000, CloseReason::WsPingTimeout))
        );
        let off = Timeouts {
            ws_ping: 0,
            ..LIMITS
        };
        assert_eq!(door.deadline(&at(true, 9_000), &off), None);
        assert_eq!(door.state(true, true), "logged_in");
        assert_eq!(door.state(false, true), "anonymous");
    }
}
