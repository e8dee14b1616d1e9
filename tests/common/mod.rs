//! Shared harness for goTalk's black-box integration tests.
//!
//! Every test talks to a real `gotalk` process over `127.0.0.1`, exactly as a
//! client would, so these tests check the public contract and nothing else.
//!
//! - [`TestServer`] starts the binary on `127.0.0.1:0` (a fresh port per
//!   test, so tests can run in parallel), waits for its "listening on" log
//!   line, keeps draining its output so the pipes never fill, and kills the
//!   process when dropped.
//! - [`LineClient`] speaks the line protocol over a plain `TcpStream`. Every
//!   read is bounded by a timeout, so a silent server fails the test instead
//!   of hanging it.
//! - Free functions cover the common steps (register, log in, check a reply
//!   or a message) so test files read as the scenario they check.
//!
//! Each test binary compiles this module separately and uses only part of
//! it, hence the `dead_code` allowance below.
#![allow(dead_code)]

pub mod postgres;

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to log that it is listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Default bound on every read a [`LineClient`] makes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on reads that wait for a password hash (REGISTER, LOGIN). The
/// server uses argon2, which is slow on purpose and slower still in the
/// unoptimised builds `cargo test` makes, and many tests hash at once.
pub const HASH_TIMEOUT: Duration = Duration::from_secs(60);

/// Every command of the line protocol, as the contract names them.
pub const COMMANDS: [&str; 9] = [
    "REGISTER", "LOGIN", "AUTH", "SEND", "SYNC", "ACK", "PING", "HELP", "QUIT",
];

/// Every error code the contract defines.
pub const ERROR_CODES: [&str; 9] = [
    "bad_request",
    "unknown_command",
    "unauthorized",
    "not_found",
    "conflict",
    "too_large",
    "rate_limited",
    "unavailable",
    "internal",
];

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// A TCP connection to `addr` from the local address `source` (another
/// loopback address such as 127.0.0.2, for per-address limits).
pub fn connect_from(source: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    try_connect_from(source, addr, None).unwrap_or_else(|e| panic!("connect from {source}: {e}"))
}

/// [`connect_from`] that may fail, giving up after `timeout` (a connect
/// honours the send timeout on Linux) with `TimedOut`.
pub fn try_connect_from(
    source: std::net::Ipv4Addr,
    addr: SocketAddr,
    timeout: Option<Duration>,
) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(addr) = addr else {
        panic!("the test server listens on IPv4")
    };
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; it is
    // handed to TcpStream (which closes it) at once.
    let stream = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    };
    stream.set_write_timeout(timeout)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    // SAFETY: as above; the addresses outlive the calls.
    unsafe {
        let local = sockaddr(source, 0);
        let rc = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind {source}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(*addr.ip(), addr.port());
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EINPROGRESS) => std::io::ErrorKind::TimedOut.into(),
                _ => e,
            });
        }
    }
    stream.set_write_timeout(None)?;
    Ok(stream)
}

/// Throttle flags and the values that open them wide, for tests that
/// register many users or try wrong passwords from one address.
/// The fair shares (send, fan-out, read and connection rates) are off
/// too: tests send, connect and upload faster than any person.
pub const UNTHROTTLED: [(&str, &str); 10] = [
    ("--registers-per-address-hour", "1000000"),
    ("--login-failures-per-minute", "1000000"),
    ("--login-failure-burst", "1000000"),
    ("--login-failures-per-address-minute", "1000000"),
    ("--lookups-per-address-minute", "1000000"),
    ("--logins-per-account-minute", "1000000"),
    ("--sends-per-second", "0"),
    ("--new-recipients-per-hour", "0"),
    ("--read-bytes-per-second", "0"),
    ("--connections-per-address-per-second", "0"),
];

/// Adds each of [`UNTHROTTLED`] that `args` does not set already.
fn unthrottle(args: &mut Vec<String>) {
    for (flag, value) in UNTHROTTLED {
        let given = args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if !given {
            args.push(flag.to_string());
            args.push(value.to_string());
        }
    }
}

/// Which of the child's output streams a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// The test binary that runs the line-protocol scenarios against nodes
/// that keep their data in PostgreSQL.
const POSTGRES_SUITE: &str = "postgres_line_suite";

