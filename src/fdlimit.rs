//! The open-file limit. Every connection is a file descriptor; a server
//! that runs out of them cannot accept, so at start the soft limit is
//! raised to the hard one, and the default connection limit is derived
//! from what is left after the server's own files.

/// Descriptors kept for the server itself: the listener, the poll and
/// waker, the database and its journal, the lock and key files, the
/// metrics listener and its connection, standard streams, and room for
/// connections that are being refused.
pub const RESERVED_FDS: u64 = 64;

/// Raises the soft open-file limit to the hard limit where the platform
/// allows it; returns the soft limit in force afterwards, if known.
pub fn raise_to_hard_limit() -> Option<u64> {
    imp::raise()
}

/// The default `--max-connections` for an open-file limit of `soft`.
pub fn connections_for(soft: Option<u64>) -> usize {
    match soft {
        Some(soft) => soft.saturating_sub(RESERVED_FDS).max(16) as usize,
        None => 1024 - RESERVED_FDS as usize,
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    pub fn raise() -> Option<u64> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
        }
        Some(limit.rlim_cur)
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn raise() -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_the_server() {
        assert_eq!(connections_for(Some(1024)), 960);
        assert_eq!(connections_for(Some(10)), 16);
        assert!(raise_to_hard_limit().is_some_and(|n| n > 0) || cfg!(not(target_os = "linux")));
    }
}
