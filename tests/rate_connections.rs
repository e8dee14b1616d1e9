//! Fair shares per connection and per address: `--read-bytes-per-second`
//! shapes a client that sends faster than its rate (its requests are all
//! answered, later, in order; nobody else waits for them), and counts a
//! SEND whose message renders larger than its line at the larger size;
//! `--connections-per-address-per-second` cuts a connect storm from one
//! address while another connects and logs in, and
//! `--connection-storm-cuts` has the kernel drop a storm far past it for
//! a while.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

#[test]
fn a_reader_past_its_read_rate_is_answered_later_in_order_and_a_bystander_first() {
    // 4 KiB a second, 4 KiB at once; the flood is about 40 KiB: ten
    // seconds of reading at that rate.
    let server = TestServer::start(&[
        "--read-bytes-per-second",
        "4096",
        "--read-burst",
        "4096",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut flooder = server.connect();
    let mut bystander = server.connect();
    const PINGS: usize = 1200;
    let mut flood = Vec::new();
    for n in 0..PINGS {
        flood.extend_from_slice(json!({"cmd": "ping", "tag": n}).to_string().as_bytes());
        flood.push(b'\n');
    }
    assert!(flood.len() > 20_000, "{}", flood.len());
    // The whole flood fits the socket buffers, so this returns at once.
    flooder.send_raw(&flood);

    // The bystander is answered at once, while most of the flood is unread.
    bystander.expect_nothing_before_pong();
    let mut early = Vec::new();
    {
        let mut reader = flooder.writer_clone();
        reader.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 65536];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => panic!("the flooder's connection was closed"),
                Ok(n) => early.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        reader.set_nonblocking(false).unwrap();
    }
    let answered_early = early.iter().filter(|&&b| b == b'\n').count();
    assert!(
        answered_early < PINGS / 2,
        "the flooder's backlog was answered before the bystander's PING: {answered_early}"
    );

    // Then every request is answered, in order, none lost.
    let mut lines: Vec<Value> = early
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let rest_bytes = early.len() - early.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    assert_eq!(rest_bytes, 0, "replies are whole lines");
    flooder.set_timeout(Duration::from_secs(30));
    while lines.len() < PINGS {
        lines.push(flooder.read_json());
    }
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(
            line,
            &json!({"ok": true, "pong": true, "tag": n}),
            "reply {n}"
        );
    }
    flooder.expect_nothing_before_pong();
    let stats = server.stats();
    assert!(
        stats["limit_hits"]["--read-bytes-per-second"].as_u64() >= Some(1),
        "{stats}"
    );
}

/// The read-rate pauses the server has counted so far (a limit not hit
/// yet is not listed).
fn read_pauses(server: &TestServer) -> u64 {
    let stats = server.stats();
    let hits = stats["limit_hits"]
        .as_object()
        .unwrap_or_else(|| panic!("no limit_hits in {stats}"));
    hits.get("--read-bytes-per-second")
        .map_or(0, |n| n.as_u64().expect("a count"))
}

#[test]
fn a_send_is_charged_its_rendered_size_against_the_read_rate() {
    // 200 KB a second, 100 KB at once, per connection.
    let server = TestServer::start(&[
        "--read-bytes-per-second",
        "200000",
        "--read-burst",
        "100000",
        "--metrics",
        "127.0.0.1:0",
    ]);
    // Alice sends herself three SENDs of 20,000 letters: 60 KB in, about as
    // much rendered, within her connection's burst: never paused.
    let (mut alice, _, _) = register_and_login(&server, "alice", "password-a");
    let plain = "a".repeat(20_000);
    for _ in 0..3 {
        assert_ok(&alice.text(&format!("SEND alice {plain}")));
        assert_eq!(alice.read_event()["message"]["content"], plain.as_str());
    }
    assert_eq!(
        read_pauses(&server),
        0,
        "plain text stayed within the burst"
    );

    // Bob sends himself three SENDs of 20,000 control characters on a
    // connection of his own: the same 60 KB in, within the burst, but each
    // renders to 120 KB of JSON escapes, 360 KB in all, so his connection
    // is paused until that is paid back. Nothing is refused or lost: all
    // three are answered, in order, and pushed whole.
    let (mut bob, _, _) = register_and_login(&server, "bob", "password-b");
    let mut bystander = server.connect();
    let control: String = (1u8..32)
        .filter(|b| !matches!(b, b'\n' | b'\r'))
        .map(char::from)
        .cycle()
        .take(20_000)
        .collect();
    let mut lines = Vec::new();
    for n in 0..3 {
        lines.extend_from_slice(format!("SEND bob {control}\n").as_bytes());
        lines.extend_from_slice(json!({"cmd": "ping", "tag": n}).to_string().as_bytes());
        lines.push(b'\n');
    }
    assert!(lines.len() < 70_000, "{}", lines.len());
    bob.send_raw(&lines);
    // A bystander is answered at once meanwhile.
    bystander.expect_nothing_before_pong();
    bob.set_timeout(Duration::from_secs(30));
    for n in 0..3 {
        assert_ok(&bob.read_reply());
        assert_eq!(
            bob.read_reply(),
            json!({"ok": true, "pong": true, "tag": n})
        );
    }
    // A push may follow the PONG of the PING sent after its SEND.
    let mut pushed: Vec<Value> = bob.take_events();
    while pushed.len() < 3 {
        pushed.push(bob.read_event());
    }
    for event in &pushed {
        assert_eq!(event["message"]["content"], control.as_str());
    }
    assert!(
        read_pauses(&server) >= 1,
        "control characters rendered past the burst paused the socket"
    );
    bob.expect_nothing_before_pong();
}

