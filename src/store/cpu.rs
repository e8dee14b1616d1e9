//! The writing thread's CPU time, split by what it was doing, for the
//! `store stats:` line ([`super::stats`]): starting a group's transaction
//! and its statements, each kind of write, the conversations' sides, the
//! totals in custody, the conversation index's steps between groups, and
//! the commit (whose wall time, the fsync included,
//! is kept beside, with the pages the commits wrote to the log). CPU time
//! of this thread only
//! (`CLOCK_THREAD_CPUTIME_ID`), so other threads and other processes on a
//! loaded machine do not move it; the commit's wall time minus its CPU
//! time is what the thread waited for the disk.
//!
//! The clock is read only where the phase changes (a group of 64 SENDs
//! reads it about eight times, not per row), and the sums live in a
//! thread-local: the writer records and the same thread logs them.

use std::cell::Cell;
use std::time::Duration;

/// What the writing thread spends CPU on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// BEGIN and the group's statements (from the statement cache).
    Begin,
    /// Stored messages: the row, its indexes, its `client_id`.
    Append,
    /// ACKs and expiry: what they end, and the marks.
    Ack,
    /// Conversations' sides (history), once per group.
    Sides,
    /// The totals in custody (`meta`, each sender's bytes), once per group.
    Totals,
    /// Everything else: accounts, tokens, READ markers.
    Other,
    /// Between groups: the conversation index's steps (history), each
    /// its own transaction.
    Index,
    /// COMMIT: the log's pages written, and the fsync.
    Commit,
}

/// The phases in the order the stats line names them.
pub const PHASES: [(Phase, &str); 8] = [
    (Phase::Begin, "begin"),
    (Phase::Append, "append"),
    (Phase::Ack, "ack"),
    (Phase::Sides, "sides"),
    (Phase::Totals, "totals"),
    (Phase::Other, "other"),
    (Phase::Index, "index"),
    (Phase::Commit, "commit"),
];

/// Cumulative CPU nanoseconds per phase (in [`PHASES`] order), the
/// commits' wall time and the pages they wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub cpu_ns: [u64; PHASES.len()],
    pub commit_wall_ns: u64,
    pub pages: u64,
}

impl Split {
    /// The CPU time of every phase.
    pub fn total_ns(&self) -> u64 {
        self.cpu_ns.iter().sum()
    }

    /// ` cpu_us=T begin=.. commit=.. commit_wall_us=W pages=P`
    /// (microseconds, cumulative), or nothing when no phase was measured (a store that
    /// does not split its work).
    pub fn fields(&self) -> String {
        use std::fmt::Write;
        if self.total_ns() == 0 {
            return String::new();
        }
        let mut s = format!(" cpu_us={}", self.total_ns() / 1000);
        for (i, (_, name)) in PHASES.iter().enumerate() {
            let _ = write!(s, " {name}={}", self.cpu_ns[i] / 1000);
        }
        let _ = write!(s, " commit_wall_us={}", self.commit_wall_ns / 1000);
        let _ = write!(s, " pages={}", self.pages);
        s
    }
}

thread_local! {
    static SPLIT: Cell<Split> = const {
        Cell::new(Split { cpu_ns: [0; PHASES.len()], commit_wall_ns: 0, pages: 0 })
    };
}

/// What this thread has recorded so far.
pub fn recorded() -> Split {
    SPLIT.with(Cell::get)
}

/// Adds a commit's wall time and the pages it wrote.
pub fn committed(took: Duration, pages: u64) {
    SPLIT.with(|s| {
        let mut split = s.get();
        split.commit_wall_ns += took.as_nanos() as u64;
        split.pages += pages;
        s.set(split);
    });
}

/// This thread's CPU time so far, in nanoseconds (user and system).
pub fn thread_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Charges the thread's CPU time to one phase at a time; the clock is read
/// when the phase changes and when the meter stops (or is dropped, as on
/// an error's early return).
pub struct Meter {
    phase: Phase,
    since: u64,
}

impl Meter {
    pub fn start(phase: Phase) -> Meter {
        Meter {
            phase,
            since: thread_ns(),
        }
    }

    /// From now on, time goes to `phase`.
    pub fn enter(&mut self, phase: Phase) {
        if phase != self.phase {
            let now = thread_ns();
            self.charge(now);
            self.phase = phase;
            self.since = now;
        }
    }

    fn charge(&self, now: u64) {
        let i = PHASES
            .iter()
            .position(|(p, _)| *p == self.phase)
            .unwrap_or(0);
        let spent = now.saturating_sub(self.since);
        SPLIT.with(|s| {
            let mut split = s.get();
            split.cpu_ns[i] += spent;
            s.set(split);
        });
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.charge(thread_ns());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_goes_to_the_phase_that_was_running() {
        let before = recorded();
        {
            let mut meter = Meter::start(Phase::Append);
            // Some CPU work for the clock to see.
            let mut x = 0u64;
            for i in 0..2_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            meter.enter(Phase::Commit);
        }
        committed(Duration::from_micros(5), 3);
        let after = recorded();
        let grew = |i: usize| after.cpu_ns[i] - before.cpu_ns[i];
        assert!(grew(1) > 0, "append was charged");
        assert_eq!(grew(2), 0, "ack was not running");
        assert_eq!(after.commit_wall_ns - before.commit_wall_ns, 5000);
        assert_eq!(after.pages - before.pages, 3);
        let line = after.fields();
        assert!(line.starts_with(" cpu_us="), "{line}");
        assert!(line.contains(" append=") && line.ends_with(" commit_wall_us=5 pages=3"));
        assert_eq!(Split::default().fields(), "", "nothing measured: no fields");
    }
}
