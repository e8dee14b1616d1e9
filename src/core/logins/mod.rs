//! The logins owner: what LOGIN and REGISTER need beyond the account
//! cache. The login throttle (failures per username and address, new
//! accounts per address, name lookups per address), the fair queue of
//! password jobs and the requests waiting for them, and the rate-limited
//! log of failed logins. Connections' peer addresses are kept here too
//! (in the queue): the throttle and the queue count by them.
//!
//! Beside it in this folder: the throttle (`login_throttle.rs`, over the
//! token buckets of `bucket.rs`, `keyed_buckets.rs` and the idle-pruned
//! tables of `throttle_table.rs`) and the fair queue (`password_queue.rs`).
//!
//! Invariant: every job in the queue (waiting or running) has its request
//! in `hashing`, until the job is done or its connection closes.

pub(super) mod bucket;
mod keyed_buckets;
pub(super) mod login_throttle;
#[cfg(test)]
mod login_throttle_tests;
pub(super) mod password_queue;
pub(super) mod throttle_table;

use super::accounts::Account;
use super::{Outbox, Ticket};
use crate::error::{ErrorCode, Failure};
use crate::hasher::{HashJob, JobId};
use crate::idhash::IdMap;
use crate::log_limit::LogLimit;
use crate::{ConnId, Millis};
use login_throttle::{LoginCharge, LoginThrottle, RegisterCharge, ThrottleSettings};
use password_queue::{PasswordQueue, QueueLimits, Refusal};
use std::net::IpAddr;
use std::sync::Arc;

/// How often the throttle tables are walked for idle entries (in steps of
/// `throttle_table::PRUNE_STEP` per table, one per millisecond while a
/// walk is under way).
const THROTTLE_PRUNE_EVERY_MS: Millis = 10_000;

/// A request waiting for a password job.
pub(super) enum HashWait {
    Register {
        ticket: Ticket,
        username: Box<str>,
        charge: RegisterCharge,
    },
    Login {
        ticket: Ticket,
        /// The account the name found (kept here: the cache may drop it
        /// while the hash runs).
        account: Option<Account>,
        charge: LoginCharge,
    },
    /// `gotalk admin user add` (`user` none: a new account, the name
    /// reserved) or `reset-password`.
    Admin {
        ticket: Ticket,
        username: Box<str>,
        user: Option<crate::UserId>,
    },
}

impl HashWait {
    pub(super) fn ticket(&self) -> Ticket {
        match self {
            HashWait::Register { ticket, .. }
            | HashWait::Login { ticket, .. }
            | HashWait::Admin { ticket, .. } => *ticket,
        }
    }
}

pub(super) struct Logins {
    /// Failed LOGINs and REGISTERs per username and address.
    pub throttle: LoginThrottle,
    /// Password jobs, fair by address, and connections' addresses.
    queue: PasswordQueue,
    /// Requests waiting for a password job, queued or running.
    hashing: IdMap<JobId, HashWait>,
    next_job: JobId,
    /// LOGIN of an unknown user verifies against this, so it takes as long
    /// as a wrong password and the two cannot be told apart.
    pub dummy_hash: Arc<str>,
    /// Failed LOGINs are logged at info, rate-limited (a guessing attack
    /// must not flood the log).
    pub failed_logins: LogLimit,
    /// When the throttle tables are next pruned a step.
    next_prune: Millis,
}

impl Logins {
    pub fn new(
        limits: QueueLimits,
        throttle: ThrottleSettings,
        dummy_hash: Arc<str>,
        log_every: Millis,
    ) -> Logins {
        Logins {
            throttle: LoginThrottle::new(throttle),
            queue: PasswordQueue::new(limits),
            hashing: IdMap::default(),
            next_job: 0,
            dummy_hash,
            failed_logins: LogLimit::new(log_every),
            next_prune: 0,
        }
    }

    /// A connection was accepted from `peer`.
    pub fn open(&mut self, conn: ConnId, peer: IpAddr) {
        self.queue.open(conn, peer);
    }

    /// `conn`'s client is `peer` from now on (named by a trusted proxy).
    pub fn set_address(&mut self, conn: ConnId, peer: IpAddr) {
        self.queue.set_address(conn, peer);
    }

    /// The address `conn` is counted under.
    pub fn address_of(&self, conn: ConnId) -> IpAddr {
        self.queue.address_of(conn)
    }

    /// A new job id.
    pub fn new_job(&mut self) -> JobId {
        self.next_job += 1;
        self.next_job
    }

    /// Whether a password job of `conn` may be queued now; the refusal
    /// names the limit it reached.
    pub fn check_room(&self, conn: ConnId) -> Result<(), Failure> {
        let limits = self.queue.limits();
        self.queue.check_room(conn).map_err(|refusal| {
            let message = match refusal {
                Refusal::AddressFull => format!(
                    "too many password checks are queued from your address \
                     (--hash-queue-per-address {}); try again in a moment",
                    limits.per_address
                ),
                Refusal::Full => format!(
                    "too many password checks are queued (--hash-queue {}); \
                     try again in a moment",
                    limits.total
                ),
            };
            Failure::new(ErrorCode::RateLimited, message)
        })
    }

