//! Reading and dispatch: a connection's socket is read within its turn's
//! budget (and not at all while its client leaves its replies unread), the
//! first bytes pick its door (or start TLS, or are refused as plaintext),
//! and its input is handed to that door, which runs the requests.

use super::{queue_write, shares, Server};
use crate::config::limits::{LINES_PER_TURN, OUTPUT_PAUSE_BYTES, READ_BUDGET_PER_TURN, READ_CHUNK};
use crate::doors::Door;
use crate::error::CloseReason;
use crate::opt_u64::OptU64;
use crate::sniff::{sniff, DoorKind};
use crate::turn::Turn;
use crate::{ConnId, Millis};
use std::io;

impl Server {
    /// Runs buffered input, then reads the socket until it would block, the
    /// connection must not take more requests now, or its read budget for
    /// this turn is spent.
    pub(super) fn read(&mut self, id: ConnId, now: Millis) {
        self.process_input(id, now);
        let turn = self.turn;
        loop {
            let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
                return;
            };
            let conn = &mut client.conn;
            if conn.read_closed || self.stopping.is_some() {
                break;
            }
            if !conn.accepts_requests(OUTPUT_PAUSE_BYTES) {
                // Flow control: a client that does not read its replies is
                // not read from until it does.
                conn.paused_on_output = conn.owed() >= OUTPUT_PAUSE_BYTES;
                break;
            }
            conn.enter_turn(turn);
            if conn.read_in_turn as usize >= READ_BUDGET_PER_TURN {
                self.next_turn_reads.push(id);
                break;
            }
            if client.shaper.lines_left(turn, LINES_PER_TURN) == 0 {
                // Its share of lines is run: the rest, and the socket, next turn.
                if !client.shaper.hold(turn) {
                    self.next_turn_reads.push(id);
                }
                break;
            }
            // Fair shares: past its read rate the socket waits for a timer.
            let Some(allowed) = self
                .shares
                .read_allowance(&mut self.timers, id, client, now)
            else {
                break;
            };
            let conn = &mut client.conn;
            let before = conn.bytes_in;
            let read = conn.read_input(&mut self.scratch[..allowed.min(READ_CHUNK)]);
            let taken = client.conn.bytes_in - before;
            self.shares.spend_read(client, taken);
            let conn = &mut client.conn;
            match read {
                Ok(0) => {
                    conn.read_closed = true;
                    if !conn.inbuf.is_empty() {
                        // A request is a whole line: a client that stopped
                        // mid-line (it may have crashed mid-write) did not
                        // finish asking, so nothing of it is run.
                        log::debug!(
                            "connection {id}: closed with {} bytes of an unfinished request, ignored",
                            conn.inbuf.len()
                        );
                    }
                    self.peer_closed(id, now);
                    break;
                }
                Ok(n) => {
                    conn.last_active = now;
                    if conn.inbuf.is_empty() {
                        conn.input_since = OptU64::some(now);
                        if client.door.times_requests() {
                            let request_deadline = now + self.timeouts.request;
                            self.timers
                                .arm(&mut conn.timer_at, request_deadline, id, conn.serial);
                        }
                    }
                    crate::bufpool::ensure(&mut conn.inbuf);
                    conn.inbuf.extend_from_slice(&self.scratch[..n]);
                    self.process_input(id, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    log::debug!("connection {id} ({}): TLS error: {e}", conn.peer);
                    return self.close(id, CloseReason::TlsError);
                }
                Err(e) => {
                    log::debug!("connection {id}: read error {e}");
                    return self.close(id, CloseReason::IoError);
                }
            }
        }
        self.mark_dirty(id);
    }

