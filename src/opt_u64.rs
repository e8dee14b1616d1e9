//! `Option<u64>` in 8 bytes instead of 16, for the times and sequence
//! numbers every connection's slot carries (`Conn::input_since`,
//! `Conn::timer_at`, `Conn::barrier`, `ReadShaper::paused_until`): with
//! thousands of idle connections the slot's size is most of what an
//! online user costs. `u64::MAX` stands for "none"; no millisecond time
//! and no request sequence number reaches it (a value of `u64::MAX` is
//! kept as `u64::MAX - 1`).

/// An optional `u64` without a separate tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptU64(u64);

impl OptU64 {
    pub const NONE: OptU64 = OptU64(u64::MAX);

    /// `value`, or `u64::MAX - 1` for `u64::MAX` itself (a millisecond
    /// later than any time the server sees), so it is never "none".
    #[inline]
    pub const fn some(value: u64) -> OptU64 {
        if value == u64::MAX {
            OptU64(u64::MAX - 1)
        } else {
            OptU64(value)
        }
    }

    #[inline]
    pub const fn get(self) -> Option<u64> {
        if self.0 == u64::MAX {
            None
        } else {
            Some(self.0)
        }
    }

    #[inline]
    pub const fn is_some(self) -> bool {
        self.0 != u64::MAX
    }

    #[inline]
    pub const fn is_none(self) -> bool {
        self.0 == u64::MAX
    }
}

impl Default for OptU64 {
    fn default() -> Self {
        OptU64::NONE
    }
}

impl From<Option<u64>> for OptU64 {
    fn from(value: Option<u64>) -> Self {
        value.map_or(OptU64::NONE, OptU64::some)
    }
}

#[cfg(test)]
mod tests {
    use super::OptU64;

    #[test]
    fn none_and_some_round_trip_in_eight_bytes() {
        assert_eq!(std::mem::size_of::<OptU64>(), 8);
        assert_eq!(OptU64::NONE.get(), None);
        assert_eq!(OptU64::default().get(), None);
        assert_eq!(OptU64::some(0).get(), Some(0));
        assert_eq!(OptU64::from(Some(7)).get(), Some(7));
        assert!(OptU64::some(5).is_some() && OptU64::NONE.is_none());
        assert!(OptU64::some(u64::MAX).is_some(), "never mistaken for none");
    }
}
