//! What a release says about itself and how it takes over a database an
//! older one wrote: `--version` names the crate version and the commit;
//! an upgraded version-1 database counts its custody exactly; a retry
//! deduplicated from disk takes no message id; the process ends promptly
//! after it logs that it stopped.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let run = run_cli(&["--version"], Duration::from_secs(10));
    assert!(run.status.is_some_and(|s| s.success()), "{run:?}");
    let line = run.stdout.trim();
    let expected = format!("gotalk {} (", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&expected), "{line}");
    assert!(line.ends_with(')'), "{line}");
    let commit = &line[expected.len()..line.len() - 1];
    let hex = commit.trim_end_matches("-dirty");
    let named = commit == "unknown commit"
        || (hex.len() >= 7
            && hex
                .rsplit('g')
                .next()
                .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit())));
    assert!(named, "not a commit: {commit:?} in {line}");
}

/// The cost the server charges for each message in custody in the
/// database of `dir`, recounted from its rows; and the figures it holds
/// (`meta`'s bytes and messages, the sum of `sender_bytes`).
fn recount(dir: &TempDir) -> ((i64, i64), (i64, i64, i64)) {
    use gotalk::message::{Message, Parties};
    let conn = rusqlite::Connection::open(dir.path().join("gotalk.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.id, f.username, m.from_id, t.username, m.to_id, m.content, m.ts, m.client_id \
             FROM messages m JOIN users f ON f.id = m.from_id JOIN users t ON t.id = m.to_id \
             WHERE m.id > (SELECT coalesce(max(upto), 0) FROM acked a WHERE a.to_id = m.to_id)",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let (mut count, mut bytes) = (0, 0);
    while let Some(r) = rows.next().unwrap() {
        let (from, to): (String, String) = (r.get(1).unwrap(), r.get(3).unwrap());
        let parties = Parties {
            from_id: r.get::<_, i64>(2).unwrap() as u64,
            from: &from,
            to_id: r.get::<_, i64>(4).unwrap() as u64,
            to: &to,
        };
        let content: String = r.get(5).unwrap();
        let client_id: Option<String> = r.get(7).unwrap();
        let id = r.get::<_, i64>(0).unwrap() as u64;
        let ts = r.get::<_, i64>(6).unwrap() as u64;
        let m = Message::new(id, &parties, ts, &content, client_id.as_deref());
        count += 1;
        bytes += m.cost() as i64;
    }
    let meta = |key: &str| -> i64 {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .unwrap()
    };
    let senders: i64 = conn
        .query_row(
            "SELECT coalesce(sum(bytes), 0) FROM sender_bytes",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (
        (count, bytes),
        (meta("pending_messages"), meta("pending_bytes"), senders),
    )
}

#[test]
fn a_version_1_database_counts_its_backlog_at_its_real_size_after_the_upgrade() {
    // A database as a release of schema version 1 left it: bob has 300
    // unread messages of 60 KB from alice (18 MB as the server renders
    // them; the old estimate made it 36 MB).
    let data = TempDir::new("upgrade-v1");
    {
        let conn = rusqlite::Connection::open(data.path().join("gotalk.db")).unwrap();
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .unwrap();
        conn.execute_batch(gotalk::store::sqlite::schema::MIGRATIONS[0])
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for (id, name) in [(1, "alice"), (2, "bob")] {
            conn.execute(
                "INSERT INTO users (id, username, password_hash, created) VALUES (?1, ?2, ?3, 0)",
                rusqlite::params![id, name, old_hash(&format!("{name}-password"))],
            )
            .unwrap();
        }
        let content = "m".repeat(60_000);
        for id in 1..=300 {
            let client_id = (id % 2 == 0).then(|| format!("retry-{id}"));
            conn.execute(
                "INSERT INTO messages (id, from_id, to_id, ts, content, client_id) \
                 VALUES (?1, 1, 2, ?2, ?3, ?4)",
                rusqlite::params![id, 1_700_000_000_000i64 + id, content, client_id],
            )
            .unwrap();
        }
        conn.execute(
            "UPDATE meta SET value = 300 WHERE key = 'last_message_id'",
            [],
        )
        .unwrap();
    }
    let mut server = TestServer::start(&[
        "--data",
        data.arg(),
        "--mailbox-bytes",
        "20000000",
        "--pending-bytes-per-sender",
        "100000000",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let log = server.stderr_text();
    assert!(
        log.contains("from version 1 to"),
        "the migration is logged: {log}"
    );
    let ((count, bytes), stored) = recount(&data);
    assert_eq!(count, 300);
    assert_eq!(stored, (count, bytes, bytes));
    let core = &server.stats()["core"];
    assert_eq!(core["pending_bytes"], bytes, "{core}");

    // Room for one more 60 KB message in bob's 20 MB.
    let (mut alice, _, _) = register_and_login_existing(&server, "alice");
    let reply = alice.request(&serde_json::json!({
        "cmd": "send", "to": "bob", "content": "n".repeat(60_000)
    }));
    assert_eq!(sent_id(&reply), 301, "{reply}");
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).is_some());
    let ((count, bytes), stored) = recount(&data);
    assert_eq!(count, 301);
    assert_eq!(stored, (count, bytes, bytes));
}

/// A connection logged in as the existing account `name`.
fn register_and_login_existing(server: &TestServer, name: &str) -> (LineClient, String, u64) {
    let mut client = server.connect();
    let (token, id) = login(&mut client, name, &format!("{name}-password"));
    (client, token, id)
}

#[test]
fn a_retry_deduplicated_from_disk_takes_no_message_id() {
    let data = TempDir::new("retry-ids");
    let mut server = TestServer::start(&["--data", data.arg()]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "alice-password");
    let mut bob = server.connect();
    register(&mut bob, "bob", "bob-password");
    let send = |client: &mut LineClient, content: &str, client_id: &str| {
        let reply = client.request(&serde_json::json!({
            "cmd": "send", "to": "bob", "content": content, "client_id": client_id
        }));
        sent_id(&reply)
    };
    let first = send(&mut alice, "hello", "c-1");
    // After a restart the client_id is known from disk only.
    server.restart();
    let mut alice = server.connect();
    login(&mut alice, "alice", "alice-password");
    for _ in 0..5 {
        assert_eq!(
            send(&mut alice, "hello", "c-1"),
            first,
            "a retry gets the first id"
        );
    }
    let next = send(&mut alice, "next", "c-2");
    assert_eq!(next, first + 1, "the retries took no id");
    let mut bob = server.connect();
    login(&mut bob, "bob", "bob-password");
    assert_eq!(sync_all_ids(&mut bob), [first, next]);
}

#[test]
fn the_process_ends_after_its_last_line_says_it_stopped() {
    let data = TempDir::new("stop-last-line");
    let mut server = TestServer::start(&["--data", data.arg(), "--metrics", "127.0.0.1:0"]);
    let (_alice, _, _) = register_and_login(&server, "alice", "alice-password");
    server.signal(libc::SIGTERM);
    // Generous: a graceful stop with nothing in flight takes milliseconds.
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(server.wait_for_stderr("gotalk stopped", Duration::from_secs(5)));
    let log = server.stderr_text();
    let last = log.lines().last().unwrap_or("");
    assert!(last.contains("gotalk stopped"), "{log}");
    assert!(log.find("stopped after SIGTERM").unwrap() < log.find("gotalk stopped").unwrap());
}
