//! The doors there are, and the one enum the event loop calls through.
//! The loop (`server/`) knows no door's rules: it calls [`Door`]'s
//! methods, which hand each call to the connection's door in a `match`
//! (no dynamic dispatch, no allocation). The rules themselves are
//! [`DoorRules`] (in `door.rs`), answered by the line door
//! (`line/door.rs`), the HTTP door (`http/door.rs`), the WebSocket door
//! (`ws/door.rs`, which the HTTP door hands a connection over to) and,
//! before any is known, [`Sniffing`] here.
//!
//! A new door is one variant of [`Door`], one arm in [`each_door!`] and one
//! in [`Door::open`] (or a door's [`DoorRules::next_door`]); nothing in
//! `server/` changes.

use crate::config::Config;
use crate::conn::{Conn, OutputBudget};
use crate::core::SessionEvent;
use crate::door::{DoorRules, Progress, Timeouts};
use crate::error::CloseReason;
use crate::http::door::HttpDoor;
use crate::http::forwarded::Via;
use crate::line::door::LineDoor;
use crate::message::Message;
use crate::request::{Note, Reply};
use crate::sniff::DoorKind;
use crate::turn::Turn;
use crate::ws::door::WsDoor;
use crate::{ConnId, Millis};

/// What a connection speaks.
pub enum Door {
    /// No complete first line yet.
    Sniffing(Sniffing),
    Line(LineDoor),
    /// Boxed, like `Ws`: the HTTP door is twice the line door, and every
    /// connection's slot (the line door's, an online user's) would be as
    /// large. An HTTP connection pays one allocation when it opens.
    Http(Box<HttpDoor>),
    /// Switched to from the HTTP door (`GET /ws`). Boxed: it is the
    /// largest door, and every connection's slot is as large as the largest.
    Ws(Box<WsDoor>),
}

/// Runs `$body` with `$door` bound to the door inside `$value`.
macro_rules! each_door {
    ($value:expr, $door:ident => $body:expr) => {
        match $value {
            Door::Sniffing($door) => $body,
            Door::Line($door) => $body,
            Door::Http($door) => $body,
            Door::Ws($door) => $body,
        }
    };
}

impl Door {
    /// The door of a connection whose first bytes said `kind`: `secure`
    /// when it is TLS, `via` whether a trusted proxy named no client.
    pub fn open(kind: DoorKind, secure: bool, via: Via, config: &Config) -> Door {
        match kind {
            // Inside TLS, a second handshake byte is just a bad line.
            DoorKind::Line | DoorKind::Tls => Door::Line(LineDoor::new(config.max_line)),
            DoorKind::Http => Door::Http(Box::new(HttpDoor::new(secure, via))),
        }
    }

    /// Tells a plain connection to a server that requires TLS why it is
    /// closed, in the words of the door its first bytes asked for.
    pub fn refuse_plaintext(kind: DoorKind, conn: &mut Conn, budget: &mut OutputBudget) {
        match kind {
            DoorKind::Http => crate::http::door::refuse_plaintext(conn, budget),
            DoorKind::Line | DoorKind::Tls => crate::line::door::refuse_plaintext(conn, budget),
        }
    }

    /// What a connection the server does not take in (or refuses before
    /// its door is known) is told, in one line: the line door's words, which
    /// a person at `nc` reads as well as a client.
    pub fn refusal(why: &str) -> Vec<u8> {
        crate::line::door::unavailable(why)
    }

    #[inline]
    pub fn is_sniffing(&self) -> bool {
        matches!(self, Door::Sniffing(_))
    }

