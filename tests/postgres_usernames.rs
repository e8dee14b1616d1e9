//! Folded usernames on PostgreSQL (`--postgres`), through the real binary:
//! two nodes registering look-alikes at once (`Zed` and `zed`) make one
//! account and one `conflict` (the unique `name_key`), and a database from
//! before the rule (schema 3) with clashing names is migrated: the clash
//! is reported, both accounts are kept and log in by their exact names.

mod common;

use common::postgres::Postgres;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "correct-horse-battery";

fn node(pg: &Postgres, url: &str) -> TestServer {
    let key = pg.key_file();
    TestServer::start(&["--postgres", url, "--key-file", key.to_str().unwrap()])
}

fn login_reply(c: &mut LineClient, name: &str, password: &str) -> Value {
    with_timeout(c, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "login", "username": name, "password": password}))
    })
}

#[test]
fn two_nodes_registering_look_alikes_at_once_make_one_account() {
    let pg = Postgres::start();
    let url = pg.url();
    let (a, b) = (node(&pg, &url), node(&pg, &url));
    let mut on_a = a.connect();
    let mut on_b = b.connect();
    on_a.send_line(
        &json!({"cmd": "register", "username": "Zed", "password": PASSWORD}).to_string(),
    );
    on_b.send_line(
        &json!({"cmd": "register", "username": "zed", "password": PASSWORD}).to_string(),
    );
    let replies = [
        with_timeout(&mut on_a, HASH_TIMEOUT, |c| c.read_reply()),
        with_timeout(&mut on_b, HASH_TIMEOUT, |c| c.read_reply()),
    ];
    assert_one_registered_one_conflict(&replies);
    assert_eq!(
        pg.psql("SELECT count(*) FROM users WHERE name_key = 'zed'"),
        "1"
    );
    // Either spelling logs in the one account, through either node.
    let reply = login_reply(&mut on_a, "ZED", PASSWORD);
    assert_ok(&reply);
    let reply = login_reply(&mut on_b, "zEd", PASSWORD);
    assert_ok(&reply);
}

#[test]
fn a_database_with_clashing_names_is_migrated_and_keeps_both_accounts() {
    let pg = Postgres::start();
    let url = pg.url();
    drop(node(&pg, &url));
    // Back to schema 5, with accounts it allowed.
    pg.psql(
        "DROP INDEX users_by_name_key; ALTER TABLE users DROP COLUMN name_key; \
         ALTER TABLE users DROP COLUMN last_login; \
         DELETE FROM schema_migrations WHERE version >= 6",
    );
    for (name, password) in [("alice", "first-alice-pw"), ("Alice", "second-alice-pw")] {
        pg.psql(&format!(
            "INSERT INTO users (id, username, password_hash, created, identity) \
             VALUES (nextval('user_ids'), '{name}', '{}', 0, decode(md5(random()::text), 'hex'))",
            old_hash(password)
        ));
    }
    let server = node(&pg, &url);
    assert!(
        server.wait_for_stderr("username clash", Duration::from_secs(5)),
        "{}",
        server.stderr_text()
    );
    assert!(server.stderr_text().contains("'Alice' and 'alice'"));
    let mut c = server.connect();
    let first = login_reply(&mut c, "alice", "first-alice-pw");
    let second = login_reply(&mut c, "Alice", "second-alice-pw");
    assert_eq!(assert_ok(&first)["user"]["username"], "alice", "{first}");
    assert_eq!(assert_ok(&second)["user"]["username"], "Alice", "{second}");
    assert_ne!(first["user"]["id"], second["user"]["id"]);
    let other = login_reply(&mut c, "ALICE", "first-alice-pw");
    assert_eq!(assert_ok(&other)["user"]["username"], "alice", "{other}");
    let reply = with_timeout(&mut c, HASH_TIMEOUT, |c| {
        c.request(&json!({"cmd": "register", "username": "aLiCe", "password": PASSWORD}))
    });
    assert_error(&reply, "conflict");
}
