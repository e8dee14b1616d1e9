//! Tokens taken back before they expire. `LOGOUT` revokes one token: its
//! id is kept (with its expiry) until it would have expired anyway, in a
//! set consulted on every token check (one hash lookup). The set is stored
//! durably and loaded at start. It is bounded per account: the core
//! revokes one by one at most `--revocations-per-account` tokens of an
//! account ([`Revocations::count`]); past that a LOGOUT ends all the
//! account's sessions as `LOGOUT all` does, which also forgets the
//! account's entries here ([`Revocations::forget_user`]: the moment covers
//! them). Entries leave at their token's expiry too, pruned in small steps
//! by [`Revocations::prune`].
//!
//! `LOGOUT all` voids every token of an account issued before a moment.
//! That moment is the account's `tokens_valid_from`, stored with the
//! account and read with it (the account cache holds it; see
//! `accounts.rs`). This module keeps, besides, the moments set since the
//! start, each until every token of this run it can void has expired
//! (`keep_until`): a read of the account answered just before the
//! `LOGOUT all` was stored would otherwise bring the old moment back into
//! the cache. So this part too is bounded by the tokens' lifetime.

use crate::idhash::IdMap;
use crate::token::{OpenedToken, TokenId};
use crate::{Millis, UserId};
use std::collections::BTreeSet;

/// Revoked tokens pruned per call of [`Revocations::prune`].
pub const PRUNE_BATCH: usize = 256;

#[derive(Default)]
pub struct Revocations {
    /// Revoked token ids, when each token expires and whose it is.
    tokens: IdMap<TokenId, (Millis, UserId)>,
    /// The same per account (at most `--revocations-per-account` each, so
    /// a search of one is short).
    by_user: IdMap<UserId, Vec<TokenId>>,
    /// The same, by expiry, for pruning.
    by_expiry: BTreeSet<(Millis, TokenId)>,
    /// Per account: tokens issued before this are void (`LOGOUT all`s
    /// stored since the start, see the module comment).
    /// (the moment, until when it is kept).
    valid_from: IdMap<UserId, (Millis, Millis)>,
    /// When each entry may go, for pruning.
    valid_from_until: BTreeSet<(Millis, UserId)>,
}

impl Revocations {
    /// Whether a genuine token was revoked, alone or with all its account's
    /// by a `LOGOUT all` of this run. (The account's stored
    /// `tokens_valid_from` is checked by the caller.)
    #[inline]
    pub fn is_revoked(&self, token: &OpenedToken) -> bool {
        (!self.tokens.is_empty() && self.tokens.contains_key(&token.id))
            || token.issued < self.valid_from(token.user)
    }

    /// Tokens of `user` issued before this are void, as far as `LOGOUT
    /// all`s of this run say (0: none).
    #[inline]
    pub fn valid_from(&self, user: UserId) -> Millis {
        self.valid_from.get(&user).map_or(0, |&(from, _)| from)
    }

    /// Revokes one token of `user` until it expires.
    pub fn revoke(&mut self, id: TokenId, expires: Millis, user: UserId) {
        if self.tokens.insert(id, (expires, user)).is_none() {
            self.by_expiry.insert((expires, id));
            self.by_user.entry(user).or_default().push(id);
        }
    }

    /// Tokens of `user` revoked one by one and not expired yet.
    pub fn count(&self, user: UserId) -> usize {
        self.by_user.get(&user).map_or(0, Vec::len)
    }

    /// Forgets the tokens of `user` revoked one by one: a `LOGOUT all`
    /// voided them all (they were issued before its moment).
    pub fn forget_user(&mut self, user: UserId) {
        for id in self.by_user.remove(&user).unwrap_or_default() {
            if let Some((expires, _)) = self.tokens.remove(&id) {
                self.by_expiry.remove(&(expires, id));
            }
        }
    }

