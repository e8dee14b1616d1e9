//! Server processes under test: `gotalk` started on 127.0.0.1:0 (its
//! address read from the `listening on` log line, stderr drained for the
//! whole run and its `store stats:` lines recorded), other servers on a
//! free port, and what `/proc` says about a process (CPU time, RSS, open
//! file limit). Every process started here is killed when its handle drops.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

mod proc;
pub use proc::*;

/// How long a server may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines kept to explain a failure.
const KEEP_LINES: usize = 40;

/// One cumulative `store stats:` log line, with the value of the bench's
/// message counter at the moment the line was read, so a commit count can
/// be set against the messages sent over exactly the same interval.
#[derive(Clone, Copy, Debug)]
pub struct StoreStats {
    pub at: Instant,
    pub batches: u64,
    pub transactions: u64,
    pub writes: u64,
    /// The counter given to [`Gotalk::count_with`] when the line was read.
    pub counted: u64,
    /// The writing thread's CPU microseconds by phase ([`SPLIT_FIELDS`]),
    /// where the store splits them (SQLite).
    pub split: Option<[u64; SPLIT_FIELDS.len()]>,
}

/// The `store stats:` fields of the writing thread's CPU split: cumulative
/// microseconds per phase, then the commits' wall time and the pages they
/// wrote.
pub const SPLIT_FIELDS: [&str; 10] = [
    "begin",
    "append",
    "ack",
    "sides",
    "totals",
    "other",
    "index",
    "commit",
    "commit_wall_us",
    "pages",
];

#[derive(Default)]
struct LogState {
    tail: Mutex<VecDeque<String>>,
    stats: Mutex<Vec<StoreStats>>,
    counter: Mutex<Option<Arc<AtomicU64>>>,
}

/// A running `gotalk`; killed on drop.
pub struct Gotalk {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<LogState>,
    data_dir: Option<PathBuf>,
}

/// Throttle flags that let one address register and log in at will.
pub const UNTHROTTLED: [&str; 12] = [
    "--registers-per-address-hour",
    "1000000",
    "--login-failures-per-minute",
    "1000000",
    "--login-failure-burst",
    "1000000",
    "--login-failures-per-address-minute",
    "1000000",
    "--lookups-per-address-minute",
    "1000000",
    "--logins-per-account-minute",
    "1000000",
];

/// Fair shares that let one account send and one address connect and
/// upload at will; every scenario but `abuse` (which measures them) starts
/// with them. The rates stay on, far above any load a bench makes, so
/// `relay` pays their checks (the cost a deployment pays) without ever
/// meeting them. Given as `GOTALK_*` variables rather than flags, so the
/// same bench also drives a server from before the fair shares (which
/// ignores them) for a before-and-after run in one go.
pub const UNSHARED: [(&str, &str); 7] = [
    ("GOTALK_SENDS_PER_SECOND", "1000000000"),
    ("GOTALK_SEND_BURST", "1000000000"),
    ("GOTALK_NEW_RECIPIENTS_PER_HOUR", "1000000000"),
    ("GOTALK_READ_BYTES_PER_SECOND", "1000000000000"),
    ("GOTALK_READ_BURST", "1000000000000"),
    ("GOTALK_CONNECTIONS_PER_ADDRESS_PER_SECOND", "1000000000"),
    ("GOTALK_CONNECTIONS_PER_ADDRESS_BURST", "1000000000"),
];

/// How to start a server beyond its store: extra flags and, where the
/// platform allows, a lower open-file limit for it alone.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Flags appended to the command line as given.
    pub args: Vec<String>,
    /// Sets the server's `RLIMIT_NOFILE` (soft and hard, so the server
    /// cannot raise it again) before it runs; `None` inherits the bench's.
    pub open_files: Option<u64>,
    /// Keeps the fair shares at their defaults ([`UNSHARED`] is not
    /// given), for `abuse`.
    pub fair_shares: bool,
}

/// Which store the server runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Memory,
    /// The default SQLite store in a fresh temporary `--data` directory.
    Durable,
    /// `--postgres` on [`POSTGRES_URL`], emptied first (the token key in a
    /// fresh temporary `--data` directory).
    Postgres,
}

/// The database `Mode::Postgres` servers use (`gotalk-bench --postgres`).
pub static POSTGRES_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Drops every table of the database at `url`, so a run starts empty.
fn empty_database(url: &str) -> Result<(), String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .map_err(|e| format!("cannot connect to the --postgres database: {e}"))?;
    client
        .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .map_err(|e| format!("cannot empty the --postgres database: {e}"))
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Memory => "--memory",
            Mode::Durable => "durable",
            Mode::Postgres => "postgres",
        }
    }
}

