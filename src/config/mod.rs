//! The server's settings. `Config` (`settings.rs`) is the one struct the
//! rest of the crate reads; this file makes it from the flag table
//! (`flags.rs`, `budgets.rs`: each setting declared once with its flag,
//! `GOTALK_*` variable, default and help), the value parsers (`values.rs`)
//! and the checks across flags (`checks.rs`). The limits that are not
//! flags are in `limits.rs`. No I/O happens here: a host name is resolved
//! by the caller's resolver (`main.rs`), and the node-id rule, which is the
//! store's, is checked there too.

mod budgets;
pub mod checks;
pub mod flags;
pub mod limits;
mod settings;
pub mod values;

pub use checks::ConfigError;
pub use flags::{Cli, Flags, GenCertArgs, Sub, DEFAULT_DISK_RESERVE};
pub use settings::{Config, Shares};
pub use values::HostPort;

use crate::tls::gen_cert::GenCert;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

impl Default for Config {
    /// The defaults of the flag table (no variable read, nothing resolved).
    fn default() -> Config {
        let command = command().mut_args(|a| a.env(None::<&str>));
        let matches = command
            .try_get_matches_from(["gotalk"])
            .expect("the defaults parse");
        let flags = Flags::from_arg_matches(&matches).expect("the defaults parse");
        flags
            .into_config(Purpose::Server, &|_| {
                unreachable!("the default listen address is literal")
            })
            .expect("the defaults pass the checks")
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run(Box<Flags>),
    /// `gotalk rotate-key [--data DIR | --key-file PATH] [--token-ttl S]`:
    /// add a new current token key to the key file, keeping the old ones.
    RotateKey(Box<Flags>),
    /// `gotalk gen-cert`: make a self-signed certificate and key.
    GenCert(GenCert),
    /// `gotalk admin …`: a client of the running server's admin socket.
    Admin(crate::admin::cli::AdminArgs),
}

/// What the settings are for: the server checks more than `rotate-key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Server,
    RotateKey,
}

/// Resolves a `NAME:PORT` to its addresses (`main.rs` asks the system).
pub type Resolver<'a> = &'a dyn Fn(&str) -> std::io::Result<Vec<SocketAddr>>;

/// The command line as clap parses it, with each flag's default and
/// variable shown in `--help` the same way: `(default N)` after its help
/// and `[env: GOTALK_...]` (the variable's value is never shown: it may
/// hold a password, as a `--postgres` URL can).
pub fn command() -> clap::Command {
    Cli::command()
        .mut_args(show_default)
        .mut_subcommand("rotate-key", |s| {
            s.mut_args(show_default).args_override_self(true)
        })
        .mut_subcommand("gen-cert", |s| {
            s.mut_args(show_default).args_override_self(true)
        })
        .mut_subcommand("admin", |s| s.mut_args(show_default))
}

fn show_default(arg: clap::Arg) -> clap::Arg {
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let arg = arg.hide_env_values(true);
    let note = if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
        "(default off)".to_string()
    } else if defaults.is_empty() {
        return arg;
    } else {
        format!("(default {})", defaults.join(" "))
    };
    let help = match arg.get_help() {
        Some(help) => format!("{help} {note}"),
        None => note,
    };
    let arg = arg.help(help);
    if arg.get_action().takes_values() {
        arg.hide_default_value(true)
    } else {
        arg
    }
}

/// The `--help` text.
pub fn help_text() -> String {
    command().render_long_help().to_string()
}

/// Parses the arguments, program name first. A usage error (an unknown or
/// misspelt flag, a bad value), `--help` and `--version` come back as
/// clap's error, which prints itself and exits with 2 (or 0).
pub fn parse_args<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let given = |m: &clap::ArgMatches| flags::Given {
        data: m.value_source("data_dir") != Some(clap::parser::ValueSource::DefaultValue),
        pending_bytes_per_sender: m.value_source("pending_bytes_per_sender")
            != Some(clap::parser::ValueSource::DefaultValue),
    };
    Ok(match cli.command {
        None => Invocation::Run(Box::new(Flags {
            given: given(&matches),
            ..cli.flags
        })),
        Some(Sub::RotateKey(flags)) => {
            let sub = matches.subcommand_matches("rotate-key").expect("matched");
            Invocation::RotateKey(Box::new(Flags {
                given: given(sub),
                ..*flags
            }))
        }
        Some(Sub::GenCert(args)) => Invocation::GenCert(GenCert {
            hosts: if args.hosts.is_empty() {
                crate::tls::gen_cert::DEFAULT_HOSTS
                    .map(String::from)
                    .to_vec()
            } else {
                args.hosts
            },
            dir: args.dir,
            force: args.force,
        }),
        Some(Sub::Admin(args)) => Invocation::Admin(args),
    })
}

