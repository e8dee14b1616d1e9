//! Long-polls started by a token end when the token does, over real
//! sockets: after LOGOUT all, LOGOUT or the token's expiry, a waiting HTTP
//! `/sync wait=…` and a line SYNC carrying `token` and `wait_ms` are
//! answered `unauthorized` at once, never with a message sent afterwards
//! (it stays in custody for the owner), and their slots under
//! `--waiters-per-user` are free again for the owner's own long-polls.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::{array_ids, http_login, http_user, HttpClient};
use serde_json::json;
use std::time::Duration;

fn waiters(server: &TestServer) -> u64 {
    server.stats()["core"]["waiters"]
        .as_u64()
        .expect("a waiter count")
}

/// Starts an HTTP long-poll and a line long-poll with `token`, and waits
/// until the server counts both as waiting.
fn start_two_long_polls(server: &TestServer, token: &str) -> (HttpClient, LineClient) {
    let before = waiters(server);
    let mut web = HttpClient::connect(server.addr());
    web.set_timeout(Duration::from_secs(10));
    web.send_post("/sync", &[("token", token), ("wait", "20000")]);
    let mut line = server.connect();
    line.set_timeout(Duration::from_secs(10));
    line.send_line(&json!({"cmd": "sync", "token": token, "wait_ms": 20000}).to_string());
    let stats = server.stats_when(|s| s["core"]["waiters"].as_u64() == Some(before + 2));
    assert_eq!(stats["core"]["waiters"], before + 2, "{stats}");
    (web, line)
}

/// Both long-polls were answered `unauthorized`, and nothing else came.
fn assert_refused(web: &mut HttpClient, line: &mut LineClient) {
    let message = web.read_response().expect_error(401, "unauthorized");
    assert!(message.contains("revoked"), "{message}");
    assert_error(&line.read_reply(), "unauthorized");
    line.expect_nothing_before_pong();
}

#[test]
fn logout_all_ends_the_long_polls_of_a_stolen_token_and_frees_their_slots() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0", "--waiters-per-user", "2"]);
    let addr = server.addr();
    let (stolen, _) = http_user(addr, "alice", "alice-password");
    let (mut bob, _, _) = register_and_login(&server, "bob", "bob-password");
    let (mut web, mut line) = start_two_long_polls(&server, &stolen);

    // The owner takes every token back from a connection of their own.
    let mut owner = server.connect();
    login(&mut owner, "alice", "alice-password");
    assert_eq!(owner.text("LOGOUT all")["revoked"], "all");
    assert_refused(&mut web, &mut line);
    assert_eq!(waiters(&server), 0);

    // The owner logs in again and may hold both slots at once.
    let (fresh, _) = http_login(addr, "alice", "alice-password");
    let (mut own_web, mut own_line) = start_two_long_polls(&server, &fresh);
    let id = sent_id(&bob.text("SEND alice the secret code is 4711"));
    let body = own_web.read_response().expect_json(200);
    assert_eq!(array_ids(&body), [id]);
    assert_eq!(message_ids(&own_line.read_reply()), [id]);
    // Nothing reached the stolen token's connections.
    line.expect_nothing_before_pong();
}

#[test]
fn logout_of_one_token_ends_its_long_polls_and_the_message_stays_for_the_owner() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0", "--waiters-per-user", "3"]);
    let (mut owner, token, _) = register_and_login(&server, "alice", "alice-password");
    let (mut bob, _, _) = register_and_login(&server, "bob", "bob-password");
    let mut other = server.connect();
    let (other_token, _) = login(&mut other, "alice", "alice-password");
    // A long-poll of another token of the account is not touched.
    let mut kept = server.connect();
    kept.send_line(&json!({"cmd": "sync", "token": other_token, "wait_ms": 20000}).to_string());
    server.stats_when(|s| s["core"]["waiters"] == 1);
    let (mut web, mut line) = start_two_long_polls(&server, &token);
    assert_eq!(waiters(&server), 3);

    assert_eq!(owner.text("LOGOUT")["revoked"], "token");
    assert_refused(&mut web, &mut line);
    assert_eq!(waiters(&server), 1);

    let id = sent_id(&bob.text("SEND alice for alice only"));
    assert_eq!(message_ids(&kept.read_reply()), [id]);
    // Still in custody: the owner's next SYNC has it.
    let reply = other.text("SYNC");
    assert_eq!(message_ids(&reply), [id]);
    assert_eq!(message_contents(&reply), ["for alice only"]);
}

#[test]
fn a_long_poll_ends_unauthorized_when_its_token_expires() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0", "--token-ttl", "1"]);
    let (token, _) = http_user(server.addr(), "alice", "alice-password");
    let (mut web, mut line) = start_two_long_polls(&server, &token);
    // About a second, not the 20 s asked.
    let message = web.read_response().expect_error(401, "unauthorized");
    assert!(message.contains("expired"), "{message}");
    assert_error(&line.read_reply(), "unauthorized");
    line.expect_nothing_before_pong();
    assert_eq!(waiters(&server), 0);
}
