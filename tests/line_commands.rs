//! Every line-protocol command in both of its forms (a JSON object and a text
//! command), with their success reply shapes, case-insensitive command
//! names, `tag` echo (any JSON value, on successes and errors), HELP (readable
//! lines in the text form, one JSON line in the JSON form) and QUIT.
//!
//! Deeper semantics live elsewhere: accounts and tokens in
//! `line_accounts.rs`, SEND and push in `line_messaging.rs`, SYNC/ACK in
//! `line_sync.rs`, error codes in `line_errors.rs`.

mod common;

use common::*;
use serde_json::{json, Value};

#[test]
fn ping_answers_pong_in_both_forms() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();

    let reply = c.request(&json!({"cmd": "ping"}));
    assert_ok(&reply);
    assert_eq!(reply["pong"], true, "{reply}");

    let reply = c.text("PING");
    assert_ok(&reply);
    assert_eq!(reply["pong"], true, "{reply}");
    assert!(
        reply.get("tag").is_none(),
        "a text command has no tag to echo: {reply}"
    );
}

#[test]
fn command_names_are_case_insensitive_in_both_forms() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    for name in ["PING", "ping", "Ping", "pInG"] {
        let reply = c.text(name);
        assert_ok(&reply);
        assert_eq!(reply["pong"], true, "text {name:?}: {reply}");

        let reply = c.request(&json!({"cmd": name}));
        assert_ok(&reply);
        assert_eq!(reply["pong"], true, "JSON cmd {name:?}: {reply}");
    }
    for name in ["help", "Help", "HELP"] {
        let (lines, reply) = text_help(&mut c, name);
        assert_eq!(reply, json!({"ok": true}), "{name}");
        assert!(lines.len() > 5, "{name}: {lines:?}");
        let reply = c.request(&json!({"cmd": name}));
        assert!(reply["help"].is_string(), "{name}: {reply}");
    }
    // Case-insensitivity reaches the commands that change state too.
    let reply = c.text("register carol pw-carol-secret");
    assert_ok(&reply);
    assert_eq!(reply["user"]["username"], "carol");
    let reply =
        c.request(&json!({"cmd": "LoGiN", "username": "carol", "password": "pw-carol-secret"}));
    assert_ok(&reply);
    assert_eq!(reply["user"]["username"], "carol");
    let reply = c.text("sync");
    assert_eq!(messages(&reply), Vec::<Value>::new());
}

#[test]
fn register_in_json_and_text_form() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();

    let alice =
        c.request(&json!({"cmd": "register", "username": "alice", "password": "secret-words"}));
    assert_ok(&alice);
    assert_eq!(alice["user"]["username"], "alice", "{alice}");
    let alice_id = alice["user"]["id"].as_u64().expect("numeric user.id");
    assert!(alice_id > 0, "{alice}");

    let bob = c.text("REGISTER bob hunter2-hunter2");
    assert_ok(&bob);
    assert_eq!(bob["user"]["username"], "bob", "{bob}");
    let bob_id = bob["user"]["id"].as_u64().expect("numeric user.id");
    assert_ne!(alice_id, bob_id, "two users got the same id");

    for reply in [&alice, &bob] {
        let text = reply.to_string();
        assert!(
            !text.contains("secret") && !text.contains("hunter2-hunter2"),
            "a reply must never include the password: {text}"
        );
    }
}

#[test]
fn login_in_json_and_text_form() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let id = register(&mut c, "alice", "secret-words");

    let json_login =
        c.request(&json!({"cmd": "login", "username": "alice", "password": "secret-words"}));
    assert_ok(&json_login);
    assert_eq!(json_login["user"], json!({"id": id, "username": "alice"}));
    let token = json_login["token"].as_str().expect("string token");
    assert!(!token.is_empty());
    assert!(!json_login.to_string().contains("secret"), "{json_login}");

    let mut c2 = server.connect();
    let text_login = c2.text("LOGIN alice secret-words");
    assert_ok(&text_login);
    assert_eq!(text_login["user"], json!({"id": id, "username": "alice"}));
    assert!(!text_login["token"]
        .as_str()
        .expect("string token")
        .is_empty());

    // Logging in bound both connections: they may now SYNC.
    assert_eq!(messages(&c.text("SYNC")), Vec::<Value>::new());
    assert_eq!(messages(&c2.text("SYNC")), Vec::<Value>::new());
}