/// Where a server keeps its data when a test does not say: in RAM
/// (`--memory`), or, in [`POSTGRES_SUITE`] (which compiles the scenario
/// files of the line protocol again), in a fresh database of one
/// PostgreSQL cluster shared by the binary, so the same test bodies check
/// the contract on both stores.
pub fn default_storage() -> Vec<String> {
    if env!("CARGO_CRATE_NAME") == POSTGRES_SUITE {
        let pg = postgres::Postgres::shared();
        let key_file = pg.ready_key_file();
        vec![
            "--postgres".to_string(),
            pg.fresh_database(),
            "--key-file".to_string(),
            key_file.to_str().expect("utf-8 path").to_string(),
        ]
    } else {
        vec!["--memory".to_string()]
    }
}

/// A running `gotalk` process, killed when dropped.
pub struct TestServer {
    child: Child,
    addr: SocketAddr,
    /// The arguments after `--listen 127.0.0.1:0`, kept for [`restart`](Self::restart).
    args: Vec<String>,
    /// Everything the server wrote to stderr so far (the log).
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Everything the server wrote to stdout so far.
    stdout: Arc<Mutex<Vec<u8>>>,
}

impl TestServer {
    /// Starts `gotalk --listen 127.0.0.1:0 <extra>` and waits until it logs
    /// `listening on 127.0.0.1:PORT`.
    ///
    /// `--memory` is added unless `extra` already says where data lives
    /// (`--data DIR`, `--postgres URL`) or asks for `--memory` itself; in
    /// the test binary `postgres_line_suite` a fresh database of the
    /// binary's PostgreSQL cluster is added instead (see [`default_storage`]). Panics, quoting the
    /// server's output, if the line does not appear within
    /// [`START_TIMEOUT`] or the process exits first.
    ///
    /// The contract has the ready line on the log, which is stderr; stdout
    /// is watched too, so a server that logs there still starts (the line's
    /// stream is not what these tests are about).
    ///
    /// The login and registration throttles are opened wide (see
    /// [`UNTHROTTLED`]) unless `extra` sets them: the tests register many
    /// users and try wrong passwords from one address. Tests of the
    /// throttles themselves use [`TestServer::start_with_default_limits`].
    #[track_caller]
    pub fn start(extra: &[&str]) -> TestServer {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        unthrottle(&mut args);
        Self::start_with_default_limits_args(args)
    }

    /// Like [`TestServer::start`], with the throttles at their defaults.
    #[track_caller]
    pub fn start_with_default_limits(extra: &[&str]) -> TestServer {
        Self::start_with_default_limits_args(extra.iter().map(|s| s.to_string()).collect())
    }

    #[track_caller]
    fn start_with_default_limits_args(mut args: Vec<String>) -> TestServer {
        let names_storage = args
            .iter()
            .any(|a| a == "--memory" || a.starts_with("--data") || a.starts_with("--postgres"));
        if !names_storage {
            args.extend(default_storage());
        }
        Self::spawn(args)
    }

    /// Like [`TestServer::start`], with the process's open-file limit (soft
    /// and hard) lowered to `open_files`, so descriptor exhaustion can be
    /// reached with a handful of sockets.
    #[track_caller]
    pub fn start_with_open_files(open_files: u64, extra: &[&str]) -> TestServer {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        unthrottle(&mut args);
        args.push("--memory".to_string());
        Self::spawn_with(args, Some(open_files))
    }

    #[track_caller]
    fn spawn(args: Vec<String>) -> TestServer {
        Self::spawn_with(args, None)
    }

