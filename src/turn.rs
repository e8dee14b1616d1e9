//! What a door needs while it runs requests in one event-loop turn: the
//! core, where effects go, the time, and request sequence numbers.

use crate::config::Config;
use crate::conn::OutputBudget;
use crate::core::{Core, Outbox, Ticket};
use crate::{ConnId, Millis};

pub struct Turn<'a> {
    pub core: &'a mut Core,
    pub outbox: &'a mut Outbox,
    pub config: &'a Config,
    /// The time of this turn, read once after the poll returned.
    pub now: Millis,
    /// The server-wide output budget every byte of output is counted in.
    pub budget: &'a mut OutputBudget,
    next_seq: &'a mut u64,
    /// Requests the door may still run for this connection in this turn
    /// (`LINES_PER_TURN`, set by the loop; unlimited where it sets none).
    /// A door counts one per request and stops at 0, leaving the rest of
    /// its input where it is for the next turn: no copy, no second scan.
    pub requests_left: usize,
}

impl<'a> Turn<'a> {
    pub fn new(
        core: &'a mut Core,
        outbox: &'a mut Outbox,
        config: &'a Config,
        now: Millis,
        budget: &'a mut OutputBudget,
        next_seq: &'a mut u64,
    ) -> Turn<'a> {
        Turn {
            core,
            outbox,
            config,
            now,
            budget,
            next_seq,
            requests_left: usize::MAX,
        }
    }

    /// A ticket for a new request on `conn`; unique for the server's life.
    pub fn ticket(&mut self, conn: ConnId) -> Ticket {
        *self.next_seq += 1;
        Ticket::new(conn, *self.next_seq)
    }
}
