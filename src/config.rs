//! Command-line flags and every limit of the server as a named value.
//! Parsing is hand-written: the flag set is small and fixed by the contract,
//! and `--help` must list each flag with its default.

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
    /// Directory of the durable state.
    pub data_dir: PathBuf,
    /// Keep nothing on disk.
    pub memory: bool,
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
    /// Password-hashing worker threads.
    pub hash_threads: usize,
    /// Password checks (LOGIN, REGISTER) waiting for a worker, from all
    /// addresses together; past it they are refused with `rate_limited`.
    pub hash_queue: usize,
    /// Password checks waiting from one peer address (IPv6: one /64);
    /// addresses take turns, so one cannot hold up the others.
    pub hash_queue_per_address: usize,
    /// Most simultaneous connections; more are accepted and closed at once.
    pub max_connections: usize,
    /// Log level name for `log` (error, warn, info, debug, trace).
    pub log_level: log::LevelFilter,
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
    /// How long a `client_id` is remembered.
    pub const CLIENT_ID_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
    /// Longest password accepted (argon2 has no need for more).
    pub const MAX_PASSWORD_BYTES: usize = 1024;
    /// Output queued for a connection past which the server stops reading its
    /// requests until the client reads its replies (flow control, no close).
    pub const OUTPUT_PAUSE_BYTES: usize = 256 * 1024;
    /// Bytes read from a socket per read call (one shared scratch buffer).
    pub const READ_CHUNK: usize = 64 * 1024;
    /// HTTP: largest header block, most headers, largest body.
    pub const HTTP_MAX_HEADER_BYTES: usize = 16 * 1024;
    pub const HTTP_MAX_HEADERS: usize = 64;
    pub const HTTP_MAX_BODY: usize = 256 * 1024;
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:9000".parse().expect("valid default address"),
            data_dir: PathBuf::from("./gotalk-data"),
            memory: false,
            disk_reserve: DEFAULT_DISK_RESERVE,
            key_file: None,
            token_ttl: Duration::from_secs(7 * 24 * 3600),
            max_line: 64 * 1024,
            max_output: 8 * 1024 * 1024,
            mailbox_limit: 100_000,
            hash_threads: 2,
            hash_queue: 1024,
            hash_queue_per_address: 16,
            max_connections: 100_000,
            log_level: log::LevelFilter::Info,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run(Config),
    Help,
    Version,
}

/// The `--help` text; every flag with its default.
pub fn help_text() -> String {
    let d = Config::default();
    format!(
        "gotalk {version}: instant-messaging server (line protocol and HTTP on one port)

Usage: gotalk [FLAGS]

Flags:
  --listen ADDR:PORT     address to listen on (default {listen})
  --data DIR             directory for durable state (default {data})
  --memory               keep nothing on disk (tests, benchmarks)
  --disk-reserve BYTES   disk space set aside in DIR and released when the
                         disk fills, so ACK still works; 0 for none
                         (default {reserve})
  --key-file PATH        token key file, 32 bytes (default DIR/secret.key;
                         a fresh random key per run with --memory)
  --token-ttl SECONDS    how long a login token is valid (default {ttl})
  --max-line BYTES       longest request line (default {max_line})
  --max-output BYTES     output queued for one client before it is
                         disconnected as a slow reader (default {max_output})
  --mailbox-limit N      unacknowledged messages per user (default {mailbox})
  --hash-threads N       password hashing threads (default {hash})
  --hash-queue N         password checks (LOGIN, REGISTER) waiting for a
                         thread; more are rate_limited (default {hash_queue})
  --hash-queue-per-address N
                         password checks waiting from one address (IPv6:
                         one /64); more are rate_limited (default {hash_addr})
  --max-connections N    simultaneous connections (default {conns})
  --log-level LEVEL      error, warn, info, debug or trace (default info)
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
        hash = d.hash_threads,
        hash_queue = d.hash_queue,
        hash_addr = d.hash_queue_per_address,
        conns = d.max_connections,
    )
}

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, String> {
    let mut config = Config::default();
    let mut args = args.into_iter();
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
            "--listen" => {
                let v = value("ADDR:PORT")?;
                config.listen = v.parse().map_err(|_| {
                    format!("--listen: '{v}' is not an ADDR:PORT like 127.0.0.1:9000")
                })?;
            }
            "--data" => config.data_dir = PathBuf::from(value("DIR")?),
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
            "--hash-threads" => config.hash_threads = number(&name, &value("N")?, 1)? as usize,
            "--hash-queue" => config.hash_queue = number(&name, &value("N")?, 1)? as usize,
            "--hash-queue-per-address" => {
                config.hash_queue_per_address = number(&name, &value("N")?, 1)? as usize
            }
            "--max-connections" => {
                config.max_connections = number(&name, &value("N")?, 1)? as usize
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
    Ok(Invocation::Run(config))
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
            Invocation::Run(c) => Ok(c),
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
    fn password_queue_flags_have_defaults_and_a_minimum() {
        let c = run(&[]).unwrap();
        assert_eq!((c.hash_queue, c.hash_queue_per_address), (1024, 16));
        let c = run(&["--hash-queue", "10", "--hash-queue-per-address=2"]).unwrap();
        assert_eq!((c.hash_queue, c.hash_queue_per_address), (10, 2));
        assert!(run(&["--hash-queue", "0"]).is_err());
        assert!(run(&["--hash-queue-per-address", "x"]).is_err());
    }

    #[test]
    fn disk_reserve_defaults_to_8_mib_and_may_be_0() {
        assert_eq!(run(&[]).unwrap().disk_reserve, 8 << 20);
        assert_eq!(run(&["--disk-reserve", "0"]).unwrap().disk_reserve, 0);
        assert!(run(&["--disk-reserve", "-1"]).is_err());
    }

    #[test]
    fn help_lists_every_flag() {
        let help = help_text();
        for flag in [
            "--listen",
            "--data",
            "--memory",
            "--key-file",
            "--hash-queue",
            "--hash-queue-per-address",
            "--disk-reserve",
            "--log-level",
        ] {
            assert!(help.contains(flag), "{flag} missing from help");
        }
    }
}
