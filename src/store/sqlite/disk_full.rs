//! Running out of disk space without losing the way out of it.
//!
//! When the disk is full every write fails, and that is right for SEND and
//! REGISTER (`unavailable`, nothing half-stored). But ACK, the one request
//! that frees space, also has to write: SQLite appends the pages a DELETE
//! changes to the write-ahead log before it can free anything. So space
//! is set aside while there is some: a reserve file, `<data>/gotalk.reserve`
//! (`--disk-reserve` bytes, default 8 MiB), created at start.
//!
//! When a commit fails for lack of space ([`DiskSpace::ran_out`]): the
//! store says once, at error level, that the disk is full; it deletes the
//! reserve; and the writer retries the batches that hold only ACKs on their
//! own, in the room the reserve left.
//!
//! From then on the disk counts as full: only batches of ACKs are written,
//! the rest is refused without trying, because new messages would take
//! the room the reserve just gave to ACKs. SQLite's automatic checkpoint
//! is turned off meanwhile: copying the log into the database can need
//! more room than there is (pages new since the last checkpoint make the
//! file grow), and a checkpoint that fails half-way has used up the free
//! space for nothing. The writer checkpoints itself instead, only when the
//! file system has room for the growth it computes ([`checkpoint_if_room`]).
//!
//! At most once a second, at a commit or when idle, the writer gives the
//! pages that ACKs freed back to the file system, in small steps that fit
//! ([`reclaim`]), and looks for room to rebuild the reserve
//! ([`DiskSpace::try_recover`]). Once it is rebuilt, the automatic
//! checkpoint is back on, everything is written again, and the log says
//! that space is available again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::upkeep::{free_pages, vacuum};
use super::DB_FILE;
use rusqlite::Connection;

/// The reserve's name inside the data directory.
pub const RESERVE_FILE: &str = "gotalk.reserve";

/// Shortest time between two looks for space (and two checkpoints) while
/// the disk is full.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Room that must be left besides the reserve before it is rebuilt, so
/// rebuilding it does not fill the disk again at once.
pub const HEADROOM_BYTES: u64 = 1 << 20;

/// Free pages handed back per step while the disk is full: each step
/// writes a few log frames per page, so it must fit in little room.
pub const RECLAIM_STEP_PAGES: u32 = 32;
/// Most free pages handed back per look for space (16 MiB).
pub const RECLAIM_PAGES_PER_LOOK: u64 = 4096;

/// SQLite's default automatic checkpoint: after a commit that left this
/// many pages in the log.
const AUTOCHECKPOINT_PAGES: u32 = 1000;

/// The reserve file and whether the disk is known to be full.
pub struct DiskSpace {
    dir: PathBuf,
    reserve: PathBuf,
    reserve_bytes: u64,
    has_reserve: bool,
    full: bool,
    last_try: Option<Instant>,
}

impl DiskSpace {
    /// Sets `reserve_bytes` aside in `dir` if it is not already (0: keep
    /// no reserve). A failure is a warning, not a reason not to start.
    pub fn open(dir: &Path, reserve_bytes: u64) -> DiskSpace {
        let reserve = dir.join(RESERVE_FILE);
        let mut space = DiskSpace {
            dir: dir.to_path_buf(),
            reserve,
            reserve_bytes,
            has_reserve: false,
            full: false,
            last_try: None,
        };
        if reserve_bytes == 0 {
            let _ = fs::remove_file(&space.reserve);
            return space;
        }
        let present = fs::metadata(&space.reserve).is_ok_and(|m| m.len() == reserve_bytes);
        space.has_reserve = present || {
            match create_reserve(&space.reserve, reserve_bytes) {
                Ok(()) => true,
                Err(e) => {
                    log::warn!(
                        "cannot set aside {} of disk space in {}: {e}; if the disk \
                         fills up, ACK may be refused too until space is freed",
                        mib(reserve_bytes),
                        space.reserve.display()
                    );
                    false
                }
            }
        };
        space
    }

    /// Whether the last commit that needed space found none.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Whether the reserve file is in place.
    pub fn has_reserve(&self) -> bool {
        self.has_reserve
    }

    /// A commit failed for lack of space. Said once per episode; frees the
    /// reserve and hands checkpoints over to [`checkpoint_if_room`].
    pub fn ran_out(&mut self, conn: &Connection, now: Instant) {
        if !self.full {
            self.full = true;
            if let Err(e) = conn.pragma_update(None, "wal_autocheckpoint", 0) {
                log::warn!("store: cannot turn the automatic checkpoint off: {e}");
            }
            let freed = if self.has_reserve {
                format!(
                    "; the {} reserve ({}) was released for them",
                    mib(self.reserve_bytes),
                    self.reserve.display()
                )
            } else {
                String::new()
            };
            log::error!(
                "store: the disk is full ({}): SEND and REGISTER are answered \
                 unavailable until space is freed; ACK still works{freed}",
                self.dir.display()
            );
            self.last_try = Some(now);
        }
        if self.has_reserve {
            self.has_reserve = false;
            if let Err(e) = fs::remove_file(&self.reserve) {
                log::warn!("cannot delete {}: {e}", self.reserve.display());
            }
        }
    }

