//! A stored message. Its JSON form is written once, when the message is
//! created; every push, SYNC reply and HTTP reply copies those bytes instead
//! of serialising the message again.
//!
//! A message is one allocation: `Arc<Message>` holds the reference counts,
//! the fixed fields and the JSON bytes together, sized to fit. History in
//! RAM keeps tens of MiB of messages, so each one is cold by the time it
//! is dropped: one allocation is one `free` and fewer cache lines, written
//! when the message is made and touched again when it goes.

use crate::json;
use crate::{MessageId, Millis, UserId};
use std::cell::RefCell;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ops::Deref;
use std::sync::Arc;

/// A message's fixed fields, read as `message.id` and so on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Head {
    pub id: MessageId,
    pub from_id: UserId,
    pub to_id: UserId,
    pub ts: Millis,
    /// Where the escaped, quoted `content` string stands in the JSON.
    content_at: [u32; 2],
    /// Where the escaped, quoted `client_id` string stands in the JSON;
    /// `[0, 0]` when the sender gave none (the JSON starts with `{`, so no
    /// string stands at 0).
    client_id_at: [u32; 2],
}

/// One message in the server's custody. Shared as `Arc<Message>` between
/// the recipient's mailbox, pushes, history and the store; only ever made
/// by [`Message::new`] and [`Message::renumbered`], which allocate the
/// `Arc` with the JSON inline.
#[repr(C)]
pub struct Message {
    head: Head,
    /// `{"id":..,"from":..,"from_id":..,"to":..,"to_id":..,"content":..,"ts":..}`
    /// plus `"client_id"` when the sender gave one.
    json: str,
}

impl Deref for Message {
    type Target = Head;
    fn deref(&self) -> &Head {
        &self.head
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("head", &self.head)
            .field("json", &&self.json)
            .finish()
    }
}

// `Message`'s layout as `alloc` relies on it: the head, then the JSON at
// `size_of::<Head>()` (repr(C), str's alignment is 1), all 8-aligned.
const _: () = assert!(align_of::<Head>() == align_of::<u64>());

/// Makes the `Arc<Message>` of `head` and `json` in one allocation.
fn alloc(head: Head, json: &[u8]) -> Arc<Message> {
    debug_assert!(std::str::from_utf8(json).is_ok());
    let bytes = size_of::<Head>() + json.len();
    // Allocated as words so the `Arc`'s layout (counts, then
    // `bytes` rounded up to 8, aligned to 8) is exactly `Message`'s.
    let mut words: Arc<[MaybeUninit<u64>]> = Arc::new_uninit_slice(bytes.div_ceil(8));
    let data = Arc::get_mut(&mut words)
        .expect("a new Arc is unique")
        .as_mut_ptr()
        .cast::<u8>();
    // SAFETY: `data` points at `bytes` rounded up to 8 writable bytes,
    // 8-aligned; the head is written at 0 and the JSON right after it.
    unsafe {
        data.cast::<Head>().write(head);
        std::ptr::copy_nonoverlapping(json.as_ptr(), data.add(size_of::<Head>()), json.len());
    }
    let raw = Arc::into_raw(words).cast::<u8>();
    // A pointer to `Message` carries the JSON's length as its metadata.
    let raw = std::ptr::slice_from_raw_parts(raw, json.len()) as *const Message;
    // SAFETY: the allocation came from an `Arc` of the same size (the head
    // plus `json.len()`, rounded up to 8) and alignment (8), as
    // `Arc::from_raw` asks; the head and the JSON (valid UTF-8: the JSON
    // helpers write ASCII and the escaped forms of `&str`s) are
    // initialised, and the padding after them is never read.
    unsafe { Arc::from_raw(raw) }
}

