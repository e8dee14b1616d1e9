//! The `gotalk` program's command line and start-up, as the contract fixes
//! them: `--help` lists every flag and exits 0, an unknown flag is an error,
//! the ready log line names the address, `--listen` is honoured and
//! `--data DIR` is created on first start.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn help_prints_every_flag_and_exits_zero() {
    let run = run_cli(&["--help"], Duration::from_secs(20));
    let status = run.status.expect("gotalk --help did not exit within 20 s");
    assert!(
        status.success(),
        "gotalk --help exited with {status}: {run:?}"
    );
    let out = format!("{}{}", run.stdout, run.stderr);
    for flag in ["--listen", "--data", "--memory", "--help"] {
        assert!(out.contains(flag), "--help does not mention {flag}:\n{out}");
    }
}

#[test]
fn an_unknown_flag_is_an_error() {
    for args in [&["--no-such-flag"][..], &["--memory", "--bogus"][..]] {
        let run = run_cli(args, Duration::from_secs(20));
        let status = run
            .status
            .unwrap_or_else(|| panic!("gotalk {args:?} kept running instead of failing"));
        assert!(
            !status.success(),
            "gotalk {args:?} must fail, exited with {status}: {run:?}"
        );
        assert!(
            !run.stderr.contains("listening on"),
            "gotalk {args:?} started anyway: {run:?}"
        );
    }
}

#[test]
fn a_flag_missing_its_value_is_an_error() {
    let run = run_cli(&["--memory", "--listen"], Duration::from_secs(20));
    let status = run.status.expect("gotalk --listen (no value) kept running");
    assert!(!status.success(), "exited with {status}: {run:?}");
}

#[test]
fn the_ready_line_names_the_address_it_listens_on() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert!(server
        .stderr_text()
        .contains(&format!("listening on {addr}")));
    // ...and that address answers.
    let mut c = server.connect();
    assert_eq!(c.text("PING")["pong"], true);
}

#[test]
fn data_dir_is_created_on_first_start_and_accounts_survive_a_kill() {
    let tmp = TempDir::new("line-cli");
    let dir = tmp.path().join("fresh").join("nested");
    let dir_arg = dir.to_str().unwrap().to_string();
    let mut server = TestServer::start(&["--data", &dir_arg]);
    assert!(dir.is_dir(), "--data {dir_arg} was not created");

    let mut c = server.connect();
    let id = register(&mut c, "alice", "pw-a-secret");
    drop(c);
    server.restart(); // SIGKILL, then start again on the same directory

    let mut c = server.connect();
    let (_, again) = login(&mut c, "alice", "pw-a-secret");
    assert_eq!(again, id);
}
