//! The writing thread both durable stores share: group commit. It blocks
//! for one batch, takes every batch already queued behind it (without
//! waiting for more) and has the back end write them all in ONE
//! transaction, so one commit covers as many event-loop turns as arrived
//! while the previous one ran. Then it sends one [`Committed`] per batch,
//! in order, and wakes the loop. An idle server commits each batch alone
//! with no added delay.
//!
//! What differs between the stores is the [`WriteBackend`]: its SQL, and
//! what it does between groups and while idle (SQLite: purge steps,
//! upkeep, the disk-full reserve; PostgreSQL: reconnecting with backoff,
//! presence, pruning). The loop records the commit figures for metrics and
//! the `store stats:` line.

use super::stats::Stats;
use super::{Assigned, Batch, Committed, Duplicate, OpenError, Removed, StoreError, StoreMetrics};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use mio::Waker;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the store learned while writing one batch, for the core.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub removed: Vec<Removed>,
    pub duplicates: Vec<Duplicate>,
    /// Ids the store gave (PostgreSQL); empty where the core's stand.
    pub assigned: Assigned,
    pub expired: Vec<Removed>,
    /// What each READ marker became (see [`crate::store::Marked`]).
    pub marks: Vec<crate::store::Marked>,
}

/// A group's writes: how many operations it held and what each batch
/// learned, in batch order.
pub type Written = (usize, Vec<BatchOutcome>);

/// What one store does on the writing thread.
pub trait WriteBackend: Send + 'static {
    /// What the writer hears beside batches (PostgreSQL: presence changes).
    type Note: Send + 'static;

    /// Writes `group` in one transaction, all or nothing (running it again
    /// where the database asks for that). A panic inside is caught by the
    /// back end and reported as [`StoreError::Panicked`].
    fn write(&mut self, group: &[Batch]) -> Result<Written, StoreError>;

    /// `group` failed with `cause`: logs it, and returns the outcome of its
    /// ACKs and what they learned (SQLite commits them alone when the disk
    /// is full; elsewhere they failed with the rest).
    fn failed(
        &mut self,
        group: &[Batch],
        cause: &StoreError,
        stats: &mut Stats,
    ) -> (Result<(), StoreError>, Vec<BatchOutcome>) {
        let _ = (group, stats);
        (Err(cause.clone()), Vec::new())
    }

    /// How long to wait for a batch before [`WriteBackend::idle`].
    fn wait(&self) -> Duration;

    /// No batch came within [`WriteBackend::wait`]. `jobs` tells whether
    /// one is waiting now, for work done in steps.
    fn idle(&mut self, jobs: &Receiver<Batch>, stats: &mut Stats);

    /// A batch came: work owed before its group is written.
    fn before_group(&mut self) {}

    /// A group was written and reported.
    fn after_group(&mut self) {}

    /// The channel of [`WriteBackend::Note`]s, if the back end hears any;
    /// the writer waits on it beside the batches.
    fn notes(&self) -> Option<Receiver<Self::Note>> {
        None
    }

    /// A note arrived.
    fn note(&mut self, note: Self::Note) {
        let _ = note;
    }
}

/// The writer's state; lives on its thread.
pub struct GroupWriter<B> {
    pub backend: B,
    jobs: Receiver<Batch>,
    done: Sender<Committed>,
    waker: Arc<Waker>,
    stats: Stats,
    metrics: Arc<StoreMetrics>,
}

/// Starts the writer thread, named `name`, over `backend`. It runs until
/// `jobs` is closed.
pub fn spawn<B: WriteBackend>(
    name: &str,
    backend: B,
    jobs: Receiver<Batch>,
    done: Sender<Committed>,
    waker: Arc<Waker>,
    metrics: Arc<StoreMetrics>,
) -> Result<JoinHandle<()>, OpenError> {
    let writer = GroupWriter::new(backend, jobs, done, waker, metrics);
    thread::Builder::new()
        .name(name.into())
        .spawn(move || writer.run())
        .map_err(|cause| OpenError::Thread {
            what: "store thread",
            cause,
        })
}

impl<B: WriteBackend> GroupWriter<B> {
    pub fn new(
        backend: B,
        jobs: Receiver<Batch>,
        done: Sender<Committed>,
        waker: Arc<Waker>,
        metrics: Arc<StoreMetrics>,
    ) -> GroupWriter<B> {
        GroupWriter {
            backend,
            jobs,
            done,
            waker,
            stats: Stats::new(Instant::now()),
            metrics,
        }
    }

    fn run(mut self) {
        let notes = self.backend.notes();
        loop {
            let wait = self.backend.wait();
            let first = match &notes {
                None => match self.jobs.recv_timeout(wait) {
                    Ok(first) => first,
                    Err(RecvTimeoutError::Timeout) => {
                        self.backend.idle(&self.jobs, &mut self.stats);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                Some(notes) => crossbeam_channel::select! {
                    recv(self.jobs) -> first => {
                        let Ok(first) = first else { return };
                        first
                    }
                    recv(notes) -> note => {
                        if let Ok(note) = note {
                            self.backend.note(note);
                        }
                        continue;
                    }
                    default(wait) => {
                        self.backend.idle(&self.jobs, &mut self.stats);
                        continue;
                    }
                },
            };
            self.backend.before_group();
            let mut group = vec![first];
            group.extend(self.jobs.try_iter());
            self.commit(group);
            self.backend.after_group();
        }
    }

    /// Commits a group and reports every batch in it.
    pub fn commit(&mut self, group: Vec<Batch>) {
        let started = Instant::now();
        let (result, acks, outcomes) = match self.backend.write(&group) {
            Ok((writes, outcomes)) => {
                if writes > 0 {
                    let m = &self.metrics;
                    m.commit_seconds.observe(started.elapsed().as_secs_f64());
                    m.writes_per_commit.observe(writes as f64);
                }
                self.stats
                    .committed(group.len(), usize::from(writes > 0), writes);
                (Ok(()), Ok(()), outcomes)
            }
            Err(cause) => {
                let (acks, outcomes) = self.backend.failed(&group, &cause, &mut self.stats);
                (Err(cause), acks, outcomes)
            }
        };
        let mut outcomes = outcomes.into_iter();
        for batch in &group {
            let outcome = outcomes.next().unwrap_or_default();
            let done = Committed {
                seq: batch.seq,
                result: result.clone(),
                acks: acks.clone(),
                removed: outcome.removed,
                duplicates: outcome.duplicates,
                expired: outcome.expired,
                marks: outcome.marks,
                assigned: outcome.assigned,
            };
            if self.done.send(done).is_err() {
                return; // the store was dropped: nobody is waiting
            }
        }
        if let Err(e) = self.waker.wake() {
            log::error!("store: cannot wake the event loop: {e}");
        }
        if let Some(line) = self.stats.due(Instant::now()) {
            log::info!("{line}");
        }
    }
}