thread_local! {
    /// Where a new message's JSON is written before it is copied into its
    /// allocation, which is sized to fit (its length is known only once
    /// written). One per thread that builds messages, kept between
    /// messages up to [`SCRATCH_KEPT`] bytes.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most scratch room a thread keeps after a message: a rare large
/// one (up to the content limit, escaped) is not held for good.
const SCRATCH_KEPT: usize = 16 << 10;

/// Writes a message's JSON with `write` into this thread's scratch buffer
/// and makes the message of it.
fn build(write: impl FnOnce(&mut Vec<u8>) -> Head) -> Arc<Message> {
    SCRATCH.with_borrow_mut(|out| {
        out.clear();
        let head = write(out);
        let message = alloc(head, out);
        if out.capacity() > SCRATCH_KEPT {
            *out = Vec::new();
        }
        message
    })
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
    ) -> Arc<Message> {
        build(|out| {
            out.extend_from_slice(b"{\"id\":");
            json::push_u64(out, id);
            json::push_field_str(out, "from", parties.from);
            json::push_field_u64(out, "from_id", parties.from_id);
            json::push_field_str(out, "to", parties.to);
            json::push_field_u64(out, "to_id", parties.to_id);
            out.extend_from_slice(b",\"content\":");
            let content_start = out.len() as u32;
            json::push_str(out, content);
            let content_at = [content_start, out.len() as u32];
            json::push_field_u64(out, "ts", ts);
            let client_id_at = client_id.map_or([0, 0], |cid| {
                out.extend_from_slice(b",\"client_id\":");
                let start = out.len() as u32;
                json::push_str(out, cid);
                [start, out.len() as u32]
            });
            out.push(b'}');
            Head {
                id,
                from_id: parties.from_id,
                to_id: parties.to_id,
                ts,
                content_at,
                client_id_at,
            }
        })
    }

    /// The same message under another id: the one the store gave it, where
    /// the store assigns ids (PostgreSQL). Copies the JSON once.
    pub fn renumbered(&self, id: MessageId) -> Arc<Message> {
        const PREFIX: &[u8] = b"{\"id\":";
        let old_end = PREFIX.len() + digits(self.id);
        build(|out| {
            out.extend_from_slice(PREFIX);
            json::push_u64(out, id);
            let new_end = out.len();
            out.extend_from_slice(&self.json.as_bytes()[old_end..]);
            let shift = |[start, end]: [u32; 2]| {
                let move_by = |at: u32| (at as usize + new_end - old_end) as u32;
                [move_by(start), move_by(end)]
            };
            Head {
                id,
                content_at: shift(self.content_at),
                client_id_at: match self.client_id_at {
                    [0, 0] => [0, 0],
                    at => shift(at),
                },
                ..self.head
            }
        })
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
        let [start, end] = self.content_at;
        &self.json[start as usize..end as usize]
    }

    /// The content as plain text.
    pub fn content(&self) -> String {
        unescape(self.content_json())
    }

    /// The sender's `client_id`, if one was given.
    pub fn client_id(&self) -> Option<String> {
        match self.client_id_at {
            [0, 0] => None,
            [start, end] => Some(unescape(&self.json[start as usize..end as usize])),
        }
    }
}

fn unescape(literal: &str) -> String {
    serde_json::from_str(literal).expect("a literal this module wrote parses back")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(content: &str, client_id: Option<&str>) -> Arc<Message> {
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
    fn every_length_round_trips_through_its_one_allocation() {
        // Each JSON length modulo 8 (the padding after the JSON differs),
        // with and without a client_id, shared and dropped in any order.
        for n in 0..24 {
            let content = "x".repeat(n);
            for cid in [None, Some("c")] {
                let m = sample(&content, cid);
                let shared = m.clone();
                drop(m);
                let v: serde_json::Value = serde_json::from_str(shared.json()).unwrap();
                assert_eq!(v["content"], content.as_str());
                assert_eq!(shared.content(), content);
                assert_eq!(shared.client_id().as_deref(), cid);
                assert_eq!((shared.id, shared.from_id, shared.to_id), (17, 1, 2));
                assert_eq!(shared.ts, 1764160000000);
                assert_eq!(shared.cost(), shared.json().len());
            }
        }
    }

    #[test]
    fn a_large_message_does_not_keep_its_scratch_room() {
        let big = "\u{1}".repeat(64 << 10);
        let m = sample(&big, None);
        assert_eq!(m.content(), big);
        assert!(SCRATCH.with_borrow(|s| s.capacity()) <= SCRATCH_KEPT);
        let small = sample("hi", None);
        assert_eq!(small.content(), "hi");
        assert!(
            SCRATCH.with_borrow(|s| s.capacity()) > 0,
            "a small one's room is kept"
        );
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
