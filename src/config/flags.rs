//! The flag table, part one: the command line (`gotalk`, `gotalk
//! rotate-key`, `gotalk gen-cert`) and the settings of the network,
//! storage, timeouts, TLS and logging, grouped in `--help` by concern.
//! Each setting is declared once: its flag, its `GOTALK_*` variable, its
//! type and value parser, its default and its help; the budgets and
//! throttles are in `budgets.rs`. A flag given on the command line wins
//! over its variable. `mod.rs` turns the parsed table into a `Config`.

use super::budgets::{Limits, Throttles};
use super::values::{self, CidrList, HostPort};
use crate::logging::LogFormat;
use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Default of `--disk-reserve`: bytes set aside so ACK works on a full disk.
pub const DEFAULT_DISK_RESERVE: u64 = 8 << 20;
/// Default of `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
/// Default of `--data` (and of `gen-cert --data`).
pub const DEFAULT_DATA_DIR: &str = "./gotalk-data";

/// The whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "gotalk",
    version,
    about = "gotalk: instant-messaging server (line protocol and HTTP on one port)",
    after_help = "Every flag may also be set by its GOTALK_* variable (e.g. GOTALK_LISTEN); \
                  a flag on the command line wins over its variable. See docs/operating.md.",
    args_conflicts_with_subcommands = true,
    // As before clap: a flag given twice takes its last value (a repeatable
    // one, like --http-host, collects them all).
    args_override_self = true,
    disable_help_subcommand = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Sub>,
    #[command(flatten)]
    pub flags: Flags,
}

/// What to do instead of running the server.
#[derive(Subcommand, Debug)]
pub enum Sub {
    /// Add a new current token key to the key file, keep the older ones and
    /// say when each may be removed (see docs/operating.md); restart gotalk
    /// to use it. Reads --data or --key-file, and --token-ttl.
    RotateKey(Box<Flags>),
    /// Write a self-signed TLS certificate and key for trying TLS locally.
    ///
    /// Writes a self-signed certificate (DIR/tls-cert.pem) and its key
    /// (DIR/tls-key.pem, mode 0600) for trying TLS locally, and prints the
    /// flags to start the server with. Clients must be told to trust the
    /// certificate.
    GenCert(GenCertArgs),
}

/// `gotalk gen-cert`.
#[derive(Args, Debug)]
pub struct GenCertArgs {
    /// Names and IP addresses the certificate is valid for; several may
    /// follow one --host, and --host may repeat (default localhost 127.0.0.1 ::1)
    #[arg(long = "host", value_name = "NAME", num_args = 1..)]
    pub hosts: Vec<String>,
    /// Where the files go
    #[arg(long = "data", value_name = "DIR", env = "GOTALK_DATA", default_value = DEFAULT_DATA_DIR)]
    pub dir: PathBuf,
    /// Replace existing files
    #[arg(long)]
    pub force: bool,
}

/// Every setting of the server, by concern.
#[derive(Args, Debug, Clone)]
pub struct Flags {
    #[command(flatten)]
    pub network: Network,
    #[command(flatten)]
    pub storage: Storage,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub throttles: Throttles,
    #[command(flatten)]
    pub timeouts: Timeouts,
    #[command(flatten)]
    pub tls: Tls,
    #[command(flatten)]
    pub logging: Logging,
    // WebSocket door (`GET /ws`).
    #[command(flatten)]
    pub websocket: WebSocket,
    /// Which settings were given (flag or variable) rather than defaulted;
    /// filled in from clap's matches (`mod.rs`).
    #[arg(skip)]
    pub given: Given,
}

