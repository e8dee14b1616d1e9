//! The durable store: one SQLite database, `<data>/gotalk.db`, written by a
//! thread of its own with group commit (see `docs/storage.md` for the
//! schema, the settings and why).
//!
//! - [`lock`]: one server per data directory (`<data>/gotalk.lock`).
//! - [`schema`]: connection settings (WAL, `synchronous = FULL`,
//!   incremental auto-vacuum) and the versioned forward migrations.
//! - [`load`]: the figures read at start.
//! - [`writer`]: the thread that commits groups of batches.
//! - [`client_id_window`]: a sender's newest N `client_id`s, kept by each
//!   SEND that adds one.
//! - [`reader`]: the thread that answers the core's reads on demand.
//! - [`purge`]: deleting the messages ACKs marked, many at a time.
//! - [`upkeep`]: giving freed space back and pruning old `client_id`s.
//! - [`disk_full`]: the reserve file that keeps ACK working on a full disk.
//! - [`stats`]: the `store stats:` log line benchmarks read.
//! - `tests`: the store end to end on a real file.
//!
//! The event loop only ever touches channels: [`Store::submit`] sends a
//! batch to the writer and returns at once, and [`Store::completed`] takes
//! a finished one if there is one. Disk waits happen on the writer thread.

pub mod client_id_window;
pub mod custody;
pub mod disk_full;
pub mod load;
pub mod lock;
pub mod purge;
pub mod reader;
pub mod schema;
pub mod stats;
pub mod upkeep;
pub mod writer;

use super::threads::StoreThreads;
use super::{Batch, Committed, Read, ReadDone, Snapshot, Store, StoreMetrics};
use crate::config::DEFAULT_DISK_RESERVE;
use crate::Millis;
use disk_full::DiskSpace;
use lock::DataDirLock;
use mio::Waker;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "gotalk.db";

pub struct SqliteStore {
    /// The writer and reader threads and the channels to them.
    threads: StoreThreads,
    /// The connection that migrated the schema; [`Store::load`] reads with
    /// it and closes it.
    reader: Option<Connection>,
    path: PathBuf,
    metrics: Arc<StoreMetrics>,
    /// Held for as long as the store lives (the process, in the server).
    /// Declared last so it is released after the writer has stopped.
    _lock: DataDirLock,
}

impl SqliteStore {
    /// Opens (creating if need be) the store in `dir`: the directory, its
    /// lock, the database and its schema, and the writer thread. Every
    /// failure is an error that names the file and the cause. Sets the
    /// default reserve aside (see [`disk_full`]).
    pub fn open(dir: &Path, waker: Arc<Waker>) -> Result<SqliteStore, String> {
        Self::open_with_reserve(dir, DEFAULT_DISK_RESERVE, waker)
    }

    /// [`SqliteStore::open`] with `reserve_bytes` of disk set aside for
    /// ACKs on a full disk (0: none).
    pub fn open_with_reserve(
        dir: &Path,
        reserve_bytes: u64,
        waker: Arc<Waker>,
    ) -> Result<SqliteStore, String> {
        create_data_dir(dir)?;
        let lock = DataDirLock::acquire(dir)?;
        let space = DiskSpace::open(dir, reserve_bytes);
        let path = dir.join(DB_FILE);
        create_private_file(&path)?;
        let fail = |e: String| {
            format!(
                "cannot use the database {}: {e} (if the file is damaged, move it \
                 aside to start empty, or restore a backup)",
                path.display()
            )
        };
        let mut reader = connect(&path).map_err(fail)?;
        let found = schema::migrate(&mut reader).map_err(fail)?;
        if found == 0 {
            log::info!("created the database {}", path.display());
        }
        let conn = connect(&path).map_err(fail)?;
        let read_conn = connect(&path).map_err(fail)?;
        let (mut threads, ends) = StoreThreads::channels();
        let metrics = Arc::new(StoreMetrics::default());
        let writer = writer::spawn(
            conn,
            ends.jobs,
            ends.done,
            waker.clone(),
            space,
            metrics.clone(),
        )?;
        let read_thread = reader::spawn(read_conn, ends.reads, ends.read_done, waker)?;
        threads.started(writer, read_thread);
        Ok(SqliteStore {
            threads,
            metrics,
            reader: Some(reader),
            path,
            _lock: lock,
        })
    }
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Snapshot, String> {
        let mut conn = match self.reader.take() {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let started = Instant::now();
        let snapshot = load::read_snapshot(&mut conn, wall_clock_ms()).map_err(|e| {
            format!(
                "cannot read the database {}: {e} (if the file is damaged, move it \
                 aside to start empty, or restore a backup)",
                self.path.display()
            )
        })?;
        log::info!(
            "opened {}: {} unacknowledged messages ({} bytes) stay on disk until read; \
             started in {} ms",
            self.path.display(),
            snapshot.pending_messages,
            snapshot.pending_bytes,
            started.elapsed().as_millis()
        );
        Ok(snapshot)
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
}

impl Drop for SqliteStore {
    /// Lets the writer finish what was submitted, then stops it.
    fn drop(&mut self) {
        self.threads.stop();
    }
}

/// Milliseconds since the Unix epoch, now.
fn wall_clock_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// A configured connection to the database file.
fn connect(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    schema::configure(&conn)?;
    Ok(conn)
}

/// Creates the data directory (and its parents). A directory made here is
/// synced into its parent, so it does not vanish in a power cut along with
/// everything committed inside it.
fn create_data_dir(dir: &Path) -> Result<(), String> {
    let fail =
        |e: std::io::Error| format!("cannot create the data directory {}: {e}", dir.display());
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(format!(
            "the data directory {} exists but is not a directory",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(fail)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(parent) = std::fs::File::open(parent) {
            let _ = parent.sync_all();
        }
    }
    Ok(())
}

/// Creates `path` readable by its owner only, if it does not exist yet;
/// SQLite gives its `-wal` and `-shm` files the same permissions. Messages
/// and password hashes are nobody else's business.
fn create_private_file(path: &Path) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!(
            "cannot create the database {}: {e}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests;
