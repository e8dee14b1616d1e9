//! LOGIN throttling, REGISTER per address, the new-password minimum and the
//! argon2 upgrade, against the real binary with its default limits.
//!
//! The throttle's documented numbers: a username takes 5 failed LOGINs at
//! once, then one every 6 s (10 a minute), from all addresses that have not
//! logged in to it lately; an address that has uses a bucket of its own.
//! Once that shared bucket is empty, every other address gets 3 tries an
//! hour of its own (`--login-tries-per-new-address-hour`), so the owner is
//! not locked out of a new address. An address takes 10 failures at once,
//! then 30 a minute. A REGISTER address takes `--registers-per-address-hour`
//! at once, conflicts included; name lookups take from
//! `--lookups-per-address-minute`. Tests use separate loopback addresses
//! (127.0.0.x) for the attacker and the owner.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::HttpClient;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::Duration;

fn from(server: &TestServer, last: u8) -> LineClient {
    let mut c =
        LineClient::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, last), server.addr()));
    c.set_timeout(HASH_TIMEOUT);
    c
}

fn login_reply(c: &mut LineClient, name: &str, password: &str) -> Value {
    c.request(&json!({"cmd": "login", "username": name, "password": password}))
}

/// Asserts a throttled reply; returns its `retry_after_ms`.
#[track_caller]
fn assert_throttled(reply: &Value, flag: &str) -> u64 {
    assert_error(reply, "rate_limited");
    let message = error_message(reply);
    assert!(message.contains(flag), "names {flag}: {message}");
    reply["error"]["retry_after_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retry_after_ms in {reply}"))
}

#[test]
fn guesses_at_one_account_are_throttled_while_its_owner_still_logs_in() {
    // The shared bucket alone: no tries of their own for new addresses.
    let server =
        TestServer::start_with_default_limits(&["--login-tries-per-new-address-hour", "0"]);
    let mut owner = from(&server, 1);
    register(&mut owner, "alice", "alice-password");
    login(&mut owner, "alice", "alice-password");

    // From 127.0.0.2: five failures at once, then refused before hashing.
    let mut attacker = from(&server, 2);
    for _ in 0..5 {
        assert_error(
            &login_reply(&mut attacker, "alice", "guess-1234"),
            "unauthorized",
        );
    }
    let reply = login_reply(&mut attacker, "alice", "guess-1234");
    let wait = assert_throttled(&reply, "--login-failures-per-minute");
    assert!((1..=6_000).contains(&wait), "one guess every 6 s: {reply}");
    // Even the right password is refused while throttled: no oracle.
    let reply = login_reply(&mut attacker, "alice", "alice-password");
    assert_throttled(&reply, "--login-failures-per-minute");
    // Another address that never logged in to alice shares her bucket.
    let mut elsewhere = from(&server, 3);
    assert_throttled(
        &login_reply(&mut elsewhere, "alice", "guess-5678"),
        "--login-failures-per-minute",
    );

    // The owner, from the address she logged in from, is not locked out.
    let mut owner2 = from(&server, 1);
    let (_, id) = login(&mut owner2, "alice", "alice-password");
    assert!(id > 0);

    // The HTTP door says the same, with a Retry-After header.
    let stream = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr());
    let mut http = HttpClient::from_stream(stream);
    let r = http.post(
        "/login",
        &[("username", "alice"), ("password", "guess-9999")],
    );
    r.expect_error(429, "rate_limited");
    let body = r.expect_json(429);
    assert!(body["error"]["retry_after_ms"].as_u64().is_some(), "{body}");
    let seconds: u64 = r
        .header("Retry-After")
        .expect("a Retry-After header")
        .parse()
        .unwrap();
    assert!((1..=6).contains(&seconds), "{seconds}");
}

#[test]
fn an_unknown_username_is_throttled_exactly_like_a_known_one() {
    let server = TestServer::start_with_default_limits(&[]);
    let mut c = from(&server, 1);
    register(&mut c, "alice", "alice-password");
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut a = from(&server, 2);
    let mut b = from(&server, 3);
    // 5 from the shared bucket, then 3 of the address's own.
    for _ in 0..9 {
        known.push(login_reply(&mut a, "alice", "guess-1234"));
        unknown.push(login_reply(&mut b, "nobody", "guess-1234"));
    }
    let shape = |r: &Value| (r["error"]["code"].clone(), r["error"]["message"].clone());
    for (k, u) in known.iter().zip(&unknown).take(8) {
        assert_error(k, "unauthorized");
        assert_eq!(shape(k), shape(u));
    }
    assert_throttled(&known[8], "--login-failures-per-minute");
    assert_throttled(&unknown[8], "--login-failures-per-minute");
    assert_eq!(
        error_message(&known[8]).len(),
        error_message(&unknown[8]).len()
    );
}

