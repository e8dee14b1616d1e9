//! A token bucket kept as one number (the "generic cell rate algorithm"):
//! the time at which the bucket would be full again. Taking a token moves
//! that time one interval later; a bucket whose time is more than `burst`
//! intervals ahead of now has no token left. A check is a comparison and
//! the state is 8 bytes, so tables of many buckets stay small.
//!
//! Times are kept in microseconds so that high rates (used by tests and
//! benchmarks to switch throttling off in effect) keep their precision.

use crate::Millis;

/// How fast a bucket refills and how many tokens it holds when full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// One token comes back every this many microseconds.
    pub interval_us: u64,
    /// Tokens a full bucket holds (taken at once before the rate applies).
    pub burst: u64,
}

impl Rate {
    /// `count` tokens per `period_ms`, at most `burst` at once.
    pub fn per(count: u64, period_ms: Millis, burst: u64) -> Rate {
        Rate {
            interval_us: (period_ms.saturating_mul(1000) / count.max(1)).max(1),
            burst: burst.max(1),
        }
    }
}

/// One bucket; the default is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// When the bucket is full again, in microseconds since the epoch.
    full_at_us: u64,
}

impl Bucket {
    /// `None` when a token may be taken now, else the milliseconds until
    /// one may (rounded up, at least 1).
    pub fn wait(&self, rate: Rate, now: Millis) -> Option<u64> {
        let now_us = now.saturating_mul(1000);
        let after = self.full_at_us.max(now_us) + rate.interval_us;
        let limit = now_us + rate.burst.saturating_mul(rate.interval_us);
        (after > limit).then(|| (after - limit).div_ceil(1000).max(1))
    }

    /// The bucket once a token is taken now, or (none left) the
    /// milliseconds until one may be, as [`wait`](Self::wait): the check
    /// and the take in one, for a caller that may still put the bucket
    /// back as it was.
    #[inline]
    pub fn after_take(&self, rate: Rate, now: Millis) -> Result<Bucket, u64> {
        let now_us = now.saturating_mul(1000);
        let after = self.full_at_us.max(now_us) + rate.interval_us;
        let limit = now_us + rate.burst.saturating_mul(rate.interval_us);
        if after > limit {
            return Err((after - limit).div_ceil(1000).max(1));
        }
        Ok(Bucket { full_at_us: after })
    }

    /// Takes a token ([`wait`](Self::wait) said one is there).
    pub fn take(&mut self, rate: Rate, now: Millis) {
        self.full_at_us = self.full_at_us.max(now.saturating_mul(1000)) + rate.interval_us;
    }

    /// Puts back a token taken earlier (the attempt it paid for succeeded).
    pub fn give_back(&mut self, rate: Rate) {
        self.full_at_us = self.full_at_us.saturating_sub(rate.interval_us);
    }

    /// Whether the bucket is full at `now` (its state says nothing then).
    pub fn is_full(&self, now: Millis) -> bool {
        self.full_at_us <= now.saturating_mul(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;

    #[test]
    fn a_burst_then_one_token_per_interval() {
        let rate = Rate::per(10, 60_000, 5); // one every 6 s, 5 at once
        let mut b = Bucket::default();
        for _ in 0..5 {
            assert_eq!(b.wait(rate, T0), None);
            b.take(rate, T0);
        }
        assert_eq!(b.wait(rate, T0), Some(6_000));
        assert_eq!(b.wait(rate, T0 + 5_999), Some(1));
        assert_eq!(b.wait(rate, T0 + 6_000), None);
        b.take(rate, T0 + 6_000);
        assert_eq!(b.wait(rate, T0 + 6_000), Some(6_000));
        // Over a minute, at most burst + 10 tokens: the rate holds.
        let mut b = Bucket::default();
        let mut taken = 0;
        for ms in (0..60_000).step_by(100) {
            if b.wait(rate, T0 + ms).is_none() {
                b.take(rate, T0 + ms);
                taken += 1;
            }
        }
        assert_eq!(taken, 5 + 9, "5 at once, then one every 6 s after");
        // after_take answers as wait and take do.
        let mut b = Bucket::default();
        for ms in (0..60_000).step_by(100) {
            let now = T0 + ms;
            match b.wait(rate, now) {
                None => {
                    let mut taken = b;
                    taken.take(rate, now);
                    assert_eq!(b.after_take(rate, now), Ok(taken));
                    b = taken;
                }
                Some(wait) => assert_eq!(b.after_take(rate, now), Err(wait)),
            }
        }
    }

    #[test]
    fn a_token_given_back_can_be_taken_again_and_a_bucket_refills() {
        let rate = Rate::per(1, 1_000, 1);
        let mut b = Bucket::default();
        b.take(rate, T0);
        assert!(b.wait(rate, T0).is_some());
        assert!(!b.is_full(T0));
        b.give_back(rate);
        assert_eq!(b.wait(rate, T0), None);
        b.take(rate, T0);
        assert!(b.is_full(T0 + 1_000));
    }

    #[test]
    fn high_rates_keep_their_precision() {
        let rate = Rate::per(1_000_000, 60_000, 1_000_000);
        assert_eq!(rate.interval_us, 60);
        let mut b = Bucket::default();
        for _ in 0..10_000 {
            assert_eq!(b.wait(rate, T0), None);
            b.take(rate, T0);
        }
    }
}
