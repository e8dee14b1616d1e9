//! The store's errors, as types. [`StoreError`]: why a batch or a read
//! failed; the core answers every failure `unavailable`, but a full disk
//! is told apart, both in the reply and in how the store reacts (see
//! `docs/storage.md`, "Disk full"). [`SchemaError`] and [`OpenError`]: why
//! a store could not be opened or read at start; their text names the file
//! or database and the cause, for the operator. Plain types only: each
//! store turns its driver's errors into these.

use std::io;
use std::path::PathBuf;

/// A failed commit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The file system has no space left (SQLite's `SQLITE_FULL`). Not
    /// SQLite's own "database or disk is full": the store says that once,
    /// in its own words, for as long as it lasts.
    #[error("no space left on the device")]
    DiskFull,
    /// Reading or writing the file failed (`SQLITE_IOERR`, a file that
    /// cannot be opened, ...): the cause as the system gave it.
    #[error("I/O error: {0}")]
    Io(String),
    /// The database refused the write (a broken constraint, a damaged
    /// file, ...): the cause as SQLite gave it.
    #[error("{0}")]
    Database(String),
    /// The database server cannot be reached (PostgreSQL down, restarting,
    /// or the network to it cut); the store reconnects by itself.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The writer thread panicked while writing (a bug); the transaction
    /// was rolled back.
    #[error("the store thread panicked while writing")]
    Panicked,
    /// The writer thread has stopped; nothing can be stored any more.
    #[error("the store thread has stopped")]
    Stopped,
}

/// Why a database's connection settings or schema could not be made
/// right.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A file written by a newer gotalk: run that one, or go back to the
    /// backup taken before the upgrade. Starting empty loses the data, so
    /// it comes last.
    #[error(
        "its schema version is {found}, newer than the {known} this gotalk knows; \
         run the newer gotalk that wrote it, or restore the backup taken before \
         the upgrade (last resort, losing its data: move it aside to start empty)"
    )]
    TooNew { found: i64, known: i64 },
    #[error("upgrading the schema to version {to} failed: {cause}")]
    Step { to: i64, cause: String },
    /// SQLite kept another journal mode (a file system without WAL).
    #[error("it refused write-ahead logging (journal mode stays {0})")]
    NoWal(String),
    /// The database failed a statement: its own words.
    #[error("{0}")]
    Database(String),
}

/// What to do about a database file that cannot be used, safest first.
const IF_DAMAGED: &str = " (if the file is damaged, restore a backup; last resort, \
     losing its data: move it aside to start empty)";

/// Why a store could not be opened, or its state read at start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {}: {cause}", .dir.display())]
    CreateDir { dir: PathBuf, cause: io::Error },
    #[error("the data directory {} exists but is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot create the lock file {}: {cause}", .path.display())]
    LockFile { path: PathBuf, cause: io::Error },
    /// Another process holds the data directory's lock.
    #[error(
        "another gotalk is using {} (it holds {}); stop it first or choose another --data directory",
        .dir.display(),
        .path.display()
    )]
    Locked { dir: PathBuf, path: PathBuf },
    #[error("cannot lock {}: {cause}", .path.display())]
    Lock { path: PathBuf, cause: io::Error },
    #[error("cannot create the database {}: {cause}", .path.display())]
    CreateFile { path: PathBuf, cause: io::Error },
    /// The SQLite file cannot be opened or brought up to date. The advice
    /// puts starting empty last: it loses the data.
    #[error(
        "cannot use the database {}: {cause}{}",
        .path.display(),
        if matches!(.cause, SchemaError::TooNew { .. }) { "" } else { IF_DAMAGED }
    )]
    UseFile { path: PathBuf, cause: SchemaError },
    /// The SQLite file's state cannot be read.
    #[error("cannot read the database {}: {cause}{IF_DAMAGED}", .path.display())]
    ReadFile { path: PathBuf, cause: String },
    #[error("--node-id '{0}': use 1 to 40 letters, digits, '-' and '_'")]
    NodeId(String),
    /// `--postgres` that does not parse (`url` without its password).
    #[error("--postgres: '{url}' is not a usable URL: {cause}")]
    Url { url: String, cause: String },
    /// The PostgreSQL database cannot be reached or brought up to date
    /// (`shown`: its URL without the password).
    #[error("cannot use the database {shown}: {cause}")]
    UseDatabase { shown: String, cause: SchemaError },
    #[error("cannot read the database {shown}: {cause}")]
    ReadDatabase { shown: String, cause: String },
    /// A store thread could not be started (`what`: which).
    #[error("cannot start the {what}: {cause}")]
    Thread {
        what: &'static str,
        cause: io::Error,
    },
    /// A bare schema or connection error, where no name is added.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// The server's start-up errors are text: an [`OpenError`] becomes its
/// message.
impl From<OpenError> for String {
    fn from(e: OpenError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_put_starting_empty_last() {
        let newer = OpenError::UseFile {
            path: "d/gotalk.db".into(),
            cause: SchemaError::TooNew {
                found: 12,
                known: 11,
            },
        }
        .to_string();
        let damaged = OpenError::UseFile {
            path: "d/gotalk.db".into(),
            cause: SchemaError::Database("file is not a database".into()),
        }
        .to_string();
        for (text, first) in [
            (&newer, "run the newer gotalk"),
            (&damaged, "restore a backup"),
        ] {
            let at = |needle: &str| {
                text.find(needle)
                    .unwrap_or_else(|| panic!("{needle}: {text}"))
            };
            assert!(at(first) <= at("restore"), "{text}");
            assert!(at("restore") < at("start empty"), "{text}");
            assert!(text.ends_with("start empty)"), "{text}");
        }
        assert!(
            newer.contains("version is 12, newer than the 11"),
            "{newer}"
        );
    }

    #[test]
    fn a_full_disk_is_not_worded_like_sqlite() {
        let text = StoreError::DiskFull.to_string();
        assert!(!text.contains("disk is full"), "{text}");
    }
}
