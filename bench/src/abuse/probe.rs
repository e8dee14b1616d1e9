//! What the `abuse` scenario measures with, apart from the attacks: the
//! bystander that PINGs through an attack, the RSS watch (peak, and a
//! safety ceiling that stops an attack), the new-client check, a blocking
//! line connection that reads error codes, the tally of errors by code, and
//! connecting from another loopback address (127.0.0.2), so that limits per
//! peer address, once the server has them, count the attacker and not the
//! users it is measured against.

use crate::login::{Ping, PingStats};
use crate::server;
use crate::wire;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Source address of everyone who is not the attacker.
pub const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Pause between two bystander PINGs.
const PING_GAP: Duration = Duration::from_millis(2);
/// A PING unanswered this long counts as lost and ends the bystander.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// The bystander never sends more than this many PINGs.
const PING_LIMIT: usize = 1_000_000;
/// Time the new-client check gives connect and then the PONG.
const NEW_CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the server's RSS is read during an attack.
const RSS_EVERY: Duration = Duration::from_millis(20);

/// Error replies and failures, by code (`rate_limited`) or by what went
/// wrong on the socket (`connect: timed out`).
#[derive(Clone, Debug, Default)]
pub struct Tally(pub BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, key: impl Into<String>) {
        *self.0.entry(key.into()).or_insert(0) += 1;
    }

    /// How many of `key`.
    pub fn count(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    pub fn merge(&mut self, other: Tally) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_insert(0) += v;
        }
    }

    /// `rate_limited 12, connect: timed out 3`, or `none`.
    pub fn summary(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0
            .iter()
            .map(|(k, v)| format!("{k} {}", crate::thousands(*v as f64)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The `code` of an `{"ok":false,"error":{"code":"..."}}` line, else
/// what the line starts with.
pub fn error_code(line: &[u8]) -> String {
    const KEY: &[u8] = br#""code":""#;
    if let Some(at) = line.windows(KEY.len()).position(|w| w == KEY) {
        let rest = &line[at + KEY.len()..];
        let end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
        return String::from_utf8_lossy(&rest[..end.min(40)]).into_owned();
    }
    let head = &line[..line.len().min(40)];
    format!("reply {}", String::from_utf8_lossy(head).trim_end())
}

/// A short name for a socket error, to tally.
pub fn io_key(what: &str, e: &io::Error) -> String {
    let kind = match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".to_string(),
        io::ErrorKind::ConnectionRefused => "refused".into(),
        io::ErrorKind::ConnectionReset => "reset".into(),
        io::ErrorKind::BrokenPipe => "broken pipe".into(),
        io::ErrorKind::AddrNotAvailable => "no local port".into(),
        _ => match e.raw_os_error() {
            Some(24) => "too many open files".into(),
            _ => e.to_string(),
        },
    };
    format!("{what}: {kind}")
}

/// Connects from [`OTHER_HOST`] to `dst`, giving up after `timeout`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn connect_other(dst: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(dst) = dst else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv4 only"));
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: plain socket calls on a descriptor owned by `stream` from the
    // moment socket() returns, so every error path closes it; the pointers
    // are to locals that outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        // A blocking connect gives up after SO_SNDTIMEO (EINPROGRESS).
        check(libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        ))?;
        let src = sockaddr(OTHER_HOST, 0);
        check(libc::bind(
            fd,
            &src as *const libc::sockaddr_in as *const libc::sockaddr,
            len,
        ))?;
        let to = sockaddr(*dst.ip(), dst.port());
        let rc = libc::connect(
            fd,
            &to as *const libc::sockaddr_in as *const libc::sockaddr,
            len,
        );
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINPROGRESS) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
            }
            return Err(e);
        }
        Ok(stream)
    }
}

/// Elsewhere: an ordinary connect from 127.0.0.1.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn connect_other(dst: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&dst, timeout)
}

/// Whether the peer has closed (or reset) `s`, from the kernel's TCP
/// state, without reading what may still be queued on it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn peer_closed(s: &TcpStream) -> Option<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    let state = unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut libc::tcp_info as *mut libc::c_void,
            &mut len,
        );
        if rc != 0 {
            return None;
        }
        info.tcpi_state
    };
    // 1 is ESTABLISHED; CLOSE_WAIT (8) and CLOSE (7) mean the peer went.
    Some(state != 1)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn peer_closed(_s: &TcpStream) -> Option<bool> {
    None
}

/// A reply: the line on success, else the error code.
pub type Reply = Result<Vec<u8>, String>;

