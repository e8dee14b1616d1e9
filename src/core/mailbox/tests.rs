//! The mailbox figures' unit tests: reads, reservations against each
//! cap, and what an ACK or an expiry gives back.

use super::*;
use crate::message::Parties;

fn msg(id: MessageId, to: UserId) -> Arc<Message> {
    let parties = Parties {
        from_id: 9,
        from: "sender",
        to_id: to,
        to: "rcpt",
    };
    Message::new(id, &parties, 0, "hello", None)
}

fn ids(v: &[Arc<Message>]) -> Vec<MessageId> {
    v.iter().map(|m| m.id).collect()
}

#[test]
fn read_is_repeatable_until_acknowledged() {
    let mut boxes = Mailboxes::default();
    for id in [3, 5, 8] {
        boxes.deliver(msg(id, 1));
    }
    assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20).unwrap()), [3, 5, 8]);
    assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20).unwrap()), [3, 5, 8]);
    assert_eq!(ids(&boxes.read(1, 3, 1, 1 << 20).unwrap()), [5]);
    assert_eq!(boxes.ack(1, 5, None), 2);
    assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20).unwrap()), [8]);
    assert_eq!(boxes.total(), 1);
}

#[test]
fn pushed_and_queued_messages_keep_id_order() {
    let mut boxes = Mailboxes::default();
    boxes.deliver(msg(1, 1));
    boxes.deliver(msg(2, 1));
    boxes.deliver(msg(3, 1));
    assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20).unwrap()), [1, 2, 3]);
}

#[test]
fn ack_above_newest_leaves_later_messages() {
    let mut boxes = Mailboxes::default();
    boxes.deliver(msg(1, 1));
    assert_eq!(boxes.ack(1, 1000, None), 1);
    assert_eq!(boxes.len_of(1), 0);
    boxes.deliver(msg(2, 1));
    assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20).unwrap()), [2]);
}

#[test]
fn would_ack_sees_queued_messages() {
    let mut boxes = Mailboxes::default();
    assert!(!boxes.would_ack(1, 10).unwrap());
    boxes.deliver(msg(4, 1));
    assert!(!boxes.would_ack(1, 3).unwrap());
    assert!(boxes.would_ack(1, 4).unwrap());
}

#[test]
fn byte_budget_still_returns_one_message() {
    let mut boxes = Mailboxes::default();
    boxes.deliver(msg(1, 1));
    boxes.deliver(msg(2, 1));
    assert_eq!(ids(&boxes.read(1, 0, 100, 1).unwrap()), [1]);
}

#[test]
fn mailboxes_of_users_are_separate() {
    let mut boxes = Mailboxes::default();
    boxes.deliver(msg(1, 1));
    boxes.deliver(msg(2, 2));
    assert_eq!(ids(&boxes.read(2, 0, 100, 1 << 20).unwrap()), [2]);
    assert_eq!(boxes.ack(2, 100, None), 1);
    assert_eq!(boxes.len_of(1), 1);
}

const ROOMY: Budget = Budget {
    messages: 100,
    bytes: 1 << 20,
    per_sender: 1 << 20,
    pending_bytes: 1 << 20,
};

#[test]
fn reservations_count_against_the_caps_until_stored_or_released() {
    let mut boxes = Mailboxes::default();
    let m = msg(1, 1);
    let size = cost(&m);
    let two = Budget {
        messages: 2,
        ..ROOMY
    };
    boxes.reserve(1, 9, size, &two).unwrap();
    boxes.reserve(1, 9, size, &two).unwrap();
    assert_eq!(boxes.reserve(1, 9, size, &two), Err(Full::Messages(2)));
    assert_eq!(boxes.pending_bytes(), 2 * size);
    boxes.deliver_reserved(m, false);
    boxes.release(1, 9, size);
    assert_eq!((boxes.total(), boxes.len_of(1)), (1, 1));
    assert_eq!(boxes.pending_bytes(), size);
    boxes.reserve(1, 9, size, &two).unwrap();
    assert_eq!(boxes.reserve(1, 9, size, &two), Err(Full::Messages(2)));
}

#[test]
fn bytes_are_capped_per_mailbox_and_in_all() {
    let mut boxes = Mailboxes::default();
    let size = cost(&msg(1, 1));
    let tight = Budget {
        bytes: 2 * size,
        pending_bytes: 3 * size,
        ..ROOMY
    };
    boxes.reserve(1, 9, size, &tight).unwrap();
    boxes.reserve(1, 9, size, &tight).unwrap();
    assert_eq!(boxes.reserve(1, 9, 1, &tight), Err(Full::Bytes(2 * size)));
    boxes.reserve(2, 9, size, &tight).unwrap();
    assert_eq!(boxes.reserve(3, 9, 1, &tight), Err(Full::Pending(3 * size)));
    // A refusal changes nothing.
    assert_eq!(boxes.pending_bytes(), 3 * size);
    boxes.deliver_reserved(msg(1, 1), false);
    boxes.deliver_reserved(msg(2, 1), false);
    assert_eq!(boxes.ack(1, 2, None), 2);
    assert_eq!(boxes.pending_bytes(), size);
    boxes.reserve(3, 9, size, &tight).unwrap();
}

