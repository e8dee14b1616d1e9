//! What one connection's slot in the loop costs: `std::mem::size_of` of
//! the slot and of its parts, printed (`cargo test --lib footprint --
//! --nocapture`) for the per-online-user accounting in BENCHMARKS.md, and
//! capped, so a field that makes every connection's slot larger fails
//! here first rather than in `gotalk-bench idle --users`.

use super::Client;
use crate::conn::Conn;
use crate::doors::Door;
use crate::line::door::LineDoor;
use crate::read_shaping::ReadShaper;
use std::mem::size_of;

#[test]
fn a_connection_slot_stays_small() {
    let parts = [
        ("Option<Client> (slab slot)", size_of::<Option<Client>>()),
        ("Client", size_of::<Client>()),
        ("Conn", size_of::<Conn>()),
        ("Door", size_of::<Door>()),
        ("LineDoor", size_of::<LineDoor>()),
        ("Edge", size_of::<super::edge::Edge>()),
        ("ReadShaper", size_of::<ReadShaper>()),
        ("mio TcpStream", size_of::<mio::net::TcpStream>()),
        ("SocketAddr", size_of::<std::net::SocketAddr>()),
    ];
    for (name, bytes) in parts {
        println!("{name:28} {bytes:4} B");
    }
    // 304 B in a test build (mio's socket is 16 B there, 4 B in release).
    assert!(size_of::<Option<Client>>() <= 320);
}
