//! Taking tokens back on PostgreSQL (`--postgres`): a LOGOUT is stored
//! before its `ok` and refused again after the node restarts; a LOGOUT all
//! made through node A voids the account's tokens on node B, which reads
//! the account (with its `tokens_valid_from`) from the database; and a
//! password hash upgraded at LOGIN is what the database gives back.

mod common;
#[path = "common/http.rs"]
mod http;

use common::postgres::Postgres;
use common::*;
use serde_json::json;

/// A node on `url` with the cluster's shared key file and a cache of one
/// account, so accounts are read from the database.
fn node(pg: &Postgres, url: &str) -> TestServer {
    let key = pg.key_file();
    TestServer::start(&[
        "--postgres",
        url,
        "--key-file",
        key.to_str().unwrap(),
        "--account-cache",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ])
}

fn auth_ok(server: &TestServer, token: &str) -> bool {
    server.connect().text(&format!("AUTH {token}"))["ok"] == true
}

#[test]
fn logout_is_stored_and_logout_all_holds_on_another_node() {
    let pg = Postgres::start();
    let url = pg.url();
    let mut a = node(&pg, &url);
    let b = node(&pg, &url);
    let (alice, first, _) = register_and_login(&a, "alice", "alice-password");
    let mut other = a.connect();
    let (second, _) = login(&mut other, "alice", "alice-password");
    register(&mut a.connect(), "bob", "bob-password");

    // LOGOUT of one token, then a restart: still refused, the other holds.
    assert_ok(&other.request(&json!({"cmd": "logout"})));
    let revoked = pg.psql("SELECT count(*) FROM revoked_tokens");
    assert_eq!(revoked, "1", "stored before ok");
    a.restart();
    assert!(!auth_ok(&a, &second), "revoked after a restart");
    assert!(auth_ok(&a, &first));
    assert!(auth_ok(&b, &first), "valid on the other node");

    // LOGOUT all through A; B caches one account: bob, looked up last.
    let mut alice = {
        drop(alice);
        let mut c = a.connect();
        assert_ok(&c.text(&format!("AUTH {first}")));
        c
    };
    assert_ok(&alice.request(&json!({"cmd": "logout", "all": true})));
    let reply =
        http::HttpClient::connect(b.addr()).post("/getuseridbyname", &[("username", "bob")]);
    assert_eq!(reply.expect_json(200)["Name"], "bob");
    let stats = b.stats_when(|s| s["core"]["users_online"] == 0 && s["core"]["accounts"] == 1);
    assert_eq!(
        stats["core"]["accounts"], 1,
        "only bob is cached on B: {stats}"
    );
    assert!(!auth_ok(&b, &first), "B reads tokens_valid_from");
    assert!(!auth_ok(&a, &first));
    let (fresh, _) = login(&mut b.connect(), "alice", "alice-password");
    assert!(auth_ok(&a, &fresh), "a new LOGIN holds on both nodes");
    assert!(auth_ok(&b, &fresh));
}

#[test]
fn a_password_hash_upgraded_at_login_is_stored() {
    let pg = Postgres::start();
    let url = pg.url();
    let mut server = node(&pg, &url);
    let mut setup = server.connect();
    register(&mut setup, "alice", "alice-password");
    register(&mut setup, "bob", "bob-password");
    drop(setup);
    server.kill();
    pg.psql(&format!(
        "UPDATE users SET password_hash = '{}' WHERE username = 'alice'",
        old_hash("alice-password")
    ));
    server.start_again();
    let mut alice = server.connect();
    login(&mut alice, "alice", "alice-password");
    // A SEND commits after the upgrade's batch.
    sent_id(&alice.text("SEND bob hello"));
    let hash = pg.psql("SELECT password_hash FROM users WHERE username = 'alice'");
    assert!(hash.contains("$m=47104,t=1,p=1$"), "{hash}");
    server.restart();
    login(&mut server.connect(), "alice", "alice-password");
    let wrong = server
        .connect()
        .request(&json!({"cmd": "login", "username": "alice", "password": "wrong-password"}));
    assert_error(&wrong, "unauthorized");
}
