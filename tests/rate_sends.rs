//! Fair shares per account: `--sends-per-second` with `--send-burst` (one
//! bucket for all of an account's connections) and
//! `--new-recipients-per-hour` (replies to existing conversations pass).
//! A refused SEND is `rate_limited` with `retry_after_ms`, is not stored,
//! and its `client_id` can be sent again.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use serde_json::{json, Value};
use std::thread;
use std::time::Duration;

fn send(client: &mut LineClient, to: &str, content: &str, client_id: Option<&str>) -> Value {
    let mut request = json!({"cmd": "send", "to": to, "content": content});
    if let Some(cid) = client_id {
        request["client_id"] = json!(cid);
    }
    client.request(&request)
}

fn retry_after(reply: &Value) -> u64 {
    assert_error(reply, "rate_limited");
    reply["error"]["retry_after_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("rate_limited without retry_after_ms: {reply}"))
}

#[test]
fn an_account_past_its_send_rate_waits_and_two_connections_share_one_bucket() {
    // 2 a second, 3 at once: a refusal says to wait about half a second.
    let server = TestServer::start(&[
        "--sends-per-second",
        "2",
        "--send-burst",
        "3",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");
    let (mut alice2, _, _) = {
        let mut c = server.connect();
        let (token, id) = login(&mut c, "alice", "password-a");
        (c, token, id)
    };
    let (mut bob, _, _) = register_and_login(&server, "bob", "password-b");
    let (mut carol, _, _) = register_and_login(&server, "carol", "password-c");

    // The burst, taken from two connections of one account.
    assert_ok(&send(&mut alice, "bob", "one", None));
    assert_ok(&send(&mut alice2, "bob", "two", None));
    assert_ok(&send(&mut alice, "bob", "three", None));
    let refused = send(&mut alice2, "bob", "four", Some("four"));
    let wait = retry_after(&refused);
    assert!(wait > 0 && wait <= 500, "one SEND per 500 ms: {refused}");
    assert!(
        error_message(&refused).contains("--sends-per-second"),
        "{refused}"
    );
    // Another account is not held back.
    assert_ok(&send(&mut carol, "bob", "from carol", None));

    // After the wait, the same client_id goes through, once.
    thread::sleep(Duration::from_millis(wait + 50));
    let sent = send(&mut alice2, "bob", "four", Some("four"));
    let id = sent_id(&sent);
    let again = send(&mut alice2, "bob", "four", Some("four"));
    assert_eq!(
        sent_id(&again),
        id,
        "a repeat is answered with the first id"
    );

    // Bob got everything that was accepted, and not the refused attempt twice.
    let contents: Vec<String> = (0..5)
        .map(|_| {
            bob.read_event()["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(contents, ["one", "two", "three", "from carol", "four"]);
    bob.expect_nothing_before_pong();

    let stats = server.stats();
    assert_eq!(stats["limit_hits"]["--sends-per-second"], 1, "{stats}");
}

#[test]
fn the_n_plus_first_new_recipient_is_refused_and_replies_go_through() {
    let server = TestServer::start(&["--new-recipients-per-hour", "2"]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");
    let mut others = Vec::new();
    for name in ["bob", "carol", "dave", "erin"] {
        let (client, _, _) = register_and_login(&server, name, "password-x");
        others.push(client);
    }
    assert_ok(&send(&mut alice, "bob", "hi bob", None));
    assert_ok(&send(&mut alice, "carol", "hi carol", None));
    let refused = send(&mut alice, "dave", "hi dave", None);
    let wait = retry_after(&refused);
    assert!(
        wait > 60_000 && wait <= 30 * 60 * 1000,
        "two an hour: the next in at most 30 minutes: {refused}"
    );
    assert!(
        error_message(&refused).contains("--new-recipients-per-hour"),
        "{refused}"
    );
    // An existing conversation goes on.
    assert_ok(&send(&mut alice, "bob", "again, bob", None));
    // Bob answers: alice wrote to him, so alice is no new recipient for him.
    let bob = &mut others[0];
    assert_ok(&send(bob, "alice", "hi alice", None));
    // Erin writes first; alice may answer her although her budget is spent.
    let erin = &mut others[3];
    assert_ok(&send(erin, "alice", "hello from erin", None));
    assert_ok(&send(&mut alice, "erin", "hello erin", None));
    // Dave still cannot be reached, and was never sent anything.
    assert_error(&send(&mut alice, "dave", "hi dave", None), "rate_limited");
    let dave = &mut others[2];
    dave.expect_nothing_before_pong();
    let ids = sync_all_ids(dave);
    assert!(ids.is_empty(), "nothing stored for dave: {ids:?}");
}

#[test]
fn the_http_door_shares_the_account_bucket_and_answers_429_with_retry_after() {
    let server = TestServer::start(&["--sends-per-second", "1", "--send-burst", "2"]);
    let (mut alice, token, _) = register_and_login(&server, "alice", "password-a");
    let (_bob, _, bob_id) = register_and_login(&server, "bob", "password-b");
    // One SEND on the line, one over HTTP: the burst of two is spent.
    assert_ok(&send(&mut alice, "bob", "by line", None));
    http::http_send(server.addr(), &token, bob_id, "by http");
    let to = bob_id.to_string();
    let fields = [
        ("token", token.as_str()),
        ("sendToId", to.as_str()),
        ("content", "one too many"),
    ];
    let refused = http::post(server.addr(), "/send", &fields);
    refused.expect_error(429, "rate_limited");
    assert!(
        refused.json()["error"]["retry_after_ms"].as_u64() > Some(0),
        "{}",
        refused.text()
    );
    assert_eq!(
        refused.header("retry-after"),
        Some("1"),
        "{}",
        refused.text()
    );
    // And the line door is refused as well.
    retry_after(&send(&mut alice, "bob", "by line again", None));
}