    #[track_caller]
    fn spawn_with(args: Vec<String>, open_files: Option<u64>) -> TestServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gotalk"));
        if let Some(limit) = open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and only changes this
            // child's own limit between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let l = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("could not spawn the gotalk binary");

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<(Stream, String)>();
        drain(
            child.stderr.take().expect("stderr is piped"),
            Stream::Stderr,
            Arc::clone(&stderr),
            tx.clone(),
        );
        drain(
            child.stdout.take().expect("stdout is piped"),
            Stream::Stdout,
            Arc::clone(&stdout),
            tx,
        );

        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((_, line)) => {
                    if let Some(addr) = parse_listening_line(&line) {
                        break addr;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "gotalk {:?} did not log `listening on 127.0.0.1:PORT` within {:?}\n\
                         --- stderr ---\n{}\n--- stdout ---\n{}",
                        args,
                        START_TIMEOUT,
                        lossy(&stderr),
                        lossy(&stdout)
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Both pipes closed: the process is gone or going.
                    let status = wait_with_deadline(&mut child, Duration::from_secs(5));
                    panic!(
                        "gotalk {:?} closed its output before logging that it listens \
                         (exit: {:?})\n--- stderr ---\n{}\n--- stdout ---\n{}",
                        args,
                        status,
                        lossy(&stderr),
                        lossy(&stdout)
                    );
                }
            }
        };
        assert!(
            addr.ip().is_loopback() && addr.port() != 0,
            "server claims to listen on {addr}, expected 127.0.0.1 with a real port"
        );
        TestServer {
            child,
            addr,
            args,
            stderr,
            stdout,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens a new line-protocol connection to this server.
    pub fn connect(&self) -> LineClient {
        LineClient::connect(self.addr)
    }

    /// Kills the server with SIGKILL (no chance to flush or clean up) and
    /// reaps it. Safe to call more than once.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts a new one with the same arguments (on a
    /// new port). With `--data DIR` this is a crash-and-restart; the log of
    /// the old process is dropped.
    pub fn restart(&mut self) {
        self.kill();
        *self = Self::spawn(self.args.clone());
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the server process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill only sends a signal to the child this value owns.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits at most `timeout` for the server to exit; kills it and returns
    /// `None` if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_with_deadline(&mut self.child, timeout)
    }

    /// Starts a new server with the same arguments after this one exited
    /// by itself (a graceful stop), keeping nothing of the old log.
    pub fn start_again(&mut self) {
        *self = Self::spawn(self.args.clone());
    }

    /// The server's exit status if it has exited, without waiting.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Everything the server logged on stderr so far.
    pub fn stderr_text(&self) -> String {
        lossy(&self.stderr)
    }

    /// Everything the server wrote on stdout so far.
    pub fn stdout_text(&self) -> String {
        lossy(&self.stdout)
    }

    /// The server's figures from `GET /stats` on its metrics listener (the
    /// server must have been started with `--metrics 127.0.0.1:0`).
    #[track_caller]
    pub fn stats(&self) -> Value {
        const MARK: &str = "metrics served at http://";
        assert!(
            self.wait_for_stderr(MARK, Duration::from_secs(5)),
            "start the server with --metrics 127.0.0.1:0 to read its stats"
        );
        let log = self.stderr_text();
        let rest = &log[log.find(MARK).expect("waited for it") + MARK.len()..];
        let addr: SocketAddr = rest[..rest.find('/').expect("an address, then /stats")]
            .parse()
            .expect("a socket address in the metrics line");
        let mut stream = TcpStream::connect(addr).expect("connect to the metrics listener");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = &response[response.find("\r\n\r\n").expect("a response head") + 4..];
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Waits (at most 30 s) until the server's stats satisfy `done`;
    /// returns the last stats seen either way.
    pub fn stats_when(&self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stats = self.stats();
            if done(&stats) || Instant::now() >= deadline {
                return stats;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `timeout`) until stderr contains `needle`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr_text().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Copies a child's output stream into `sink` line by line and forwards each
/// line on `tx` (until nobody listens). Runs until the stream closes, so the
/// child never blocks on a full pipe.
fn drain<R: Read + Send + 'static>(
    pipe: R,
    stream: Stream,
    sink: Arc<Mutex<Vec<u8>>>,
    tx: mpsc::Sender<(Stream, String)>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    sink.lock().unwrap().extend_from_slice(&line);
                    let _ = tx.send((stream, String::from_utf8_lossy(&line).into_owned()));
                }
            }
        }
    });
}

/// Finds `listening on 127.0.0.1:PORT` in a log line.
fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let word = rest.split_whitespace().next()?;
    let word = word.trim_end_matches(|c: char| !c.is_ascii_digit());
    word.parse().ok()
}

