//! Warnings that an attacker could repeat thousands of times a second (a
//! refused connection, a full budget) are logged at most once per interval
//! per kind, with a count of what was left out in between.

use crate::Millis;

/// One kind of repeated warning.
pub struct LogLimit {
    interval_ms: Millis,
    next_at: Millis,
    suppressed: u64,
}

impl LogLimit {
    pub const fn new(interval_ms: Millis) -> LogLimit {
        LogLimit {
            interval_ms,
            next_at: 0,
            suppressed: 0,
        }
    }

    /// Logs `message()` at warn level unless one was logged within the
    /// interval; then it only counts.
    pub fn warn(&mut self, now: Millis, message: impl FnOnce() -> String) {
        self.log(log::Level::Warn, now, message);
    }

    /// The same at info level (routine events an attacker can repeat, such
    /// as failed logins).
    pub fn info(&mut self, now: Millis, message: impl FnOnce() -> String) {
        self.log(log::Level::Info, now, message);
    }

    fn log(&mut self, level: log::Level, now: Millis, message: impl FnOnce() -> String) {
        if now < self.next_at {
            self.suppressed += 1;
            return;
        }
        let text = message();
        if self.suppressed > 0 {
            log::log!(
                level,
                "{text} (and {} more like it since the last such line)",
                self.suppressed
            );
        } else {
            log::log!(level, "{text}");
        }
        self.suppressed = 0;
        self.next_at = now + self.interval_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_interval_are_counted_not_logged() {
        let mut limit = LogLimit::new(1000);
        let mut logged = 0;
        for now in [0, 10, 20, 999, 1000, 1001] {
            limit.warn(now, || {
                logged += 1;
                String::new()
            });
        }
        assert_eq!(logged, 2, "at 0 and at 1000");
        assert_eq!(limit.suppressed, 1, "1001 waits for the next line");
    }
}
