//! `gotalk admin` against a running server on SQLite, through the real
//! binaries: every subcommand; disable unbinds a live connection and
//! LOGIN is refused like a wrong password; reset-password voids old
//! tokens; delete removes everything the export listed and a name
//! registered again is a new identity; an import of 1,000 rows reports
//! each bad row; the socket is mode 0600 and refuses another user; a
//! garbage request gets an error and harms nothing.

mod admin_common;
mod common;

use admin_common::*;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

const PASSWORD: &str = "correct-horse-battery";
const WRONG_PASSWORD_REPLY: &str = "wrong username or password";

/// A server on SQLite in its own directory, and its admin socket.
fn server(dir: &TempDir) -> (TestServer, PathBuf) {
    let server = TestServer::start(&["--data", dir.arg()]);
    (server, dir.path().join("admin.sock"))
}

fn login_reply(server: &TestServer, name: &str, password: &str) -> Value {
    let mut c = server.connect();
    with_timeout(&mut c, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "login", "username": name, "password": password}))
    })
}

#[test]
fn each_subcommand_answers_and_a_wrong_one_says_why_in_one_line() {
    let dir = TempDir::new("admin-each");
    let (server, socket) = server(&dir);
    let alice = add_user(&socket, "alice", PASSWORD);
    let (mut a, _) = {
        let mut c = server.connect();
        let t = login(&mut c, "alice", PASSWORD);
        (c, t)
    };
    // A generated password is printed once, and opens the account.
    let run = admin(&socket, &["user", "add", "bob", "--random-password"]);
    let printed = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password printed: {}", run.stdout))
        .to_string();
    assert_ok(&login_reply(&server, "bob", &printed));
    assert_ok(&a.text("SEND bob hi"));

    let list = admin(&socket, &["user", "list"]);
    let names: Vec<Value> = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["name"].clone())
        .collect();
    assert_eq!(names, [json!("alice"), json!("bob")]);
    let list = admin(&socket, &["user", "list", "--prefix", "b", "--limit", "5"]);
    assert_eq!(list.stdout.lines().count(), 1, "{}", list.stdout);

    let shown = admin(&socket, &["user", "show", "bob"]).json();
    assert_eq!(shown["name"], "bob");
    assert_eq!(shown["disabled"], false);
    assert_eq!(shown["unacknowledged_messages"], 1);
    assert!(
        shown["unacknowledged_bytes"].as_u64().unwrap() > 0,
        "{shown}"
    );
    assert!(shown["created"].is_string(), "{shown}");
    assert!(shown["last_login"].is_string(), "bob logged in: {shown}");
    // The one message of bob's conversation with alice.
    assert_eq!(shown["history_messages"], 1, "{shown}");
    let shown = admin(&socket, &["user", "show", "alice"]).json();
    assert_eq!(shown["id"], alice);
    assert_eq!(shown["sessions_online"], 1);

    let stats = admin(&socket, &["stats"]).json();
    assert!(stats["core"].is_object(), "the /stats figures: {stats}");

    let export = admin(&socket, &["user", "export", "alice"]).json();
    assert_eq!(export["account"]["name"], "alice");
    assert!(export["account"].get("password_hash").is_none());
    assert!(!export.to_string().contains("argon2"), "no hash: {export}");
    assert_eq!(export["messages_sent"][0]["content"], "hi");
    // Its conversations: the message, and bob as a partner it has not read.
    assert_eq!(export["history"][0]["content"], "hi", "{export}");
    assert_eq!(export["markers"][0]["upto"], 0, "{export}");

    assert_eq!(
        admin(&socket, &["user", "logout", "alice"]).stdout.trim(),
        format!("logged out every session of alice (id {alice})")
    );
    assert_eq!(a.read_event(), json!({"event": "revoked"}));

    // Refusals: one line, non-zero.
    let why = admin_fails(&socket, &["user", "show", "carol"]);
    assert!(why.contains("no user named 'carol'"), "{why}");
    let why = admin_fails(&socket, &["user", "delete", "bob"]);
    assert!(why.contains("--yes"), "{why}");
    let run = admin_with(&socket, &["user", "add", "dave"], Some("short\n"));
    assert!(!run.ok && run.stderr.contains("at least 8"), "{run:?}");
    let run = admin_with(
        &socket,
        &["user", "add", "alice"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(!run.ok && run.stderr.contains("conflict"), "{run:?}");
    let why = admin_fails(&dir.path().join("nowhere.sock"), &["stats"]);
    assert!(why.contains("cannot connect"), "{why}");
}

#[test]
fn disable_unbinds_a_live_connection_refuses_login_and_keeps_messages_until_enabled() {
    let dir = TempDir::new("admin-disable");
    let (server, socket) = server(&dir);
    let (mut alice, token, _) = register_and_login(&server, "alice", PASSWORD);
    let (mut bob, _, _) = register_and_login(&server, "bob", PASSWORD);

    admin(&socket, &["user", "disable", "alice"]);
    assert_eq!(alice.read_event(), json!({"event": "revoked"}));
    assert_error(&alice.text("SYNC"), "unauthorized");
    let refused = login_reply(&server, "alice", PASSWORD);
    assert_error(&refused, "unauthorized");
    assert_eq!(error_message(&refused), WRONG_PASSWORD_REPLY);
    let mut c = server.connect();
    assert_error(&c.text(&format!("AUTH {token}")), "unauthorized");
    assert_eq!(
        admin(&socket, &["user", "show", "alice"]).json()["disabled"],
        true
    );

    // Messages to a disabled account are kept for it.
    assert_ok(&bob.text("SEND alice while you were away"));
    admin(&socket, &["user", "enable", "alice"]);
    let mut again = server.connect();
    login(&mut again, "alice", PASSWORD);
    let got = again.text("SYNC");
    assert_eq!(messages(&got)[0]["content"], "while you were away");
}

#[test]
fn reset_password_voids_old_tokens_and_the_new_password_works() {
    let dir = TempDir::new("admin-reset");
    let (server, socket) = server(&dir);
    let (mut alice, token, _) = register_and_login(&server, "alice", PASSWORD);
    let run = admin_with(
        &socket,
        &["user", "reset-password", "alice"],
        Some("a-brand-new-password\n"),
    );
    assert!(run.ok, "{run:?}");
    assert!(!run.stdout.contains("a-brand-new-password"), "{run:?}");
    assert_eq!(alice.read_event(), json!({"event": "revoked"}));
    let mut c = server.connect();
    assert_error(&c.text(&format!("AUTH {token}")), "unauthorized");
    assert_error(&login_reply(&server, "alice", PASSWORD), "unauthorized");
    assert_ok(&login_reply(&server, "alice", "a-brand-new-password"));
    assert!(!server.stderr_text().contains("a-brand-new-password"));
}

#[test]
fn delete_removes_everything_the_export_listed_and_the_name_comes_back_as_a_new_identity() {
    let dir = TempDir::new("admin-delete");
    let (server, socket) = server(&dir);
    let (mut alice, token, alice_id) = register_and_login(&server, "alice", PASSWORD);
    let (mut bob, _, _) = register_and_login(&server, "bob", PASSWORD);
    let sent = alice
        .request(&json!({"cmd": "send", "to": "bob", "content": "from alice", "client_id": "c-1"}));
    assert_ok(&sent);
    assert_ok(&bob.text("SEND alice from bob"));
    assert_eq!(alice.read_event()["message"]["content"], "from bob");
    drop(bob);

    let export = admin(&socket, &["user", "export", "alice"]).json();
    assert_eq!(export["messages_sent"][0]["content"], "from alice");
    assert_eq!(export["messages_received"][0]["content"], "from bob");
    assert_eq!(export["client_ids"][0]["client_id"], "c-1");
    assert_eq!(export["history"].as_array().unwrap().len(), 2, "{export}");

    let run = admin(&socket, &["user", "delete", "alice", "--yes"]);
    assert_eq!(run.stdout.trim(), format!("deleted alice (id {alice_id})"));
    assert_eq!(alice.read_event(), json!({"event": "revoked"}));
    assert!(server.wait_for_stderr(
        &format!("admin: deleted alice (id {alice_id})"),
        READ_TIMEOUT
    ));
    let why = admin_fails(&socket, &["user", "export", "alice"]);
    assert!(why.contains("not_found"), "{why}");
    // Nothing of what the export listed is left on disk but the message
    // bob still holds, whose sender now reads as deleted.
    let db = rusqlite::Connection::open(dir.path().join("gotalk.db")).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [alice_id as i64], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM users WHERE id = ?1"), 0);
    assert_eq!(count("SELECT count(*) FROM messages WHERE to_id = ?1"), 0);
    assert_eq!(
        count("SELECT count(*) FROM client_ids WHERE sender = ?1"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM revoked_tokens WHERE user_id = ?1"),
        0
    );
    assert_eq!(count("SELECT count(*) FROM messages WHERE from_id = ?1"), 1);
    assert_eq!(
        count("SELECT count(*) FROM conversations WHERE user_id = ?1 OR partner_id = ?1"),
        0,
        "its conversations leave both lists"
    );
    let mut bob = server.connect();
    login(&mut bob, "bob", PASSWORD);
    let held = messages(&bob.text("SYNC"));
    assert_eq!(held[0]["content"], "from alice");
    assert_eq!(held[0]["from"], "(deleted)");
    assert_eq!(held[0]["from_id"], alice_id);

    // The name again: a new account, and the old token stays dead.
    let mut c = server.connect();
    let new_id = register(&mut c, "alice", PASSWORD);
    assert_ne!(new_id, alice_id);
    assert_error(&c.text(&format!("AUTH {token}")), "unauthorized");
    login(&mut c, "alice", PASSWORD);
    assert!(messages(&c.text("SYNC")).is_empty(), "a new, empty mailbox");
}

#[test]
fn an_import_of_1000_rows_reports_each_bad_row_and_creates_the_rest() {
    let dir = TempDir::new("admin-import");
    // The registration limit at its default: an import is not held to it.
    let server = TestServer::start_with_default_limits(&["--data", dir.arg()]);
    let socket = dir.path().join("admin.sock");
    let mut file = String::from("name,password\n");
    let mut bad = Vec::new();
    for i in 0..1000 {
        let line = i + 2;
        let row = match i {
            100 => "bad name,password-100".to_string(),
            200 => "user0001,too-late-a-duplicate".to_string(),
            300 => "user0300,short".to_string(),
            400 => "no comma here".to_string(),
            500 => "{\"name\":\"user0500\"}".to_string(),
            600 => format!("{{\"name\":\"user{i:04}\",\"password\":\"password-{i}\"}}"),
            _ => format!("user{i:04},password-{i}"),
        };
        if [100, 200, 300, 400, 500].contains(&i) {
            bad.push(line);
        }
        file.push_str(&row);
        file.push('\n');
    }
    let path = dir.path().join("people.csv");
    std::fs::write(&path, file).unwrap();
    let run = admin_with(&socket, &["user", "import", path.to_str().unwrap()], None);
    assert!(!run.ok, "bad rows make it fail: {run:?}");
    assert!(
        run.stdout.contains("import: 995 created, 5 failed"),
        "{}",
        run.stdout
    );
    for line in &bad {
        let said = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("line {line}: ")))
            .unwrap_or_else(|| panic!("line {line} not reported"));
        assert!(!said.contains("created"), "{said}");
    }
    assert_eq!(
        run.stdout.lines().count(),
        1001,
        "one line per row and a summary"
    );
    let listed = admin(&socket, &["user", "list", "--limit", "10000"]);
    assert_eq!(listed.stdout.lines().count(), 995);
    assert_ok(&login_reply(&server, "user0600", "password-600"));
    assert_ok(&login_reply(&server, "user0999", "password-999"));
}

