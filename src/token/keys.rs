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
pub fn parse_hex(text: &str, max_bytes: usize) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > max_bytes * 2 {
        return None;
    }
    let mut out = vec![0; text.len() / 2];
    parse_hex_into(text.as_bytes(), &mut out)?;
    Some(out)
}

/// Decodes `hex` (exactly twice as long as `out`) into `out`; `None` if
/// a byte is not a hex digit. Every HTTP request with a token comes
/// through here, so it writes in place and looks digits up in a table.
pub fn parse_hex_into(hex: &[u8], out: &mut [u8]) -> Option<()> {
    debug_assert_eq!(hex.len(), out.len() * 2);
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (HEX[pair[0] as usize], HEX[pair[1] as usize]);
        bad |= high | low;
        *byte = high << 4 | (low & 15);
    }
    (bad & NOT_HEX == 0).then_some(())
}

/// Marks a byte that is not a hex digit in [`HEX`].
const NOT_HEX: u8 = 0x80;

/// The value of each hex digit byte, [`NOT_HEX`] for every other byte.
const HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 256 {
        if let Some(d) = hex_digit(i as u8) {
            table[i] = d;
        }
        i += 1;
    }
    table
};

const fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
