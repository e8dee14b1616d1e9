//! What one node tells another through PostgreSQL's NOTIFY: ids and
//! figures only, never a message's content, so a payload stays far under
//! NOTIFY's 8,000-byte limit per entry and the receiving node reads the
//! messages themselves from the database.
//!
//! A payload is entries separated by spaces:
//!
//! | entry | meaning |
//! |---|---|
//! | `m<user>,<id>,<cost>` | message `id` (of `cost` bytes) stored for `user` |
//! | `a<user>,<upto>,<count>,<bytes>` | `user` acknowledged up to `upto`, removing `count` messages of `bytes` |
//! | `r<user>,<token>,<expires>` | a token of `user` revoked (LOGOUT) |
//! | `v<user>,<from>` | `user`'s tokens issued before `from` are void (LOGOUT all) |
//! | `s<user>,<with>,<id>` | `user` sent message `id` to `with` (history: a `sent` copy) |
//! | `d<by>,<with>,<upto>,<by name>,<with name>` | `by` read `with`'s messages up to `upto` (READ) |
//!
//! Entries of one commit for one node are packed into as few payloads as
//! fit under [`MAX_PAYLOAD`]. Each node listens on its own channel,
//! [`channel`].

use crate::store::Remote;
use std::fmt::Write;

/// Bytes per payload, under PostgreSQL's limit of 8,000.
pub const MAX_PAYLOAD: usize = 7_900;

/// The channel node `node` listens on.
pub fn channel(node: &str) -> String {
    format!("gotalk_node_{node}")
}

/// Whether `name` may be a node id: 1 to 40 ASCII letters, digits, `-`
/// and `_` (it becomes part of a channel name, at most 63 bytes).
pub fn is_node_id(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Payloads being packed for one node.
#[derive(Default, Debug)]
pub struct Packer {
    pub done: Vec<String>,
    current: String,
}

impl Packer {
    pub fn add(&mut self, event: &Remote) {
        let mut entry = String::with_capacity(48);
        let _ = match *event {
            Remote::Stored { user, id, cost } => write!(entry, "m{user},{id},{cost}"),
            Remote::Acked {
                user,
                upto,
                count,
                bytes,
            } => write!(entry, "a{user},{upto},{count},{bytes}"),
            Remote::Revoked {
                user,
                token,
                expires,
            } => write!(entry, "r{user},{token},{expires}"),
            Remote::Voided { user, from } => write!(entry, "v{user},{from}"),
            Remote::Sent { user, with, id } => write!(entry, "s{user},{with},{id}"),
            Remote::Read {
                by,
                with,
                upto,
                ref by_name,
                ref with_name,
            } => write!(entry, "d{by},{with},{upto},{by_name},{with_name}"),
            Remote::Resync => return,
        };
        if !self.current.is_empty() && self.current.len() + 1 + entry.len() > MAX_PAYLOAD {
            self.done.push(std::mem::take(&mut self.current));
        }
        if !self.current.is_empty() {
            self.current.push(' ');
        }
        self.current.push_str(&entry);
    }

    /// Every payload, the last one included.
    pub fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

/// The events of a payload; entries that do not parse are skipped (a
/// newer node's kind, say) and counted in the second value.
pub fn parse(payload: &str) -> (Vec<Remote>, usize) {
    let mut events = Vec::new();
    let mut skipped = 0;
    for entry in payload.split(' ').filter(|e| !e.is_empty()) {
        match parse_entry(entry) {
            Some(event) => events.push(event),
            None => skipped += 1,
        }
    }
    (events, skipped)
}

fn parse_entry(entry: &str) -> Option<Remote> {
    let kind = entry.as_bytes()[0];
    if kind == b'd' {
        return parse_read(&entry[1..]);
    }
    let numbers: Vec<u64> = entry[1..]
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    Some(match (kind, numbers.as_slice()) {
        (b'm', &[user, id, cost]) => Remote::Stored {
            user,
            id,
            cost: cost as usize,
        },
        (b'a', &[user, upto, count, bytes]) => Remote::Acked {
            user,
            upto,
            count: count as usize,
            bytes: bytes as usize,
        },
        (b'r', &[user, token, expires]) => Remote::Revoked {
            user,
            token,
            expires,
        },
        (b'v', &[user, from]) => Remote::Voided { user, from },
        (b's', &[user, with, id]) => Remote::Sent { user, with, id },
        _ => return None,
    })
}

/// `d<by>,<with>,<upto>,<by name>,<with name>`: a READ.
fn parse_read(fields: &str) -> Option<Remote> {
    let mut parts = fields.split(',');
    let mut number = || parts.next()?.parse::<u64>().ok();
    let (by, with, upto) = (number()?, number()?, number()?);
    let by_name = parts.next()?.into();
    let with_name = parts.next()?.into();
    if parts.next().is_some() {
        return None;
    }
    Some(Remote::Read {
        by,
        with,
        upto,
        by_name,
        with_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_payloads_stay_under_the_limit() {
        let mut packer = Packer::default();
        let mut sent = Vec::new();
        for i in 0..2000u64 {
            let event = match i % 4 {
                0 => Remote::Stored {
                    user: i,
                    id: u64::MAX - i,
                    cost: 120,
                },
                1 => Remote::Acked {
                    user: i,
                    upto: i * 7,
                    count: 3,
                    bytes: 400,
                },
                2 => Remote::Revoked {
                    user: i,
                    token: u64::MAX,
                    expires: 1_700_000_000_000,
                },
                _ => Remote::Voided { user: i, from: 5 },
            };
            packer.add(&event);
            sent.push(event);
        }
        let payloads = packer.finish();
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let got: Vec<Remote> = payloads.iter().flat_map(|p| parse(p).0).collect();
        assert_eq!(got, sent);
    }

    #[test]
    fn unknown_or_damaged_entries_are_skipped() {
        let (events, skipped) =
            parse("m1,2,3 x9 m1,2 a1,2,3,4 mz,1,1 d1,2 s1,2,3 d1,2,3,bob,alice");
        assert_eq!(
            events,
            [
                Remote::Stored {
                    user: 1,
                    id: 2,
                    cost: 3
                },
                Remote::Acked {
                    user: 1,
                    upto: 2,
                    count: 3,
                    bytes: 4
                },
                Remote::Sent {
                    user: 1,
                    with: 2,
                    id: 3
                },
                Remote::Read {
                    by: 1,
                    with: 2,
                    upto: 3,
                    by_name: "bob".into(),
                    with_name: "alice".into()
                }
            ]
        );
        assert_eq!(skipped, 4);
    }

    #[test]
    fn node_ids_fit_a_channel_name() {
        assert!(is_node_id("node-a_1"));
        assert!(!is_node_id(""));
        assert!(!is_node_id("a b"));
        assert!(!is_node_id("é"));
        assert!(!is_node_id(&"x".repeat(41)));
        assert!(channel(&"x".repeat(40)).len() <= 63);
    }
}