fn lossy(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// What a short-lived run of the binary (like `gotalk --help`) produced.
#[derive(Debug)]
pub struct CliRun {
    /// `None` if it did not exit within the timeout (it was then killed).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `gotalk <args>` to completion (killing it after `timeout`) and
/// returns its exit status and output.
pub fn run_cli(args: &[&str], timeout: Duration) -> CliRun {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gotalk"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not spawn the gotalk binary");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let (tx, _rx) = mpsc::channel();
    drain(
        child.stdout.take().unwrap(),
        Stream::Stdout,
        Arc::clone(&stdout),
        tx.clone(),
    );
    drain(
        child.stderr.take().unwrap(),
        Stream::Stderr,
        Arc::clone(&stderr),
        tx,
    );
    let status = wait_with_deadline(&mut child, timeout);
    // Give the drain threads a moment to copy the last bytes.
    thread::sleep(Duration::from_millis(100));
    CliRun {
        status,
        stdout: lossy(&stdout),
        stderr: lossy(&stderr),
    }
}

/// A directory under the system temp dir, removed when dropped. Use it for
/// `--data` so tests never share or leave state.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "gotalk-test-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a `&str`, ready to pass as a command-line argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("temp dir path is UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Password hashes as stored
// ---------------------------------------------------------------------------

/// A hash as goTalk made them before m=47104 (argon2's defaults then), to
/// write into a database and see it upgraded at the next LOGIN.
pub fn old_hash(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(19_456, 2, 1, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
}

/// The password hash the durable store in `dir` holds for `name`.
pub fn stored_hash(dir: &TempDir, name: &str) -> String {
    let conn = rusqlite::Connection::open(dir.path().join("gotalk.db")).unwrap();
    conn.query_row(
        "SELECT password_hash FROM users WHERE username = ?1",
        [name],
        |row| row.get(0),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------
// The line-protocol client
// ---------------------------------------------------------------------------

/// One line-protocol connection. Reads are bounded by a timeout (default
/// [`READ_TIMEOUT`]); a timeout, a closed connection or a line that is not a
/// JSON object fails the test with a message saying what was expected.
///
/// Server events (`{"event":...}`) that arrive while waiting for a reply are
/// kept in order; [`read_event`](Self::read_event) returns them first and
/// [`take_events`](Self::take_events) hands them all over.
pub struct LineClient {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    events: VecDeque<Value>,
    timeout: Duration,
}

impl LineClient {
    /// Connects to `addr` (bounded by [`READ_TIMEOUT`]).
    pub fn connect(addr: SocketAddr) -> LineClient {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        LineClient::from_stream(stream)
    }

    /// A client on a connection opened elsewhere (see [`connect_from`]).
    pub fn from_stream(stream: TcpStream) -> LineClient {
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        LineClient {
            writer: stream,
            reader,
            events: VecDeque::new(),
            timeout: READ_TIMEOUT,
        }
    }

    /// Changes the bound on every later read.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        self.writer.set_read_timeout(Some(timeout)).unwrap();
    }

    /// The current read bound.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A second handle on the socket, for writing from another thread while
    /// this one reads (big pipelines must not wait for their own replies).
    pub fn writer_clone(&self) -> TcpStream {
        self.writer.try_clone().unwrap()
    }

    /// Sends `line` followed by `\n`.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.send_raw(&bytes);
    }

    /// Sends bytes exactly as given, in one write call.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to server: {e}"));
        self.writer.flush().unwrap();
    }

    /// Closes the sending side (TCP half-close): the server reads
    /// end-of-file while replies can still be read.
    pub fn shutdown_write(&mut self) {
        self.writer
            .shutdown(std::net::Shutdown::Write)
            .unwrap_or_else(|e| panic!("shutdown(Write): {e}"));
    }

    /// Sends bytes in pieces of `chunk` bytes, one write per piece with a
    /// short pause between, so the server sees them arrive separately.
    pub fn send_in_pieces(&mut self, bytes: &[u8], chunk: usize, pause: Duration) {
        for piece in bytes.chunks(chunk.max(1)) {
            self.send_raw(piece);
            thread::sleep(pause);
        }
    }

    /// Reads one raw line (without its `\n`, and without a `\r` before it).
    #[track_caller]
    pub fn read_line_bytes(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => panic!("server closed the connection while a line was expected"),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => panic!(
                "no complete line from the server within {:?} (partial: {:?})",
                self.timeout,
                String::from_utf8_lossy(&line)
            ),
            Err(e) => panic!("read from server: {e}"),
        }
        assert!(
            line.ends_with(b"\n"),
            "server closed the connection in the middle of a line: {:?}",
            String::from_utf8_lossy(&line)
        );
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
        line
    }

    /// Reads one line as text (panics if it is not UTF-8).
    #[track_caller]
    pub fn read_line(&mut self) -> String {
        let bytes = self.read_line_bytes();
        String::from_utf8(bytes)
            .unwrap_or_else(|e| panic!("server sent a line that is not UTF-8: {e}"))
    }

    /// Reads one line, which must be a JSON object.
    #[track_caller]
    pub fn read_json(&mut self) -> Value {
        let line = self.read_line();
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("server sent a line that is not JSON ({e}): {line:?}"));
        assert!(
            value.is_object(),
            "server sent a JSON line that is not an object: {line}"
        );
        value
    }

    /// Reads lines until a reply (a line with `"ok"`), keeping any events
    /// that come first for [`read_event`](Self::read_event).
    #[track_caller]
    pub fn read_reply(&mut self) -> Value {
        loop {
            let value = self.read_json();
            if is_event(&value) {
                self.events.push_back(value);
                continue;
            }
            assert!(
                value.get("ok").map(Value::is_boolean).unwrap_or(false),
                "line is neither a reply (boolean \"ok\") nor an event (\"event\", no \"ok\"): {value}"
            );
            return value;
        }
    }

    /// Sends a JSON request and returns its reply (events are kept aside).
    #[track_caller]
    pub fn request(&mut self, request: &Value) -> Value {
        self.send_line(&request.to_string());
        self.read_reply()
    }

    /// Sends a text command line and returns its reply (events are kept aside).
    #[track_caller]
    pub fn text(&mut self, line: &str) -> Value {
        self.send_line(line);
        self.read_reply()
    }

    /// Returns the next server event: one kept aside earlier, or the next
    /// line, which must then be an event (not a reply).
    #[track_caller]
    pub fn read_event(&mut self) -> Value {
        if let Some(event) = self.events.pop_front() {
            return event;
        }
        let value = self.read_json();
        assert!(
            is_event(&value),
            "expected a server event, got another line: {value}"
        );
        value
    }

    /// Hands over every event kept aside so far, oldest first.
    pub fn take_events(&mut self) -> Vec<Value> {
        self.events.drain(..).collect()
    }

    /// Asserts that nothing is on its way to this client, without waiting:
    /// sends a PING with a fresh tag and requires the very next line (bytes
    /// already buffered included, and no event kept aside) to be exactly
    /// that PING's PONG.
    ///
    /// Replies come in request order, and a push from work that completed
    /// before the server read the PING is queued ahead of the PONG, so any
    /// line that was going to arrive shows up first and fails the test. Use
    /// it only when no request of this client is still unanswered and no
    /// partial line (no newline yet) has been sent: the PING would wait
    /// behind the one or be glued onto the other.
    #[track_caller]
    pub fn expect_nothing_before_pong(&mut self) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        assert!(
            self.events.is_empty(),
            "expected nothing more, but events were already received: {:?}",
            self.events
        );
        let tag = format!(
            "nothing-before-this-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.send_line(&json!({"cmd": "ping", "tag": tag}).to_string());
        let line = self.read_line_bytes();
        let expected = json!({"ok": true, "pong": true, "tag": tag});
        let got: Option<Value> = serde_json::from_slice(&line).ok();
        assert!(
            got.as_ref() == Some(&expected),
            "expected nothing more, then the PONG {expected}, but received {:?}",
            String::from_utf8_lossy(&line)
        );
    }

    /// Asserts that the server closes the connection cleanly (a read returns
    /// end-of-file) within the read timeout, sending nothing more first.
    #[track_caller]
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) if rest.is_empty() => {}
            Ok(_) => panic!(
                "expected the connection to close, but first received {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) if is_timeout(&e) => panic!(
                "server did not close the connection within {:?} (received {:?})",
                self.timeout,
                String::from_utf8_lossy(&rest)
            ),
            Err(e) => panic!("expected a clean close (EOF), got {e}"),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Every message id in the client's mailbox, oldest first, read by SYNC
