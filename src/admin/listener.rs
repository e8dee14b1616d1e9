//! The admin socket (`--admin-socket`, default `DATA/admin.sock`): a
//! Unix socket created mode 0600, so only the server's own user (and
//! root) can connect; the file system is the authentication, and no
//! network port takes admin requests. A helper thread accepts; each
//! connection gets a thread of its own (at most [`MAX_CONNECTIONS`] at
//! once) that reads request lines, hands each to the loop as an
//! [`AdminCall`] (a channel, then the waker, as the metrics listener
//! does), and writes the reply line once the loop answers. Nothing on the
//! loop thread blocks on the socket.

use super::wire::{self, WireRequest};
use crate::error::Failure;
use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Admin connections served at once; one more is told so and closed.
pub const MAX_CONNECTIONS: usize = 16;
/// The longest request line (a password is at most a few KiB).
pub const MAX_LINE: u64 = 64 * 1024;
/// How long a connection may stay silent between requests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a connection waits for the loop's answer (a delete's commit,
/// a password hash behind a queue) before giving up on it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// One request for the loop; it answers with the reply line on `reply`.
pub struct AdminCall {
    pub request: WireRequest,
    pub reply: Sender<String>,
}

/// The socket while the server runs; dropping it removes the file.
pub struct AdminSocket {
    path: PathBuf,
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates the socket at `path` (mode 0600) and starts its thread. A
/// socket file left by a server that is gone is replaced; one a running
/// server answers on, or any other file, is an error.
pub fn start(path: &Path, waker: Arc<Waker>) -> io::Result<(AdminSocket, Receiver<AdminCall>)> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another server answers on it",
            ));
        }
        std::fs::remove_file(path)?;
    }
    // Created with no permission for group and others from the start (the
    // mode is then set exactly): no moment when another user may connect.
    // SAFETY: umask only swaps the process's file-creation mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = bound?;
    let socket = AdminSocket {
        path: path.to_path_buf(),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let (tx, rx) = crossbeam_channel::bounded(64);
    let busy = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("gotalk-admin".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let mut stream = match stream {
                    Ok(stream) => stream,
                    Err(e) => {
                        log::warn!("admin socket: accept failed: {e}");
                        thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    busy.fetch_sub(1, Ordering::SeqCst);
                    let busy = Failure::new(
                        crate::error::ErrorCode::RateLimited,
                        format!("{MAX_CONNECTIONS} admin connections are open already"),
                    );
                    let _ = writeln!(stream, "{}", wire::error(&busy));
                    continue;
                }
                let (tx, waker, busy) = (tx.clone(), waker.clone(), busy.clone());
                let spawned = thread::Builder::new()
                    .name("gotalk-admin-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve(stream, &tx, &waker) {
                            log::debug!("admin connection ended: {e}");
                        }
                        busy.fetch_sub(1, Ordering::SeqCst);
                    });
                if let Err(e) = spawned {
                    log::warn!("admin socket: cannot start a thread: {e}");
                }
            }
        })?;
    Ok((socket, rx))
}

/// Serves one connection: a reply line for each request line, in order.
fn serve(stream: UnixStream, tx: &Sender<AdminCall>, waker: &Waker) -> io::Result<()> {
    // A connection that sends nothing gives its thread back in time.
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut input).take(MAX_LINE).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") && n as u64 == MAX_LINE {
            let failure =
                Failure::bad_request(format!("an admin request line is at most {MAX_LINE} bytes"));
            writeln!(out, "{}", wire::error(&failure))?;
            return Ok(());
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let answer = match wire::parse(text) {
            Err(failure) => wire::error(&failure),
            Ok(request) => {
                let (reply, answered) = crossbeam_channel::bounded(1);
                if tx.send(AdminCall { request, reply }).is_err() {
                    return Ok(()); // the server is stopping
                }
                waker.wake()?;
                match answered.recv_timeout(ANSWER_TIMEOUT) {
                    Ok(answer) => answer,
                    Err(_) => wire::error(&Failure::new(
                        crate::error::ErrorCode::Unavailable,
                        "the server did not answer in time",
                    )),
                }
            }
        };
        writeln!(out, "{answer}")?;
    }
}
