//! Accounts and tokens over the line protocol: REGISTER and its username
//! rules, LOGIN (one `unauthorized` message for unknown user and wrong
//! password), AUTH, which user a request acts as (the connection's, or the
//! `"token"` of a JSON request for that request alone), rejected tokens, and
//! that no user can read another's mailbox.

mod common;

use common::*;
use serde_json::{json, Value};

#[test]
fn usernames_of_1_to_32_allowed_characters_are_accepted() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let names = [
        "a",
        "Z",
        "0",
        "abcdefghijklmnopqrstuvwxyz012345", // 32 characters
        "Al.ic_e-9",
        "x.y-z_0",
    ];
    let mut ids = Vec::new();
    for name in names {
        ids.push(register(&mut c, name, "pw-secret"));
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "user ids must be distinct: {ids:?}"
    );

    let (_, id) = login(&mut c, "abcdefghijklmnopqrstuvwxyz012345", "pw-secret");
    assert_eq!(id, ids[3]);
}

#[test]
fn usernames_breaking_the_rules_are_bad_requests() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let too_long = "a".repeat(33);
    let bad = [
        "",
        too_long.as_str(),
        "has space",
        "slash/name",
        "at@sign",
        "émile",
        "tab\tname",
        "semi;colon",
        "smile😀",
        "plus+sign",
        "new\nline",
    ];
    for name in bad {
        let reply =
            c.request(&json!({"cmd": "register", "username": name, "password": "pw-secret"}));
        assert_error(&reply, "bad_request");
    }
    for line in [
        "REGISTER slash/name pw",
        "REGISTER émile pw-secret",
        "REGISTER at@sign pw",
        &format!("REGISTER {too_long} pw-secret"),
    ] {
        assert_error(&c.text(line), "bad_request");
    }
    // The 33-character name was not created as its 32-character prefix.
    let reply =
        c.request(&json!({"cmd": "register", "username": "a".repeat(32), "password": "pw-secret"}));
    assert_ok(&reply);
    assert_eq!(reply["user"]["username"], "a".repeat(32));
}

#[test]
fn a_taken_name_is_conflict_in_both_forms_and_keeps_the_first_password() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let id = register(&mut c, "alice", "first-pw");

    let reply =
        c.request(&json!({"cmd": "register", "username": "alice", "password": "other-password"}));
    assert_error(&reply, "conflict");
    let reply = c.text("REGISTER alice other-password");
    assert_error(&reply, "conflict");

    let (_, login_id) = login(&mut c, "alice", "first-pw");
    assert_eq!(login_id, id);
    let reply = c.request(&json!({"cmd": "login", "username": "alice", "password": "other"}));
    assert_error(&reply, "unauthorized");
}

#[test]
fn unknown_user_and_wrong_password_get_the_same_unauthorized_message() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    register(&mut c, "alice", "Right-Pw-7391");

    let wrong_pw =
        c.request(&json!({"cmd": "login", "username": "alice", "password": "Wrong-Pw-2846"}));
    assert_error(&wrong_pw, "unauthorized");
    let no_user =
        c.request(&json!({"cmd": "login", "username": "nobody", "password": "Right-Pw-7391"}));
    assert_error(&no_user, "unauthorized");
    assert_eq!(
        error_message(&wrong_pw),
        error_message(&no_user),
        "the two failures must be indistinguishable"
    );
    assert_eq!(wrong_pw["error"], no_user["error"]);

    let wrong_pw_text = c.text("LOGIN alice Wrong-Pw-2846");
    let no_user_text = c.text("LOGIN nobody Right-Pw-7391");
    assert_error(&wrong_pw_text, "unauthorized");
    assert_error(&no_user_text, "unauthorized");
    assert_eq!(wrong_pw_text["error"], no_user_text["error"]);
    assert!(
        !wrong_pw.to_string().contains("Right-Pw-7391")
            && !wrong_pw.to_string().contains("Wrong-Pw-2846"),
        "an error must not echo passwords: {wrong_pw}"
    );
}

#[test]
fn a_failed_login_does_not_bind_the_connection() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    register(&mut c, "alice", "right-password");
    assert_error(&c.text("LOGIN alice wrong"), "unauthorized");
    assert_error(&c.text("SYNC"), "unauthorized");
    assert_error(&c.request(&json!({"cmd": "sync"})), "unauthorized");
}