#[test]
fn a_mailbox_with_reservations_outlives_its_messages() {
    let mut boxes = Mailboxes::default();
    boxes.deliver(msg(1, 1));
    let size = cost(&msg(2, 1));
    boxes.reserve(1, 9, size, &ROOMY).unwrap();
    assert_eq!(boxes.ack(1, 1, None), 1);
    boxes.deliver_reserved(msg(2, 1), false);
    assert_eq!(ids(&boxes.read(1, 0, 100, 1 << 20).unwrap()), [2]);
    assert_eq!(boxes.pending_bytes(), size);
    assert_eq!(boxes.ack(1, 2, None), 1);
    assert_eq!(boxes.pending_bytes(), 0);
    assert!(boxes.boxes.is_empty());
}

#[test]
fn figures_read_with_a_head_keep_it_only_while_active_and_within_the_window() {
    let window = Window {
        messages: 2,
        bytes: 1 << 20,
    };
    let mut boxes = Mailboxes::new(true, window, 10);
    let oldest = || vec![msg(1, 1), msg(2, 1), msg(3, 1)];
    boxes.load(1, 5, 500, true, oldest());
    assert_eq!(boxes.resident(), 2, "the window's worth");
    assert_eq!(ids(&boxes.read(1, 0, 2, 1 << 20).unwrap()), [1, 2]);
    assert!(boxes.read(1, 0, 3, 1 << 20).is_none(), "the rest is stored");
    // Known figures are not replaced by a later answer.
    boxes.load(1, 9, 900, true, oldest());
    assert_eq!((boxes.len_of(1), boxes.resident()), (5, 2));
    // A user who is not active keeps the figures only.
    boxes.load(2, 3, 300, false, vec![msg(4, 2)]);
    assert_eq!((boxes.len_of(2), boxes.resident()), (3, 2));
    // A whole mailbox in RAM answers to the end without the store.
    boxes.load(3, 1, 100, true, vec![msg(5, 3)]);
    assert_eq!(ids(&boxes.read(3, 0, 100, 1 << 20).unwrap()), [5]);
}

#[test]
fn escaped_content_costs_its_stored_size() {
    let parties = Parties {
        from_id: 9,
        from: "s",
        to_id: 1,
        to: "r",
    };
    let plain = Message::new(1, &parties, 0, "aaaa", None);
    let control = Message::new(1, &parties, 0, "\u{1}\u{1}\u{1}\u{1}", None);
    assert_eq!(cost(&control), cost(&plain) + 4 * 5);
}

#[test]
fn a_sender_is_capped_across_mailboxes_and_gets_its_room_back_by_ack() {
    let mut boxes = Mailboxes::default();
    let size = cost(&msg(1, 1));
    let tight = Budget {
        per_sender: 2 * size,
        ..ROOMY
    };
    boxes.reserve(1, 9, size, &tight).unwrap();
    boxes.reserve(2, 9, size, &tight).unwrap();
    assert_eq!(
        boxes.reserve(3, 9, size, &tight),
        Err(Full::Sender(2 * size))
    );
    // Another sender to the same mailboxes is not held up.
    boxes.reserve(1, 8, size, &tight).unwrap();
    boxes.release(1, 8, size);
    boxes.deliver_reserved(msg(1, 1), false);
    boxes.deliver_reserved(msg(2, 2), false);
    assert_eq!(boxes.senders().held(9), 2 * size);
    assert_eq!(boxes.ack(1, 1, None), 1);
    assert_eq!(boxes.senders().held(9), size);
    boxes.reserve(3, 9, size, &tight).unwrap();
    // What the store reports by sender is what goes (the head may not
    // hold the messages).
    let taken = Taken {
        count: 1,
        bytes: size,
        senders: &[(9, size)],
    };
    assert_eq!(boxes.expire(7, 5, Some(taken)), 1, "a mailbox not in RAM");
    assert_eq!(boxes.senders().held(9), size);
    assert_eq!(boxes.senders().top(1), [(9, size)]);
}

#[test]
fn the_age_index_finds_the_oldest_mailbox_and_follows_acks_and_expiry() {
    let at = |id: MessageId, to: UserId, ts: crate::Millis| {
        let parties = Parties {
            from_id: 9,
            from: "sender",
            to_id: to,
            to: "rcpt",
        };
        Message::new(id, &parties, ts, "hello", None)
    };
    let mut boxes = Mailboxes::default();
    boxes.track_age();
    boxes.deliver(at(1, 1, 100));
    boxes.deliver(at(2, 2, 200));
    boxes.deliver(at(3, 1, 300));
    assert_eq!(boxes.oldest(), Some((100, 1)));
    // An ACK moves user 1's entry to its next message.
    assert_eq!(boxes.ack(1, 1, None), 1);
    assert_eq!(boxes.oldest(), Some((200, 2)));
    // Expiry takes what is older than the cut, at most `max`.
    assert_eq!(boxes.expire_older(2, 250, 10), 1);
    assert_eq!(boxes.oldest(), Some((300, 1)));
    assert_eq!(boxes.expire_older(1, 250, 10), 0, "younger");
    assert_eq!(boxes.expire_older(1, 400, 10), 1);
    assert_eq!(
        (boxes.oldest(), boxes.total(), boxes.pending_bytes()),
        (None, 0, 0)
    );
    assert_eq!(boxes.senders().held(9), 0);
}
