//! A stored message. Its JSON form is written once, when the message is
//! created; every push, SYNC reply and HTTP reply copies those bytes instead
//! of serialising the message again.

use crate::json;
use crate::{MessageId, Millis, UserId};
use std::ops::Range;

/// One message in the server's custody. Shared as `Arc<Message>` between
/// the recipient's mailbox, pushes and the store.
#[derive(Debug)]
pub struct Message {
    pub id: MessageId,
    pub from_id: UserId,
    pub to_id: UserId,
    pub ts: Millis,
    /// `{"id":..,"from":..,"from_id":..,"to":..,"to_id":..,"content":..,"ts":..}`
    /// plus `"client_id"` when the sender gave one.
    json: String,
    /// Where the escaped, quoted `content` string stands in `json`.
    content_at: Range<u32>,
    /// Where the escaped, quoted `client_id` string stands in `json`.
    client_id_at: Option<Range<u32>>,
}

/// How many decimal digits `n` takes in the JSON.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Who a message is between, by id and name.
pub struct Parties<'a> {
    pub from_id: UserId,
    pub from: &'a str,
    pub to_id: UserId,
    pub to: &'a str,
}

impl Message {
    pub fn new(
        id: MessageId,
        parties: &Parties<'_>,
        ts: Millis,
        content: &str,
        client_id: Option<&str>,
    ) -> Message {
        // Room for the keys and punctuation (64 bytes), four numbers of up
        // to 20 digits, and the 20 bytes push_u64 writes before cutting back,
        // so the buffer is never grown; escapes are rare enough to allow for
        // one growth when they happen.
        let mut out = Vec::with_capacity(
            content.len()
                + parties.from.len()
                + parties.to.len()
                + 64
                + 4 * 20
                + 20
                + client_id.map_or(0, |c| c.len() + 16),
        );
        out.extend_from_slice(b"{\"id\":");
        json::push_u64(&mut out, id);
        json::push_field_str(&mut out, "from", parties.from);
        json::push_field_u64(&mut out, "from_id", parties.from_id);
        json::push_field_str(&mut out, "to", parties.to);
        json::push_field_u64(&mut out, "to_id", parties.to_id);
        out.extend_from_slice(b",\"content\":");
        let content_start = out.len() as u32;
        json::push_str(&mut out, content);
        let content_at = content_start..out.len() as u32;
        json::push_field_u64(&mut out, "ts", ts);
        let client_id_at = client_id.map(|cid| {
            out.extend_from_slice(b",\"client_id\":");
            let start = out.len() as u32;
            json::push_str(&mut out, cid);
            start..out.len() as u32
        });
        out.push(b'}');
        // Kept as a String: shrinking it to a Box<str> would copy it again.
        // SAFETY: `out` holds ASCII punctuation, digits and keys, and the
        // JSON-escaped forms of `&str`s, which are valid UTF-8; checking it
        // again would cost a pass over every message.
        let json = unsafe { String::from_utf8_unchecked(out) };
        debug_assert!(std::str::from_utf8(json.as_bytes()).is_ok());
        Message {
            id,
            from_id: parties.from_id,
            to_id: parties.to_id,
            ts,
            json,
            content_at,
            client_id_at,
        }
    }

    /// The same message under another id: the one the store gave it, where
    /// the store assigns ids (PostgreSQL). Copies the JSON once.
    pub fn renumbered(&self, id: MessageId) -> Message {
        const PREFIX: &[u8] = b"{\"id\":";
        let old_end = PREFIX.len() + digits(self.id);
        let mut out = Vec::with_capacity(self.json.len() + 20);
        out.extend_from_slice(PREFIX);
        json::push_u64(&mut out, id);
        let new_end = out.len();
        out.extend_from_slice(&self.json.as_bytes()[old_end..]);
        let shift = |r: &Range<u32>| {
            let move_by = |at: u32| (at as usize + new_end - old_end) as u32;
            move_by(r.start)..move_by(r.end)
        };
        // SAFETY: ASCII digits and punctuation followed by the tail of a
        // valid UTF-8 string, cut at an ASCII character.
        let json = unsafe { String::from_utf8_unchecked(out) };
        debug_assert!(std::str::from_utf8(json.as_bytes()).is_ok());
        Message {
            id,
            from_id: self.from_id,
            to_id: self.to_id,
            ts: self.ts,
            content_at: shift(&self.content_at),
            client_id_at: self.client_id_at.as_ref().map(shift),
            json,
        }
    }

