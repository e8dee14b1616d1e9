//! The HTTP compatibility shim's endpoints against the v1 contract: reply
//! shapes, fields from the body and the query string, every status code an
//! endpoint can answer, and that no reply ever carries a password or hash.

mod common;
#[path = "common/http.rs"]
mod http;

use common::*;
use http::*;
use serde_json::json;

/// Neither the password nor anything like an argon2 hash is in `body`.
#[track_caller]
fn assert_no_secret(body: &[u8], password: &str) {
    let text = String::from_utf8_lossy(body);
    assert!(!text.contains(password), "reply holds the password: {text}");
    assert!(!text.contains("$argon2"), "reply holds a hash: {text}");
}

#[test]
fn register_login_and_lookup_reply_with_the_original_keys() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let password = "pa55-word-xyz";

    let r = post(
        addr,
        "/register",
        &[("username", "alice"), ("password", password)],
    );
    assert_eq!(r.expect_json(200), json!({"Id": 1, "Name": "alice"}));
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_no_secret(&r.body, password);

    let r = post(
        addr,
        "/login",
        &[("username", "alice"), ("password", password)],
    );
    let body = r.expect_json(200);
    assert_eq!(body["Id"], 1);
    assert_eq!(body["Name"], "alice");
    let token = body["SessionID"].as_str().expect("SessionID is a string");
    assert!(!token.is_empty());
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert_no_secret(&r.body, password);

    let r = post(addr, "/getuseridbyname", &[("username", "alice")]);
    assert_eq!(r.expect_json(200), json!({"Id": 1, "Name": "alice"}));
    assert_no_secret(&r.body, password);

    // The token works on the line protocol too: one core, one token.
    let mut line = server.connect();
    let reply = line.request(&json!({"cmd": "auth", "token": token}));
    assert_eq!(reply["user"]["username"], "alice", "{reply}");
}

#[test]
fn fields_come_from_the_query_string_too() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    let r = c.post("/register?username=carol&password=pw-secret", &[]);
    assert_eq!(r.expect_json(200)["Name"], "carol");
    // The body wins over the query string.
    let r = c.post("/getuseridbyname?username=nobody", &[("username", "carol")]);
    assert_eq!(r.expect_json(200)["Name"], "carol");
    let r = c.post("/getuseridbyname?username=carol", &[]);
    assert_eq!(r.expect_json(200)["Id"], 1);
}

#[test]
fn account_errors_have_their_status_codes() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    http_register(addr, "alice", "secret-words");

    let r = post(
        addr,
        "/register",
        &[("username", "alice"), ("password", "0ther-pass-7z")],
    );
    r.expect_error(409, "conflict");
    assert_no_secret(&r.body, "0ther-pass-7z");
    post(addr, "/register", &[("username", "bob")]).expect_error(400, "bad_request");
    post(addr, "/register", &[("password", "x")]).expect_error(400, "bad_request");
    post(
        addr,
        "/register",
        &[("username", "no spaces"), ("password", "x")],
    )
    .expect_error(400, "bad_request");

    let r = post(
        addr,
        "/login",
        &[("username", "alice"), ("password", "Wr0ng-pass-9q")],
    );
    let wrong_password = r.expect_error(401, "unauthorized");
    assert_no_secret(&r.body, "Wr0ng-pass-9q");
    let unknown = post(
        addr,
        "/login",
        &[("username", "nobody"), ("password", "wrong")],
    )
    .expect_error(401, "unauthorized");
    assert_eq!(wrong_password, unknown, "LOGIN must not tell the two apart");
    post(addr, "/login", &[("username", "alice")]).expect_error(400, "bad_request");

    post(addr, "/getuseridbyname", &[("username", "nobody")]).expect_error(404, "not_found");
    post(addr, "/getuseridbyname", &[]).expect_error(400, "bad_request");
}

