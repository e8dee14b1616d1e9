//! `gotalk gen-cert`: a self-signed certificate and its key, written into
//! the data directory, for trying TLS locally (clients must be told to
//! trust the certificate: `curl --cacert`, `openssl s_client -CAfile`, the
//! Python client's `--cafile`). For a server others use, get a certificate
//! from a certificate authority instead.
//!
//! The key file is created exclusively with mode 0600, so it is never
//! readable by others, not even for a moment; existing files are kept
//! unless `--force` is given.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What `gotalk gen-cert` was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenCert {
    /// Names and addresses the certificate is valid for.
    pub hosts: Vec<String>,
    /// Where the files go (the server's `--data` directory).
    pub dir: PathBuf,
    /// Replace existing files.
    pub force: bool,
}

/// The certificate's file name in the directory.
pub const CERT_FILE: &str = "tls-cert.pem";
/// The key's file name in the directory.
pub const KEY_FILE: &str = "tls-key.pem";

/// Names used when none is given.
pub const DEFAULT_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why no pair was written.
#[derive(Debug, thiserror::Error)]
pub enum GenCertError {
    #[error(
        "{} exists; keeping it (give --force to replace the certificate and key)",
        .0.display()
    )]
    Exists(PathBuf),
    #[error("cannot make a certificate for {hosts:?}: {source}")]
    Generate {
        hosts: Vec<String>,
        source: rcgen::Error,
    },
    #[error("cannot {what} {}: {source}", .path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `what` failed on `path`.
fn file_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> GenCertError {
    let path = path.to_path_buf();
    move |source| GenCertError::File { what, path, source }
}

/// Writes the pair; returns what to tell the user.
pub fn run(request: &GenCert) -> Result<String, GenCertError> {
    let cert_path = request.dir.join(CERT_FILE);
    let key_path = request.dir.join(KEY_FILE);
    if !request.force {
        for path in [&cert_path, &key_path] {
            if path.exists() {
                return Err(GenCertError::Exists(path.clone()));
            }
        }
    }
    let generated =
        rcgen::generate_simple_self_signed(request.hosts.clone()).map_err(|source| {
            GenCertError::Generate {
                hosts: request.hosts.clone(),
                source,
            }
        })?;
    std::fs::create_dir_all(&request.dir).map_err(file_error("create", &request.dir))?;
    write_new(
        &key_path,
        generated.key_pair.serialize_pem().as_bytes(),
        0o600,
        request.force,
    )?;
    write_new(
        &cert_path,
        generated.cert.pem().as_bytes(),
        0o644,
        request.force,
    )?;
    let (cert, key) = (cert_path.display(), key_path.display());
    Ok(format!(
        "wrote a self-signed certificate for {hosts} to {cert}
and its key to {key} (readable by you only).

Start the server with:
  gotalk --tls-cert {cert} --tls-key {key}

Clients must trust the certificate, for example:
  curl --cacert {cert} https://localhost:9000/healthz
  openssl s_client -quiet -connect 127.0.0.1:9000 -CAfile {cert}
  python3 clients/python/gotalk_client.py chat --tls --cafile {cert} --server localhost:9000 --user alice
",
        hosts = request.hosts.join(", "),
    ))
}

/// Creates `path` exclusively with `mode` (after removing an old one when
/// replacing) and writes `contents`.
fn write_new(path: &Path, contents: &[u8], mode: u32, replace: bool) -> Result<(), GenCertError> {
    if replace {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error("replace", path)(e)),
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(file_error("create", path))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(file_error("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gotalk-gen-cert-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn writes_a_loadable_pair_with_a_private_key_and_refuses_to_overwrite() {
        let dir = scratch_dir("pair");
        let request = GenCert {
            hosts: vec!["localhost".into(), "127.0.0.1".into()],
            dir: dir.clone(),
            force: false,
        };
        let said = run(&request).unwrap();
        assert!(said.contains("--tls-cert"), "{said}");
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        crate::tls::load::server_config(&dir.join(CERT_FILE), &dir.join(KEY_FILE)).unwrap();
        let again = run(&request).unwrap_err().to_string();
        assert!(again.contains("--force"), "{again}");
        let forced = GenCert {
            force: true,
            ..request
        };
        run(&forced).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
