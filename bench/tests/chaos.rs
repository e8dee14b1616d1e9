//! The chaos run, short: `gotalk-bench chaos` for 20 seconds against the
//! debug server, killing and restarting it at random moments; it exits 0
//! only if nothing acknowledged was lost, nothing was delivered again
//! after its ACK, each sender's order held and retried SENDs were stored
//! once.
//!
//! The server is another package's binary, which Cargo does not build for
//! this one: the test starts `$GOTALK_BIN` if set, else the `gotalk` beside
//! `gotalk-bench` (`target/debug/gotalk`). `cargo test --workspace` (and
//! `scripts/test.sh`) builds it in the same run; after `cargo test -p
//! gotalk-bench` alone, run `cargo build` first. A missing server fails the
//! test, never skips it.

use std::path::PathBuf;
use std::process::Command;

/// `$GOTALK_BIN`, or the `gotalk` built into the same directory as the
/// bench; panics (failing the test) if there is no such file.
fn server_binary() -> PathBuf {
    let path = match std::env::var_os("GOTALK_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_gotalk-bench"))
            .with_file_name(format!("gotalk{}", std::env::consts::EXE_SUFFIX)),
    };
    assert!(
        path.is_file(),
        "no server binary at {}: build it with `cargo build` (the workspace's \
         default member), or set GOTALK_BIN",
        path.display()
    );
    path
}

#[test]
fn twenty_seconds_of_kills_and_restarts_lose_nothing() {
    let output = Command::new(env!("CARGO_BIN_EXE_gotalk-bench"))
        .args(["chaos", "--seconds", "20"])
        .arg("--server")
        .arg(server_binary())
        .output()
        .expect("run gotalk-bench chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chaos failed:\n{stdout}\n{stderr}");
    for line in [
        "| lost ",
        "| delivered again after ACK ",
        "| stored twice ",
        "| order violations ",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line:?} row:\n{stdout}"));
        assert!(
            row.trim_end().ends_with("| 0 |") || row.split('|').nth(2).map(str::trim) == Some("0"),
            "{row}\n{stdout}"
        );
    }
    let acknowledged: u64 = stdout
        .lines()
        .find(|l| l.starts_with("| SENDs acknowledged "))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .expect("an acknowledged count");
    assert!(acknowledged > 0, "{stdout}");
}
