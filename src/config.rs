//! Command-line flags and every limit of the server as a named value.
//! Parsing is hand-written: the flag set is small and fixed by the contract,
//! and `--help` must list each flag with its default.

use crate::tls::gen_cert::GenCert;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default of `--disk-reserve`: bytes set aside so ACK works on a full disk.
pub const DEFAULT_DISK_RESERVE: u64 = 8 << 20;

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
}

/// Limits that are not flags: fixed by the contract or by sense.
pub mod limits {
    /// Default and most messages one SYNC returns.
    pub const SYNC_DEFAULT_LIMIT: usize = 100;
    pub const SYNC_MAX_LIMIT: usize = 1000;
    /// A SYNC reply stops adding messages past this many bytes (at least one
    /// message is always returned), so one reply can never blow the output
    /// limit.
    pub const SYNC_MAX_BYTES: usize = 1 << 20;
    /// Longest long-poll a client may ask for.
    pub const MAX_WAIT_MS: u64 = 5 * 60 * 1000;
    /// Longest message content, whichever door it comes through (a line
    /// caps it anyway; this keeps HTTP to the same rule).
    pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
    /// Longest `client_id`.
    pub const MAX_CLIENT_ID_BYTES: usize = 128;
    /// Longest `tag` (its JSON text) a request may carry to be echoed.
    pub const MAX_TAG_BYTES: usize = 256;
    /// How long a `client_id` is remembered.
    pub const CLIENT_ID_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
    /// Longest password accepted (argon2 has no need for more).
    pub const MAX_PASSWORD_BYTES: usize = 1024;
    /// Fewest characters a new password (REGISTER) has, after NIST SP
    /// 800-63B. LOGIN does not check it, so every failed LOGIN looks alike.
    pub const MIN_PASSWORD_CHARS: usize = 8;
    /// Output queued for a connection past which the server stops reading its
    /// requests until the client reads its replies (flow control, no close).
    pub const OUTPUT_PAUSE_BYTES: usize = 256 * 1024;
    /// Bytes read from a socket per read call (one shared scratch buffer).
    pub const READ_CHUNK: usize = 64 * 1024;
    /// Most bytes read from one connection in one loop turn; the rest is
    /// read next turn, so one busy client cannot starve the others.
    pub const READ_BUDGET_PER_TURN: usize = READ_CHUNK;
    /// Most bytes written to one connection in one loop turn.
    pub const WRITE_BUDGET_PER_TURN: usize = 256 * 1024;
    /// Most bytes written to all connections together in one loop turn:
    /// a burst of large pushes is spread over several turns, so the other
    /// clients' requests are read in between.
    pub const TOTAL_WRITE_BUDGET_PER_TURN: usize = 2 << 20;
    /// Most connections accepted in one loop turn; the rest wait in the
    /// backlog for the next turn, so a connection flood cannot make one
    /// turn (and everyone's replies) arbitrarily long.
    pub const ACCEPTS_PER_TURN: usize = 64;
    /// After `accept` fails for want of file descriptors, how long to wait
    /// before trying again.
    pub const ACCEPT_RETRY_MS: u64 = 100;
    /// After the total output budget is exceeded, connections are closed
    /// until this fraction (in percent) of it is used.
    pub const OUTPUT_TOTAL_RELIEF_PERCENT: usize = 90;
    /// HTTP: largest header block, most headers, largest body.
    pub const HTTP_MAX_HEADER_BYTES: usize = 16 * 1024;
    pub const HTTP_MAX_HEADERS: usize = 64;
    pub const HTTP_MAX_BODY: usize = 256 * 1024;
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:9000".parse().expect("valid default address"),
            http_hosts: Vec::new(),
            data_dir: PathBuf::from("./gotalk-data"),
            memory: false,
            postgres: None,
            node_id: None,
            disk_reserve: DEFAULT_DISK_RESERVE,
            key_file: None,
            token_ttl: Duration::from_secs(7 * 24 * 3600),
            max_line: 64 * 1024,
            max_output: 8 * 1024 * 1024,
            mailbox_limit: 100_000,
            mailbox_bytes: 16 * 1024 * 1024,
            pending_bytes: 512 * 1024 * 1024,
            client_ids_per_sender: 10_000,
            account_cache: 20_000,
            mailbox_window: 256,
            mailbox_window_bytes: 256 * 1024,
            waiters_per_user: 16,
            conns_per_user: 16,
            hash_threads: 2,
            hash_queue: 1024,
            hash_queue_per_address: 16,
            login_failures_per_minute: 10,
            login_failure_burst: 5,
            login_failures_per_address_minute: 30,
            registers_per_address_hour: 20,
            throttle_entries: 100_000,
            lookups_per_address_minute: 60,
            login_tries_per_new_address_hour: 3,
            max_connections: 0,
            max_connections_per_address: 256,
            max_output_total: 256 * 1024 * 1024,
            login_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(60),
            log_level: log::LevelFilter::Info,
            log_format: crate::logging::LogFormat::Text,
            metrics: None,
            shutdown_timeout: Duration::from_secs(10),
            tls_cert: None,
            tls_key: None,
            allow_plaintext: false,
            tls_handshake_timeout: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            tls_handshakes_per_address_second: 20,
            tls_handshake_burst: 40,
            pending_bytes_per_sender: 8 * 1024 * 1024,
            message_ttl: None,
            revocations_per_account: 100,
            logins_per_account_minute: 30,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run(Box<Config>),
    /// `gotalk rotate-key [--data DIR] [--key-file PATH] [--token-ttl S]`:
    /// add a new current token key to the key file, keeping the old ones.
    RotateKey(Box<Config>),
    /// `gotalk gen-cert`: make a self-signed certificate and key.
    GenCert(GenCert),
    GenCertHelp,
    Help,
    Version,
}

