//! The password-check budget: LOGIN and REGISTER hash with argon2 on a few
//! worker threads, and nobody can monopolise them. A flood of LOGINs that
//! close at once leaves nothing behind; a flood from one address is
//! `rate_limited` at that address's share of the queue
//! (`--hash-queue-per-address`) while other addresses still log in; a
//! password over the cap is refused before anything is hashed; a client
//! that stops sending gets its unstarted checks answered `unavailable`.
//!
//! One hashing thread (`--hash-threads 1`) makes queues build up.

mod common;

use common::*;
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

fn server_with_alice(extra: &[&str]) -> TestServer {
    let mut args = vec!["--hash-threads", "1"];
    args.extend_from_slice(extra);
    let server = TestServer::start(&args);
    let mut c = server.connect();
    register(&mut c, "alice", "right-password");
    server
}

#[test]
fn after_2000_login_and_close_cycles_a_genuine_login_is_answered() {
    let server = server_with_alice(&[]);
    let addr = server.addr();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..250 {
                    let mut s = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
                        .unwrap_or_else(|e| panic!("connect: {e}"));
                    // The reply may or may not have come; nobody reads it.
                    let _ = s.write_all(b"LOGIN alice wrong\n");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a flood thread panicked");
    }

    let mut c = server.connect();
    let (_, id) = login(&mut c, "alice", "right-password");
    assert!(id > 0);
    assert_eq!(c.text("PING")["ok"], true);
}

#[test]
fn a_flood_from_one_address_is_rate_limited_there_and_others_still_log_in() {
    let server = server_with_alice(&["--hash-queue-per-address", "4"]);
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let refused: Arc<Mutex<Vec<String>>> = Arc::default();
    // Eight connections from 127.0.0.2, each asking again as soon as it
    // is answered: with one worker, 1 check runs, 4 wait, the rest are
    // refused, over and over.
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let stop = stop.clone();
            let refused = refused.clone();
            thread::spawn(move || {
                let stream = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr);
                let mut c = LineClient::from_stream(stream);
                c.set_timeout(HASH_TIMEOUT);
                for _ in 0..5_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let reply = c.text("LOGIN alice wrong");
                    let code = assert_error_in(&reply, &["unauthorized", "rate_limited"]);
                    if code == "rate_limited" {
                        refused.lock().unwrap().push(error_message(&reply));
                        thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + HASH_TIMEOUT;
    while refused.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the flood from 127.0.0.2 was never rate_limited"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let message = refused.lock().unwrap()[0].clone();
    assert!(
        message.contains("--hash-queue-per-address 4"),
        "the refusal names the limit: {message}"
    );

    // Meanwhile, from 127.0.0.1: served, not refused.
    let mut c = server.connect();
    let (_, id) = login(&mut c, "alice", "right-password");
    assert!(id > 0);

    stop.store(true, Ordering::Relaxed);
    for t in flood {
        t.join().expect("a flood thread panicked");
    }
}

#[test]
fn a_login_password_over_1024_bytes_is_a_bad_request() {
    let server = server_with_alice(&[]);
    let mut c = server.connect();
    let long = "p".repeat(2000);
    let reply = c.text(&format!("LOGIN alice {long}"));
    assert_error(&reply, "bad_request");
    assert!(error_message(&reply).contains("1024"), "{reply}");
    let reply = c.request(&serde_json::json!({
        "cmd": "login", "username": "alice", "password": long
    }));
    assert_error(&reply, "bad_request");
    // Nothing was queued: the connection goes on at once.
    assert_eq!(c.text("PING")["ok"], true);
}

#[test]
fn a_client_that_stops_sending_gets_its_waiting_check_answered_unavailable() {
    let server = server_with_alice(&[]);
    // Keep the one worker busy: four checks from this address go first.
    let mut blockers: Vec<LineClient> = (0..4).map(|_| server.connect()).collect();
    for b in &mut blockers {
        b.send_line("LOGIN alice wrong");
    }
    let mut c = server.connect();
    c.send_line("LOGIN alice right-password");
    c.shutdown_write();
    let reply = c.read_reply();
    assert_error(&reply, "unavailable");
    assert!(
        error_message(&reply).contains("closed before the password was checked"),
        "{reply}"
    );
    c.expect_eof();
    for b in &mut blockers {
        b.set_timeout(HASH_TIMEOUT);
        assert_error(&b.read_reply(), "unauthorized");
    }
}
