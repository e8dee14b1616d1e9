//! A classic BPF socket filter for the listening socket that drops the
//! connection requests (pure SYNs) of a short list of addresses (IPv4 as
//! is, IPv6 by its /64), so the kernel answers a storming address's
//! connects with nothing: no handshake, no accept, no close (see
//! `storm_guard.rs` for who is listed and for how long).
//!
//! Why in the kernel: closing a storm's connections at accept costs the
//! server little, but each still costs the machine a handshake, an accept
//! and a close (about six packets); at tens of thousands a second that
//! work lands on whichever thread runs next, a bystander's included. A
//! dropped SYN costs one packet and makes the storming client wait out its
//! SYN retransmit.
//!
//! Only pure SYNs are looked at, so a connection from a listed address
//! that was already open (accepted sockets inherit the listener's filter)
//! never loses a packet. The program's conditional jumps only skip one to
//! three instructions, and the long ones are `ja`, so no jump offset can
//! overflow however long the list.

use std::net::IpAddr;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH_K: u16 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
/// Loads at this offset and above read the IP header (`SKF_NET_OFF`);
/// below it, a TCP socket's filter reads from the TCP header.
const NET: u32 = (-0x10_0000i32) as u32;
/// Return values: keep the whole packet, or drop it.
const PASS: u32 = u32::MAX;
const DROP: u32 = 0;
/// The TCP flags byte, and SYN and ACK in it.
const TCP_FLAGS: u32 = 13;
const SYN: u32 = 0x02;
const SYN_ACK: u32 = 0x12;

fn op(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> Insn {
    Insn {
        code: JEQ_K,
        jt,
        jf,
        k,
    }
}

/// The program that drops pure SYNs from `blocked` (keys as
/// `peer_addr::address_key` makes them) and passes every other packet.
pub fn program(blocked: &[IpAddr]) -> Vec<Insn> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for ip in blocked {
        match ip {
            IpAddr::V4(a) => v4.push(u32::from(*a)),
            IpAddr::V6(a) => {
                let o = a.octets();
                let word = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
                v6.push((word(0), word(4)));
            }
        }
    }
    let mut p = vec![
        op(LD_B_ABS, TCP_FLAGS),
        op(AND_K, SYN_ACK),
        jeq(SYN, 1, 0),
        op(RET_K, PASS), // not a connection request
        op(LD_B_ABS, NET),
        op(RSH_K, 4),
        jeq(4, 0, 1),
        op(JA, 0), // to the IPv4 list, set below
        jeq(6, 0, 1),
        op(JA, 0), // to the IPv6 list, set below
        op(RET_K, PASS),
    ];
    let v4_at = p.len();
    p[7].k = (v4_at - 8) as u32;
    p.push(op(LD_W_ABS, NET + 12)); // the source address
    for a in v4 {
        p.push(jeq(a, 0, 1));
        p.push(op(RET_K, DROP));
    }
    p.push(op(RET_K, PASS));
    let v6_at = p.len();
    p[9].k = (v6_at - 10) as u32;
    for (hi, lo) in v6 {
        // The source's /64: its first two words, at 8 and 12.
        p.push(op(LD_W_ABS, NET + 8));
        p.push(jeq(hi, 0, 3));
        p.push(op(LD_W_ABS, NET + 12));
        p.push(jeq(lo, 0, 1));
        p.push(op(RET_K, DROP));
    }
    p.push(op(RET_K, PASS));
    p
}