impl Gotalk {
    /// Starts `path` on 127.0.0.1:0 and waits for its ready line.
    pub fn start(path: &Path, mode: Mode) -> Result<Gotalk, String> {
        Gotalk::start_with(path, mode, &Launch::default())
    }

    /// [`Gotalk::start`] with extra flags and limits.
    pub fn start_with(path: &Path, mode: Mode, launch: &Launch) -> Result<Gotalk, String> {
        let data_dir = match mode {
            Mode::Memory => None,
            Mode::Durable => Some(temp_dir("data")?),
            Mode::Postgres => {
                let url = POSTGRES_URL.get().ok_or("no --postgres URL given")?;
                empty_database(url)?;
                let mut launch = launch.clone();
                launch.args.extend(["--postgres".to_string(), url.clone()]);
                return Gotalk::spawn(path, Some(temp_dir("data")?), &launch);
            }
        };
        Gotalk::spawn(path, data_dir, launch)
    }

    /// Kills a durable server and starts it again on the same data
    /// directory (which the new handle then owns).
    pub fn restart(mut self, path: &Path, launch: &Launch) -> Result<Gotalk, String> {
        let dir = self
            .data_dir
            .take()
            .ok_or("only a durable server can be restarted")?;
        drop(self);
        Gotalk::spawn(path, Some(dir), launch)
    }

    /// Kills a durable server and hands back its data directory, which the
    /// caller then owns (to change it offline and start on it again).
    pub fn stop(mut self) -> Result<PathBuf, String> {
        let dir = self
            .data_dir
            .take()
            .ok_or("only a durable server leaves a data directory")?;
        drop(self);
        Ok(dir)
    }

    /// Starts `path` on an existing data directory, which the handle owns.
    pub fn start_on(path: &Path, dir: PathBuf, launch: &Launch) -> Result<Gotalk, String> {
        Gotalk::spawn(path, Some(dir), launch)
    }

