//! Accounts: who exists, by id and by name, with their password hashes.
//! Also the username rule of the contract.
//!
//! With a store that keeps data, this is a bounded cache: at most
//! `capacity` accounts (`--account-cache`), evicted in CLOCK order (an
//! approximation of least recently used: an account used since it was
//! last passed gets another round). Accounts of logged-in users are
//! pinned and never evicted. A miss is read from the store by the core.
//!
//! Names are found by their folded form (`crate::username`): `ALICE` finds
//! `alice`. An exact match wins: a name registered before folding that
//! clashes with an older one (listed by the store at start, see
//! [`Accounts::set_unfolded`]) is found by its exact name only, and its
//! folded form finds the older account.

use crate::error::{ErrorCode, Failure};
use crate::idhash::IdMap;
use crate::request::UserRef;
use crate::username::fold;
use crate::{Millis, UserId};
use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// One account.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: UserId,
    /// Random, sealed into the account's tokens (see `token`).
    pub identity: u128,
    pub username: Arc<str>,
    pub password_hash: Arc<str>,
    /// Tokens of this account issued before this moment are void (`LOGOUT
    /// all`; 0: none). Stored with the account, so an account read from
    /// the store brings it along.
    pub tokens_valid_from: Millis,
}

impl Account {
    pub fn user_ref(&self) -> UserRef {
        UserRef {
            id: self.id,
            username: self.username.clone(),
        }
    }
}

/// A cached account and its CLOCK state.
struct Cached {
    account: Account,
    /// Used since the clock hand last passed.
    referenced: Cell<bool>,
    /// Logged in: never evicted.
    pinned: bool,
}

/// The accounts held, plus names reserved by registrations in progress.
pub struct Accounts {
    by_id: IdMap<UserId, Cached>,
    /// By the exact name.
    by_name: HashMap<Arc<str>, UserId>,
    /// By the folded name, for the account that holds it.
    by_key: HashMap<Box<str>, UserId>,
    /// Exact names that clash with an older account's folded form (from
    /// before names were folded): found by their exact name only.
    unfolded: HashSet<Box<str>>,
    /// Folded names being registered.
    reserved: HashSet<Box<str>>,
    last_id: UserId,
    capacity: usize,
    /// Ids in the order the clock hand visits them.
    clock: VecDeque<UserId>,
    /// Accounts pinned: held besides the capacity.
    pinned: usize,
}

impl Default for Accounts {
    fn default() -> Accounts {
        Accounts::new(usize::MAX)
    }
}

impl Accounts {
    /// Holds at most `capacity` accounts that are not pinned.
    pub fn new(capacity: usize) -> Accounts {
        Accounts {
            by_id: IdMap::default(),
            by_name: HashMap::new(),
            by_key: HashMap::new(),
            unfolded: HashSet::new(),
            reserved: HashSet::new(),
            last_id: 0,
            capacity: capacity.max(1),
            clock: VecDeque::new(),
            pinned: 0,
        }
    }

    pub fn get(&self, id: UserId) -> Option<&Account> {
        self.by_id.get(&id).map(|c| {
            c.referenced.set(true);
            &c.account
        })
    }

    /// The account `id` if it is cached and named exactly `username` (the
    /// one [`Accounts::find`] gives for that name), else `None`.
    #[inline]
    pub fn get_named(&self, id: UserId, username: &str) -> Option<&Account> {
        let c = self.by_id.get(&id)?;
        if *c.account.username != *username {
            return None;
        }
        c.referenced.set(true);
        Some(&c.account)
    }

    /// The account named `username`: the exact name first, else the
    /// account holding its folded form (`None`: not cached).
    pub fn find(&self, username: &str) -> Option<&Account> {
        if let Some(&id) = self.by_name.get(username) {
            return self.get(id);
        }
        if self.unfolded.contains(username) {
            return None; // its own account, not cached
        }
        self.by_key
            .get(fold(username).as_str())
            .and_then(|&id| self.get(id))
    }

    /// The exact names that clash with an older account's folded form (the
    /// store lists them at start).
    pub fn set_unfolded(&mut self, names: impl IntoIterator<Item = Box<str>>) {
        self.unfolded = names.into_iter().collect();
    }

    /// Whether `username` (folded) is reserved by a registration in
    /// progress.
    pub fn is_reserved(&self, username: &str) -> bool {
        self.reserved.contains(fold(username).as_str())
    }

