//! How the line protocol cuts bytes into requests: `\n` and `\r\n` endings,
//! empty lines ignored, a line split across many writes (down to one byte
//! per write, through multi-byte characters), several lines in one write,
//! pipelining (hundreds of requests in one write, one reply each, in
//! order), the server never speaking first, and the HTTP door on the same
//! port (an HTTP request line is not line protocol).

mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::thread;
use std::time::Duration;

#[test]
fn the_server_never_speaks_first() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    // Anything said on connecting would come before the first reply.
    c.expect_nothing_before_pong();
}

#[test]
fn crlf_line_endings_are_accepted() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");

    alice.send_raw(b"PING\r\n");
    assert_eq!(alice.read_reply()["pong"], true);
    alice.send_raw(b"{\"cmd\":\"ping\",\"tag\":\"crlf\"}\r\n");
    let reply = alice.read_reply();
    assert_eq!(reply["pong"], true);
    assert_eq!(reply["tag"], "crlf");

    // The \r is the line ending, not part of the content or the username.
    alice.send_raw(b"SEND bob hi there\r\n");
    let first = sent_id(&alice.read_reply());
    alice.send_raw(b"{\"cmd\":\"send\",\"to\":\"bob\",\"content\":\"json\"}\r\n");
    let second = sent_id(&alice.read_reply());
    bob.send_raw(b"SYNC\r\n");
    let reply = bob.read_reply();
    assert_eq!(message_ids(&reply), vec![first, second]);
    assert_eq!(
        message_contents(&reply),
        vec!["hi there".to_string(), "json".to_string()]
    );
    bob.send_raw(format!("ACK {second}\r\n").as_bytes());
    assert_ok(&bob.read_reply());
    bob.send_raw(b"SYNC\r\n");
    assert_eq!(message_ids(&bob.read_reply()), Vec::<u64>::new());
}

#[test]
fn crlf_works_for_register_and_login_in_text_form() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.set_timeout(HASH_TIMEOUT);
    c.send_raw(b"REGISTER carol pw-c-secret\r\n");
    let reply = c.read_reply();
    assert_ok(&reply);
    assert_eq!(reply["user"]["username"], "carol");
    // The password was stored without the \r: LOGIN over JSON matches it.
    login(&mut c, "carol", "pw-c-secret");
    c.send_raw(b"LOGIN carol pw-c-secret\r\n");
    assert_ok(&c.read_reply());
}

#[test]
fn empty_lines_are_ignored() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.send_raw(b"\n\n\r\n\n");
    c.expect_nothing_before_pong();
    c.send_raw(b"\r\n\nPING\n\n\r\n{\"cmd\":\"ping\",\"tag\":2}\n\n");
    assert_eq!(c.read_reply()["pong"], true);
    assert_eq!(c.read_reply()["tag"], 2);
    c.expect_nothing_before_pong();
}

#[test]
fn a_json_line_sent_one_byte_per_write_is_parsed() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.send_in_pieces(
        b"{\"cmd\":\"ping\",\"tag\":\"slow \xc3\xbc \xf0\x9f\x98\x80\"}\n",
        1,
        Duration::from_millis(2),
    );
    let reply = c.read_reply();
    assert_eq!(reply["pong"], true);
    assert_eq!(reply["tag"], "slow ü 😀");
    c.expect_nothing_before_pong();
}

#[test]
fn a_text_send_sent_one_byte_per_write_keeps_multibyte_content() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let content = "héllo wörld 😀 日本";
    alice.send_in_pieces(
        format!("SEND bob {content}\r\n").as_bytes(),
        1,
        Duration::from_millis(2),
    );
    sent_id(&alice.read_reply());
    assert_eq!(
        message_contents(&bob.text("SYNC")),
        vec![content.to_string()]
    );
}

#[test]
fn lines_split_and_joined_arbitrarily_across_writes() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let pause = Duration::from_millis(20);
    c.send_raw(b"PI");
    thread::sleep(pause);
    c.send_raw(b"NG\nPI");
    thread::sleep(pause);
    c.send_raw(b"NG\n{\"cmd\":");
    thread::sleep(pause);
    c.send_raw(b"\"ping\",\"tag\":3}\n{\"cmd\":\"ping\",\"tag\":4}\n{\"cmd\"");
    thread::sleep(pause);
    c.send_raw(b":\"ping\",\"tag\":5}\r");
    thread::sleep(pause);
    c.send_raw(b"\n");
    assert_eq!(c.read_reply()["pong"], true);
    assert_eq!(c.read_reply()["pong"], true);
    for tag in 3..=5 {
        let reply = c.read_reply();
        assert_eq!(reply["tag"], tag, "{reply}");
        assert_eq!(reply["pong"], true);
    }
    c.expect_nothing_before_pong();
}

#[test]
fn a_long_line_in_small_pieces_is_parsed() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let pad = "x".repeat(20_000);
    let line = json!({"cmd": "ping", "pad": pad, "tag": "end"}).to_string() + "\n";
    c.send_in_pieces(line.as_bytes(), 997, Duration::from_millis(1));
    let reply = c.read_reply();
    assert_eq!(reply["tag"], "end");
    assert_eq!(reply["pong"], true);
}

#[test]
fn hundreds_of_pipelined_requests_get_every_reply_in_order() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let mut batch = String::new();
    for i in 0..500 {
        batch.push_str(&json!({"cmd": "ping", "tag": i}).to_string());
        batch.push('\n');
    }
    c.send_raw(batch.as_bytes());
    for i in 0..500 {
        let reply = c.read_reply();
        assert_eq!(reply["tag"], i, "reply {i} out of order: {reply}");
        assert_eq!(reply["pong"], true);
    }
    c.expect_nothing_before_pong();
}

