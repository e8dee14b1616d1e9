//! Session tokens: the user id, the account's identity, issue time and
//! expiry sealed with AES-256-GCM under a 32-byte server key, written as
//! lowercase hex. The identity is 128 random bits given to each account
//! when it is created: a token names the account, not only its id, so a
//! token from before a reset (or from another server with the same key)
//! never opens a different account that got the same id.
//!
//! Format v3 (what LOGIN issues): `kid (4 bytes) | nonce (12) | sealed
//! (40 + 16-byte tag)`, hex. The key id in front says which key of the
//! ring opens it (and is authenticated with the token), so keys can be
//! rotated: new tokens use the current key, older keys still open the
//! tokens they made until those expire. Format v2 (before key ids) has no
//! kid and is opened with key id 0, the key a key file of that time holds.
//! Each token's id is the first 8 bytes of its random nonce (authenticated
//! too): that is what LOGOUT revokes.
//!
//! A token that was tampered with, truncated, sealed under another key, or
//! has expired does not open. The key file is [`crate::token_file`]'s (it
//! reads keys into a `TokenKey`; this module knows no files). The key
//! primitives both use (`KeyId`, a random key, hex) are in `keys.rs`.

pub mod keys;

pub use keys::{new_identity, random_key, KeyId};

use crate::{Millis, UserId};
use aes_gcm::aead::{Aead, AeadCore, AeadInPlace, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use keys::{parse_hex_into, push_hex};

/// A token's own id (the first 8 bytes of its nonce).
pub type TokenId = u64;

const KID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const PLAIN_LEN: usize = 40;
const TAG_LEN: usize = 16;
const V2_LEN: usize = NONCE_LEN + PLAIN_LEN + TAG_LEN;
const V3_LEN: usize = KID_LEN + V2_LEN;
/// Binds every v2 token to its purpose and format version.
const AAD_V2: &[u8] = b"gotalk token v2";
/// Binds every v3 token to its purpose and version; its kid follows.
const AAD_V3: &[u8] = b"gotalk token v3";

/// Why a token did not open. The client is told only `unauthorized`.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    /// Sealed under no key this server holds (or a retired one dropped).
    UnknownKey,
    Forged,
    Expired,
}

/// What a genuine, unexpired token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenedToken {
    pub user: UserId,
    /// The account's identity (the caller checks it against the account).
    pub identity: u128,
    pub id: TokenId,
    pub issued: Millis,
    pub expires: Millis,
    pub kid: KeyId,
}

/// A token just sealed, and the id LOGOUT will know it by.
pub struct Sealed {
    pub token: String,
    pub id: TokenId,
}

/// The keys that seal and open tokens: the current one (first) and older
/// ones kept to open the tokens they sealed until those expire.
pub struct TokenKey {
    /// Current first; key ids are distinct.
    ring: Vec<(KeyId, Aes256Gcm)>,
}

impl TokenKey {
    /// One key, with key id 0.
    pub fn from_bytes(key: &[u8; 32]) -> TokenKey {
        TokenKey::from_ring(&[(0, *key)])
    }

