//! Session tokens: the user id, the account's identity, issue time and
//! expiry sealed with AES-256-GCM under a 32-byte server key, written as
//! lowercase hex. The identity is 128 random bits given to each account
//! when it is created: a token names the account, not only its id, so a
//! token from before a reset (or from another server with the same key)
//! never opens a different account that got the same id.
//! A token that was tampered with, truncated, sealed under another key, or
//! has expired does not open. The key file is created at first start with
//! mode 0600 and never leaves the server.

use crate::{Millis, UserId};
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use std::fs;
use std::io::{self, Write};
use std::path::Path;

const NONCE_LEN: usize = 12;
const PLAIN_LEN: usize = 40;
const TAG_LEN: usize = 16;
const SEALED_LEN: usize = NONCE_LEN + PLAIN_LEN + TAG_LEN;
/// Binds every token to this purpose and format version.
const AAD: &[u8] = b"gotalk token v2";

/// Why a token did not open. The client is told only `unauthorized`.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Forged,
    Expired,
}

/// The AES-256-GCM key that seals and opens tokens.
pub struct TokenKey {
    cipher: Aes256Gcm,
}

impl TokenKey {
    pub fn from_bytes(key: &[u8; 32]) -> TokenKey {
        TokenKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// A fresh random key (for `--memory` servers).
    pub fn random() -> TokenKey {
        let key = Aes256Gcm::generate_key(OsRng);
        TokenKey {
            cipher: Aes256Gcm::new(&key),
        }
    }

    /// Reads the key file, or creates it with a random key (mode 0600). A
    /// key file that others can read is refused: whoever reads it can mint
    /// tokens for any account.
    pub fn load_or_create(path: &Path) -> io::Result<TokenKey> {
        match fs::read(path) {
            Ok(bytes) => {
                refuse_if_shared(path)?;
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} holds {} bytes; a token key is exactly 32",
                            path.display(),
                            bytes.len()
                        ),
                    )
                })?;
                Ok(TokenKey::from_bytes(&key))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = Aes256Gcm::generate_key(OsRng);
                write_atomically(path, &key)?;
                log::info!("created a new token key at {}", path.display());
                Ok(TokenKey {
                    cipher: Aes256Gcm::new(&key),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Seals a token for `user` (whose account has `identity`), valid from
    /// `now` until `expires`.
    pub fn seal(&self, user: UserId, identity: u128, now: Millis, expires: Millis) -> String {
        let mut plain = [0u8; PLAIN_LEN];
        plain[..8].copy_from_slice(&user.to_be_bytes());
        plain[8..24].copy_from_slice(&identity.to_be_bytes());
        plain[24..32].copy_from_slice(&now.to_be_bytes());
        plain[32..].copy_from_slice(&expires.to_be_bytes());
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .expect("AES-GCM sealing of 40 bytes cannot fail");
        let mut out = String::with_capacity(SEALED_LEN * 2);
        push_hex(&mut out, &nonce);
        push_hex(&mut out, &sealed);
        out
    }

    /// Opens a token, returning its user and that account's identity if it
    /// is genuine and unexpired (the caller checks the identity).
    pub fn open(&self, token: &str, now: Millis) -> Result<(UserId, u128), TokenError> {
        let bytes = parse_hex(token.trim()).ok_or(TokenError::Malformed)?;
        if bytes.len() != SEALED_LEN {
            return Err(TokenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .map_err(|_| TokenError::Forged)?;
        let field = |i: usize| u64::from_be_bytes(plain[i..i + 8].try_into().expect("8 bytes"));
        let identity = u128::from_be_bytes(plain[8..24].try_into().expect("16 bytes"));
        let (user, expires) = (field(0), field(32));
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok((user, identity))
    }
}

/// A fresh random account identity (128 bits from the system's RNG).
pub fn new_identity() -> u128 {
    use aes_gcm::aead::rand_core::RngCore;
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    u128::from_be_bytes(bytes)
}

/// Writes a new private file so that a crash at any moment leaves either
/// no file or the whole key, never a short one: write a temporary file
/// (mode 0600), sync it, rename it into place, sync the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    // Created exclusively, so it can be nobody else's file or link; a
    // leftover of a start that crashed here is ours to remove.
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Refuses a key file that its group or others may read or write.
fn refuse_if_shared(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "is readable or writable by others (mode {mode:o}); anyone who can read it \
                     can forge tokens. Make it private with: chmod 600 {}",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > SEALED_LEN * 2 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_764_160_000_000;

    #[test]
    fn a_sealed_token_opens_to_its_user() {
        let key = TokenKey::random();
        let token = key.seal(42, 9, NOW, NOW + 1000);
        assert_eq!(token.len(), SEALED_LEN * 2);
        assert_eq!(key.open(&token, NOW + 999), Ok((42, 9)));
    }

    #[test]
    fn two_seals_differ() {
        let key = TokenKey::random();
        assert_ne!(key.seal(1, 9, NOW, NOW + 1), key.seal(1, 9, NOW, NOW + 1));
    }

    #[test]
    fn expired_tokens_do_not_open() {
        let key = TokenKey::random();
        let token = key.seal(42, 9, NOW, NOW + 1000);
        assert_eq!(key.open(&token, NOW + 1000), Err(TokenError::Expired));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let key = TokenKey::random();
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
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("gotalk-key-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        let _ = fs::remove_file(&path);
        let first = TokenKey::load_or_create(&path).unwrap();
        let token = first.seal(7, 9, NOW, NOW + 10);
        let again = TokenKey::load_or_create(&path).unwrap();
        assert_eq!(again.open(&token, NOW), Ok((7, 9)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            !dir.join("secret.key.tmp").exists(),
            "no temporary file is left"
        );
        fs::write(&path, b"short").unwrap();
        assert!(TokenKey::load_or_create(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