    /// A logged-in user's account stays while `pinned`.
    pub fn pin(&mut self, id: UserId, pinned: bool) {
        if let Some(c) = self.by_id.get_mut(&id) {
            if c.pinned != pinned {
                c.pinned = pinned;
                if pinned {
                    self.pinned += 1;
                } else {
                    self.pinned -= 1;
                }
            }
        }
    }

    /// The highest id in use (read at start), so new ids follow it.
    pub fn set_last_id(&mut self, id: UserId) {
        self.last_id = self.last_id.max(id);
    }

    /// Evicts unpinned accounts until at most `capacity` are held (or only
    /// pinned ones are left).
    fn evict(&mut self) {
        let mut visits = 2 * self.clock.len();
        while self.by_id.len() - self.pinned > self.capacity && visits > 0 {
            visits -= 1;
            let Some(id) = self.clock.pop_front() else {
                return;
            };
            let Some(c) = self.by_id.get(&id) else {
                continue; // a stale entry
            };
            if c.pinned || c.referenced.replace(false) {
                self.clock.push_back(id);
                continue;
            }
            let c = self.by_id.remove(&id).expect("just seen");
            self.by_name.remove(&c.account.username);
            let key = fold(&c.account.username);
            if self.by_key.get(key.as_str()) == Some(&id) {
                self.by_key.remove(key.as_str());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Claims `username` for a registration in progress, or says why not.
    /// (The caller has made sure the store holds no such name.)
    /// A name is taken when its folded form is: `Alice` beside `alice`.
    pub fn reserve(&mut self, username: &str) -> Result<(), Failure> {
        check_username(username)?;
        let key = fold(username);
        if self.by_name.contains_key(username)
            || self.by_key.contains_key(key.as_str())
            || self.reserved.contains(key.as_str())
        {
            return Err(Failure::new(
                ErrorCode::Conflict,
                format!("the username '{username}' is taken (names differing only in case or in '.', '-', '_' are one)"),
            ));
        }
        self.reserved.insert(key.into());
        Ok(())
    }

    /// Gives up a reservation (the registration failed).
    pub fn release(&mut self, username: &str) {
        self.reserved.remove(fold(username).as_str());
    }

    /// The id the next new account gets.
    pub fn next_id(&mut self) -> UserId {
        self.last_id += 1;
        self.last_id
    }

    /// Replaces a cached account's password hash (an upgraded one; the
    /// store is told by the caller).
    pub fn set_password_hash(&mut self, id: UserId, hash: Arc<str>) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.account.password_hash = hash;
        }
    }

    /// Raises a cached account's `tokens_valid_from` (LOGOUT all; the store
    /// is told by the caller).
    pub fn void_tokens_before(&mut self, id: UserId, from: Millis) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.account.tokens_valid_from = c.account.tokens_valid_from.max(from);
        }
    }

    /// Drops `id` from the cache (`gotalk admin user delete`, or another
    /// node voided its tokens: its hash may have changed there too). A
    /// pinned (logged-in) account stays unless `deleted`.
    pub fn forget(&mut self, id: UserId, deleted: bool) {
        let Some(c) = self.by_id.get(&id) else {
            return;
        };
        if c.pinned && !deleted {
            return;
        }
        let c = self.by_id.remove(&id).expect("just seen");
        if c.pinned {
            self.pinned -= 1;
        }
        self.by_name.remove(&c.account.username);
        let key = fold(&c.account.username);
        if self.by_key.get(key.as_str()) == Some(&id) {
            self.by_key.remove(key.as_str());
        }
    }

    /// Cached accounts whose name starts with `prefix`, by name, at most
    /// `limit` (`gotalk admin user list` with `--memory`, where the cache
    /// holds every account).
    pub fn rows(&self, prefix: &str, limit: usize) -> Vec<crate::store::admin::AccountRow> {
        let mut names: Vec<&Arc<str>> = self
            .by_name
            .keys()
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names
            .into_iter()
            .take(limit)
            .filter_map(|n| self.find(n))
            .map(crate::core::commands::row_of)
            .collect()
    }

    /// Adds an account (a finished registration, or one read from the
    /// store), evicting another if the cache is full.
    pub fn insert(&mut self, account: Account) {
        let key = fold(&account.username);
        self.reserved.remove(key.as_str());
        self.last_id = self.last_id.max(account.id);
        if self.by_id.contains_key(&account.id) {
            return;
        }
        self.by_name.insert(account.username.clone(), account.id);
        if !self.unfolded.contains(&*account.username) {
            self.by_key.insert(key.into(), account.id);
        }
        self.clock.push_back(account.id);
        self.by_id.insert(
            account.id,
            Cached {
                account,
                // A new entry gets one round: it is about to be used.
                referenced: Cell::new(true),
                pinned: false,
            },
        );
        self.evict();
    }
}