/// pages (`after` the last id of the previous page) until one is empty.
pub fn sync_all_ids(client: &mut LineClient) -> Vec<u64> {
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let reply = client.request(&json!({"cmd": "sync", "after": after, "limit": 1000}));
        let ids = message_ids(&reply);
        let Some(&last) = ids.last() else {
            return got;
        };
        after = last;
        got.extend(ids);
    }
}

/// [`sync_all_ids`], SYNCing again after each `unavailable` (a node on
/// PostgreSQL reconnects each of its connections by itself, one after the
/// other, after the database comes back).
pub fn sync_all_retrying(client: &mut LineClient) -> Vec<u64> {
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let reply = client.request(&json!({"cmd": "sync", "after": after, "limit": 1000}));
        if reply["ok"] != true {
            assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let ids = message_ids(&reply);
        let Some(&last) = ids.last() else {
            return got;
        };
        after = last;
        got.extend(ids);
    }
}

/// True for a server event: it carries `"event"` and never `"ok"`.
pub fn is_event(value: &Value) -> bool {
    value.get("event").is_some() && value.get("ok").is_none()
}

// ---------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------

/// Registers `name` on `client` (JSON form); returns the new user id.
#[track_caller]
pub fn register(client: &mut LineClient, name: &str, password: &str) -> u64 {
    let reply = with_timeout(client, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "register", "username": name, "password": password}))
    });
    assert_ok(&reply);
    assert_eq!(reply["user"]["username"], name, "REGISTER reply: {reply}");
    reply["user"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("REGISTER reply without a numeric user.id: {reply}"))
}

