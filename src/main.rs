//! The `gotalk` program: reads flags, opens the store and the token key,
//! starts the password workers and runs the event loop.

use gotalk::config::{help_text, parse_args, Config, Invocation};
use gotalk::core::{Core, CoreSettings};
use gotalk::hasher::{dummy_hash, Hasher};
use gotalk::server::{Parts, Server, WAKER};
use gotalk::store::memory::MemoryStore;
use gotalk::store::sqlite::SqliteStore;
use gotalk::store::Store;
use gotalk::token::TokenKey;
use mio::{Poll, Waker};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Invocation::Run(config)) => config,
        Ok(Invocation::Help) => {
            print!("{}", help_text());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("gotalk {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gotalk: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = simple_logger::SimpleLogger::new()
        .with_level(config.log_level)
        .with_utc_timestamps()
        .init()
    {
        eprintln!("gotalk: cannot start logging: {e}");
    }
    match start(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("gotalk: {e}");
            ExitCode::FAILURE
        }
    }
}

fn start(config: Config) -> Result<(), String> {
    let poll = Poll::new().map_err(|e| format!("cannot create the event loop: {e}"))?;
    let waker = Arc::new(
        Waker::new(poll.registry(), WAKER).map_err(|e| format!("cannot create a waker: {e}"))?,
    );
    let (mut store, key): (Box<dyn Store>, TokenKey) = if config.memory {
        let key = match &config.key_file {
            Some(path) => TokenKey::load_or_create(path)
                .map_err(|e| format!("token key {}: {e}", path.display()))?,
            None => TokenKey::random(),
        };
        (Box::new(MemoryStore::new()), key)
    } else {
        // The store creates the data directory and takes its lock first, so
        // a second gotalk on the same directory stops here, before it can
        // race this one to create the token key.
        let store =
            SqliteStore::open_with_reserve(&config.data_dir, config.disk_reserve, waker.clone())?;
        let key_path = config
            .key_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("secret.key"));
        let key = TokenKey::load_or_create(&key_path)
            .map_err(|e| format!("token key {}: {e}", key_path.display()))?;
        (Box::new(store), key)
    };
    let snapshot = store.load()?;
    let settings = CoreSettings {
        token_ttl_ms: config.token_ttl.as_millis() as u64,
        mailbox_limit: config.mailbox_limit,
        hash_workers: config.hash_threads,
        hash_queue: config.hash_queue,
        hash_queue_per_address: config.hash_queue_per_address,
    };
    let mut core = Core::new(settings, key, dummy_hash());
    core.restore(snapshot);
    let hasher = Hasher::start(config.hash_threads, waker.clone());
    let mode = if config.memory {
        "in memory only (--memory)".to_string()
    } else {
        format!("data in {}", config.data_dir.display())
    };
    let mut server = Server::bind(Parts {
        config: config.clone(),
        poll,
        core,
        hasher,
        store,
    })
    .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    log::info!("gotalk listening on {addr} ({mode})");
    server.run().map_err(|e| format!("event loop failed: {e}"))
}
