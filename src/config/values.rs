//! The value parsers of the flag table: each turns one flag's text (from
//! the command line or its `GOTALK_*` variable) into its type, or says
//! what is wrong with it. No I/O: a host name in `--listen` is checked for
//! its form here and resolved at start (`main.rs`).

use crate::cidr::Cidr;
use crate::logging::LogFormat;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Why one flag's value was refused; clap prints it after the flag's name
/// (`invalid value '0' for '--hash-threads <N>': ...`).
#[derive(Debug, thiserror::Error)]
pub enum BadValue {
    #[error("'{0}' is not a whole number >= {1}")]
    Number(String, u64),
    #[error("'{0}' is not an ADDR:PORT like 127.0.0.1:9000")]
    Address(String),
    #[error("'{0}' is not a host name like chat.example.com (no port, no scheme)")]
    HostName(String),
    #[error("{0}")]
    Cidr(#[from] crate::cidr::BadCidr),
    #[error("'{0}' is not text or json")]
    LogFormat(String),
    #[error("'{0}' is not one of error, warn, info, debug, trace")]
    LogLevel(String),
}

/// A whole number of at least `MIN`.
pub fn at_least<const MIN: u64>(text: &str) -> Result<u64, BadValue> {
    match text.parse::<u64>() {
        Ok(n) if n >= MIN => Ok(n),
        _ => Err(BadValue::Number(text.to_string(), MIN)),
    }
}

/// A count (of bytes, entries, threads) of at least `MIN`.
pub fn count<const MIN: u64>(text: &str) -> Result<usize, BadValue> {
    let n = at_least::<MIN>(text)?;
    usize::try_from(n).map_err(|_| BadValue::Number(text.to_string(), MIN))
}

/// Whole seconds, at least one.
pub fn seconds(text: &str) -> Result<Duration, BadValue> {
    at_least::<1>(text).map(Duration::from_secs)
}

/// An `ADDR:PORT`, or a `NAME:PORT` (`localhost:9000`) that is resolved at
/// start, where the first address the name resolves to is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPort {
    Addr(SocketAddr),
    Name(String),
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPort::Addr(addr) => write!(f, "{addr}"),
            HostPort::Name(text) => f.write_str(text),
        }
    }
}

impl HostPort {
    /// The host part of a name (what a failed resolution names).
    pub fn host(&self) -> String {
        match self {
            HostPort::Addr(addr) => addr.ip().to_string(),
            HostPort::Name(text) => text
                .rsplit_once(':')
                .map_or(text.as_str(), |(h, _)| h)
                .to_string(),
        }
    }
}

/// Parses the form of an `ADDR:PORT` or `NAME:PORT`.
pub fn host_port(text: &str) -> Result<HostPort, BadValue> {
    if let Ok(addr) = text.parse() {
        return Ok(HostPort::Addr(addr));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(HostPort::Name(text.to_string()))
        }
        _ => Err(BadValue::Address(text.to_string())),
    }
}

/// A DNS name for `--http-host`: letters, digits, `-` and `.`, no port;
/// kept in lowercase, without a trailing dot, as `Host` is compared.
pub fn host_name(text: &str) -> Result<String, BadValue> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(name)
    } else {
        Err(BadValue::HostName(text.to_string()))
    }
}

/// One `--trusted-proxies` value: blocks separated by commas (empty ones
/// skipped, each trimmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrList(pub Vec<Cidr>);

pub fn cidr_list(text: &str) -> Result<CidrList, BadValue> {
    let blocks = text.split(',').filter(|b| !b.is_empty());
    let cidrs: Result<Vec<Cidr>, _> = blocks.map(|b| Cidr::parse(b.trim())).collect();
    Ok(CidrList(cidrs?))
}

pub fn log_format(text: &str) -> Result<LogFormat, BadValue> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(BadValue::LogFormat(other.to_string())),
    }
}

pub fn log_level(text: &str) -> Result<log::LevelFilter, BadValue> {
    text.parse()
        .map_err(|_| BadValue::LogLevel(text.to_string()))
}
