//! SIGHUP: read again, without a restart, the files an operator replaces
//! while the server runs: the TLS certificate and key (renewed every 60 to
//! 90 days) and the token key file (after `gotalk rotate-key`).
//!
//! The reading (file I/O, PEM parsing, building the rustls configuration)
//! happens on this module's helper thread, never on the event loop; the
//! loop only swaps in what was read ([`Reloaded`]) when woken. Each file
//! is checked the way a start checks it; one that is missing, malformed,
//! shared with others or does not match its pair is refused with a log
//! line naming it, and the one in use stays. New TLS connections get the
//! new certificate; open ones keep the session they have. Tokens are
//! sealed with the new current key from then on; the older keys of the
//! file keep opening the tokens they sealed.

use crate::token::TokenKey;
use crate::token_file;
use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use rustls::ServerConfig;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;

/// The files a reload reads again.
#[derive(Clone, Debug, Default)]
pub struct ReloadFiles {
    /// `--tls-cert` and `--tls-key`, when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The token key file, when the keys come from one (not a `--memory`
    /// server's random key).
    pub token_keys: Option<PathBuf>,
    /// `--token-ttl` in seconds, for the notes on older keys.
    pub token_ttl_secs: u64,
}

/// What a reload read successfully; `None` keeps what is in use.
pub struct Reloaded {
    pub tls: Option<Arc<ServerConfig>>,
    pub token_key: Option<TokenKey>,
}

/// From now on SIGHUP no longer ends the process (its default action):
/// until the signal thread runs, one only sets the returned flag, so a
/// `systemctl reload` during a long start (a schema upgrade) is taken up
/// once the server runs instead of killing it.
pub fn catch_early_sighup() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, flag.clone())?;
    Ok(flag)
}

/// Starts the reload thread. Send `()` on the returned sender to ask for a
/// reload (requests that come while one runs are merged into the next);
/// what it read arrives on the receiver, and the loop is woken.
pub fn start(
    files: ReloadFiles,
    waker: Arc<Waker>,
) -> io::Result<(Sender<()>, Receiver<Reloaded>)> {
    let (ask, asked) = crossbeam_channel::bounded::<()>(1);
    let (tx, rx) = crossbeam_channel::bounded(4);
    thread::Builder::new()
        .name("gotalk-reload".into())
        .spawn(move || {
            for () in asked {
                let reloaded = read(&files);
                if tx.send(reloaded).is_err() {
                    return;
                }
                if let Err(e) = waker.wake() {
                    log::error!("cannot wake the event loop to take up a reload: {e}");
                }
            }
        })?;
    Ok((ask, rx))
}

/// Reads the files again, logging what was taken and what was refused.
pub fn read(files: &ReloadFiles) -> Reloaded {
    let tls = files.tls.as_ref().and_then(|(cert, key)| {
        match crate::tls::load::server_config(cert, key) {
            Ok(config) => {
                log::info!(
                    "SIGHUP: TLS certificate {} read again; new connections get it",
                    cert.display()
                );
                Some(config)
            }
            Err(e) => {
                log::error!("SIGHUP: {e}; the certificate in use stays");
                None
            }
        }
    });
    let token_key = files.token_keys.as_ref().and_then(|path| {
        match token_file::read(path) {
            Ok(keys) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                log::info!(
                    "SIGHUP: token key file {} read again; key {} seals new tokens ({} key(s) open tokens)",
                    path.display(),
                    keys[0].kid,
                    keys.len()
                );
                for note in token_file::retirement_notes(&keys, files.token_ttl_secs, now) {
                    log::info!("{}: {note}", path.display());
                }
                let ring: Vec<_> = keys.iter().map(|k| (k.kid, k.key)).collect();
                Some(TokenKey::from_ring(&ring))
            }
            Err(e) => {
                log::error!(
                    "SIGHUP: token key {}: {e}; the keys in use stay",
                    path.display()
                );
                None
            }
        }
    });
    if files.tls.is_none() && files.token_keys.is_none() {
        log::info!(
            "SIGHUP: nothing to read again (no --tls-cert, and the token key is not a file)"
        );
    }
    Reloaded { tls, token_key }
}
