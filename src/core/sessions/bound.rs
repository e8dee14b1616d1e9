//! A user's bound connections, as the sessions' `subscribers` map holds
//! them: one connection inline (nearly every user), more in a boxed list.
//! 16 bytes, so the map's entry with its user id is 24 bytes, not the 32
//! of an inline `SmallVec` (every online user has one entry, and the map
//! keeps up to twice as many buckets as entries).

use crate::ConnId;

pub(super) enum Bound {
    One(ConnId),
    /// Two or more. Boxed on purpose: a bare `Vec` would make every
    /// entry 24 bytes for the few users with several connections.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<ConnId>>),
}

impl Bound {
    pub fn as_slice(&self) -> &[ConnId] {
        match self {
            Bound::One(conn) => std::slice::from_ref(conn),
            Bound::Many(conns) => conns,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn push(&mut self, conn: ConnId) {
        match self {
            Bound::One(first) => *self = Bound::Many(Box::new(vec![*first, conn])),
            Bound::Many(conns) => conns.push(conn),
        }
    }

    /// Takes `conn` out; returns whether none is left.
    pub fn remove(&mut self, conn: ConnId) -> bool {
        match self {
            Bound::One(only) => *only == conn,
            Bound::Many(conns) => {
                conns.retain(|c| *c != conn);
                match conns.as_slice() {
                    [] => true,
                    [last] => {
                        *self = Bound::One(*last);
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    /// Whether the connections are kept apart from the entry.
    #[cfg(test)]
    pub fn spilled(&self) -> bool {
        matches!(self, Bound::Many(_))
    }
}

#[cfg(test)]
mod tests {
    use super::Bound;

    #[test]
    fn one_inline_more_boxed_and_back() {
        assert_eq!(std::mem::size_of::<Bound>(), 16);
        let mut b = Bound::One(4);
        assert_eq!(b.as_slice(), &[4]);
        assert!(!b.remove(5), "another connection is not taken out");
        b.push(5);
        b.push(6);
        assert!(b.spilled());
        assert_eq!(b.as_slice(), &[4, 5, 6]);
        assert!(!b.remove(5));
        assert!(!b.remove(4));
        assert!(!b.spilled(), "one left is inline again");
        assert_eq!(b.len(), 1);
        assert!(b.remove(6));
    }
}
