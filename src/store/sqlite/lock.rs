//! One server per data directory. Two processes appending to the same
//! database would each believe their own message ids and mailboxes, so the
//! second one must refuse to start. The guard is an exclusive lock on
//! `<data>/gotalk.lock`, held for the life of the process; the kernel drops
//! it when the process ends, however it ends (kill -9 included), so a crash
//! never leaves a stale lock behind.

use crate::store::OpenError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "gotalk.lock";

/// Holds the data directory's lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock without waiting: an error if another process has it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, OpenError> {
        let path = dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = match options.open(&path) {
            Ok(file) => file,
            Err(cause) => return Err(OpenError::LockFile { path, cause }),
        };
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(OpenError::Locked {
                dir: dir.to_path_buf(),
                path,
            }),
            Err(TryLockError::Error(cause)) => Err(OpenError::Lock { path, cause }),
        }
    }

    /// Where the lock file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("gotalk-lock-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = DataDirLock::acquire(&dir).unwrap();
        let err = DataDirLock::acquire(&dir).unwrap_err();
        let err = err.to_string();
        assert!(err.contains("another gotalk is using"), "{err}");
        drop(first);
        let again = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(again.path(), dir.join(LOCK_FILE));
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
