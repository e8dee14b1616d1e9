//! Conversations held in RAM (`--memory`, where the store keeps nothing):
//! each conversation's messages in id order (shared `Arc`s: the mailbox's
//! copy is the same allocation), one queue of every message in arrival
//! order so the oldest goes first when the byte budget is passed or
//! retention is due, and each user's side of each conversation (newest
//! id, unread counter, read marker) with an ordered index for the
//! conversation list. Every operation is a map look-up, a binary search
//! or a walk bounded by the page asked for; a SEND costs one map look-up
//! (the conversation holds both sides) and two queue pushes. The list
//! walks the user's conversations and keeps the newest `limit`.

use crate::idhash::IdMap;
use crate::message::Message;
use crate::{MessageId, Millis, UserId};
use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::sync::Arc;

/// Most messages one retention step removes.
pub const PRUNE_STEP: usize = 4096;

/// One user's side of a conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Side {
    /// The newest message either way.
    pub last_id: MessageId,
    /// The partner's messages above `read_upto`.
    pub unread: u64,
    /// This user has read the partner's messages up to here.
    pub read_upto: MessageId,
}

/// One entry of a conversation list, before names are put on it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub with_id: UserId,
    pub side: Side,
    pub last: Option<Arc<Message>>,
    /// The partner's marker on this user's messages.
    pub read_upto: MessageId,
}

/// One conversation: its messages in id order and both parties' sides
/// (the lower id's first), found by one look-up per message.
#[derive(Default)]
struct Conv {
    messages: VecDeque<Arc<Message>>,
    sides: [Side; 2],
}

impl Conv {
    /// `user`'s side (`user` is one of the two parties).
    fn side(&mut self, user: UserId, partner: UserId) -> &mut Side {
        &mut self.sides[usize::from(user > partner)]
    }
}

/// The conversations, bounded by a byte budget.
#[derive(Default)]
pub struct Ram {
    convs: IdMap<(UserId, UserId), Conv>,
    /// Every message held, oldest first.
    order: VecDeque<Arc<Message>>,
    /// Bytes held (each message's JSON), and the most.
    bytes: usize,
    budget: usize,
    /// Each user's partners, added when a conversation begins.
    partners: IdMap<UserId, Vec<UserId>>,
}

/// A conversation's key: its two parties, lower id first.
fn pair(a: UserId, b: UserId) -> (UserId, UserId) {
    (a.min(b), a.max(b))
}