/// The `--help` text; every flag with its default.
pub fn help_text() -> String {
    let d = Config::default();
    format!(
        "gotalk {version}: instant-messaging server (line protocol and HTTP on one port)

Usage: gotalk [FLAGS]
       gotalk rotate-key [--data DIR | --key-file PATH] [--token-ttl SECONDS]
                         add a new current token key to the key file, keep
                         the older ones, and say when each may be removed
                         (see docs/operating.md); restart gotalk to use it
       gotalk gen-cert [--host NAME]... [--data DIR] [--force]
                         (a self-signed TLS certificate; gotalk gen-cert --help)

Flags:
  --listen ADDR:PORT     address to listen on (default {listen})
  --http-host NAME       a name browsers reach the server by (repeatable); an
                         HTTP request whose Host is not one of these names,
                         an IP address the server listens on, or (listening
                         on loopback or all addresses) localhost is refused
                         with 421 (default: none)
  --data DIR             directory for durable state (default {data})
  --memory               keep nothing on disk (tests, benchmarks)
  --postgres URL         keep the durable state in PostgreSQL instead of
                         DIR/gotalk.db, e.g. postgres://gotalk@127.0.0.1/gotalk;
                         the token key stays a file (--key-file): every node
                         sharing the database must be given the same one
  --node-id NAME         this node's name among the nodes on one --postgres
                         database: 1 to 40 letters, digits, '-' and '_',
                         unique per node (default: generated at each start
                         and logged); see docs/cluster.md
  --disk-reserve BYTES   disk space set aside in DIR and released when the
                         disk fills, so ACK still works; 0 for none
                         (default {reserve})
  --key-file PATH        token key file: the current key and older ones
                         (default DIR/secret.key; a fresh random key per
                         run with --memory)
  --token-ttl SECONDS    how long a login token is valid (default {ttl})
  --max-line BYTES       longest request line (default {max_line})
  --max-output BYTES     output queued for one client before it is
                         disconnected as a slow reader (default {max_output})
  --mailbox-limit N      unacknowledged messages per user (default {mailbox})
  --mailbox-bytes BYTES  unacknowledged messages per user, in bytes as stored
                         (JSON), SENDs in flight included (default {mailbox_bytes})
  --pending-bytes BYTES  unacknowledged messages held in memory for all users,
                         in bytes as stored (default {pending_bytes})
  --client-ids-per-sender N
                         client_ids remembered per sender for deduplication:
                         24 h or the last N, whichever is shorter (default {client_ids})
  --account-cache N      accounts held in RAM besides logged-in users' (and idle
                         mailboxes whose figures are kept); others are read
                         from the store when needed (default {account_cache})
  --mailbox-window N     messages of a logged-in user's mailbox held in RAM;
                         the rest is read from the store as it drains
                         (default {window})
  --mailbox-window-bytes BYTES
                         the same window in bytes as stored (default {window_bytes})
  --waiters-per-user N   long-polls (SYNC with wait_ms) waiting at once for one
                         user (default {waiters})
  --conns-per-user N     line connections logged in as one user at once
                         (default {conns_per_user})
  --hash-threads N       password hashing threads (default {hash})
  --hash-queue N         password checks (LOGIN, REGISTER) waiting for a
                         thread; more are rate_limited (default {hash_queue})
  --hash-queue-per-address N
                         password checks waiting from one address (IPv6:
                         one /64); more are rate_limited (default {hash_addr})
  --login-failures-per-minute N
                         failed LOGINs of one username a minute, from all
                         addresses that have not logged in to it lately
                         (each that has gets as many of its own); more
                         wait, answered rate_limited (default {login_rate})
  --login-failure-burst N
                         failed LOGINs of one username at once before that
                         rate applies; twice as many for an address
                         (default {login_burst})
  --login-failures-per-address-minute N
                         failed LOGINs from one address (IPv6: one /64) a
                         minute, whatever the usernames (default {login_addr})
  --registers-per-address-hour N
                         REGISTERs from one address an hour; more are
                         rate_limited (default {registers})
  --throttle-entries N   usernames and addresses each login or register
                         throttle table remembers (default {throttle_entries})
  --lookups-per-address-minute N
                         name lookups (LOOKUP, /getuseridbyname, SEND to an
                         unknown name) from one address (IPv6: one /64) a
                         minute; more are rate_limited (default {lookups})
  --login-tries-per-new-address-hour N
                         LOGINs of one username an hour from an address of
                         its own once the username's shared budget is used
                         up, so guesses from elsewhere cannot lock the
                         owner out; 0: none (default {new_address})
  --revocations-per-account N
                         tokens of one account LOGOUT revokes one by one
                         (each kept until it would expire); a LOGOUT past
                         it ends all the account's sessions, like LOGOUT
                         all (default {revocations})
  --logins-per-account-minute N
                         successful LOGINs of one account a minute (that
                         many at once); more are rate_limited (default {logins})
  --max-connections N    simultaneous connections; more are told why and
                         closed (default: the open-file limit, raised to
                         its hard limit at start, less {reserved})
  --max-connections-per-address N
                         simultaneous connections from one address (IPv6:
                         one /64) (default {per_address})
  --max-output-total BYTES
                         output queued for all clients together; past it the
                         clients holding the most unread output are
                         disconnected (default {output_total})
  --login-timeout SECONDS
                         a line connection that has not logged in (LOGIN or
                         AUTH) within this is closed (default {login})
  --request-timeout SECONDS
                         an HTTP request must arrive whole within this
                         (default {request})
  --http-idle-timeout SECONDS
                         an HTTP keep-alive connection with no request in
                         progress is closed after this (default {http_idle})
  --shutdown-timeout SECONDS
                         on SIGTERM or SIGINT, how long to finish the
                         requests already read before closing what is
                         left; a second signal exits at once (default {shutdown})
  --tls-cert FILE        certificate chain (PEM) for TLS on the port, both
                         doors; with --tls-key (default off)
  --tls-key FILE         the certificate's private key (PEM)
  --tls-handshake-timeout SECONDS
                         a TLS handshake must finish within this
                         (default {handshake})
  --allow-plaintext      with TLS on: take plain connections too; without
                         it: listen on a non-loopback address anyway (a
                         TLS-terminating proxy in front) (default off)
  --tls-handshakes-per-address-second N
                         TLS handshakes one client address (IPv6: its /64)
                         may start per second; past it the connection is
                         closed at once; 0 for no limit (default {hs_rate})
  --tls-handshake-burst N
                         handshakes an address may start at once before
                         that rate applies (default {hs_burst})
  --trusted-proxies CIDR,...
                         proxies in front of the server (10.0.0.0/8,
                         2001:db8::/32, or one address): their PROXY
                         protocol header, and for HTTP the last
                         X-Forwarded-For hop, name the client whose address
                         every budget, throttle and log line uses; a PROXY
                         header from any other peer is refused (default none)
  --proxy-protocol       a trusted proxy must open every connection with a
                         PROXY protocol header (v1 or v2); one without it is
                         closed (default off)
  --log-level LEVEL      error, warn, info, debug or trace (default info)
  --log-format FORMAT    text, or json for one JSON object per line
                         (default text)
  --pending-bytes-per-sender BYTES
                         unacknowledged messages one sender may have in
                         custody across all receivers, in bytes as stored,
                         SENDs in flight included: room for a 64 KiB message
                         to each of 100 offline friends, while 64 senders are
                         needed to fill --pending-bytes (default {per_sender},
                         or --pending-bytes / 64 if smaller, but at least
                         twice the largest message)
  --message-ttl SECONDS  unacknowledged messages older than this are deleted
                         unread, freeing their receiver's and sender's
                         budgets (default off: kept until acknowledged)
  --metrics ADDR:PORT    serve the server's figures as JSON at GET /stats on
                         this separate address (default off; bind it to
                         loopback or a private address; it answers a Host
                         that is loopback, its address or an --http-host)
  --help                 print this help
  --version              print the version
",
        version = env!("CARGO_PKG_VERSION"),
        listen = d.listen,
        data = d.data_dir.display(),
        reserve = d.disk_reserve,
        ttl = d.token_ttl.as_secs(),
        max_line = d.max_line,
        max_output = d.max_output,
        mailbox = d.mailbox_limit,
        mailbox_bytes = d.mailbox_bytes,
        pending_bytes = d.pending_bytes,
        client_ids = d.client_ids_per_sender,
        account_cache = d.account_cache,
        window = d.mailbox_window,
        window_bytes = d.mailbox_window_bytes,
        waiters = d.waiters_per_user,
        conns_per_user = d.conns_per_user,
        hash = d.hash_threads,
        hash_queue = d.hash_queue,
        hash_addr = d.hash_queue_per_address,
        login_rate = d.login_failures_per_minute,
        login_burst = d.login_failure_burst,
        login_addr = d.login_failures_per_address_minute,
        registers = d.registers_per_address_hour,
        throttle_entries = d.throttle_entries,
        lookups = d.lookups_per_address_minute,
        new_address = d.login_tries_per_new_address_hour,
        revocations = d.revocations_per_account,
        logins = d.logins_per_account_minute,
        reserved = crate::fdlimit::RESERVED_FDS,
        per_address = d.max_connections_per_address,
        output_total = d.max_output_total,
        login = d.login_timeout.as_secs(),
        request = d.request_timeout.as_secs(),
        http_idle = d.http_idle_timeout.as_secs(),
        shutdown = d.shutdown_timeout.as_secs(),
        handshake = d.tls_handshake_timeout.as_secs(),
        hs_rate = d.tls_handshakes_per_address_second,
        hs_burst = d.tls_handshake_burst,
        per_sender = d.pending_bytes_per_sender,
    )
}