    /// A ring from `(kid, key)` pairs, the current key first.
    pub fn from_ring(keys: &[(KeyId, [u8; 32])]) -> TokenKey {
        assert!(!keys.is_empty(), "a key ring holds at least one key");
        TokenKey {
            ring: keys
                .iter()
                .map(|(kid, key)| (*kid, Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))))
                .collect(),
        }
    }

    /// A fresh random key with key id 0 (for `--memory` servers).
    pub fn random() -> TokenKey {
        TokenKey::from_bytes(&random_key())
    }

    /// The id of the key new tokens are sealed with.
    pub fn current_kid(&self) -> KeyId {
        self.ring[0].0
    }

    /// Seals a token for `user` (whose account has `identity`), valid from
    /// `now` until `expires`.
    pub fn seal(&self, user: UserId, identity: u128, now: Millis, expires: Millis) -> String {
        self.issue(user, identity, now, expires).token
    }

    /// [`TokenKey::seal`], also giving the token's id.
    pub fn issue(&self, user: UserId, identity: u128, now: Millis, expires: Millis) -> Sealed {
        let mut plain = [0u8; PLAIN_LEN];
        plain[..8].copy_from_slice(&user.to_be_bytes());
        plain[8..24].copy_from_slice(&identity.to_be_bytes());
        plain[24..32].copy_from_slice(&now.to_be_bytes());
        plain[32..].copy_from_slice(&expires.to_be_bytes());
        let (kid, cipher) = &self.ring[0];
        let kid = kid.to_be_bytes();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: &aad_v3(kid),
                },
            )
            .expect("AES-GCM sealing of 40 bytes cannot fail");
        let mut token = String::with_capacity(V3_LEN * 2);
        push_hex(&mut token, &kid);
        push_hex(&mut token, &nonce);
        push_hex(&mut token, &sealed);
        Sealed {
            token,
            id: token_id(&nonce),
        }
    }

    /// Opens a token (v3, or v2 with key id 0) if it is genuine and
    /// unexpired. The caller checks the identity and revocations.
    pub fn open(&self, token: &str, now: Millis) -> Result<OpenedToken, TokenError> {
        let hex = token.trim().as_bytes();
        let v3 = match hex.len() {
            n if n == V3_LEN * 2 => true,
            n if n == V2_LEN * 2 => false,
            _ => return Err(TokenError::Malformed),
        };
        // Decoded on the stack: a token is opened for every HTTP request.
        let mut buf = [0u8; V3_LEN];
        let bytes = &mut buf[..hex.len() / 2];
        parse_hex_into(hex, bytes).ok_or(TokenError::Malformed)?;
        let kid_bytes: [u8; KID_LEN] = match v3 {
            true => bytes[..KID_LEN].try_into().expect("4 bytes"),
            false => [0u8; KID_LEN],
        };
        let aad3 = aad_v3(kid_bytes);
        let aad: &[u8] = if v3 { &aad3 } else { AAD_V2 };
        let kid = KeyId::from_be_bytes(kid_bytes);
        let cipher = self
            .ring
            .iter()
            .find(|(k, _)| *k == kid)
            .map(|(_, c)| c)
            .ok_or(TokenError::UnknownKey)?;
        // Opened in place in the decoded bytes: no second buffer.
        let rest = &mut bytes[if v3 { KID_LEN } else { 0 }..];
        let (nonce, sealed) = rest.split_at_mut(NONCE_LEN);
        let (plain, tag) = sealed.split_at_mut(PLAIN_LEN);
        cipher
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, plain, Tag::from_slice(tag))
            .map_err(|_| TokenError::Forged)?;
        let plain: &[u8] = plain;
        let field = |i: usize| u64::from_be_bytes(plain[i..i + 8].try_into().expect("8 bytes"));
        let opened = OpenedToken {
            user: field(0),
            identity: u128::from_be_bytes(plain[8..24].try_into().expect("16 bytes")),
            id: token_id(nonce),
            issued: field(24),
            expires: field(32),
            kid,
        };
        if now >= opened.expires {
            return Err(TokenError::Expired);
        }
        Ok(opened)
    }
}

fn aad_v3(kid: [u8; KID_LEN]) -> [u8; AAD_V3.len() + KID_LEN] {
    let mut aad = [0u8; AAD_V3.len() + KID_LEN];
    aad[..AAD_V3.len()].copy_from_slice(AAD_V3);
    aad[AAD_V3.len()..].copy_from_slice(&kid);
    aad
}