#[test]
fn login_again_rebinds_the_connection_to_the_new_user() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    register(&mut c, "alice", "pw-a-secret");
    register(&mut c, "bob", "pw-b-secret");
    login(&mut c, "alice", "pw-a-secret");
    let to_bob = sent_id(&c.text("SEND bob for bob"));
    login(&mut c, "bob", "pw-b-secret");
    assert_eq!(message_ids(&c.text("SYNC")), vec![to_bob]);
}

#[test]
fn a_token_works_on_other_connections() {
    let server = TestServer::start(&[]);
    let (mut alice, token, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let id = sent_id(&alice.text("SEND bob hi"));

    // A second connection of alice's, via AUTH.
    let mut again = server.connect();
    let reply = again.text(&format!("AUTH {token}"));
    assert_ok(&reply);
    assert_eq!(reply["user"], json!({"id": alice_id, "username": "alice"}));
    let id2 = sent_id(&again.text("SEND bob hi again"));
    assert!(id2 > id);

    let (_, bob_id) = login(&mut bob, "bob", "pw-b-secret");
    let got = messages(&bob.text("SYNC"));
    assert_eq!(got.len(), 2);
    for (m, content) in got.iter().zip(["hi", "hi again"]) {
        assert_message(
            m,
            &Expected {
                from: "alice",
                from_id: alice_id,
                to: "bob",
                to_id: bob_id,
                content,
                client_id: None,
            },
        );
    }
}

/// Variants of a real token that must all be refused.
fn broken_tokens(token: &str) -> Vec<String> {
    let chars: Vec<char> = token.chars().collect();
    let flip = |i: usize| -> String {
        let mut cs = chars.clone();
        // A digit, so the change is a real one in hex, base32 or base64 alike
        // (a case change alone may decode to the same bytes).
        cs[i] = if cs[i] == '0' { '1' } else { '0' };
        cs.into_iter().collect()
    };
    let mut out = vec![
        "garbage".to_string(),
        "0".to_string(),
        "x".repeat(token.len()),
        flip(chars.len() / 2),
        flip(0),
        chars[..chars.len() / 2].iter().collect(),
        chars[..chars.len() - 1].iter().collect(),
        format!("{token}A"),
    ];
    out.retain(|t| t != token && !t.is_empty());
    out
}

#[test]
fn tampered_truncated_or_garbage_tokens_are_unauthorized() {
    let server = TestServer::start(&[]);
    let (_alice, token, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut c = server.connect();
    for bad in broken_tokens(&token) {
        let reply = c.request(&json!({"cmd": "auth", "token": bad}));
        assert_error(&reply, "unauthorized");
        if !bad.contains(' ') {
            assert_error(&c.text(&format!("AUTH {bad}")), "unauthorized");
        }
        // As a per-request token too.
        let reply = c.request(&json!({"cmd": "sync", "token": bad}));
        assert_error(&reply, "unauthorized");
        let reply = c.request(&json!({"cmd": "send", "to": "alice", "content": "x", "token": bad}));
        assert_error(&reply, "unauthorized");
        let reply = c.request(&json!({"cmd": "ack", "upto": 1, "token": bad}));
        assert_error(&reply, "unauthorized");
        // None of that bound the connection.
        assert_error(&c.text("SYNC"), "unauthorized");
    }
    // The real token still works after all those attempts.
    assert_ok(&c.request(&json!({"cmd": "auth", "token": token})));
}

#[test]
fn send_sync_and_ack_need_a_user() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    register(&mut c, "bob", "pw-b-secret");
    for line in ["SEND bob hello", "SYNC", "SYNC 5", "ACK 5"] {
        assert_error(&c.text(line), "unauthorized");
    }
    for request in [
        json!({"cmd": "send", "to": "bob", "content": "hello"}),
        json!({"cmd": "sync"}),
        json!({"cmd": "sync", "after": 0, "limit": 10, "wait_ms": 0}),
        json!({"cmd": "ack", "upto": 5}),
    ] {
        assert_error(&c.request(&request), "unauthorized");
    }
    // Nothing was sent.
    login(&mut c, "bob", "pw-b-secret");
    assert_eq!(message_ids(&c.text("SYNC")), Vec::<u64>::new());
}

#[test]
fn a_request_token_decides_the_user_for_that_request_alone() {
    let server = TestServer::start(&[]);
    let (mut alice, _alice_token, alice_id) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, bob_token, bob_id) = register_and_login(&server, "bob", "pw-b-secret");

    let to_bob = sent_id(&alice.text("SEND bob for bob"));
    let to_alice = sent_id(&bob.text("SEND alice for alice"));

    // On alice's connection, a token request acts as bob...
    let reply = alice.request(&json!({"cmd": "sync", "token": bob_token}));
    assert_eq!(message_ids(&reply), vec![to_bob], "{reply}");
    // ...and the next request is alice's again.
    assert_eq!(
        message_ids(&alice.request(&json!({"cmd": "sync"}))),
        vec![to_alice]
    );

    // SEND with bob's token on alice's connection is from bob.
    let via = sent_id(&alice.request(&json!({
        "cmd": "send", "to": "alice", "content": "bob via token", "token": bob_token
    })));
    let got = messages(&alice.text("SYNC"));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["id"], to_alice);
    assert_message(
        &got[1],
        &Expected {
            from: "bob",
            from_id: bob_id,
            to: "alice",
            to_id: alice_id,
            content: "bob via token",
            client_id: None,
        },
    );
    assert_eq!(got[1]["id"], via);

    // ACK with bob's token acknowledges bob's mailbox, not alice's.
    assert_ok(&alice.request(&json!({"cmd": "ack", "upto": via, "token": bob_token})));
    assert_eq!(message_ids(&bob.text("SYNC")), Vec::<u64>::new());
    assert_eq!(message_ids(&alice.text("SYNC")), vec![to_alice, via]);
}

