//! The token key file: which keys seal and open tokens, and how a new key
//! is added (`gotalk rotate-key`). One key per line, the current key
//! first, older keys after it, kept so the tokens they sealed still open
//! until they expire:
//!
//! ```text
//! # gotalk token keys: <key id> <key, 64 hex digits> <unix seconds it became current>
//! 1 9f2c…(64 hex digits)… 1764160000
//! 0 41d0…(64 hex digits)… 1763000000
//! ```
//!
//! A file of exactly 32 bytes is the format before key ids (a raw key) and
//! is read as key id 0. The file must be private: a key file its group or
//! others may read or write is refused (whoever reads it can mint tokens
//! for any account). New files are written to a temporary file created
//! exclusively with mode 0600, synced, then renamed into place.

use crate::token::keys::{parse_hex, push_hex, random_key, KeyId};
use crate::token::TokenKey;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// One key of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileKey {
    pub kid: KeyId,
    pub key: [u8; 32],
    /// When it became the current key (unix seconds); unknown for a key
    /// from a file of the old format.
    pub since: Option<u64>,
}

const HEADER: &str =
    "# gotalk token keys: <key id> <key, 64 hex digits> <unix seconds it became current>\n\
     # The first key seals new tokens; the others still open the tokens they sealed.\n";

/// Reads the key file (or creates it with one random key) into the ring
/// that seals and opens tokens.
pub fn load_key(path: &Path) -> io::Result<TokenKey> {
    let keys = load_or_create(path)?;
    let pairs: Vec<(KeyId, [u8; 32])> = keys.iter().map(|k| (k.kid, k.key)).collect();
    Ok(TokenKey::from_ring(&pairs))
}

/// Reads the key file, or creates it with one random key (key id 0).
pub fn load_or_create(path: &Path) -> io::Result<Vec<FileKey>> {
    match fs::read(path) {
        Ok(bytes) => {
            refuse_if_shared(path)?;
            parse(&bytes).map_err(|why| invalid(path, &why.to_string()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let keys = vec![FileKey {
                kid: 0,
                key: random_key(),
                since: Some(unix_now()),
            }];
            write_atomically(path, render(&keys).as_bytes())?;
            log::info!("created a new token key at {}", path.display());
            Ok(keys)
        }
        Err(e) => Err(e),
    }
}

/// Reads an existing key file (a reload: a missing file is an error, not
/// a reason to make a new key, which would void every token).
pub fn read(path: &Path) -> io::Result<Vec<FileKey>> {
    let bytes = fs::read(path)?;
    refuse_if_shared(path)?;
    parse(&bytes).map_err(|why| invalid(path, &why.to_string()))
}

/// Adds a new random current key (the highest key id so far plus one) in
/// front of the file's keys, keeping them all. Creates the file if there
/// is none. Returns the keys as now written.
pub fn rotate(path: &Path) -> io::Result<Vec<FileKey>> {
    let mut keys = match fs::read(path) {
        Ok(bytes) => {
            refuse_if_shared(path)?;
            parse(&bytes).map_err(|why| invalid(path, &why.to_string()))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let kid = match keys.iter().map(|k| k.kid).max() {
        None => 0,
        Some(max) => max.checked_add(1).ok_or_else(|| {
            invalid(
                path,
                "its key ids reached the largest there is; renumber them",
            )
        })?,
    };
    keys.insert(
        0,
        FileKey {
            kid,
            key: random_key(),
            since: Some(unix_now()),
        },
    );
    write_atomically(path, render(&keys).as_bytes())?;
    Ok(keys)
}

/// For each older key: until when tokens it sealed can be valid (tokens
/// live `ttl_secs`), so the operator knows when its line may go.
pub fn retirement_notes(keys: &[FileKey], ttl_secs: u64, now: u64) -> Vec<String> {
    keys.windows(2)
        .map(|pair| {
            let (newer, old) = (&pair[0], &pair[1]);
            match newer.since {
                Some(retired) if retired + ttl_secs <= now => format!(
                    "token key {}: no token it sealed is valid any more (key {} current since \
                     {retired}, plus --token-ttl {ttl_secs} s); its line can be removed",
                    old.kid, newer.kid
                ),
                Some(retired) => format!(
                    "token key {}: still opens tokens until unix time {} (key {} current since \
                     {retired}, plus --token-ttl {ttl_secs} s, counted from the restart or reload that \
                     took it up if that was later); keep its line until then",
                    old.kid,
                    retired + ttl_secs,
                    newer.kid
                ),
                None => format!(
                    "token key {}: kept (when key {} became current is not recorded); remove its \
                     line once --token-ttl has passed since then",
                    old.kid, newer.kid
                ),
            }
        })
        .collect()
}

/// What is wrong with a key file's contents (the path is added by the
/// caller's `io::Error`).
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(
        "holds {0} bytes that are neither a 32-byte key nor lines of \
         '<key id> <64 hex digits> [<unix seconds>]'"
    )]
    Neither(usize),
    #[error("line {0}: the key id must be a whole number")]
    KeyId(usize),
    #[error("line {0}: the key must be 64 hex digits")]
    Key(usize),
    #[error("line {0}: the third field is unix seconds")]
    Since(usize),
    #[error("line {0}: more than three fields")]
    Fields(usize),
    #[error("line {0}: key id {1} appears twice")]
    Twice(usize, KeyId),
    #[error("holds no key")]
    Empty,
}

/// Parses a key file: the old raw 32 bytes, or lines of the text format.
pub fn parse(bytes: &[u8]) -> Result<Vec<FileKey>, KeyFileError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) if bytes.len() != 32 || text.trim_start().starts_with('#') => text,
        _ if bytes.len() == 32 => {
            let key: [u8; 32] = bytes.try_into().expect("32 bytes");
            return Ok(vec![FileKey {
                kid: 0,
                key,
                since: None,
            }]);
        }
        _ => return Err(KeyFileError::Neither(bytes.len())),
    };
    let mut keys: Vec<FileKey> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = n + 1;
        let mut words = line.split_whitespace();
        let kid: KeyId = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or(KeyFileError::KeyId(n))?;
        let key: [u8; 32] = words
            .next()
            .and_then(|w| parse_hex(w, 32))
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyFileError::Key(n))?;
        let since = match words.next() {
            None => None,
            Some(w) => Some(w.parse().map_err(|_| KeyFileError::Since(n))?),
        };
        if words.next().is_some() {
            return Err(KeyFileError::Fields(n));
        }
        if keys.iter().any(|k| k.kid == kid) {
            return Err(KeyFileError::Twice(n, kid));
        }
        keys.push(FileKey { kid, key, since });
    }
    if keys.is_empty() {
        return Err(KeyFileError::Empty);
    }
    Ok(keys)
}

