//! `client_id` budget: with `--client-ids-per-sender N` a sender's newest N
//! ids still deduplicate and older ones do not; a durable server keeps
//! deduplicating across a restart, with the same N.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::thread;

const N: usize = 100;

/// Sends `content` to bob with each client_id, pipelined; returns the ids.
fn send_all(client: &mut LineClient, cids: &[String]) -> Vec<u64> {
    let lines: String = cids
        .iter()
        .map(|cid| {
            format!(
                "{}\n",
                json!({"cmd": "send", "to": "bob", "content": format!("about {cid}"), "client_id": cid})
            )
        })
        .collect();
    let mut writer = client.writer_clone();
    let write = thread::spawn(move || writer.write_all(lines.as_bytes()).unwrap());
    let ids = cids.iter().map(|_| sent_id(&client.read_reply())).collect();
    write.join().unwrap();
    ids
}

fn cids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("cid-{i}")).collect()
}

fn mailbox_size(server: &TestServer, token: &str) -> usize {
    let mut c = server.connect();
    messages(&c.request(&json!({"cmd": "sync", "token": token, "limit": 1000}))).len()
}

#[test]
fn the_newest_n_client_ids_deduplicate_and_older_ones_do_not() {
    let server = TestServer::start(&["--client-ids-per-sender", "100", "--metrics", "127.0.0.1:0"]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (bob_token, _) = login(&mut bob, "bob", "pw-b-secret");

    let all = cids(0..N + 1);
    let first = send_all(&mut alice, &all);
    assert_eq!(
        server.stats()["core"]["client_ids"],
        N,
        "N per sender are kept"
    );
    // The newest N come back with their first ids and store nothing.
    assert_eq!(send_all(&mut alice, &all[1..]), first[1..].to_vec());
    assert_eq!(mailbox_size(&server, &bob_token), N + 1);
    // The oldest, the (N+1)th from the newest, is forgotten: sent again.
    let again = send_all(&mut alice, &all[..1]);
    assert!(again[0] > first[N], "{again:?} is a new message");
    assert_eq!(mailbox_size(&server, &bob_token), N + 2);
    // Another sender's ids are its own.
    let (mut carol, _, _) = register_and_login(&server, "carol", "pw-c-secret");
    let theirs = send_all(&mut carol, &all[N..]);
    assert_ne!(theirs[0], first[N]);
}

#[test]
fn a_durable_server_deduplicates_across_a_restart() {
    let dir = TempDir::new("client-ids");
    let mut server = TestServer::start(&["--data", dir.arg(), "--client-ids-per-sender", "100"]);
    let (mut alice, alice_token, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (bob_token, _) = login(&mut bob, "bob", "pw-b-secret");
    let all = cids(0..N + 1);
    let first = send_all(&mut alice, &all);
    drop((alice, bob));

    server.restart();
    let mut alice = server.connect();
    let reply: Value = alice.request(&json!({"cmd": "auth", "token": alice_token}));
    assert_ok(&reply);
    // The newest ids are still refused as duplicates, with their first ids.
    assert_eq!(send_all(&mut alice, &all[N..]), first[N..].to_vec());
    assert_eq!(send_all(&mut alice, &all[1..2]), first[1..2].to_vec());
    assert_eq!(mailbox_size(&server, &bob_token), N + 1);
    // The database remembers every id of the day, not only the newest N
    // the cache holds: the oldest is refused too.
    assert_eq!(send_all(&mut alice, &all[..1]), first[..1].to_vec());
    assert_eq!(mailbox_size(&server, &bob_token), N + 1);
}
