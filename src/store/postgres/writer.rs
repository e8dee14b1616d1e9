//! The PostgreSQL store's side of the writing thread, whose loop is
//! [`crate::store::group_commit`] (group commit, as with SQLite): each
//! group is ONE transaction ([`super::group`]).
//!
//! A deadlock or serialization failure rolls the group back and runs it
//! again, up to [`RETRIES`] times. A lost connection fails the group (the
//! transaction is rolled back by the server: nothing is half-written) and
//! its requests are answered `unavailable`; the [`Link`] reconnects with
//! backoff, also while no batch comes. If the connection breaks during
//! COMMIT itself, the outcome is unknown to the writer and the requests
//! are answered `unavailable` all the same: a client that retries a SEND
//! with its `client_id` finds it stored once either way.
//!
//! It also records which users have a bound connection on this node
//! (`presence`): changes the loop hands it are written, in one statement
//! each way, before the next group or at once when no group comes. A
//! failure there fails no request; the loop announces its users again at
//! the next periodic check.
//!
//! When idle it forgets `client_id`s older than a day, in small steps, and
//! revoked tokens that have expired (they no longer open anyway).

use super::group::{self, BatchOutcome, Statements};
use super::link::{Link, Trouble};
use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::store::group_commit::{WriteBackend, Written};
use crate::store::stats::Stats;
use crate::store::{Batch, HistoryRules, MailboxCaps, StoreError};
use crate::{Millis, UserId};
use crossbeam_channel::Receiver;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// How often a group that met a deadlock or serialization failure runs
/// again before its requests are answered `unavailable`.
pub const RETRIES: usize = 5;
/// How long the writer waits for a batch before doing idle work.
const IDLE_AFTER: Duration = Duration::from_secs(1);
/// Shortest time between two prunes of old `client_id`s.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// `client_id`s forgotten per statement, and most statements per prune.
const PRUNE_STEP: i64 = 5000;
const PRUNE_STEPS: usize = 20;

/// The writer's PostgreSQL state; lives on its thread.
pub struct Postgres {
    link: Link,
    /// The statements and the connection generation they belong to.
    statements: Option<(u64, Statements)>,
    last_prune: Instant,
    /// This node's id, and presence changes from the loop.
    node: String,
    /// The mailbox caps checked in each transaction.
    caps: MailboxCaps,
    presence: Receiver<(UserId, bool)>,
    /// History kept (a copy of each message in `history`), and its
    /// retention with when its next step is due.
    keep: bool,
    retention_ms: Option<Millis>,
    next_retention: Instant,
}

impl Postgres {
    pub fn new(
        link: Link,
        node: String,
        caps: MailboxCaps,
        presence: Receiver<(UserId, bool)>,
    ) -> Postgres {
        Postgres {
            link,
            statements: None,
            last_prune: Instant::now(),
            node,
            caps,
            presence,
            keep: false,
            retention_ms: None,
            next_retention: Instant::now(),
        }
    }

    /// Keeps conversations as `history` says.
    pub fn with_history(mut self, history: HistoryRules) -> Postgres {
        self.keep = history.keep;
        self.retention_ms = history.retention_ms.filter(|_| history.keep);
        self
    }

    /// Retention steps while they come back full, at most once a second
    /// (each its own short transaction); failures wait for the next time.
    fn retention(&mut self, now: Instant) {
        let Some(keep_ms) = self.retention_ms else {
            return;
        };
        if now < self.next_retention {
            return;
        }
        self.next_retention = now + Duration::from_secs(1);
        let cutoff = super::wall_clock_ms().saturating_sub(keep_ms);
        let Ok(client) = self.link.client() else {
            return;
        };
        for _ in 0..PRUNE_STEPS {
            match super::history::retention_step(client, cutoff) {
                Ok(n) if (n as i64) < super::history::RETENTION_STEP => break,
                Ok(_) => {}
                Err(e) => {
                    if !matches!(self.link.failed(&e), Trouble::Lost(_)) {
                        log::warn!("store: history retention failed (will retry): {e}");
                    }
                    break;
                }
            }
        }
    }
}

impl WriteBackend for Postgres {
    type Note = (UserId, bool);

    fn wait(&self) -> Duration {
        match self.link.retry_at() {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => IDLE_AFTER,
        }
    }

    fn idle(&mut self, _jobs: &Receiver<Batch>, stats: &mut Stats) {
        let now = Instant::now();
        if !self.link.reconnect_if_due(now) {
            return;
        }
        if let Some(line) = stats.due(now) {
            log::info!("{line}");
        }
        self.retention(now);
        if now.duration_since(self.last_prune) >= PRUNE_EVERY {
            self.last_prune = now;
            self.prune_client_ids();
        }
    }

    fn before_group(&mut self) {
        self.write_presence(None);
    }

    fn notes(&self) -> Option<Receiver<(UserId, bool)>> {
        Some(self.presence.clone())
    }

    fn note(&mut self, change: (UserId, bool)) {
        self.write_presence(Some(change));
    }

