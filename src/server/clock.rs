//! What happens because time passes: how long the loop may sleep, the
//! connections whose deadline passed (each door says what its deadline
//! is), and the graceful stop on SIGTERM or SIGINT with its own deadline.

use super::Server;
use crate::error::CloseReason;
use crate::opt_u64::OptU64;
use crate::signals::StopSignal;
use crate::Millis;
use std::time::Duration;

/// A graceful stop in progress.
pub(super) struct Stopping {
    signal: StopSignal,
    started: Millis,
    deadline: Millis,
}

impl Server {
    /// How long the poll may wait: not past the next deadline of the core,
    /// of a connection, of the accept pause, of a storm's listing or of the
    /// stop; not at all when work was carried over from the last turn.
    pub(super) fn poll_timeout(&self) -> Option<Duration> {
        if !self.next_turn_reads.is_empty() || !self.next_turn_writes.is_empty() || self.accept_more
        {
            return Some(Duration::ZERO);
        }
        let deadline = self
            .core
            .next_deadline()
            .min(self.timers.next().unwrap_or(Millis::MAX))
            .min(self.accept_paused_until.unwrap_or(Millis::MAX))
            .min(self.shares.storms.next_expiry().unwrap_or(Millis::MAX))
            .min(self.stopping.as_ref().map_or(Millis::MAX, |s| s.deadline));
        if deadline == Millis::MAX {
            return None;
        }
        Some(Duration::from_millis(
            deadline.saturating_sub(super::now_ms()) + 1,
        ))
    }

    /// Closes connections whose deadline passed; re-arms the others. A
    /// storming address whose time is up is answered again.
    pub(super) fn expire(&mut self, now: Millis) {
        self.expire_storms(now);
        while let Some(due) = self.timers.pop_due(now) {
            let Some(client) = self.client(due.conn) else {
                continue;
            };
            if !due.is_for(client.conn.serial) || client.conn.timer_at.get() != Some(due.at) {
                continue; // closed and reused, or re-armed earlier
            }
            client.conn.timer_at = OptU64::NONE;
            self.wake_shaped(due.conn, now);
            let logged_in = self.core.session_user(due.conn).is_some();
            let Some(client) = self.clients[due.conn].as_mut() else {
                continue;
            };
            let progress = client.progress(logged_in, self.config.proxy_protocol);
            let conn = &mut client.conn;
            match client.door.deadline(&progress, &self.timeouts) {
                Some((at, reason))
                    if at <= now
                        && client
                            .door
                            .deadline_due(conn, &mut self.budget, now, reason) =>
                {
                    // The door acted instead (a keep-alive ping): its output
                    // goes out with the turn, and its next deadline runs.
                    super::queue_write(&mut self.dirty, due.conn, conn);
                    let progress = client.progress(logged_in, self.config.proxy_protocol);
                    if let Some((at, _)) = client.door.deadline(&progress, &self.timeouts) {
                        let conn = &mut client.conn;
                        self.timers
                            .arm(&mut conn.timer_at, at, due.conn, conn.serial);
                    }
                }
                Some((at, reason)) if at <= now => {
                    log::debug!("connection {} from {}: {reason:?}", due.conn, conn.peer);
                    self.close(due.conn, reason);
                }
                Some((at, _)) => {
                    let conn = &mut client.conn;
                    self.timers
                        .arm(&mut conn.timer_at, at, due.conn, conn.serial);
                }
                None => {}
            }
        }
    }

    /// A graceful stop: the port is closed, nothing more is read from
    /// clients, requests already read run to their replies (password
    /// checks and commits in flight finish), long-polls end with their
    /// empty reply, each door tells its clients in its own words, and each
    /// connection closes once everything owed to it is written. The loop
    /// ends when no connection and no work is left, or at the deadline.
    pub(super) fn begin_stop(&mut self, signal: StopSignal, now: Millis) {
        if self.stopping.is_some() {
            return;
        }
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.accept_paused_until = None;
        let deadline = now + self.config.shutdown_timeout.as_millis() as Millis;
        log::info!(
            "{signal}: shutting down; finishing the requests of {} connections (at most {} s)",
            self.live,
            self.config.shutdown_timeout.as_secs()
        );
        self.stopping = Some(Stopping {
            signal,
            started: now,
            deadline,
        });
        self.core.end_long_polls(&mut self.outbox);
        for id in 0..self.clients.len() {
            let Some(client) = self.clients[id].as_mut() else {
                continue;
            };
            client
                .door
                .shutdown_event(&mut client.conn, &mut self.budget);
            super::queue_write(&mut self.dirty, id, &mut client.conn);
        }
    }

    /// Whether the stop is done (or out of time, then what is left is cut).
    pub(super) fn stop_finished(&mut self, now: Millis) -> bool {
        let Some(stopping) = &self.stopping else {
            return false;
        };
        let (signal, started, deadline) = (stopping.signal, stopping.started, stopping.deadline);
        if self.live == 0 && self.core.is_idle() {
            log::info!(
                "stopped after {signal} in {} ms: every request read was answered",
                now.saturating_sub(started)
            );
            return true;
        }
        if now < deadline {
            return false;
        }
        let left = self.live;
        for id in 0..self.clients.len() {
            self.close(id, CloseReason::ShutdownTimeout);
        }
        log::warn!(
            "stopped after {signal}: --shutdown-timeout ({} s) ran out; closed {left} connections \
             that were still owed replies{}",
            self.config.shutdown_timeout.as_secs(),
            if self.core.is_idle() {
                ""
            } else {
                " (password checks or commits were still in progress)"
            }
        );
        true
    }
}
