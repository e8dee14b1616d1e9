//! Revocations bounded per account, over real sockets: an account's
//! LOGOUTs revoke at most `--revocations-per-account` tokens one by one;
//! the next ends every session of the account (the reply says so), and the
//! rows and the RAM figure never pass the cap. Successful LOGINs of one
//! account are rate-limited (`--logins-per-account-minute`).

mod common;

use common::*;
use serde_json::json;

const N: usize = 3;
const PASSWORD: &str = "alice-password";

/// Rows of the revoked_tokens table (read-only, beside the running server).
fn revoked_rows(dir: &TempDir) -> usize {
    let conn = rusqlite::Connection::open_with_flags(
        dir.path().join("gotalk.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row("SELECT count(*) FROM revoked_tokens", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as usize
}

/// N + 1 LOGIN and LOGOUT cycles of alice on `server`, whose revoked
/// tokens `rows` counts: N revoke one token each, the next ends every
/// session; an older token of alice's is void then, bob's is not.
fn n_plus_one_cycles(server: &TestServer, rows: &dyn Fn() -> usize) {
    let (_, older, _) = register_and_login(server, "alice", PASSWORD);
    let (_, bob_token, _) = register_and_login(server, "bob", "bob-password");
    for cycle in 0..=N {
        let mut c = server.connect();
        login(&mut c, "alice", PASSWORD);
        let reply = c.request(&json!({"cmd": "logout"}));
        let reply = assert_ok(&reply);
        let rows = rows();
        let in_ram = server.stats()["core"]["revoked_tokens"].as_u64().unwrap() as usize;
        assert!(rows <= N && in_ram <= N, "{rows} rows, {in_ram} in RAM");
        if cycle < N {
            assert_eq!(reply["revoked"], "token", "{reply}");
            assert!(reply.get("reason").is_none(), "{reply}");
            assert_eq!((rows, in_ram), (cycle + 1, cycle + 1));
        } else {
            assert_eq!(reply["revoked"], "all", "{reply}");
            assert_eq!(reply["reason"], "revocations_per_account", "{reply}");
            assert_eq!((rows, in_ram), (0, 0), "the moment covers them all");
        }
    }
    let mut c = server.connect();
    assert_error(&c.text(&format!("AUTH {older}")), "unauthorized");
    assert_ok(&c.text(&format!("AUTH {bob_token}")));
    // A new LOGIN works, and its LOGOUT revokes one token again.
    let mut c = server.connect();
    login(&mut c, "alice", PASSWORD);
    let reply = c.request(&json!({"cmd": "logout"}));
    assert_eq!(assert_ok(&reply)["revoked"], "token", "{reply}");
    assert_eq!(rows(), 1);
}

#[test]
fn past_n_revocations_a_logout_ends_every_session_of_the_account() {
    let dir = TempDir::new("revocations-cap");
    let server = TestServer::start(&[
        "--data",
        dir.arg(),
        "--revocations-per-account",
        "3",
        "--metrics",
        "127.0.0.1:0",
    ]);
    n_plus_one_cycles(&server, &|| revoked_rows(&dir));
}

#[test]
fn past_n_revocations_a_logout_ends_every_session_on_postgres() {
    let pg = common::postgres::Postgres::start();
    let (url, key) = (pg.url(), pg.key_file());
    let server = TestServer::start(&[
        "--postgres",
        &url,
        "--key-file",
        key.to_str().unwrap(),
        "--revocations-per-account",
        "3",
        "--metrics",
        "127.0.0.1:0",
    ]);
    n_plus_one_cycles(&server, &|| {
        pg.psql("SELECT count(*) FROM revoked_tokens")
            .parse()
            .unwrap()
    });
}

#[test]
fn successful_logins_of_one_account_are_rate_limited() {
    let server = TestServer::start(&["--logins-per-account-minute", "3"]);
    let mut c = server.connect();
    register(&mut c, "alice", PASSWORD);
    register(&mut c, "bob", "bob-password");
    for _ in 0..3 {
        let mut c = server.connect();
        login(&mut c, "alice", PASSWORD);
    }
    let mut c = server.connect();
    let reply = c.request(&json!({"cmd": "login", "username": "alice", "password": PASSWORD}));
    assert_error(&reply, "rate_limited");
    let wait = reply["error"]["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 20_000, "one login per 20 s: {reply}");
    assert!(
        error_message(&reply).contains("--logins-per-account-minute"),
        "{reply}"
    );
    // Another account is not affected.
    login(&mut c, "bob", "bob-password");
}
