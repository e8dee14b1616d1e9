//! `Config`: every setting the server starts with, as the rest of the
//! crate reads it (resolved addresses, durations, counts). It is made from
//! the flag table in `mod.rs` and checked in `checks.rs`; its defaults are
//! the table's (`Config::default()`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the server needs to know to start; no I/O happens here.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the one port (line protocol and HTTP) listens on.
    pub listen: SocketAddr,
    /// Names (lowercase, no port) an HTTP request's `Host` may carry
    /// besides the ones the listen address implies (`--http-host`).
    pub http_hosts: Vec<String>,
    /// Directory of the durable state.
    pub data_dir: PathBuf,
    /// Keep nothing on disk.
    pub memory: bool,
    /// Keep the durable state in this PostgreSQL database instead of the
    /// SQLite file in `data_dir` (`--postgres URL`).
    pub postgres: Option<String>,
    /// This node's name among the nodes sharing one PostgreSQL database
    /// (`--node-id NAME`); generated and logged at start when not given.
    pub node_id: Option<String>,
    /// Bytes of disk set aside in the data directory (`gotalk.reserve`)
    /// and released when the disk fills, so ACKs can still free space.
    pub disk_reserve: u64,
    /// Where the token key lives; default `<data>/secret.key`.
    pub key_file: Option<PathBuf>,
    /// How long a LOGIN token stays valid.
    pub token_ttl: Duration,
    /// Longest request line (line protocol) in bytes, newline excluded.
    pub max_line: usize,
    /// Output queued for one connection past which it is closed as a slow
    /// consumer (its messages stay in the mailbox).
    pub max_output: usize,
    /// Unacknowledged messages one mailbox may hold before SEND to it is
    /// refused with `rate_limited`.
    pub mailbox_limit: usize,
    /// Bytes of unacknowledged messages (as stored: their JSON) one mailbox
    /// may hold, SENDs in flight included, before SEND to it is refused.
    pub mailbox_bytes: usize,
    /// Bytes of unacknowledged messages held in memory across all mailboxes,
    /// SENDs in flight included, before any SEND is refused.
    pub pending_bytes: usize,
    /// `client_id`s remembered per sender (the newest ones; each for at most
    /// 24 hours).
    pub client_ids_per_sender: usize,
    /// Accounts held in RAM (a cache; logged-in users' accounts are always
    /// held besides), and idle mailboxes whose figures are kept.
    pub account_cache: usize,
    /// Most messages, and bytes, of an active user's mailbox held in RAM;
    /// the rest is read from the store in id order as it drains.
    pub mailbox_window: usize,
    pub mailbox_window_bytes: usize,
    /// Long-polls (SYNC with `wait_ms`) waiting at once for one user.
    pub waiters_per_user: usize,
    /// Line connections bound to one user at once (by LOGIN or AUTH).
    pub conns_per_user: usize,
    /// Password-hashing worker threads.
    pub hash_threads: usize,
    /// Password checks (LOGIN, REGISTER) waiting for a worker, from all
    /// addresses together; past it they are refused with `rate_limited`.
    pub hash_queue: usize,
    /// Password checks waiting from one peer address (IPv6: one /64);
    /// addresses take turns, so one cannot hold up the others.
    pub hash_queue_per_address: usize,
    /// Failed LOGINs one username takes a minute from addresses that have
    /// not logged in to it lately (and each that has, on its own), after
    /// `login_failure_burst` at once; more are `rate_limited`.
    pub login_failures_per_minute: u64,
    /// Failed LOGINs a username (twice as many for an address) takes at
    /// once before the per-minute rates apply.
    pub login_failure_burst: u64,
    /// Failed LOGINs one peer address (IPv6: one /64) makes a minute,
    /// whatever usernames it tries.
    pub login_failures_per_address_minute: u64,
    /// REGISTERs one peer address makes an hour (that many at once).
    pub registers_per_address_hour: u64,
    /// Entries each throttle table (usernames, login addresses, register
    /// addresses) holds at most.
    pub throttle_entries: usize,
    /// Name→id lookups (LOOKUP, `/getuseridbyname`, a SEND to a name
    /// that does not exist) one peer address (IPv6: one /64) makes a
    /// minute, that many at once; more are `rate_limited`.
    pub lookups_per_address_minute: u64,
    /// LOGINs of one username an hour that an address which has not tried
    /// it before gets of its own once the username's shared bucket is
    /// empty (that many at once), so guesses from many addresses cannot
    /// lock the owner out of a new address. 0: none (the shared bucket
    /// alone; the owner may then be locked out of new addresses).
    pub login_tries_per_new_address_hour: u64,
    /// Most simultaneous connections; more are accepted, told why, and
    /// closed. 0 means "derive it from the open-file limit".
    pub max_connections: usize,
    /// Most simultaneous connections from one peer address.
    pub max_connections_per_address: usize,
    /// Output queued for all connections together past which the ones
    /// holding the most unread output are closed.
    pub max_output_total: usize,
    /// A line connection must log in (LOGIN or AUTH) within this; a new
    /// connection must say which door it speaks within it too.
    pub login_timeout: Duration,
    /// An HTTP request (and a first line still being sniffed) must arrive
    /// whole within this from its first byte.
    pub request_timeout: Duration,
    /// An HTTP connection with no request in progress is closed after this.
    pub http_idle_timeout: Duration,
    /// Log level name for `log` (error, warn, info, debug, trace).
    pub log_level: log::LevelFilter,
    /// Plain lines or JSON objects.
    pub log_format: crate::logging::LogFormat,
    /// Where the metrics listener serves `GET /stats`; off when `None`.
    pub metrics: Option<SocketAddr>,
    /// How long a graceful shutdown may take before the rest is cut off.
    pub shutdown_timeout: Duration,
    /// The certificate chain (PEM) that turns TLS on, with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Take plain connections even with TLS on, and listen on a public
    /// address without TLS (a TLS-terminating proxy in front).
    pub allow_plaintext: bool,
    /// A TLS handshake must finish within this from the connection's start.
    pub tls_handshake_timeout: Duration,
    /// Peers whose PROXY header (and, for HTTP, `X-Forwarded-For`) name
    /// the client that every budget, throttle and log line then uses.
    pub trusted_proxies: Vec<crate::cidr::Cidr>,
    /// A trusted peer must open with a PROXY header.
    pub proxy_protocol: bool,
    /// TLS handshakes each client address may start per second (0: no
    /// limit), and how many at once past that rate.
    pub tls_handshakes_per_address_second: u64,
    pub tls_handshake_burst: u64,
    /// Bytes of unacknowledged messages one sender may have in custody
    /// across all receivers, SENDs in flight included, before its SENDs are
    /// refused (so one account cannot fill `pending_bytes` for everyone).
    pub pending_bytes_per_sender: usize,
    /// Unacknowledged messages older than this leave custody unread;
    /// `None`: they wait for their ACK however long it takes.
    pub message_ttl: Option<Duration>,
    /// Tokens one account may have revoked one by one (LOGOUT) at once,
    /// each remembered until it would have expired; a LOGOUT past it ends
    /// every session of the account instead (as `LOGOUT all` does).
    pub revocations_per_account: usize,
    /// Successful LOGINs one account takes a minute (that many at once);
    /// more are `rate_limited`.
    pub logins_per_account_minute: u64,
    /// Fair shares: send and fan-out rates per account, read rate per
    /// connection, new connections per address.
    pub shares: Shares,
    // history (issue 18)
    /// Whether conversations are kept after ACK (`--no-history`: not).
    pub history: bool,
    /// Messages leave history this long after they were sent (`None`: never).
    pub history_retention: Option<Duration>,
    /// With `--memory`: most bytes the conversations hold in RAM.
    pub history_memory_bytes: usize,
    // admin
    /// The admin socket's path (`--admin-socket`), if one is opened.
    pub admin_socket: Option<PathBuf>,
    // WebSocket door
    /// A logged-in WebSocket connection silent this long is pinged, and
    /// closed after as long again without a word (`Duration::ZERO`: off).
    pub ws_ping_interval: Duration,
    /// `GET /ws` is refused (404): no WebSocket door.
    pub no_websocket: bool,
}

