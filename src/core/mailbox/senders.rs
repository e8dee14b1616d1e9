//! Each sender's unacknowledged bytes across all receivers: the figure
//! `--pending-bytes-per-sender` caps, so one account (with any number of
//! sink mailboxes, or dormant accounts as receivers) cannot fill the
//! global pool (`--pending-bytes`) and starve every other sender.
//!
//! The figure of a message is its cost as its mailbox counts it
//! ([`super::cost`]), taken when its SEND reserves room and given
//! back when its reservation is released, or when it leaves custody (ACK
//! or `--message-ttl`). It is kept for every sender that has any, whether
//! or not the sender's account or the receiver's mailbox is in RAM: an ACK
//! of a message whose sender is not cached still lowers the right figure
//! (the store says by how much per sender, see
//! [`crate::store::Removed::senders`]). That is one entry per sender with
//! messages in custody, read from the store at start.
//!
//! The senders holding the most are kept in order as well, so `/stats`
//! names the top holders without walking every entry. Only senders that
//! hold at least a floor (an eighth of `--pending-bytes-per-sender`) are
//! ranked: the top holders worth naming are near their budget, and the
//! many senders holding a few messages each (every SEND and ACK of the
//! relay) then cost two counter comparisons, not a tree update.

use crate::idhash::IdMap;
use crate::UserId;
use std::collections::BTreeSet;

/// How many top holders `/stats` and `/metrics` show.
pub const TOP_HOLDERS: usize = 5;

#[derive(Default)]
pub struct Senders {
    bytes: IdMap<UserId, usize>,
    /// The figures of at least `floor` bytes, ordered by size, for the top
    /// holders.
    by_size: BTreeSet<(usize, UserId)>,
    floor: usize,
}

impl Senders {
    /// What `sender` holds, reservations included.
    pub fn held(&self, sender: UserId) -> usize {
        self.bytes.get(&sender).copied().unwrap_or(0)
    }

    /// Ranks only senders holding at least `floor` bytes (0: every one).
    pub fn rank_from(&mut self, floor: usize) {
        self.floor = floor;
        self.by_size = self
            .bytes
            .iter()
            .filter(|&(_, &held)| held >= floor.max(1))
            .map(|(&sender, &held)| (held, sender))
            .collect();
    }

    /// Moves `sender` in the ranking from `was` to `now` bytes.
    fn rank(&mut self, sender: UserId, was: usize, now: usize) {
        let floor = self.floor.max(1);
        if was == now || (was < floor && now < floor) {
            return;
        }
        if was >= floor {
            self.by_size.remove(&(was, sender));
        }
        if now >= floor {
            self.by_size.insert((now, sender));
        }
    }

    pub fn add(&mut self, sender: UserId, bytes: usize) {
        let held = self.bytes.entry(sender).or_insert(0);
        let was = *held;
        *held = was.saturating_add(bytes);
        let now = *held;
        self.rank(sender, was, now);
    }

    /// Never below zero: a figure read from an older store may be short.
    pub fn sub(&mut self, sender: UserId, bytes: usize) {
        let Some(held) = self.bytes.get_mut(&sender) else {
            return;
        };
        let was = *held;
        let now = was.saturating_sub(bytes);
        if now == 0 {
            self.bytes.remove(&sender);
        } else {
            *held = now;
        }
        self.rank(sender, was, now);
    }

    /// Senders that hold anything.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The `n` senders holding the most, largest first, of those holding
    /// at least the floor.
    pub fn top(&self, n: usize) -> Vec<(UserId, usize)> {
        self.by_size
            .iter()
            .rev()
            .take(n)
            .map(|&(bytes, sender)| (sender, bytes))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_additions_and_removals_and_the_top_stays_in_order() {
        let mut s = Senders::default();
        s.add(1, 100);
        s.add(2, 300);
        s.add(3, 200);
        s.add(1, 250);
        assert_eq!(s.top(2), [(1, 350), (2, 300)]);
        s.sub(1, 350);
        assert_eq!(s.held(1), 0);
        assert_eq!(s.len(), 2, "an empty figure is forgotten");
        assert_eq!(s.top(5), [(2, 300), (3, 200)]);
        s.sub(3, 1000);
        assert_eq!((s.held(3), s.len()), (0, 1), "never below zero");
    }

    #[test]
    fn only_senders_at_the_floor_are_ranked_and_all_are_counted() {
        let mut s = Senders::default();
        s.add(1, 100);
        s.add(2, 5_000);
        s.rank_from(1_000);
        assert_eq!(s.top(5), [(2, 5_000)], "ranked again from the floor");
        s.add(1, 950);
        assert_eq!(s.top(5), [(2, 5_000), (1, 1_050)], "1 reached the floor");
        s.sub(2, 4_500);
        assert_eq!(s.top(5), [(1, 1_050)], "2 fell below it");
        assert_eq!((s.held(2), s.len()), (500, 2), "but is still counted");
        s.sub(1, 1_050);
        assert_eq!((s.top(5), s.len()), (vec![], 1));
    }
}