/// Installs `program` on `socket` (replacing any filter it had), or with
/// `None` removes the filter.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn install(
    socket: &impl std::os::fd::AsRawFd,
    program: Option<&[Insn]>,
) -> std::io::Result<()> {
    let fd = socket.as_raw_fd();
    // SAFETY: `Insn` has the layout of `struct sock_filter`; the kernel
    // copies the program during the call and keeps no pointer to it.
    let rc = unsafe {
        match program {
            Some(p) => {
                let prog = libc::sock_fprog {
                    len: p.len() as u16,
                    filter: p.as_ptr() as *mut libc::sock_filter,
                };
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ATTACH_FILTER,
                    &prog as *const libc::sock_fprog as *const libc::c_void,
                    std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
                )
            }
            None => {
                let none: libc::c_int = 0;
                let rc = libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_DETACH_FILTER,
                    &none as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
                // No filter to remove is not a failure.
                if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
                    0
                } else {
                    rc
                }
            }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere there is no socket filter: the caller keeps closing storms at
/// accept.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn install<S>(_socket: &S, _program: Option<&[Insn]>) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "socket filters need Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `p` the way the kernel runs a TCP socket's filter: offsets
    /// below `NET` read the TCP header, offsets from `NET` the IP header.
    fn run(p: &[Insn], ip: &[u8], tcp: &[u8]) -> u32 {
        let byte = |k: u32| -> u32 {
            if k >= NET {
                u32::from(ip[(k - NET) as usize])
            } else {
                u32::from(tcp[k as usize])
            }
        };
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                LD_B_ABS => a = byte(i.k),
                LD_W_ABS => a = (0..4).fold(0, |w, n| w << 8 | byte(i.k + n)),
                AND_K => a &= i.k,
                RSH_K => a >>= i.k,
                JA => pc += i.k as usize,
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn tcp(flags: u8) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[13] = flags;
        h
    }

    fn ipv4(source: &str) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0] = 0x45;
        let a: std::net::Ipv4Addr = source.parse().unwrap();
        h[12..16].copy_from_slice(&a.octets());
        h
    }

    fn ipv6(source: &str) -> Vec<u8> {
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        let a: std::net::Ipv6Addr = source.parse().unwrap();
        h[8..24].copy_from_slice(&a.octets());
        h
    }

    fn keys(list: &[&str]) -> Vec<IpAddr> {
        list.iter()
            .map(|s| crate::peer_addr::address_key(s.parse().unwrap()))
            .collect()
    }

    const SYN_ONLY: u8 = 0x02;
    const SYN_AND_ACK: u8 = 0x12;
    const ACK_ONLY: u8 = 0x10;

    #[test]
    fn drops_only_the_syns_of_listed_ipv4_addresses() {
        let p = program(&keys(&["127.0.0.2", "192.0.2.7"]));
        for listed in ["127.0.0.2", "192.0.2.7"] {
            assert_eq!(run(&p, &ipv4(listed), &tcp(SYN_ONLY)), DROP, "{listed}");
            for flags in [ACK_ONLY, SYN_AND_ACK, 0x18, 0x11] {
                assert_eq!(run(&p, &ipv4(listed), &tcp(flags)), PASS, "{flags:#x}");
            }
        }
        for other in ["127.0.0.3", "192.0.2.8", "0.0.0.0"] {
            assert_eq!(run(&p, &ipv4(other), &tcp(SYN_ONLY)), PASS, "{other}");
        }
    }

    #[test]
    fn drops_the_syns_of_a_listed_ipv6_64() {
        let p = program(&keys(&["2001:db8:1:2::1", "::ffff:10.0.0.1"]));
        for same_64 in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"] {
            assert_eq!(run(&p, &ipv6(same_64), &tcp(SYN_ONLY)), DROP, "{same_64}");
            assert_eq!(run(&p, &ipv6(same_64), &tcp(ACK_ONLY)), PASS);
        }
        for other in ["2001:db8:1:3::1", "2001:db8:2:2::1", "2002:db8:1:2::1"] {
            assert_eq!(run(&p, &ipv6(other), &tcp(SYN_ONLY)), PASS, "{other}");
        }
        // An IPv4-mapped peer is listed as IPv4: its packets are IPv4.
        assert_eq!(run(&p, &ipv4("10.0.0.1"), &tcp(SYN_ONLY)), DROP);
    }

    #[test]
    fn an_empty_list_passes_everything_and_a_long_one_still_jumps_right() {
        let p = program(&[]);
        assert_eq!(run(&p, &ipv4("127.0.0.2"), &tcp(SYN_ONLY)), PASS);
        assert_eq!(run(&p, &ipv6("2001:db8::1"), &tcp(SYN_ONLY)), PASS);
        // Past 255 instructions, where a conditional jump could not reach.
        let mut list: Vec<String> = (0..200)
            .map(|n| format!("10.0.{}.{}", n / 250, n % 250))
            .collect();
        list.extend((0..200).map(|n| format!("2001:db8:{n:x}::1")));
        let list: Vec<&str> = list.iter().map(String::as_str).collect();
        let p = program(&keys(&list));
        assert!(p.len() > 1000);
        assert_eq!(run(&p, &ipv4("10.0.0.199"), &tcp(SYN_ONLY)), DROP);
        assert_eq!(run(&p, &ipv4("10.0.0.200"), &tcp(SYN_ONLY)), PASS);
        assert_eq!(run(&p, &ipv6("2001:db8:c7::5"), &tcp(SYN_ONLY)), DROP);
        assert_eq!(run(&p, &ipv6("2001:db8:c8::5"), &tcp(SYN_ONLY)), PASS);
    }

    /// Whether a connect to `to` is answered within 300 ms.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn answered(to: std::net::SocketAddr) -> bool {
        match std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_millis(300)) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => false,
            Err(e) => panic!("connect to {to}: {e}"),
        }
    }

    /// The kernel takes the program: a listed address's connects go
    /// unanswered, and an unlisted one's are answered.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_kernel_drops_a_listed_address_connects_and_no_other() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        install(&listener, Some(&program(&keys(&["127.0.0.1"])))).unwrap();
        assert!(!answered(addr), "the listed address is not answered");
        install(&listener, Some(&program(&keys(&["127.0.0.9"])))).unwrap();
        assert!(answered(addr), "an address not listed is answered");
        install(&listener, None).unwrap();
        install(&listener, None).expect("removing no filter is not an error");
        assert!(answered(addr), "answered without a filter");
    }

    /// On a dual-stack listener an IPv4 peer's packets are IPv4 and an
    /// IPv6 peer's IPv6: each is listed and dropped on its own.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_kernel_tells_ipv4_and_ipv6_peers_apart() {
        let listener = std::net::TcpListener::bind("[::]:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        install(&listener, Some(&program(&keys(&["::1"])))).unwrap();
        assert!(!answered(v6), "::1's /64 is listed");
        assert!(answered(v4), "127.0.0.1 is not");
        install(
            &listener,
            Some(&program(&keys(&["127.0.0.1", "2001:db8::1"]))),
        )
        .unwrap();
        assert!(!answered(v4), "127.0.0.1 is listed");
        assert!(answered(v6), "::1's /64 is not");
    }
}
