//! The loop's fair shares: new connections per address
//! (`--connections-per-address-per-second`, checked at accept before any
//! work is done for the connection; an address that storms far past it has
//! its connects dropped by the kernel for a while, see `storm_guard.rs`)
//! and read shaping per connection
//! (`--read-bytes-per-second`, see `read_shaping.rs`): a shaped socket is
//! not read until its bucket refills, and a timer wakes it then), and the
//! share of requests a connection's door runs per loop turn
//! ([`LINES_PER_TURN`], counted by the door through `Turn::requests_left`;
//! the rest waits in its input for the next turn). The
//! per-account send and fan-out rates are the core's (`core/shares.rs`).

use super::{Client, Server};
use crate::config::limits::{LINES_PER_TURN, RATE_REFUSALS_PER_TURN};
use crate::handshake_rate::HandshakeRate;
use crate::read_shaping::{Allowance, ReadRate};
use crate::storm_guard::{Cut, StormGuard};
use crate::timers::Timers;
use crate::{ConnId, Millis};
use std::net::SocketAddr;

/// A refused address is logged at most this often.
const WARN_EVERY_MS: Millis = 10_000;

/// The loop's share state.
pub(super) struct ShareState {
    connections: HandshakeRate,
    /// Addresses whose connects the kernel drops for a while.
    pub storms: StormGuard,
    pub read_rate: ReadRate,
    /// Times a connection's reading was paused by its read rate.
    pub read_pauses: u64,
    /// The loop turn `refused_in_turn` counts for, and the connections
    /// closed at accept for their rate in it.
    refusal_turn: u64,
    refused_in_turn: usize,
}

impl ShareState {
    pub fn new(config: &crate::config::Config) -> ShareState {
        let s = &config.shares;
        ShareState {
            connections: HandshakeRate::new(
                s.connections_per_address_per_second,
                s.connections_per_address_burst,
            ),
            storms: StormGuard::new(
                s.connection_storm_cuts,
                s.connection_storm_block_seconds.saturating_mul(1000),
            ),
            read_rate: ReadRate {
                per_second: s.read_bytes_per_second,
                burst: s.read_burst,
            },
            read_pauses: 0,
            refusal_turn: 0,
            refused_in_turn: 0,
        }
    }

    /// Whether this turn's share of closes at accept is spent
    /// ([`RATE_REFUSALS_PER_TURN`]): accept the rest next turn.
    pub fn refusals_spent(&self, turn: u64) -> bool {
        self.refusal_turn == turn && self.refused_in_turn >= RATE_REFUSALS_PER_TURN
    }

    /// Limit hits counted by the loop (not as a close or refusal), by flag.
    pub fn limit_hits(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("--read-bytes-per-second", self.read_pauses),
            ("--connection-storm-cuts", self.storms.listings),
        ]
    }
}

impl ShareState {
    /// How many bytes `client` (connection `id`) may read now (`None`:
    /// none; it is paused and its timer is armed to read it again).
    pub fn read_allowance(
        &mut self,
        timers: &mut Timers,
        id: ConnId,
        client: &mut Client,
        now: Millis,
    ) -> Option<usize> {
        let was_paused = client.shaper.paused_until.is_some();
        match client.shaper.allowance(self.read_rate, now) {
            Allowance::Bytes(n) => Some(n),
            Allowance::PausedUntil(until) => {
                if !was_paused {
                    self.read_pauses += 1;
                }
                let conn = &mut client.conn;
                timers.arm(&mut conn.timer_at, until, id, conn.serial);
                None
            }
        }
    }

    /// `n` bytes were read from `client`.
    pub fn spend_read(&self, client: &mut Client, n: u64) {
        client.shaper.spend(self.read_rate, n);
    }
}