#[test]
fn one_address_is_throttled_across_usernames_and_may_retry_after_the_wait() {
    // 60 a minute after a burst of 4 (twice --login-failure-burst): each
    // username is tried once, so only the address's bucket runs dry.
    let server = TestServer::start_with_default_limits(&[
        "--login-failures-per-address-minute",
        "60",
        "--login-failure-burst",
        "2",
    ]);
    let mut c = from(&server, 2);
    let mut failures = 0;
    let reply = loop {
        let reply = login_reply(&mut c, &format!("user{failures}"), "guess-1234");
        if reply["error"]["code"] != "unauthorized" {
            break reply;
        }
        failures += 1;
        assert!(failures < 20, "never throttled");
    };
    assert!(failures >= 4, "the burst is 4: {failures}");
    let wait = assert_throttled(&reply, "--login-failures-per-address-minute");
    assert!(wait <= 1_000, "{reply}");
    std::thread::sleep(Duration::from_millis(wait));
    assert_error(&login_reply(&mut c, "user99", "guess-1234"), "unauthorized");
    // Another address is not affected.
    let mut other = from(&server, 3);
    assert_error(
        &login_reply(&mut other, "user0", "guess-1234"),
        "unauthorized",
    );
}

#[test]
fn registrations_are_limited_per_address_per_hour() {
    let server = TestServer::start_with_default_limits(&["--registers-per-address-hour", "3"]);
    let mut c = from(&server, 2);
    for n in 0..3 {
        register(&mut c, &format!("user{n}"), "user-password");
    }
    let reply =
        c.request(&json!({"cmd": "register", "username": "user3", "password": "user-password"}));
    let wait = assert_throttled(&reply, "--registers-per-address-hour");
    assert!((1..=1_200_000).contains(&wait), "one every 20 min: {reply}");
    assert!(
        error_message(&reply).contains("at most 3 an hour"),
        "{reply}"
    );
    let stream = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr());
    let r = HttpClient::from_stream(stream).post(
        "/register",
        &[("username", "user3"), ("password", "user-password")],
    );
    r.expect_error(429, "rate_limited");
    // A refused name is not taken, and another address registers it.
    let mut other = from(&server, 3);
    register(&mut other, "user3", "user-password");
    // A conflict costs a registration too: REGISTER does not list names
    // faster than accounts can be made.
    let mut d = from(&server, 4);
    for _ in 0..3 {
        let reply = d
            .request(&json!({"cmd": "register", "username": "user0", "password": "user-password"}));
        assert_error(&reply, "conflict");
    }
    for name in ["user0", "user4"] {
        let reply =
            d.request(&json!({"cmd": "register", "username": name, "password": "user-password"}));
        assert_throttled(&reply, "--registers-per-address-hour");
    }
}

#[test]
fn guesses_from_many_addresses_do_not_lock_the_owner_out_of_a_new_address() {
    let server = TestServer::start_with_default_limits(&[]);
    let mut owner = from(&server, 1);
    register(&mut owner, "alice", "alice-password");
    // One guess each from 20 addresses: the shared bucket (5) is empty.
    for last in 10..30 {
        let reply = login_reply(&mut from(&server, last), "alice", "guess-1234");
        assert_error(&reply, "unauthorized");
    }
    // An address that used one of its own goes on: 2 more (3 if the
    // shared bucket refilled meanwhile, one every 6 s), then refused.
    let mut attacker = from(&server, 20);
    let mut guesses = 0;
    let refused = loop {
        let reply = login_reply(&mut attacker, "alice", "guess-5678");
        if reply["error"]["code"] != "unauthorized" {
            break reply;
        }
        guesses += 1;
        assert!(guesses <= 3, "never throttled");
    };
    assert!(guesses >= 2, "{guesses}");
    assert_throttled(&refused, "--login-failures-per-minute");
    // The owner, from an address never seen, logs in with the right
    // password, and again (a success gives its try back).
    let mut travelling = from(&server, 99);
    for _ in 0..5 {
        let reply = login_reply(&mut travelling, "alice", "alice-password");
        assert_eq!(assert_ok(&reply)["user"]["username"], "alice", "{reply}");
    }
}

