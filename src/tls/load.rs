//! Reads `--tls-cert` (PEM, the server's certificate first, then any
//! intermediates) and `--tls-key` (PEM: PKCS#8, PKCS#1 or SEC1) into the
//! rustls configuration every TLS connection shares. Uses the `ring`
//! provider, TLS 1.2 and 1.3, no client certificates. A key file its
//! group or others may read or write is refused, as the token key file is.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the certificate and key cannot serve; each names the file at
/// fault and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsLoadError {
    #[error("--tls-cert {}: {source}", .path.display())]
    Cert {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("--tls-cert {}: no PEM certificate (\"BEGIN CERTIFICATE\") in the file", .0.display())]
    NoCert(PathBuf),
    #[error("--tls-key {}: {source}", .path.display())]
    Key {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("--tls-key {}: {source}", .path.display())]
    KeyMetadata { path: PathBuf, source: io::Error },
    #[error(
        "--tls-key {}: is readable or writable by others (mode {mode:o}); anyone who \
         can read it can pose as this server. Make it private with: chmod 600 {}",
        .path.display(),
        .path.display()
    )]
    KeyShared { path: PathBuf, mode: u32 },
    #[error("TLS: {0}")]
    Protocols(rustls::Error),
    #[error(
        "--tls-cert {} and --tls-key {} do not make a usable pair: {source}",
        .cert.display(),
        .key.display()
    )]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The server's TLS configuration, or why not, naming the file at fault.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsLoadError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsLoadError::Cert {
            path: cert.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsLoadError::NoCert(cert.to_path_buf()));
    }
    refuse_if_shared(key)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsLoadError::Key {
        path: key.to_path_buf(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsLoadError::Protocols)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|source| TlsLoadError::Pair {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    Ok(Arc::new(config))
}

/// Refuses a private key its group or others may read or write: anyone
/// who reads it can pose as this server.
fn refuse_if_shared(key: &Path) -> Result<(), TlsLoadError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key)
            .map_err(|source| TlsLoadError::KeyMetadata {
                path: key.to_path_buf(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(TlsLoadError::KeyShared {
                path: key.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_others_may_read_is_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("gotalk-tls-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.pem");
        std::fs::write(&key, b"not read").unwrap();
        for mode in [0o644, 0o640, 0o666, 0o604, 0o620] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = refuse_if_shared(&key).unwrap_err().to_string();
            assert!(err.contains(&format!("mode {mode:o}")), "{err}");
            assert!(err.contains("chmod 600"), "{err}");
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            refuse_if_shared(&key).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
