//! The core without sockets: requests go through [`Core::handle`], password
//! checks and commits are completed by hand ([`Core::on_hash_done`],
//! [`Core::on_committed`]) and the clock is a number the test moves. Each
//! test checks one rule end to end: commit failures, barriers, long-polls,
//! the mailbox, `client_id` and connection budgets.

use super::*;
use crate::error::ErrorCode;
use crate::hasher::HashDone;
use crate::request::{Call, Recipient, Request, SyncArgs};
use crate::store::{Committed, StoredMessage, StoredUser};
use std::borrow::Cow;

const NOW: Millis = 1_764_000_000_000;
const ALICE: UserId = 1;
const BOB: UserId = 2;
const CAROL: UserId = 3;

pub(super) fn user(id: UserId, name: &str) -> StoredUser {
    StoredUser {
        id,
        identity: u128::from(id),
        username: name.into(),
        password_hash: "unused".into(),
        tokens_valid_from: 0,
    }
}

fn accounts() -> Vec<StoredUser> {
    vec![user(ALICE, "alice"), user(BOB, "bob"), user(CAROL, "carol")]
}

/// A core with three accounts, its outbox and a clock.
struct Bench {
    core: Core,
    out: Outbox,
    seq: u64,
    now: Millis,
}

impl Bench {
    fn new(settings: CoreSettings) -> Bench {
        Bench::restored(settings, Snapshot::default())
    }

    fn restored(settings: CoreSettings, mut snapshot: Snapshot) -> Bench {
        if snapshot.users.is_empty() {
            snapshot.users = accounts();
        }
        let mut core = Core::new(settings, TokenKey::random(), "dummy".into());
        core.restore(snapshot);
        let mut out = Outbox::default();
        core.tick(NOW, &mut out); // the first pass of the periodic work
        Bench {
            core,
            out,
            seq: 0,
            now: NOW,
        }
    }

    fn call(&mut self, conn: ConnId, request: Request<'_>) -> (Ticket, Handled) {
        self.seq += 1;
        let ticket = Ticket::new(conn, self.seq);
        let handled = self
            .core
            .handle(ticket, Call::new(request), self.now, &mut self.out);
        (ticket, handled)
    }

    /// Opens a line connection and AUTHs it as `user`.
    fn connect(&mut self, conn: ConnId, user: UserId) -> Reply {
        self.core.open_session(conn);
        self.auth(conn, user)
    }

    fn auth(&mut self, conn: ConnId, user: UserId) -> Reply {
        // Valid for longer than any test's clock runs (a bound connection
        // is unbound when its token expires).
        const YEAR: Millis = 365 * 24 * 3600 * 1000;
        let token = self
            .core
            .key
            .seal(user, u128::from(user), self.now, self.now + YEAR);
        let request = Request::Auth {
            token: Cow::Owned(token),
        };
        now(self.call(conn, request).1)
    }

    fn send(
        &mut self,
        conn: ConnId,
        to: &str,
        content: &str,
        cid: Option<&str>,
    ) -> (Ticket, Handled) {
        self.call(
            conn,
            Request::Send {
                to: Recipient::Name(Cow::Owned(to.into())),
                content: Cow::Owned(content.into()),
                client_id: cid.map(|c| Cow::Owned(c.into())),
            },
        )
    }

    fn sync(&mut self, conn: ConnId, args: SyncArgs) -> (Ticket, Handled) {
        self.call(conn, Request::Sync(args))
    }

    /// Takes the open batch to the store and completes it.
    fn commit(&mut self, ok: bool) {
        let batch = self.core.take_batch().expect("something waits on a commit");
        let result = if ok {
            Ok(())
        } else {
            Err(crate::store::StoreError::Io("injected failure".into()))
        };
        let done = Committed::of(batch.seq, result);
        self.core.on_committed(done, self.now, &mut self.out);
    }

    fn tick(&mut self, now: Millis) {
        self.now = now;
        self.core.tick(now, &mut self.out);
    }

    /// The reply the outbox holds for `ticket` (taken out of it).
    #[track_caller]
    fn reply(&mut self, ticket: Ticket) -> Reply {
        let at = self
            .out
            .replies
            .iter()
            .position(|(t, _)| *t == ticket)
            .unwrap_or_else(|| panic!("no reply for {ticket:?} in {:?}", self.out.replies));
        self.out.replies.remove(at).1
    }

