//! `client_id` budget: with `--client-ids-per-sender N` a sender's newest N
//! ids still deduplicate and older ones do not; a durable server keeps
//! deduplicating across a restart, with the same N. Fresh ids without end
//! cost a sender at most N ids in RAM and N rows on disk.

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
    // The database keeps the newest N too: the oldest is a new message.
    let again = send_all(&mut alice, &all[..1]);
    assert!(again[0] > first[N], "{again:?} is a new message");
    assert_eq!(mailbox_size(&server, &bob_token), N + 2);
}

/// The rows the database file holds for `sender`'s client_ids (read-only,
/// beside the running server).
fn client_id_rows(dir: &TempDir, sender: &str) -> usize {
    let conn = rusqlite::Connection::open_with_flags(
        dir.path().join("gotalk.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT count(*) FROM client_ids \
         WHERE sender = (SELECT id FROM users WHERE username = ?1)",
        [sender],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

/// Sends 5 N messages with fresh client_ids (bob acknowledging them);
/// returns the ids of the first batch of N.
fn five_n_fresh_ids(alice: &mut LineClient, bob: &mut LineClient) -> Vec<u64> {
    let mut first = Vec::new();
    for round in 0..5 {
        let ids = send_all(alice, &cids(round * N..(round + 1) * N));
        let reply = bob.request(&json!({"cmd": "ack", "upto": ids[N - 1]}));
        assert_ok(&reply);
        if round == 0 {
            first = ids;
        }
    }
    first
}

#[test]
fn fresh_client_ids_cost_at_most_n_rows_and_n_in_ram() {
    let dir = TempDir::new("client-ids-rows");
    let server = TestServer::start(&[
        "--data",
        dir.arg(),
        "--client-ids-per-sender",
        "100",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let first = five_n_fresh_ids(&mut alice, &mut bob);
    // Each SEND was answered after its commit: the file says it all.
    let rows = client_id_rows(&dir, "alice");
    assert!(rows <= N, "{rows} client_id rows after {} fresh ids", 5 * N);
    assert_eq!(rows, N, "the newest N are kept");
    let core = &server.stats()["core"];
    assert_eq!(core["client_ids"], N);
    let queued = core["client_id_queue"].as_u64().unwrap() as usize;
    assert!(queued <= 2 * N + 16, "{queued} queue entries");
    // An id with more than N newer ones is a new message, in RAM and on disk.
    let again = send_all(&mut alice, &cids(0..1));
    assert!(again[0] > first[N - 1], "{again:?} is a new message");
    assert_eq!(client_id_rows(&dir, "alice"), N);
}

#[test]
fn fresh_client_ids_cost_at_most_n_in_ram_without_a_store() {
    let server = TestServer::start(&[
        "--memory",
        "--client-ids-per-sender",
        "100",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    five_n_fresh_ids(&mut alice, &mut bob);
    let core = &server.stats()["core"];
    assert_eq!(core["client_ids"], N);
    let queued = core["client_id_queue"].as_u64().unwrap() as usize;
    assert!(
        queued <= 2 * N + 16,
        "{queued} queue entries after {}",
        5 * N
    );
}

#[test]
fn fresh_client_ids_cost_at_most_n_rows_on_postgres() {
    let pg = common::postgres::Postgres::start();
    let url = pg.url();
    let key = pg.key_file();
    let mut server = TestServer::start(&[
        "--postgres",
        &url,
        "--key-file",
        key.to_str().unwrap(),
        "--client-ids-per-sender",
        "100",
    ]);
    let (mut alice, alice_token, _) = register_and_login(&server, "alice", "pw-a-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let first = five_n_fresh_ids(&mut alice, &mut bob);
    let rows = || {
        pg.psql(
            "SELECT count(*) FROM client_ids \
             WHERE sender = (SELECT id FROM users WHERE username = 'alice')",
        )
    };
    assert_eq!(rows(), N.to_string(), "the newest N rows after {}", 5 * N);
    // After a restart (nothing in RAM) the database alone decides: the
    // newest still deduplicates, one with N newer ones does not.
    drop((alice, bob));
    server.restart();
    let mut alice = server.connect();
    assert_ok(&alice.request(&json!({"cmd": "auth", "token": alice_token})));
    let newest = cids(5 * N - 1..5 * N);
    let again = send_all(&mut alice, &newest);
    let older = send_all(&mut alice, &cids(0..1));
    assert!(older[0] > first[N - 1], "{older:?} is a new message");
    assert_eq!(send_all(&mut alice, &newest), again, "still a repeat");
    // A repeat that reaches the database takes a number too: at most N.
    let now: usize = rows().parse().unwrap();
    assert!((N - 2..=N).contains(&now), "{now} rows");
}
