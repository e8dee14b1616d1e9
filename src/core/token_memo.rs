//! Tokens opened lately, so that a client sending the same token with
//! every request (an HTTP keep-alive connection, a long-poll loop) does not
//! pay its hex decoding and AES-GCM opening each time. A memo maps the
//! exact token text to what opening it gave, which depends on nothing but
//! the text and the key ring: a hit is what opening again would give. Only
//! tokens that opened are kept, so invalid ones cannot push valid ones
//! out faster than they could already be sent; expiry is checked on every
//! use, and identity and revocations are checked by the caller as before.
//! A new key ring (SIGHUP) empties it.

use crate::token::{OpenedToken, TokenError, TokenKey};
use crate::Millis;

/// Sets of [`WAYS`] slots: tokens of up to `SETS * WAYS` recent clients
/// are remembered at once (about 40 KB when full).
const SETS: usize = 64;
const WAYS: usize = 4;

/// A set-associative memo: each token belongs to one set, picked from its
/// last hex digits (its authentication tag, which no one chooses without
/// the key), and replaces the set's slots in turn.
pub struct TokenMemo {
    slots: Vec<Option<(Box<str>, OpenedToken)>>,
    /// The slot of each set the next new token takes.
    next: Vec<u8>,
}

impl Default for TokenMemo {
    fn default() -> TokenMemo {
        TokenMemo {
            slots: vec![None; SETS * WAYS],
            next: vec![0; SETS],
        }
    }
}

impl TokenMemo {
    /// Opens `token` with `key`, from the memo when it was opened before.
    pub fn open(
        &mut self,
        key: &TokenKey,
        token: &str,
        now: Millis,
    ) -> Result<OpenedToken, TokenError> {
        let set = set_of(token);
        let ways = &self.slots[set * WAYS..(set + 1) * WAYS];
        if let Some((_, opened)) = ways
            .iter()
            .flatten()
            .find(|(t, _)| same_text(t.as_bytes(), token.as_bytes()))
        {
            if now >= opened.expires {
                return Err(TokenError::Expired);
            }
            return Ok(*opened);
        }
        let opened = key.open(token, now)?;
        let way = self.next[set] as usize;
        self.next[set] = ((way + 1) % WAYS) as u8;
        self.slots[set * WAYS + way] = Some((token.into(), opened));
        Ok(opened)
    }

    /// Forgets every token (the key ring changed).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }
}

/// Whether two token texts are equal, in a time that depends only on
/// their lengths: a client must not learn from the reply's timing how much
/// of a remembered token its guess shares.
fn same_text(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn set_of(token: &str) -> usize {
    let tail = &token.as_bytes()[token.len().saturating_sub(8)..];
    let mut h: usize = 0;
    for &b in tail {
        h = h.wrapping_mul(31).wrapping_add(b as usize);
    }
    h % SETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_compared_whole() {
        assert!(same_text(b"abcd", b"abcd"));
        assert!(!same_text(b"abcd", b"abce"));
        assert!(!same_text(b"xbcd", b"abcd"));
        assert!(!same_text(b"abc", b"abcd"));
        assert!(same_text(b"", b""));
    }

    const NOW: Millis = 1_764_160_000_000;

    #[test]
    fn a_memo_gives_what_opening_gives_and_still_checks_expiry() {
        let key = TokenKey::random();
        let sealed = key.issue(7, 42, NOW, NOW + 1000);
        let mut memo = TokenMemo::default();
        let first = memo.open(&key, &sealed.token, NOW).unwrap();
        assert_eq!(first, key.open(&sealed.token, NOW).unwrap());
        assert_eq!(memo.open(&key, &sealed.token, NOW + 1).unwrap(), first);
        assert_eq!(
            memo.open(&key, &sealed.token, NOW + 1000),
            Err(TokenError::Expired)
        );
        let mut tampered = sealed.token.clone();
        tampered.replace_range(0..1, if tampered.starts_with('0') { "1" } else { "0" });
        assert!(memo.open(&key, &tampered, NOW).is_err());
        assert_eq!(memo.open(&key, &sealed.token, NOW).unwrap(), first);
        memo.clear();
        let other = TokenKey::random();
        assert!(memo.open(&other, &sealed.token, NOW).is_err());
    }
}