#[test]
fn send_takes_token_id_and_each_recipient_field() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, alice_id) = http_user(addr, "alice", "pw-a-secret");
    let (_, bob_id) = http_user(addr, "bob", "pw-b-secret");

    let by_id = post(
        addr,
        "/send",
        &[
            ("token", &alice),
            ("id", &alice_id.to_string()),
            ("username", "alice"),
            ("sendToId", &bob_id.to_string()),
            ("content", "one"),
        ],
    )
    .expect_json(200);
    assert_eq!(by_id["ok"], true);
    let first = by_id["id"].as_u64().expect("numeric id");
    assert_plausible_ts(by_id["ts"].as_u64().expect("numeric ts"));

    // `Token` and `sendTo` (the receiver's id), as the original's README
    // spells them.
    let by_send_to = post(
        addr,
        "/send",
        &[
            ("Token", &alice),
            ("sendTo", &bob_id.to_string()),
            ("content", "two"),
        ],
    )
    .expect_json(200);
    assert!(by_send_to["id"].as_u64().unwrap() > first, "{by_send_to}");
    // `to`: the receiver's username (what the web page sends).
    let by_name = post(
        addr,
        "/send",
        &[("token", &alice), ("to", "bob"), ("content", "three")],
    )
    .expect_json(200);
    assert!(
        by_name["id"].as_u64() > by_send_to["id"].as_u64(),
        "{by_name}"
    );
    // A username in `sendTo` is refused, pointing at `to`.
    let message = post(
        addr,
        "/send",
        &[("token", &alice), ("sendTo", "bob"), ("content", "x")],
    )
    .expect_error(400, "bad_request");
    assert!(message.contains("\"to\""), "{message}");
    let (bob, _) = http_login(addr, "bob", "pw-b-secret");
    let got = post(addr, "/sync", &[("token", &bob)]).expect_json(200);
    let contents: Vec<&str> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["one", "two", "three"]);

    // A client_id makes a repeat store nothing new.
    let fields = [
        ("token", alice.as_str()),
        ("to", "bob"),
        ("content", "four"),
        ("client_id", "c-1"),
    ];
    let a = post(addr, "/send", &fields).expect_json(200);
    let b = post(addr, "/send", &fields).expect_json(200);
    assert_eq!(a["id"], b["id"]);
}

/// Form fields, and the status and error code they must get.
type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);

#[test]
fn send_errors_have_their_status_codes() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, alice_id) = http_user(addr, "alice", "pw-a-secret");
    let (_, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let bob = bob_id.to_string();
    let cases: [Case; 13] = [
        (&[("to", "bob"), ("content", "x")], 401, "unauthorized"),
        (
            &[("token", "not-a-token"), ("to", "bob"), ("content", "x")],
            401,
            "unauthorized",
        ),
        (
            &[
                ("token", &alice),
                ("id", &bob),
                ("to", "bob"),
                ("content", "x"),
            ],
            401,
            "unauthorized",
        ),
        (
            &[("token", &alice), ("to", "nobody"), ("content", "x")],
            404,
            "not_found",
        ),
        (
            &[("token", &alice), ("sendToId", "999"), ("content", "x")],
            404,
            "not_found",
        ),
        (
            &[("token", &alice), ("sendTo", "999"), ("content", "x")],
            404,
            "not_found",
        ),
        (
            &[("token", &alice), ("sendToId", "two"), ("content", "x")],
            400,
            "bad_request",
        ),
        (
            &[
                ("token", &alice),
                ("id", "1x"),
                ("to", "bob"),
                ("content", "x"),
            ],
            400,
            "bad_request",
        ),
        (&[("token", &alice), ("to", "bob")], 400, "bad_request"),
        (
            &[("token", &alice), ("to", "bob"), ("content", "")],
            400,
            "bad_request",
        ),
        (
            &[("token", &alice), ("to", "bob"), ("content", " \t\r\n ")],
            400,
            "bad_request",
        ),
        (&[("token", &alice), ("content", "x")], 400, "bad_request"),
        (
            &[
                ("token", &alice),
                ("to", "bob"),
                ("content", "x"),
                ("client_id", &"c".repeat(129)),
            ],
            400,
            "bad_request",
        ),
    ];
    let mut c = HttpClient::connect(addr);
    for (fields, status, code) in cases {
        let r = c.post("/send", fields);
        assert_eq!(r.status, status, "{fields:?}: {}", r.text());
        r.expect_error(status, code);
    }
    // The connection survived every error; the right id still works.
    let r = c.post(
        "/send",
        &[
            ("token", &alice),
            ("id", &alice_id.to_string()),
            ("to", "bob"),
            ("content", "fine"),
        ],
    );
    assert_eq!(r.expect_json(200)["ok"], true);
}