#[test]
fn the_socket_is_mode_0600_and_another_user_cannot_connect() {
    let dir = TempDir::new("admin-perms");
    let (_server, socket) = server(&dir);
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // Another user, even given a way through the directory, is refused by
    // the socket's own mode.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(env!("CARGO_BIN_EXE_gotalk"))
        .args(["admin", "--socket", socket.to_str().unwrap(), "stats"])
        .output()
        .expect("runuser (the tests run as root)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
}

#[test]
fn a_garbage_request_gets_an_error_and_the_server_is_unharmed() {
    let dir = TempDir::new("admin-garbage");
    let (server, socket) = server(&dir);
    let stream = UnixStream::connect(&socket).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut input = BufReader::new(stream);
    let mut ask = |bytes: &[u8]| -> Value {
        out.write_all(bytes).unwrap();
        let mut line = String::new();
        input.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let r = ask(b"\x00\xff garbage\n");
    assert_eq!(
        (r["ok"].clone(), r["error"].clone()),
        (json!(false), json!("bad_request"))
    );
    let r = ask(b"{\"op\":\"user.explode\",\"name\":\"x\"}\n");
    assert_eq!(r["error"], "unknown_command");
    let r = ask(b"{\"op\":\"user.show\"}\n");
    assert_eq!(r["error"], "bad_request");
    let r = ask(b"{\"op\":\"stats\"}\n");
    assert_eq!(r["ok"], true, "the same connection goes on: {r}");
    let mut huge = vec![b'x'; 100_000];
    huge.push(b'\n');
    let r = ask(&huge);
    assert_eq!(r["error"], "bad_request");
    // The server serves clients and operators as before.
    let mut c = server.connect();
    assert_eq!(c.text("PING")["ok"], true);
    add_user(&socket, "alice", PASSWORD);
}

#[test]
fn memory_mode_opens_no_socket_unless_given_and_no_admin_socket_opens_none() {
    let dir = TempDir::new("admin-memory");
    let socket = dir.path().join("mem.sock");
    let _mem = TestServer::start(&["--memory", "--admin-socket", socket.to_str().unwrap()]);
    let id = add_user(&socket, "alice", PASSWORD);
    let list = admin(&socket, &["user", "list"]);
    assert!(
        list.stdout.contains(&format!("\"id\":{id}")),
        "{}",
        list.stdout
    );
    let export = admin(&socket, &["user", "export", "alice"]).json();
    assert_eq!(export["account"]["id"], id);
    assert_eq!(admin(&socket, &["user", "show", "alice"]).json()["id"], id);
    let data = TempDir::new("admin-none");
    let _none = TestServer::start(&["--data", data.arg(), "--no-admin-socket"]);
    assert!(!data.path().join("admin.sock").exists());
}
