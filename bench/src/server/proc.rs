//! What the bench reads about processes and the machine from /proc and
//! the resource limits: CPU ticks, RSS, open files, the open-file limit it
//! raises for itself and sets for the servers it starts.

use super::TICKS_PER_SECOND;
use std::path::Path;
use std::process::{Command, Stdio};

/// User plus system CPU time of a process (`None`: this process), in ticks.
pub fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which may itself hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A process's resident set size in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// How many files a process has open (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Total size in bytes of the files under `dir`, subdirectories included.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Makes `cmd`'s process start with at most `limit` open files.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn limit_open_files(cmd: &mut Command, limit: u64) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let lim = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: limit as libc::rlim_t,
    };
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls setrlimit, which is async-signal-safe, on a value it owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn limit_open_files(_cmd: &mut Command, limit: u64) -> Result<(), String> {
    Err(format!(
        "cannot limit the server to {limit} open files on this platform (use --server-open-files 0)"
    ))
}

/// Raises this process's soft open-file limit to its hard limit (servers
/// started later inherit it) and returns the (soft, hard) limits after.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn raise_open_files() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    open_file_limits()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn raise_open_files() -> Option<(u64, u64)> {
    open_file_limits()
}

/// CPU use between two tick readings over `seconds`, as "% of one core".
pub fn cpu_percent(before: Option<u64>, after: Option<u64>, seconds: f64) -> String {
    match (before, after) {
        (Some(b), Some(a)) if seconds > 0.0 => {
            format!(
                "{:.0}% of a core",
                (a - b) as f64 / TICKS_PER_SECOND / seconds * 100.0
            )
        }
        _ => "n/a".to_string(),
    }
}

/// Busy and total CPU ticks of the whole machine, all cores (`/proc/stat`).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .take(8)
        .filter_map(|w| w.parse().ok())
        .collect();
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}

/// CPU that neither the server nor the bench used between two readings of
/// (machine ticks, server ticks, bench ticks): what else ran meanwhile.
pub fn other_cpu(
    before: (Option<(u64, u64)>, Option<u64>, Option<u64>),
    after: (Option<(u64, u64)>, Option<u64>, Option<u64>),
    seconds: f64,
) -> String {
    match (before, after) {
        (
            (Some((b_busy, _)), Some(b_srv), Some(b_me)),
            (Some((a_busy, _)), Some(a_srv), Some(a_me)),
        ) if seconds > 0.0 => {
            let others = (a_busy - b_busy).saturating_sub((a_srv - b_srv) + (a_me - b_me));
            format!(
                "{:.0}% of a core",
                others as f64 / TICKS_PER_SECOND / seconds * 100.0
            )
        }
        _ => "n/a".to_string(),
    }
}

/// The soft and hard limits on open files of this process.
pub fn open_file_limits() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    Some((*nums.first()?, *nums.get(1).unwrap_or(&u64::MAX)))
}

/// Makes sure this process (and servers it starts later, which inherit the
/// limit) may open `need` files: raises the soft limit up to the hard limit
/// with util-linux `prlimit` if needed, else explains how to.
pub fn ensure_open_files(need: u64) -> Result<(), String> {
    let (soft, hard) = open_file_limits().ok_or("cannot read /proc/self/limits")?;
    if soft >= need {
        return Ok(());
    }
    if hard >= need {
        let pid = std::process::id().to_string();
        let _ = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if open_file_limits().is_some_and(|(soft, _)| soft >= need) {
            return Ok(());
        }
    }
    Err(format!(
        "{need} open files are needed but the limit is {soft} (hard {hard}); \
         run under `bash -c 'ulimit -n {need}; target/release/gotalk-bench ...'` \
         (raising the hard limit needs root), or lower --conns"
    ))
}
