//! The flag table from outside: a `GOTALK_*` variable sets its setting, a
//! flag on the command line wins over the variable, a bad variable is a
//! usage error like a bad flag, and a misspelt flag exits with 2 and
//! names the flag that was meant.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts `gotalk <args>` with only the `GOTALK_*` variables of `env`, and
/// returns its log up to the ready line (or all of it, if it exited), then
/// stops it.
fn start_log(env: &[(&str, &str)], args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gotalk"));
    for (name, _) in std::env::vars() {
        if name.starts_with("GOTALK_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not spawn the gotalk binary");
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    log
}

#[test]
fn a_variable_sets_a_flag_and_the_flag_wins_over_it() {
    let env = [
        ("GOTALK_LISTEN", "127.0.0.1:0"),
        ("GOTALK_MEMORY", "1"),
        ("GOTALK_MAX_CONNECTIONS_PER_ADDRESS", "7"),
    ];
    let log = start_log(&env, &[]);
    assert!(log.contains("in memory only (--memory)"), "{log}");
    assert!(log.contains(", 7 per address,"), "{log}");

    let log = start_log(&env, &["--max-connections-per-address", "9"]);
    assert!(log.contains(", 9 per address,"), "{log}");
    // A public address from the variable, a loopback one from the flag:
    // the flag's is used (the variable's alone would refuse to start).
    let public = [("GOTALK_LISTEN", "0.0.0.0:0"), ("GOTALK_MEMORY", "true")];
    let log = start_log(&public, &["--listen=127.0.0.1:0"]);
    assert!(log.contains("listening on 127.0.0.1:"), "{log}");
    let refused = start_log(&public, &[]);
    assert!(refused.contains("--allow-plaintext"), "{refused}");
}

#[test]
fn a_bad_variable_is_a_usage_error_naming_its_flag() {
    let run = Command::new(env!("CARGO_BIN_EXE_gotalk"))
        .env("GOTALK_HASH_THREADS", "0")
        .args(["--memory", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("--hash-threads"), "{err}");
    assert!(err.contains("'0' is not a whole number >= 1"), "{err}");
}

#[test]
fn a_misspelt_flag_exits_2_and_suggests_the_flag() {
    let run = run_cli(
        &["--memory", "--mailbox-limt", "5"],
        Duration::from_secs(20),
    );
    let status = run.status.expect("exits at once");
    assert_eq!(status.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("'--mailbox-limt'"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("a similar argument exists: '--mailbox-limit'"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("listening on"), "{run:?}");
}

#[test]
fn help_names_each_flags_variable_and_version_exits_0() {
    let run = run_cli(&["--help"], Duration::from_secs(20));
    assert!(run.status.is_some_and(|s| s.success()), "{run:?}");
    for text in [
        "GOTALK_LISTEN",
        "GOTALK_DATA",
        "GOTALK_TLS_CERT",
        "(default 10)",
    ] {
        assert!(run.stdout.contains(text), "{text} missing:\n{}", run.stdout);
    }
    let run = run_cli(&["--version"], Duration::from_secs(20));
    assert!(run.status.is_some_and(|s| s.success()), "{run:?}");
    // Then the commit in parentheses (its shape: tests/release.rs).
    let version = format!("gotalk {} (", env!("CARGO_PKG_VERSION"));
    assert!(run.stdout.starts_with(&version), "{run:?}");
}

#[test]
fn a_node_id_outside_the_stores_rule_is_a_usage_error_before_any_connection() {
    // Checked in main.rs by the store's rule, before the database is
    // reached (nothing listens on port 1).
    for bad in ["a b", "", "é"] {
        let run = run_cli(
            &[
                "--postgres",
                "postgres://gotalk@127.0.0.1:1/gotalk",
                "--node-id",
                bad,
            ],
            Duration::from_secs(20),
        );
        assert_eq!(run.status.and_then(|s| s.code()), Some(2), "{run:?}");
        assert!(
            run.stderr
                .contains(&format!("--node-id '{bad}': use 1 to 40 letters")),
            "{}",
            run.stderr
        );
    }
}