impl Ram {
    pub fn new(budget: usize) -> Ram {
        Ram {
            budget,
            ..Ram::default()
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A stored message joins its conversation: one map look-up, two
    /// queue pushes.
    pub fn append(&mut self, m: &Arc<Message>) {
        let (from, to) = (m.from_id, m.to_id);
        let conv = match self.convs.entry(pair(from, to)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.partners.entry(from).or_default().push(to);
                if from != to {
                    self.partners.entry(to).or_default().push(from);
                }
                e.insert(Conv::default())
            }
        };
        conv.messages.push_back(m.clone());
        for side in &mut conv.sides {
            side.last_id = side.last_id.max(m.id);
        }
        if from != to {
            conv.side(to, from).unread += 1;
        }
        self.order.push_back(m.clone());
        self.bytes += m.json().len();
        while self.bytes > self.budget && self.drop_oldest() {}
    }

    /// Removes the oldest message held; false if none. Its conversation's
    /// sides stay.
    fn drop_oldest(&mut self) -> bool {
        let Some(m) = self.order.pop_front() else {
            return false;
        };
        self.bytes -= m.json().len();
        if let Some(conv) = self.convs.get_mut(&pair(m.from_id, m.to_id)) {
            // Both are in id order, so it is the conversation's oldest.
            conv.messages.pop_front();
        }
        true
    }

    /// Removes up to `step` messages stored before `cutoff`; true if more
    /// may be due.
    pub fn prune_before(&mut self, cutoff: Millis, step: usize) -> bool {
        for _ in 0..step {
            match self.order.front() {
                Some(m) if m.ts < cutoff => {
                    self.drop_oldest();
                }
                _ => return false,
            }
        }
        true
    }

    /// Forgets `user`'s conversations (an account deleted): they are no
    /// longer found; their messages leave RAM with the oldest, as the
    /// budget or retention takes them. Walks the user's partners once.
    pub fn forget_user(&mut self, user: UserId) {
        for with in self.partners.remove(&user).unwrap_or_default() {
            self.convs.remove(&pair(user, with));
            if let Some(theirs) = self.partners.get_mut(&with) {
                theirs.retain(|&p| p != user);
            }
        }
    }

    /// The newest `limit` messages between `user` and `with` below
    /// `before`, oldest first, stopping past `max_bytes` (at least one);
    /// and whether older ones exist.
    pub fn page(
        &self,
        user: UserId,
        with: UserId,
        before: MessageId,
        limit: usize,
        max_bytes: usize,
    ) -> (Vec<Arc<Message>>, bool) {
        let Some(conv) = self.convs.get(&pair(user, with)) else {
            return (Vec::new(), false);
        };
        let messages = &conv.messages;
        let end = messages.partition_point(|m| m.id < before);
        let mut start = end;
        let mut bytes = 0usize;
        while start > 0 && end - start < limit {
            let len = messages[start - 1].json().len();
            if bytes + len > max_bytes && start < end {
                break;
            }
            bytes += len;
            start -= 1;
        }
        (messages.range(start..end).cloned().collect(), start > 0)
    }

    /// READ: `user` has read `with`'s messages up to `upto`, clamped to
    /// the conversation's newest; never lowered. Returns the marker and
    /// whether it moved.
    pub fn read(&mut self, user: UserId, with: UserId, upto: MessageId) -> (MessageId, bool) {
        let Some(conv) = self.convs.get_mut(&pair(user, with)) else {
            return (0, false);
        };
        let side = *conv.side(user, with);
        let upto = upto.min(side.last_id);
        if upto <= side.read_upto {
            return (side.read_upto, false);
        }
        let from = conv.messages.partition_point(|m| m.id <= upto);
        let unread = conv
            .messages
            .range(from..)
            .filter(|m| m.from_id == with)
            .count() as u64;
        let side = conv.side(user, with);
        side.read_upto = upto;
        side.unread = unread;
        (upto, true)
    }

    /// `user`'s conversations whose newest message is below `before`,
    /// newest first, at most `limit`; and whether more follow. Walks the
    /// user's own conversations (not their messages) and keeps the newest.
    pub fn conversations(
        &self,
        user: UserId,
        before: MessageId,
        limit: usize,
    ) -> (Vec<Listed>, bool) {
        let Some(partners) = self.partners.get(&user) else {
            return (Vec::new(), false);
        };
        let mut found: Vec<(MessageId, UserId, &Conv)> = partners
            .iter()
            .filter_map(|&with| {
                let conv = self.convs.get(&pair(user, with))?;
                let last = conv.sides[usize::from(user > with)].last_id;
                (last < before).then_some((last, with, conv))
            })
            .collect();
        let more = found.len() > limit;
        if more {
            found.select_nth_unstable_by(limit, |a, b| b.0.cmp(&a.0));
            found.truncate(limit);
        }
        found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
        let list = found
            .into_iter()
            .map(|(last_id, with_id, conv)| Listed {
                with_id,
                side: conv.sides[usize::from(user > with_id)],
                last: conv.messages.back().filter(|m| m.id == last_id).cloned(),
                read_upto: conv.sides[usize::from(with_id > user)].read_upto,
            })
            .collect();
        (list, more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Parties;

    fn msg(id: MessageId, from: UserId, to: UserId, ts: Millis) -> Arc<Message> {
        let parties = Parties {
            from_id: from,
            from: "a",
            to_id: to,
            to: "b",
        };
        Message::new(id, &parties, ts, "hello", None)
    }

    fn ids(page: &[Arc<Message>]) -> Vec<MessageId> {
        page.iter().map(|m| m.id).collect()
    }

    #[test]
    fn pages_walk_backwards_in_both_directions_without_gaps() {
        let mut ram = Ram::new(usize::MAX);
        for id in 1..=10 {
            let (from, to) = if id % 2 == 0 { (1, 2) } else { (2, 1) };
            ram.append(&msg(id, from, to, 0));
            ram.append(&msg(100 + id, 1, 3, 0));
        }
        let (page, more) = ram.page(1, 2, MessageId::MAX, 4, usize::MAX);
        assert_eq!((ids(&page), more), (vec![7, 8, 9, 10], true));
        let (page, more) = ram.page(2, 1, 7, 4, usize::MAX);
        assert_eq!((ids(&page), more), (vec![3, 4, 5, 6], true));
        let (page, more) = ram.page(1, 2, 3, 4, usize::MAX);
        assert_eq!((ids(&page), more), (vec![1, 2], false));
        let (page, more) = ram.page(1, 2, 3, 4, 1);
        assert_eq!((ids(&page), more), (vec![2], true), "at least one");
        assert_eq!(ram.page(2, 3, 100, 4, usize::MAX).0.len(), 0);
    }

    #[test]
    fn read_markers_clamp_never_go_back_and_recount_unread() {
        let mut ram = Ram::new(usize::MAX);
        for id in 1..=5 {
            ram.append(&msg(id, 1, 2, 0));
        }
        ram.append(&msg(6, 2, 1, 0));
        let (list, _) = ram.conversations(2, MessageId::MAX, 10);
        assert_eq!((list[0].with_id, list[0].side.unread), (1, 5));
        assert_eq!(ram.read(2, 1, 3), (3, true));
        assert_eq!(ram.read(2, 1, 2), (3, false), "never backwards");
        assert_eq!(ram.read(2, 1, 99), (6, true), "clamped to the newest");
        let (list, _) = ram.conversations(2, MessageId::MAX, 10);
        assert_eq!(list[0].side.unread, 0);
        let (list, _) = ram.conversations(1, MessageId::MAX, 10);
        assert_eq!((list[0].read_upto, list[0].side.unread), (6, 1));
        assert_eq!(ram.read(3, 1, 5), (0, false), "no conversation");
    }

    #[test]
    fn the_list_is_newest_first_and_pages() {
        let mut ram = Ram::new(usize::MAX);
        for (id, partner) in [(1, 2), (2, 3), (3, 4), (4, 2)] {
            ram.append(&msg(id, 1, partner, 0));
        }
        let (list, more) = ram.conversations(1, MessageId::MAX, 2);
        let who: Vec<_> = list.iter().map(|l| l.with_id).collect();
        assert_eq!((who, more), (vec![2, 4], true));
        let (list, more) = ram.conversations(1, list[1].side.last_id, 2);
        let who: Vec<_> = list.iter().map(|l| l.with_id).collect();
        assert_eq!((who, more), (vec![3], false));
    }

    #[test]
    fn a_forgotten_user_has_no_conversations_left_anywhere() {
        let mut ram = Ram::new(usize::MAX);
        ram.append(&msg(1, 1, 2, 0));
        ram.append(&msg(2, 3, 1, 0));
        ram.append(&msg(3, 2, 3, 0));
        ram.forget_user(1);
        assert!(ram.page(2, 1, MessageId::MAX, 50, usize::MAX).0.is_empty());
        assert!(ram.conversations(1, MessageId::MAX, 10).0.is_empty());
        let (list, _) = ram.conversations(3, MessageId::MAX, 10);
        assert_eq!(list.iter().map(|l| l.with_id).collect::<Vec<_>>(), [2]);
        while ram.prune_before(u64::MAX, 1) {}
        assert_eq!(ram.bytes(), 0, "their bytes leave with the oldest");
    }

    #[test]
    fn the_budget_and_retention_drop_the_oldest_first() {
        let one = msg(1, 1, 2, 10).json().len();
        let mut ram = Ram::new(3 * one);
        for id in 1..=5 {
            ram.append(&msg(id, 1, 2, id * 10));
        }
        assert_eq!(ram.bytes(), 3 * one);
        let (page, more) = ram.page(1, 2, MessageId::MAX, 50, usize::MAX);
        assert_eq!((ids(&page), more), (vec![3, 4, 5], false));
        assert!(!ram.prune_before(45, 10));
        assert_eq!(ids(&ram.page(1, 2, MessageId::MAX, 50, usize::MAX).0), [5]);
        assert!(ram.prune_before(100, 1), "a bounded step");
        let (list, _) = ram.conversations(1, MessageId::MAX, 10);
        assert!(list[0].last.is_none(), "the list keeps the conversation");
    }
}