    fn has_reply(&self, ticket: Ticket) -> bool {
        self.out.replies.iter().any(|(t, _)| *t == ticket)
    }
}

#[track_caller]
fn now(handled: Handled) -> Reply {
    match handled {
        Handled::Now(reply) => reply,
        other => panic!("expected a reply now, got {other:?}"),
    }
}

#[track_caller]
fn later(handled: Handled) -> bool {
    match handled {
        Handled::Later { barrier } => barrier,
        Handled::Now(reply) => panic!("expected a later reply, got {reply:?}"),
    }
}

#[track_caller]
fn failure(reply: Reply, code: ErrorCode, mentions: &str) {
    match reply {
        Reply::Error(f) => {
            assert_eq!(f.code, code, "{f}");
            assert!(f.message.contains(mentions), "{f} lacks {mentions:?}");
        }
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

#[track_caller]
fn sent(reply: Reply) -> MessageId {
    match reply {
        Reply::Sent { id, .. } => id,
        other => panic!("expected a SEND reply, got {other:?}"),
    }
}

#[track_caller]
fn ids(reply: Reply) -> Vec<MessageId> {
    match reply {
        Reply::Messages(list) => list.iter().map(|m| m.id).collect(),
        other => panic!("expected messages, got {other:?}"),
    }
}

fn waiting(wait_ms: u64) -> SyncArgs {
    SyncArgs {
        wait_ms,
        ..SyncArgs::default()
    }
}

#[test]
fn a_failed_commit_answers_unavailable_and_gives_the_room_back() {
    let mut b = Bench::new(CoreSettings {
        mailbox_limit: 1,
        ..CoreSettings::default()
    });
    b.connect(10, ALICE);
    let (first, handled) = b.send(10, "bob", "lost", Some("c1"));
    assert!(!later(handled));
    b.commit(false);
    failure(
        b.reply(first),
        ErrorCode::Unavailable,
        "nothing was changed",
    );
    let stats = b.core.stats();
    assert_eq!((stats.pending_messages, stats.pending_bytes), (0, 0));
    assert_eq!(
        stats.client_ids, 0,
        "a failed SEND's client_id is forgotten"
    );
    // The room is free again, and the client_id names no message.
    let (retry, handled) = b.send(10, "bob", "kept", Some("c1"));
    later(handled);
    b.commit(true);
    let id = sent(b.reply(retry));
    assert_eq!(b.core.stats().pending_messages, 1);
    let (full, handled) = b.send(10, "bob", "one too many", None);
    failure(now(handled), ErrorCode::RateLimited, "--mailbox-limit");
    assert!(!b.has_reply(full));
    b.connect(11, BOB);
    assert_eq!(ids(now(b.sync(11, SyncArgs::default()).1)), [id]);
}

#[test]
fn an_ack_is_a_barrier_answered_once_stored() {
    let mut b = Bench::new(CoreSettings::default());
    b.connect(10, ALICE);
    b.connect(11, BOB);
    let (t, _) = b.send(10, "bob", "hello", None);
    b.commit(true);
    let id = sent(b.reply(t));
    let (ack, handled) = b.call(11, Request::Ack { upto: id });
    assert!(later(handled), "an ACK holds the connection's next request");
    // Until it is stored, SYNC still returns the message.
    assert_eq!(ids(now(b.sync(11, SyncArgs::default()).1)), [id]);
    b.commit(true);
    assert!(matches!(b.reply(ack), Reply::Acked));
    assert_eq!(
        ids(now(b.sync(11, SyncArgs::default()).1)),
        Vec::<u64>::new()
    );
    assert_eq!(b.core.stats().pending_bytes, 0);
    // Nothing left to acknowledge: answered at once.
    assert!(matches!(
        now(b.call(11, Request::Ack { upto: id }).1),
        Reply::Acked
    ));
}

#[test]
fn a_failed_ack_keeps_the_messages() {
    let mut b = Bench::new(CoreSettings::default());
    b.connect(10, ALICE);
    b.connect(11, BOB);
    let (t, _) = b.send(10, "bob", "hello", None);
    b.commit(true);
    let id = sent(b.reply(t));
    let (ack, _) = b.call(11, Request::Ack { upto: id });
    b.commit(false);
    failure(b.reply(ack), ErrorCode::Unavailable, "try again");
    assert_eq!(ids(now(b.sync(11, SyncArgs::default()).1)), [id]);
}

#[test]
fn a_long_poll_expires_through_tick() {
    let mut b = Bench::new(CoreSettings::default());
    b.connect(11, BOB);
    let (t, handled) = b.sync(11, waiting(1000));
    assert!(later(handled), "a waiting SYNC is a barrier");
    assert_eq!(b.core.stats().waiters, 1);
    assert_eq!(b.core.next_deadline(), NOW + 1000);
    b.tick(NOW + 999);
    assert!(!b.has_reply(t));
    b.tick(NOW + 1000);
    assert_eq!(ids(b.reply(t)), Vec::<u64>::new());
    assert_eq!(b.core.stats().waiters, 0);
}

#[test]
fn a_long_poll_is_woken_by_a_delivered_message() {
    let mut b = Bench::new(CoreSettings::default());
    b.connect(10, ALICE);
    b.core.open_session(11); // bob polls by token, unbound
    let token = b.core.key.seal(BOB, u128::from(BOB), NOW, NOW + 60_000);
    b.seq += 1;
    let poll = Ticket::new(11, b.seq);
    let call = Call {
        token: Some(Cow::Owned(token)),
        ..Call::new(Request::Sync(waiting(60_000)))
    };
    later(b.core.handle(poll, call, NOW, &mut b.out));
    let (t, _) = b.send(10, "bob", "wake up", None);
    assert!(!b.has_reply(poll), "not before the message is stored");
    b.commit(true);
    let id = sent(b.reply(t));
    assert_eq!(ids(b.reply(poll)), [id]);
    assert_eq!(b.core.stats().waiters, 0);
    // Its deadline passing later answers nothing twice.
    b.tick(NOW + 60_000);
    assert!(b.out.replies.is_empty());
}

#[test]
fn a_closed_connection_drops_its_long_poll_and_a_half_closed_one_is_answered() {
    let mut b = Bench::new(CoreSettings::default());
    b.connect(11, BOB);
    b.connect(12, BOB);
    let (gone, _) = b.sync(11, waiting(60_000));
    let (half, _) = b.sync(12, waiting(60_000));
    assert_eq!(b.core.stats().waiters, 2);
    b.core.close_session(11);
    assert_eq!(b.core.stats().waiters, 1);
    assert!(!b.has_reply(gone));
    b.core.peer_closed(12, NOW, &mut b.out);
    assert_eq!(ids(b.reply(half)), Vec::<u64>::new());
    assert_eq!(b.core.stats().waiters, 0);
    b.core.peer_closed(12, NOW, &mut b.out);
    b.tick(NOW + 60_000);
    assert!(b.out.replies.is_empty());
    // A SYNC still buffered on the half-closed connection does not wait.
    assert!(matches!(
        now(b.sync(12, waiting(60_000)).1),
        Reply::Messages(_)
    ));
    assert_eq!(b.core.stats().waiters, 0);
    // Once the connection id is reused, its SYNCs wait again.
    b.core.close_session(12);
    b.connect(12, BOB);
    later(b.sync(12, waiting(60_000)).1);
}

#[test]
fn long_polls_per_user_are_capped() {
    let mut b = Bench::new(CoreSettings {
        waiters_per_user: 2,
        ..CoreSettings::default()
    });
    for conn in 11..14 {
        b.connect(conn, BOB);
    }
    later(b.sync(11, waiting(1000)).1);
    later(b.sync(12, waiting(1000)).1);
    failure(
        now(b.sync(13, waiting(1000)).1),
        ErrorCode::RateLimited,
        "--waiters-per-user",
    );
    // Without a wait it is an ordinary read; other users are not affected.
    assert!(matches!(
        now(b.sync(13, SyncArgs::default()).1),
        Reply::Messages(_)
    ));
    b.connect(20, CAROL);
    later(b.sync(20, waiting(1000)).1);
    b.core.close_session(11);
    later(b.sync(13, waiting(1000)).1);
}

#[test]
fn sends_in_flight_count_against_the_message_cap() {
    let mut b = Bench::new(CoreSettings {
        mailbox_limit: 3,
        ..CoreSettings::default()
    });
    b.connect(10, ALICE);
    let mut accepted = Vec::new();
    for n in 0..5 {
        let (t, handled) = b.send(10, "bob", &format!("m{n}"), None);
        match handled {
            Handled::Later { .. } => accepted.push(t),
            Handled::Now(reply) => {
                failure(reply, ErrorCode::RateLimited, "3 unacknowledged messages")
            }
        }
    }
    assert_eq!(accepted.len(), 3);
    b.commit(true);
    for t in accepted {
        sent(b.reply(t));
    }
    assert_eq!(b.core.stats().pending_messages, 3);
    failure(
        now(b.send(10, "bob", "still full", None).1),
        ErrorCode::RateLimited,
        "--mailbox-limit",
    );
    // Another mailbox is not affected.
    later(b.send(10, "carol", "hi", None).1);
}

#[test]
fn bytes_are_capped_per_mailbox_and_for_all() {
    let probe = {
        let parties = Parties {
            from_id: ALICE,
            from: "alice",
            to_id: BOB,
            to: "bob",
        };
        mailbox::cost(&Message::new(1, &parties, NOW, "0123456789", None))
    };
    let mut b = Bench::new(CoreSettings {
        mailbox_bytes: 2 * probe,
        pending_bytes: 3 * probe + probe / 2,
        ..CoreSettings::default()
    });
    b.connect(10, ALICE);
    later(b.send(10, "bob", "0123456789", None).1);
    later(b.send(10, "bob", "0123456789", None).1);
    failure(
        now(b.send(10, "bob", "x", None).1),
        ErrorCode::RateLimited,
        "--mailbox-bytes",
    );
    // carol's name is two letters longer than bob's.
    later(b.send(10, "carol", "01234567", None).1);
    failure(
        now(b.send(10, "carol", "01234567", None).1),
        ErrorCode::RateLimited,
        "--pending-bytes",
    );
    assert_eq!(b.core.stats().pending_bytes, 3 * probe);
    b.commit(true);
    assert_eq!(b.core.stats().pending_bytes, 3 * probe);
    // A control character costs its escaped size (\u0001: six bytes).
    b.connect(11, BOB);
    let (t, _) = b.call(11, Request::Ack { upto: u64::MAX });
    b.commit(true);
    assert!(matches!(b.reply(t), Reply::Acked));
    let escaped = "\u{1}".repeat(8);
    later(b.send(10, "bob", &escaped, None).1);
    b.commit(true);
    assert_eq!(b.core.stats().pending_bytes, 2 * probe - 10 + 6 * 8);
    // A message bigger than a whole mailbox says so.
    failure(
        now(b.send(10, "carol", &"x".repeat(2 * probe), None).1),
        ErrorCode::RateLimited,
        "more than a mailbox may hold",
    );
}

#[test]
fn restored_mailboxes_count_and_refuse_past_a_lowered_cap() {
    let messages = (1..=3)
        .map(|id| StoredMessage {
            id,
            from_id: ALICE,
            to_id: BOB,
            ts: NOW,
            content: "kept".into(),
            client_id: None,
            ..StoredMessage::default()
        })
        .collect();
    let mut b = Bench::restored(
        CoreSettings {
            mailbox_limit: 2,
            ..CoreSettings::default()
        },
        Snapshot {
            messages,
            last_message_id: 3,
            ..Snapshot::default()
        },
    );
    let stats = b.core.stats();
    assert_eq!(stats.pending_messages, 3);
    assert!(stats.pending_bytes > 3 * "kept".len());
    b.connect(10, ALICE);
    failure(
        now(b.send(10, "bob", "no room", None).1),
        ErrorCode::RateLimited,
        "--mailbox-limit",
    );
    b.connect(11, BOB);
    assert_eq!(ids(now(b.sync(11, SyncArgs::default()).1)), [1, 2, 3]);
    let (t, _) = b.call(11, Request::Ack { upto: 2 });
    b.commit(true);
    b.reply(t);
    let (t, _) = b.send(10, "bob", "room again", None);
    b.commit(true);
    assert_eq!(sent(b.reply(t)), 4);
}

#[test]
fn client_ids_deduplicate_the_newest_n_per_sender() {
    let mut b = Bench::new(CoreSettings {
        client_ids_per_sender: 2,
        ..CoreSettings::default()
    });
    b.connect(10, ALICE);
    // A repeat while the first is being stored waits for it.
    let (first, _) = b.send(10, "bob", "one", Some("c1"));
    let (repeat, handled) = b.send(10, "bob", "one", Some("c1"));
    assert!(!later(handled));
    b.commit(true);
    let id1 = sent(b.reply(first));
    assert_eq!(sent(b.reply(repeat)), id1);
    assert_eq!(sent(now(b.send(10, "bob", "one", Some("c1")).1)), id1);
    // Another sender's c1 is another id.
    b.connect(12, CAROL);
    later(b.send(12, "bob", "hers", Some("c1")).1);
    for cid in ["c2", "c3"] {
        let (t, _) = b.send(10, "bob", cid, Some(cid));
        b.commit(true);
        sent(b.reply(t));
    }
    assert_eq!(b.core.stats().client_ids, 3);
    // c1 was alice's oldest of three: forgotten, so it sends again.
    let (t, handled) = b.send(10, "bob", "one", Some("c1"));
    later(handled);
    b.commit(true);
    assert!(sent(b.reply(t)) > id1);
    let c3 = b.core.client_ids.get(ALICE, "c3").expect("kept").id;
    assert_eq!(sent(now(b.send(10, "bob", "c3", Some("c3")).1)), c3);
}

#[test]
fn client_ids_are_forgotten_after_a_day_in_steps() {
    let mut b = Bench::new(CoreSettings::default());
    b.connect(10, ALICE);
    let (t, _) = b.send(10, "bob", "old", Some("c1"));
    b.commit(true);
    let id = sent(b.reply(t));
    b.tick(NOW + crate::config::limits::CLIENT_ID_RETENTION_MS);
    assert_eq!(sent(now(b.send(10, "bob", "old", Some("c1")).1)), id);
    b.tick(NOW + crate::config::limits::CLIENT_ID_RETENTION_MS + PRUNE_EVERY_MS);
    assert_eq!(b.core.stats().client_ids, 0);
    later(b.send(10, "bob", "old", Some("c1")).1);
}

#[test]
fn connections_per_user_are_capped_for_auth_and_login() {
    let mut b = Bench::new(CoreSettings {
        conns_per_user: 2,
        ..CoreSettings::default()
    });
    assert!(matches!(b.connect(11, BOB), Reply::User(_)));
    assert!(matches!(b.connect(12, BOB), Reply::User(_)));
    failure(
        b.connect(13, BOB),
        ErrorCode::RateLimited,
        "--conns-per-user",
    );
    // A connection bound to bob already may AUTH again; others are free.
    assert!(matches!(b.auth(12, BOB), Reply::User(_)));
    assert!(matches!(b.connect(14, CAROL), Reply::User(_)));
    // LOGIN checks the password first, then the cap: no token.
    let (login, handled) = b.call(
        13,
        Request::Login {
            username: "bob".into(),
            password: "right-password".into(),
        },
    );
    assert!(later(handled));
    let job = match b.out.hash_jobs.pop() {
        Some(crate::hasher::HashJob::Verify { job, .. }) => job,
        other => panic!("expected a password check, got {other:?}"),
    };
    b.core.on_hash_done(
        HashDone::Verified {
            job,
            ok: true,
            rehashed: None,
        },
        NOW,
        &mut b.out,
    );
    failure(b.reply(login), ErrorCode::RateLimited, "--conns-per-user");
    assert_eq!(b.core.session_user(13), None);
    // Pushes still reach the two bound connections.
    b.connect(10, ALICE);
    let (t, _) = b.send(10, "bob", "to both", None);
    b.commit(true);
    sent(b.reply(t));
    let pushed: Vec<ConnId> = b.out.pushes.iter().map(|(c, _)| *c).collect();
    assert_eq!(pushed, [11, 12]);
    // Once one closes, another may bind.
    b.core.close_session(11);
    assert!(matches!(b.auth(13, BOB), Reply::User(_)));
    assert_eq!(b.core.stats().users_online, 3);
}

/// LOGOUT, LOGOUT all and token expiry on bound connections.
#[path = "logout_tests.rs"]
mod logout_tests;

/// Reading accounts, mailbox figures and pages from a store on demand.
#[path = "on_demand_tests.rs"]
mod on_demand_tests;

/// `gotalk admin`'s requests: disable, enable, delete, add.
#[path = "admin_tests.rs"]
mod admin_tests;