    /// Writes `group`, running it again after a deadlock.
    fn write(&mut self, group: &[Batch]) -> Result<Written, StoreError> {
        if group.iter().all(|b| b.ops.is_empty()) {
            return Ok((0, Vec::new()));
        }
        let mut attempt = 0;
        loop {
            let e = match self.attempt(group)? {
                Ok(done) => return Ok(done),
                Err(e) => e,
            };
            match self.link.failed(&e) {
                Trouble::Retry if attempt < RETRIES => {
                    attempt += 1;
                    log::debug!("store: group rolled back ({e}); running it again");
                }
                Trouble::Retry => return Err(StoreError::Database(e.to_string())),
                Trouble::Lost(cause) => return Err(StoreError::Unavailable(cause)),
                Trouble::Failed(err) => return Err(err),
            }
        }
    }

    fn failed(
        &mut self,
        group: &[Batch],
        cause: &StoreError,
        _stats: &mut Stats,
    ) -> (Result<(), StoreError>, Vec<BatchOutcome>) {
        if !matches!(cause, StoreError::Unavailable(_)) {
            // An outage is logged once by the link, not per group.
            log::error!(
                "store: a transaction of {} batch(es) failed and was rolled back; \
                 their requests are answered unavailable: {cause}",
                group.len()
            );
        }
        (Err(cause.clone()), Vec::new())
    }
}

impl Postgres {
    /// Writes the presence changes queued (and `first`): the last change
    /// of each user wins. A failure is logged; the loop announces its
    /// users again at its next periodic check.
    fn write_presence(&mut self, first: Option<(UserId, bool)>) {
        let mut last: HashMap<UserId, bool> = HashMap::new();
        for (user, present) in first.into_iter().chain(self.presence.try_iter()) {
            last.insert(user, present);
        }
        if last.is_empty() {
            return;
        }
        let (mut add, mut remove) = (Vec::new(), Vec::new());
        for (user, present) in last {
            let list = if present { &mut add } else { &mut remove };
            list.push(user as i64);
        }
        let Ok(client) = self.link.client() else {
            return;
        };
        let result = client
            .execute(
                "INSERT INTO presence (node, user_id) \
                 SELECT $1, u FROM unnest($2::bigint[]) AS u \
                 WHERE EXISTS (SELECT 1 FROM nodes WHERE id = $1) ON CONFLICT DO NOTHING",
                &[&self.node, &add],
            )
            .and_then(|_| {
                client.execute(
                    "DELETE FROM presence WHERE node = $1 AND user_id = ANY($2::bigint[])",
                    &[&self.node, &remove],
                )
            });
        if let Err(e) = result {
            if !matches!(self.link.failed(&e), Trouble::Lost(_)) {
                log::warn!("store: recording who is connected here failed (will retry): {e}");
            }
        }
    }

    /// One try at writing `group`: the outer error when there is no
    /// connection or the code panicked (a bug; the requests are still
    /// answered), the inner one when the database failed the transaction.
    #[allow(clippy::type_complexity)]
    fn attempt(&mut self, group: &[Batch]) -> Result<Result<Written, postgres::Error>, StoreError> {
        let generation = self.link.generation();
        let client = self.link.client()?;
        let statements = match self.statements.take() {
            Some((g, s)) if g == generation => s,
            _ => match Statements::prepare(client) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            },
        };
        let now = super::wall_clock_ms();
        let node = &self.node;
        let caps = self.caps;
        let keep = self.keep;
        let run = || group::write(client, &statements, group, now, node, caps, keep);
        let result = panic::catch_unwind(AssertUnwindSafe(run));
        self.statements = Some((generation, statements));
        result.map_err(|_| StoreError::Panicked)
    }

    /// Forgets `client_id`s older than a day, in steps of [`PRUNE_STEP`]
    /// (each its own short transaction); failures wait for the next time.
    fn prune_client_ids(&mut self) {
        let cutoff = super::wall_clock_ms().saturating_sub(CLIENT_ID_RETENTION_MS) as i64;
        let Ok(client) = self.link.client() else {
            return;
        };
        let mut pruned = 0;
        for _ in 0..PRUNE_STEPS {
            let step = client.execute(
                "DELETE FROM client_ids WHERE ctid = ANY(ARRAY(\
                 SELECT ctid FROM client_ids WHERE ts < $1 LIMIT $2))",
                &[&cutoff, &PRUNE_STEP],
            );
            match step {
                Ok(n) => {
                    pruned += n;
                    if (n as i64) < PRUNE_STEP {
                        break;
                    }
                }
                Err(e) => {
                    if !matches!(self.link.failed(&e), Trouble::Lost(_)) {
                        log::warn!("store: pruning old client_ids failed (will retry): {e}");
                    }
                    break;
                }
            }
        }
        log::debug!("store: {pruned} client_ids older than a day forgotten");
        let now = super::wall_clock_ms() as i64;
        if let Ok(client) = self.link.client() {
            if let Err(e) =
                client.execute("DELETE FROM revoked_tokens WHERE expires <= $1", &[&now])
            {
                if !matches!(self.link.failed(&e), Trouble::Lost(_)) {
                    log::warn!("store: forgetting expired revoked tokens failed (will retry): {e}");
                }
            }
        }
    }
}