/// A blocking line-protocol connection that reports error replies by code
/// instead of failing on them, and skips push events.
pub struct Conn {
    reader: BufReader<TcpStream>,
    line: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream, timeout: Duration) -> io::Result<Conn> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            reader: BufReader::with_capacity(256 * 1024, stream),
            line: Vec::with_capacity(4096),
        })
    }

    /// How long a read or write may wait from now on.
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        let s = self.reader.get_ref();
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))
    }

    /// Writes `bytes` (whole request lines).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.reader
            .get_mut()
            .write_all(bytes)
            .map_err(|e| io_key("write", &e))
    }

    /// Reads up to the next reply line, skipping events.
    pub fn reply(&mut self) -> Result<Reply, String> {
        for _ in 0..100_000 {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => return Err("closed by the server".into()),
                Ok(_) => {}
                Err(e) => return Err(io_key("reply", &e)),
            }
            if self.line.starts_with(br#"{"ok":true"#) {
                return Ok(Ok(self.line.clone()));
            }
            if wire::is_error_reply(&self.line) {
                return Ok(Err(error_code(&self.line)));
            }
        }
        Err("no reply among 100,000 events".into())
    }

    /// One request line (with its `\n`) and its reply.
    pub fn request(&mut self, bytes: &[u8]) -> Result<Reply, String> {
        self.send(bytes)?;
        self.reply()
    }

    /// The socket back; fails if bytes were read ahead.
    pub fn into_stream(self) -> Result<TcpStream, String> {
        if !self.reader.buffer().is_empty() {
            return Err("unexpected bytes after a reply".into());
        }
        Ok(self.reader.into_inner())
    }
}

