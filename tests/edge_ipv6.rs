//! Per-address connection budgets group IPv6 peers by /64: ten addresses
//! of one /64 share `--max-connections-per-address`. Loopback has only
//! `::1`, so the test runs itself again in a fresh network namespace
//! (`unshare -n`, as root), gives its loopback ten addresses of one /64
//! and one of another, and connects from each.

mod common;

use common::*;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream};
use std::process::Command;

const CHILD_ENV: &str = "GOTALK_TEST_IN_NETNS";

/// A TCP connection from `source` (an address on loopback) to `addr`.
fn connect_from_v6(source: Ipv6Addr, addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V6(addr) = addr else {
        panic!("the server listens on IPv6 here")
    };
    let sockaddr = |a: &SocketAddrV6| libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: a.port().to_be(),
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: a.ip().octets(),
        },
        sin6_scope_id: 0,
    };
    let len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor owned here until it is
    // handed to TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let local = sockaddr(&SocketAddrV6::new(source, 0, 0, 0));
        let rc = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind {source}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(&addr);
        let rc = libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?}");
}

/// Whether a fresh connection is served: a PING gets its PONG, or the
/// connection gets the one-line refusal.
fn served(stream: TcpStream) -> (bool, TcpStream) {
    let mut client = LineClient::from_stream(stream.try_clone().unwrap());
    let reply = client.text("PING");
    if reply["pong"] == true {
        return (true, stream);
    }
    assert_eq!(reply["error"]["code"], "unavailable", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many connections from your address"),
        "{reply}"
    );
    (false, stream)
}

/// A developer's machine without root may skip; CI (which runs as root
/// and installs util-linux and iproute2) never does.
fn skip_outside_ci(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test: {why}");
    }
    eprintln!("skipped: {why}");
}

#[test]
fn ten_addresses_of_one_ipv6_64_share_the_per_address_budget() {
    if std::env::var_os(CHILD_ENV).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("unshare")
            .args(["-n", "--"])
            .arg(exe)
            .args([
                "ten_addresses_of_one_ipv6_64_share_the_per_address_budget",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_ENV, "1")
            .output();
        match out {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("1 passed"), "{text}");
            }
            Ok(out)
                if String::from_utf8_lossy(&out.stderr).contains("unshare failed")
                    || String::from_utf8_lossy(&out.stderr).contains("Operation not permitted") =>
            {
                let why = format!(
                    "no network namespace here (needs root): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                skip_outside_ci(&why);
            }
            Ok(out) => panic!(
                "in the namespace:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => skip_outside_ci(&format!("no unshare here: {e}")),
        }
        return;
    }
    ip(&["link", "set", "lo", "up"]);
    let same_64: Vec<Ipv6Addr> = (1..=10)
        .map(|n| Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0xaaaa, 0, 0, n))
        .collect();
    let other_64 = Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1);
    for a in same_64.iter().chain([&other_64]) {
        ip(&[
            "-6",
            "addr",
            "add",
            &format!("{a}/64"),
            "dev",
            "lo",
            "nodad",
        ]);
    }
    let server = TestServer::start(&["--listen", "[::1]:0", "--max-connections-per-address", "5"]);
    let mut held = Vec::new();
    let mut admitted = 0;
    for source in &same_64 {
        for _ in 0..5 {
            let (ok, stream) = served(connect_from_v6(*source, server.addr()));
            admitted += ok as usize;
            held.push(stream);
        }
    }
    assert_eq!(admitted, 5, "50 connections from ten addresses of one /64");
    let (ok, _other) = served(connect_from_v6(other_64, server.addr()));
    assert!(ok, "another /64 has its own budget");
}
