//! The core's effects and the helpers' results. Each turn, [`Server::settle`]
//! carries out what the core asked for (replies, pushes, session events,
//! password jobs, the store batch and reads) until nothing more follows;
//! [`Server::collect_background`] takes in what the helper threads finished
//! (password checks, store commits and reads, other nodes' events, figures
//! requests, files read again after SIGHUP, stop signals). Store results are drained in one place,
//! [`Server::drain_store`].

use super::{queue_write, Server};
use crate::conn::{Conn, OutputBudget};
use crate::doors::Door;
use crate::figures::{Figures, ServerFigures};
use crate::metrics::Format;
use crate::request::Reply;
use crate::{ConnId, Millis};
use std::collections::BTreeMap;

impl Server {
    /// Password results, store commits and metrics requests that arrived.
    pub(super) fn collect_background(&mut self, now: Millis) {
        while let Ok(done) = self.hasher.results.try_recv() {
            self.core.on_hash_done(done, now, &mut self.outbox);
        }
        self.drain_store(now);
        while let Some(events) = self.store.remote() {
            self.core.on_remote(events, &mut self.outbox);
        }
        if let Some(requests) = &self.stats_requests {
            while let Ok(request) = requests.try_recv() {
                let _ = request.reply.send(self.figures(request.format));
            }
        }
        if let Some(reloads) = &self.reloads {
            while let Ok(reloaded) = reloads.try_recv() {
                // Read on the reload thread; only swapped here.
                if let Some(tls) = reloaded.tls {
                    self.tls = Some(tls);
                }
                if let Some(key) = reloaded.token_key {
                    self.core.set_token_key(key);
                }
            }
        }
        self.collect_admin(now);
        let signal = self.stop_signals.as_ref().and_then(|s| s.try_recv().ok());
        if let Some(signal) = signal {
            self.begin_stop(signal, now);
        }
    }

    /// Takes in the store's finished commits, then hands it the reads the
    /// core asked for (after the commits, so a read asked now sees them),
    /// then takes in finished reads.
    fn drain_store(&mut self, now: Millis) {
        while let Some(done) = self.store.completed() {
            self.core.on_committed(done, now, &mut self.outbox);
        }
        for read in self.outbox.reads.drain(..) {
            self.store.read(read);
        }
        while let Some(done) = self.store.read_done() {
            self.core.on_read(done, now, &mut self.outbox);
        }
    }

    /// Carries out the core's effects until nothing more follows from them
    /// this turn: replies, pushes, password jobs, the store batch and, with
    /// an immediate store, its commit.
    pub(super) fn settle(&mut self, now: Millis) {
        loop {
            for job in self.outbox.hash_jobs.drain(..) {
                self.hasher.submit(job);
            }
            let replies = std::mem::take(&mut self.outbox.replies);
            for (ticket, reply) in &replies {
                self.core.count_reply(*ticket, reply, now);
                if !self.admin_reply(ticket.conn, reply) {
                    self.deliver_reply(ticket.conn, ticket.seq, reply);
                }
            }
            let pushes = std::mem::take(&mut self.outbox.pushes);
            for (id, message) in &pushes {
                self.door_output(*id, now, |door, conn, budget| {
                    door.push(conn, budget, message)
                });
            }
            let notes = std::mem::take(&mut self.outbox.notes);
            for (id, note) in &notes {
                self.door_output(*id, now, |door, conn, budget| door.note(conn, budget, note));
            }
            let events = std::mem::take(&mut self.outbox.events);
            for &(id, event) in &events {
                self.door_output(id, now, |door, conn, budget| {
                    door.session_event(conn, budget, event)
                });
            }
            let presence = self.core.take_presence();
            if !presence.is_empty() {
                self.store.set_presence(presence);
            }
            if let Some(batch) = self.core.take_batch() {
                self.store.submit(batch);
            }
            self.drain_store(now);
            let resume = std::mem::take(&mut self.resume);
            for &id in &resume {
                self.read(id, now);
            }
            if self.is_quiet() {
                return;
            }
        }
    }

    /// Whether no effect or resumed connection waits to be handled.
    pub(super) fn is_quiet(&self) -> bool {
        self.resume.is_empty()
            && self.outbox.replies.is_empty()
            && self.outbox.pushes.is_empty()
            && self.outbox.notes.is_empty()
            && self.outbox.events.is_empty()
            && self.outbox.hash_jobs.is_empty()
            && self.outbox.reads.is_empty()
            && !self.core.has_open_writes()
    }

    fn deliver_reply(&mut self, id: ConnId, seq: u64, reply: &Reply) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let conn = &mut client.conn;
        let had_barrier = conn.barrier.is_some();
        if client.door.complete(conn, &mut self.budget, seq, reply) {
            if had_barrier && conn.barrier.is_none() {
                self.resume.push(id);
            }
            queue_write(&mut self.dirty, id, conn);
        }
    }

    /// Output for `id` from outside its own input (a push, an event): its
    /// door renders it, then a connection past its output cap is closed
    /// and any other is written at the turn's end.
    pub(super) fn door_output(
        &mut self,
        id: ConnId,
        now: Millis,
        render: impl FnOnce(&mut Door, &mut Conn, &mut OutputBudget),
    ) {
        let Some(client) = self.clients.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        render(&mut client.door, &mut client.conn, &mut self.budget);
        match client.conn.overflow {
            Some(reason) => self.close_overflowing(id, reason, now),
            None => queue_write(&mut self.dirty, id, &mut client.conn),
        }
    }

    /// The figures `/metrics` and `/stats` serve, in `format`.
    pub(super) fn figures(&self, format: Format) -> String {
        let mut connections = BTreeMap::new();
        for (id, client) in self.clients.iter().enumerate() {
            let Some(client) = client else { continue };
            let logged_in = self.core.session_user(id).is_some();
            let state = client.door.state(logged_in, client.is_settled());
            *connections.entry((client.door.name(), state)).or_insert(0) += 1;
        }
        let figures = Figures {
            core: &self.core,
            server: ServerFigures {
                connections,
                max_connections: self.config.max_connections,
                queued_output_bytes: self.budget.queued,
                max_output_total: self.budget.limit,
                accept_paused: self.accept_paused_until.is_some(),
                storm_addresses: self.shares.storms.listed_count(),
                closed: &self.closed,
                refused: &self.refused,
                limit_hits: self.shares.limit_hits(),
            },
            password_seconds: self.hasher.seconds.snapshot(),
            store: self.store.metrics(),
        };
        match format {
            Format::Json => figures.json(),
            Format::Prometheus => figures.prometheus(),
        }
    }
}