#[test]
fn content_that_is_not_utf8_is_refused_not_stored_as_replacement_characters() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (bob, _) = http_user(addr, "bob", "pw-b-secret");
    let mut c = HttpClient::connect(addr);
    for (query, body) in [
        ("", format!("token={alice}&to=bob&content=%FF%FE")),
        ("?content=caf%E9", format!("token={alice}&to=bob")),
    ] {
        c.send_raw(
            format!(
                "POST /send{query} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        let message = c.read_response().expect_error(400, "bad_request");
        assert!(message.contains("UTF-8"), "{message}");
        assert!(message.contains("\"content\""), "{message}");
    }
    // The connection stays, and nothing was stored.
    let r = c.post("/sync", &[("token", &bob)]);
    assert_eq!(r.expect_json(200), json!([]));
    let r = c.post(
        "/send",
        &[("token", &alice), ("to", "bob"), ("content", "caf\u{e9}")],
    );
    assert_eq!(r.expect_json(200)["ok"], true);
    let got = c.post("/sync", &[("token", &bob)]).expect_json(200);
    assert_eq!(got[0]["content"], "caf\u{e9}");
}

#[test]
fn a_bad_or_expired_token_says_to_post_to_login() {
    let server = TestServer::start(&["--token-ttl", "1"]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    http_user(addr, "bob", "pw-b-secret");
    let send = |token: &str| {
        post(
            addr,
            "/send",
            &[("token", token), ("to", "bob"), ("content", "hi")],
        )
    };
    let check = |message: String| {
        assert!(message.contains("POST /login"), "{message}");
        assert!(!message.contains("LOGIN"), "{message}");
    };
    check(send("not-a-token").expect_error(401, "unauthorized"));
    check(post(addr, "/sync", &[("token", "00ff")]).expect_error(401, "unauthorized"));
    assert_eq!(send(&alice).expect_json(200)["ok"], true);

    // Expired: the same words over HTTP; the line protocol keeps its own.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    check(send(&alice).expect_error(401, "unauthorized"));
    let mut line = server.connect();
    let reply = line.text(&format!("AUTH {alice}"));
    assert_error(&reply, "unauthorized");
    assert!(error_message(&reply).contains("LOGIN again"), "{reply}");
}

#[test]
fn sync_errors_have_their_status_codes() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (_, bob_id) = http_user(addr, "bob", "pw-b-secret");
    let bob = bob_id.to_string();
    let mut c = HttpClient::connect(addr);
    c.post("/sync", &[("id", "1")])
        .expect_error(401, "unauthorized");
    c.post("/sync", &[("token", "00ff")])
        .expect_error(401, "unauthorized");
    c.post("/sync", &[("token", &alice), ("id", &bob)])
        .expect_error(401, "unauthorized");
    c.post("/sync", &[("token", &alice), ("after", "-1")])
        .expect_error(400, "bad_request");
    c.post("/sync", &[("token", &alice), ("wait", "1s")])
        .expect_error(400, "bad_request");
    c.post("/sync", &[("token", &alice), ("limit", "lots")])
        .expect_error(400, "bad_request");
    let ok = c.post("/sync", &[("token", &alice), ("id", "1")]);
    assert_eq!(ok.expect_json(200), json!([]));
}

#[test]
fn a_full_mailbox_is_429() {
    let server = TestServer::start(&["--mailbox-limit", "1"]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    let (_, bob_id) = http_user(addr, "bob", "pw-b-secret");
    http_send(addr, &alice, bob_id, "fills the mailbox");
    let r = post(
        addr,
        "/send",
        &[
            ("token", &alice),
            ("to", "bob"),
            ("content", "one too many"),
        ],
    );
    r.expect_error(429, "rate_limited");
    assert!(r.header("Retry-After").is_some(), "{:?}", r.headers);
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    c.post("/nowhere", &[]).expect_error(404, "not_found");
    c.get("GET", "/robots.txt").expect_error(404, "not_found");
    for path in ["/register", "/login", "/getuseridbyname", "/send", "/sync"] {
        let r = c.get("GET", path);
        r.expect_error(405, "bad_request");
        assert_eq!(r.header("Allow"), Some("POST"), "{path}");
    }
    let r = c.post("/", &[]);
    r.expect_error(405, "bad_request");
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    let r = c.get("DELETE", "/");
    assert_eq!(r.status, 405);
    // Still the same connection.
    assert_eq!(
        c.get("GET", "/healthz").expect_json(200),
        json!({"ok": true})
    );
}

#[test]
fn a_body_that_is_not_a_form_is_415() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    let body = r#"{"username":"a","password":"b"}"#;
    c.send_raw(
        format!(
            "POST /register HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 415, "{}", r.text());
    r.expect_error(415, "bad_request");
    // Without a Content-Type the body is read as a form.
    let body = "username=dave&password=pw-secret";
    c.send_raw(
        format!(
            "POST /register HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.read_response().expect_json(200)["Name"], "dave");
}

#[test]
fn get_root_serves_the_chat_page() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    let r = c.get("GET", "/");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/html; charset=utf-8"),
        "{:?}",
        r.headers
    );
    let page = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/web/index.html")).unwrap();
    assert_eq!(r.body, page, "GET / is not web/index.html");
    let csp = r
        .header("Content-Security-Policy")
        .expect("a Content-Security-Policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));

    let head = c.get("HEAD", "/");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(page.len().to_string().as_str())
    );
    // HEAD sent no body: the next response follows at once.
    assert_eq!(c.get("GET", "/healthz").status, 200);
}

#[test]
fn the_page_icon_is_served() {
    let server = TestServer::start(&[]);
    let mut c = HttpClient::connect(server.addr());
    let icon = c.get("GET", "/favicon.ico");
    assert_eq!(icon.status, 200);
    assert_eq!(icon.header("Content-Type"), Some("image/x-icon"));
    // An ICO header: reserved 0, type 1 (icon), one image.
    assert_eq!(&icon.body[..6], &[0, 0, 1, 0, 1, 0]);
    assert_eq!(c.get("HEAD", "/favicon.ico").status, 200);
}

#[test]
fn content_over_64_kib_is_413_like_a_line_over_the_limit() {
    let server = TestServer::start(&[]);
    let addr = server.addr();
    let (alice, _) = http_user(addr, "alice", "pw-a-secret");
    http_user(addr, "bob", "pw-b-secret");
    let big = "x".repeat(64 * 1024 + 1);
    let fields = [("token", alice.as_str()), ("to", "bob"), ("content", &big)];
    let message = post(addr, "/send", &fields).expect_error(413, "too_large");
    assert!(message.contains("65536"), "{message}");
    let fits = "y".repeat(64 * 1024);
    let fields = [("token", alice.as_str()), ("to", "bob"), ("content", &fits)];
    assert_eq!(post(addr, "/send", &fields).expect_json(200)["ok"], true);
}
