//! The fair queue of password jobs (argon2 runs for LOGIN and REGISTER).
//!
//! Hashing is the one expensive thing a client without an account can make
//! the server do, so the jobs wait here, in the core, and reach the worker
//! threads only as workers become idle: the channel to the workers never
//! holds more than they can take at once. While a job waits, it can still
//! be dropped when its connection goes, so nobody hashes for a client that
//! left.
//!
//! Jobs wait per peer address and leave in round-robin order between
//! addresses: one address flooding LOGINs gets one turn in N (N = addresses
//! with jobs waiting), however many connections it opens. Each address may
//! have at most `per_address` jobs waiting, and all addresses together
//! `total`; past either the request is refused (the caller answers
//! `rate_limited`). IPv6 peers count per /64, the block one host usually
//! holds.
//!
//! Every operation is O(1) amortised, except cancelling a job, which looks
//! through that one address's waiting jobs (at most `per_address`).

use crate::core::conn_table::ConnTable;
use crate::hasher::{HashJob, JobId};
use crate::idhash::IdMap;
use crate::peer_addr::address_key;
use crate::ConnId;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

/// The queue's bounds and the number of workers it feeds.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    /// Jobs waiting from all addresses together.
    pub total: usize,
    /// Jobs waiting from one address.
    pub per_address: usize,
    /// Password worker threads: jobs handed out and not finished yet.
    pub workers: usize,
}

/// Why a job was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `total` jobs wait already.
    Full,
    /// `per_address` jobs from this address wait already.
    AddressFull,
}

struct Waiting {
    job: JobId,
    work: HashJob,
}

/// One address's waiting jobs. The entry stays (possibly empty) while the
/// address has a place in the round-robin, so it never has two.
#[derive(Default)]
struct AddressQueue {
    jobs: VecDeque<Waiting>,
}

pub struct PasswordQueue {
    limits: QueueLimits,
    by_address: HashMap<IpAddr, AddressQueue>,
    /// Addresses in round-robin order; each key of `by_address` once.
    turns: VecDeque<IpAddr>,
    /// The address each open connection's jobs count under.
    conns: ConnTable<IpAddr>,
    /// The jobs of connections that have some, waiting or running (LOGIN
    /// and REGISTER hold the connection's requests until answered, so
    /// this is almost always 1 long). Apart from `conns`, so an idle
    /// connection's entry is only its address.
    jobs: IdMap<ConnId, Vec<JobId>>,
    waiting: usize,
    running: usize,
}

