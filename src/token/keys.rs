//! The key primitives that tokens (`token/mod.rs`) and the key file
//! (`token_file.rs`) share: a key's id, a fresh random key or identity from
//! the system's RNG, and lowercase hex. Kept apart so neither of the two
//! imports the other for them.

use aes_gcm::aead::{KeyInit, OsRng};
use aes_gcm::Aes256Gcm;

/// A key's id in the key file and in the tokens it seals.
pub type KeyId = u32;

/// 32 random bytes from the system's RNG: a new token key.
pub fn random_key() -> [u8; 32] {
    Aes256Gcm::generate_key(OsRng).into()
}

/// A fresh random account identity (128 bits from the system's RNG).
pub fn new_identity() -> u128 {
    use aes_gcm::aead::rand_core::RngCore;
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    u128::from_be_bytes(bytes)
}

/// Appends `bytes` in lowercase hex.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

/// The bytes `text` spells in hex, if it is hex of at most `max_bytes`.
/// One allocation of the exact size: every HTTP request with a token
/// comes through here.
pub fn parse_hex(text: &str, max_bytes: usize) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > max_bytes * 2 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 2);
    for pair in text.as_bytes().chunks_exact(2) {
        out.push(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?);
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