/// Settings whose meaning depends on whether they were given at all.
#[derive(Clone, Copy, Debug, Default)]
pub struct Given {
    pub data: bool,
    pub pending_bytes_per_sender: bool,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Network")]
pub struct Network {
    /// Address to listen on, line protocol and HTTP on one port; a name
    /// (localhost:9000) is resolved at start
    #[arg(long, env = "GOTALK_LISTEN", value_name = "ADDR:PORT",
          default_value = DEFAULT_LISTEN, value_parser = values::host_port)]
    pub listen: HostPort,
    /// A name browsers reach the server by (repeatable; its variable holds
    /// one); an HTTP request whose Host is not one of these names, an IP
    /// address the server listens on, or (listening on loopback or all
    /// addresses) localhost is refused with 421 (default: none)
    #[arg(long = "http-host", env = "GOTALK_HTTP_HOST", value_name = "NAME",
          value_parser = values::host_name)]
    pub http_hosts: Vec<String>,
    /// Serve the server's figures as JSON at GET /stats on this separate
    /// address (bind it to loopback or a private address; it answers a Host
    /// that is loopback, its address or an --http-host) (default off)
    #[arg(long, env = "GOTALK_METRICS", value_name = "ADDR:PORT",
          value_parser = values::host_port)]
    pub metrics: Option<HostPort>,
    /// Simultaneous connections; more are told why and closed (default: the
    /// open-file limit, raised to its hard limit at start, less 64)
    #[arg(long, env = "GOTALK_MAX_CONNECTIONS", value_name = "N",
          value_parser = values::count::<1>)]
    pub max_connections: Option<usize>,
    /// Simultaneous connections from one address (IPv6: one /64)
    #[arg(long, env = "GOTALK_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N",
          default_value = "256", value_parser = values::count::<1>)]
    pub max_connections_per_address: usize,
    /// Proxies in front of the server (10.0.0.0/8, 2001:db8::/32, or one
    /// address): their PROXY protocol header, and for HTTP the last
    /// X-Forwarded-For hop, name the client whose address every budget,
    /// throttle and log line uses; a PROXY header from any other peer is
    /// refused (default none)
    #[arg(long, env = "GOTALK_TRUSTED_PROXIES", value_name = "CIDR,...",
          value_parser = values::cidr_list)]
    pub trusted_proxies: Vec<CidrList>,
    /// A trusted proxy must open every connection with a PROXY protocol
    /// header (v1 or v2); one without it is closed
    #[arg(long, env = "GOTALK_PROXY_PROTOCOL", value_parser = FalseyValueParser::new())]
    pub proxy_protocol: bool,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Storage and tokens")]
pub struct Storage {
    /// Directory for durable state
    #[arg(long = "data", env = "GOTALK_DATA", value_name = "DIR",
          default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Keep nothing on disk (tests, benchmarks)
    #[arg(long, env = "GOTALK_MEMORY", value_parser = FalseyValueParser::new())]
    pub memory: bool,
    /// Keep the durable state in PostgreSQL instead of DIR/gotalk.db, e.g.
    /// postgres://gotalk@127.0.0.1/gotalk; the token key stays a file
    /// (--key-file): every node sharing the database must be given the same
    /// one (default off)
    #[arg(long, env = "GOTALK_POSTGRES", value_name = "URL")]
    pub postgres: Option<String>,
    /// This node's name among the nodes on one --postgres database: 1 to 40
    /// letters, digits, '-' and '_', unique per node (default: generated at
    /// each start and logged); see docs/cluster.md
    #[arg(long, env = "GOTALK_NODE_ID", value_name = "NAME")]
    pub node_id: Option<String>,
    /// Disk space set aside in DIR and released when the disk fills, so ACK
    /// still works; 0 for none
    #[arg(long, env = "GOTALK_DISK_RESERVE", value_name = "BYTES",
          default_value_t = DEFAULT_DISK_RESERVE, value_parser = values::at_least::<0>)]
    pub disk_reserve: u64,
    /// Token key file: the current key and older ones (default
    /// DIR/secret.key; a fresh random key per run with --memory)
    #[arg(long, env = "GOTALK_KEY_FILE", value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// How long a login token is valid
    #[arg(long, env = "GOTALK_TOKEN_TTL", value_name = "SECONDS",
          default_value = "604800", value_parser = values::seconds)]
    pub token_ttl: Duration,
    /// Unacknowledged messages older than this are deleted unread, freeing
    /// their receiver's and sender's budgets (default off: kept until
    /// acknowledged)
    #[arg(long, env = "GOTALK_MESSAGE_TTL", value_name = "SECONDS",
          value_parser = values::seconds)]
    pub message_ttl: Option<Duration>,
    // history (issue 18): conversations kept after ACK, and for how long
    /// Messages leave their conversation's history this many days after
    /// they were sent; 0 keeps them until deleted
    #[arg(long, env = "GOTALK_HISTORY_DAYS", value_name = "DAYS",
          default_value = "0", value_parser = values::at_least::<0>)]
    pub history_days: u64,
    /// The same retention in seconds, for tests (default off; overrides
    /// --history-days)
    #[arg(long, env = "GOTALK_HISTORY_SECONDS", value_name = "SECONDS",
          value_parser = values::at_least::<1>)]
    pub history_seconds: Option<u64>,
    /// Keep no history: a message is gone once acknowledged, and HISTORY,
    /// READ and CONVERSATIONS are refused (the behaviour before history)
    #[arg(long, env = "GOTALK_NO_HISTORY", value_parser = FalseyValueParser::new())]
    pub no_history: bool,
    /// With --memory: most bytes of messages the conversations hold in RAM;
    /// past it the oldest go first
    #[arg(long, env = "GOTALK_HISTORY_MEMORY_BYTES", value_name = "BYTES",
          default_value = "67108864", value_parser = values::at_least::<0>)]
    pub history_memory_bytes: u64,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Timeouts")]
