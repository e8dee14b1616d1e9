//! Shared steps of the `gotalk admin` tests (`admin_sqlite.rs`,
//! `admin_postgres.rs`): run `gotalk admin --socket PATH …` to the end,
//! with a password on stdin when given, and read what it printed.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What one `gotalk admin` run did.
#[derive(Debug)]
pub struct AdminRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl AdminRun {
    /// Its output as JSON (show, export, stats), failing with both streams.
    pub fn json(&self) -> serde_json::Value {
        assert!(self.ok, "gotalk admin failed: {self:?}");
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// `gotalk admin --socket SOCKET ARGS`, with `stdin` written to it.
pub fn admin_with(socket: &Path, args: &[&str], stdin: Option<&str>) -> AdminRun {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gotalk"))
        .arg("admin")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gotalk admin");
    {
        let mut input = child.stdin.take().expect("piped");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    let out = child.wait_with_output().expect("gotalk admin ends");
    AdminRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `gotalk admin` with nothing on stdin, which must succeed.
pub fn admin(socket: &Path, args: &[&str]) -> AdminRun {
    let run = admin_with(socket, args, None);
    assert!(run.ok, "gotalk admin {args:?} failed: {run:?}");
    run
}

/// `gotalk admin` that must fail; its one-line reason.
pub fn admin_fails(socket: &Path, args: &[&str]) -> String {
    let run = admin_with(socket, args, None);
    assert!(!run.ok, "gotalk admin {args:?} should have failed: {run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
    run.stderr
}

/// `user add NAME` with `password` on stdin; the new account's id.
pub fn add_user(socket: &Path, name: &str, password: &str) -> u64 {
    let run = admin_with(
        socket,
        &["user", "add", name],
        Some(&format!("{password}\n")),
    );
    assert!(run.ok, "user add {name}: {run:?}");
    let id = run
        .stdout
        .trim()
        .strip_prefix(&format!("created {name} (id "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected output: {}", run.stdout));
    id.parse().expect("an id")
}
