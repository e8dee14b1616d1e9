//! The per-sender budget of unacknowledged bytes
//! (`--pending-bytes-per-sender`) and the expiry of unacknowledged
//! messages (`--message-ttl`), over the line protocol against the real
//! binary: one sender filling mailboxes (of dormant accounts, too) reaches
//! its own budget and is refused with a reply naming it, while another
//! sender to the same and other receivers is served; an ACK gives the
//! sender its room back, even one read after a restart whose sender is
//! not in RAM; the figure survives a restart; and an expired message
//! frees every budget it counted in.

mod common;

use common::*;
use serde_json::{json, Value};

/// The finding's figures: a 4 MiB pool and 1 MiB mailboxes, which one
/// account with six sinks filled with 91 SENDs; here a sender holds at
/// most 64 KiB of it.
const FLAGS: &[&str] = &[
    "--pending-bytes",
    "4194304",
    "--mailbox-bytes",
    "1048576",
    "--pending-bytes-per-sender",
    "65536",
    "--metrics",
    "127.0.0.1:0",
];

const SINKS: usize = 6;

fn start(storage: &[&str], extra: &[&str]) -> TestServer {
    let args: Vec<&str> = storage.iter().chain(FLAGS).chain(extra).copied().collect();
    TestServer::start(&args)
}

/// Registers `n` accounts that never log in (dormant sinks).
fn sinks(server: &TestServer, n: usize) {
    let mut c = server.connect();
    for i in 0..n {
        register(&mut c, &format!("sink{i}"), "pw-sink-secret");
    }
}

fn send(client: &mut LineClient, to: &str, content: &str) -> Value {
    client.request(&json!({"cmd": "send", "to": to, "content": content}))
}

/// Sends 20 kB messages round the sinks until one is refused; returns the
/// ids that were stored and the refusal.
fn fill_own_budget(mallory: &mut LineClient) -> (Vec<u64>, Value) {
    let content = "x".repeat(20_000);
    let mut ids = Vec::new();
    for i in 0..100 {
        let reply = send(mallory, &format!("sink{}", i % SINKS), &content);
        if reply["ok"] != true {
            return (ids, reply);
        }
        ids.push(sent_id(&reply));
    }
    panic!("100 SENDs of 20 kB and no refusal");
}

#[track_caller]
fn assert_refused_by_sender_budget(reply: &Value) {
    assert_error(reply, "rate_limited");
    let message = error_message(reply);
    assert!(
        message.contains("(--pending-bytes-per-sender)"),
        "the refusal names the sender's budget: {message}"
    );
}

fn top_holder(stats: &Value) -> (u64, u64) {
    let top = &stats["senders"]["top"][0];
    (
        top["user_id"].as_u64().unwrap_or(0),
        top["bytes"].as_u64().unwrap_or(0),
    )
}

fn one_sender_cannot_make_anothers_send_fail(storage: &[&str]) {
    let server = start(storage, &[]);
    sinks(&server, SINKS);
    let (mut mallory, _, mallory_id) = register_and_login(&server, "mallory", "pw-m-secret");
    let (mut bob, _, _) = register_and_login(&server, "bob", "pw-b-secret");
    let (mut carol, _, _) = register_and_login(&server, "carol", "pw-c-secret");

    let (ids, refused) = fill_own_budget(&mut mallory);
    assert_eq!(ids.len(), 3, "three 20 kB messages fit in 64 KiB");
    assert_refused_by_sender_budget(&refused);
    // Refused again, to any receiver: the budget is the sender's.
    assert_refused_by_sender_budget(&send(&mut mallory, "carol", &"x".repeat(20_000)));

    let stats = server.stats();
    let (top, held) = top_holder(&stats);
    assert_eq!(top, mallory_id, "mallory holds the most: {stats}");
    assert!(held > 60_000 && held <= 65_536, "{held}");
    assert_eq!(stats["limit_hits"]["--pending-bytes-per-sender"], 2);

    // Another sender to the same sinks and to others is served.
    let big = "y".repeat(20_000);
    for to in ["sink0", "sink1", "carol"] {
        assert_ok(&send(&mut bob, to, &big));
    }
    let pushed = assert_message_event(&carol.read_event());
    assert_eq!(pushed["from"], "bob");

    // sink0 reads and acknowledges mallory's first message: her room is back.
    let mut sink0 = server.connect();
    login(&mut sink0, "sink0", "pw-sink-secret");
    let synced = message_ids(&sink0.text("SYNC"));
    assert!(synced.contains(&ids[0]), "{synced:?}");
    assert_ok(&sink0.text(&format!("ACK {}", synced.last().unwrap())));
    let (_, after_ack) = top_holder(&server.stats());
    assert_eq!(
        after_ack,
        held - (held / 3),
        "one of three equal messages left"
    );
    assert_ok(&send(&mut mallory, "sink3", &"z".repeat(20_000)));
}

