//! The core when the store fails a batch: every request in it is answered
//! `unavailable` (saying so when the disk is full) and nothing of it
//! happens, except the ACKs the store committed on their own.

use super::{Core, CoreSettings, Handled, Outbox, Ticket};
use crate::error::ErrorCode;
use crate::request::{Call, Recipient, Reply, Request, SyncArgs};
use crate::store::{Committed, Snapshot, StoreError, StoredMessage, StoredUser};
use crate::token::TokenKey;
use std::borrow::Cow;

const NOW: u64 = 1_700_000_000_000;
const KEY: [u8; 32] = [9; 32];

fn core() -> Core {
    let settings = CoreSettings {
        token_ttl_ms: 60_000,
        mailbox_limit: 100,
        hash_workers: 1,
        hash_queue: 10,
        hash_queue_per_address: 10,
        ..CoreSettings::default()
    };
    let mut core = Core::new(settings, TokenKey::from_bytes(&KEY), "dummy".into());
    let user = |id: u64, name: &str| StoredUser {
        id,
        identity: u128::from(id),
        username: name.into(),
        password_hash: "h".into(),
        tokens_valid_from: 0,
    };
    core.restore(Snapshot {
        users: vec![user(1, "alice"), user(2, "bob")],
        messages: vec![StoredMessage {
            id: 1,
            from_id: 1,
            to_id: 2,
            ts: NOW,
            content: "stored".into(),
            client_id: None,
            ..StoredMessage::default()
        }],
        last_message_id: 1,
        ..Snapshot::default()
    });
    core
}

/// A call made with `user`'s token.
fn call(user: u64, request: Request<'static>) -> Call<'static> {
    let token = TokenKey::from_bytes(&KEY).seal(user, u128::from(user), NOW, NOW + 60_000);
    Call {
        token: Some(Cow::Owned(token)),
        ..Call::new(request)
    }
}

fn reply_to(out: &Outbox, seq: u64) -> &Reply {
    &out.replies.iter().find(|(t, _)| t.seq == seq).unwrap().1
}

#[test]
fn on_a_full_disk_acks_stored_alone_succeed_and_the_rest_is_unavailable() {
    let mut core = core();
    let mut out = Outbox::default();
    let send = Request::Send {
        to: Recipient::Name(Cow::Borrowed("bob")),
        content: Cow::Borrowed("new"),
        client_id: None,
    };
    let ticket = |seq| Ticket::new(1, seq);
    let handled = core.handle(ticket(1), call(1, send), NOW, &mut out);
    assert!(matches!(handled, Handled::Later { .. }));
    let handled = core.handle(ticket(2), call(2, Request::Ack { upto: 1 }), NOW, &mut out);
    assert!(matches!(handled, Handled::Later { .. }));
    let batch = core.take_batch().expect("one batch for the turn");
    assert_eq!(batch.ops.len(), 2);

    let done = Committed {
        seq: batch.seq,
        result: Err(StoreError::DiskFull),
        acks: Ok(()),
        removed: Vec::new(),
        duplicates: Vec::new(),
        expired: Vec::new(),
        assigned: Default::default(),
        marks: Vec::new(),
    };
    core.on_committed(done, NOW, &mut out);
    match reply_to(&out, 1) {
        Reply::Error(f) => {
            assert_eq!(f.code, ErrorCode::Unavailable);
            assert!(f.message.contains("disk is full"), "{}", f.message);
        }
        other => panic!("SEND: {other:?}"),
    }
    assert!(matches!(reply_to(&out, 2), Reply::Acked));
    assert!(out.pushes.is_empty(), "nothing was delivered");
    // Bob's mailbox: message 1 acknowledged, the refused one never there.
    let handled = core.handle(
        ticket(3),
        call(2, Request::Sync(SyncArgs::default())),
        NOW,
        &mut out,
    );
    match handled {
        Handled::Now(Reply::Messages(m)) => assert!(m.is_empty(), "{m:?}"),
        other => panic!("SYNC: {other:?}"),
    }
}

#[test]
fn another_store_failure_fails_the_acks_too_and_says_nothing_of_the_disk() {
    let mut core = core();
    let mut out = Outbox::default();
    let ticket = Ticket::new(1, 1);
    core.handle(ticket, call(2, Request::Ack { upto: 1 }), NOW, &mut out);
    let batch = core.take_batch().unwrap();
    let cause = StoreError::Io("disk I/O error".into());
    let done = Committed {
        seq: batch.seq,
        result: Err(cause.clone()),
        acks: Err(cause),
        removed: Vec::new(),
        duplicates: Vec::new(),
        expired: Vec::new(),
        assigned: Default::default(),
        marks: Vec::new(),
    };
    core.on_committed(done, NOW, &mut out);
    match reply_to(&out, 1) {
        Reply::Error(f) => {
            assert_eq!(f.code, ErrorCode::Unavailable);
            assert!(!f.message.contains("disk"), "{}", f.message);
        }
        other => panic!("ACK: {other:?}"),
    }
    assert_eq!(
        core.mailboxes.would_ack(2, 1),
        Some(true),
        "message 1 is still held"
    );
}
