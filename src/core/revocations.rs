//! Tokens taken back before they expire. `LOGOUT` revokes one token: its
//! id is kept (with its expiry) until it would have expired anyway, in a
//! set consulted on every token check (one hash lookup). The set is stored
//! durably and loaded at start: it is bounded, since each entry needs a
//! valid token (so a successful LOGIN), and entries leave at their token's
//! expiry, pruned in small steps by [`Revocations::prune`].
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
    /// Revoked token ids and when each token expires.
    tokens: IdMap<TokenId, Millis>,
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

    /// Revokes one token until it expires.
    pub fn revoke(&mut self, id: TokenId, expires: Millis) {
        if self.tokens.insert(id, expires).is_none() {
            self.by_expiry.insert((expires, id));
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
                    self.tokens.remove(&id);
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