#[test]
fn a_mixed_pipeline_of_sends_pings_and_errors_stays_in_order() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");

    let mut batch = String::new();
    for i in 0..100 {
        batch.push_str(
            &json!({"cmd": "send", "to": "bob", "content": format!("m{i}"), "tag": i}).to_string(),
        );
        batch.push('\n');
        batch.push_str("PING\n");
        batch.push_str(&json!({"cmd": "nope", "tag": format!("bad{i}")}).to_string());
        batch.push('\n');
        batch.push_str(&format!("SEND nobody x{i}\n"));
    }
    alice.send_raw(batch.as_bytes());

    let mut ids = Vec::new();
    for i in 0..100 {
        let send = alice.read_reply();
        assert_eq!(send["tag"], i, "{send}");
        ids.push(sent_id(&send));
        let ping = alice.read_reply();
        assert_eq!(ping["pong"], true, "{ping}");
        let bad = alice.read_reply();
        assert_error(&bad, "unknown_command");
        assert_eq!(bad["tag"], format!("bad{i}"));
        assert_error(&alice.read_reply(), "not_found");
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids must grow: {ids:?}"
    );

    let reply = bob.request(&json!({"cmd": "sync", "limit": 1000}));
    assert_eq!(message_ids(&reply), ids);
    assert_eq!(
        message_contents(&reply),
        (0..100).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn a_slow_request_in_a_pipeline_does_not_let_later_replies_overtake_it() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.set_timeout(HASH_TIMEOUT);
    // REGISTER and LOGIN hash a password, which takes a while; the PINGs
    // behind them must still be answered after them.
    c.send_raw(
        b"REGISTER alice pw-a-secret\nPING\n{\"cmd\":\"login\",\"username\":\"alice\",\"password\":\"pw-a-secret\",\"tag\":\"login\"}\n{\"cmd\":\"ping\",\"tag\":\"last\"}\n",
    );
    let register = c.read_reply();
    assert_ok(&register);
    assert_eq!(register["user"]["username"], "alice", "{register}");
    assert_eq!(c.read_reply()["pong"], true);
    let login = c.read_reply();
    assert_ok(&login);
    assert_eq!(login["tag"], "login", "{login}");
    assert!(login["token"].is_string());
    let last = c.read_reply();
    assert_eq!(last["tag"], "last", "{last}");
}

#[test]
fn thousands_of_pipelined_requests_while_reading_concurrently() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let n = 5000;
    let mut writer = c.writer_clone();
    let sender = thread::spawn(move || {
        let mut batch = String::new();
        for i in 0..n {
            batch.push_str(&json!({"cmd": "ping", "tag": i}).to_string());
            batch.push('\n');
        }
        writer.write_all(batch.as_bytes()).unwrap();
    });
    for i in 0..n {
        let reply = c.read_reply();
        assert_eq!(reply["tag"], i, "reply {i} out of order: {reply}");
        assert_eq!(reply["pong"], true);
    }
    sender.join().unwrap();
}

#[test]
fn an_http_request_line_is_not_the_line_protocol() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.send_raw(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let status = String::from_utf8_lossy(&c.read_line_bytes()).into_owned();
    assert!(
        status.starts_with("HTTP/1.1 "),
        "an HTTP request must get an HTTP response, got {status:?}"
    );
}

#[test]
fn a_text_line_that_merely_mentions_http_is_still_a_command() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let reply = c.text("HTTP/1.1 PING");
    assert_error(&reply, "unknown_command");
    assert_eq!(c.text("PING")["pong"], true);
}

#[test]
fn an_unfinished_last_line_is_ignored_when_the_client_stops_sending() {
    // protocol.md: a request is a whole line; a client that closes mid-line
    // (it may have crashed mid-write) never has half a message stored, and
    // the complete requests before it are still answered.
    let server = TestServer::start(&[]);
    let (_alice, token, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");

    let mut c = server.connect();
    c.send_line(&format!("AUTH {token}"));
    assert_ok(&c.read_reply());
    c.send_raw(b"{\"cmd\":\"send\",\"to\":\"bob\",\"content\":\"whole\",\"tag\":1}\n");
    c.send_raw(b"SEND bob half a mess");
    c.shutdown_write();
    let reply = c.read_reply();
    assert_eq!(reply["tag"], 1, "{reply}");
    let id = sent_id(&reply);
    c.expect_eof();
    assert_eq!(message_ids(&bob.text("SYNC")), vec![id]);
    assert_eq!(
        message_contents(&bob.text("SYNC")),
        vec!["whole".to_string()]
    );
}

#[test]
fn a_client_that_never_reads_does_not_stall_the_others() {
    let server = TestServer::start(&[]);
    let greedy = server.connect();
    let mut writer = greedy.writer_clone();
    writer
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Floods requests and never reads a reply. Once buffers fill, its writes
    // block (bounded by the timeout above) or the server drops it; either is
    // fine, as long as everyone else is still served.
    let flood = thread::spawn(move || {
        let line = json!({"cmd": "help"}).to_string() + "\n";
        let batch = line.repeat(1000);
        for _ in 0..200 {
            if writer.write_all(batch.as_bytes()).is_err() {
                break;
            }
        }
    });
    thread::sleep(Duration::from_millis(300));
    let mut other = server.connect();
    for i in 0..20 {
        let reply = other.request(&json!({"cmd": "ping", "tag": i}));
        assert_eq!(reply["tag"], i);
        assert_eq!(reply["pong"], true);
    }
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    assert_eq!(
        messages(&alice.text("SYNC")),
        Vec::<serde_json::Value>::new()
    );
    flood.join().unwrap();
    drop(greedy);
}