    #[inline]
    pub fn name(&self) -> &'static str {
        each_door!(self, door => door.name())
    }

    #[inline]
    pub fn state(&self, logged_in: bool, settled: bool) -> &'static str {
        each_door!(self, door => door.state(logged_in, settled))
    }

    #[inline]
    pub fn is_settled(&self) -> bool {
        each_door!(self, door => door.is_settled())
    }

    #[inline]
    pub fn opens_session(&self) -> bool {
        each_door!(self, door => door.opens_session())
    }

    #[inline]
    pub fn process(&mut self, id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) {
        each_door!(self, door => door.process(id, conn, turn))
    }

    #[inline]
    pub fn complete(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        seq: u64,
        reply: &Reply,
    ) -> bool {
        each_door!(self, door => door.complete(conn, budget, seq, reply))
    }

    #[inline]
    pub fn deadline(&self, at: &Progress, limits: &Timeouts) -> Option<(Millis, CloseReason)> {
        each_door!(self, door => door.deadline(at, limits))
    }

    #[inline]
    pub fn times_requests(&self) -> bool {
        each_door!(self, door => door.times_requests())
    }

    #[inline]
    pub fn on_flushed(&mut self, id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>) -> bool {
        each_door!(self, door => door.on_flushed(id, conn, turn))
    }

    #[inline]
    pub fn idle_deadline(&self, now: Millis, limits: &Timeouts) -> Option<Millis> {
        each_door!(self, door => door.idle_deadline(now, limits))
    }

    #[inline]
    pub fn push(&mut self, conn: &mut Conn, budget: &mut OutputBudget, message: &Message) {
        each_door!(self, door => door.push(conn, budget, message))
    }

    #[inline]
    pub fn note(&mut self, conn: &mut Conn, budget: &mut OutputBudget, note: &Note) {
        each_door!(self, door => door.note(conn, budget, note))
    }

    #[inline]
    pub fn session_event(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        event: SessionEvent,
    ) {
        each_door!(self, door => door.session_event(conn, budget, event))
    }

    #[inline]
    pub fn shutdown_event(&mut self, conn: &mut Conn, budget: &mut OutputBudget) {
        each_door!(self, door => door.shutdown_event(conn, budget))
    }

    pub fn deadline_due(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        now: Millis,
        reason: CloseReason,
    ) -> bool {
        each_door!(self, door => door.deadline_due(conn, budget, now, reason))
    }

    pub fn next_door(&mut self) -> Option<Door> {
        each_door!(self, door => door.next_door())
    }
}

/// A connection whose first bytes have not yet said which door it wants
/// (or whose PROXY header or TLS handshake is still under way).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sniffing;