#[test]
fn one_sender_cannot_make_anothers_send_fail_in_memory() {
    one_sender_cannot_make_anothers_send_fail(&["--memory"]);
}

#[test]
fn one_sender_cannot_make_anothers_send_fail_on_sqlite() {
    let dir = TempDir::new("senders");
    one_sender_cannot_make_anothers_send_fail(&["--data", dir.arg()]);
}

#[test]
fn the_sender_figure_survives_a_restart_and_an_ack_of_a_sender_not_in_ram_lowers_it() {
    let dir = TempDir::new("senders-restart");
    let mut server = start(&["--data", dir.arg()], &[]);
    sinks(&server, SINKS);
    let (mut mallory, _, mallory_id) = register_and_login(&server, "mallory", "pw-m-secret");
    let (ids, refused) = fill_own_budget(&mut mallory);
    assert_refused_by_sender_budget(&refused);
    let (_, held) = top_holder(&server.stats());
    drop(mallory);

    server.restart();
    let stats = server.stats();
    assert_eq!(top_holder(&stats), (mallory_id, held), "{stats}");
    assert_eq!(stats["senders"]["holding"], 1);

    // sink0 acknowledges while mallory (her account, her figure's owner)
    // is not logged in: the store says whose bytes left.
    let mut sink0 = server.connect();
    login(&mut sink0, "sink0", "pw-sink-secret");
    let synced = message_ids(&sink0.text("SYNC"));
    assert_eq!(synced, [ids[0]]);
    assert_ok(&sink0.text(&format!("ACK {}", ids[0])));
    let (_, after_ack) = top_holder(&server.stats());
    assert_eq!(after_ack, held - held / 3);

    let mut mallory = server.connect();
    login(&mut mallory, "mallory", "pw-m-secret");
    assert_ok(&send(&mut mallory, "sink4", &"z".repeat(20_000)));
    assert_refused_by_sender_budget(&send(&mut mallory, "sink5", &"z".repeat(20_000)));

    // And once more across a restart, after the ACK.
    let (_, before) = top_holder(&server.stats());
    server.restart();
    assert_eq!(top_holder(&server.stats()), (mallory_id, before));
}

fn expiry_frees_every_budget(storage: &[&str]) {
    let server = start(storage, &["--message-ttl", "1"]);
    sinks(&server, SINKS);
    let (mut mallory, _, _) = register_and_login(&server, "mallory", "pw-m-secret");
    let (ids, refused) = fill_own_budget(&mut mallory);
    assert_refused_by_sender_budget(&refused);

    // Expiry runs in steps; poll the figures until it is done.
    let stats = server.stats_when(|s| {
        s["messages"]["expired"].as_u64() >= Some(ids.len() as u64)
            && s["core"]["pending_bytes"] == 0
    });
    assert_eq!(stats["messages"]["expired"], ids.len() as u64, "{stats}");
    assert_eq!(stats["core"]["pending_bytes"], 0, "{stats}");
    assert_eq!(stats["core"]["pending_messages"], 0, "{stats}");
    assert_eq!(stats["senders"]["holding"], 0, "{stats}");

    // The sender's room is back, and the receiver never gets the
    // expired message.
    let fresh = sent_id(&send(&mut mallory, "sink0", &"z".repeat(20_000)));
    let mut sink0 = server.connect();
    login(&mut sink0, "sink0", "pw-sink-secret");
    let synced = message_ids(&sink0.text("SYNC"));
    assert!(!synced.contains(&ids[0]), "{synced:?}");
    assert!(synced.iter().all(|&id| id == fresh), "{synced:?}");
}

#[test]
fn message_ttl_expires_unacknowledged_messages_in_memory() {
    expiry_frees_every_budget(&["--memory"]);
}

#[test]
fn message_ttl_expires_unacknowledged_messages_on_sqlite() {
    let dir = TempDir::new("senders-ttl");
    expiry_frees_every_budget(&["--data", dir.arg()]);
}