impl Flags {
    /// The settings, with `--listen` and `--metrics` names resolved by
    /// `resolve`, checked for `purpose`.
    pub fn into_config(self, purpose: Purpose, resolve: Resolver) -> Result<Config, ConfigError> {
        let Flags {
            network: n,
            storage: s,
            limits: l,
            throttles: t,
            timeouts: w,
            tls,
            logging,
            websocket,
            given,
        } = self;
        let per_sender = if given.pending_bytes_per_sender {
            l.pending_bytes_per_sender
        } else {
            default_per_sender(l.pending_bytes_per_sender, l.pending_bytes)
        };
        // admin: DIR/admin.sock unless told otherwise. --memory has no
        // DIR, and nodes on one --postgres database may share a machine:
        // without --data they open none unless --admin-socket names it.
        let admin_socket = match (s.no_admin_socket, s.admin_socket) {
            (true, _) => None,
            (false, Some(path)) => Some(path),
            (false, None) if s.memory || (s.postgres.is_some() && !given.data) => None,
            (false, None) => Some(s.data_dir.join("admin.sock")),
        };
        let config = Config {
            listen: address("--listen", &n.listen, resolve)?,
            http_hosts: n.http_hosts,
            data_dir: s.data_dir,
            memory: s.memory,
            postgres: s.postgres,
            node_id: s.node_id,
            disk_reserve: s.disk_reserve,
            key_file: s.key_file,
            token_ttl: s.token_ttl,
            max_line: l.max_line,
            max_output: l.max_output,
            mailbox_limit: l.mailbox_limit,
            mailbox_bytes: l.mailbox_bytes,
            pending_bytes: l.pending_bytes,
            client_ids_per_sender: l.client_ids_per_sender,
            account_cache: l.account_cache,
            mailbox_window: l.mailbox_window,
            mailbox_window_bytes: l.mailbox_window_bytes,
            waiters_per_user: l.waiters_per_user,
            conns_per_user: l.conns_per_user,
            hash_threads: t.hash_threads,
            hash_queue: t.hash_queue,
            hash_queue_per_address: t.hash_queue_per_address,
            login_failures_per_minute: t.login_failures_per_minute,
            login_failure_burst: t.login_failure_burst,
            login_failures_per_address_minute: t.login_failures_per_address_minute,
            registers_per_address_hour: t.registers_per_address_hour,
            throttle_entries: t.throttle_entries,
            lookups_per_address_minute: t.lookups_per_address_minute,
            login_tries_per_new_address_hour: t.login_tries_per_new_address_hour,
            max_connections: n.max_connections.unwrap_or(0),
            max_connections_per_address: n.max_connections_per_address,
            max_output_total: l.max_output_total,
            login_timeout: w.login_timeout,
            request_timeout: w.request_timeout,
            http_idle_timeout: w.http_idle_timeout,
            log_level: logging.log_level,
            log_format: logging.log_format,
            metrics: match &n.metrics {
                Some(m) => Some(address("--metrics", m, resolve)?),
                None => None,
            },
            shutdown_timeout: w.shutdown_timeout,
            tls_cert: tls.tls_cert,
            tls_key: tls.tls_key,
            allow_plaintext: tls.allow_plaintext,
            tls_handshake_timeout: tls.tls_handshake_timeout,
            trusted_proxies: n.trusted_proxies.into_iter().flat_map(|l| l.0).collect(),
            proxy_protocol: n.proxy_protocol,
            tls_handshakes_per_address_second: tls.tls_handshakes_per_address_second,
            tls_handshake_burst: tls.tls_handshake_burst,
            pending_bytes_per_sender: per_sender,
            message_ttl: s.message_ttl,
            revocations_per_account: l.revocations_per_account,
            logins_per_account_minute: t.logins_per_account_minute,
            shares: Shares {
                sends_per_second: t.sends_per_second,
                send_burst: t.send_burst,
                new_recipients_per_hour: t.new_recipients_per_hour,
                read_bytes_per_second: t.read_bytes_per_second,
                read_burst: t.read_burst,
                connections_per_address_per_second: t.connections_per_address_per_second,
                connections_per_address_burst: t.connections_per_address_burst,
                connection_storm_cuts: t.connection_storm_cuts,
                connection_storm_block_seconds: t.connection_storm_block_seconds,
            },
            history: !s.no_history,
            history_retention: match (s.history_seconds, s.history_days) {
                (Some(secs), _) => Some(std::time::Duration::from_secs(secs)),
                (None, 0) => None,
                (None, days) => Some(std::time::Duration::from_secs(days.saturating_mul(86_400))),
            },
            history_memory_bytes: s.history_memory_bytes.min(usize::MAX as u64) as usize,
            admin_socket,
            // WebSocket door
            ws_ping_interval: Duration::from_secs(websocket.ws_ping_interval),
            no_websocket: websocket.no_websocket,
        };
        checks::storage(&config, given.data)?;
        match purpose {
            Purpose::RotateKey if config.memory => Err(ConfigError::RotateKeyInMemory),
            Purpose::RotateKey => Ok(config),
            Purpose::Server => checks::server(&config).map(|()| config),
        }
    }
}

/// An address, or the first one a name resolves to.
fn address(
    flag: &'static str,
    at: &HostPort,
    resolve: Resolver,
) -> Result<SocketAddr, ConfigError> {
    match at {
        HostPort::Addr(addr) => Ok(*addr),
        HostPort::Name(text) => resolve(text)
            .map_err(|source| ConfigError::Resolve {
                flag,
                host: at.host(),
                source,
            })?
            .into_iter()
            .next()
            .ok_or_else(|| ConfigError::NoAddress {
                flag,
                host: at.host(),
            }),
    }
}

/// `--pending-bytes-per-sender` when not given: its default (8 MiB), or a
/// 64th of the global pool if that is less (a pool lowered for a small
/// machine still takes 64 senders to fill), but never under one largest
/// message.
fn default_per_sender(default: usize, pending_bytes: usize) -> usize {
    let largest = 2 * limits::MAX_CONTENT_BYTES;
    default.min(pending_bytes / 64).max(largest)
}

#[cfg(test)]
mod tests;