/// The `gotalk gen-cert --help` text.
pub fn gen_cert_help_text() -> String {
    use crate::tls::gen_cert::{CERT_FILE, DEFAULT_HOSTS, KEY_FILE};
    format!(
        "Usage: gotalk gen-cert [--host NAME]... [--data DIR] [--force]

Writes a self-signed certificate (DIR/{CERT_FILE}) and its key
(DIR/{KEY_FILE}, mode 0600) for trying TLS locally, and prints the flags to
start the server with. Clients must be told to trust the certificate.

  --host NAME...   names and IP addresses the certificate is valid for;
                   several may follow one --host, and --host may repeat
                   (default {hosts})
  --data DIR       where the files go (default {data})
  --force          replace existing files
",
        hosts = DEFAULT_HOSTS.join(" "),
        data = Config::default().data_dir.display(),
    )
}

/// Parses the arguments after `gen-cert`.
fn parse_gen_cert<I: Iterator<Item = String>>(args: I) -> Result<Invocation, String> {
    let mut request = GenCert {
        hosts: Vec::new(),
        dir: Config::default().data_dir,
        force: false,
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => return Ok(Invocation::GenCertHelp),
            "--force" => request.force = true,
            "--data" => {
                request.dir = PathBuf::from(args.next().ok_or("--data needs a value (DIR)")?)
            }
            "--host" => {
                let before = request.hosts.len();
                while let Some(name) = args.next_if(|a| !a.starts_with("--")) {
                    request.hosts.push(name);
                }
                if request.hosts.len() == before {
                    return Err("--host needs a value (NAME)".to_string());
                }
            }
            _ => {
                return Err(format!(
                    "gen-cert: unknown flag '{flag}' (see gotalk gen-cert --help)"
                ))
            }
        }
    }
    if request.hosts.is_empty() {
        request.hosts = crate::tls::gen_cert::DEFAULT_HOSTS
            .map(String::from)
            .to_vec();
    }
    Ok(Invocation::GenCert(request))
}

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, String> {
    let mut config = Config::default();
    let mut data_given = false;
    let mut per_sender_given = false;
    let mut args = args.into_iter().peekable();
    if args.next_if(|a| a == "gen-cert").is_some() {
        return parse_gen_cert(args);
    }
    let rotate_key = args.next_if(|a| a == "rotate-key").is_some();
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (flag.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value ({what})"))
        };
        match name.as_str() {
            "--help" | "-h" => return Ok(Invocation::Help),
            "--version" | "-V" => return Ok(Invocation::Version),
            "--memory" => config.memory = true,
            "--postgres" => config.postgres = Some(value("URL")?),
            "--node-id" => {
                let name = value("NAME")?;
                if !crate::store::postgres::wakeup::is_node_id(&name) {
                    return Err(format!(
                        "--node-id '{name}': use 1 to 40 letters, digits, '-' and '_'"
                    ));
                }
                config.node_id = Some(name);
            }
            "--listen" => config.listen = address("--listen", &value("ADDR:PORT")?)?,
            "--http-host" => config.http_hosts.push(host_name(&value("NAME")?)?),
            "--metrics" => config.metrics = Some(address("--metrics", &value("ADDR:PORT")?)?),
            "--data" => {
                config.data_dir = PathBuf::from(value("DIR")?);
                data_given = true;
            }
            "--disk-reserve" => config.disk_reserve = number(&name, &value("BYTES")?, 0)?,
            "--key-file" => config.key_file = Some(PathBuf::from(value("PATH")?)),
            "--token-ttl" => {
                config.token_ttl = Duration::from_secs(number(&name, &value("SECONDS")?, 1)?)
            }
            "--max-line" => config.max_line = number(&name, &value("BYTES")?, 64)? as usize,
            "--max-output" => {
                config.max_output = number(&name, &value("BYTES")?, 64 * 1024)? as usize
            }
            "--mailbox-limit" => config.mailbox_limit = number(&name, &value("N")?, 1)? as usize,
            "--account-cache" => config.account_cache = number(&name, &value("N")?, 1)? as usize,
            "--mailbox-window" => config.mailbox_window = number(&name, &value("N")?, 1)? as usize,
            "--mailbox-window-bytes" => {
                config.mailbox_window_bytes = number(&name, &value("BYTES")?, 1024)? as usize
            }
            "--mailbox-bytes" => {
                config.mailbox_bytes = number(&name, &value("BYTES")?, 1024)? as usize
            }
            "--pending-bytes" => {
                config.pending_bytes = number(&name, &value("BYTES")?, 1024)? as usize
            }
            "--client-ids-per-sender" => {
                config.client_ids_per_sender = number(&name, &value("N")?, 1)? as usize
            }
            "--waiters-per-user" => {
                config.waiters_per_user = number(&name, &value("N")?, 1)? as usize
            }
            "--conns-per-user" => config.conns_per_user = number(&name, &value("N")?, 1)? as usize,
            "--hash-threads" => config.hash_threads = number(&name, &value("N")?, 1)? as usize,
            "--hash-queue" => config.hash_queue = number(&name, &value("N")?, 1)? as usize,
            "--hash-queue-per-address" => {
                config.hash_queue_per_address = number(&name, &value("N")?, 1)? as usize
            }
            "--login-failures-per-minute" => {
                config.login_failures_per_minute = number(&name, &value("N")?, 1)?
            }
            "--login-failure-burst" => config.login_failure_burst = number(&name, &value("N")?, 1)?,
            "--login-failures-per-address-minute" => {
                config.login_failures_per_address_minute = number(&name, &value("N")?, 1)?
            }
            "--registers-per-address-hour" => {
                config.registers_per_address_hour = number(&name, &value("N")?, 1)?
            }
            "--throttle-entries" => {
                config.throttle_entries = number(&name, &value("N")?, 16)? as usize
            }
            "--lookups-per-address-minute" => {
                config.lookups_per_address_minute = number(&name, &value("N")?, 1)?
            }
            "--login-tries-per-new-address-hour" => {
                config.login_tries_per_new_address_hour = number(&name, &value("N")?, 0)?
            }
            "--max-connections" => {
                config.max_connections = number(&name, &value("N")?, 1)? as usize
            }
            "--max-connections-per-address" => {
                config.max_connections_per_address = number(&name, &value("N")?, 1)? as usize
            }
            "--max-output-total" => {
                config.max_output_total = number(&name, &value("BYTES")?, 64 * 1024)? as usize
            }
            "--login-timeout" => config.login_timeout = seconds(&name, &value("SECONDS")?)?,
            "--request-timeout" => config.request_timeout = seconds(&name, &value("SECONDS")?)?,
            "--shutdown-timeout" => config.shutdown_timeout = seconds(&name, &value("SECONDS")?)?,
            "--http-idle-timeout" => config.http_idle_timeout = seconds(&name, &value("SECONDS")?)?,
            "--tls-cert" => config.tls_cert = Some(PathBuf::from(value("FILE")?)),
            "--tls-key" => config.tls_key = Some(PathBuf::from(value("FILE")?)),
            "--allow-plaintext" => config.allow_plaintext = true,
            "--tls-handshake-timeout" => {
                config.tls_handshake_timeout = seconds(&name, &value("SECONDS")?)?
            }
            "--tls-handshakes-per-address-second" => {
                config.tls_handshakes_per_address_second = number(&name, &value("N")?, 0)?
            }
            "--tls-handshake-burst" => config.tls_handshake_burst = number(&name, &value("N")?, 1)?,
            "--trusted-proxies" => {
                for block in value("CIDR,...")?.split(',').filter(|b| !b.is_empty()) {
                    let cidr = crate::cidr::Cidr::parse(block.trim())
                        .map_err(|e| format!("--trusted-proxies: {e}"))?;
                    config.trusted_proxies.push(cidr);
                }
            }
            "--proxy-protocol" => config.proxy_protocol = true,
            "--pending-bytes-per-sender" => {
                config.pending_bytes_per_sender = number(&name, &value("BYTES")?, 1024)? as usize;
                per_sender_given = true;
            }
            "--message-ttl" => config.message_ttl = Some(seconds(&name, &value("SECONDS")?)?),
            "--revocations-per-account" => {
                config.revocations_per_account = number(&name, &value("N")?, 1)? as usize
            }
            "--logins-per-account-minute" => {
                config.logins_per_account_minute = number(&name, &value("N")?, 1)?
            }
            "--log-format" => {
                config.log_format = match value("FORMAT")?.as_str() {
                    "text" => crate::logging::LogFormat::Text,
                    "json" => crate::logging::LogFormat::Json,
                    other => return Err(format!("--log-format: '{other}' is not text or json")),
                }
            }
            "--log-level" => {
                let v = value("LEVEL")?;
                config.log_level = v.parse().map_err(|_| {
                    format!("--log-level: '{v}' is not one of error, warn, info, debug, trace")
                })?;
            }
            _ => return Err(format!("unknown flag '{flag}' (see --help)")),
        }
    }
    if !per_sender_given {
        config.pending_bytes_per_sender = default_per_sender(config.pending_bytes);
    }
    if config.memory && data_given {
        return Err(
            "--memory keeps nothing on disk, so --data has no use with it; give one or the other"
                .to_string(),
        );
    }
    if config.node_id.is_some() && config.postgres.is_none() {
        return Err(
            "--node-id names a node sharing a --postgres database; give --postgres too".to_string(),
        );
    }
    if config.memory && config.postgres.is_some() {
        return Err(
            "--memory keeps nothing, so --postgres has no use with it; give one or the other"
                .to_string(),
        );
    }
    if rotate_key {
        if config.memory {
            return Err("rotate-key changes a key file; --memory has none".to_string());
        }
        return Ok(Invocation::RotateKey(Box::new(config)));
    }
    check_tls(&config)?;
    if config.proxy_protocol && config.trusted_proxies.is_empty() {
        return Err(
            "--proxy-protocol needs --trusted-proxies: the proxies whose header is believed"
                .to_string(),
        );
    }
    Ok(Invocation::Run(Box::new(config)))
}

