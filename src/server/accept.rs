//! Taking connections in: a bounded number of accepts per turn, the
//! server's and each address's connection limits (a refused connection is
//! told why in one line), and a pause on a timer when the process runs out
//! of file descriptors.

use super::edge::{address_full, Edge};
use super::{refuse, Client, Server, FIRST_CONN};
use crate::config::limits::{ACCEPTS_PER_TURN, ACCEPT_RETRY_MS};
use crate::conn::Conn;
use crate::doors::{Door, Sniffing};
use crate::Millis;
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::io;
use std::net::SocketAddr;

impl Server {
    pub(super) fn accept(&mut self, now: Millis) {
        for _ in 0..ACCEPTS_PER_TURN {
            if self.accept_paused_until.is_some() {
                return;
            }
            if self.shares.refusals_spent(self.turn) {
                break; // a connect storm's closes: the rest next turn
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_out_of_resources(&e) => {
                    // The backlog stays full and mio is edge-triggered: no
                    // new event would come, so try again on a timer.
                    self.warnings.accept_failed.warn(now, || {
                        format!(
                            "cannot accept connections: {e}; retrying every {ACCEPT_RETRY_MS} ms \
                             ({} open; lower --max-connections or raise the open-file limit)",
                            self.live
                        )
                    });
                    self.accept_paused_until = Some(now + ACCEPT_RETRY_MS);
                }
                // A connection that failed before it was accepted
                // (ECONNABORTED and the like): only it is lost.
                Err(e) => log::debug!("accept failed: {e}"),
            }
        }
        // The backlog may hold more: mio is edge-triggered, so come back
        // next turn rather than wait for an event that may not come.
        self.accept_more = true;
    }

    /// Takes a new connection in, or tells it why not and closes it.
    fn admit(&mut self, mut socket: TcpStream, peer: SocketAddr, now: Millis) {
        let trusted = self.is_trusted_proxy(peer);
        if !self.connection_rate_allows(peer, trusted, now) {
            return; // dropped unanswered: no work for a connection storm
        }
        let max = self.config.max_connections;
        if self.live >= max {
            *self.refused.entry("server_full").or_insert(0) += 1;
            self.warnings.server_full.warn(now, || {
                format!("refusing connections: {max} open (--max-connections)")
            });
            return refuse(
                &mut socket,
                "the server has too many connections; try again later",
            );
        }
        // A trusted proxy's connections count for their clients once
        // its PROXY header names them (see `edge`).
        if !trusted
            && !self
                .per_address
                .has_room(peer.ip(), self.config.max_connections_per_address)
        {
            let per = self.config.max_connections_per_address;
            *self.refused.entry("address_full").or_insert(0) += 1;
            self.warnings.address_full.warn(now, || {
                format!(
                    "refusing connections from {}: {per} open (--max-connections-per-address)",
                    peer.ip()
                )
            });
            return refuse(&mut socket, &address_full(per));
        }
        let _ = socket.set_nodelay(true);
        crate::keepalive::enable(&socket);
        let id = self.free.pop().unwrap_or_else(|| {
            self.clients.push(None);
            self.clients.len() - 1
        });
        let registered =
            self.poll
                .registry()
                .register(&mut socket, Token(id + FIRST_CONN), Interest::READABLE);
        if let Err(e) = registered {
            log::error!("cannot watch connection from {peer}: {e}");
            self.free.push(id);
            return;
        }
        self.next_serial += 1;
        let mut client = Client {
            conn: Conn::new(socket, peer, self.next_serial, now),
            door: Door::Sniffing(Sniffing),
            edge: Edge::new(trusted),
            shaper: Default::default(),
        };
        // A new connection must say which door it wants (or send its
        // PROXY header) in time. Armed no later than a request's limit from
        // now: its first bytes then need no second heap entry for their
        // request deadline (it cannot be earlier), so a client that logs
        // in at once leaves one entry, not two, until it comes due. A
        // silent connection is re-checked then and re-armed for its true
        // deadline.
        let progress = client.progress(false, self.config.proxy_protocol);
        if let Some((at, _)) = client.door.deadline(&progress, &self.timeouts) {
            let conn = &mut client.conn;
            let at = at.min(now.saturating_add(self.timeouts.request));
            self.timers.arm(&mut conn.timer_at, at, id, conn.serial);
        }
        log::debug!("connection {id} from {peer}");
        self.core.open_connection(id, peer.ip());
        self.clients[id] = Some(client);
        self.per_address.add(peer.ip());
        self.live += 1;
    }
}

/// Errors after which `accept` keeps failing until descriptors or memory
/// are freed.
fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == 23 /* ENFILE */ || code == 24 /* EMFILE */
            || code == 105 /* ENOBUFS */ || code == 12 /* ENOMEM */
    )
}