/// Whether a new client (from [`OTHER_HOST`]) gets a PONG; the reason if not.
pub fn new_client(addr: SocketAddr) -> Result<(), String> {
    let stream = connect_other(addr, NEW_CLIENT_TIMEOUT).map_err(|e| io_key("connect", &e))?;
    let mut conn = Conn::new(stream, NEW_CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
    match conn.request(b"PING\n")? {
        Ok(_) => Ok(()),
        Err(code) => Err(code),
    }
}

/// A connection from [`OTHER_HOST`], bound to a user with `AUTH token`.
pub fn authed_other(addr: SocketAddr, token: &str) -> Result<TcpStream, String> {
    let stream =
        connect_other(addr, wire::REPLY_TIMEOUT).map_err(|e| io_key("bystander connect", &e))?;
    let mut conn = Conn::new(stream, wire::REPLY_TIMEOUT).map_err(|e| e.to_string())?;
    conn.request(format!("AUTH {token}\n").as_bytes())?
        .map_err(|code| format!("bystander AUTH refused: {code}"))?;
    conn.into_stream()
}

/// A connection that PINGs every [`PING_GAP`] on its own thread and
/// records each round trip.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    pings: Arc<Mutex<Vec<Ping>>>,
    lost: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Bystander {
    pub fn start(stream: TcpStream) -> Result<Bystander, String> {
        let mut conn = Conn::new(stream, PING_TIMEOUT).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let pings = Arc::new(Mutex::new(Vec::with_capacity(8192)));
        let lost = Arc::new(Mutex::new(None));
        let (t_stop, t_pings, t_lost) = (stop.clone(), pings.clone(), lost.clone());
        let thread = std::thread::Builder::new()
            .name("bystander".into())
            .spawn(move || {
                for _ in 0..PING_LIMIT {
                    if t_stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let sent = Instant::now();
                    let outcome = conn.request(b"PING\n");
                    let micros = sent.elapsed().as_micros() as u64;
                    match outcome {
                        Ok(Ok(_)) => t_pings.lock().expect("lock").push(Ping { sent, micros }),
                        Ok(Err(code)) => {
                            *t_lost.lock().expect("lock") = Some(format!("PING refused: {code}"));
                            return;
                        }
                        Err(e) => {
                            // The stall itself is the finding: record it.
                            t_pings.lock().expect("lock").push(Ping { sent, micros });
                            *t_lost.lock().expect("lock") = Some(format!("bystander lost: {e}"));
                            return;
                        }
                    }
                    std::thread::sleep(PING_GAP);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Bystander {
            stop,
            pings,
            lost,
            thread: Some(thread),
        })
    }

    /// Stops the pinger (waiting at most for one PING's timeout).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Round trips of the PINGs sent in `[from, to)`, corrected for
    /// coordinated omission (see [`with_omitted`]).
    pub fn stats(&self, from: Instant, to: Instant) -> Option<PingStats> {
        let pings = self.pings.lock().expect("lock");
        PingStats::of(&with_omitted(&pings, PING_GAP), from, to)
    }

    /// Why the bystander stopped early, if it did.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().expect("lock").clone()
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The PINGs plus those a one-at-a-time pinger could not send while a
/// reply was late: a round trip of T counts as well T - gap, T - 2 gap,
/// and so on down to one gap, as if PINGs had gone out every `gap`
/// meanwhile. Without this a stall of seconds is one slow sample among
/// thousands and hides below the p99.
pub fn with_omitted(pings: &[Ping], gap: Duration) -> Vec<Ping> {
    let gap = (gap.as_micros() as u64).max(1);
    let mut all = Vec::with_capacity(pings.len());
    for p in pings {
        all.push(*p);
        let mut late = p.micros;
        while late > gap {
            late -= gap;
            all.push(Ping {
                sent: p.sent,
                micros: late,
            });
        }
    }
    all
}

/// Everything an attack checks before its next step: its time, and a halt
/// that the RSS watch (or the attack itself) can pull, with the reason.
pub struct Guard {
    pub until: Instant,
    /// The attack's time, from `Guard::new` to `until`.
    pub length: Duration,
    halted: AtomicBool,
    why: Mutex<Option<String>>,
}

impl Guard {
    pub fn new(length: Duration) -> Guard {
        Guard {
            until: Instant::now() + length,
            length,
            halted: AtomicBool::new(false),
            why: Mutex::new(None),
        }
    }

    /// Whether the attack may go on.
    pub fn go(&self) -> bool {
        !self.halted.load(Ordering::Relaxed) && Instant::now() < self.until
    }

    /// Whether the attack was stopped early.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    /// Stops the attack early; the first reason is kept.
    pub fn halt(&self, why: String) {
        self.why.lock().expect("lock").get_or_insert(why);
        self.halted.store(true, Ordering::Relaxed);
    }

    pub fn why(&self) -> Option<String> {
        self.why.lock().expect("lock").clone()
    }

    /// Sleeps until the attack's time is up (or it is halted).
    pub fn wait_out(&self) {
        while self.go() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads the server's RSS every [`RSS_EVERY`] on its own thread, keeps the
/// peak, and halts the guard when the RSS passes a ceiling.
pub struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssWatch {
    pub fn start(pid: u32, ceiling_kib: u64, guard: Arc<Guard>) -> Result<RssWatch, String> {
        let peak = Arc::new(AtomicU64::new(server::rss_kib(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (t_peak, t_stop) = (peak.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("rss-watch".into())
            .spawn(move || {
                while !t_stop.load(Ordering::Relaxed) {
                    let Some(kib) = server::rss_kib(pid) else {
                        return; // the server is gone
                    };
                    t_peak.fetch_max(kib, Ordering::Relaxed);
                    if kib > ceiling_kib {
                        guard.halt(format!(
                            "stopped at the bench's safety ceiling of {} MiB server RSS",
                            ceiling_kib / 1024
                        ));
                    }
                    std::thread::sleep(RSS_EVERY);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(RssWatch {
            peak,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops watching; returns the peak in KiB.
    pub fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_replies() {
        let line = br#"{"ok":false,"error":{"code":"rate_limited","message":"x"}}"#;
        assert_eq!(error_code(line), "rate_limited");
        assert_eq!(error_code(b"HTTP/1.1 429 x"), "reply HTTP/1.1 429 x");
    }

    #[test]
    fn tallies_merge_and_summarise() {
        let mut a = Tally::default();
        a.add("rate_limited");
        a.add("rate_limited");
        let mut b = Tally::default();
        b.add("connect: timed out");
        b.add("rate_limited");
        a.merge(b);
        assert_eq!(a.summary(), "connect: timed out 1, rate_limited 3");
        assert_eq!(Tally::default().summary(), "none");
    }

    #[test]
    fn late_pings_stand_for_the_ones_not_sent() {
        let t0 = Instant::now();
        let ping = |micros| Ping { sent: t0, micros };
        let all = with_omitted(&[ping(500), ping(7_000)], Duration::from_millis(2));
        let us: Vec<u64> = all.iter().map(|p| p.micros).collect();
        assert_eq!(us, [500, 7_000, 5_000, 3_000, 1_000]);
    }

    #[test]
    fn guard_halts_once_with_the_first_reason() {
        let g = Guard::new(Duration::from_secs(60));
        assert!(g.go());
        g.halt("first".into());
        g.halt("second".into());
        assert!(!g.go());
        assert_eq!(g.why().as_deref(), Some("first"));
    }
}