/// TLS needs both files; a non-loopback address needs TLS unless a proxy
/// in front of the server does it (`--allow-plaintext`).
fn check_tls(config: &Config) -> Result<(), String> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(_), None) => return Err("--tls-cert needs --tls-key (its private key)".into()),
        (None, Some(_)) => return Err("--tls-key needs --tls-cert (the certificate)".into()),
        _ => {}
    }
    if config.tls_cert.is_none() && !config.allow_plaintext && !config.listen.ip().is_loopback() {
        return Err(format!(
            "--listen {}: not a loopback address, and TLS is off, so passwords and tokens \
             would cross the network in clear text. Give a certificate with --tls-cert FILE \
             --tls-key FILE (to try it: gotalk gen-cert --host NAME, then the flags it \
             prints; see docs/tls.md), or, behind a TLS-terminating proxy, --allow-plaintext",
            config.listen
        ));
    }
    Ok(())
}

/// An `ADDR:PORT`, or `NAME:PORT` resolved now (`localhost:9000`); the
/// first address a name resolves to is used.
fn address(flag: &str, text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let bad = || format!("{flag}: '{text}' is not an ADDR:PORT like 127.0.0.1:9000");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("{flag}: cannot resolve '{host}': {e}"))?
        .next()
        .ok_or_else(|| format!("{flag}: '{host}' resolves to no address"))
}