#[test]
fn auth_in_json_and_text_form_binds_the_connection() {
    let server = TestServer::start(&[]);
    let (_alice, token, id) = register_and_login(&server, "alice", "secret-words");

    let mut json_conn = server.connect();
    let reply = json_conn.request(&json!({"cmd": "auth", "token": token}));
    assert_ok(&reply);
    assert_eq!(reply["user"]["id"], id, "{reply}");
    assert_eq!(reply["user"]["username"], "alice", "{reply}");
    assert_eq!(
        messages(&json_conn.request(&json!({"cmd": "sync"}))),
        Vec::<Value>::new()
    );

    let mut text_conn = server.connect();
    let reply = text_conn.text(&format!("AUTH {token}"));
    assert_ok(&reply);
    assert_eq!(reply["user"]["id"], id, "{reply}");
    assert_eq!(reply["user"]["username"], "alice", "{reply}");
    assert_eq!(messages(&text_conn.text("SYNC")), Vec::<Value>::new());
}

#[test]
fn send_sync_ack_in_json_form() {
    let server = TestServer::start(&[]);
    let (mut alice, _, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, bob_id) = register_and_login(&server, "bob", "pw-b-secret");

    let reply = alice.request(&json!({"cmd": "send", "to": "bob", "content": "hello there"}));
    let id = sent_id(&reply);

    let reply = bob.request(&json!({"cmd": "sync", "after": 0, "limit": 100, "wait_ms": 0}));
    let got = messages(&reply);
    assert_eq!(got.len(), 1, "{reply}");
    let expected = Expected {
        from: "alice",
        from_id: alice_id,
        to: "bob",
        to_id: bob_id,
        content: "hello there",
        client_id: None,
    };
    assert_eq!(assert_message(&got[0], &expected), id);

    let reply = bob.request(&json!({"cmd": "ack", "upto": id}));
    assert_ok(&reply);
    assert_eq!(
        messages(&bob.request(&json!({"cmd": "sync"}))),
        Vec::<Value>::new()
    );
}

#[test]
fn send_sync_ack_in_text_form() {
    let server = TestServer::start(&[]);
    let (mut alice, _, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, bob_id) = register_and_login(&server, "bob", "pw-b-secret");

    let first = sent_id(&alice.text("SEND bob hello there"));
    let second = sent_id(&alice.text("SEND bob second one"));
    assert!(second > first, "ids grow: {first} then {second}");

    let reply = bob.text("SYNC");
    let got = messages(&reply);
    assert_eq!(got.len(), 2, "{reply}");
    let mut expected = Expected {
        from: "alice",
        from_id: alice_id,
        to: "bob",
        to_id: bob_id,
        content: "hello there",
        client_id: None,
    };
    assert_eq!(assert_message(&got[0], &expected), first);
    expected.content = "second one";
    assert_eq!(assert_message(&got[1], &expected), second);

    // `SYNC <after>` returns what lies above `after` and acknowledges the rest.
    let reply = bob.text(&format!("SYNC {first}"));
    assert_eq!(message_ids(&reply), vec![second]);
    assert_eq!(message_ids(&bob.text("SYNC")), vec![second]);

    let reply = bob.text(&format!("ACK {second}"));
    assert_ok(&reply);
    assert_eq!(message_ids(&bob.text("SYNC")), Vec::<u64>::new());
}

/// Sends a text-form HELP and reads its readable lines up to the JSON
/// reply line that ends them; returns both.
#[track_caller]
fn text_help(c: &mut LineClient, line: &str) -> (Vec<String>, Value) {
    c.send_line(line);
    read_text_help(c)
}

#[track_caller]
fn read_text_help(c: &mut LineClient) -> (Vec<String>, Value) {
    let mut lines = Vec::new();
    loop {
        let line = c.read_line();
        if line.starts_with('{') {
            let reply: Value = serde_json::from_str(&line).expect("the closing line is JSON");
            return (lines, reply);
        }
        assert!(lines.len() < 100, "no JSON line ends the HELP text");
        lines.push(line);
    }
}

