//! Where durable state goes. The core hands the store one [`Batch`] of
//! writes per event-loop turn and learns through [`Committed`] when it is on
//! disk; only then are the affected requests answered. Implementations:
//! [`sqlite::SqliteStore`] (the default, a helper thread with group commit)
//! and [`memory::MemoryStore`] (`--memory`, nothing kept).
//! [`postgres::PostgresStore`] (`--postgres`, one database that several
//! nodes can share) is the third.
//!
//! - [`vocab`]: what the core and the stores say to each other (plain
//!   types only), re-exported here.
//! - [`threaded`]: the one [`Store`] of a store that writes on one thread
//!   and reads on another; SQLite and PostgreSQL supply their back ends.
//! - [`group_commit`]: the writing thread's loop, over a back end;
//!   [`read_loop`]: the reading thread's.
//! - [`stats`]: the `store stats:` log line benchmarks read (both stores);
//!   [`cpu`]: the writing thread's CPU time in it, split by phase.
//! - [`threads`]: the loop's ends of those threads' channels.

pub mod admin;
pub mod cpu;
mod error;
pub mod group_commit;
pub mod memory;
pub mod postgres;
pub mod read_loop;
pub mod sqlite;
pub mod stats;
pub mod threaded;
pub mod threads;
pub mod vocab;

pub use error::{OpenError, SchemaError};
pub use vocab::*;

use crate::UserId;

/// The narrow interface between the core's effects and durable storage.
pub trait Store {
    /// Reads the state saved by earlier runs.
    fn load(&mut self) -> Result<Snapshot, OpenError>;
    /// Queues a batch; its [`Committed`] arrives later from [`Store::completed`].
    fn submit(&mut self, batch: Batch);
    /// A finished batch, if any, without blocking. Batches finish in order.
    fn completed(&mut self) -> Option<Committed>;
    /// Queues a read; its [`ReadDone`] arrives later from [`Store::read_done`].
    fn read(&mut self, read: Read);
    /// A finished read, if any, without blocking.
    fn read_done(&mut self) -> Option<ReadDone>;
    /// Whether the store keeps what the core forgets: when it does not
    /// (`--memory`), the core keeps everything and never reads.
    fn keeps_data(&self) -> bool {
        true
    }
    /// Changes made by other nodes on a shared database, if any arrived.
    fn remote(&mut self) -> Option<Vec<Remote>> {
        None
    }
    /// Which users have (`true`) or no longer have (`false`) a bound
    /// connection on this node, for a store shared by several nodes.
    fn set_presence(&mut self, _changes: Vec<(UserId, bool)>) {}
    /// Commit figures for metrics, where the store keeps them.
    fn metrics(&self) -> Option<&StoreMetrics> {
        None
    }
}

/// What a store that commits on a thread of its own records per commit,
/// read by the loop when metrics are asked for.
pub struct StoreMetrics {
    /// How long each transaction took, from BEGIN to the end of COMMIT.
    pub commit_seconds: crate::histogram::Histogram,
    /// Writes (messages, ACKs, accounts) per transaction.
    pub writes_per_commit: crate::histogram::Histogram,
}

impl Default for StoreMetrics {
    fn default() -> StoreMetrics {
        StoreMetrics {
            commit_seconds: crate::histogram::Histogram::new(crate::histogram::SECONDS),
            writes_per_commit: crate::histogram::Histogram::new(crate::histogram::COUNTS),
        }
    }
}