/// Logs `client` in as `name` (JSON form), binding the connection to that
/// user; returns the token and the user id.
#[track_caller]
pub fn login(client: &mut LineClient, name: &str, password: &str) -> (String, u64) {
    let reply = with_timeout(client, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "login", "username": name, "password": password}))
    });
    assert_ok(&reply);
    assert_eq!(reply["user"]["username"], name, "LOGIN reply: {reply}");
    let token = reply["token"]
        .as_str()
        .unwrap_or_else(|| panic!("LOGIN reply without a string token: {reply}"))
        .to_string();
    assert!(!token.is_empty(), "LOGIN gave an empty token: {reply}");
    let id = reply["user"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("LOGIN reply without a numeric user.id: {reply}"));
    (token, id)
}

/// Registers `name`, then logs in on the same new connection. Returns the
/// connection (bound to the user, so it receives pushes), the token and the
/// user id.
#[track_caller]
pub fn register_and_login(
    server: &TestServer,
    name: &str,
    password: &str,
) -> (LineClient, String, u64) {
    let mut client = server.connect();
    let id = register(&mut client, name, password);
    let (token, login_id) = login(&mut client, name, password);
    assert_eq!(id, login_id, "LOGIN names a different id than REGISTER");
    (client, token, id)
}

/// Runs `f` with the client's read bound temporarily set to `timeout`.
pub fn with_timeout<T>(
    client: &mut LineClient,
    timeout: Duration,
    f: impl FnOnce(&mut LineClient) -> T,
) -> T {
    let old = client.timeout();
    client.set_timeout(timeout);
    let out = f(client);
    client.set_timeout(old);
    out
}

// ---------------------------------------------------------------------------
// Replies and messages
// ---------------------------------------------------------------------------

/// Asserts `{"ok":true,...}`; returns the reply for chaining.
#[track_caller]
pub fn assert_ok(reply: &Value) -> &Value {
    assert_eq!(
        reply.get("ok"),
        Some(&Value::Bool(true)),
        "expected an ok reply, got {reply}"
    );
    assert!(
        reply.get("error").is_none(),
        "ok reply carries an error: {reply}"
    );
    reply
}

/// Asserts `{"ok":false,"error":{"code":code,"message":"<non-empty>"}}`.
#[track_caller]
pub fn assert_error(reply: &Value, code: &str) {
    assert_error_in(reply, &[code]);
}

/// Like [`assert_error`], accepting any of `codes`; returns the code seen.
#[track_caller]
pub fn assert_error_in(reply: &Value, codes: &[&str]) -> String {
    assert_eq!(
        reply.get("ok"),
        Some(&Value::Bool(false)),
        "expected an error reply ({codes:?}), got {reply}"
    );
    let code = reply["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error reply without a string error.code: {reply}"));
    assert!(
        ERROR_CODES.contains(&code),
        "error code {code:?} is not one of the contract's codes: {reply}"
    );
    assert!(
        codes.contains(&code),
        "expected error code {codes:?}, got {code:?}: {reply}"
    );
    let message = reply["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error reply without a string error.message: {reply}"));
    assert!(
        !message.trim().is_empty(),
        "error message is empty: {reply}"
    );
    code.to_string()
}

