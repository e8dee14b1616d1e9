//! The systemd unit in `deploy/gotalk.service`: `systemd-analyze verify`
//! accepts it without a warning, its command line starts this build of the
//! server, and its stop timeout leaves the server's graceful stop time to
//! finish.
//!
//! The unit names `/usr/local/bin/gotalk`, which `verify` insists exists,
//! so the test verifies a copy whose `ExecStart=` points at the binary under
//! test (`GOTALK_BIN`, else the one Cargo built). `verify` exits 0 on many
//! warnings (an unknown key, a bad value), so its output is checked too: any
//! line about the unit fails the test. A missing `systemd-analyze` is a
//! failure, not a skip: `scripts/install-test-deps.sh` installs it.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The unit as shipped.
fn shipped_unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gotalk.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where the unit expects the server to be installed.
const INSTALLED_BIN: &str = "/usr/local/bin/gotalk";

/// The binary under test: `GOTALK_BIN` if set, else the one Cargo built.
fn binary() -> PathBuf {
    let bin = std::env::var_os("GOTALK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_gotalk")));
    assert!(bin.is_file(), "no gotalk binary at {}", bin.display());
    bin
}

/// The unit's single `ExecStart=` value.
fn exec_start(unit: &str) -> &str {
    let lines: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one ExecStart= line, got {lines:?}"
    );
    lines[0]
}

/// The unit with `ExecStart=` running `bin` instead of the installed path.
fn pointed_at(unit: &str, bin: &Path) -> String {
    let old = exec_start(unit);
    let args = old
        .strip_prefix(INSTALLED_BIN)
        .unwrap_or_else(|| panic!("ExecStart= does not run {INSTALLED_BIN}: {old}"));
    let bin = bin.to_str().expect("binary path is UTF-8");
    assert!(
        !bin.contains(['"', '\\']),
        "cannot quote {bin} for ExecStart="
    );
    // Quoted for spaces; `%` would start a specifier.
    let new = format!("\"{}\"{args}", bin.replace('%', "%%"));
    unit.replace(&format!("ExecStart={old}\n"), &format!("ExecStart={new}\n"))
}

/// Runs `systemd-analyze verify` on `unit`, saved as `gotalk.service` in a
/// fresh directory. `Err` lists what it said about the unit (or its exit
/// status); lines about other units on this machine are only printed.
fn verify(unit: &str) -> Result<(), String> {
    let dir = TempDir::new("deploy-unit");
    let path = dir.path().join("gotalk.service");
    std::fs::write(&path, unit).unwrap();
    let out = match Command::new("systemd-analyze")
        .args(["verify", "--man=no", "--recursive-errors=no"])
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "systemd-analyze is missing: run scripts/install-test-deps.sh \
             (it installs Debian's systemd package, which provides it)"
        ),
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir_name = dir.arg();
    let (about_unit, other): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| l.contains("gotalk") || l.contains(dir_name));
    if !other.is_empty() {
        eprintln!(
            "systemd-analyze on other units (ignored):\n{}",
            other.join("\n")
        );
    }
    if out.status.success() && about_unit.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "systemd-analyze verify exited with {}:\n{}",
            out.status,
            about_unit.join("\n")
        ))
    }
}

#[test]
fn systemd_analyze_verifies_the_unit_without_a_warning() {
    let unit = pointed_at(&shipped_unit(), &binary());
    if let Err(e) = verify(&unit) {
        panic!(
            "deploy/gotalk.service does not verify cleanly: {e}\n--- unit as verified ---\n{unit}"
        );
    }
}

#[test]
fn a_warning_from_systemd_analyze_fails_the_check() {
    // verify exits 0 on an unknown key; the check must not.
    let unit = pointed_at(&shipped_unit(), &binary())
        .replace("[Service]\n", "[Service]\nProtectHomee=yes\n");
    let err = verify(&unit).expect_err("a misspelt key passed the check");
    assert!(err.contains("ProtectHomee"), "{err}");
}

/// The default of `flag` as `gotalk --help` prints it: `(default N)`.
fn help_default(flag: &str) -> u64 {
    let run = run_cli(&["--help"], Duration::from_secs(20));
    let at = run
        .stdout
        .find(&format!("  {flag} "))
        .unwrap_or_else(|| panic!("--help does not list {flag}:\n{}", run.stdout));
    let rest = &run.stdout[at..];
    let value = rest
        .split_once("(default ")
        .and_then(|(_, v)| v.split_once(')'))
        .map(|(v, _)| v)
        .unwrap_or_else(|| panic!("no default for {flag} in --help"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{flag} default is not a number: {value}"))
}

/// The unit's value of `key=` in seconds (a plain number).
fn unit_seconds(unit: &str, key: &str) -> u64 {
    let value = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit sets no {key}="));
    value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{key}={value} is not a plain number of seconds"))
}

#[test]
fn the_units_command_line_starts_the_server_and_sigterm_stops_it_within_the_timeout() {
    let unit = shipped_unit();
    let stop_timeout = unit_seconds(&unit, "TimeoutStopSec");
    let shutdown_timeout = help_default("--shutdown-timeout");
    assert!(
        stop_timeout > shutdown_timeout,
        "TimeoutStopSec={stop_timeout} leaves the server's --shutdown-timeout \
         ({shutdown_timeout} s) no room: systemd would SIGKILL a graceful stop"
    );

    // The unit's flags, with its state directory in a temporary one and
    // the harness choosing the address.
    let state = TempDir::new("deploy-unit-state");
    let words: Vec<&str> = exec_start(&unit).split_whitespace().skip(1).collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] == "--listen" {
            i += 2;
            continue;
        }
        args.push(words[i].replace("%S", state.arg()));
        i += 1;
    }
    assert!(
        args.iter().any(|a| a == "--data"),
        "ExecStart= names no --data directory: {args:?}"
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = TestServer::start(&args);
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(stop_timeout))
        .expect("gotalk did not stop within TimeoutStopSec after SIGTERM");
    assert!(
        status.success(),
        "gotalk exited with {status} after SIGTERM"
    );
    assert!(
        state.path().join("gotalk/gotalk.db").is_file(),
        "the database is not in the state directory"
    );
}

#[test]
fn the_unit_reads_an_optional_environment_file_of_gotalk_variables() {
    let unit = shipped_unit();
    assert!(
        unit.lines()
            .any(|l| l == "EnvironmentFile=-/etc/gotalk/env"),
        "the unit reads no optional /etc/gotalk/env"
    );
    // Each variable the unit sets is one `gotalk --help` names.
    let help = run_cli(&["--help"], Duration::from_secs(20)).stdout;
    let set: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .flat_map(str::split_whitespace)
        .map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k))
        .collect();
    assert!(set.contains(&"GOTALK_LISTEN"), "{set:?}");
    for name in set {
        assert!(help.contains(name), "{name} is no gotalk variable");
    }
}
