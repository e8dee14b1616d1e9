//! A group's accounts and tokens: new accounts (a username already taken
//! through another node is reported, not fatal), password-hash upgrades,
//! revoked tokens and `tokens_valid_from` moves, each kind one statement.

use super::statements::Statements;
use crate::store::group_commit::BatchOutcome;
use crate::store::WriteOp;
use crate::UserId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The group's writes to stored accounts and revoked tokens, in batch
/// order (a later one for the same key wins, as it would run later).
#[derive(Default)]
pub(super) struct TokenWrites {
    hash_ids: Vec<i64>,
    hashes: Vec<Arc<str>>,
    revoked: Vec<i64>,
    /// Each revoked token's expiry and account.
    expires: Vec<(i64, i64)>,
    void_users: Vec<i64>,
    void_from: Vec<i64>,
}

impl TokenWrites {
    pub(super) fn add(&mut self, op: &WriteOp) {
        match op {
            WriteOp::SetPasswordHash { id, password_hash } => {
                self.hash_ids.push(*id as i64);
                self.hashes.push(password_hash.clone());
            }
            WriteOp::RevokeToken {
                token,
                expires,
                user,
            } => {
                self.revoked.push(*token as i64);
                self.expires.push((*expires as i64, *user as i64));
            }
            WriteOp::VoidTokens { user, from } => {
                self.void_users.push(*user as i64);
                self.void_from.push(*from as i64);
            }
            WriteOp::CreateUser { .. }
            | WriteOp::Append(_)
            | WriteOp::Ack { .. }
            | WriteOp::Expire { .. }
            | WriteOp::ReadMark { .. } => {}
        }
    }

    pub(super) fn write(
        mut self,
        tx: &mut postgres::Transaction<'_>,
        s: &Statements,
    ) -> Result<(), postgres::Error> {
        // One row per key in a statement: the last write of each wins.
        last_per_key(&mut self.hash_ids, &mut self.hashes);
        last_per_key(&mut self.revoked, &mut self.expires);
        // `tokens_valid_from` only moves forward: the latest per account.
        let mut latest: HashMap<i64, i64> = HashMap::new();
        for (u, f) in self.void_users.drain(..).zip(self.void_from.drain(..)) {
            let at = latest.entry(u).or_insert(f);
            *at = (*at).max(f);
        }
        (self.void_users, self.void_from) = latest.into_iter().unzip();
        if !self.hash_ids.is_empty() {
            let hashes: Vec<&str> = self.hashes.iter().map(|h| &**h).collect();
            tx.execute(&s.password_hashes, &[&self.hash_ids, &hashes])?;
        }
        // Voids first: a token revoked after a `LOGOUT all` of the same
        // group may be newer than its moment, and must stay.
        if !self.void_users.is_empty() {
            tx.execute(&s.void_tokens, &[&self.void_users, &self.void_from])?;
            tx.execute(&s.forget_revoked, &[&self.void_users])?;
        }
        if !self.revoked.is_empty() {
            let (expires, users): (Vec<i64>, Vec<i64>) = self.expires.iter().copied().unzip();
            tx.execute(&s.revoke_tokens, &[&self.revoked, &expires, &users])?;
        }
        Ok(())
    }
}

/// Keeps the last value given for each key (in order of those last
/// values): an UPDATE or upsert touches a row once per statement.
pub(super) fn last_per_key<V>(keys: &mut Vec<i64>, values: &mut Vec<V>) {
    let mut seen = HashSet::new();
    let mut kept = Vec::with_capacity(keys.len());
    for (k, v) in keys.drain(..).zip(values.drain(..)).rev() {
        if seen.insert(k) {
            kept.push((k, v));
        }
    }
    for (k, v) in kept.into_iter().rev() {
        keys.push(k);
        values.push(v);
    }
}

pub(super) fn create_users(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    users: &[(usize, &WriteOp)],
    outcomes: &mut [BatchOutcome],
) -> Result<(), postgres::Error> {
    let mut names = Vec::with_capacity(users.len());
    let mut hashes = Vec::with_capacity(users.len());
    let mut created = Vec::with_capacity(users.len());
    let mut identities = Vec::with_capacity(users.len());
    // The unique folded name refuses a look-alike registered through
    // another node, like the same name.
    let mut keys = Vec::with_capacity(users.len());
    for (_, op) in users {
        if let WriteOp::CreateUser {
            username,
            password_hash,
            created: at,
            identity,
            ..
        } = op
        {
            names.push(&**username);
            hashes.push(&**password_hash);
            created.push(*at as i64);
            identities.push(identity.to_be_bytes().to_vec());
            keys.push(crate::username::fold(username));
        }
    }
    let rows = tx.query(
        &s.insert_users,
        &[&names, &hashes, &created, &identities, &keys],
    )?;
    let made: HashMap<String, i64> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    for (batch, op) in users {
        if let WriteOp::CreateUser { id, username, .. } = op {
            let assigned = &mut outcomes[*batch].assigned;
            match made.get(&**username) {
                Some(stored) => assigned.users.push((*id, *stored as UserId)),
                None => assigned.taken_names.push(*id),
            }
        }
    }
    Ok(())
}