    /// Hands the connection's unparsed input to its door (choosing the door
    /// first, from the first bytes).
    fn process_input(&mut self, id: ConnId, now: Millis) {
        let header_pending = self.client(id).is_some_and(|c| c.edge.header_pending);
        if header_pending && !self.read_proxy_header(id, now) {
            return;
        }
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if client.door.is_sniffing() {
            if client.conn.closing.is_some() {
                return; // refused, its reason is on the way out
            }
            let Some(kind) = sniff(&client.conn.inbuf) else {
                return;
            };
            let secure = client.conn.is_tls();
            let plaintext_refused = !secure && self.tls.is_some() && !self.config.allow_plaintext;
            match kind {
                DoorKind::Tls if !secure => return self.start_tls(id, now),
                _ if plaintext_refused => return self.refuse_plaintext(id, kind),
                _ => {
                    client.door = Door::open(kind, secure, client.edge.via(), &self.config);
                    if client.door.opens_session() {
                        self.core.open_session(id);
                    }
                }
            }
        }
        let turn_no = self.turn;
        let share = client.shaper.lines_left(turn_no, LINES_PER_TURN);
        let mut turn = Turn::new(
            &mut self.core,
            &mut self.outbox,
            &self.config,
            now,
            &mut self.budget,
            &mut self.next_seq,
        );
        turn.requests_left = share;
        let input_before = client.conn.inbuf.len();
        let rendered_before = turn.core.counters.message_bytes_rendered;
        client.door.process(id, &mut client.conn, &mut turn);
        let rendered = turn.core.counters.message_bytes_rendered - rendered_before;
        let left = turn.requests_left;
        // The read rate counts what a request costs: its bytes (charged as
        // they were read), or the message it made when that is larger.
        let consumed = input_before.saturating_sub(client.conn.inbuf.len());
        let beyond_input = rendered.saturating_sub(consumed as u64);
        if beyond_input > 0 {
            self.shares.spend_read(client, beyond_input);
        }
        shares::after_share(
            client,
            share - left,
            turn_no,
            (id, &mut self.next_turn_reads),
        );
        queue_write(&mut self.dirty, id, &mut client.conn);
        if let Some(next) = client.door.next_door() {
            self.hand_over(id, next, now);
        }
    }

    /// The door asked to hand the connection to `next` (an HTTP upgrade to
    /// a WebSocket): the new door gets its session and its deadline, and
    /// the input after the request that switched is its own.
    fn hand_over(&mut self, id: ConnId, next: Door, now: Millis) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        log::debug!(
            "connection {id} ({}): {} door -> {} door",
            client.conn.peer,
            client.door.name(),
            next.name()
        );
        client.door = next;
        if client.door.opens_session() {
            self.core.open_session(id);
        }
        let progress = client.progress(false, self.config.proxy_protocol);
        if let Some((at, _)) = client.door.deadline(&progress, &self.timeouts) {
            let conn = &mut client.conn;
            self.timers.arm(&mut conn.timer_at, at, id, conn.serial);
        }
        self.process_input(id, now);
    }

    /// The client opened with a TLS handshake: its session starts, and
    /// the door is sniffed again from the first plaintext inside it. The
    /// handshake must finish within `--tls-handshake-timeout`.
    fn start_tls(&mut self, id: ConnId, now: Millis) {
        if !self.admit_handshake(id, now) {
            return;
        }
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let conn = &mut client.conn;
        let Some(config) = &self.tls else {
            log::debug!(
                "connection {id} ({}): a TLS handshake, but no --tls-cert is configured",
                conn.peer
            );
            return self.close(id, CloseReason::TlsError);
        };
        if let Err(e) = conn.start_tls(config) {
            log::debug!("connection {id} ({}): TLS error: {e}", conn.peer);
            return self.close(id, CloseReason::TlsError);
        }
        let handshake_deadline = now + self.timeouts.tls_handshake;
        self.timers
            .arm(&mut conn.timer_at, handshake_deadline, id, conn.serial);
        self.mark_dirty(id);
    }

    /// A plain connection to a server that requires TLS: told why in its
    /// door's words, then closed.
    fn refuse_plaintext(&mut self, id: ConnId, kind: DoorKind) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let conn = &mut client.conn;
        log::debug!("connection {id} ({}): plaintext refused", conn.peer);
        Door::refuse_plaintext(kind, conn, &mut self.budget);
        conn.closing = Some(CloseReason::PlaintextRefused);
        conn.consume_input(conn.inbuf.len());
        queue_write(&mut self.dirty, id, conn);
    }
}
