//! The server's edge: who a connection's client is and whether its
//! address may open more. A trusted proxy's PROXY header (read before TLS
//! and before the door is sniffed) moves the connection, its
//! per-address count and the core's throttles to the client it names; a
//! PROXY header from anyone else is refused. TLS handshakes are held to a
//! per-address rate. Kept apart from the rest of the loop, which only
//! calls in at accept, before sniffing and before TLS.

use super::Server;
use crate::error::CloseReason;
use crate::handshake_rate::HandshakeRate;
use crate::http::forwarded::Via;
use crate::log_limit::LogLimit;
use crate::proxy_protocol::{self, Detect, Parsed};
use crate::{ConnId, Millis};
use std::net::SocketAddr;

/// What the edge knows of one connection.
pub(super) struct Edge {
    /// The socket's peer is in `--trusted-proxies`.
    pub trusted: bool,
    /// The first bytes (before TLS) are still to be checked for a PROXY
    /// header.
    pub header_pending: bool,
    /// A PROXY header named the client: `conn.peer` is the client's.
    pub named: bool,
}

impl Edge {
    pub fn new(trusted: bool) -> Edge {
        Edge {
            trusted,
            header_pending: true,
            named: false,
        }
    }

    /// How the HTTP door treats forwarding headers.
    pub fn via(&self) -> Via {
        if self.trusted && !self.named {
            Via::TrustedProxy
        } else {
            Via::Direct
        }
    }

    /// Whether per-address budgets hold the connection: not a trusted
    /// proxy's own (its clients are counted once named, or per request).
    pub fn counted(&self) -> bool {
        !self.trusted || self.named
    }

    /// Whether the PROXY header must arrive within `--request-timeout`.
    pub fn awaits_header(&self, required: bool) -> bool {
        required && self.trusted && self.header_pending
    }
}

/// The edge's server-wide state.
pub(super) struct EdgeState {
    pub handshakes: HandshakeRate,
    proxy_refused: LogLimit,
    handshake_rate: LogLimit,
}

impl EdgeState {
    pub fn new(config: &crate::config::Config) -> EdgeState {
        EdgeState {
            handshakes: HandshakeRate::new(
                config.tls_handshakes_per_address_second,
                config.tls_handshake_burst,
            ),
            proxy_refused: LogLimit::new(10_000),
            handshake_rate: LogLimit::new(10_000),
        }
    }
}

impl Server {
    /// Whether `peer` is a trusted proxy.
    pub(super) fn is_trusted_proxy(&self, peer: SocketAddr) -> bool {
        crate::cidr::any_contains(&self.config.trusted_proxies, peer.ip())
    }

    /// Reads a PROXY header from the first bytes of `id`, if one is there
    /// or must be. True when the door may be sniffed now; false while
    /// bytes are missing or once the connection is refused.
    pub(super) fn read_proxy_header(&mut self, id: ConnId, now: Millis) -> bool {
        let required = self.config.proxy_protocol;
        let Some(client) = self.client(id) else {
            return false;
        };
        if client.conn.closing.is_some() {
            return false;
        }
        let (trusted, peer) = (client.edge.trusted, client.conn.peer);
        let buf = &client.conn.inbuf;
        match proxy_protocol::detect(buf) {
            Detect::NeedMore => false,
            Detect::NotHeader if trusted && required => {
                self.refuse_proxy(id, now, || {
                    format!(
                        "refusing a connection from proxy {peer}: it sent no PROXY header \
                         (--proxy-protocol)"
                    )
                });
                false
            }
            Detect::NotHeader => {
                client.edge.header_pending = false;
                true
            }
            Detect::Header if !trusted => {
                self.refuse_proxy(id, now, || {
                    format!(
                        "refusing a PROXY header from {peer}: not in --trusted-proxies \
                         (list the proxy there if it is yours)"
                    )
                });
                false
            }
            Detect::Header => match proxy_protocol::parse(buf) {
                Ok(Parsed::NeedMore) => false,
                Err(why) => {
                    self.refuse_proxy(id, now, || {
                        format!("refusing a connection from proxy {peer}: {why}")
                    });
                    false
                }
                Ok(Parsed::Header(header)) => {
                    client.conn.consume_input(header.consumed);
                    client.edge.header_pending = false;
                    match header.source {
                        Some(source) => self.move_to_client(id, source, now),
                        // LOCAL: the proxy's own connection (a health check).
                        None => true,
                    }
                }
            },
        }
    }

    /// The connection is `source`'s: its per-address count, the core's
    /// throttles and the log lines move there. False if that address has
    /// no room (the connection is then refused like at accept).
    fn move_to_client(&mut self, id: ConnId, source: SocketAddr, now: Millis) -> bool {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return false;
        };
        let proxy = client.conn.peer;
        client.conn.peer = source;
        client.edge.named = true;
        let open = self.per_address.move_to(proxy.ip(), source.ip());
        self.core.set_address(id, source.ip());
        log::debug!("connection {id} from proxy {proxy} is for {source}");
        let per = self.config.max_connections_per_address;
        if open <= per {
            return true;
        }
        // Counted once, as a close for `address_full`.
        self.warnings.address_full.warn(now, || {
            format!(
                "refusing connections from {}: {per} open (--max-connections-per-address)",
                source.ip()
            )
        });
        super::refuse(&mut client.conn.socket, &address_full(per));
        self.close(id, CloseReason::AddressFull);
        false
    }

    fn refuse_proxy(&mut self, id: ConnId, now: Millis, message: impl FnOnce() -> String) {
        *self.refused.entry("proxy_header").or_insert(0) += 1;
        self.edge.proxy_refused.warn(now, message);
        self.close(id, CloseReason::ProxyRefused);
    }

    /// Whether `id` may start a TLS handshake now, within its address's
    /// rate; if not it is closed at once.
    pub(super) fn admit_handshake(&mut self, id: ConnId, now: Millis) -> bool {
        let Some(client) = self.clients.get(id).and_then(Option::as_ref) else {
            return false;
        };
        if !client.edge.counted() {
            return true;
        }
        let peer = client.conn.peer.ip();
        if self.edge.handshakes.admit(peer, now) {
            return true;
        }
        // Counted once, as a close for `tls_handshake_rate`.
        let (rate, burst) = (
            self.config.tls_handshakes_per_address_second,
            self.config.tls_handshake_burst,
        );
        self.edge.handshake_rate.warn(now, || {
            format!(
                "refusing TLS handshakes from {peer}: more than {rate} a second, {burst} at \
                 once (--tls-handshakes-per-address-second, --tls-handshake-burst)"
            )
        });
        self.close(id, CloseReason::HandshakeRate);
        false
    }
}

/// What a connection from an address at its connection limit is told.
pub(super) fn address_full(per: usize) -> String {
    format!("too many connections from your address (at most {per}); close some first")
}