    /// Whether it is time to look for space again.
    pub fn due_retry(&self, now: Instant) -> bool {
        self.full && self.due(now)
    }

    fn due(&self, now: Instant) -> bool {
        self.last_try
            .is_none_or(|last| now.duration_since(last) >= RETRY_EVERY)
    }

    /// Gives freed pages back to the file system (see [`reclaim`]) and
    /// looks whether space came back: if there is room, the reserve is
    /// rebuilt and disk-full mode ends, which is logged.
    pub fn try_recover(&mut self, conn: &Connection, now: Instant) {
        self.last_try = Some(now);
        match reclaim(conn, &self.dir) {
            Ok(pages) => log::debug!("store: {pages} free pages handed back, disk full"),
            Err(e) => log::debug!("store: handing back free pages stopped: {e}"),
        }
        let wanted = self.reserve_bytes + HEADROOM_BYTES;
        if free_bytes(&self.dir).is_some_and(|free| free < wanted) {
            return;
        }
        if self.reserve_bytes > 0 {
            if let Err(e) = create_reserve(&self.reserve, self.reserve_bytes) {
                log::debug!("store: no room for the reserve yet: {e}");
                return;
            }
            self.has_reserve = true;
        }
        if let Err(e) = conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES) {
            log::warn!("store: cannot turn the automatic checkpoint back on: {e}");
        }
        self.full = false;
        log::warn!(
            "store: disk space is available again ({}); writes are stored again",
            self.dir.display()
        );
    }
}

/// Copies the log into the database and empties it, if the file system
/// has room for what the database file must grow by (pages the log holds
/// past its end). Returns whether it did.
pub fn checkpoint_if_room(conn: &Connection, dir: &Path) -> rusqlite::Result<bool> {
    let page_size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let pages: u64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let file = fs::metadata(dir.join(DB_FILE)).map_or(0, |m| m.len());
    let growth = (pages * page_size).saturating_sub(file);
    if free_bytes(dir).is_some_and(|free| free < growth + page_size * 4) {
        return Ok(false);
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(true)
}

/// Hands free pages back to the file system while the disk is full: a
/// checkpoint if it fits, then vacuum steps of [`RECLAIM_STEP_PAGES`],
/// each followed by a checkpoint if it fits (a checkpoint after a vacuum
/// cuts the file; the log it empties is room for the next step). Stops at
/// the first error, at [`RECLAIM_PAGES_PER_LOOK`], or when nothing is
/// left. Returns the pages handed back.
pub fn reclaim(conn: &Connection, dir: &Path) -> rusqlite::Result<u64> {
    checkpoint_if_room(conn, dir)?;
    let mut freed = 0;
    while freed < RECLAIM_PAGES_PER_LOOK {
        let before = free_pages(conn)?;
        if before == 0 {
            break;
        }
        vacuum(conn, RECLAIM_STEP_PAGES)?;
        let after = free_pages(conn)?;
        checkpoint_if_room(conn, dir)?;
        if after >= before {
            break;
        }
        freed += before - after;
    }
    Ok(freed)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Writes `bytes` of incompressible data to `path` and syncs it, so the
/// space is really allocated (a sparse or compressed file would hold none).
/// A partly written file is removed.
pub fn create_reserve(path: &Path, bytes: u64) -> io::Result<()> {
    let write = || -> io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file: File = options.open(path)?;
        let mut block = vec![0u8; 64 * 1024];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for chunk in block.chunks_mut(8) {
            // xorshift64: cheap bytes no file system compresses away.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            file.write_all(&block[..n])?;
            left -= n as u64;
        }
        file.sync_all()
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(path);
    })
}

/// Bytes an unprivileged process may still write on the file system of
/// `dir`, if the platform says.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct it is given; the path is a valid
    // NUL-terminated string that outlives the call.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut stat) != 0 {
            return None;
        }
        Some(stat.f_bavail as u64 * stat.f_frsize as u64)
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gotalk-reserve-unit-{label}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_reserve_is_made_at_open_and_kept_across_opens() {
        let dir = temp_dir("open");
        let space = DiskSpace::open(&dir, 256 * 1024);
        assert!(space.has_reserve() && !space.is_full());
        let path = dir.join(RESERVE_FILE);
        assert_eq!(fs::metadata(&path).unwrap().len(), 256 * 1024);
        let again = DiskSpace::open(&dir, 256 * 1024);
        assert!(again.has_reserve());
        let none = DiskSpace::open(&dir, 0);
        assert!(!none.has_reserve());
        assert!(!path.exists(), "--disk-reserve 0 removes an old reserve");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn running_out_frees_the_reserve_and_recovering_rebuilds_it() {
        let dir = temp_dir("cycle");
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        let mut space = DiskSpace::open(&dir, 128 * 1024);
        let start = Instant::now();
        space.ran_out(&conn, start);
        assert!(space.is_full() && !space.has_reserve());
        assert!(!dir.join(RESERVE_FILE).exists());
        assert!(!space.due_retry(start));
        let later = start + RETRY_EVERY;
        assert!(space.due_retry(later));
        space.try_recover(&conn, later);
        assert!(!space.is_full() && space.has_reserve());
        assert_eq!(
            fs::metadata(dir.join(RESERVE_FILE)).unwrap().len(),
            128 * 1024
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
