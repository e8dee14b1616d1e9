//! What goes in and out of the core besides a request: the [`Ticket`] a
//! reply goes back with, what [`Core::handle`](super::Core::handle) did
//! with a request ([`Handled`]), and the effects it leaves for the server
//! to carry out ([`Outbox`]).

use super::sessions::SessionEvent;
use crate::hasher::HashJob;
use crate::message::Message;
use crate::request::{CommandKind, Note, Reply};
use crate::ConnId;
use std::sync::Arc;

/// Where a reply goes: a connection and the request's sequence number there.
/// Sequence numbers are unique for the server's lifetime, so a reply for a
/// connection that closed (and whose id was reused) is recognised and dropped.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    pub conn: ConnId,
    pub seq: u64,
    /// The command, set by [`Core::handle`](super::Core::handle), so its reply can be counted.
    pub kind: CommandKind,
}

/// A ticket is its connection and sequence number; the kind rides along.
impl PartialEq for Ticket {
    fn eq(&self, other: &Ticket) -> bool {
        (self.conn, self.seq) == (other.conn, other.seq)
    }
}

impl Eq for Ticket {}

impl std::hash::Hash for Ticket {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.conn, self.seq).hash(state);
    }
}

impl Ticket {
    pub fn new(conn: ConnId, seq: u64) -> Ticket {
        Ticket {
            conn,
            seq,
            kind: CommandKind::Unparsed,
        }
    }
}

/// What [`Core::handle`](super::Core::handle) did with a request.
#[derive(Debug)]
pub enum Handled {
    /// The reply, now.
    Now(Reply),
    /// The reply comes later through the [`Outbox`] (after a password job,
    /// a commit or a long-poll). `barrier` says the connection must not run
    /// its next request until then, because that request may depend on this
    /// one (a LOGIN binds the connection; an ACK changes what SYNC returns).
    Later { barrier: bool },
}

/// Effects of the core for the server to carry out.
#[derive(Default)]
pub struct Outbox {
    /// Replies to requests that were answered `Later`.
    pub replies: Vec<(Ticket, Reply)>,
    /// Messages to write to connections as push events.
    pub pushes: Vec<(ConnId, Arc<Message>)>,
    /// Work for the password workers.
    pub hash_jobs: Vec<HashJob>,
    /// Questions for the store (answers come to [`Core::on_read`](super::Core::on_read)).
    pub reads: Vec<crate::store::Read>,
    /// `sent` and `read` events for a user's bound connections.
    pub notes: Vec<(ConnId, Note)>,
    /// Events for line connections that are no longer bound.
    pub events: Vec<(ConnId, SessionEvent)>,
}
