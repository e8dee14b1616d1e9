//! TCP keep-alive on client sockets. A logged-in line connection may stay
//! idle as long as it likes (a receiver waiting for pushes sends nothing),
//! so the kernel's keep-alive probes are what finds a peer that vanished
//! without closing: first probe after [`IDLE_SECS`] of silence, then every
//! [`INTERVAL_SECS`], given up after [`PROBES`] unanswered ones.

use mio::net::TcpStream;

pub const IDLE_SECS: i32 = 60;
pub const INTERVAL_SECS: i32 = 10;
pub const PROBES: i32 = 6;

/// Turns keep-alive on for `socket`; a failure only costs the early
/// detection of a dead peer, so it is logged at debug and ignored.
pub fn enable(socket: &TcpStream) {
    if let Err(e) = imp::enable(socket) {
        log::debug!("cannot turn on TCP keep-alive: {e}");
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::{IDLE_SECS, INTERVAL_SECS, PROBES};
    use mio::net::TcpStream;
    use std::io;
    use std::os::fd::AsRawFd;

    pub fn enable(socket: &TcpStream) -> io::Result<()> {
        let fd = socket.as_raw_fd();
        set(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
        set(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, IDLE_SECS)?;
        set(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, INTERVAL_SECS)?;
        set(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, PROBES)
    }

    fn set(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
        // SAFETY: setsockopt reads `size_of::<i32>()` bytes from `value`,
        // which lives for the call; `fd` is an open socket.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &value as *const i32 as *const libc::c_void,
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn enable(_socket: &mio::net::TcpStream) -> std::io::Result<()> {
        Ok(())
    }
}
