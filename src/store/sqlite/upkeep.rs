//! Keeping the file bounded without stopping the server. Acknowledged
//! messages are deleted at once, which frees pages inside the file; this
//! module, run by the writer thread between commits, gives them back:
//!
//! 1. forget `client_id`s older than a day (they no longer deduplicate),
//!    in steps of [`PRUNE_STEP`], and revoked tokens that have expired
//!    (they no longer open);
//! 2. `PRAGMA incremental_vacuum(N)` moves up to N free pages to the end of
//!    the file and cuts them off (the database was created with
//!    `auto_vacuum = INCREMENTAL`, so no full `VACUUM`, which would copy
//!    the whole file, is ever needed);
//! 3. `PRAGMA wal_checkpoint(TRUNCATE)` copies the write-ahead log into the
//!    database and empties it, so the `-wal` file does not keep its high
//!    water mark.
//!
//! It runs when the writer has been idle for a while ([`Upkeep::due_idle`]),
//! or, under load that never pauses, after [`FORCE_AFTER`] regardless.
//! Each pass is bounded ([`VACUUM_PAGES_PER_PASS`]) so commits behind it
//! wait milliseconds, not seconds; the rest is done on the next pass.

use crate::config::limits::CLIENT_ID_RETENTION_MS;
use crate::store::StoreError;
use crate::Millis;
use rusqlite::Connection;
use std::time::{Duration, Instant};

/// How long the writer must have nothing to do before it calls [`Upkeep`].
pub const IDLE_AFTER: Duration = Duration::from_secs(1);
/// Shortest time between two passes.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(60);
/// Longest time between two passes, idle or not.
pub const FORCE_AFTER: Duration = Duration::from_secs(600);
/// Free pages handed back per pass (16 MiB with SQLite's 4 KiB pages).
pub const VACUUM_PAGES_PER_PASS: u32 = 4096;

/// When the last pass ran.
pub struct Upkeep {
    last: Instant,
}

/// What one pass did, for the debug log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub client_ids_pruned: usize,
    pub pages_freed: u64,
    pub free_pages_left: u64,
}

impl Upkeep {
    pub fn new(now: Instant) -> Upkeep {
        Upkeep { last: now }
    }

    /// Whether an idle writer should run a pass now.
    pub fn due_idle(&self, now: Instant) -> bool {
        now.duration_since(self.last) >= UPKEEP_EVERY
    }

    /// Whether a busy writer must run a pass anyway.
    pub fn due_busy(&self, now: Instant) -> bool {
        now.duration_since(self.last) >= FORCE_AFTER
    }

    /// Runs one pass; failures are logged and retried next time.
    pub fn run(&mut self, conn: &Connection, now: Instant, wall_ms: Millis) {
        self.last = now;
        match pass(conn, wall_ms).map_err(StoreError::from) {
            Ok(report) => log::debug!("store upkeep: {report:?}"),
            // The writer has said that the disk is full, once.
            Err(StoreError::DiskFull) => log::debug!("store upkeep: disk full, will retry"),
            Err(e) => log::warn!("store upkeep failed (will retry): {e}"),
        }
    }
}

/// One pass of upkeep as of `wall_ms` (ms since the epoch).
pub fn pass(conn: &Connection, wall_ms: Millis) -> rusqlite::Result<Report> {
    let cutoff = wall_ms.saturating_sub(CLIENT_ID_RETENTION_MS) as i64;
    let client_ids_pruned = prune_client_ids(conn, cutoff)?;
    // Revoked tokens that have expired no longer open anyway.
    conn.execute(
        "DELETE FROM revoked_tokens WHERE expires <= ?1",
        [wall_ms as i64],
    )?;
    let before = free_pages(conn)?;
    if before > 0 {
        vacuum(conn, VACUUM_PAGES_PER_PASS)?;
    }
    let free_pages_left = free_pages(conn)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(Report {
        client_ids_pruned,
        pages_freed: before.saturating_sub(free_pages_left),
        free_pages_left,
    })
}

/// `client_id`s pruned per statement, and most statements per pass: each
/// step is a short transaction of its own, so a day's worth of ids never
/// holds the writer for long; what is left waits for the next pass (an
/// expired row no longer counts as a duplicate meanwhile, see `writer`).
pub const PRUNE_STEP: usize = 5000;
pub const PRUNE_STEPS_PER_PASS: usize = 20;

/// Forgets `client_id`s first used before `cutoff`, in small steps.
fn prune_client_ids(conn: &Connection, cutoff: i64) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM client_ids WHERE (sender, client_id) IN \
         (SELECT sender, client_id FROM client_ids WHERE ts < ?1 LIMIT ?2)",
    )?;
    let mut pruned = 0;
    for _ in 0..PRUNE_STEPS_PER_PASS {
        let n = stmt.execute(rusqlite::params![cutoff, PRUNE_STEP as i64])?;
        pruned += n;
        if n < PRUNE_STEP {
            break;
        }
    }
    Ok(pruned)
}

/// Hands up to `pages` free pages back to the file system (at the next
/// checkpoint, which cuts them off the file).
pub fn vacuum(conn: &Connection, pages: u32) -> rusqlite::Result<()> {
    // Each step of this statement frees one page: run it to the end
    // (`execute` would stop after the first).
    let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Pages inside the file that hold nothing.
pub fn free_pages(conn: &Connection) -> rusqlite::Result<u64> {
    conn.pragma_query_value(None, "freelist_count", |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema;

    #[test]
    fn idle_passes_wait_a_minute_and_busy_ones_ten() {
        let start = Instant::now();
        let upkeep = Upkeep::new(start);
        assert!(!upkeep.due_idle(start + IDLE_AFTER));
        assert!(upkeep.due_idle(start + UPKEEP_EVERY));
        assert!(!upkeep.due_busy(start + UPKEEP_EVERY));
        assert!(upkeep.due_busy(start + FORCE_AFTER));
    }

    #[test]
    fn a_pass_prunes_old_client_ids_and_shrinks_the_file() {
        let dir = std::env::temp_dir().join(format!("gotalk-upkeep-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gotalk.db");
        let mut conn = Connection::open(&path).unwrap();
        schema::configure(&conn).unwrap();
        schema::migrate(&mut conn).unwrap();
        let day = CLIENT_ID_RETENTION_MS as i64;
        let now = 10 * day;
        conn.execute_batch(&format!(
            "INSERT INTO client_ids VALUES (1, 'old', 1, {old}, 1), (1, 'new', 2, {new}, 2);",
            old = now - day - 1,
            new = now - day + 1
        ))
        .unwrap();
        let tx = conn.transaction().unwrap();
        let big = "x".repeat(2000);
        for id in 0..2000 {
            tx.execute(
                "INSERT INTO messages VALUES (?1, 1, 2, 0, ?2, NULL, 0)",
                rusqlite::params![id, big],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        conn.execute("DELETE FROM messages", []).unwrap();
        assert!(free_pages(&conn).unwrap() > 1000);

        let report = pass(&conn, now as Millis).unwrap();
        assert_eq!(report.client_ids_pruned, 1);
        assert!(report.pages_freed > 1000, "{report:?}");
        assert_eq!(report.free_pages_left, 0, "{report:?}");
        let left: Vec<String> = conn
            .prepare("SELECT client_id FROM client_ids")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(left, ["new"]);
        let wal = std::fs::metadata(dir.join("gotalk.db-wal")).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "the checkpoint empties the log");
        drop(conn);
        assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
