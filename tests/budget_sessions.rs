//! Connections per user: with `--conns-per-user 2` a third AUTH or LOGIN
//! (after its password check, and with no token) as the same user is
//! `rate_limited`; the two bound connections still get their pushes, and
//! once one closes another may bind.

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_third_connection_of_one_user_is_refused_and_pushes_reach_the_two() {
    let server = TestServer::start(&["--conns-per-user", "2", "--metrics", "127.0.0.1:0"]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut first, token, _) = register_and_login(&server, "bob", "pw-b-secret");
    let mut second = server.connect();
    assert_ok(&second.request(&json!({"cmd": "auth", "token": token})));

    let mut third = server.connect();
    let refused = third.request(&json!({"cmd": "auth", "token": token, "tag": "a"}));
    assert_error(&refused, "rate_limited");
    assert!(
        error_message(&refused).contains("--conns-per-user"),
        "{refused}"
    );
    assert_eq!(refused["tag"], "a");
    let refused = with_timeout(&mut third, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "login", "username": "bob", "password": "pw-b-secret"}))
    });
    assert_error(&refused, "rate_limited");
    assert!(refused.get("token").is_none(), "no token: {refused}");
    // A wrong password is still just a wrong password.
    let wrong = with_timeout(&mut third, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "login", "username": "bob", "password": "nope"}))
    });
    assert_error(&wrong, "unauthorized");
    // The refused connection is not bound: it needs a token of its own.
    assert_error(&third.text("SYNC"), "unauthorized");
    // Re-binding a connection already bound to bob is fine.
    assert_ok(&second.request(&json!({"cmd": "auth", "token": token})));

    let id = sent_id(&alice.text("SEND bob to both"));
    for c in [&mut first, &mut second] {
        let message = assert_message_event(&c.read_event());
        assert_eq!(message["id"], id);
    }
    // The third got nothing: its next line is the reply to its PING.
    assert_eq!(third.text("PING")["ok"], true);
    assert!(third.take_events().is_empty());

    // Once one closes, the third may bind.
    drop(first);
    server.stats_when(|s| s["core"]["line_sessions"] == 3);
    let reply = third.request(&json!({"cmd": "auth", "token": token}));
    assert_ok(&reply);
    let id = sent_id(&alice.text("SEND bob again"));
    assert_eq!(assert_message_event(&third.read_event())["id"], id);
    assert_eq!(assert_message_event(&second.read_event())["id"], id);
}
