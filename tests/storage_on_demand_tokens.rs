//! What an account carries besides its name holds when the account is not
//! in RAM: with `--account-cache 1`, a LOGOUT all, a LOGOUT of one token
//! and a password-hash upgrade at LOGIN are all made while the account is
//! read from the store, and are still in force when it is read again —
//! before and after a restart.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use serde_json::{json, Value};

fn server_with_a_cache_of_one(dir: &TempDir) -> TestServer {
    TestServer::start(&[
        "--data",
        dir.arg(),
        "--account-cache",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ])
}

/// Looks up `names` in turn, so the cache of one holds the last of them
/// and nobody else who is not logged in.
fn crowd_out(server: &TestServer, names: &[&str]) {
    let mut c = http::HttpClient::connect(server.addr());
    for name in names {
        let reply = c.post("/getuseridbyname", &[("username", name)]);
        assert_eq!(reply.expect_json(200)["Name"], *name);
    }
    // Connections closed just before may still be unbinding: wait for it.
    let stats = server.stats_when(|s| s["core"]["users_online"] == 0 && s["core"]["accounts"] == 1);
    assert_eq!(
        stats["core"]["accounts"], 1,
        "only {names:?}'s last is cached: {stats}"
    );
}

fn auth(server: &TestServer, token: &str) -> Value {
    server.connect().text(&format!("AUTH {token}"))
}

/// LOGIN on a connection of its own, closed after: the account is not
/// pinned afterwards.
fn token_of(server: &TestServer, name: &str, password: &str) -> String {
    let mut c = server.connect();
    login(&mut c, name, password).0
}

#[test]
fn logout_all_and_logout_hold_for_an_account_read_from_the_store() {
    let dir = TempDir::new("on-demand-logout");
    let mut server = server_with_a_cache_of_one(&dir);
    let mut setup = server.connect();
    for name in ["alice", "bob", "carol"] {
        register(&mut setup, name, &format!("{name}-password"));
    }
    drop(setup);
    let first = token_of(&server, "alice", "alice-password");
    let second = token_of(&server, "alice", "alice-password");
    let single = token_of(&server, "bob", "bob-password");
    let kept = token_of(&server, "bob", "bob-password");

    // LOGOUT all with a token, from a connection bound to nobody, while
    // alice's account is not cached: it is read to open the token.
    crowd_out(&server, &["bob", "carol"]);
    let reply = server
        .connect()
        .request(&json!({"cmd": "logout", "all": true, "token": second}));
    assert_eq!(assert_ok(&reply)["revoked"], "all", "{reply}");
    // The same for one of bob's tokens.
    crowd_out(&server, &["alice", "carol"]);
    let reply = server
        .connect()
        .request(&json!({"cmd": "logout", "token": single}));
    assert_eq!(assert_ok(&reply)["revoked"], "token", "{reply}");

    // Read again from the store: the account says since when its tokens
    // hold, and the revoked token stays revoked.
    for _ in 0..2 {
        crowd_out(&server, &["bob", "carol"]);
        for token in [&first, &second] {
            let refused = auth(&server, token);
            assert_error(&refused, "unauthorized");
            assert!(error_message(&refused).contains("revoked"), "{refused}");
        }
        crowd_out(&server, &["alice", "carol"]);
        assert_error(&auth(&server, &single), "unauthorized");
        assert_ok(&auth(&server, &kept));
        server.restart();
    }
    // Alice may log in again, and her new token opens after a restart.
    let fresh = token_of(&server, "alice", "alice-password");
    server.restart();
    assert_ok(&auth(&server, &fresh));
}

#[test]
fn a_password_hash_upgraded_at_login_is_what_the_store_gives_back() {
    let dir = TempDir::new("on-demand-rehash");
    let mut server = server_with_a_cache_of_one(&dir);
    let mut setup = server.connect();
    for name in ["alice", "bob", "carol"] {
        register(&mut setup, name, &format!("{name}-password"));
    }
    drop(setup);
    server.kill();
    let conn = rusqlite::Connection::open(dir.path().join("gotalk.db")).unwrap();
    conn.execute(
        "UPDATE users SET password_hash = ?1 WHERE username = 'alice'",
        [old_hash("alice-password")],
    )
    .unwrap();
    drop(conn);

    // After the restart nothing is cached: LOGIN reads the old hash.
    server.start_again();
    let mut alice = server.connect();
    login(&mut alice, "alice", "alice-password");
    // A SEND commits after the upgrade's batch: once it is answered, the
    // new hash is on disk.
    sent_id(&alice.text("SEND bob hello"));
    let hash = stored_hash(&dir, "alice");
    assert!(hash.contains("$m=47104,t=1,p=1$"), "{hash}");
    drop(alice);

    // Read again from the store (not cached): the new hash verifies, the
    // wrong password does not.
    crowd_out(&server, &["bob", "carol"]);
    let mut c = server.connect();
    assert_error(
        &c.request(&json!({"cmd": "login", "username": "alice", "password": "wrong-password"})),
        "unauthorized",
    );
    crowd_out(&server, &["bob", "carol"]);
    login(&mut c, "alice", "alice-password");
    assert_eq!(stored_hash(&dir, "alice"), hash, "not hashed again");
}
