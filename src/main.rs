//! The `gotalk` program: reads flags and `GOTALK_*` variables (the table
//! is `config::flags`), resolves the names in them, binds the port, opens
//! the store and the token key, starts the helper threads and runs the
//! event loop until a graceful stop. The port is bound first, so a start that fails for want
//! of it creates nothing on disk.

use gotalk::config::{parse_args, Config, ConfigError, Flags, Invocation, Purpose};
use gotalk::core::{Core, CoreSettings, ThrottleSettings};
use gotalk::hasher::{dummy_hash, Hasher};
use gotalk::server::{Parts, Server, WAKER};
use gotalk::store::memory::MemoryStore;
use gotalk::store::postgres::PostgresStore;
use gotalk::store::sqlite::SqliteStore;
use gotalk::store::Store;
use gotalk::token::TokenKey;
use gotalk::token_file;
use mio::{Poll, Waker};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    // A usage error prints clap's message (with a suggestion for a
    // misspelt flag) and exits with 2; --help and --version exit with 0.
    let flags = match parse_args(std::env::args_os()) {
        Ok(Invocation::Run(flags)) => flags,
        Ok(Invocation::GenCert(request)) => {
            return match gotalk::tls::gen_cert::run(&request) {
                Ok(said) => {
                    print!("{said}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gotalk gen-cert: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(Invocation::RotateKey(flags)) => {
            return match settings(*flags, Purpose::RotateKey) {
                Ok(config) => rotate_key(&config),
                Err(code) => code,
            }
        }
        Err(e) => e.exit(),
    };
    let config = match settings(*flags, Purpose::Server) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let logging = gotalk::logging::init(config.log_format, config.log_level);
    if let Err(e) = &logging {
        eprintln!("gotalk: cannot start logging: {e}");
    }
    let errors_logged = logging.is_ok() && config.log_level >= log::LevelFilter::Error;
    match start(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Printed once: through the log when it shows errors.
            if errors_logged {
                log::error!("gotalk: {e}");
            } else {
                eprintln!("gotalk: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The settings from the flags: names in `--listen` and `--metrics`
/// resolved, and the checks that need the store's rules made. A refusal is
/// a usage error: printed, exit status 2.
fn settings(flags: Flags, purpose: Purpose) -> Result<Config, ExitCode> {
    let resolve = |text: &str| -> std::io::Result<Vec<std::net::SocketAddr>> {
        std::net::ToSocketAddrs::to_socket_addrs(text).map(Iterator::collect)
    };
    let checked = flags
        .into_config(purpose, &resolve)
        .and_then(|config| match &config.node_id {
            Some(name) if !gotalk::store::postgres::wakeup::is_node_id(name) => {
                Err(ConfigError::BadNodeId(name.clone()))
            }
            _ => Ok(config),
        });
    checked.map_err(|e| {
        eprintln!("gotalk: {e}");
        ExitCode::from(2)
    })
}

/// The key file of a server started with `config`.
fn key_path(config: &Config) -> std::path::PathBuf {
    config
        .key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("secret.key"))
}

/// `gotalk rotate-key`: a new current key in front of the old ones.
fn rotate_key(config: &Config) -> ExitCode {
    let path = key_path(config);
    match gotalk::token_file::rotate(&path) {
        Ok(keys) => {
            println!(
                "{}: key {} is now the current token key; restart gotalk to seal new tokens with it",
                path.display(),
                keys[0].kid
            );
            let now = unix_now();
            for note in token_file::retirement_notes(&keys, config.token_ttl.as_secs(), now) {
                println!("{note}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gotalk rotate-key: token key {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the token keys and says, for each older key, until when it is
/// needed.
fn load_keys(path: &std::path::Path, ttl_secs: u64) -> Result<TokenKey, String> {
    let keys = token_file::load_or_create(path)
        .map_err(|e| format!("token key {}: {e}", path.display()))?;
    for note in token_file::retirement_notes(&keys, ttl_secs, unix_now()) {
        log::info!("{}: {note}", path.display());
    }
    let ring: Vec<_> = keys.iter().map(|k| (k.kid, k.key)).collect();
    Ok(TokenKey::from_ring(&ring))
}

fn start(mut config: Config) -> Result<(), String> {
    let open_files = gotalk::fdlimit::raise_to_hard_limit();
    if config.max_connections == 0 {
        config.max_connections = gotalk::fdlimit::connections_for(open_files);
    }
    // Read before the port is bound: a bad file stops the start cleanly.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            Some(gotalk::tls::load::server_config(cert, key).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let listener = mio::net::TcpListener::from_std(listener);
    let poll = Poll::new().map_err(|e| format!("cannot create the event loop: {e}"))?;
    let waker = Arc::new(
        Waker::new(poll.registry(), WAKER).map_err(|e| format!("cannot create a waker: {e}"))?,
    );
    let (mut store, key): (Box<dyn Store>, TokenKey) = if config.memory {
        let key = match &config.key_file {
            Some(path) => load_keys(path, config.token_ttl.as_secs())?,
            None => TokenKey::random(),
        };
        (Box::new(MemoryStore::new()), key)
    } else if let Some(url) = &config.postgres {
        let node = match &config.node_id {
            Some(node) => node.clone(),
            None => generated_node_id(),
        };
        log::info!("node id {node} (--node-id)");
        let caps = gotalk::store::MailboxCaps {
            messages: config.mailbox_limit,
            bytes: config.mailbox_bytes,
            per_sender: config.pending_bytes_per_sender,
        };
        let store = PostgresStore::open_with_history(
            url,
            &node,
            caps,
            history_rules(&config),
            waker.clone(),
        )?;
        // The key stays a file: every node on one database must be given
        // the same one, or tokens from one are refused by the others.
        let key_path = match &config.key_file {
            Some(path) => path.clone(),
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                    format!(
                        "cannot create the data directory {}: {e}",
                        config.data_dir.display()
                    )
                })?;
                config.data_dir.join("secret.key")
            }
        };
        let key = load_keys(&key_path, config.token_ttl.as_secs())?;
        (Box::new(store), key)
    } else {
        // The store creates the data directory and takes its lock first, so
        // a second gotalk on the same directory stops here, before it can
        // race this one to create the token key.
        let store = SqliteStore::open_with_history(
            &config.data_dir,
            config.disk_reserve,
            history_rules(&config),
            waker.clone(),
        )?;
        let key = load_keys(&key_path(&config), config.token_ttl.as_secs())?;
        (Box::new(store), key)
    };
    let snapshot = store.load()?;
    let settings = CoreSettings {
        token_ttl_ms: config.token_ttl.as_millis() as u64,
        mailbox_limit: config.mailbox_limit,
        mailbox_bytes: config.mailbox_bytes,
        pending_bytes: config.pending_bytes,
        client_ids_per_sender: config.client_ids_per_sender,
        waiters_per_user: config.waiters_per_user,
        conns_per_user: config.conns_per_user,
        hash_workers: config.hash_threads,
        hash_queue: config.hash_queue,
        hash_queue_per_address: config.hash_queue_per_address,
        throttle: ThrottleSettings::of(&config),
        on_demand: store.keeps_data(),
        account_cache: config.account_cache,
        mailbox_window: config.mailbox_window,
        mailbox_window_bytes: config.mailbox_window_bytes,
        cluster: config.postgres.is_some(),
        pending_bytes_per_sender: config.pending_bytes_per_sender,
        message_ttl_ms: config.message_ttl.map(|t| t.as_millis() as u64),
        revocations_per_account: config.revocations_per_account,
        history: history_settings(&config),
    };
    let mut core = Core::new(settings, key, dummy_hash());
    core.restore(snapshot);
    let hasher = Hasher::start(config.hash_threads, waker.clone());
    let stop_signals = gotalk::signals::start(waker.clone())
        .map_err(|e| format!("cannot watch for SIGTERM and SIGINT: {e}"))?;
    let stats_requests = match config.metrics {
        Some(addr) => {
            let (bound, requests) =
                gotalk::metrics::start(addr, waker.clone(), config.http_hosts.clone())
                    .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
            log::info!("metrics served at http://{bound}/stats");
            Some(requests)
        }
        None => None,
    };
    let mode = if config.memory {
        "in memory only (--memory)".to_string()
    } else if let Some(url) = &config.postgres {
        format!(
            "data in PostgreSQL at {}",
            gotalk::store::postgres::link::redact(url)
        )
    } else {
        format!("data in {}", config.data_dir.display())
    };
    let mut server = Server::new(Parts {
        listener,
        config: config.clone(),
        poll,
        core,
        hasher,
        store,
        stats_requests,
        stop_signals: Some(stop_signals),
        tls: tls.clone(),
    })
    .map_err(|e| format!("cannot watch the port {}: {e}", config.listen))?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    log::info!(
        "limits: {} connections (open-file limit {}), {} per address, {} bytes of output per \
         connection and {} in all, login within {} s, HTTP requests within {} s, HTTP idle {} s",
        config.max_connections,
        open_files.map_or("unknown".to_string(), |n| n.to_string()),
        config.max_connections_per_address,
        config.max_output,
        config.max_output_total,
        config.login_timeout.as_secs(),
        config.request_timeout.as_secs(),
        config.http_idle_timeout.as_secs(),
    );
    log::info!(
        "budgets: mailboxes {} messages or {} bytes, {} bytes pending in all, {} client_ids \
         per sender, {} long-polls and {} logged-in connections per user, {} password checks \
         queued ({} per address) on {} threads; failed logins {} a minute per username \
         (burst {}) and {} per address, {} registrations per address an hour",
        config.mailbox_limit,
        config.mailbox_bytes,
        config.pending_bytes,
        config.client_ids_per_sender,
        config.waiters_per_user,
        config.conns_per_user,
        config.hash_queue,
        config.hash_queue_per_address,
        config.hash_threads,
        config.login_failures_per_minute,
        config.login_failure_burst,
        config.login_failures_per_address_minute,
        config.registers_per_address_hour,
    );
    let security = match (&config.tls_cert, config.allow_plaintext) {
        (Some(cert), false) => format!("TLS only, certificate {}", cert.display()),
        (Some(cert), true) => format!(
            "TLS with certificate {}, plain connections allowed (--allow-plaintext)",
            cert.display()
        ),
        (None, _) => "plain, no TLS".to_string(),
    };
    log::info!("gotalk listening on {addr} ({mode}; {security})");
    log::info!("{}", gotalk::http::host::startup_note(&config));
    if !config.trusted_proxies.is_empty() {
        let proxies: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(|c| c.to_string())
            .collect();
        log::info!(
            "trusted proxies {}: their PROXY header{} and X-Forwarded-For name the client",
            proxies.join(", "),
            if config.proxy_protocol {
                " (required)"
            } else {
                ""
            }
        );
    }
    server
        .run()
        .map_err(|e| format!("event loop failed: {e}"))?;
    // Dropping the server stops the store's writer once it has written
    // everything submitted; its last connection checkpoints the log.
    drop(server);
    log::info!("gotalk stopped");
    Ok(())
}

/// A node id for a node started without `--node-id`: `node-` and 12 hex
/// digits drawn from the operating system's random source.
fn generated_node_id() -> String {
    let random = gotalk::token::new_identity().to_be_bytes();
    let hex: String = random[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("node-{hex}")
}

/// What the history flags say, for a durable store.
fn history_rules(config: &Config) -> gotalk::store::HistoryRules {
    gotalk::store::HistoryRules {
        keep: config.history,
        retention_ms: config.history_retention.map(|d| d.as_millis() as u64),
    }
}

/// What the history flags say, for the core.
fn history_settings(config: &Config) -> gotalk::core::history::HistorySettings {
    gotalk::core::history::HistorySettings {
        enabled: config.history,
        retention_ms: config.history_retention.map(|d| d.as_millis() as u64),
        memory_bytes: config.history_memory_bytes,
    }
}
