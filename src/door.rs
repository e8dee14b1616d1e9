//! What the event loop asks of a door ([`DoorRules`]) and the facts a
//! door's deadline is made of ([`Progress`], [`Timeouts`]). Each door
//! answers in its own file: the line door in `line/door.rs`, the HTTP door
//! in `http/door.rs`, the first bytes before either is known in
//! `doors.rs`, which also holds the [`Door`] enum the loop calls through
//! (and a door hands a connection over to, [`DoorRules::next_door`]).
//! This file depends on no door.

use crate::config::Config;
use crate::conn::{Conn, OutputBudget};
use crate::core::SessionEvent;
use crate::doors::Door;
use crate::error::CloseReason;
use crate::message::Message;
use crate::request::{Note, Reply};
use crate::turn::Turn;
use crate::{ConnId, Millis};

/// The time limits the doors' deadlines are made of, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `--login-timeout`: a line connection logs in within it.
    pub login: Millis,
    /// `--request-timeout`: a request (or a PROXY header) arrives whole
    /// within it of its first byte.
    pub request: Millis,
    /// `--http-idle-timeout`: a keep-alive connection with nothing to do.
    pub http_idle: Millis,
    /// `--tls-handshake-timeout`.
    pub tls_handshake: Millis,
    /// `--ws-ping-interval` (0: off).
    pub ws_ping: Millis,
}

impl Timeouts {
    pub fn of(config: &Config) -> Timeouts {
        Timeouts {
            login: config.login_timeout.as_millis() as Millis,
            request: config.request_timeout.as_millis() as Millis,
            http_idle: config.http_idle_timeout.as_millis() as Millis,
            tls_handshake: config.tls_handshake_timeout.as_millis() as Millis,
            ws_ping: config.ws_ping_interval.as_millis() as Millis,
        }
    }
}

/// Where a connection stands, as far as its deadline is concerned: read
/// off the connection, the core and the edge when its timer comes due.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// When the connection was accepted.
    pub opened: Millis,
    /// When the first byte of the request now being read arrived.
    pub input_since: Option<Millis>,
    /// When the client last sent bytes or was last answered in full.
    pub last_active: Millis,
    /// A reply the next request waits for is still to come.
    pub barrier: bool,
    /// A TLS handshake is under way.
    pub handshaking: bool,
    /// The connection is bound to a user.
    pub logged_in: bool,
    /// A PROXY header is still to come.
    pub awaits_header: bool,
}

/// A door's rules, as the loop needs them.
pub trait DoorRules {
    /// The door's name in logs and figures.
    fn name(&self) -> &'static str;

    /// What the connection is doing, for the figures' connection states.
    fn state(&self, logged_in: bool, settled: bool) -> &'static str;

    /// Whether every reply owed has been rendered and no work waits for
    /// the output to be written.
    fn is_settled(&self) -> bool;

    /// Whether opening this door opens a session in the core (a
    /// connection that can be bound to a user).
    fn opens_session(&self) -> bool;

    /// Runs the requests in `conn.inbuf` that may run now.
    fn process(&mut self, id: ConnId, conn: &mut Conn, turn: &mut Turn<'_>);

    /// Fills in a reply that came later. False if this connection has no
    /// such request.
    fn complete(
        &mut self,
        conn: &mut Conn,
        budget: &mut OutputBudget,
        seq: u64,
        reply: &Reply,
    ) -> bool;

    /// When the connection must be closed, and why, given where it stands;
    /// `None` when no deadline applies.
    fn deadline(&self, at: &Progress, limits: &Timeouts) -> Option<(Millis, CloseReason)>;

    /// Whether a request must arrive whole within `--request-timeout` of
    /// its first byte (a timer is armed when one starts).
    fn times_requests(&self) -> bool;

    /// The output was written in full: runs the work owed at that point.
    /// Returns true if the connection may take requests again.
    fn on_flushed(&mut self, _id: ConnId, _conn: &mut Conn, _turn: &mut Turn<'_>) -> bool {
        false
    }

    /// Everything owed was written and nothing is in progress: the
    /// deadline by which the client must ask again, if the door has one.
    fn idle_deadline(&self, _now: Millis, _limits: &Timeouts) -> Option<Millis> {
        None
    }

    /// A message pushed to the connection's user.
    fn push(&mut self, _conn: &mut Conn, _budget: &mut OutputBudget, _message: &Message) {}

    /// A `sent` or `read` event for the connection's user.
    fn note(&mut self, _conn: &mut Conn, _budget: &mut OutputBudget, _note: &Note) {}

    /// The connection's session ended (its token was revoked or expired).
    fn session_event(
        &mut self,
        _conn: &mut Conn,
        _budget: &mut OutputBudget,
        _event: SessionEvent,
    ) {
    }

    /// The server began a graceful stop.
    fn shutdown_event(&mut self, _conn: &mut Conn, _budget: &mut OutputBudget) {}

    /// The deadline [`DoorRules::deadline`] gave came due with `reason`:
    /// true if the door acted instead of closing (a keep-alive ping), and
    /// the connection stays with its next deadline.
    fn deadline_due(
        &mut self,
        _conn: &mut Conn,
        _budget: &mut OutputBudget,
        _now: Millis,
        _reason: CloseReason,
    ) -> bool {
        false
    }

    /// The door the connection switches to now, if its last request asked
    /// for another (an HTTP upgrade to a WebSocket). The input after that
    /// request is the new door's.
    fn next_door(&mut self) -> Option<Door> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_come_from_the_flags() {
        let limits = Timeouts::of(&Config::default());
        let config = Config::default();
        assert_eq!(limits.login, config.login_timeout.as_millis() as Millis);
        assert_eq!(limits.request, config.request_timeout.as_millis() as Millis);
        assert_eq!(
            limits.http_idle,
            config.http_idle_timeout.as_millis() as Millis
        );
        assert_eq!(
            limits.tls_handshake,
            config.tls_handshake_timeout.as_millis() as Millis
        );
    }
}
