//! The metrics listener (`--metrics ADDR`): a helper thread with a blocking
//! listener of its own, separate from the client port, so an operator (or a
//! test) can read the server's figures without being a client. It serves
//! `GET /metrics` in the Prometheus text format and `GET /stats` as JSON
//! (the same figures; see [`exposition`] and `server::figures`). The figures live on the event loop: for each
//! request the thread sends a [`StatsRequest`] over a channel, wakes the
//! loop, and waits a bounded time for the JSON it answers with. Nothing on
//! the loop thread ever blocks on a metrics socket.
//!
//! Each request is served on a thread of its own (at most
//! [`MAX_REQUESTS`] at once; past that the next is told 503 at once) and
//! must arrive whole within [`REQUEST_DEADLINE`] of connecting, so a
//! client sending a byte now and then holds only its own thread, briefly.
//! A `Host` that is not a loopback name, the listener's own address or a
//! `--http-host` name is refused with 421: a DNS-rebinding page (its own
//! name resolving to 127.0.0.1) cannot read the figures.

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub mod exposition;

/// The shape of the figures asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `GET /stats`.
    Json,
    /// `GET /metrics`.
    Prometheus,
}

/// A request for the current figures; the loop answers on `reply`.
pub struct StatsRequest {
    pub format: Format,
    pub reply: Sender<String>,
}

/// How long a metrics client may take to send its request or read the
/// reply, and how long the thread waits for the loop's answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// A request must arrive whole within this of connecting, however its
/// bytes trickle in.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Requests served at once, each on its own thread.
pub const MAX_REQUESTS: usize = 8;
/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;

/// Binds `addr` and starts the thread. Returns the bound address and the
/// channel the loop takes requests from.
/// `hosts` are the `--http-host` names a request's `Host` may name besides
/// loopback and the listener's own address.
pub fn start(
    addr: SocketAddr,
    waker: Arc<Waker>,
    hosts: Vec<String>,
) -> io::Result<(SocketAddr, Receiver<StatsRequest>)> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let (tx, rx) = crossbeam_channel::bounded(16);
    let hosts = Arc::new(hosts);
    let busy = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("gotalk-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_REQUESTS {
                            busy.fetch_sub(1, Ordering::SeqCst);
                            refuse_busy(stream);
                            continue;
                        }
                        let (tx, waker, hosts, busy) =
                            (tx.clone(), waker.clone(), hosts.clone(), busy.clone());
                        let spawned = thread::Builder::new()
                            .name("gotalk-metrics-request".into())
                            .spawn(move || {
                                if let Err(e) = serve(stream, local, &hosts, &tx, &waker) {
                                    log::debug!("metrics request failed: {e}");
                                }
                                busy.fetch_sub(1, Ordering::SeqCst);
                            });
                        if let Err(e) = spawned {
                            log::warn!("metrics listener: cannot start a thread: {e}");
                        }
                    }
                    Err(e) => {
                        log::warn!("metrics listener: accept failed: {e}");
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok((local, rx))
}

/// Tells a client past [`MAX_REQUESTS`] to come back, without reading.
fn refuse_busy(mut stream: TcpStream) {
    let body = "{\"error\":\"too many metrics requests at once; try again\"}";
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = write!(
        stream,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Answers one request on `stream`, then closes it.
fn serve(
    mut stream: TcpStream,
    local: SocketAddr,
    hosts: &[String],
    loop_tx: &Sender<StatsRequest>,
    waker: &Waker,
) -> io::Result<()> {
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = read_head(&mut stream, Instant::now() + REQUEST_DEADLINE)?;
    let first_line = head.lines().next().unwrap_or("");
    let mut words = first_line.split(' ');
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let format = match path.split('?').next().unwrap_or("") {
        "/stats" => Some(Format::Json),
        "/metrics" => Some(Format::Prometheus),
        _ => None,
    };
    let host = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim())
    });
    let host_ok = host.is_none_or(|h| crate::http::host::metrics_host_ok(h, local.ip(), hosts));
    let (status, body) = match (method, format) {
        _ if !host_ok => (
            "421 Misdirected Request",
            "{\"error\":\"this listener answers to loopback names, its own address and \
             --http-host names only\"}"
                .to_string(),
        ),
        ("GET", Some(format)) => match ask_loop(loop_tx, waker, format) {
            Some(body) => ("200 OK", body),
            None => (
                "503 Service Unavailable",
                "{\"error\":\"the server did not answer in time\"}".to_string(),
            ),
        },
        ("GET", None) => (
            "404 Not Found",
            "{\"error\":\"try GET /metrics or GET /stats\"}".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "{\"error\":\"only GET is served\"}".to_string(),
        ),
    };
    let content_type = match format {
        Some(Format::Prometheus) if status.starts_with("200") => {
            "text/plain; version=0.0.4; charset=utf-8"
        }
        _ => "application/json",
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())
}

/// Reads the request head, which must be whole by `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request did not arrive in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn ask_loop(loop_tx: &Sender<StatsRequest>, waker: &Waker, format: Format) -> Option<String> {
    let (reply, answer) = crossbeam_channel::bounded(1);
    loop_tx.try_send(StatsRequest { format, reply }).ok()?;
    waker.wake().ok()?;
    answer.recv_timeout(IO_TIMEOUT).ok()
}