/// Jobs of connections the queue was not told about count under this.
const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl PasswordQueue {
    pub fn new(limits: QueueLimits) -> PasswordQueue {
        PasswordQueue {
            limits: QueueLimits {
                workers: limits.workers.max(1),
                ..limits
            },
            by_address: HashMap::new(),
            turns: VecDeque::new(),
            conns: ConnTable::default(),
            jobs: IdMap::default(),
            waiting: 0,
            running: 0,
        }
    }

    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// A connection from `peer` opened.
    pub fn open(&mut self, conn: ConnId, peer: IpAddr) {
        self.conns.insert(conn, address_key(peer));
        self.jobs.remove(&conn);
    }

    /// `conn`'s client turned out to be `peer` (a PROXY header, or a
    /// trusted proxy's `X-Forwarded-For` for one HTTP request). Jobs
    /// already queued stay under the address they were queued with; a
    /// connection has none when its next request is read, since LOGIN and
    /// REGISTER hold its requests until answered.
    pub fn set_address(&mut self, conn: ConnId, peer: IpAddr) {
        let addr = address_key(peer);
        let has_jobs = self.jobs.contains_key(&conn);
        match self.conns.get_mut(conn) {
            Some(known) if !has_jobs => *known = addr,
            Some(_) => {}
            None => self.open(conn, peer),
        }
    }

    /// The address `conn`'s jobs count under (for logs).
    pub fn address_of(&self, conn: ConnId) -> IpAddr {
        self.addr_of(conn)
    }

    fn addr_of(&self, conn: ConnId) -> IpAddr {
        self.conns.get(conn).copied().unwrap_or(UNKNOWN_PEER)
    }

    /// Whether a job from `conn` may be queued now.
    pub fn check_room(&self, conn: ConnId) -> Result<(), Refusal> {
        if self.waiting >= self.limits.total {
            return Err(Refusal::Full);
        }
        let addr = self.addr_of(conn);
        let queued = self.by_address.get(&addr).map_or(0, |q| q.jobs.len());
        if queued >= self.limits.per_address {
            return Err(Refusal::AddressFull);
        }
        Ok(())
    }

    /// Queues a job of `conn` ([`check_room`](Self::check_room) said yes).
    pub fn push(&mut self, conn: ConnId, job: JobId, work: HashJob) {
        debug_assert!(self.check_room(conn).is_ok());
        let addr = *self.conns.get_or_insert_with(conn, || UNKNOWN_PEER);
        self.jobs.entry(conn).or_default().push(job);
        if !self.by_address.contains_key(&addr) {
            self.compact_if_sparse();
            self.turns.push_back(addr);
        }
        let queue = self.by_address.entry(addr).or_default();
        queue.jobs.push_back(Waiting { job, work });
        self.waiting += 1;
    }

    /// The next job for a worker, if a worker is idle and a job waits: the
    /// first job of the address whose turn it is.
    pub fn next(&mut self) -> Option<(JobId, HashJob)> {
        if self.running >= self.limits.workers {
            return None;
        }
        while let Some(addr) = self.turns.pop_front() {
            let queue = self
                .by_address
                .get_mut(&addr)
                .expect("every address in turns has an entry");
            let Some(first) = queue.jobs.pop_front() else {
                // Its jobs were cancelled since it got its place.
                self.by_address.remove(&addr);
                continue;
            };
            if queue.jobs.is_empty() {
                self.by_address.remove(&addr);
            } else {
                self.turns.push_back(addr);
            }
            self.waiting -= 1;
            self.running += 1;
            return Some((first.job, first.work));
        }
        None
    }

    /// A worker finished `job`; `conn` is the connection it was for, if
    /// that connection is still known (its jobs are dropped when it closes).
    pub fn finished(&mut self, job: JobId, conn: Option<ConnId>) {
        self.running = self.running.saturating_sub(1);
        if let Some(conn) = conn {
            self.forget_job(conn, job);
        }
    }

    /// The connection closed: its waiting jobs are removed and it is
    /// forgotten. Returns every job it had, waiting or running, so the
    /// caller drops what it kept for them (a running job still finishes
    /// and frees its worker through [`finished`](Self::finished)).
    pub fn close(&mut self, conn: ConnId) -> Vec<JobId> {
        let Some(addr) = self.conns.remove(conn) else {
            return Vec::new();
        };
        let jobs = self.jobs.remove(&conn).unwrap_or_default();
        for &job in &jobs {
            self.remove_waiting(addr, job);
        }
        jobs
    }

    /// The client stopped sending: its jobs that have not started are
    /// removed and returned (the caller answers them). Running ones stay.
    pub fn cancel_waiting(&mut self, conn: ConnId) -> Vec<JobId> {
        let Some(&addr) = self.conns.get(conn) else {
            return Vec::new();
        };
        let jobs = self.jobs.get(&conn).cloned().unwrap_or_default();
        let cancelled: Vec<JobId> = jobs
            .into_iter()
            .filter(|&job| self.remove_waiting(addr, job))
            .collect();
        for &job in &cancelled {
            self.forget_job(conn, job);
        }
        cancelled
    }

    /// Takes `job` off `conn`'s list; a list left empty goes.
    fn forget_job(&mut self, conn: ConnId, job: JobId) {
        if let Some(jobs) = self.jobs.get_mut(&conn) {
            jobs.retain(|&j| j != job);
            if jobs.is_empty() {
                self.jobs.remove(&conn);
            }
        }
    }

    /// Removes `job` from `addr`'s waiting jobs; false if it is not there
    /// (it runs already). An emptied address keeps its entry until its
    /// turn comes, so it is never in the round-robin twice.
    fn remove_waiting(&mut self, addr: IpAddr, job: JobId) -> bool {
        let Some(queue) = self.by_address.get_mut(&addr) else {
            return false;
        };
        let Some(pos) = queue.jobs.iter().position(|w| w.job == job) else {
            return false;
        };
        queue.jobs.remove(pos);
        self.waiting -= 1;
        true
    }

    /// Emptied entries wait for their turn to be removed; if no worker
    /// frees up for long while many addresses come and go, drop them in
    /// one pass. It runs only when entries outnumber twice the queue's
    /// capacity, and leaves at most `total`, so it is amortised O(1).
    fn compact_if_sparse(&mut self) {
        if self.by_address.len() < 2 * self.limits.total.max(1) {
            return;
        }
        self.by_address.retain(|_, q| !q.jobs.is_empty());
        let by_address = &self.by_address;
        self.turns.retain(|addr| by_address.contains_key(addr));
    }

    /// Jobs waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Jobs handed to workers and not finished.
    pub fn running(&self) -> usize {
        self.running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work() -> HashJob {
        HashJob::Hash {
            job: 0,
            password: "pw-secret".into(),
        }
    }

    fn queue(total: usize, per_address: usize, workers: usize) -> PasswordQueue {
        PasswordQueue::new(QueueLimits {
            total,
            per_address,
            workers,
        })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    /// Takes every job the idle workers may run, finishing each at once.
    fn drain(q: &mut PasswordQueue) -> Vec<JobId> {
        let mut order = Vec::new();
        while let Some((job, _)) = q.next() {
            q.finished(job, None);
            order.push(job);
        }
        order
    }

    /// An idle connection's entry is its address alone; its jobs live
    /// apart, only while it has some.
    #[test]
    fn an_idle_connection_costs_one_address() {
        let entry = std::mem::size_of::<Option<IpAddr>>();
        println!("password queue conns slot     {entry:4} B (dense, by connection id)");
        assert!(entry <= 17);
        let mut q = queue(4, 4, 1);
        q.open(1, ip(1));
        q.push(1, 10, work());
        assert_eq!(q.jobs.get(&1).map(Vec::len), Some(1));
        assert_eq!(q.next().map(|(job, _)| job), Some(10));
        q.finished(10, Some(1));
        assert!(q.jobs.is_empty(), "a connection without jobs has no list");
        assert_eq!(q.address_of(1), ip(1));
    }

    #[test]
    fn a_connection_moves_to_the_client_a_proxy_names_between_jobs() {
        let mut q = queue(100, 1, 1);
        q.open(1, ip(9)); // the proxy
        q.open(2, ip(9));
        q.set_address(1, ip(1));
        q.set_address(2, ip(2));
        assert_eq!(q.address_of(1), ip(1));
        q.push(1, 1, work());
        // Its job stays where it was queued: the address does not move
        // under a waiting job.
        q.set_address(1, ip(3));
        assert_eq!(q.address_of(1), ip(1));
        assert_eq!(q.check_room(2), Ok(()), "another client of the proxy");
        q.push(2, 2, work());
        assert_eq!(drain(&mut q), [1, 2]);
    }

    #[test]
    fn addresses_take_turns_whatever_their_backlog() {
        let mut q = queue(100, 10, 1);
        q.open(1, ip(1)); // a flood: jobs 1..=5
        q.open(2, ip(2)); // one genuine job: 6
        q.open(3, ip(3)); // two jobs: 7, 8
        for job in 1..=5 {
            q.push(1, job, work());
        }
        q.push(2, 6, work());
        q.push(3, 7, work());
        q.push(3, 8, work());
        assert_eq!(drain(&mut q), [1, 6, 7, 2, 8, 3, 4, 5]);
        assert_eq!(q.waiting(), 0);
    }

    #[test]
    fn only_as_many_jobs_leave_as_there_are_idle_workers() {
        let mut q = queue(100, 10, 2);
        q.open(1, ip(1));
        for job in 1..=4 {
            q.push(1, job, work());
        }
        assert_eq!(q.next().map(|j| j.0), Some(1));
        assert_eq!(q.next().map(|j| j.0), Some(2));
        assert!(q.next().is_none(), "both workers are busy");
        assert_eq!((q.running(), q.waiting()), (2, 2));
        q.finished(1, Some(1));
        assert_eq!(q.next().map(|j| j.0), Some(3));
        assert!(q.next().is_none());
    }

    #[test]
    fn each_address_and_the_whole_queue_are_capped() {
        let mut q = queue(5, 2, 1);
        for conn in 0..4 {
            q.open(conn, ip(1));
        }
        q.open(10, ip(2));
        q.open(11, ip(3));
        q.push(0, 1, work());
        q.push(1, 2, work());
        // A third from 127.0.0.1, on any of its connections, is refused.
        assert_eq!(q.check_room(2), Err(Refusal::AddressFull));
        assert_eq!(q.check_room(10), Ok(()));
        q.push(10, 3, work());
        q.push(10, 4, work());
        q.push(11, 5, work());
        assert_eq!(q.check_room(11), Err(Refusal::Full));
        // A running job no longer counts as waiting.
        assert_eq!(q.next().map(|j| j.0), Some(1));
        assert_eq!(q.check_room(3), Ok(()));
    }

    #[test]
    fn a_closed_connection_loses_its_waiting_jobs_and_frees_their_room() {
        let mut q = queue(10, 3, 1);
        q.open(1, ip(1));
        q.open(2, ip(1));
        q.push(1, 1, work());
        q.push(2, 2, work());
        q.push(1, 3, work());
        assert_eq!(q.check_room(2), Err(Refusal::AddressFull));
        assert_eq!(q.next().map(|j| j.0), Some(1)); // job 1 runs
        let dropped = q.close(1);
        assert_eq!(dropped, [1, 3], "running and waiting jobs are both named");
        assert_eq!((q.waiting(), q.running()), (1, 1));
        assert_eq!(q.check_room(2), Ok(()));
        q.finished(1, None); // the orphaned job still frees its worker
        assert_eq!(drain(&mut q), [2]);
        assert!(q.close(1).is_empty(), "closing twice is harmless");
    }

    #[test]
    fn cancelling_takes_only_jobs_that_have_not_started() {
        let mut q = queue(10, 5, 1);
        q.open(1, ip(1));
        q.push(1, 1, work());
        q.push(1, 2, work());
        assert_eq!(q.next().map(|j| j.0), Some(1));
        assert_eq!(q.cancel_waiting(1), [2]);
        assert!(q.cancel_waiting(1).is_empty());
        assert_eq!(q.waiting(), 0);
        q.finished(1, Some(1));
        // The connection stays known: its next job counts under its address.
        q.push(1, 3, work());
        assert_eq!(q.close(1), [3]);
    }

    #[test]
    fn an_emptied_address_is_in_the_round_robin_once() {
        let mut q = queue(4, 4, 1);
        q.open(1, ip(1));
        q.open(2, ip(2));
        q.push(2, 100, work());
        assert_eq!(q.next().map(|j| j.0), Some(100)); // the worker is busy
        for job in 1..=50 {
            q.push(1, job, work());
            assert_eq!(q.cancel_waiting(1), [job]);
        }
        assert_eq!(q.turns.len(), 1, "one place for 127.0.0.1");
        q.push(1, 51, work());
        q.finished(100, Some(2));
        assert_eq!(drain(&mut q), [51]);
        assert!(q.turns.is_empty() && q.by_address.is_empty());
    }

    #[test]
    fn many_addresses_coming_and_going_leave_bounded_state() {
        let mut q = queue(4, 1, 1);
        q.open(0, ip(0));
        q.push(0, 1, work());
        assert!(q.next().is_some()); // the one worker stays busy
        for n in 0..1000u32 {
            let conn = 10 + n as usize;
            q.open(conn, IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
            q.push(conn, 2 + u64::from(n), work());
            q.close(conn);
        }
        assert!(q.by_address.len() <= 8, "{}", q.by_address.len());
        assert_eq!(q.turns.len(), q.by_address.len());
    }
}
