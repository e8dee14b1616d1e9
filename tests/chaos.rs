//! The chaos run, short: `gotalk-bench chaos` for 20 seconds against the
//! debug server, killing and restarting it at random moments; it exits 0
//! only if nothing acknowledged was lost, nothing was delivered again
//! after its ACK, each sender's order held and retried SENDs were stored
//! once. Needs the `bench` feature (the test suite builds with
//! `--all-features`).
#![cfg(feature = "bench")]

use std::process::Command;

#[test]
fn twenty_seconds_of_kills_and_restarts_lose_nothing() {
    let output = Command::new(env!("CARGO_BIN_EXE_gotalk-bench"))
        .args([
            "chaos",
            "--seconds",
            "20",
            "--server",
            env!("CARGO_BIN_EXE_gotalk"),
        ])
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