    /// Starts `path` with `--data dir`, or `--memory` without a directory.
    fn spawn(path: &Path, data_dir: Option<PathBuf>, launch: &Launch) -> Result<Gotalk, String> {
        let mode = if data_dir.is_some() {
            Mode::Durable
        } else {
            Mode::Memory
        };
        if !path.exists() {
            return Err(format!(
                "no server binary at {} (build it with `cargo build --release`, or give --server PATH)",
                path.display()
            ));
        }
        let mut cmd = Command::new(path);
        cmd.args(["--listen", "127.0.0.1:0"]);
        match &data_dir {
            None => cmd.arg("--memory"),
            Some(dir) => cmd.arg("--data").arg(dir),
        };
        // Benchmarks register many users and log in over and over from one
        // address: the throttles are opened wide (a launch may still set them).
        cmd.args(UNTHROTTLED);
        if !launch.fair_shares {
            cmd.envs(UNSHARED);
        }
        cmd.args(&launch.args);
        if let Some(limit) = launch.open_files {
            limit_open_files(&mut cmd, limit)?;
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(LogState::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_log = log.clone();
        std::thread::Builder::new()
            .name("gotalk-stderr".into())
            .spawn(move || drain(stderr, thread_log, ready_tx))
            .map_err(|e| format!("cannot start the log reader: {e}"))?;
        let mut server = Gotalk {
            child,
            addr: "127.0.0.1:0".parse().expect("valid"),
            log,
            data_dir,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                server.addr = addr;
                Ok(server)
            }
            Err(_) => {
                // Give the log reader a moment to take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                let status = match server.child.try_wait() {
                    Ok(Some(status)) => format!("it exited ({status})"),
                    _ => format!("it did not log `listening on` within {START_TIMEOUT:?}"),
                };
                Err(format!(
                    "gotalk {} did not start: {status}; its log:\n{}",
                    mode.name(),
                    server.log_tail()
                ))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `--data` directory of a durable server.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last log lines, for error messages.
    pub fn log_tail(&self) -> String {
        let tail = self.log.tail.lock().expect("log lock");
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// From now on, each `store stats:` line records this counter's value.
    pub fn count_with(&self, counter: Arc<AtomicU64>) {
        *self.log.counter.lock().expect("log lock") = Some(counter);
    }

    /// Every `store stats:` line seen so far, oldest first.
    pub fn store_stats(&self) -> Vec<StoreStats> {
        self.log.stats.lock().expect("log lock").clone()
    }

    /// Waits for a `store stats:` line read after `after`; `None` on timeout.
    pub fn next_stats(&self, after: Instant, timeout: Duration) -> Option<StoreStats> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.store_stats().into_iter().find(|s| s.at > after) {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gotalk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Reads the server's stderr to its end: the first `listening on ADDR`
/// goes to `ready`, `store stats:` lines are recorded, and a short tail is
/// kept. Never stops reading, so the server can never block on a full pipe.
fn drain(stderr: std::process::ChildStderr, log: Arc<LogState>, ready: mpsc::Sender<SocketAddr>) {
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    let mut announced = false;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = line.trim_end();
        if !announced {
            if let Some(addr) = listening_addr(text) {
                announced = true;
                let _ = ready.send(addr);
            }
        }
        if let Some(mut stats) = parse_store_stats(text) {
            let counter = log.counter.lock().expect("log lock").clone();
            stats.counted = counter.map_or(0, |c| c.load(Ordering::Relaxed));
            log.stats.lock().expect("log lock").push(stats);
        }
        let mut tail = log.tail.lock().expect("log lock");
        if tail.len() == KEEP_LINES {
            tail.pop_front();
        }
        tail.push_back(text.to_string());
    }
}

/// The address in a `... listening on 127.0.0.1:PORT ...` line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The counters of a `store stats: batches=B transactions=T writes=W` line.
pub fn parse_store_stats(line: &str) -> Option<StoreStats> {
    let rest = &line[line.find("store stats:")? + "store stats:".len()..];
    let field = |name: &str| -> Option<u64> {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.trim_end_matches(',').parse().ok())
    };
    Some(StoreStats {
        at: Instant::now(),
        batches: field("batches")?,
        transactions: field("transactions")?,
        writes: field("writes").unwrap_or(0),
        counted: 0,
        split: (|| {
            let mut split = [0; SPLIT_FIELDS.len()];
            for (slot, name) in split.iter_mut().zip(SPLIT_FIELDS) {
                *slot = field(name)?;
            }
            Some(split)
        })(),
    })
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(what: &str) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "gotalk-bench-{what}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Another server (redis-server, nats-server, mosquitto) on a free port;
/// killed on drop.
pub struct External {
    child: Child,
    pub addr: SocketAddr,
    pub name: String,
}

impl External {
    /// Finds `program` on PATH (or in /usr/sbin), or `None`.
    pub fn find(program: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    }

    /// Starts `program` with `args`, where `{port}` stands for a free port,
    /// and waits until the port accepts connections.
    pub fn start(program: &Path, args: &[&str]) -> Result<External, String> {
        let port = free_port()?;
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let child = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("valid");
        let mut ext = External {
            child,
            addr,
            name: program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(ext);
            }
            if let Ok(Some(status)) = ext.child.try_wait() {
                return Err(format!("{} exited at start ({status})", ext.name));
            }
            if Instant::now() >= deadline {
                return Err(format!("{} did not listen on {addr}", ext.name));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now (the OS picks it).
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Clock ticks per second of `/proc/PID/stat` times (USER_HZ, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_address() {
        let line = "2026-11-26T14:40:33.364Z INFO  [gotalk] gotalk listening on 127.0.0.1:44401 (in memory only (--memory))";
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:44401".parse().unwrap())
        );
        assert_eq!(listening_addr("INFO loaded 0 accounts"), None);
    }

    #[test]
    fn parses_store_stats() {
        let s = parse_store_stats(
            "2026-11-26T14:40:33Z INFO  [gotalk::store::sqlite] store stats: batches=10 transactions=4 writes=120",
        )
        .unwrap();
        assert_eq!((s.batches, s.transactions, s.writes), (10, 4, 120));
        assert_eq!(s.split, None);
        let s = parse_store_stats(
            "store stats: batches=10 transactions=4 writes=120 cpu_us=36 begin=1 append=2 \
             ack=3 sides=4 totals=5 other=6 index=8 commit=15 commit_wall_us=900 pages=7",
        )
        .unwrap();
        assert_eq!(s.writes, 120);
        assert_eq!(s.split, Some([1, 2, 3, 4, 5, 6, 8, 15, 900, 7]));
        assert!(parse_store_stats("store stats: nothing").is_none());
    }

    #[test]
    fn reads_own_proc_files() {
        assert!(cpu_ticks(None).is_some());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        let (soft, hard) = open_file_limits().unwrap();
        assert!(soft <= hard);
    }
}
