//! The write pass at the end of a turn: every connection with new output
//! is written within the turn's budgets, WRITABLE is armed only where the
//! socket is full, the door runs what follows a flush, and a connection
//! that is done closes. Also the output caps: a client past its own cap,
//! or holding the most when all together pass the server's, is closed.

use super::{Server, FIRST_CONN};
use crate::config::limits::{
    OUTPUT_TOTAL_RELIEF_PERCENT, TOTAL_WRITE_BUDGET_PER_TURN, WRITE_BUDGET_PER_TURN,
};
use crate::conn::Flushed;
use crate::error::CloseReason;
use crate::turn::Turn;
use crate::{ConnId, Millis};
use mio::{Interest, Token};

impl Server {
    /// Writes every connection's new output, arms WRITABLE where the socket
    /// is full, runs work owed once output is flushed, and closes what is done.
    pub(super) fn write_all(&mut self, now: Millis) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for (i, &id) in dirty.iter().enumerate() {
            if self.written_this_turn >= TOTAL_WRITE_BUDGET_PER_TURN {
                // The turn's write budget is spent: the rest go first next turn.
                for &later in &dirty[i..] {
                    if let Some(client) = self.client(later) {
                        client.conn.queued_write = false;
                    }
                    self.next_turn_writes.push(later);
                }
                break;
            }
            self.write(id, now);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty; // keep the allocation for the next turn
        }
    }

    fn write(&mut self, id: ConnId, now: Millis) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        client.conn.queued_write = false;
        if let Some(reason) = client.conn.overflow {
            return self.close_overflowing(id, reason, now);
        }
        let conn = &mut client.conn;
        conn.enter_turn(self.turn);
        let written_before = conn.bytes_out;
        let allowed = WRITE_BUDGET_PER_TURN.saturating_sub(conn.written_in_turn as usize);
        let flushed = conn.flush(&mut self.budget, allowed);
        let written = (conn.bytes_out - written_before) as usize;
        conn.written_in_turn = conn
            .written_in_turn
            .saturating_add(u32::try_from(written).unwrap_or(u32::MAX));
        self.written_this_turn += written;
        let flushed = match flushed {
            Ok(flushed) => flushed,
            Err(e) => {
                log::debug!("connection {id}: write error {e}");
                return self.close(id, CloseReason::IoError);
            }
        };
        let all = flushed == Flushed::All;
        if all {
            let mut turn = Turn::new(
                &mut self.core,
                &mut self.outbox,
                &self.config,
                now,
                &mut self.budget,
                &mut self.next_seq,
            );
            if client.door.on_flushed(id, &mut client.conn, &mut turn) {
                // It took no requests while this work was owed.
                self.resume.push(id);
            }
        }
        let settled = client.is_settled();
        let conn = &mut client.conn;
        if all && settled && !conn.paused_on_output {
            if let Some(reason) = conn.closing {
                return self.close(id, reason);
            }
            if conn.read_closed {
                return self.close(id, CloseReason::PeerClosed);
            }
            if self.stopping.is_some() {
                return self.close(id, CloseReason::ServerShutdown);
            }
            if let Some(idle_deadline) = client.door.idle_deadline(now, &self.timeouts) {
                // Idle between requests: the door's time limit runs.
                conn.last_active = now;
                self.timers
                    .arm(&mut conn.timer_at, idle_deadline, id, conn.serial);
            }
        }
        if all && conn.paused_on_output {
            // The client read its replies: take its requests again.
            conn.paused_on_output = false;
            self.resume.push(id);
        }
        if flushed == Flushed::Budget {
            self.next_turn_writes.push(id);
        }
        let want_writable = flushed == Flushed::Blocked;
        if want_writable != conn.writable_armed {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(id + FIRST_CONN);
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.socket, token, interest)
            {
                log::error!("connection {id}: cannot change interest: {e}");
                return self.close(id, CloseReason::IoError);
            }
            conn.writable_armed = want_writable;
        }
    }

    pub(super) fn close_overflowing(&mut self, id: ConnId, reason: CloseReason, now: Millis) {
        if let Some(client) = self.client(id) {
            let (peer, owed) = (client.conn.peer, client.conn.owed());
            let per_conn = self.budget.per_conn;
            self.warnings.slow_consumer.warn(now, || {
                format!(
                    "connection {id} ({peer}) reads too slowly: {owed} bytes queued, more than \
                     {per_conn} (--max-output); disconnecting (its messages stay in the mailbox)"
                )
            });
        }
        self.close(id, reason);
    }

    /// All clients together hold more unread output than the budget:
    /// close the ones holding the most until there is room again. Only
    /// runs past the budget; the check itself is a comparison.
    pub(super) fn relieve_output_budget(&mut self, now: Millis) {
        let target = self.budget.limit / 100 * OUTPUT_TOTAL_RELIEF_PERCENT;
        let mut holders: Vec<(usize, ConnId)> = self
            .clients
            .iter()
            .enumerate()
            .filter_map(|(id, c)| c.as_ref().map(|c| (c.conn.owed(), id)))
            .filter(|&(owed, _)| owed > 0)
            .collect();
        holders.sort_unstable_by(|a, b| b.cmp(a));
        let mut closed = 0;
        for (owed, id) in holders {
            if self.budget.queued <= target {
                break;
            }
            log::debug!("connection {id}: closed to relieve the output budget ({owed} bytes)");
            self.close(id, CloseReason::OutputBudget);
            closed += 1;
        }
        self.budget.over = self.budget.queued > self.budget.limit;
        let (queued, limit) = (self.budget.queued, self.budget.limit);
        self.warnings.output_budget.warn(now, || {
            format!(
                "unread output passed {limit} bytes (--max-output-total): disconnected the \
                 {closed} clients holding the most; {queued} bytes remain queued"
            )
        });
    }
}
