//! The durable store: one SQLite database, `<data>/gotalk.db`, written by a
//! thread of its own with group commit (see `docs/storage.md` for the
//! schema, the settings and why).
//!
//! - [`lock`]: one server per data directory (`<data>/gotalk.lock`).
//! - [`schema`]: connection settings (WAL, `synchronous = FULL`,
//!   incremental auto-vacuum) and the versioned forward migrations.
//! - [`load`]: the figures read at start.
//! - [`writer`]: the writing thread's SQLite side (purge, upkeep, a full
//!   disk); [`group`]: one group of batches as one transaction.
//! - [`client_id_window`]: a sender's newest N `client_id`s, kept by each
//!   SEND that adds one.
//! - [`reader`]: the thread that answers the core's reads on demand.
//! - [`purge`]: deleting the messages ACKs marked, many at a time (only
//!   with `--no-history`).
//! - [`history`]: conversations and read markers kept by the writer, and
//!   retention; `history_reads`: HISTORY and CONVERSATIONS on the reader;
//!   [`pairs`]: the conversation index, filled in steps behind the commit.
//! - [`upkeep`]: giving freed space back and pruning old `client_id`s.
//! - `error_kind`: SQLite's result codes as [`StoreError`](super::StoreError) kinds.
//! - [`disk_full`]: the reserve file that keeps ACK working on a full disk.
//! - `tests`: the store end to end on a real file.
//!
//! The event loop only ever touches channels (see [`super::threaded`]);
//! disk waits happen on the writer thread, whose loop is
//! [`super::group_commit`] over this store's [`writer::Sqlite`].

pub mod admin;
pub mod client_id_window;
pub mod custody;
pub mod disk_full;
mod error_kind;
pub mod group;
pub mod history;
mod history_reads;
pub mod load;
pub mod lock;
pub mod pairs;
pub mod purge;
pub mod reader;
pub mod recount;
pub mod schema;
pub mod upkeep;
pub mod writer;

use super::threaded::{Opened, Threaded};
use super::threads::StoreThreads;
use super::{group_commit, read_loop};
use super::{HistoryRules, OpenError, SchemaError, Snapshot, StoreMetrics};
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

/// The SQLite store: its threads, and [`Files`] on the loop's side.
pub type SqliteStore = Threaded<Files>;

/// What the SQLite store keeps on the loop's side.
pub struct Files {
    /// The connection that migrated the schema; [`Opened::load`] reads with
    /// it and closes it.
    reader: Option<Connection>,
    path: PathBuf,
    /// Held for as long as the store lives (the process, in the server);
    /// dropped after the writer has stopped.
    _lock: DataDirLock,
}

impl Threaded<Files> {
    /// Opens (creating if need be) the store in `dir`: the directory, its
    /// lock, the database and its schema, and the writer thread. Every
    /// failure is an error that names the file and the cause. Sets the
    /// default reserve aside (see [`disk_full`]).
    pub fn open(dir: &Path, waker: Arc<Waker>) -> Result<SqliteStore, OpenError> {
        Self::open_with_reserve(dir, DEFAULT_DISK_RESERVE, waker)
    }

    /// [`SqliteStore::open`] with `reserve_bytes` of disk set aside for
    /// ACKs on a full disk (0: none).
    pub fn open_with_reserve(
        dir: &Path,
        reserve_bytes: u64,
        waker: Arc<Waker>,
    ) -> Result<SqliteStore, OpenError> {
        Self::open_with_history(dir, reserve_bytes, HistoryRules::default(), waker)
    }

    /// [`SqliteStore::open_with_reserve`] keeping conversations as `history`
    /// says (the server's flags; the default keeps none).
    pub fn open_with_history(
        dir: &Path,
        reserve_bytes: u64,
        history: HistoryRules,
        waker: Arc<Waker>,
    ) -> Result<SqliteStore, OpenError> {
        create_data_dir(dir)?;
        let lock = DataDirLock::acquire(dir)?;
        let space = DiskSpace::open(dir, reserve_bytes);
        let path = dir.join(DB_FILE);
        create_private_file(&path)?;
        let fail = |cause: SchemaError| OpenError::UseFile {
            path: path.clone(),
            cause,
        };
        let mut reader = connect(&path).map_err(fail)?;
        let found = schema::migrate(&mut reader).map_err(fail)?;
        if found == 0 {
            log::info!(
                "created the database {} (schema version {})",
                path.display(),
                schema::latest_version()
            );
        }
        let conn = connect(&path).map_err(fail)?;
        let read_conn = connect(&path).map_err(fail)?;
        let (mut threads, ends) = StoreThreads::channels();
        let metrics = Arc::new(StoreMetrics::default());
        let writer = group_commit::spawn(
            "gotalk-store",
            writer::Sqlite::new(conn, space).with_history(history),
            ends.jobs,
            ends.done,
            waker.clone(),
            metrics.clone(),
        )?;
        let read_thread = read_loop::spawn(
            "gotalk-reader",
            reader::SqliteReader(read_conn),
            ends.reads,
            ends.read_done,
            waker,
        )?;
        threads.started(writer, read_thread);
        let files = Files {
            reader: Some(reader),
            path,
            _lock: lock,
        };
        Ok(Threaded::new(threads, metrics, files))
    }
}

impl Opened for Files {
    fn load(&mut self) -> Result<Snapshot, OpenError> {
        let mut conn = match self.reader.take() {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let started = Instant::now();
        let snapshot =
            load::read_snapshot(&mut conn, wall_clock_ms()).map_err(|e| OpenError::ReadFile {
                path: self.path.clone(),
                cause: e.to_string(),
            })?;
        log::info!(
            "opened {}: {} unacknowledged messages ({} bytes) stay on disk until read \
             (figures read in {} ms)",
            self.path.display(),
            snapshot.pending_messages,
            snapshot.pending_bytes,
            started.elapsed().as_millis()
        );
        Ok(snapshot)
    }
}

/// Milliseconds since the Unix epoch, now.
fn wall_clock_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// A configured connection to the database file.
fn connect(path: &Path) -> Result<Connection, SchemaError> {
    let conn = Connection::open(path).map_err(|e| SchemaError::Database(e.to_string()))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    schema::configure(&conn)?;
    Ok(conn)
}

/// Prepared statements each connection keeps. A group holds its sixteen
/// statements at once and the sides, sender figures, ACKs and READs take
/// more: with rusqlite's default of 16, those were evicted by every group
/// and prepared again by the next (about 20 µs of the writer's CPU per
/// group, a fifth of a one-message group's).
const STATEMENT_CACHE: usize = 64;

/// Creates the data directory (and its parents). A directory made here is
/// synced into its parent, so it does not vanish in a power cut along with
/// everything committed inside it.
fn create_data_dir(dir: &Path) -> Result<(), OpenError> {
    let fail = |cause: std::io::Error| OpenError::CreateDir {
        dir: dir.to_path_buf(),
        cause,
    };
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(OpenError::NotADirectory(dir.to_path_buf()));
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
fn create_private_file(path: &Path) -> Result<(), OpenError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(cause) => Err(OpenError::CreateFile {
            path: path.to_path_buf(),
            cause,
        }),
    }
}

#[cfg(test)]
mod tests;