    /// Queues a password job ([`Logins::check_room`] said yes) and hands
    /// it to a worker if one is idle.
    pub fn queue(&mut self, wait: HashWait, job: JobId, work: HashJob, out: &mut Outbox) {
        self.queue.push(wait.ticket().conn, job, work);
        self.hashing.insert(job, wait);
        self.release(out);
    }

    /// Hands waiting jobs to the workers, as many as are idle.
    fn release(&mut self, out: &mut Outbox) {
        while let Some((_, work)) = self.queue.next() {
            out.hash_jobs.push(work);
        }
    }

    /// A worker finished `job`: it frees its worker for the next job, and
    /// returns what waited for it (`None` if its connection has gone).
    pub fn job_done(&mut self, job: JobId, out: &mut Outbox) -> Option<HashWait> {
        let wait = self.hashing.remove(&job);
        self.queue
            .finished(job, wait.as_ref().map(|w| w.ticket().conn));
        self.release(out);
        wait
    }

    /// The connection closed: its jobs are forgotten, and what waited for
    /// them returned. Waiting ones never run; a running one finishes and
    /// is ignored, so its result cannot bind a later connection that gets
    /// the same id.
    pub fn close(&mut self, conn: ConnId) -> Vec<HashWait> {
        let jobs = self.queue.close(conn);
        jobs.iter()
            .filter_map(|job| self.hashing.remove(job))
            .collect()
    }

    /// The client stopped sending: its jobs that have not started are
    /// taken out, and what waited for them returned.
    pub fn cancel_waiting(&mut self, conn: ConnId) -> Vec<HashWait> {
        let jobs = self.queue.cancel_waiting(conn);
        jobs.iter()
            .filter_map(|job| self.hashing.remove(job))
            .collect()
    }

    /// Password jobs waiting for a worker, and running.
    pub fn jobs(&self) -> (usize, usize) {
        (self.queue.waiting(), self.queue.running())
    }

    /// Requests waiting for a password job.
    pub fn waiting_requests(&self) -> usize {
        self.hashing.len()
    }

    /// A step of pruning the throttle tables, when one is due.
    pub fn prune(&mut self, now: Millis) {
        if now >= self.next_prune {
            let more = self.throttle.prune(now);
            self.next_prune = now + if more { 1 } else { THROTTLE_PRUNE_EVERY_MS };
        }
    }

    /// When [`Logins::prune`] next has something to do.
    pub fn next_deadline(&self) -> Millis {
        self.next_prune
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_700_000_000_000;

    fn logins(workers: usize) -> Logins {
        let limits = QueueLimits {
            total: 10,
            per_address: 10,
            workers,
        };
        let throttle = ThrottleSettings::of(&crate::config::Config::default());
        Logins::new(limits, throttle, "dummy".into(), 1000)
    }

    /// A LOGIN of `conn` waiting for job `job`, queued.
    fn queue_login(l: &mut Logins, conn: ConnId, out: &mut Outbox) -> JobId {
        let peer = IpAddr::from([127, 0, 0, 1]);
        l.open(conn, peer);
        let charge = l
            .throttle
            .admit_login("alice", peer, NOW)
            .expect("admitted");
        let job = l.new_job();
        let wait = HashWait::Login {
            ticket: Ticket::new(conn, job),
            account: None,
            charge,
        };
        let work = HashJob::Verify {
            job,
            password: "pw".into(),
            hash: "h".into(),
        };
        l.queue(wait, job, work, out);
        job
    }

    #[test]
    fn a_closed_connection_takes_its_requests_along() {
        let mut l = logins(1);
        let mut out = Outbox::default();
        let running = queue_login(&mut l, 1, &mut out);
        let waiting = queue_login(&mut l, 2, &mut out);
        assert_eq!(out.hash_jobs.len(), 1, "one worker");
        assert_eq!((l.jobs(), l.waiting_requests()), ((1, 1), 2));
        assert_eq!(l.close(2).len(), 1);
        assert_eq!(l.waiting_requests(), 1);
        let done = l
            .job_done(running, &mut out)
            .expect("its connection is open");
        assert_eq!(done.ticket().conn, 1);
        assert!(l.job_done(waiting, &mut out).is_none(), "dropped");
        assert_eq!((l.jobs(), l.waiting_requests()), ((0, 0), 0));
    }

    #[test]
    fn a_client_that_stopped_sending_loses_only_its_waiting_jobs() {
        let mut l = logins(1);
        let mut out = Outbox::default();
        queue_login(&mut l, 1, &mut out);
        queue_login(&mut l, 1, &mut out);
        let cancelled = l.cancel_waiting(1);
        assert_eq!(cancelled.len(), 1, "the running one finishes");
        assert_eq!(l.jobs(), (0, 1));
    }

    #[test]
    fn the_throttle_is_pruned_in_steps() {
        let mut l = logins(1);
        assert_eq!(l.next_deadline(), 0, "due at once");
        l.prune(NOW);
        assert_eq!(l.next_deadline(), NOW + THROTTLE_PRUNE_EVERY_MS);
    }
}