/// Whether the server dropped `stream` unanswered at accept: it reads
/// end-of-file or a reset instead of the reply to a PING.
fn dropped(mut stream: std::net::TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    if stream.write_all(b"PING\n").is_err() {
        return true;
    }
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => panic!("no reply and no close: {e}"),
    }
}

/// The storming address (127.0.0.2) and a calm one (127.0.0.3), with
/// carol registered from the calm one (on one of its connections).
fn storm_and_calm(server: &TestServer) -> (Ipv4Addr, Ipv4Addr) {
    let calm = Ipv4Addr::new(127, 0, 0, 3);
    let mut first = LineClient::from_stream(connect_from(calm, server.addr()));
    register(&mut first, "carol", "password-c");
    (Ipv4Addr::new(127, 0, 0, 2), calm)
}

/// Carol connects from `calm`, logs in and is answered.
fn calm_logs_in(server: &TestServer, calm: Ipv4Addr) {
    let mut carol = LineClient::from_stream(connect_from(calm, server.addr()));
    login(&mut carol, "carol", "password-c");
    carol.expect_nothing_before_pong();
}

#[test]
fn a_connect_storm_from_one_address_is_cut_while_another_logs_in() {
    // One new connection a second, 5 at once, per address.
    let server = TestServer::start(&[
        "--connections-per-address-per-second",
        "1",
        "--connections-per-address-burst",
        "5",
        "--metrics",
        "127.0.0.1:0",
    ]);
    // Carol registers first, from the calm address (one of its five).
    let (storm, calm) = storm_and_calm(&server);

    let streams: Vec<_> = (0..40)
        .map(|_| connect_from(storm, server.addr()))
        .collect();
    let cut = streams
        .into_iter()
        .filter(|s| dropped(s.try_clone().unwrap()))
        .count();
    assert!(
        (30..=35).contains(&cut),
        "5 at once (and maybe a few more a second later) of 40 taken: {cut} cut"
    );

    // Another address is not held back: it connects and logs in.
    calm_logs_in(&server, calm);

    let stats = server.stats();
    assert_eq!(
        stats["server"]["refused_by_reason"]["connection_rate"],
        json!(cut),
        "{stats}"
    );
    assert_eq!(
        stats["limit_hits"]["--connections-per-address-per-second"],
        json!(cut),
        "{stats}"
    );
    // Logged once for the storm, naming the address and the flag.
    let log = server.stderr_text();
    let lines = log
        .lines()
        .filter(|l| l.contains("closing new connections from 127.0.0.2"))
        .count();
    assert_eq!(lines, 1, "{log}");
    assert!(
        log.contains("--connections-per-address-per-second"),
        "{log}"
    );
}

#[test]
fn a_storm_far_past_the_rate_is_dropped_by_the_kernel_then_answered_again() {
    // One new connection a second, two at once; 20 closed at accept within
    // a second have the address's connects dropped for 2 s.
    let server = TestServer::start(&[
        "--connections-per-address-per-second",
        "1",
        "--connections-per-address-burst",
        "2",
        "--connection-storm-cuts",
        "20",
        "--connection-storm-block-seconds",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let (storm, calm) = storm_and_calm(&server);

    // Connect until a connect goes unanswered: the first two are taken,
    // the next 20 are closed at accept (each is seen closed before the
    // next starts, so the server has cut it), and the 23rd is never
    // answered.
    let patience = Some(Duration::from_millis(500));
    let mut answered = 0;
    let unanswered = loop {
        assert!(answered <= 22, "still answered after {answered} connects");
        match try_connect_from(storm, server.addr(), patience) {
            Ok(stream) => {
                answered += 1;
                if answered > 2 {
                    assert!(dropped(stream), "connect {answered} was not cut");
                }
            }
            Err(e) => break e,
        }
    };
    assert_eq!(answered, 22);
    assert_eq!(unanswered.kind(), ErrorKind::TimedOut, "{unanswered}");

    // Meanwhile another address connects and logs in.
    calm_logs_in(&server, calm);
    let stats = server.stats();
    assert_eq!(
        stats["limit_hits"]["--connection-storm-cuts"],
        json!(1),
        "{stats}"
    );
    assert_eq!(stats["server"]["storm_addresses"], json!(1), "{stats}");
    let log = server.stderr_text();
    assert!(
        log.contains("dropping new connections from 127.0.0.2 unanswered for 2 s"),
        "{log}"
    );

    // Two seconds on, the storming address is answered again: a connect
    // that waits (its SYN is sent again after 1 s, then 3 s) gets in, and
    // its rate has a token again by then.
    let stream = try_connect_from(storm, server.addr(), Some(Duration::from_secs(15)))
        .expect("answered again after the block");
    let mut back = LineClient::from_stream(stream);
    back.expect_nothing_before_pong();
    assert_eq!(server.stats()["server"]["storm_addresses"], json!(0));
    assert!(
        server
            .stderr_text()
            .contains("answering new connections from 127.0.0.2 again"),
        "{}",
        server.stderr_text()
    );
}