pub struct Timeouts {
    /// A line connection that has not logged in (LOGIN or AUTH) within this
    /// is closed
    #[arg(long, env = "GOTALK_LOGIN_TIMEOUT", value_name = "SECONDS",
          default_value = "60", value_parser = values::seconds)]
    pub login_timeout: Duration,
    /// An HTTP request must arrive whole within this
    #[arg(long, env = "GOTALK_REQUEST_TIMEOUT", value_name = "SECONDS",
          default_value = "10", value_parser = values::seconds)]
    pub request_timeout: Duration,
    /// An HTTP keep-alive connection with no request in progress is closed
    /// after this
    #[arg(long, env = "GOTALK_HTTP_IDLE_TIMEOUT", value_name = "SECONDS",
          default_value = "60", value_parser = values::seconds)]
    pub http_idle_timeout: Duration,
    /// On SIGTERM or SIGINT, how long to finish the requests already read
    /// before closing what is left; a second signal exits at once
    #[arg(long, env = "GOTALK_SHUTDOWN_TIMEOUT", value_name = "SECONDS",
          default_value = "10", value_parser = values::seconds)]
    pub shutdown_timeout: Duration,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "TLS")]
pub struct Tls {
    /// Certificate chain (PEM) for TLS on the port, both doors; with
    /// --tls-key (default off)
    #[arg(long, env = "GOTALK_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM) (default off)
    #[arg(long, env = "GOTALK_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// A TLS handshake must finish within this
    #[arg(long, env = "GOTALK_TLS_HANDSHAKE_TIMEOUT", value_name = "SECONDS",
          default_value = "10", value_parser = values::seconds)]
    pub tls_handshake_timeout: Duration,
    /// With TLS on: take plain connections too; without it: listen on a
    /// non-loopback address anyway (a TLS-terminating proxy in front)
    #[arg(long, env = "GOTALK_ALLOW_PLAINTEXT", value_parser = FalseyValueParser::new())]
    pub allow_plaintext: bool,
    /// TLS handshakes one client address (IPv6: its /64) may start per
    /// second; past it the connection is closed at once; 0 for no limit
    #[arg(long, env = "GOTALK_TLS_HANDSHAKES_PER_ADDRESS_SECOND", value_name = "N",
          default_value = "20", value_parser = values::at_least::<0>)]
    pub tls_handshakes_per_address_second: u64,
    /// Handshakes an address may start at once before that rate applies
    #[arg(long, env = "GOTALK_TLS_HANDSHAKE_BURST", value_name = "N",
          default_value = "40", value_parser = values::at_least::<1>)]
    pub tls_handshake_burst: u64,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Logging")]
pub struct Logging {
    /// error, warn, info, debug or trace
    #[arg(long, env = "GOTALK_LOG_LEVEL", value_name = "LEVEL",
          default_value = "info", value_parser = values::log_level)]
    pub log_level: log::LevelFilter,
    /// text, or json for one JSON object per line
    #[arg(long, env = "GOTALK_LOG_FORMAT", value_name = "FORMAT",
          default_value = "text", value_parser = values::log_format)]
    pub log_format: LogFormat,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "WebSocket")]
pub struct WebSocket {
    /// A logged-in WebSocket connection the client has sent nothing on for
    /// this long is pinged, and closed if it stays silent for as long
    /// again; 0: no pings (TCP keep-alive still finds vanished peers)
    #[arg(long, env = "GOTALK_WS_PING_INTERVAL", value_name = "SECONDS",
          default_value = "30", value_parser = values::at_least::<0>)]
    pub ws_ping_interval: u64,
    /// Refuse WebSocket upgrades (GET /ws answers 404, so web pages fall
    /// back to long-polling /sync)
    #[arg(long, env = "GOTALK_NO_WEBSOCKET", value_parser = FalseyValueParser::new())]
    pub no_websocket: bool,
}
