//! One connection to PostgreSQL that comes back by itself. Each of the
//! store's threads (the writer, the reader) owns a [`Link`]: while the
//! database is unreachable (restarting, a cut network) it holds no client,
//! every request through it fails at once with
//! [`StoreError::Unavailable`], and a new connection is tried after a
//! backoff that starts at [`FIRST_BACKOFF`] and doubles up to
//! [`MAX_BACKOFF`]. An outage is logged once when it starts and once when
//! it ends, not once per request.
//!
//! [`classify`] sorts a failed statement: a deadlock or serialization
//! failure is worth retrying at once, a broken connection is an outage, and
//! anything else is the database refusing the write.

use crate::store::{OpenError, StoreError};
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};
use std::time::{Duration, Instant};

/// The first wait before reconnecting, doubled after each failed attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long opening a connection may take before the attempt fails (a
/// partitioned network answers nothing at all).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Unacknowledged data on the socket for this long means the server is
/// gone: the kernel drops the connection instead of waiting for minutes.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection settings every link uses: `url` plus timeouts that turn
/// a silent network into an error within seconds.
pub fn config(url: &str) -> Result<Config, OpenError> {
    let mut config: Config = url.parse().map_err(|e: postgres::Error| OpenError::Url {
        url: redact(url),
        cause: e.to_string(),
    })?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_user_timeout(TCP_USER_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .application_name("gotalk");
    Ok(config)
}

/// `url` without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Opens a connection.
pub fn connect(config: &Config) -> Result<Client, postgres::Error> {
    config.connect(NoTls)
}

/// What a failed statement means.
#[derive(Debug, PartialEq, Eq)]
pub enum Trouble {
    /// A deadlock or a serialization failure: the transaction was rolled
    /// back and may simply run again.
    Retry,
    /// The connection is broken (or the server is shutting down): an
    /// outage until a new connection is made.
    Lost(String),
    /// The database refused the statement.
    Failed(StoreError),
}

/// Sorts `e`; `closed` says whether the client saw its connection close.
pub fn classify(e: &postgres::Error, closed: bool) -> Trouble {
    let Some(code) = e.code() else {
        // No SQLSTATE: the socket failed, or the connection was closed.
        return Trouble::Lost(e.to_string());
    };
    if closed {
        return Trouble::Lost(e.to_string());
    }
    if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE {
        return Trouble::Retry;
    }
    let class = code.code();
    // 08: connection exception; 57P: the server is shutting down, crashed
    // or cannot take connections yet.
    if class.starts_with("08") || class.starts_with("57P") {
        return Trouble::Lost(e.to_string());
    }
    if *code == SqlState::DISK_FULL {
        return Trouble::Failed(StoreError::DiskFull);
    }
    let text = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |db| db.message().to_string());
    Trouble::Failed(StoreError::Database(text))
}

/// A connection, or the state of getting one back.
pub struct Link {
    config: Config,
    /// Which thread this is, for the log.
    role: &'static str,
    client: Option<Client>,
    /// Incremented at each new connection, so statements prepared on an
    /// older one are prepared again.
    generation: u64,
    backoff: Duration,
    retry_at: Instant,
    /// When the current outage began, if there is one.
    down_since: Option<Instant>,
    /// Why the last attempt failed.
    cause: String,
}

impl Link {
    /// A link over a connection made at start.
    pub fn new(config: Config, role: &'static str, client: Client) -> Link {
        Link {
            config,
            role,
            client: Some(client),
            generation: 1,
            backoff: FIRST_BACKOFF,
            retry_at: Instant::now(),
            down_since: None,
            cause: String::new(),
        }
    }

    /// The connection, reconnecting first if an attempt is due; an error
    /// while there is none.
    pub fn client(&mut self) -> Result<&mut Client, StoreError> {
        self.reconnect_if_due(Instant::now());
        let cause = &self.cause;
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable(cause.clone()))
    }

    /// Which connection [`Link::client`] returns (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_up(&self) -> bool {
        self.client.is_some()
    }

    /// When the next attempt to reconnect is due, during an outage.
    pub fn retry_at(&self) -> Option<Instant> {
        self.client.is_none().then_some(self.retry_at)
    }

    /// Tries to reconnect if there is no connection and the backoff has
    /// passed. Returns whether there is a connection.
    pub fn reconnect_if_due(&mut self, now: Instant) -> bool {
        if self.client.is_some() {
            return true;
        }
        if now < self.retry_at {
            return false;
        }
        match connect(&self.config) {
            Ok(client) => {
                let down = self
                    .down_since
                    .take()
                    .map_or(0, |t| t.elapsed().as_millis());
                log::info!(
                    "store: the {} is connected to the database again (after {down} ms)",
                    self.role
                );
                self.client = Some(client);
                self.generation += 1;
                self.backoff = FIRST_BACKOFF;
                true
            }
            Err(e) => {
                self.cause = e.to_string();
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                log::debug!("store: the {} cannot reconnect yet: {e}", self.role);
                false
            }
        }
    }

    /// The connection broke: drop it and start an outage (logged once).
    pub fn lost(&mut self, cause: String) {
        self.client = None;
        if self.down_since.is_none() {
            log::error!(
                "store: the {}'s database connection is lost ({cause}); requests that need \
                 it are answered unavailable until it is back; reconnecting",
                self.role
            );
            self.down_since = Some(Instant::now());
            self.backoff = FIRST_BACKOFF;
            self.retry_at = Instant::now();
        }
        self.cause = cause;
    }

    /// Handles a failed statement: a broken connection starts an outage.
    /// Returns what it means.
    pub fn failed(&mut self, e: &postgres::Error) -> Trouble {
        let closed = self.client.as_ref().is_none_or(Client::is_closed);
        let trouble = classify(e, closed);
        if let Trouble::Lost(cause) = &trouble {
            self.lost(cause.clone());
        }
        trouble
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("postgres://gotalk:hunter2hunter2@db:5432/gotalk"),
            "postgres://gotalk:***@db:5432/gotalk"
        );
        assert_eq!(
            redact("postgres://gotalk@db/gotalk"),
            "postgres://gotalk@db/gotalk"
        );
        assert_eq!(redact("host=db user=gotalk"), "host=db user=gotalk");
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        let err = config("postgres://u:sekrit-password@db:notaport/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("sekrit"), "{err}");
    }
}