fn token_id(nonce: &[u8]) -> TokenId {
    u64::from_be_bytes(nonce[..8].try_into().expect("a nonce is 12 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_764_160_000_000;

    /// A token in format v2, as servers before key ids sealed them.
    fn seal_v2(key: &[u8; 32], user: UserId, identity: u128, expires: Millis) -> String {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
        let mut plain = [0u8; PLAIN_LEN];
        plain[..8].copy_from_slice(&user.to_be_bytes());
        plain[8..24].copy_from_slice(&identity.to_be_bytes());
        plain[24..32].copy_from_slice(&NOW.to_be_bytes());
        plain[32..].copy_from_slice(&expires.to_be_bytes());
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: &plain,
            aad: AAD_V2,
        };
        let sealed = cipher.encrypt(&nonce, payload).unwrap();
        let mut out = String::new();
        push_hex(&mut out, &nonce);
        push_hex(&mut out, &sealed);
        out
    }

    fn opened(key: &TokenKey, token: &str, now: Millis) -> Result<(UserId, u128), TokenError> {
        key.open(token, now).map(|t| (t.user, t.identity))
    }

    #[test]
    fn a_sealed_token_opens_to_its_user_with_its_id_and_times() {
        let key = TokenKey::random();
        let sealed = key.issue(42, 9, NOW, NOW + 1000);
        assert_eq!(sealed.token.len(), V3_LEN * 2);
        let t = key.open(&sealed.token, NOW + 999).unwrap();
        assert_eq!((t.user, t.identity, t.id), (42, 9, sealed.id));
        assert_eq!((t.issued, t.expires, t.kid), (NOW, NOW + 1000, 0));
    }

    #[test]
    fn two_seals_differ_in_text_and_id() {
        let key = TokenKey::random();
        let (a, b) = (key.issue(1, 9, NOW, NOW + 1), key.issue(1, 9, NOW, NOW + 1));
        assert_ne!(a.token, b.token);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn expired_tokens_do_not_open() {
        let key = TokenKey::random();
        let token = key.seal(42, 9, NOW, NOW + 1000);
        assert_eq!(key.open(&token, NOW + 1000), Err(TokenError::Expired));
    }

    #[test]
    fn every_flipped_bit_is_caught_key_id_included() {
        let key = TokenKey::from_ring(&[(0, [1; 32]), (1, [1; 32])]);
        let token = key.seal(42, 9, NOW, NOW + 1000);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(key.open(&tampered, NOW).is_err(), "flip at {i} opened");
        }
    }

    #[test]
    fn truncated_garbage_and_foreign_tokens_fail() {
        let key = TokenKey::random();
        let token = key.seal(42, 9, NOW, NOW + 1000);
        assert_eq!(
            key.open(&token[..token.len() - 2], NOW),
            Err(TokenError::Malformed)
        );
        assert_eq!(key.open("", NOW), Err(TokenError::Malformed));
        assert_eq!(key.open("not hex at all!", NOW), Err(TokenError::Malformed));
        assert_eq!(key.open("é", NOW), Err(TokenError::Malformed));
        let other = TokenKey::random();
        assert_eq!(other.open(&token, NOW), Err(TokenError::Forged));
    }

    #[test]
    fn after_rotation_old_tokens_open_and_new_ones_carry_the_new_key_id() {
        let old = TokenKey::from_ring(&[(0, [1; 32])]);
        let before = old.seal(7, 9, NOW, NOW + 1000);
        let rotated = TokenKey::from_ring(&[(1, [2; 32]), (0, [1; 32])]);
        assert_eq!(opened(&rotated, &before, NOW), Ok((7, 9)));
        let after = rotated.seal(7, 9, NOW, NOW + 1000);
        assert_eq!(rotated.open(&after, NOW).unwrap().kid, 1);
        assert_eq!(&after[..8], "00000001");
        assert_eq!(old.open(&after, NOW), Err(TokenError::UnknownKey));
        let dropped = TokenKey::from_ring(&[(1, [2; 32])]);
        assert_eq!(dropped.open(&before, NOW), Err(TokenError::UnknownKey));
    }

    #[test]
    fn v2_tokens_open_with_key_id_0_only() {
        let v2 = seal_v2(&[1; 32], 7, 9, NOW + 1000);
        assert_eq!(v2.len(), V2_LEN * 2);
        let key = TokenKey::from_ring(&[(1, [2; 32]), (0, [1; 32])]);
        let t = key.open(&v2, NOW).unwrap();
        assert_eq!((t.user, t.identity, t.kid, t.issued), (7, 9, 0, NOW));
        assert_eq!(key.open(&v2, NOW + 1000), Err(TokenError::Expired));
        let without_0 = TokenKey::from_ring(&[(1, [1; 32])]);
        assert_eq!(without_0.open(&v2, NOW), Err(TokenError::UnknownKey));
    }
}
