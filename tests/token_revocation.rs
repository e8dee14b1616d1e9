//! Taking tokens back, over real sockets: LOGOUT on one connection
//! unbinds another connection bound by the same token (it is told, and its
//! next SEND is refused), the token is refused afterwards also after the
//! server is killed and restarted, LOGOUT all voids every token of the
//! account, POST /logout does the same over HTTP, and a bound connection
//! whose token expires is told so.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::{http_user, post};
use serde_json::json;

fn bind(server: &TestServer, token: &str) -> LineClient {
    let mut client = server.connect();
    assert_ok(&client.text(&format!("AUTH {token}")));
    client
}

#[test]
fn logout_unbinds_the_other_connections_of_that_token_and_survives_a_restart() {
    let data = TempDir::new("token-logout-durable");
    let mut server = TestServer::start(&["--data", data.arg()]);
    let (mut first, token, _) = register_and_login(&server, "alice", "alice-password");
    let mut second = bind(&server, &token);
    let (mut other_login, other_token) = {
        let mut c = server.connect();
        let (t, _) = login(&mut c, "alice", "alice-password");
        (c, t)
    };

    let reply = first.text("LOGOUT");
    assert_eq!(assert_ok(&reply)["revoked"], "token", "{reply}");
    assert_eq!(second.read_event(), json!({"event": "revoked"}));
    second.expect_nothing_before_pong();
    assert_error(&second.text("SEND alice hello"), "unauthorized");
    assert_error(&first.text("SEND alice hello"), "unauthorized");
    // A token of another LOGIN still holds.
    other_login.expect_nothing_before_pong();
    assert_ok(&other_login.text("SEND alice still here"));

    let mut third = server.connect();
    let refused = third.text(&format!("AUTH {token}"));
    assert_error(&refused, "unauthorized");
    assert!(error_message(&refused).contains("revoked"), "{refused}");

    server.restart(); // SIGKILL: the revocation was stored before `ok`
    let mut after = server.connect();
    assert_error(&after.text(&format!("AUTH {token}")), "unauthorized");
    assert_ok(&after.text(&format!("AUTH {other_token}")));
}

#[test]
fn logout_all_voids_two_tokens_of_the_account() {
    let server = TestServer::start(&[]);
    let (mut alice, first_token, _) = register_and_login(&server, "alice", "alice-password");
    let (mut bob, _, _) = register_and_login(&server, "bob", "bob-password");
    let mut other = server.connect();
    let (second_token, _) = login(&mut other, "alice", "alice-password");
    assert_ne!(first_token, second_token);

    let reply = alice.request(&json!({"cmd": "logout", "all": true, "tag": 7}));
    assert_eq!(assert_ok(&reply)["revoked"], "all", "{reply}");
    assert_eq!(reply["tag"], 7);
    assert_eq!(other.read_event(), json!({"event": "revoked"}));
    let mut fresh = server.connect();
    for token in [&first_token, &second_token] {
        assert_error(&fresh.text(&format!("AUTH {token}")), "unauthorized");
    }
    bob.expect_nothing_before_pong();
    assert_ok(&bob.text("SEND bob bob is not affected"));
    // Alice may log in again.
    let (new_token, _) = login(&mut fresh, "alice", "alice-password");
    assert_ok(&server.connect().text(&format!("AUTH {new_token}")));
}

#[test]
fn logout_without_a_login_is_unauthorized_and_a_json_token_names_the_token() {
    let server = TestServer::start(&[]);
    let (mut alice, token, _) = register_and_login(&server, "alice", "alice-password");
    let mut stranger = server.connect();
    assert_error(&stranger.text("LOGOUT"), "unauthorized");
    assert_error(&stranger.text("LOGOUT now"), "bad_request");
    let reply = stranger.request(&json!({"cmd": "logout", "token": token}));
    assert_ok(&reply);
    assert_eq!(alice.read_event(), json!({"event": "revoked"}));
}

#[test]
fn post_logout_revokes_the_token_for_both_doors() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (token, _) = http_user(addr, "alice", "alice-password");
    let mut bound = bind(&server, &token);

    let body = post(addr, "/logout", &[("token", &token)]).expect_json(200);
    assert_eq!(body, json!({"ok": true, "revoked": "token"}));
    assert_eq!(bound.read_event(), json!({"event": "revoked"}));
    let message = post(addr, "/sync", &[("token", &token)]).expect_error(401, "unauthorized");
    assert!(message.contains("revoked"), "{message}");
    post(addr, "/logout", &[("token", &token)]).expect_error(401, "unauthorized");
    post(addr, "/logout", &[]).expect_error(401, "unauthorized");

    let (a, _) = http::http_login(addr, "alice", "alice-password");
    let (b, _) = http::http_login(addr, "alice", "alice-password");
    post(addr, "/logout", &[("token", &a), ("all", "maybe")]).expect_error(400, "bad_request");
    let body = post(addr, "/logout", &[("token", &a), ("all", "1")]).expect_json(200);
    assert_eq!(body["revoked"], "all");
    post(addr, "/sync", &[("token", &b)]).expect_error(401, "unauthorized");
}

#[test]
fn a_bound_connection_is_told_when_its_token_expires() {
    let server = TestServer::start(&["--token-ttl", "1"]);
    let (mut alice, token, _) = register_and_login(&server, "alice", "alice-password");
    // The event comes when the token expires (about a second).
    assert_eq!(alice.read_event(), json!({"event": "expired"}));
    alice.expect_nothing_before_pong();
    assert_error(&alice.text("SEND alice hello"), "unauthorized");
    assert_error(&alice.text(&format!("AUTH {token}")), "unauthorized");
    // LOGIN binds it again (with a token of its own, as short-lived).
    let (new_token, _) = login(&mut alice, "alice", "alice-password");
    assert_ne!(new_token, token);
}