#[test]
fn text_form_help_is_readable_lines_ended_by_its_json_reply() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let json_help = c.request(&json!({"cmd": "help", "tag": 3}));
    assert_eq!(json_help["tag"], 3);
    let json_help = json_help["help"].as_str().expect("help is a string");

    // Pipelined between two PINGs: the replies keep their order.
    c.send_line("PING\nHELP\nPING");
    assert_eq!(c.read_json(), json!({"ok": true, "pong": true}));
    let (lines, reply) = read_text_help(&mut c);
    assert_eq!(c.read_json(), json!({"ok": true, "pong": true}));
    assert_eq!(reply, json!({"ok": true}));
    assert_eq!(lines.join("\n"), json_help, "the same text in both forms");
    for line in &lines {
        assert!(!line.contains("\\n"), "an escaped newline: {line}");
        assert!(!line.trim().is_empty(), "a blank line: {lines:?}");
        assert!(
            !line.starts_with('{'),
            "a text line that looks like JSON: {line}"
        );
    }
    for line in [
        "REGISTER alice s3cret-alice-pw",
        "SEND bob hello there",
        "ACK 17",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(line)),
            "no example {line:?}"
        );
    }
    assert_eq!(c.text("PING"), json!({"ok": true, "pong": true}));
}

#[test]
fn help_lists_every_command_one_per_line() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let (text_lines, _) = text_help(&mut c, "HELP");
    let json_help = c.request(&json!({"cmd": "help"}));
    let json_help = json_help["help"].as_str().expect("help is a string");
    for help in [text_lines.join("\n"), json_help.to_string()] {
        let lines: Vec<&str> = help.lines().filter(|l| !l.trim().is_empty()).collect();
        for command in COMMANDS {
            let matching: Vec<&&str> = lines
                .iter()
                .filter(|line| {
                    line.split(|ch: char| !ch.is_ascii_alphanumeric())
                        .any(|word| word.eq_ignore_ascii_case(command))
                })
                .collect();
            assert!(
                !matching.is_empty(),
                "HELP does not mention {command}:\n{help}"
            );
        }
        assert!(
            lines.len() >= COMMANDS.len(),
            "HELP should give one line per command ({} commands), got {} lines:\n{help}",
            COMMANDS.len(),
            lines.len()
        );
    }
}

#[test]
fn quit_in_text_form_replies_then_closes() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let reply = c.text("QUIT");
    assert_ok(&reply);
    c.expect_eof();
}

#[test]
fn quit_in_json_form_replies_with_tag_then_closes() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let reply = c.request(&json!({"cmd": "quit", "tag": "bye"}));
    assert_ok(&reply);
    assert_eq!(reply["tag"], "bye", "{reply}");
    c.expect_eof();
}

#[test]
fn quit_after_pipelined_requests_answers_them_first() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.send_raw(b"PING\n{\"cmd\":\"ping\",\"tag\":2}\nQUIT\n");
    assert_eq!(c.read_reply()["pong"], true);
    let second = c.read_reply();
    assert_eq!(second["pong"], true);
    assert_eq!(second["tag"], 2);
    assert_ok(&c.read_reply());
    c.expect_eof();
}

#[test]
fn quit_on_a_bound_connection_keeps_the_account_usable() {
    let server = TestServer::start(&[]);
    let (mut alice, token, id) = register_and_login(&server, "alice", "pw-a-secret");
    assert_ok(&alice.text("quit"));
    alice.expect_eof();
    let mut again = server.connect();
    let reply = again.request(&json!({"cmd": "auth", "token": token}));
    assert_ok(&reply);
    assert_eq!(reply["user"]["id"], id);
}

/// Tag values of every JSON kind; each must come back exactly.
fn tag_values() -> Vec<Value> {
    vec![
        json!("abc"),
        json!(""),
        json!("ünïcødé 😀 \"quoted\" \\ back"),
        json!(0),
        json!(42),
        json!(-7),
        json!(3.5),
        json!(18446744073709551615u64),
        json!(true),
        json!(false),
        json!([1, "two", {"three": 3}, null]),
        json!({"nested": {"list": [], "n": 1}}),
        json!({}),
    ]
}

