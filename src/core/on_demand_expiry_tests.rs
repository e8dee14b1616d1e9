//! `--message-ttl` with a store that keeps data: the store's expiry step
//! reports what left which mailbox from which senders, and the core's
//! figures (mailbox, sender, totals) follow, for mailboxes held in RAM and
//! not; a mailbox read that was in flight while a step took some of its
//! messages is not trusted, but read again.

use super::*;

const TTL: Millis = 1000;

fn with_ttl() -> OnDemand {
    let mut d = OnDemand::new(8, 4, 100);
    d.b.core.settings.message_ttl_ms = Some(TTL);
    d.b.core.settings.pending_bytes_per_sender = 1 << 20;
    d.store.backlog(ALICE, BOB, 1, 3);
    let mut d = d.started_with_backlog();
    let bytes = d.store.pending_bytes();
    d.b.core.mailboxes.add_sender_bytes(ALICE, bytes);
    d
}

/// Runs the core's clock to `at`, committing the expiry step it asks for.
fn expire_at(d: &mut OnDemand, at: Millis) {
    d.b.now = at;
    d.b.tick(at);
    let batch = d.b.core.take_batch().expect("an expiry step");
    assert!(matches!(batch.ops[..], [WriteOp::Expire { .. }]));
    let done = d.store.commit(&batch);
    d.b.core.on_committed(done, at, &mut d.b.out);
}

#[test]
fn an_expiry_step_lowers_every_figure_for_a_mailbox_not_in_ram() {
    let mut d = with_ttl();
    assert_eq!(
        d.b.core.mailboxes.senders().held(ALICE),
        d.store.pending_bytes()
    );
    expire_at(&mut d, NOW + TTL + 1);
    assert!(d.store.messages.is_empty());
    let stats = d.b.core.stats();
    assert_eq!((stats.pending_messages, stats.pending_bytes), (0, 0));
    assert_eq!(d.b.core.mailboxes.senders().held(ALICE), 0);
    assert_eq!(d.b.core.counters.messages_expired, 3);
}

#[test]
fn a_mailbox_read_in_flight_during_a_step_is_read_again() {
    let mut d = with_ttl();
    d.connect(10, ALICE);
    // A SEND to bob waits for his figures: 3 messages, before the step.
    let (t, handled) = d.b.send(10, "bob", "hello", None);
    assert!(later(handled));
    // Bob's account first, then his mailbox's figures.
    let mut reads = d.asked();
    while let [read] = &reads[..] {
        if matches!(
            read.op,
            ReadOp::Mailbox(BOB) | ReadOp::MailboxAndHead { user: BOB, .. }
        ) {
            break;
        }
        d.answer(read.clone());
        reads = d.asked();
    }
    assert_eq!(reads.len(), 1, "{reads:?}");
    let stale = d.store.answer(&reads[0].op);
    expire_at(&mut d, NOW + TTL + 1);
    d.b.core.on_read(
        ReadDone {
            id: reads[0].id,
            answer: Ok(stale),
        },
        d.b.now,
        &mut d.b.out,
    );
    // Not trusted: the SEND asks again, and the store says 0.
    d.answer_all();
    d.commit();
    sent(d.b.reply(t));
    let stats = d.b.core.stats();
    assert_eq!(stats.pending_messages, 1, "the new message only");
    assert_eq!(stats.pending_bytes, d.store.pending_bytes());
    assert_eq!(d.b.core.mailboxes.len_of(BOB), 1);
}