/// A DNS name for `--http-host`: letters, digits, `-` and `.`, no port;
/// kept in lowercase, without a trailing dot, as `Host` is compared.
fn host_name(text: &str) -> Result<String, String> {
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
        Err(format!(
            "--http-host: '{text}' is not a host name like chat.example.com (no port, no scheme)"
        ))
    }
}

/// `--pending-bytes-per-sender` when not given: 8 MiB, or a 64th of the
/// global pool if that is less (a pool lowered for a small machine still
/// takes 64 senders to fill), but never under one largest message.
fn default_per_sender(pending_bytes: usize) -> usize {
    let largest = 2 * limits::MAX_CONTENT_BYTES;
    Config::default()
        .pending_bytes_per_sender
        .min(pending_bytes / 64)
        .max(largest)
}

fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    Ok(Duration::from_secs(number(flag, text, 1)?))
}

fn number(flag: &str, text: &str, min: u64) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("{flag}: '{text}' is not a whole number >= {min}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse_args(args.iter().map(|s| s.to_string()))? {
            Invocation::Run(c) => Ok(*c),
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = run(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.data_dir, PathBuf::from("./gotalk-data"));
        assert!(!c.memory);
        assert_eq!(c.max_line, 65536);
    }

    #[test]
    fn flags_take_values_both_ways() {
        let c = run(&["--listen", "127.0.0.1:0", "--memory", "--max-line=1024"]).unwrap();
        assert_eq!(c.listen.port(), 0);
        assert!(c.memory);
        assert_eq!(c.max_line, 1024);
    }

    #[test]
    fn unknown_and_malformed_flags_are_errors() {
        assert!(run(&["--bogus"]).unwrap_err().contains("unknown flag"));
        assert!(run(&["--listen", "nowhere"])
            .unwrap_err()
            .contains("--listen"));
        assert!(run(&["--data"]).unwrap_err().contains("needs a value"));
        assert!(run(&["--hash-threads", "0"]).is_err());
    }

    #[test]
    fn budget_flags_have_defaults_and_take_values() {
        let c = run(&[]).unwrap();
        assert_eq!(c.mailbox_bytes, 16 << 20);
        assert_eq!(c.pending_bytes, 512 << 20);
        assert_eq!(c.client_ids_per_sender, 10_000);
        assert_eq!(c.waiters_per_user, 16);
        assert_eq!(c.conns_per_user, 16);
        let c = run(&[
            "--mailbox-bytes",
            "4096",
            "--pending-bytes=65536",
            "--client-ids-per-sender",
            "100",
            "--waiters-per-user",
            "2",
            "--conns-per-user=3",
        ])
        .unwrap();
        assert_eq!(c.mailbox_bytes, 4096);
        assert_eq!(c.pending_bytes, 65536);
        assert_eq!(c.client_ids_per_sender, 100);
        assert_eq!(c.waiters_per_user, 2);
        assert_eq!(c.conns_per_user, 3);
        assert!(run(&["--mailbox-bytes", "100"]).is_err());
        assert!(run(&["--pending-bytes", "x"]).is_err());
        assert!(run(&["--client-ids-per-sender", "0"]).is_err());
        assert!(run(&["--waiters-per-user", "0"]).is_err());
        assert!(run(&["--conns-per-user", "0"]).is_err());
    }

    #[test]
    fn names_resolve_and_memory_excludes_data() {
        let c = run(&["--listen", "localhost:9000"]).unwrap();
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.listen.port(), 9000);
        assert!(run(&["--listen", "localhost"]).is_err());
        let both = run(&["--memory", "--data", "x"]).unwrap_err();
        assert!(both.contains("--memory"), "{both}");
        assert!(run(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn postgres_takes_a_url_and_excludes_memory() {
        let url = "postgres://gotalk@127.0.0.1:5432/gotalk";
        let c = run(&["--postgres", url]).unwrap();
        assert_eq!(c.postgres.as_deref(), Some(url));
        let both = run(&["--memory", "--postgres", url]).unwrap_err();
        assert!(both.contains("--postgres"), "{both}");
        assert!(run(&["--postgres"]).is_err());
    }

    #[test]
    fn node_id_needs_postgres_and_a_channel_safe_name() {
        let url = "postgres://gotalk@127.0.0.1:5432/gotalk";
        let c = run(&["--postgres", url, "--node-id", "node-a_1"]).unwrap();
        assert_eq!(c.node_id.as_deref(), Some("node-a_1"));
        assert!(run(&["--node-id", "a"]).unwrap_err().contains("--postgres"));
        assert!(run(&["--postgres", url, "--node-id", "a b"]).is_err());
        assert!(run(&["--postgres", url, "--node-id", ""]).is_err());
    }

    #[test]
    fn password_queue_flags_have_defaults_and_a_minimum() {
        let c = run(&[]).unwrap();
        assert_eq!((c.hash_queue, c.hash_queue_per_address), (1024, 16));
        let c = run(&["--hash-queue", "10", "--hash-queue-per-address=2"]).unwrap();
        assert_eq!((c.hash_queue, c.hash_queue_per_address), (10, 2));
        assert!(run(&["--hash-queue", "0"]).is_err());
        assert!(run(&["--hash-queue-per-address", "x"]).is_err());
    }

    #[test]
    fn throttle_flags_have_defaults_and_a_minimum() {
        let c = run(&[]).unwrap();
        assert_eq!(
            (
                c.login_failures_per_minute,
                c.login_failure_burst,
                c.login_failures_per_address_minute,
                c.registers_per_address_hour,
                c.throttle_entries
            ),
            (10, 5, 30, 20, 100_000)
        );
        let c = run(&[
            "--login-failures-per-minute=60",
            "--login-failure-burst",
            "2",
            "--login-failures-per-address-minute",
            "7",
            "--registers-per-address-hour",
            "1000",
            "--throttle-entries=64",
        ])
        .unwrap();
        assert_eq!(c.login_failures_per_minute, 60);
        assert_eq!(c.login_failure_burst, 2);
        assert_eq!(c.login_failures_per_address_minute, 7);
        assert_eq!(c.registers_per_address_hour, 1000);
        assert_eq!(c.throttle_entries, 64);
        assert!(run(&["--registers-per-address-hour", "0"]).is_err());
        assert!(run(&["--login-failures-per-minute", "x"]).is_err());
        assert!(run(&["--throttle-entries", "3"]).is_err());
    }

    #[test]
    fn lookup_and_new_address_rates_have_defaults_and_a_minimum() {
        let c = run(&[]).unwrap();
        assert_eq!(
            (
                c.lookups_per_address_minute,
                c.login_tries_per_new_address_hour
            ),
            (60, 3)
        );
        let c = run(&[
            "--lookups-per-address-minute=5",
            "--login-tries-per-new-address-hour",
            "9",
        ])
        .unwrap();
        assert_eq!(
            (
                c.lookups_per_address_minute,
                c.login_tries_per_new_address_hour
            ),
            (5, 9)
        );
        assert!(run(&["--lookups-per-address-minute", "0"]).is_err());
        assert!(run(&["--login-tries-per-new-address-hour", "x"]).is_err());
        let c = run(&["--login-tries-per-new-address-hour", "0"]).unwrap();
        assert_eq!(c.login_tries_per_new_address_hour, 0);
    }

    #[test]
    fn revocation_and_login_flags_have_defaults_and_a_minimum() {
        let c = run(&[]).unwrap();
        assert_eq!(
            (c.revocations_per_account, c.logins_per_account_minute),
            (100, 30)
        );
        let c = run(&[
            "--revocations-per-account",
            "3",
            "--logins-per-account-minute=1000",
        ])
        .unwrap();
        assert_eq!(
            (c.revocations_per_account, c.logins_per_account_minute),
            (3, 1000)
        );
        assert!(run(&["--revocations-per-account", "0"]).is_err());
        assert!(run(&["--logins-per-account-minute", "0"]).is_err());
        assert!(help_text().contains("--revocations-per-account N"));
        assert!(help_text().contains("--logins-per-account-minute N"));
    }

    #[test]
    fn disk_reserve_defaults_to_8_mib_and_may_be_0() {
        assert_eq!(run(&[]).unwrap().disk_reserve, 8 << 20);
        assert_eq!(run(&["--disk-reserve", "0"]).unwrap().disk_reserve, 0);
        assert!(run(&["--disk-reserve", "-1"]).is_err());
    }

    #[test]
    fn http_hosts_are_repeatable_and_checked() {
        let c = run(&["--http-host", "Chat.Example.com.", "--http-host=other"]).unwrap();
        assert_eq!(c.http_hosts, ["chat.example.com", "other"]);
        for bad in ["", "a:80", "http://a", "a..b", "a b"] {
            assert!(run(&["--http-host", bad]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rotate_key_takes_the_key_file_flags() {
        let args = ["rotate-key", "--data", "d", "--token-ttl", "60"];
        match parse_args(args.map(String::from)) {
            Ok(Invocation::RotateKey(c)) => {
                assert_eq!(c.data_dir, PathBuf::from("d"));
                assert_eq!(c.token_ttl, Duration::from_secs(60));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_args(["rotate-key", "--memory"].map(String::from)).is_err());
        assert!(parse_args(["--data", "d", "rotate-key"].map(String::from)).is_err());
    }

    #[test]
    fn proxy_and_handshake_flags_parse_and_check() {
        let c = run(&[
            "--trusted-proxies",
            "10.0.0.0/8,127.0.0.1",
            "--proxy-protocol",
        ])
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(c.trusted_proxies[1].contains("127.0.0.1".parse().unwrap()));
        assert!(c.proxy_protocol);
        assert!(run(&["--trusted-proxies", "10.0.0.0/40"])
            .unwrap_err()
            .contains("--trusted-proxies"));
        assert!(run(&["--proxy-protocol"])
            .unwrap_err()
            .contains("--trusted-proxies"));
        let d = run(&[]).unwrap();
        assert!(d.trusted_proxies.is_empty() && !d.proxy_protocol);
        assert_eq!(
            (d.tls_handshakes_per_address_second, d.tls_handshake_burst),
            (20, 40)
        );
        let c = run(&["--tls-handshakes-per-address-second", "0"]).unwrap();
        assert_eq!(c.tls_handshakes_per_address_second, 0);
        assert!(run(&["--tls-handshake-burst", "0"]).is_err());
        let help = help_text();
        assert!(help.contains("--trusted-proxies") && help.contains("(default 20)"));
    }

    #[test]
    fn tls_flags_go_together_and_public_addresses_need_tls() {
        let c = run(&["--tls-cert", "c.pem", "--tls-key=k.pem"]).unwrap();
        assert_eq!(c.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(c.tls_handshake_timeout, Duration::from_secs(10));
        assert!(run(&["--tls-cert", "c.pem"])
            .unwrap_err()
            .contains("--tls-key"));
        assert!(run(&["--tls-key", "k.pem"])
            .unwrap_err()
            .contains("--tls-cert"));
        let public = run(&["--listen", "0.0.0.0:9000"]).unwrap_err();
        assert!(public.contains("gotalk gen-cert"), "{public}");
        assert!(public.contains("--allow-plaintext"), "{public}");
        run(&["--listen", "0.0.0.0:9000", "--allow-plaintext"]).unwrap();
        run(&["--listen", "[::]:9000", "--tls-cert", "c", "--tls-key", "k"]).unwrap();
        run(&["--listen", "[::1]:9000"]).unwrap();
    }

    #[test]
    fn gen_cert_takes_hosts_a_directory_and_force() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        let Ok(Invocation::GenCert(g)) = args(&["gen-cert"]) else {
            panic!("not gen-cert")
        };
        assert_eq!(g.hosts, ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(g.dir, PathBuf::from("./gotalk-data"));
        assert!(!g.force);
        let parsed = args(&[
            "gen-cert",
            "--host",
            "chat.example",
            "10.0.0.5",
            "--data",
            "d",
            "--host",
            "x",
            "--force",
        ]);
        let Ok(Invocation::GenCert(g)) = parsed else {
            panic!("not gen-cert")
        };
        assert_eq!(g.hosts, ["chat.example", "10.0.0.5", "x"]);
        assert_eq!(g.dir, PathBuf::from("d"));
        assert!(g.force);
        assert!(args(&["gen-cert", "--host"]).is_err());
        assert!(args(&["gen-cert", "--bogus"]).is_err());
        assert!(matches!(
            args(&["gen-cert", "--help"]),
            Ok(Invocation::GenCertHelp)
        ));
    }

    #[test]
    fn help_lists_every_flag() {
        let help = help_text();
        for flag in [
            "--listen",
            "--http-host",
            "--data",
            "--memory",
            "--key-file",
            "--hash-queue",
            "--hash-queue-per-address",
            "--disk-reserve",
            "--log-level",
            "--mailbox-limit",
            "--mailbox-bytes",
            "--pending-bytes",
            "--client-ids-per-sender",
            "--account-cache",
            "--mailbox-window",
            "--mailbox-window-bytes",
            "--waiters-per-user",
            "--conns-per-user",
            "--metrics",
            "--max-connections-per-address",
            "--max-output-total",
            "--login-timeout",
            "--request-timeout",
            "--http-idle-timeout",
            "--shutdown-timeout",
            "--log-format",
            "--login-failures-per-minute",
            "--login-failure-burst",
            "--login-failures-per-address-minute",
            "--registers-per-address-hour",
            "--throttle-entries",
            "--lookups-per-address-minute",
            "--login-tries-per-new-address-hour",
            "--tls-cert",
            "--tls-key",
            "--tls-handshake-timeout",
            "--allow-plaintext",
            "gen-cert",
        ] {
            assert!(help.contains(flag), "{flag} missing from help");
        }
    }

    #[test]
    fn sender_budget_and_message_ttl_have_defaults_and_take_values() {
        let d = run(&[]).unwrap();
        assert_eq!(d.pending_bytes_per_sender, 8 << 20);
        assert!(d.pending_bytes_per_sender < d.pending_bytes / 32);
        assert_eq!(d.message_ttl, None);
        let c = run(&[
            "--pending-bytes-per-sender",
            "4096",
            "--message-ttl",
            "3600",
        ])
        .unwrap();
        assert_eq!(c.pending_bytes_per_sender, 4096);
        assert_eq!(c.message_ttl, Some(Duration::from_secs(3600)));
        assert!(run(&["--pending-bytes-per-sender", "10"]).is_err());
        assert!(run(&["--message-ttl", "0"]).is_err());
        let help = help_text();
        assert!(help.contains("--pending-bytes-per-sender BYTES"));
        assert!(help.contains("--message-ttl SECONDS"));
        // A lowered pool lowers the default with it, never below one
        // largest message.
        let small = run(&["--pending-bytes", "4194304"]).unwrap();
        assert_eq!(small.pending_bytes_per_sender, 4194304 / 64 * 2);
        let given = run(&[
            "--pending-bytes",
            "4194304",
            "--pending-bytes-per-sender",
            "2048",
        ]);
        assert_eq!(given.unwrap().pending_bytes_per_sender, 2048);
    }
}