    /// Forgets one expired token (its account's list is short).
    fn forget(&mut self, id: TokenId) {
        let Some((_, user)) = self.tokens.remove(&id) else {
            return;
        };
        if let Some(ids) = self.by_user.get_mut(&user) {
            if let Some(at) = ids.iter().position(|&t| t == id) {
                ids.swap_remove(at);
            }
            if ids.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }

    /// Voids every token of `user` issued before `from`; remembered here
    /// until `keep_until` (when every such token of this run has expired).
    pub fn void_before(&mut self, user: UserId, from: Millis, keep_until: Millis) {
        let slot = self.valid_from.entry(user).or_insert((0, 0));
        if from > slot.0 {
            self.valid_from_until.remove(&(slot.1, user));
            *slot = (from, slot.1.max(keep_until));
            self.valid_from_until.insert((slot.1, user));
        }
    }

    /// Forgets up to [`PRUNE_BATCH`] revoked tokens that have expired (they
    /// no longer open anyway), and as many `LOGOUT all` moments whose time
    /// is up. True when more are due.
    pub fn prune(&mut self, now: Millis) -> bool {
        for _ in 0..PRUNE_BATCH {
            match self.valid_from_until.first() {
                Some(&(until, user)) if until <= now => {
                    self.valid_from_until.pop_first();
                    self.valid_from.remove(&user);
                }
                _ => break,
            }
        }
        for _ in 0..PRUNE_BATCH {
            match self.by_expiry.first() {
                Some(&(expires, id)) if expires <= now => {
                    self.by_expiry.pop_first();
                    self.forget(id);
                }
                _ => break,
            }
        }
        self.by_expiry.first().is_some_and(|&(e, _)| e <= now)
            || self
                .valid_from_until
                .first()
                .is_some_and(|&(u, _)| u <= now)
    }

    /// Revoked tokens remembered.
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
        r.revoke(1, 110, 7);
        assert!(r.is_revoked(&token(1, 7, 10)));
        assert!(!r.is_revoked(&token(2, 7, 10)));
        r.void_before(7, 50, 150);
        assert!(r.is_revoked(&token(2, 7, 49)));
        assert!(!r.is_revoked(&token(2, 7, 50)));
        assert!(!r.is_revoked(&token(2, 8, 49)), "another account");
        r.void_before(7, 20, 120);
        assert_eq!(r.valid_from(7), 50, "never moves back");
        assert!(!r.prune(149));
        assert_eq!(r.valid_from(7), 50, "kept while its tokens may live");
        assert!(!r.prune(150));
        assert_eq!(
            r.valid_from(7),
            0,
            "the account's stored moment says the rest"
        );
    }

    #[test]
    fn expired_entries_are_pruned_in_steps() {
        let mut r = Revocations::default();
        let n = PRUNE_BATCH as u64 + 10;
        for id in 0..n {
            r.revoke(id, 100 + id % 2, id % 3);
        }
        r.revoke(n, 1000, 7);
        r.revoke(n, 1000, 7);
        assert_eq!(r.len(), n as usize + 1);
        assert!(r.prune(200), "more are due after one step");
        assert!(!r.prune(200));
        assert_eq!(r.len(), 1);
        assert!(r.is_revoked(&token(n, 7, 0)));
        assert!(!r.prune(1000));
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn an_account_counts_its_revocations_and_a_void_forgets_them() {
        let mut r = Revocations::default();
        for id in 0..5 {
            r.revoke(id, 100 + id, 7);
        }
        r.revoke(9, 200, 8);
        assert_eq!((r.count(7), r.count(8), r.len()), (5, 1, 6));
        assert!(!r.prune(101));
        assert_eq!(r.count(7), 3, "expired ones leave the count");
        r.forget_user(7);
        assert_eq!((r.count(7), r.count(8), r.len()), (0, 1, 1));
        assert!(r.by_expiry.len() == 1 && !r.is_revoked(&token(4, 7, 0)));
        assert!(!r.prune(1000));
        assert_eq!(r.len(), 0);
        assert!(r.by_user.is_empty());
    }
}
