//! Read shaping per connection (`--read-bytes-per-second` with
//! `--read-burst`), as ejabberd's shapers do: a token bucket of bytes,
//! refilled lazily from the loop's clock. Past it the server stops reading
//! the socket until the bucket holds [`RESUME_BYTES`] again (a timer wakes
//! it), so the client's TCP window fills and it waits: backpressure,
//! nothing refused and nothing lost. The check is a multiplication and a
//! comparison per read call.
//!
//! Tokens are kept in thousandths of a byte, so whole-millisecond refills
//! at any rate add up exactly. The bucket may go into debt, down to minus
//! one burst: a request that cost more than the bytes it came in (a SEND
//! whose message renders to six times its size) is charged in full, and
//! the connection waits until the debt is paid back.

use crate::opt_u64::OptU64;
use crate::Millis;

/// Bytes the bucket must hold again before a paused socket is read, so a
/// shaped connection is read in chunks, not a few bytes per wake-up.
pub const RESUME_BYTES: u64 = 16 * 1024;

/// The rate every connection is shaped to (0 bytes a second: no shaping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRate {
    pub per_second: u64,
    pub burst: u64,
}

impl ReadRate {
    fn full(&self) -> i64 {
        i64::try_from(self.burst.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// One connection's bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadShaper {
    /// Thousandths of a byte in the bucket at `at` (full when `at` is 0);
    /// below 0 while a charge larger than the bucket is paid back.
    milli: i64,
    at: Millis,
    /// Reading is paused until then.
    pub paused_until: OptU64,
    /// The loop turn `lines` counts for, and the request lines handed to
    /// the door in it ([`LINES_PER_TURN`](crate::config::limits::LINES_PER_TURN)).
    lines_turn: u32,
    lines: u32,
    /// The turn the connection was last put on the next turn's reads for
    /// held input (so it is put there once).
    held_turn: u64,
}

/// What a connection may read now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// Up to this many bytes (`usize::MAX`: no shaping).
    Bytes(usize),
    /// Nothing until then.
    PausedUntil(Millis),
}

impl ReadShaper {
    fn refill(&mut self, rate: ReadRate, now: Millis) {
        if self.at == 0 {
            self.milli = rate.full();
        } else {
            let refill = now.saturating_sub(self.at).saturating_mul(rate.per_second);
            let refill = i64::try_from(refill).unwrap_or(i64::MAX);
            self.milli = self.milli.saturating_add(refill).min(rate.full());
        }
        self.at = now;
    }

