//! Tokens taken back before they expire. `LOGOUT` revokes one token: its
//! id is kept (with its expiry) until it would have expired anyway, in a
//! set consulted on every token check (one hash lookup). `LOGOUT all`
//! voids every token of an account issued before a moment, kept per
//! account. Both are stored durably by the store and loaded at start.
//!
//! The set is bounded: each entry needs a valid token (so a successful
//! LOGIN), and entries leave at their token's expiry, pruned in small
//! steps by [`Revocations::prune`].

use crate::idhash::IdMap;
use crate::token::{OpenedToken, TokenId};
use crate::{Millis, UserId};
use std::collections::BTreeSet;

/// Revoked tokens pruned per call of [`Revocations::prune`].
pub const PRUNE_BATCH: usize = 256;

#[derive(Default)]
pub struct Revocations {
    /// Revoked token ids and when each token expires.
    tokens: IdMap<TokenId, Millis>,
    /// The same, by expiry, for pruning.
    by_expiry: BTreeSet<(Millis, TokenId)>,
    /// Per account: tokens issued before this are void (`LOGOUT all`).
    valid_from: IdMap<UserId, Millis>,
}

impl Revocations {
    /// Whether a genuine token was revoked, alone or with all its account's.
    #[inline]
    pub fn is_revoked(&self, token: &OpenedToken) -> bool {
        (!self.tokens.is_empty() && self.tokens.contains_key(&token.id))
            || token.issued < self.valid_from(token.user)
    }

    /// Tokens of `user` issued before this are void.
    #[inline]
    pub fn valid_from(&self, user: UserId) -> Millis {
        self.valid_from.get(&user).copied().unwrap_or(0)
    }

    /// Revokes one token until it expires.
    pub fn revoke(&mut self, id: TokenId, expires: Millis) {
        if self.tokens.insert(id, expires).is_none() {
            self.by_expiry.insert((expires, id));
        }
    }

    /// Voids every token of `user` issued before `from`.
    pub fn void_before(&mut self, user: UserId, from: Millis) {
        let slot = self.valid_from.entry(user).or_insert(0);
        *slot = (*slot).max(from);
    }

    /// Forgets up to [`PRUNE_BATCH`] revoked tokens that have expired (they
    /// no longer open anyway). True when more are due.
    pub fn prune(&mut self, now: Millis) -> bool {
        for _ in 0..PRUNE_BATCH {
            match self.by_expiry.first() {
                Some(&(expires, id)) if expires <= now => {
                    self.by_expiry.pop_first();
                    self.tokens.remove(&id);
                }
                _ => return false,
            }
        }
        self.by_expiry.first().is_some_and(|&(e, _)| e <= now)
    }

    /// Revoked tokens remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: TokenId, user: UserId, issued: Millis) -> OpenedToken {
        OpenedToken {
            user,
            identity: 0,
            id,
            issued,
            expires: issued + 100,
            kid: 0,
        }
    }

    #[test]
    fn one_token_or_all_before_a_moment() {
        let mut r = Revocations::default();
        assert!(!r.is_revoked(&token(1, 7, 10)));
        r.revoke(1, 110);
        assert!(r.is_revoked(&token(1, 7, 10)));
        assert!(!r.is_revoked(&token(2, 7, 10)));
        r.void_before(7, 50);
        assert!(r.is_revoked(&token(2, 7, 49)));
        assert!(!r.is_revoked(&token(2, 7, 50)));
        assert!(!r.is_revoked(&token(2, 8, 49)), "another account");
        r.void_before(7, 20);
        assert_eq!(r.valid_from(7), 50, "never moves back");
    }

    #[test]
    fn expired_entries_are_pruned_in_steps() {
        let mut r = Revocations::default();
        let n = PRUNE_BATCH as u64 + 10;
        for id in 0..n {
            r.revoke(id, 100 + id % 2);
        }
        r.revoke(n, 1000);
        r.revoke(n, 1000);
        assert_eq!(r.len(), n as usize + 1);
        assert!(r.prune(200), "more are due after one step");
        assert!(!r.prune(200));
        assert_eq!(r.len(), 1);
        assert!(r.is_revoked(&token(n, 7, 0)));
        assert!(!r.prune(1000));
        assert_eq!(r.len(), 0);
    }
}
