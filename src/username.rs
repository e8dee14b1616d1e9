//! Usernames compared the way people read them. A name is kept as typed
//! (its display form), but two names are the same account name when their
//! folded forms are equal: ASCII letters in lower case, and the three
//! separators `.`, `-` and `_` as one. So `Alice`, `ALICE` and `alice` are
//! one name, and so are `john.smith` and `john_smith`.
//!
//! A new name (REGISTER) must also have a plain shape: it begins and ends
//! with a letter or a digit and has no two separators in a row, so
//! `alice.`, `.alice` and `al..ice` cannot stand beside `alice`.
//!
//! Names registered before this rule may clash (`alice` and `Alice`): the
//! stores keep the folded form in `users.name_key`, unique, held by the
//! oldest account of a clashing group; the others keep no folded form and
//! are found by their exact name only (see docs/storage.md).

use crate::error::Failure;

/// The folded form two names are compared by.
pub fn fold(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The same fold in SQL (SQLite's and PostgreSQL's `lower` and `replace`
/// agree with [`fold`] on the characters a username may hold).
pub fn fold_sql(column: &str) -> String {
    format!("replace(replace(lower({column}), '.', '_'), '-', '_')")
}

fn is_separator(c: u8) -> bool {
    matches!(c, b'.' | b'-' | b'_')
}

/// The shape a new name must have, besides the contract's characters and
/// length (checked first, by `check_username`).
pub fn check_new_shape(name: &str) -> Result<(), Failure> {
    let bytes = name.as_bytes();
    let edge = |c: Option<&u8>| c.is_some_and(|&c| is_separator(c));
    if edge(bytes.first()) || edge(bytes.last()) {
        return Err(Failure::bad_request(
            "a new username begins and ends with a letter or a digit",
        ));
    }
    if bytes
        .windows(2)
        .any(|w| is_separator(w[0]) && is_separator(w[1]))
    {
        return Err(Failure::bad_request(
            "a new username has no two of '.', '-' and '_' in a row",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_fold_together() {
        for same in ["Alice", "ALICE", "alice", "aLiCe"] {
            assert_eq!(fold(same), "alice");
        }
        assert_eq!(fold("john.smith"), fold("John_Smith"));
        assert_eq!(fold("john-smith"), "john_smith");
        assert_ne!(fold("alice"), fold("alice2"));
    }

    #[test]
    fn new_names_have_a_plain_shape() {
        for good in ["a", "alice", "john.smith", "a-b_c.d", "9lives"] {
            assert!(check_new_shape(good).is_ok(), "{good}");
        }
        for bad in ["alice.", ".alice", "_a", "a-", "al..ice", "a._b", "-"] {
            assert!(check_new_shape(bad).is_err(), "{bad}");
        }
    }
}