    /// The message as a JSON object.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// What the message costs a mailbox, the sender's figure and the
    /// global budget: its JSON, as held in memory (a message of control
    /// characters costs its escaped size). The stores keep this figure
    /// per row (`cost`).
    pub fn cost(&self) -> usize {
        self.json.len()
    }

    /// What the message will cost under `id`, the id the store gives it
    /// (PostgreSQL): its JSON's length changes with the number of digits.
    pub fn cost_with_id(&self, id: MessageId) -> usize {
        self.json.len() + digits(id) - digits(self.id)
    }

    /// The content as a JSON string literal (quoted, escaped).
    pub fn content_json(&self) -> &str {
        &self.json[self.content_at.start as usize..self.content_at.end as usize]
    }

    /// The content as plain text.
    pub fn content(&self) -> String {
        unescape(self.content_json())
    }

    /// The sender's `client_id`, if one was given.
    pub fn client_id(&self) -> Option<String> {
        self.client_id_at
            .as_ref()
            .map(|r| unescape(&self.json[r.start as usize..r.end as usize]))
    }
}

fn unescape(literal: &str) -> String {
    serde_json::from_str(literal).expect("a literal this module wrote parses back")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(content: &str, client_id: Option<&str>) -> Message {
        let parties = Parties {
            from_id: 1,
            from: "alice",
            to_id: 2,
            to: "bob",
        };
        Message::new(17, &parties, 1764160000000, content, client_id)
    }

    #[test]
    fn json_has_every_contract_field() {
        let m = sample("hello \"there\"\n", None);
        let v: serde_json::Value = serde_json::from_str(m.json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":17,"from":"alice","from_id":1,"to":"bob","to_id":2,
                "content":"hello \"there\"\n","ts":1764160000000u64})
        );
        assert_eq!(m.content(), "hello \"there\"\n");
        assert_eq!(m.client_id(), None);
    }

    #[test]
    fn client_id_is_kept_and_recoverable() {
        let m = sample("hi", Some("c-1 \u{e9}"));
        let v: serde_json::Value = serde_json::from_str(m.json()).unwrap();
        assert_eq!(v["client_id"], "c-1 \u{e9}");
        assert_eq!(m.client_id().as_deref(), Some("c-1 \u{e9}"));
        assert_eq!(m.content_json(), "\"hi\"");
    }

    #[test]
    fn a_renumbered_message_is_the_message_built_with_that_id() {
        for (from, to) in [(17, 123456789), (17, 5), (9, 10)] {
            let parties = Parties {
                from_id: 1,
                from: "alice",
                to_id: 2,
                to: "bob",
            };
            let m = Message::new(from, &parties, 5, "h\u{e9} \"x\"", Some("c \u{e9}"));
            let direct = Message::new(to, &parties, 5, "h\u{e9} \"x\"", Some("c \u{e9}"));
            let renumbered = m.renumbered(to);
            assert_eq!(renumbered.json(), direct.json());
            assert_eq!(renumbered.id, to);
            assert_eq!(renumbered.content(), "h\u{e9} \"x\"");
            assert_eq!(renumbered.client_id().as_deref(), Some("c \u{e9}"));
        }
    }

    #[test]
    fn the_cost_follows_the_id_s_digits() {
        let parties = Parties {
            from_id: 1,
            from: "alice",
            to_id: 2,
            to: "bob",
        };
        let m = Message::new(7, &parties, 1, "hi", None);
        let renumbered = Message::new(12345, &parties, 1, "hi", None);
        assert_eq!(m.cost_with_id(12345), renumbered.cost());
        assert_eq!(m.cost_with_id(7), m.cost());
        assert_eq!(m.cost(), m.json().len());
    }
}
