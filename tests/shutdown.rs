//! Graceful shutdown: on SIGTERM the server stops accepting, answers every
//! request it has already read (a password check in flight, a stream of
//! SENDs), ends long-polls with their empty reply, tells line clients
//! `{"event":"shutdown"}`, and exits 0 with everything acknowledged on disk.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Reads every line until the server closes the connection.
fn lines_until_closed(stream: TcpStream) -> Vec<Value> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    BufReader::new(stream)
        .lines()
        .map(|line| {
            let line = line.expect("the server closes the connection in time");
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
        })
        .collect()
}

#[test]
fn sigterm_answers_what_was_read_and_keeps_what_was_acknowledged() {
    let data = TempDir::new("shutdown");
    let mut server = TestServer::start(&[
        "--data",
        data.arg(),
        "--hash-threads",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let (_alice_setup, alice_token, _) = register_and_login(&server, "alice", "password-a");
    let (_bob_setup, bob_token, _) = register_and_login(&server, "bob", "password-b");
    register(&mut server.connect(), "carol", "password-c");
    let (_dave_setup, dave_token, _) = register_and_login(&server, "dave", "password-d");

    // Dave, whom nobody writes to, waits in a long-poll.
    let mut waiting = TcpStream::connect(server.addr()).unwrap();
    let auth = json!({"cmd": "auth", "token": dave_token});
    let poll = json!({"cmd": "sync", "wait_ms": 120000, "tag": "poll"});
    waiting
        .write_all(format!("{auth}\n{poll}\n").as_bytes())
        .unwrap();
    // Carol's LOGINs keep the one password worker busy.
    let mut logging_in = TcpStream::connect(server.addr()).unwrap();
    for i in 0..12 {
        let login =
            json!({"cmd": "login", "username": "carol", "password": "password-c", "tag": i});
        logging_in
            .write_all(format!("{login}\n").as_bytes())
            .unwrap();
    }
    // Alice streams SENDs to bob.
    let mut sending = TcpStream::connect(server.addr()).unwrap();
    let mut stream = format!("{}\n", json!({"cmd": "auth", "token": alice_token}));
    for i in 0..500 {
        stream
            .push_str(&json!({"cmd": "send", "to": "bob", "content": format!("m{i}")}).to_string());
        stream.push('\n');
    }
    sending.write_all(stream.as_bytes()).unwrap();

    // Once a password check is in flight and the long-poll waits, stop.
    let mut ready = false;
    for _ in 0..500 {
        let core = &server.stats()["core"];
        if core["password_jobs"].as_u64() >= Some(1) && core["waiters"] == 1 {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        ready,
        "the LOGIN and the long-poll are in progress: {}",
        server.stats()
    );
    server.signal(libc::SIGTERM);

    let polled = lines_until_closed(waiting);
    assert!(polled.contains(&json!({"event": "shutdown"})), "{polled:?}");
    assert!(
        polled.contains(&json!({"ok": true, "messages": [], "tag": "poll"})),
        "the long-poll ends with its empty reply: {polled:?}"
    );

    let logins = lines_until_closed(logging_in);
    let login_replies: Vec<&Value> = logins.iter().filter(|v| v.get("ok").is_some()).collect();
    assert!(
        !login_replies.is_empty(),
        "the LOGIN in flight is answered: {logins:?}"
    );
    for reply in &login_replies {
        assert!(
            reply["ok"] == true || reply["error"]["code"] == "rate_limited",
            "{reply}"
        );
    }

    let sent = lines_until_closed(sending);
    let replies: Vec<&Value> = sent.iter().filter(|v| v.get("ok").is_some()).collect();
    assert!(
        replies.len() >= 2,
        "AUTH and some SENDs were answered: {sent:?}"
    );
    let stored: Vec<u64> = replies[1..].iter().map(|r| sent_id(r)).collect();

    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits by itself");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        server.stderr_text()
    );
    let log = server.stderr_text();
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert!(log.contains("every request read was answered"), "{log}");

    // Everything acknowledged is there after a restart.
    server.start_again();
    let mut bob = server.connect();
    assert_ok(&bob.text(&format!("AUTH {bob_token}")));
    let got = sync_all_ids(&mut bob);
    assert_eq!(got, stored, "every acknowledged SEND, once, in order");
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut server = TestServer::start(&["--shutdown-timeout", "60", "--hash-threads", "1"]);
    // A connection that keeps the stop from finishing: a long-poll would
    // end, so hold a password check queue instead.
    let mut busy = TcpStream::connect(server.addr()).unwrap();
    for _ in 0..20 {
        busy.write_all(b"LOGIN nobody some-password\n").unwrap();
    }
    let mut c = server.connect();
    assert_eq!(c.text("PING")["pong"], true);
    server.signal(libc::SIGINT);
    assert!(server.wait_for_stderr("SIGINT: shutting down", Duration::from_secs(10)));
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exits at once");
    assert!(!status.success());
    assert!(server
        .stderr_text()
        .contains("SIGINT again: exiting at once"));
}