#[test]
fn a_new_password_has_at_least_8_characters_in_both_doors() {
    let server = TestServer::start_with_default_limits(&[]);
    let mut c = server.connect();
    let reply = c.request(&json!({"cmd": "register", "username": "alice", "password": "seven77"}));
    assert_error(&reply, "bad_request");
    assert!(
        error_message(&reply).contains("at least 8 characters"),
        "{reply}"
    );
    assert_error(&c.text("REGISTER alice seven77"), "bad_request");
    // Characters, not bytes: eight accented letters are enough.
    register(&mut c, "bob", "éééééééé");
    let r = http::post(
        server.addr(),
        "/register",
        &[("username", "carol"), ("password", "short")],
    );
    let message = r.expect_error(400, "bad_request");
    assert!(message.contains("at least 8"), "{message}");
    register(&mut c, "alice", "eight888");
    // LOGIN does not check the length: a short password is just wrong.
    assert_error(&login_reply(&mut c, "alice", "short"), "unauthorized");
    login(&mut c, "alice", "eight888");
}

#[test]
fn a_hash_with_older_parameters_is_upgraded_at_the_next_login() {
    let dir = TempDir::new("rehash");
    let mut server = TestServer::start(&["--data", dir.arg()]);
    let mut c = server.connect();
    register(&mut c, "alice", "alice-password");
    drop(c);
    server.kill();
    assert!(stored_hash(&dir, "alice").contains("$m=47104,t=1,p=1$"));
    let conn = rusqlite::Connection::open(dir.path().join("gotalk.db")).unwrap();
    conn.execute(
        "UPDATE users SET password_hash = ?1 WHERE username = 'alice'",
        [old_hash("alice-password")],
    )
    .unwrap();
    drop(conn);
    assert!(stored_hash(&dir, "alice").contains("$m=19456,t=2,p=1$"));

    server.restart();
    let mut c = server.connect();
    login(&mut c, "alice", "alice-password");
    // A SEND commits after the upgrade's batch: once it is answered, the
    // new hash is on disk.
    sent_id(&c.text("SEND alice note to self"));
    server.kill();
    let hash = stored_hash(&dir, "alice");
    assert!(hash.contains("$m=47104,t=1,p=1$"), "{hash}");

    server.restart();
    let mut c = server.connect();
    login(&mut c, "alice", "alice-password");
    assert_error(
        &login_reply(&mut c, "alice", "wrong-password"),
        "unauthorized",
    );
}

#[test]
fn name_lookups_share_a_budget_per_address_in_both_doors() {
    let server = TestServer::start_with_default_limits(&["--lookups-per-address-minute", "3"]);
    let mut alice = from(&server, 1);
    register(&mut alice, "alice", "alice-password");
    let lookup = |last: u8, name: &str| {
        let stream = connect_from(Ipv4Addr::new(127, 0, 0, last), server.addr());
        HttpClient::from_stream(stream).post("/getuseridbyname", &[("username", name)])
    };
    // HTTP: 3 a minute from 127.0.0.2, found or not.
    assert_eq!(lookup(2, "alice").expect_json(200)["Name"], "alice");
    lookup(2, "nobody").expect_error(404, "not_found");
    assert_eq!(lookup(2, "alice").expect_json(200)["Name"], "alice");
    let r = lookup(2, "alice");
    let message = r.expect_error(429, "rate_limited");
    assert!(
        message.contains("--lookups-per-address-minute"),
        "{message}"
    );
    let seconds: u64 = r
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=20).contains(&seconds), "one every 20 s: {seconds}");
    // Another address has its own budget.
    assert_eq!(lookup(3, "alice").expect_json(200)["Id"], 1);

    // The line door: a SEND to a name that does not exist is a lookup; a
    // SEND to one that does costs nothing, until the budget is spent.
    let mut sender = from(&server, 4);
    login(&mut sender, "alice", "alice-password");
    for _ in 0..5 {
        assert_ok(&sender.text("SEND alice hello"));
    }
    for n in 0..3 {
        assert_error(&sender.text(&format!("SEND nobody{n} hello")), "not_found");
    }
    let reply = sender.text("SEND nobody9 hello");
    let wait = assert_throttled(&reply, "--lookups-per-address-minute");
    assert!((1..=20_000).contains(&wait), "{reply}");
    // Refused whatever the name: the refusal says nothing about it.
    assert_throttled(
        &sender.text("SEND alice hello"),
        "--lookups-per-address-minute",
    );
}