#[test]
fn a_request_token_does_not_bind_the_connection() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (_bob, bob_token, _) = register_and_login(&server, "bob", "pw-b-secret");

    let mut c = server.connect();
    let reply = c.request(&json!({"cmd": "sync", "token": bob_token}));
    assert_eq!(message_ids(&reply), Vec::<u64>::new());
    assert_error(&c.request(&json!({"cmd": "sync"})), "unauthorized");
    assert_error(&c.text("SYNC"), "unauthorized");

    // Not bound, so it receives no pushes for bob.
    sent_id(&alice.text("SEND bob pushed elsewhere"));
    c.expect_nothing_before_pong();
}

#[test]
fn no_user_can_read_or_acknowledge_another_users_mailbox() {
    let server = TestServer::start(&[]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (_bob, bob_token, _) = register_and_login(&server, "bob", "pw-b-secret");
    let (mut carol, carol_token, _) = register_and_login(&server, "carol", "pw-c-secret");

    let first = sent_id(&alice.text("SEND bob secret one"));
    let second = sent_id(&alice.text("SEND bob secret two"));

    // Carol sees none of bob's messages, however she asks.
    assert_eq!(message_ids(&carol.text("SYNC")), Vec::<u64>::new());
    assert_eq!(message_ids(&carol.text("SYNC 0")), Vec::<u64>::new());
    let reply =
        carol.request(&json!({"cmd": "sync", "after": 0, "limit": 1000, "token": carol_token}));
    assert_eq!(message_ids(&reply), Vec::<u64>::new());
    carol.expect_nothing_before_pong();

    // Her acknowledgements do not touch bob's mailbox.
    assert_ok(&carol.text(&format!("ACK {}", second + 1000)));
    assert_ok(&carol.request(&json!({"cmd": "sync", "after": second + 1000})));

    let mut bob2 = server.connect();
    let reply = bob2.request(&json!({"cmd": "sync", "token": bob_token}));
    assert_eq!(message_ids(&reply), vec![first, second]);
    assert_eq!(
        message_contents(&reply),
        vec!["secret one".to_string(), "secret two".to_string()]
    );
    let none: Vec<Value> = Vec::new();
    assert_eq!(messages(&carol.text("SYNC")), none);
}

#[test]
fn a_bad_request_token_never_falls_back_to_the_connection_user() {
    let server = TestServer::start(&[]);
    let (mut alice, token, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let id = sent_id(&bob.text("SEND alice for alice"));

    let bad = broken_tokens(&token);
    for bad in &bad {
        // Alice's connection is bound, but a request naming a token acts as
        // that token's user or not at all.
        let reply = alice.request(&json!({"cmd": "sync", "token": bad}));
        assert_error(&reply, "unauthorized");
        let reply = alice.request(&json!({"cmd": "ack", "upto": id, "token": bad}));
        assert_error(&reply, "unauthorized");
        let reply =
            alice.request(&json!({"cmd": "send", "to": "bob", "content": "forged", "token": bad}));
        assert_error(&reply, "unauthorized");
    }
    // Nothing was acknowledged or sent, and the binding is intact.
    assert_eq!(message_ids(&alice.text("SYNC")), vec![id]);
    assert_eq!(message_ids(&bob.text("SYNC")), Vec::<u64>::new());
}