/// After a door ran: counts the requests it ran against the connection's
/// share of this turn ([`LINES_PER_TURN`]), and when the share is spent
/// with input left, has the connection go on next turn (once): its socket
/// is not read meanwhile, and the rest of its input waits where it is.
pub(super) fn after_share(
    client: &mut Client,
    ran: usize,
    turn: u64,
    (id, next_turn_reads): (ConnId, &mut Vec<ConnId>),
) {
    client.shaper.took_lines(ran);
    if client.shaper.lines_left(turn, LINES_PER_TURN) == 0
        && !client.conn.inbuf.is_empty()
        && !client.shaper.hold(turn)
    {
        next_turn_reads.push(id);
    }
}

impl Server {
    /// Whether a new connection from `peer` is within its address's rate;
    /// if not it is counted and (at most every 10 s per address) logged,
    /// and the caller drops it unanswered.
    pub(super) fn connection_rate_allows(
        &mut self,
        peer: SocketAddr,
        trusted: bool,
        now: Millis,
    ) -> bool {
        if trusted || self.shares.connections.admit(peer.ip(), now) {
            return true;
        }
        *self.refused.entry("connection_rate").or_insert(0) += 1;
        let shares = &mut self.shares;
        if shares.refusal_turn != self.turn {
            (shares.refusal_turn, shares.refused_in_turn) = (self.turn, 0);
        }
        shares.refused_in_turn += 1;
        if self
            .shares
            .connections
            .warn_due(peer.ip(), now, WARN_EVERY_MS)
        {
            let s = &self.config.shares;
            log::warn!(
                "closing new connections from {}: more than {} a second, {} at once \
                 (--connections-per-address-per-second, --connections-per-address-burst)",
                peer.ip(),
                s.connections_per_address_per_second,
                s.connections_per_address_burst
            );
        }
        match self.shares.storms.cut(peer.ip(), now) {
            Cut::Counted => {}
            Cut::Listed => {
                let s = &self.config.shares;
                log::warn!(
                    "dropping new connections from {} unanswered for {} s: {} closed at accept \
                     within a second (--connection-storm-cuts, \
                     --connection-storm-block-seconds)",
                    crate::peer_addr::address_key(peer.ip()),
                    s.connection_storm_block_seconds,
                    s.connection_storm_cuts
                );
                self.install_storm_filter();
            }
            Cut::ListFull => self.warnings.storm_list_full.warn(now, || {
                format!(
                    "{} addresses are storming at once: {} is only closed at accept \
                     (--connection-storm-cuts)",
                    crate::storm_guard::MAX_LISTED,
                    peer.ip()
                )
            }),
        }
        false
    }

    /// Answers again the storming addresses whose time is up.
    pub(super) fn expire_storms(&mut self, now: Millis) {
        let expired = self.shares.storms.expire(now);
        if expired.is_empty() {
            return;
        }
        for key in expired {
            log::info!("answering new connections from {key} again");
        }
        self.install_storm_filter();
    }

    /// Gives the listening socket the filter for the storming addresses
    /// listed now (none: no filter). If the kernel will not take it, the
    /// server stops listing and storms are only closed at accept.
    fn install_storm_filter(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        let listed = self.shares.storms.listed();
        let program = (!listed.is_empty()).then(|| crate::syn_filter::program(&listed));
        if let Err(e) = crate::syn_filter::install(listener, program.as_deref()) {
            log::warn!(
                "cannot have the kernel drop a connection storm's connects: {e}; storms are \
                 only closed at accept from now on (--connection-storm-cuts)"
            );
            self.shares.storms.disable();
        }
    }

    /// At a connection's timer: a shaped connection whose pause is over is
    /// read again next turn; one still paused has its timer armed again.
    pub(super) fn wake_shaped(&mut self, id: ConnId, now: Millis) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let Some(until) = client.shaper.paused_until.get() else {
            return;
        };
        if until <= now {
            self.next_turn_reads.push(id);
        } else {
            let conn = &mut client.conn;
            self.timers.arm(&mut conn.timer_at, until, id, conn.serial);
        }
    }
}
