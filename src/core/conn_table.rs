//! A map from connection id to one value per connection, kept dense.
//!
//! Connection ids are the loop's slab indexes: small and reused as
//! connections come and go. A vector indexed by id costs one value per
//! slot, where a hash map costs the key, a control byte and its spare
//! buckets (about twice the entry per connection). The sessions' bindings
//! and the password queue's addresses are kept in this table, which is
//! most of what an idle online user's connection costs the core. Ids at
//! or past [`DENSE_IDS`] (the admin socket's, numbered far apart) are kept
//! in a small map instead, so the vector never grows for them.

use crate::idhash::IdMap;
use crate::ConnId;

/// Ids below this are kept in the vector; the loop's slab never reaches it.
const DENSE_IDS: ConnId = 1 << 32;

pub struct ConnTable<V> {
    dense: Vec<Option<V>>,
    sparse: IdMap<ConnId, V>,
    len: usize,
}

impl<V> Default for ConnTable<V> {
    fn default() -> Self {
        ConnTable {
            dense: Vec::new(),
            sparse: IdMap::default(),
            len: 0,
        }
    }
}

impl<V> ConnTable<V> {
    /// Connections with a value.
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn get(&self, conn: ConnId) -> Option<&V> {
        if conn < DENSE_IDS {
            self.dense.get(conn).and_then(Option::as_ref)
        } else {
            self.sparse.get(&conn)
        }
    }

    #[inline]
    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut V> {
        if conn < DENSE_IDS {
            self.dense.get_mut(conn).and_then(Option::as_mut)
        } else {
            self.sparse.get_mut(&conn)
        }
    }

    pub fn contains(&self, conn: ConnId) -> bool {
        self.get(conn).is_some()
    }

    /// Sets `conn`'s value; returns the one it replaced.
    pub fn insert(&mut self, conn: ConnId, value: V) -> Option<V> {
        let old = if conn < DENSE_IDS {
            if conn >= self.dense.len() {
                self.dense.resize_with(conn + 1, || None);
            }
            self.dense[conn].replace(value)
        } else {
            self.sparse.insert(conn, value)
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<V> {
        let old = if conn < DENSE_IDS {
            self.dense.get_mut(conn).and_then(Option::take)
        } else {
            self.sparse.remove(&conn)
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// `conn`'s value, set to `make()` first if it had none.
    pub fn get_or_insert_with(&mut self, conn: ConnId, make: impl FnOnce() -> V) -> &mut V {
        if !self.contains(conn) {
            self.insert(conn, make());
        }
        self.get_mut(conn).expect("just inserted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_by_id_dense_and_far_apart() {
        let mut t: ConnTable<u8> = ConnTable::default();
        assert_eq!(t.insert(3, 1), None);
        assert_eq!(t.insert(1 << 40, 2), None);
        assert_eq!(t.insert(3, 4), Some(1));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(3), Some(&4));
        assert_eq!(t.get(2), None);
        assert_eq!(t.get(1000), None);
        assert_eq!(t.get(1 << 40), Some(&2));
        *t.get_or_insert_with(5, || 9) += 1;
        assert_eq!(t.get(5), Some(&10));
        assert_eq!(t.remove(3), Some(4));
        assert_eq!(t.remove(3), None);
        assert_eq!(t.remove(1 << 40), Some(2));
        assert_eq!(t.len(), 1);
        assert!(!t.contains(3));
    }
}