/// The error message of an error reply.
#[track_caller]
pub fn error_message(reply: &Value) -> String {
    reply["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {reply}"))
        .to_string()
}

/// The `messages` array of an ok SYNC reply.
#[track_caller]
pub fn messages(reply: &Value) -> Vec<Value> {
    assert_ok(reply);
    reply["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("SYNC reply without a messages array: {reply}"))
        .clone()
}

/// The ids of a SYNC reply's messages, in reply order.
#[track_caller]
pub fn message_ids(reply: &Value) -> Vec<u64> {
    messages(reply)
        .iter()
        .map(|m| {
            m["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("message without a numeric id: {m}"))
        })
        .collect()
}

/// The contents of a SYNC reply's messages, in reply order.
#[track_caller]
pub fn message_contents(reply: &Value) -> Vec<String> {
    messages(reply)
        .iter()
        .map(|m| {
            m["content"]
                .as_str()
                .unwrap_or_else(|| panic!("message without a string content: {m}"))
                .to_string()
        })
        .collect()
}

/// The `id` of an ok SEND reply (also checks its `ts`).
#[track_caller]
pub fn sent_id(reply: &Value) -> u64 {
    assert_ok(reply);
    let ts = reply["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("SEND reply without a numeric ts: {reply}"));
    assert_plausible_ts(ts);
    reply["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("SEND reply without a numeric id: {reply}"))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Asserts that `ts` is milliseconds since the epoch, close to now (within
/// ten minutes either way; a seconds or microseconds value fails).
#[track_caller]
pub fn assert_plausible_ts(ts: u64) {
    let now = now_ms();
    let slack = 10 * 60 * 1000;
    assert!(
        ts + slack >= now && ts <= now + slack,
        "ts {ts} is not milliseconds since the epoch near now ({now})"
    );
}

/// What a stored message must say.
pub struct Expected<'a> {
    pub from: &'a str,
    pub from_id: u64,
    pub to: &'a str,
    pub to_id: u64,
    pub content: &'a str,
    /// `None`: the message must carry no `client_id`.
    pub client_id: Option<&'a str>,
}

/// Checks every field the contract gives a message; returns its id.
#[track_caller]
pub fn assert_message(message: &Value, expected: &Expected) -> u64 {
    let id = message["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("message without a numeric id: {message}"));
    assert!(id > 0, "message id must be positive: {message}");
    assert_eq!(message["from"], expected.from, "from: {message}");
    assert_eq!(message["from_id"], expected.from_id, "from_id: {message}");
    assert_eq!(message["to"], expected.to, "to: {message}");
    assert_eq!(message["to_id"], expected.to_id, "to_id: {message}");
    assert_eq!(message["content"], expected.content, "content: {message}");
    let ts = message["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("message without a numeric ts: {message}"));
    assert_plausible_ts(ts);
    match expected.client_id {
        Some(cid) => assert_eq!(message["client_id"], cid, "client_id: {message}"),
        None => assert!(
            message.get("client_id").is_none() || message["client_id"].is_null(),
            "message carries a client_id although none was given: {message}"
        ),
    }
    id
}

/// Checks a push event: `{"event":"message","message":{...}}` with no
/// `"ok"`; returns the message inside.
#[track_caller]
pub fn assert_message_event(event: &Value) -> Value {
    assert!(
        event.get("ok").is_none(),
        "an event must not carry ok: {event}"
    );
    assert_eq!(event["event"], "message", "event kind: {event}");
    assert!(
        event["message"].is_object(),
        "message event without a message object: {event}"
    );
    event["message"].clone()
}

/// Two nodes (or connections) raced the same REGISTER: exactly one is
/// `ok` and the other `conflict`.
#[track_caller]
pub fn assert_one_registered_one_conflict(replies: &[Value]) {
    let oks = replies.iter().filter(|r| r["ok"] == true).count();
    let conflicts = replies
        .iter()
        .filter(|r| r["error"]["code"] == "conflict")
        .count();
    assert_eq!((oks, conflicts), (1, 1), "{replies:?}");
}