/// The text format, current key first.
pub fn render(keys: &[FileKey]) -> String {
    let mut out = String::from(HEADER);
    for k in keys {
        out.push_str(&k.kid.to_string());
        out.push(' ');
        push_hex(&mut out, &k.key);
        if let Some(since) = k.since {
            out.push(' ');
            out.push_str(&since.to_string());
        }
        out.push('\n');
    }
    out
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} {why}", path.display()),
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes a private file so that a crash at any moment leaves either the
/// old file or the whole new one, never a short one: write a temporary
/// file (mode 0600), sync it, rename it into place, sync the directory.
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_160_000_000;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gotalk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = scratch("key");
        let path = dir.join("secret.key");
        let first = load_key(&path).unwrap();
        let token = first.seal(7, 9, NOW, NOW + 10);
        let again = load_key(&path).unwrap();
        assert_eq!(again.open(&token, NOW).unwrap().user, 7);
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
        assert!(load_key(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_raw_32_byte_key_is_key_id_0_and_rotation_keeps_it() {
        let dir = scratch("key-rotate");
        let path = dir.join("secret.key");
        fs::write(&path, [5u8; 32]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let old = load_or_create(&path).unwrap();
        assert_eq!(
            old,
            [FileKey {
                kid: 0,
                key: [5; 32],
                since: None
            }]
        );
        let token = load_key(&path).unwrap().seal(7, 9, NOW, NOW + 10);

        let keys = rotate(&path).unwrap();
        assert_eq!(keys.iter().map(|k| k.kid).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(load_or_create(&path).unwrap(), keys);
        let ring = load_key(&path).unwrap();
        assert_eq!(ring.current_kid(), 1);
        assert_eq!(ring.open(&token, NOW).unwrap().kid, 0);
        let keys = rotate(&path).unwrap();
        assert_eq!(keys.iter().map(|k| k.kid).collect::<Vec<_>>(), [2, 1, 0]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_lines_are_named() {
        let key = "ab".repeat(32);
        for (text, says) in [
            (format!("x {key}\n"), "line 1: the key id"),
            ("0 abc\n".to_string(), "line 1: the key must be"),
            (
                format!("# c\n0 {key}\n0 {key}\n"),
                "line 3: key id 0 appears twice",
            ),
            (format!("0 {key} soon\n"), "unix seconds"),
            ("# only a comment\n".to_string(), "holds no key"),
        ] {
            let err = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let keys = parse(format!("\n 3 {key} 17 \n0 {key}\n").as_bytes()).unwrap();
        assert_eq!(keys[0].since, Some(17));
        assert_eq!(parse(render(&keys).as_bytes()).unwrap(), keys);
    }

    #[test]
    fn notes_say_when_an_old_key_may_go() {
        let k = |kid, since| FileKey {
            kid,
            key: [0; 32],
            since,
        };
        let keys = [k(2, Some(1000)), k(1, Some(500)), k(0, None)];
        let notes = retirement_notes(&keys, 100, 1050);
        assert!(notes[0].contains("token key 1: still opens tokens until unix time 1100"));
        assert!(notes[1].contains("token key 0: no token it sealed is valid"));
        assert_eq!(retirement_notes(&keys[..1], 100, 0).len(), 0);
    }
}
