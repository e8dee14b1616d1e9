//! Accounts: who exists, by id and by name, with their password hashes.
//! Also the username rule of the contract.

use crate::error::{ErrorCode, Failure};
use crate::idhash::IdMap;
use crate::request::UserRef;
use crate::UserId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One account.
#[derive(Debug)]
pub struct Account {
    pub id: UserId,
    /// Random, sealed into the account's tokens (see `token`).
    pub identity: u128,
    pub username: Arc<str>,
    pub password_hash: Arc<str>,
}

impl Account {
    pub fn user_ref(&self) -> UserRef {
        UserRef {
            id: self.id,
            username: self.username.clone(),
        }
    }
}

/// All accounts, plus names reserved by registrations still in progress.
#[derive(Default)]
pub struct Accounts {
    by_id: IdMap<UserId, Account>,
    by_name: HashMap<Arc<str>, UserId>,
    reserved: HashSet<Box<str>>,
    last_id: UserId,
}

impl Accounts {
    pub fn get(&self, id: UserId) -> Option<&Account> {
        self.by_id.get(&id)
    }

    pub fn find(&self, username: &str) -> Option<&Account> {
        self.by_name.get(username).and_then(|id| self.by_id.get(id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Claims `username` for a registration in progress, or says why not.
    pub fn reserve(&mut self, username: &str) -> Result<(), Failure> {
        check_username(username)?;
        if self.by_name.contains_key(username) || self.reserved.contains(username) {
            return Err(Failure::new(
                ErrorCode::Conflict,
                format!("the username '{username}' is taken"),
            ));
        }
        self.reserved.insert(username.into());
        Ok(())
    }

    /// Gives up a reservation (the registration failed).
    pub fn release(&mut self, username: &str) {
        self.reserved.remove(username);
    }

    /// The id the next new account gets.
    pub fn next_id(&mut self) -> UserId {
        self.last_id += 1;
        self.last_id
    }

    /// Replaces an account's password hash (an upgraded one).
    pub fn set_password_hash(&mut self, id: UserId, hash: Arc<str>) {
        if let Some(account) = self.by_id.get_mut(&id) {
            account.password_hash = hash;
        }
    }

    /// Adds an account (a finished registration, or one loaded at start).
    pub fn insert(&mut self, account: Account) {
        self.reserved.remove(&*account.username);
        self.last_id = self.last_id.max(account.id);
        self.by_name.insert(account.username.clone(), account.id);
        self.by_id.insert(account.id, account);
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
        assert!(accounts.find("Alice").is_none());
    }

    #[test]
    fn ids_continue_after_loaded_accounts() {
        let mut accounts = Accounts::default();
        accounts.insert(account(41, "old"));
        assert_eq!(accounts.next_id(), 42);
    }
}
