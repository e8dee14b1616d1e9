//! Requests from the admin socket (`crate::admin::listener`) on the loop:
//! `stats` is answered with the `/stats` figures; every other request
//! runs in the core like a client's, under a connection id of its own
//! from a range no socket uses ([`ADMIN_CONNS`]), so its reply comes back
//! through the same outbox and is routed here instead of to a door.

use super::Server;
use crate::admin::listener::AdminCall;
use crate::admin::wire::{self, WireRequest};
use crate::core::{Handled, Ticket};
use crate::metrics::Format;
use crate::request::{Call, Reply, Request};
use crate::{ConnId, Millis};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// Connection ids from here on are admin requests, one id each.
pub const ADMIN_CONNS: ConnId = 1 << 40;

/// The admin requests the core has not answered yet.
#[derive(Default)]
pub(super) struct AdminRequests {
    calls: Option<crossbeam_channel::Receiver<AdminCall>>,
    waiting: HashMap<ConnId, crossbeam_channel::Sender<String>>,
    next: ConnId,
}

impl AdminRequests {
    pub(super) fn new(calls: Option<crossbeam_channel::Receiver<AdminCall>>) -> AdminRequests {
        AdminRequests {
            calls,
            ..AdminRequests::default()
        }
    }
}

impl Server {
    /// Takes in what the admin socket's threads sent.
    pub(super) fn collect_admin(&mut self, now: Millis) {
        let Some(calls) = &self.admin.calls else {
            return;
        };
        let calls: Vec<AdminCall> = calls.try_iter().collect();
        for call in calls {
            let request = match call.request {
                WireRequest::Stats => {
                    let _ = call.reply.send(wire::stats(&self.figures(Format::Json)));
                    continue;
                }
                WireRequest::Core(request) => request,
            };
            let conn = ADMIN_CONNS + self.admin.next;
            self.admin.next += 1;
            self.next_seq += 1;
            // Its own address, never a client's: an operator's password
            // jobs queue apart from every client's.
            self.core
                .open_connection(conn, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
            let ticket = Ticket::new(conn, self.next_seq);
            let call_ = Call::new(Request::Admin(Box::new(request)));
            match self.core.handle(ticket, call_, now, &mut self.outbox) {
                Handled::Now(reply) => {
                    let _ = call.reply.send(wire::render(&reply));
                    self.core.close_session(conn);
                }
                Handled::Later { .. } => {
                    self.admin.waiting.insert(conn, call.reply);
                }
            }
        }
    }

    /// A later reply to an admin request: back to its socket thread.
    /// Returns `false` for a client's connection.
    pub(super) fn admin_reply(&mut self, conn: ConnId, reply: &Reply) -> bool {
        if conn < ADMIN_CONNS {
            return false;
        }
        if let Some(to) = self.admin.waiting.remove(&conn) {
            let _ = to.send(wire::render(reply));
            self.core.close_session(conn);
        }
        true
    }
}