    /// How much may be read now; when nothing, pauses the connection until
    /// [`RESUME_BYTES`] (or the whole burst, if smaller) are back.
    pub fn allowance(&mut self, rate: ReadRate, now: Millis) -> Allowance {
        if rate.per_second == 0 {
            return Allowance::Bytes(usize::MAX);
        }
        if let Some(until) = self.paused_until.get() {
            if now < until {
                return Allowance::PausedUntil(until);
            }
            self.paused_until = OptU64::NONE;
        }
        self.refill(rate, now);
        let bytes = self.milli / 1000;
        if bytes > 0 {
            return Allowance::Bytes(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        let want = RESUME_BYTES.min(rate.burst).saturating_mul(1000);
        let missing = u64::try_from(i128::from(want) - i128::from(self.milli)).unwrap_or(u64::MAX);
        let until = now + missing.div_ceil(rate.per_second).max(1);
        self.paused_until = OptU64::some(until);
        Allowance::PausedUntil(until)
    }

    /// `n` bytes were read, or a request cost `n` bytes beyond those it
    /// came in: the bucket goes down by that much, at most to minus one
    /// burst (so one charge pauses a connection for at most
    /// `burst / per_second`).
    pub fn spend(&mut self, rate: ReadRate, n: u64) {
        if rate.per_second != 0 {
            let n = i64::try_from(n.saturating_mul(1000)).unwrap_or(i64::MAX);
            self.milli = self.milli.saturating_sub(n).max(-rate.full());
        }
    }
}

impl ReadShaper {
    /// Request lines the door may still be handed in loop turn `turn`,
    /// of `per_turn`.
    pub fn lines_left(&mut self, turn: u64, per_turn: usize) -> usize {
        // The turn's low 32 bits, compared for equality only (as
        // `Conn::enter_turn`'s).
        let turn = turn as u32;
        if self.lines_turn != turn {
            self.lines_turn = turn;
            self.lines = 0;
        }
        per_turn.saturating_sub(self.lines as usize)
    }

    /// `n` request lines were handed to the door in this turn.
    pub fn took_lines(&mut self, n: usize) {
        self.lines = self
            .lines
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Whether the connection's input was held back in turn `turn` (and
    /// notes that it is, so the caller schedules it once).
    pub fn hold(&mut self, turn: u64) -> bool {
        std::mem::replace(&mut self.held_turn, turn) == turn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;
    /// 1,000 bytes a second, 20,000 at once.
    const RATE: ReadRate = ReadRate {
        per_second: 1000,
        burst: 20_000,
    };

    #[test]
    fn a_burst_then_a_pause_until_enough_is_back() {
        let rate = RATE;
        let mut s = ReadShaper::default();
        assert_eq!(s.allowance(rate, T0), Allowance::Bytes(20_000));
        s.spend(rate, 20_000);
        // Empty: paused until 16 KiB are back, 16.384 s at 1000 B/s.
        let until = T0 + 16_384;
        assert_eq!(s.allowance(rate, T0), Allowance::PausedUntil(until));
        assert_eq!(s.allowance(rate, T0 + 5), Allowance::PausedUntil(until));
        assert_eq!(s.allowance(rate, until), Allowance::Bytes(16_384));
        s.spend(rate, 100);
        assert_eq!(s.allowance(rate, until + 1), Allowance::Bytes(16_285));
        // Never more than the burst, however long it rested.
        assert_eq!(s.allowance(rate, T0 + 3_600_000), Allowance::Bytes(20_000));
    }

    #[test]
    fn a_charge_past_the_bucket_is_paid_back_before_the_next_read() {
        let rate = RATE;
        let mut s = ReadShaper::default();
        assert_eq!(s.allowance(rate, T0), Allowance::Bytes(20_000));
        // 5,000 bytes read, then the request they carried cost 35,000
        // more: 20,000 in debt, paid back before 16 KiB are there again.
        s.spend(rate, 5_000);
        s.spend(rate, 35_000);
        let until = T0 + 20_000 + 16_384;
        assert_eq!(s.allowance(rate, T0), Allowance::PausedUntil(until));
        assert_eq!(s.allowance(rate, until), Allowance::Bytes(16_384));
        // The debt is at most one burst, however large the charge.
        let mut t = ReadShaper::default();
        assert_eq!(t.allowance(rate, T0), Allowance::Bytes(20_000));
        t.spend(rate, u64::MAX);
        let until = T0 + 20_000 + 16_384;
        assert_eq!(t.allowance(rate, T0 + 1), Allowance::PausedUntil(until));
    }

    #[test]
    fn a_door_runs_its_share_of_requests_a_turn() {
        let mut s = ReadShaper::default();
        assert_eq!(s.lines_left(7, 64), 64);
        s.took_lines(60);
        assert_eq!(s.lines_left(7, 64), 4);
        assert_eq!(s.lines_left(8, 64), 64, "a new turn, a new share");
        assert!(!s.hold(8) && s.hold(8), "scheduled once a turn");
    }

    #[test]
    fn over_a_minute_the_rate_holds_and_zero_is_no_shaping() {
        let rate = ReadRate {
            per_second: 10_000,
            burst: 4096,
        };
        let mut s = ReadShaper::default();
        let mut read = 0;
        for ms in 0..60_000 {
            if let Allowance::Bytes(n) = s.allowance(rate, T0 + ms) {
                s.spend(rate, n as u64);
                read += n as u64;
            }
        }
        assert!(read <= 4096 + 600_000 && read > 590_000, "{read}");
        let off = ReadRate {
            per_second: 0,
            burst: 4096,
        };
        assert_eq!(s.allowance(off, T0), Allowance::Bytes(usize::MAX));
    }
}
