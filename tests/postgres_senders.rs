//! The per-sender budget (`--pending-bytes-per-sender`) and
//! `--message-ttl` on PostgreSQL, with two nodes on one database: the
//! sender's figure is counted and checked in the writing transaction, so
//! SENDs of one account through both nodes cannot pass it together, and
//! an ACK or an expiry on either node lowers it for both.

mod common;

use common::postgres::Postgres;
use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "correct-horse-battery";

fn node(pg: &Postgres, url: &str, name: &str, extra: &[&str]) -> TestServer {
    let key = pg.key_file();
    let mut args = vec![
        "--postgres",
        url,
        "--key-file",
        key.to_str().unwrap(),
        "--node-id",
        name,
        "--pending-bytes-per-sender",
        "65536",
        "--metrics",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

fn send(client: &mut LineClient, to: &str, content: &str) -> Value {
    client.request(&json!({"cmd": "send", "to": to, "content": content}))
}

fn sender_bytes(pg: &Postgres, name: &str) -> u64 {
    pg.psql(&format!(
        "SELECT coalesce(sum(s.bytes), 0) FROM sender_bytes s JOIN users u ON u.id = s.sender \
         WHERE u.username = '{name}'"
    ))
    .parse()
    .unwrap()
}

#[test]
fn one_sender_through_two_nodes_is_held_to_one_budget_and_others_are_served() {
    let pg = Postgres::start();
    let url = pg.url();
    let a = node(&pg, &url, "a", &[]);
    let b = node(&pg, &url, "b", &[]);
    let mut setup = a.connect();
    for sink in ["sink0", "sink1"] {
        register(&mut setup, sink, PASSWORD);
    }
    let (mut on_a, _, _) = register_and_login(&a, "mallory", PASSWORD);
    let mut on_b = b.connect();
    login(&mut on_b, "mallory", PASSWORD);
    let (mut bob, _, _) = register_and_login(&b, "bob", PASSWORD);

    // Alternating nodes: each node alone has seen only half of them.
    let content = "x".repeat(20_000);
    let mut stored = Vec::new();
    let refused = loop {
        let client = if stored.len() % 2 == 0 {
            &mut on_a
        } else {
            &mut on_b
        };
        let reply = send(client, &format!("sink{}", stored.len() % 2), &content);
        if reply["ok"] != true {
            break reply;
        }
        stored.push(sent_id(&reply));
        assert!(stored.len() < 10, "no refusal after {} SENDs", stored.len());
    };
    assert_eq!(stored.len(), 3, "three 20 kB messages fit in 64 KiB");
    assert_error(&refused, "rate_limited");
    let message = error_message(&refused);
    assert!(
        message.contains("(--pending-bytes-per-sender)"),
        "{message}"
    );
    assert!(message.contains("65536"), "{message}");
    let held = sender_bytes(&pg, "mallory");
    assert!(held > 60_000 && held <= 65_536, "{held}");

    // Bob, on either node, to the same sink: served.
    assert_ok(&send(&mut bob, "sink0", &content));

    // sink0 acknowledges on B; mallory sends on A again.
    let mut sink0 = b.connect();
    login(&mut sink0, "sink0", PASSWORD);
    let ids = sync_all_ids(&mut sink0);
    assert_ok(&sink0.text(&format!("ACK {}", ids.last().unwrap())));
    assert_eq!(sender_bytes(&pg, "mallory"), held - held / 3 * 2);
    assert_ok(&send(&mut on_a, "sink1", &content));
}

#[test]
fn message_ttl_expires_on_postgres_and_frees_the_sender() {
    let pg = Postgres::start();
    let url = pg.url();
    let a = node(&pg, &url, "a", &["--message-ttl", "1"]);
    let mut setup = a.connect();
    register(&mut setup, "sink0", PASSWORD);
    let (mut mallory, _, _) = register_and_login(&a, "mallory", PASSWORD);
    let content = "x".repeat(20_000);
    for _ in 0..3 {
        assert_ok(&send(&mut mallory, "sink0", &content));
    }
    assert_error(&send(&mut mallory, "sink0", &content), "rate_limited");
    let stats = a.stats_when(|s| s["messages"]["expired"] == 3);
    assert_eq!(stats["messages"]["expired"], 3, "{stats}");
    assert_eq!(pg.psql("SELECT count(*) FROM messages"), "0");
    assert_eq!(sender_bytes(&pg, "mallory"), 0);
    assert_eq!(
        pg.psql("SELECT count, bytes FROM mailboxes m JOIN users u ON u.id = m.user_id WHERE u.username = 'sink0'"),
        "0|0"
    );
    assert_ok(&send(&mut mallory, "sink0", &content));
}
