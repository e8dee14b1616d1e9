//! Checks across flags, made once every flag has its value: settings that
//! exclude each other, need each other, or (a public address without TLS)
//! would put passwords on the network in clear text. Each refusal says
//! which flags to give instead; `main.rs` prints it and exits with 2.

use super::settings::Config;
use std::net::SocketAddr;

/// Why the flags, each valid alone, cannot run together.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--memory keeps nothing on disk, so --data has no use with it; give one or the other")]
    MemoryWithData,
    #[error("--memory keeps nothing, so --postgres has no use with it; give one or the other")]
    MemoryWithPostgres,
    #[error("--node-id names a node sharing a --postgres database; give --postgres too")]
    NodeIdWithoutPostgres,
    /// Checked in `main.rs`, by the store's rule for a node id.
    #[error("--node-id '{0}': use 1 to 40 letters, digits, '-' and '_'")]
    BadNodeId(String),
    #[error("rotate-key changes a key file; --memory has none")]
    RotateKeyInMemory,
    #[error("--tls-cert needs --tls-key (its private key)")]
    CertWithoutKey,
    #[error("--tls-key needs --tls-cert (the certificate)")]
    KeyWithoutCert,
    #[error(
        "--listen {0}: not a loopback address, and TLS is off, so passwords and tokens \
         would cross the network in clear text. Give a certificate with --tls-cert FILE \
         --tls-key FILE (to try it: gotalk gen-cert --host NAME, then the flags it \
         prints; see docs/tls.md), or, behind a TLS-terminating proxy, --allow-plaintext"
    )]
    PlaintextInPublic(SocketAddr),
    #[error("--proxy-protocol needs --trusted-proxies: the proxies whose header is believed")]
    ProxyProtocolWithoutProxies,
    #[error("{flag}: cannot resolve '{host}': {source}")]
    Resolve {
        flag: &'static str,
        host: String,
        source: std::io::Error,
    },
    #[error("{flag}: '{host}' resolves to no address")]
    NoAddress { flag: &'static str, host: String },
}

/// Checks that apply to every use of the flags (the server and
/// `rotate-key`); `data_given`: `--data` was given, not defaulted.
pub fn storage(config: &Config, data_given: bool) -> Result<(), ConfigError> {
    if config.memory && data_given {
        return Err(ConfigError::MemoryWithData);
    }
    if config.node_id.is_some() && config.postgres.is_none() {
        return Err(ConfigError::NodeIdWithoutPostgres);
    }
    if config.memory && config.postgres.is_some() {
        return Err(ConfigError::MemoryWithPostgres);
    }
    Ok(())
}

/// Checks for running the server.
pub fn server(config: &Config) -> Result<(), ConfigError> {
    tls(config)?;
    if config.proxy_protocol && config.trusted_proxies.is_empty() {
        return Err(ConfigError::ProxyProtocolWithoutProxies);
    }
    Ok(())
}

/// TLS needs both files; a non-loopback address needs TLS unless a proxy
/// in front of the server does it (`--allow-plaintext`).
fn tls(config: &Config) -> Result<(), ConfigError> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(_), None) => return Err(ConfigError::CertWithoutKey),
        (None, Some(_)) => return Err(ConfigError::KeyWithoutCert),
        _ => {}
    }
    if config.tls_cert.is_none() && !config.allow_plaintext && !config.listen.ip().is_loopback() {
        return Err(ConfigError::PlaintextInPublic(config.listen));
    }
    Ok(())
}
