//! Why the store could not commit a batch, as a type: the core answers
//! every failure `unavailable`, but a full disk is told apart, both in the
//! reply and in how the store reacts (see `docs/storage.md`, "Disk full").

use std::fmt;

/// A failed commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The file system has no space left (SQLite's `SQLITE_FULL`).
    DiskFull,
    /// Reading or writing the file failed (`SQLITE_IOERR`, a file that
    /// cannot be opened, ...): the cause as the system gave it.
    Io(String),
    /// The database refused the write (a broken constraint, a damaged
    /// file, ...): the cause as SQLite gave it.
    Database(String),
    /// The database server cannot be reached (PostgreSQL down, restarting,
    /// or the network to it cut); the store reconnects by itself.
    Unavailable(String),
    /// The writer thread panicked while writing (a bug); the transaction
    /// was rolled back.
    Panicked,
    /// The writer thread has stopped; nothing can be stored any more.
    Stopped,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Not SQLite's own "database or disk is full": the store says
            // that once, in its own words, for as long as it lasts.
            StoreError::DiskFull => f.write_str("no space left on the device"),
            StoreError::Io(cause) => write!(f, "I/O error: {cause}"),
            StoreError::Database(cause) => f.write_str(cause),
            StoreError::Unavailable(cause) => write!(f, "the database is unavailable: {cause}"),
            StoreError::Panicked => f.write_str("the store thread panicked while writing"),
            StoreError::Stopped => f.write_str("the store thread has stopped"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => {
                StoreError::Io(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn sqlite_codes_map_to_kinds() {
        assert_eq!(
            StoreError::from(sqlite(ffi::SQLITE_FULL)),
            StoreError::DiskFull
        );
        assert!(matches!(
            StoreError::from(sqlite(ffi::SQLITE_IOERR_WRITE)),
            StoreError::Io(_)
        ));
        assert!(matches!(
            StoreError::from(sqlite(ffi::SQLITE_CONSTRAINT_UNIQUE)),
            StoreError::Database(_)
        ));
    }

    #[test]
    fn a_full_disk_is_not_worded_like_sqlite() {
        let text = StoreError::DiskFull.to_string();
        assert!(!text.contains("disk is full"), "{text}");
    }
}