/// The fair-share rates (0: no limit). See `docs/operating.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    /// SENDs per second per account (all its connections and doors), and
    /// how many at once.
    pub sends_per_second: u64,
    pub send_burst: u64,
    /// Users an account may message for the first time in an hour.
    pub new_recipients_per_hour: u64,
    /// Bytes per second read from one connection, and how many at once.
    pub read_bytes_per_second: u64,
    pub read_burst: u64,
    /// New connections per second per address (IPv6: /64), and how many
    /// at once.
    pub connections_per_address_per_second: u64,
    pub connections_per_address_burst: u64,
    /// Closes at accept within a second that have an address's new
    /// connections dropped by the kernel (0: never), and for how long.
    pub connection_storm_cuts: u64,
    pub connection_storm_block_seconds: u64,
}

impl std::fmt::Display for Shares {
    /// The start line's words for the rates (`0`: off).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = |n: u64, unit: &str, burst: u64| match n {
            0 => "off".to_string(),
            n => format!("{n} {unit} (burst {burst})"),
        };
        write!(
            f,
            "sends {} per account, new recipients {} per account, reads {} per connection, \
             new connections {} per address, {}",
            rate(self.sends_per_second, "a second", self.send_burst),
            match self.new_recipients_per_hour {
                0 => "off".to_string(),
                n => format!("{n} an hour"),
            },
            rate(
                self.read_bytes_per_second,
                "bytes a second",
                self.read_burst
            ),
            rate(
                self.connections_per_address_per_second,
                "a second",
                self.connections_per_address_burst
            ),
            match self.connection_storm_cuts {
                0 => "connection storms closed at accept only".to_string(),
                n => format!(
                    "connection storms ({n} closed in a second) dropped by the kernel for {} s",
                    self.connection_storm_block_seconds
                ),
            },
        )
    }
}
