//! What a failed SQLite call means for the core: SQLite's result codes
//! sorted into the kinds of [`StoreError`] (a full disk is told apart).

use crate::store::StoreError;

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
}