/// The contract's rule: 1 to 32 characters of `A-Z a-z 0-9 _ . -`.
pub fn check_username(name: &str) -> Result<(), Failure> {
    if name.is_empty() || name.len() > 32 {
        return Err(Failure::bad_request(
            "a username is 1 to 32 characters long",
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Failure::bad_request(format!(
            "a username may only hold letters A-Z a-z, digits, '_', '.' and '-', not {c:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: UserId, name: &str) -> Account {
        Account {
            id,
            identity: u128::from(id),
            username: name.into(),
            password_hash: "x".into(),
            tokens_valid_from: 0,
        }
    }

    #[test]
    fn usernames_follow_the_contract() {
        for good in ["a", "alice", "A.b-c_9", &"x".repeat(32)] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        for bad in ["", &"x".repeat(33), "al ice", "bob!", "émile", "a/b"] {
            assert_eq!(
                check_username(bad).unwrap_err().code,
                ErrorCode::BadRequest,
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_reserved_until_released_or_inserted() {
        let mut accounts = Accounts::default();
        accounts.reserve("alice").unwrap();
        assert_eq!(
            accounts.reserve("alice").unwrap_err().code,
            ErrorCode::Conflict
        );
        accounts.release("alice");
        accounts.reserve("alice").unwrap();
        let id = accounts.next_id();
        accounts.insert(account(id, "alice"));
        assert_eq!(
            accounts.reserve("alice").unwrap_err().code,
            ErrorCode::Conflict
        );
        assert_eq!(accounts.find("alice").unwrap().id, 1);
        assert_eq!(accounts.find("ALICE").unwrap().id, 1, "folded");
        accounts.insert(account(2, "j.s"));
        for look_alike in ["Alice", "ALICE", "aLiCe", "J-S", "j_s"] {
            assert_eq!(
                accounts.reserve(look_alike).unwrap_err().code,
                ErrorCode::Conflict,
                "{look_alike}"
            );
        }
        accounts.reserve("Bob").unwrap();
        assert!(accounts.is_reserved("bob"));
        assert_eq!(
            accounts.reserve("BOB").unwrap_err().code,
            ErrorCode::Conflict
        );
    }

    #[test]
    fn an_unfolded_name_is_found_by_its_exact_name_only() {
        let mut accounts = Accounts::new(1);
        accounts.set_unfolded(["Alice".into()]);
        accounts.insert(account(1, "alice"));
        accounts.pin(1, true);
        accounts.insert(account(2, "Alice"));
        accounts.pin(2, true);
        assert_eq!(accounts.find("alice").unwrap().id, 1);
        assert_eq!(accounts.find("Alice").unwrap().id, 2, "the exact name wins");
        assert_eq!(
            accounts.find("ALICE").unwrap().id,
            1,
            "the older holds the fold"
        );
        // Not cached: the exact name is read from the store, not taken for
        // the holder of its fold.
        accounts.pin(2, false);
        accounts.insert(account(3, "carol"));
        assert!(accounts.find("Alice").is_none());
        assert_eq!(accounts.find("ALICE").unwrap().id, 1);
    }

    #[test]
    fn the_cache_keeps_pinned_and_recently_used_accounts() {
        let mut accounts = Accounts::new(1);
        accounts.insert(account(1, "one"));
        accounts.pin(1, true);
        accounts.insert(account(2, "two"));
        accounts.insert(account(3, "three"));
        assert!(accounts.get(1).is_some(), "pinned");
        assert!(accounts.get(2).is_none(), "evicted");
        assert!(accounts.find("two").is_none());
        assert!(accounts.find("three").is_some());
        accounts.pin(1, false);
        accounts.insert(account(4, "four"));
        assert_eq!(accounts.len(), 1);
        assert!(accounts.find("four").is_some());
    }

    #[test]
    fn ids_continue_after_loaded_accounts() {
        let mut accounts = Accounts::default();
        accounts.insert(account(41, "old"));
        assert_eq!(accounts.next_id(), 42);
    }
}
