//! Long-poll budgets: a SYNC-wait whose client closes is dropped with its
//! connection (20,000 cycles leave no waiter behind), a half-closed client's
//! long-poll is answered at once, and `--waiters-per-user` caps how many
//! wait for one user at a time; a well-behaved long-poll works throughout.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;

fn waiters(stats: &Value) -> u64 {
    stats["core"]["waiters"].as_u64().expect("a waiter count")
}

/// Closes with a reset (SO_LINGER 0), as a crashed client does; it leaves
/// no TIME_WAIT behind, so thousands of cycles do not slow `connect` down.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn reset(socket: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a pointer to a live linger struct of the
    // size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(socket);
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn reset(socket: TcpStream) {
    drop(socket);
}

#[test]
fn abandoned_long_polls_are_dropped_with_their_connections() {
    const THREADS: usize = 4;
    const CYCLES: usize = 5_000;
    let server = TestServer::start(&["--metrics", "127.0.0.1:0"]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (token, _) = login(&mut bob, "bob", "pw-b-secret");

    // Each cycle: a PING and a long-poll in one write; the PING's reply
    // comes after both are read, so the long-poll waits when the client
    // closes. One thread closes gracefully (FIN), the others reset.
    let addr = server.addr();
    let lines = format!(
        "PING\n{}\n",
        json!({"cmd": "sync", "token": token, "wait_ms": 300_000})
    );
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let lines = lines.clone();
            thread::spawn(move || {
                for _ in 0..CYCLES {
                    let mut socket = TcpStream::connect(addr).expect("the server accepts");
                    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                    socket.write_all(lines.as_bytes()).unwrap();
                    let mut pong = String::new();
                    BufReader::new(&socket).read_line(&mut pong).unwrap();
                    assert!(pong.contains("\"ok\":true"), "{pong:?}");
                    if thread == 0 {
                        drop(socket);
                    } else {
                        reset(socket);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }

    let stats = server.stats_when(|s| waiters(s) == 0 && s["server"]["connections"] == 2);
    assert_eq!(waiters(&stats), 0, "{stats}");
    assert_eq!(stats["server"]["connections"], 2, "alice and bob: {stats}");

    // A genuine long-poll still waits and is woken by a message.
    let mut poller = server.connect();
    poller.send_line(
        &json!({"cmd": "sync", "token": token, "wait_ms": 30_000, "tag": "poll"}).to_string(),
    );
    server.stats_when(|s| waiters(s) == 1);
    let id = sent_id(&alice.text("SEND bob still listening"));
    let reply = poller.read_reply();
    assert_eq!(reply["tag"], "poll");
    assert_eq!(message_ids(&reply), vec![id]);
}

#[test]
fn a_half_closed_long_poll_is_answered_at_once_and_closed() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0"]);
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (token, _) = login(&mut bob, "bob", "pw-b-secret");
    let mut c = server.connect();
    // Two long-polls in a row, then the end of input: neither waits.
    let poll = |tag: u32| json!({"cmd": "sync", "token": token, "wait_ms": 300_000, "tag": tag});
    c.send_raw(format!("{}\n{}\n", poll(1), poll(2)).as_bytes());
    c.shutdown_write();
    let first = c.read_reply();
    assert_eq!(
        (first["tag"].clone(), message_ids(&first)),
        (json!(1), vec![])
    );
    let second = c.read_reply();
    assert_eq!(
        (second["tag"].clone(), message_ids(&second)),
        (json!(2), vec![])
    );
    c.expect_eof();
    let stats = server.stats_when(|s| s["server"]["connections"] == 1);
    assert_eq!(waiters(&stats), 0, "{stats}");
}

#[test]
fn long_polls_per_user_are_capped() {
    let server = TestServer::start(&["--waiters-per-user", "2", "--metrics", "127.0.0.1:0"]);
    let (mut alice, _, _) = register_and_login(&server, "alice", "pw-a-secret");
    let mut bob = server.connect();
    register(&mut bob, "bob", "pw-b-secret");
    let (token, _) = login(&mut bob, "bob", "pw-b-secret");
    let poll = json!({"cmd": "sync", "token": token, "wait_ms": 30_000}).to_string();

    let mut first = server.connect();
    first.send_line(&poll);
    let mut second = server.connect();
    second.send_line(&poll);
    let stats = server.stats_when(|s| waiters(s) == 2);
    assert_eq!(waiters(&stats), 2, "{stats}");

    let mut third = server.connect();
    let refused =
        third.request(&json!({"cmd": "sync", "token": token, "wait_ms": 30_000, "tag": 3}));
    assert_error(&refused, "rate_limited");
    assert!(
        error_message(&refused).contains("--waiters-per-user"),
        "{refused}"
    );
    assert_eq!(refused["tag"], 3);
    // The connection is still served, and SYNC without a wait is not capped.
    assert_eq!(
        message_ids(&third.request(&json!({"cmd": "sync", "token": token}))),
        Vec::<u64>::new()
    );

    // Another user's long-poll is not affected.
    let mut carol = server.connect();
    register(&mut carol, "carol", "pw-c-secret");
    let (carol_token, _) = login(&mut carol, "carol", "pw-c-secret");
    let mut carol_poll = server.connect();
    carol_poll
        .send_line(&json!({"cmd": "sync", "token": carol_token, "wait_ms": 30_000}).to_string());
    server.stats_when(|s| waiters(s) == 3);

    // One of bob's closes: a new one may wait, and a message wakes both.
    drop(first);
    server.stats_when(|s| waiters(s) == 2);
    third.send_line(&poll);
    let stats = server.stats_when(|s| waiters(s) == 3);
    assert_eq!(waiters(&stats), 3, "{stats}");
    let id = sent_id(&alice.text("SEND bob wake up"));
    assert_eq!(message_ids(&second.read_reply()), vec![id]);
    assert_eq!(message_ids(&third.read_reply()), vec![id]);
    let id = sent_id(&alice.text("SEND carol you too"));
    assert_eq!(message_ids(&carol_poll.read_reply()), vec![id]);
}
