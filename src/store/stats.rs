//! Cumulative counters of the writer thread, logged at info level at most
//! every [`LOG_EVERY`] while writes happen, as
//! `store stats: batches=B transactions=T writes=W`. B counts batches (one
//! per event-loop turn that wrote), T counts committed transactions (one
//! fsync each), W counts write operations. A load generator reads two such
//! lines to compute commits per second and the group-commit factor B/T;
//! keep the format. Where the writer splits its CPU time ([`super::cpu`]:
//! SQLite), the line goes on with `cpu_us=… begin=… append=… ack=…
//! sides=… totals=… other=… index=… commit=… commit_wall_us=… pages=…`, cumulative
//! microseconds of the writing thread.

use std::time::{Duration, Instant};

/// Shortest time between two stats lines.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub batches: u64,
    pub transactions: u64,
    pub writes: u64,
}

impl Counts {
    pub fn line(&self) -> String {
        format!(
            "store stats: batches={} transactions={} writes={}",
            self.batches, self.transactions, self.writes
        )
    }
}

pub struct Stats {
    pub counts: Counts,
    logged: Counts,
    last_log: Instant,
}

impl Stats {
    pub fn new(now: Instant) -> Stats {
        Stats {
            counts: Counts::default(),
            logged: Counts::default(),
            last_log: now,
        }
    }

    /// Counts a group of `batches` batches that committed in
    /// `transactions` (1, or 0 for a group with nothing to write).
    pub fn committed(&mut self, batches: usize, transactions: usize, writes: usize) {
        self.counts.batches += batches as u64;
        self.counts.transactions += transactions as u64;
        self.counts.writes += writes as u64;
    }

    /// The line to log now, if the counts moved and the last line is old
    /// enough.
    pub fn due(&mut self, now: Instant) -> Option<String> {
        if self.counts == self.logged || now.duration_since(self.last_log) < LOG_EVERY {
            return None;
        }
        self.logged = self.counts;
        self.last_log = now;
        Some(self.counts.line() + &super::cpu::recorded().fields())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_at_most_every_ten_seconds_and_only_after_writes() {
        let start = Instant::now();
        let mut stats = Stats::new(start);
        assert_eq!(stats.due(start + LOG_EVERY), None, "nothing written yet");
        stats.committed(3, 1, 7);
        assert_eq!(stats.due(start + Duration::from_secs(1)), None, "too soon");
        assert_eq!(
            stats.due(start + LOG_EVERY).as_deref(),
            Some("store stats: batches=3 transactions=1 writes=7")
        );
        stats.committed(1, 1, 1);
        stats.committed(1, 0, 0);
        assert_eq!(stats.due(start + LOG_EVERY + Duration::from_secs(9)), None);
        assert_eq!(
            stats.due(start + 2 * LOG_EVERY).as_deref(),
            Some("store stats: batches=5 transactions=2 writes=8")
        );
        assert_eq!(stats.due(start + 10 * LOG_EVERY), None, "unchanged");
    }
}