#[test]
fn tag_of_any_json_kind_is_echoed() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    for tag in tag_values() {
        let reply = c.request(&json!({"cmd": "ping", "tag": tag}));
        assert_eq!(reply["pong"], true, "{reply}");
        assert_eq!(
            reply.get("tag"),
            Some(&tag),
            "tag {tag} not echoed: {reply}"
        );
    }
}

#[test]
fn tag_null_is_echoed_as_null() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.send_line(r#"{"cmd":"ping","tag":null}"#);
    let reply = c.read_reply();
    assert_eq!(reply["pong"], true, "{reply}");
    assert_eq!(
        reply.get("tag"),
        Some(&Value::Null),
        "a null tag is a JSON value and must come back: {reply}"
    );
}

#[test]
fn tag_is_echoed_by_every_command() {
    let server = TestServer::start(&[]);
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let mut c = server.connect();

    let reply = c.request(
        &json!({"cmd": "register", "username": "alice", "password": "pw-secret", "tag": 1}),
    );
    assert_ok(&reply);
    assert_eq!(reply["tag"], 1, "register: {reply}");

    let reply = c.request(
        &json!({"cmd": "login", "username": "alice", "password": "pw-secret", "tag": [2]}),
    );
    assert_ok(&reply);
    assert_eq!(reply["tag"], json!([2]), "login: {reply}");
    let token = reply["token"].as_str().unwrap().to_string();

    let reply = c.request(&json!({"cmd": "auth", "token": token, "tag": {"n": 3}}));
    assert_ok(&reply);
    assert_eq!(reply["tag"], json!({"n": 3}), "auth: {reply}");

    let reply = c.request(&json!({"cmd": "send", "to": "bob", "content": "hi", "tag": "four"}));
    let id = sent_id(&reply);
    assert_eq!(reply["tag"], "four", "send: {reply}");

    let reply = c.request(&json!({"cmd": "sync", "tag": 5.5}));
    assert_ok(&reply);
    assert_eq!(reply["tag"], 5.5, "sync: {reply}");

    let reply = c.request(&json!({"cmd": "ack", "upto": id, "tag": false}));
    assert_ok(&reply);
    assert_eq!(reply["tag"], false, "ack: {reply}");

    let reply = c.request(&json!({"cmd": "help", "tag": "seven"}));
    assert_ok(&reply);
    assert_eq!(reply["tag"], "seven", "help: {reply}");

    let reply = c.request(&json!({"cmd": "quit", "tag": 8}));
    assert_ok(&reply);
    assert_eq!(reply["tag"], 8, "quit: {reply}");
    c.expect_eof();
}

#[test]
fn tag_is_echoed_on_error_replies() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    register(&mut c, "alice", "pw-secret");

    let reply = c.request(&json!({"cmd": "frobnicate", "tag": "t1"}));
    assert_error(&reply, "unknown_command");
    assert_eq!(reply["tag"], "t1", "{reply}");

    let reply = c.request(&json!({"cmd": "sync", "tag": 2}));
    assert_error(&reply, "unauthorized");
    assert_eq!(reply["tag"], 2, "{reply}");

    let reply = c.request(
        &json!({"cmd": "register", "username": "alice", "password": "x-password", "tag": [3]}),
    );
    assert_error(&reply, "conflict");
    assert_eq!(reply["tag"], json!([3]), "{reply}");

    let reply = c.request(
        &json!({"cmd": "login", "username": "alice", "password": "wrong", "tag": {"t": 4}}),
    );
    assert_error(&reply, "unauthorized");
    assert_eq!(reply["tag"], json!({"t": 4}), "{reply}");

    login(&mut c, "alice", "pw-secret");
    let reply = c.request(&json!({"cmd": "send", "to": "nobody", "content": "x", "tag": 5}));
    assert_error(&reply, "not_found");
    assert_eq!(reply["tag"], 5, "{reply}");

    let reply = c.request(&json!({"cmd": "sync", "after": "not a number", "tag": "t6"}));
    assert_error(&reply, "bad_request");
    assert_eq!(reply["tag"], "t6", "{reply}");

    let reply = c.request(&json!({"cmd": "send", "to": "alice", "content": "", "tag": true}));
    assert_error(&reply, "bad_request");
    assert_eq!(reply["tag"], true, "{reply}");
}
