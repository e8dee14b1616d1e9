//! The one [`Store`] of a store that writes on one thread and reads on
//! another (SQLite and PostgreSQL alike). The event loop only ever touches
//! channels ([`StoreThreads`]): [`Store::submit`] sends a batch to the
//! writer and returns at once, [`Store::completed`] takes a finished one
//! if there is one. What differs between the stores on the loop's side
//! (reading the state at start, other nodes' changes, presence, what stops
//! before the threads) is their [`Opened`] part.

use super::threads::StoreThreads;
use super::{Batch, Committed, OpenError, Read, ReadDone, Remote, Snapshot, Store, StoreMetrics};
use crate::UserId;
use std::sync::Arc;

/// What a threaded store keeps on the loop's side beside its threads.
pub trait Opened {
    /// Reads the state saved by earlier runs (once, at start).
    fn load(&mut self) -> Result<Snapshot, OpenError>;
    /// Changes made by other nodes on a shared database, if any arrived.
    fn remote(&mut self) -> Option<Vec<Remote>> {
        None
    }
    /// Which users have or no longer have a bound connection here.
    fn set_presence(&mut self, _changes: Vec<(UserId, bool)>) {}
    /// Called before the reader and writer stop (PostgreSQL stops its
    /// listener first).
    fn stopping(&mut self) {}
}

/// A store whose writer and reader run on threads of their own, with its
/// `side` on the loop. Dropping it lets the writer finish what was
/// submitted; `side` is dropped after the threads have stopped (so
/// SQLite's data directory lock outlives the writer).
pub struct Threaded<S: Opened> {
    threads: StoreThreads,
    metrics: Arc<StoreMetrics>,
    side: S,
}

impl<S: Opened> Threaded<S> {
    /// The store over running `threads`, which record into `metrics`.
    pub fn new(threads: StoreThreads, metrics: Arc<StoreMetrics>, side: S) -> Threaded<S> {
        Threaded {
            threads,
            metrics,
            side,
        }
    }
}

impl<S: Opened> Store for Threaded<S> {
    fn load(&mut self) -> Result<Snapshot, OpenError> {
        self.side.load()
    }

    fn submit(&mut self, batch: Batch) {
        self.threads.submit(batch);
    }

    fn completed(&mut self) -> Option<Committed> {
        self.threads.completed()
    }

    fn read(&mut self, read: Read) {
        self.threads.read(read);
    }

    fn read_done(&mut self) -> Option<ReadDone> {
        self.threads.read_done()
    }

    fn metrics(&self) -> Option<&StoreMetrics> {
        Some(&self.metrics)
    }

    fn remote(&mut self) -> Option<Vec<Remote>> {
        self.side.remote()
    }

    fn set_presence(&mut self, changes: Vec<(UserId, bool)>) {
        self.side.set_presence(changes);
    }
}

impl<S: Opened> Drop for Threaded<S> {
    /// Lets the writer finish what was submitted, then stops the threads.
    fn drop(&mut self) {
        self.side.stopping();
        self.threads.stop();
    }
}