impl DoorRules for Sniffing {
    fn name(&self) -> &'static str {
        "sniffing"
    }

    fn state(&self, _logged_in: bool, _settled: bool) -> &'static str {
        "new"
    }

    fn is_settled(&self) -> bool {
        true
    }

    fn opens_session(&self) -> bool {
        false
    }

    /// Nothing runs before the door is known.
    fn process(&mut self, _id: ConnId, _conn: &mut Conn, _turn: &mut Turn<'_>) {}

    fn complete(&mut self, _: &mut Conn, _: &mut OutputBudget, _: u64, _: &Reply) -> bool {
        false
    }

    /// A PROXY header must arrive within `--request-timeout` of connecting;
    /// a TLS handshake within `--tls-handshake-timeout` (and the login
    /// limit); otherwise the first request within its own limit, and the
    /// connection must log in (or say which door) within `--login-timeout`.
    fn deadline(&self, at: &Progress, limits: &Timeouts) -> Option<(Millis, CloseReason)> {
        let login = at.opened + limits.login;
        if at.awaits_header {
            return Some((at.opened + limits.request, CloseReason::RequestTimeout));
        }
        if at.handshaking {
            let handshake = at.opened + limits.tls_handshake;
            return Some((handshake.min(login), CloseReason::TlsHandshakeTimeout));
        }
        match at.input_since.map(|since| since + limits.request) {
            Some(request) if request < login => Some((request, CloseReason::RequestTimeout)),
            _ => Some((login, CloseReason::LoginTimeout)),
        }
    }

    fn times_requests(&self) -> bool {
        true
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

    fn opened_at(opened: Millis) -> Progress {
        Progress {
            opened,
            last_active: opened,
            ..Progress::default()
        }
    }

    #[test]
    fn a_new_connection_must_say_which_door_before_the_login_limit() {
        let door = Door::Sniffing(Sniffing);
        assert_eq!(
            door.deadline(&opened_at(1_000), &LIMITS),
            Some((61_000, CloseReason::LoginTimeout))
        );
        // A first request that started must arrive whole within its limit.
        let reading = Progress {
            input_since: Some(2_000),
            ..opened_at(1_000)
        };
        assert_eq!(
            door.deadline(&reading, &LIMITS),
            Some((12_000, CloseReason::RequestTimeout))
        );
        // ... unless the login limit comes first.
        let late = Progress {
            input_since: Some(55_000),
            ..opened_at(1_000)
        };
        assert_eq!(
            door.deadline(&late, &LIMITS),
            Some((61_000, CloseReason::LoginTimeout))
        );
    }

    #[test]
    fn a_proxy_header_and_a_tls_handshake_have_their_own_limits() {
        let door = Door::Sniffing(Sniffing);
        let header = Progress {
            awaits_header: true,
            handshaking: true,
            ..opened_at(1_000)
        };
        assert_eq!(
            door.deadline(&header, &LIMITS),
            Some((11_000, CloseReason::RequestTimeout))
        );
        let handshake = Progress {
            handshaking: true,
            ..opened_at(1_000)
        };
        assert_eq!(
            door.deadline(&handshake, &LIMITS),
            Some((6_000, CloseReason::TlsHandshakeTimeout))
        );
        let slow_login = Timeouts {
            login: 3_000,
            ..LIMITS
        };
        assert_eq!(
            door.deadline(&handshake, &slow_login),
            Some((4_000, CloseReason::TlsHandshakeTimeout))
        );
    }

    #[test]
    fn a_line_connection_must_log_in_and_may_then_stay_idle() {
        let door = Door::open(DoorKind::Line, false, Via::Direct, &Config::default());
        assert_eq!(door.name(), "line");
        assert!(door.opens_session());
        assert!(!door.times_requests());
        assert_eq!(
            door.deadline(&opened_at(1_000), &LIMITS),
            Some((61_000, CloseReason::LoginTimeout))
        );
        let logged_in = Progress {
            logged_in: true,
            input_since: Some(2_000),
            ..opened_at(1_000)
        };
        assert_eq!(door.deadline(&logged_in, &LIMITS), None);
        assert_eq!(door.idle_deadline(5_000, &LIMITS), None);
        assert_eq!(door.state(true, true), "logged_in");
        assert_eq!(door.state(false, true), "anonymous");
    }

    #[test]
    fn an_http_connection_has_a_request_limit_and_an_idle_limit() {
        let door = Door::open(DoorKind::Http, false, Via::Direct, &Config::default());
        assert_eq!(door.name(), "http");
        assert!(!door.opens_session());
        assert!(door.times_requests());
        let reading = Progress {
            input_since: Some(5_000),
            ..opened_at(1_000)
        };
        assert_eq!(
            door.deadline(&reading, &LIMITS),
            Some((15_000, CloseReason::RequestTimeout))
        );
        let idle = Progress {
            last_active: 7_000,
            ..opened_at(1_000)
        };
        assert_eq!(
            door.deadline(&idle, &LIMITS),
            Some((37_000, CloseReason::IdleTimeout))
        );
        // A request in progress (a long-poll, a password check) has none.
        let waiting = Progress {
            barrier: true,
            ..idle
        };
        assert_eq!(door.deadline(&waiting, &LIMITS), None);
        assert_eq!(door.idle_deadline(7_000, &LIMITS), Some(37_000));
        assert_eq!(door.state(false, true), "idle");
        assert_eq!(door.state(false, false), "request");
    }

    #[test]
    fn a_tls_hello_inside_tls_opens_the_line_door() {
        let door = Door::open(DoorKind::Tls, true, Via::Direct, &Config::default());
        assert_eq!(door.name(), "line");
        assert_eq!(Door::Sniffing(Sniffing).name(), "sniffing");
        assert_eq!(Door::Sniffing(Sniffing).state(false, true), "new");
    }
}
