//! Reads `--tls-cert` (PEM, the server's certificate first, then any
//! intermediates) and `--tls-key` (PEM: PKCS#8, PKCS#1 or SEC1) into the
//! rustls configuration every TLS connection shares. Uses the `ring`
//! provider, TLS 1.2 and 1.3, no client certificates. A key file its
//! group or others may read or write is refused, as the token key file is.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::Path;
use std::sync::Arc;

/// The server's TLS configuration, or a message naming the file at fault.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no PEM certificate (\"BEGIN CERTIFICATE\") in the file",
            cert.display()
        ));
    }
    refuse_if_shared(key)?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            format!(
                "--tls-cert {} and --tls-key {} do not make a usable pair: {e}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Arc::new(config))
}

/// Refuses a private key its group or others may read or write: anyone
/// who reads it can pose as this server.
fn refuse_if_shared(key: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key)
            .map_err(|e| format!("--tls-key {}: {e}", key.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "--tls-key {}: is readable or writable by others (mode {mode:o}); anyone who \
                 can read it can pose as this server. Make it private with: chmod 600 {}",
                key.display(),
                key.display()
            ));
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
            let err = refuse_if_shared(&key).unwrap_err();
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
