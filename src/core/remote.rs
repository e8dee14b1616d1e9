//! Changes other nodes on the same PostgreSQL database made, as the core
//! follows them (see `cluster.rs` for what is kept and why): the
//! dispatcher's glue between the [`Cluster`](super::cluster::Cluster)
//! owner, the mailboxes, the sessions and the waiters. Inactive with
//! SQLite and `--memory`.

use super::cluster::{ClusterRead, RESYNC_PAGE};
use super::reads::{message_of, Waiting};
use super::{Core, Outbox, Revoke};
use crate::store::{ReadAnswer, ReadOp, Remote, StoredMessage};
use crate::{MessageId, Millis, UserId};
use std::collections::BTreeMap;

impl Core {
    /// Presence changes for the store (see the module comment).
    pub fn take_presence(&mut self) -> Vec<(UserId, bool)> {
        self.cluster.take_presence()
    }

    /// Changes other nodes made, in the order they committed.
    pub fn on_remote(&mut self, events: Vec<Remote>, out: &mut Outbox) {
        let mut stored: BTreeMap<UserId, Vec<MessageId>> = BTreeMap::new();
        for event in events {
            match event {
                Remote::Stored { user, id, cost } => {
                    self.cluster.stored(id);
                    self.mailboxes.remote_stored(user, id, cost);
                    stored.entry(user).or_default().push(id);
                }
                Remote::Acked {
                    user,
                    upto,
                    count,
                    bytes,
                } => {
                    let floor = self.cluster.known_floor(upto, self.last_message_id);
                    self.mailboxes.remote_acked(user, floor, count, bytes);
                }
                Remote::Revoked {
                    user,
                    token,
                    expires,
                } => self.take_back(user, Revoke::One { token, expires }, None, out),
                Remote::Voided { user, from } => {
                    self.take_back(user, Revoke::All { from }, None, out)
                }
                Remote::Resync => self.resync(out),
                Remote::Sent { user, with, id } => {
                    if self.sessions.is_online(user) {
                        let op = ReadOp::History {
                            user,
                            with,
                            before: id.saturating_add(1),
                            limit: 1,
                            max_bytes: usize::MAX,
                        };
                        let waiting = Waiting::Cluster(ClusterRead::Sent { id });
                        self.reads.submit(op, waiting, out);
                    }
                }
                Remote::Read {
                    by,
                    with,
                    upto,
                    by_name,
                    with_name,
                } => {
                    let note = crate::request::ReadNote {
                        by: by_name.into(),
                        by_id: by,
                        with: with_name.into(),
                        with_id: with,
                        upto,
                    };
                    self.tell_read(note, None, out);
                }
            }
        }
        for (user, ids) in stored {
            let held = self.sessions.is_online(user) || self.waiters.count_of(user) > 0;
            if !held {
                continue;
            }
            let after = ids.iter().min().map_or(0, |id| id - 1);
            self.read_to_push(user, after, ids, out);
        }
    }

    /// Reads `user`'s messages above `after` to push those in `ids` (all
    /// when empty).
    fn read_to_push(
        &mut self,
        user: UserId,
        after: MessageId,
        ids: Vec<MessageId>,
        out: &mut Outbox,
    ) {
        let limit = if ids.is_empty() {
            RESYNC_PAGE
        } else {
            // The ids told, and room for messages between them known here.
            ids.len() * 2 + 16
        };
        let op = ReadOp::Page {
            user,
            after,
            limit,
            max_bytes: usize::MAX,
        };
        self.reads
            .submit(op, Waiting::Cluster(ClusterRead::Push { user, ids }), out);
    }

    /// Every bound user: announced again, figures read again where
    /// nothing is in flight, and what is above the last push read.
    fn resync(&mut self, out: &mut Outbox) {
        if !self.cluster.enabled() {
            return;
        }
        self.mailboxes.forget_idle();
        let (waiters, sessions) = (&self.waiters, &self.sessions);
        self.cluster.recheck_polling(
            |user| waiters.count_of(user) > 0,
            |user| sessions.is_online(user),
        );
        let users: Vec<UserId> = self.sessions.online();
        for user in users {
            self.cluster.announce(user);
            if let Some(before) = self.mailboxes.quiet_fingerprint(user) {
                let waiting = Waiting::Cluster(ClusterRead::Figures { user, before });
                self.reads.submit(ReadOp::Mailbox(user), waiting, out);
            }
            let mark = self.cluster.mark(user).unwrap_or(0);
            self.read_to_push(user, mark, Vec::new(), out);
        }
    }

    /// The store answered a read the cluster asked for.
    pub(super) fn on_cluster_read(
        &mut self,
        read: ClusterRead,
        answer: Result<ReadAnswer, crate::store::StoreError>,
        now: Millis,
        out: &mut Outbox,
    ) {
        let answer = match answer {
            Ok(answer) => answer,
            // The next resync tries again.
            Err(e) => return log::debug!("a read for another node's change failed: {e}"),
        };
        match (read, answer) {
            (ClusterRead::Figures { user, before }, ReadAnswer::Mailbox { count, bytes, .. })
                if self.mailboxes.resync(user, before, count, bytes) =>
            {
                self.fill(user, out);
            }
            (ClusterRead::Push { user, ids }, ReadAnswer::Page(page)) => {
                self.push_remote(user, &ids, &page, now, out);
            }
            (ClusterRead::Sent { id }, ReadAnswer::History { messages, .. }) => {
                if let Some(stored) = messages.iter().find(|m| m.id == id) {
                    self.tell_sent(&message_of(stored), None, out);
                }
            }
            _ => {}
        }
    }

    /// Pushes the messages of `page` that `ids` names (all above the mark
    /// when `ids` is empty) to `user`'s connections, and runs their
    /// long-polls again.
    fn push_remote(
        &mut self,
        user: UserId,
        ids: &[MessageId],
        page: &[StoredMessage],
        now: Millis,
        out: &mut Outbox,
    ) {
        let mark = self.cluster.mark(user);
        let mut newest = mark.unwrap_or(0);
        let mut any = false;
        for stored in page {
            let wanted = if ids.is_empty() {
                mark.is_some_and(|m| stored.id > m)
            } else {
                ids.contains(&stored.id)
            };
            if !wanted || stored.id <= self.mailboxes.floor(user) {
                continue;
            }
            newest = newest.max(stored.id);
            any = true;
            let message = message_of(stored);
            if let Some(conns) = self.sessions.subscribers(user) {
                for &conn in conns {
                    out.pushes.push((conn, message.clone()));
                }
                self.counters.messages_pushed += conns.len() as u64;
            }
        }
        self.cluster.advance(user, newest);
        // Ids told beyond the page: read on.
        let last = page.last().map_or(MessageId::MAX, |m| m.id);
        let beyond: Vec<MessageId> = ids.iter().copied().filter(|&id| id > last).collect();
        if !beyond.is_empty() {
            self.read_to_push(user, last, beyond, out);
        }
        // More above a full resync page: read on.
        if ids.is_empty() && page.len() >= RESYNC_PAGE && mark.is_some() {
            self.read_to_push(user, newest, Vec::new(), out);
        }
        if any {
            for waiter in self.waiters.take_user(user) {
                let poll = waiter.poll;
                if let Some(reply) = self.read_or_wait(waiter.ticket, user, poll, now, out) {
                    out.replies.push((waiter.ticket, reply));
                }
            }
        }
    }
}
