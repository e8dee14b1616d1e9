//! The core with a store that keeps data (`on_demand`): a fake store in
//! memory answers its reads and applies its batches the way SQLite does
//! (an ACK reports what it removed, a `client_id` already stored is a
//! duplicate), and the tests decide when each answer arrives. They check
//! that calls parked on a read run again in the order they came, that a
//! mailbox's head refills from the store as ACKs drain it, and that the
//! figures ACKs report keep the caps exact for messages RAM never held.

#[path = "on_demand_expiry_tests.rs"]
mod expiry_tests;

use super::*;
use crate::store::{
    Duplicate, Read, ReadAnswer, ReadDone, ReadOp, Removed, StoredMessage, StoredUser, WriteOp,
};

/// What a database would hold: accounts and unacknowledged messages.
#[derive(Default)]
struct FakeStore {
    users: Vec<StoredUser>,
    messages: Vec<StoredMessage>,
    /// (sender, client_id) → the first message's id and time.
    client_ids: Vec<(UserId, String, MessageId, Millis)>,
    /// Reads answered so far, in order.
    answered: Vec<ReadOp>,
}

impl FakeStore {
    fn name_of(&self, id: UserId) -> String {
        let user = self.users.iter().find(|u| u.id == id);
        user.map_or_else(String::new, |u| u.username.clone())
    }

    /// Stores `n` messages from `from` to `to`, ids from `first`.
    fn backlog(&mut self, from: UserId, to: UserId, first: MessageId, n: u64) {
        for id in first..first + n {
            self.messages.push(StoredMessage {
                id,
                from_id: from,
                to_id: to,
                from: self.name_of(from),
                to: self.name_of(to),
                ts: NOW,
                content: format!("m{id}"),
                client_id: None,
            });
        }
    }

    fn cost(m: &StoredMessage) -> usize {
        mailbox::cost(&reads::message_of(m))
    }

    fn answer(&mut self, op: &ReadOp) -> ReadAnswer {
        self.answered.push(op.clone());
        match op {
            ReadOp::History { .. } => ReadAnswer::History {
                messages: Vec::new(),
                more: false,
            },
            ReadOp::Conversations { .. } => ReadAnswer::Conversations {
                list: Vec::new(),
                more: false,
            },
            ReadOp::UserById(id) => {
                ReadAnswer::User(self.users.iter().find(|u| u.id == *id).cloned())
            }
            ReadOp::UserByName(name) => {
                ReadAnswer::User(self.users.iter().find(|u| *u.username == **name).cloned())
            }
            ReadOp::Mailbox(user) => {
                let (count, bytes) = self.figures(*user);
                ReadAnswer::Mailbox {
                    count,
                    bytes,
                    head: Vec::new(),
                }
            }
            ReadOp::MailboxAndHead {
                user,
                limit,
                max_bytes,
            } => {
                let (count, bytes) = self.figures(*user);
                ReadAnswer::Mailbox {
                    count,
                    bytes,
                    head: self.page(*user, 0, *limit, *max_bytes),
                }
            }
            ReadOp::Page {
                user,
                after,
                limit,
                max_bytes,
            } => ReadAnswer::Page(self.page(*user, *after, *limit, *max_bytes)),
        }
    }

    fn figures(&self, user: UserId) -> (usize, usize) {
        let mine = self.messages.iter().filter(|m| m.to_id == user);
        mine.fold((0, 0), |(n, b), m| (n + 1, b + Self::cost(m)))
    }

    fn page(&self, user: UserId, after: MessageId, limit: usize, max: usize) -> Vec<StoredMessage> {
        let mut bytes = 0;
        let mut page = Vec::new();
        for m in self
            .messages
            .iter()
            .filter(|m| m.to_id == user && m.id > after)
            .take(limit)
        {
            bytes += Self::cost(m) + 1;
            if bytes > max && !page.is_empty() {
                break;
            }
            page.push(m.clone());
        }
        page
    }

    /// Applies a batch as the writer does.
    fn commit(&mut self, batch: &Batch) -> Committed {
        let mut done = Committed::of(batch.seq, Ok(()));
        for op in &batch.ops {
            match op {
                WriteOp::Append(m) => {
                    let cid = m.client_id();
                    if let Some(cid) = &cid {
                        let known = self
                            .client_ids
                            .iter()
                            .find(|(s, c, _, _)| *s == m.from_id && c == cid);
                        if let Some(&(_, _, first_id, first_ts)) = known {
                            done.duplicates.push(Duplicate {
                                message_id: m.id,
                                first_id,
                                first_ts,
                            });
                            continue;
                        }
                        self.client_ids
                            .push((m.from_id, cid.to_string(), m.id, m.ts));
                    }
                    self.messages.push(StoredMessage {
                        id: m.id,
                        from_id: m.from_id,
                        to_id: m.to_id,
                        from: self.name_of(m.from_id),
                        to: self.name_of(m.to_id),
                        ts: m.ts,
                        content: m.content().to_string(),
                        client_id: cid.map(|c| c.to_string()),
                    });
                }
                WriteOp::Ack { user, upto } => {
                    let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.messages)
                        .into_iter()
                        .partition(|m| m.to_id == *user && m.id <= *upto);
                    self.messages = kept;
                    done.removed.push(Removed {
                        user: *user,
                        upto: *upto,
                        count: gone.len(),
                        bytes: gone.iter().map(Self::cost).sum(),
                        senders: Self::by_sender(&gone),
                    });
                }
                WriteOp::Expire { before, limit } => {
                    // The oldest in id order, stopping at a younger one.
                    let n = self.messages.iter().take(*limit);
                    let n = n.take_while(|m| m.ts < *before).count();
                    let gone: Vec<_> = self.messages.drain(..n).collect();
                    let mut users: Vec<UserId> = gone.iter().map(|m| m.to_id).collect();
                    users.dedup();
                    for user in users {
                        let mine: Vec<_> =
                            gone.iter().filter(|m| m.to_id == user).cloned().collect();
                        done.expired.push(Removed {
                            user,
                            upto: mine.last().map_or(0, |m| m.id),
                            count: mine.len(),
                            bytes: mine.iter().map(Self::cost).sum(),
                            senders: Self::by_sender(&mine),
                        });
                    }
                }
                _ => {}
            }
        }
        done
    }

    /// What `messages` cost, by sender.
    fn by_sender(messages: &[StoredMessage]) -> Vec<(UserId, usize)> {
        let mut senders: Vec<(UserId, usize)> = Vec::new();
        for m in messages {
            match senders.iter_mut().find(|(s, _)| *s == m.from_id) {
                Some((_, bytes)) => *bytes += Self::cost(m),
                None => senders.push((m.from_id, Self::cost(m))),
            }
        }
        senders
    }

    fn pending_bytes(&self) -> usize {
        self.messages.iter().map(Self::cost).sum()
    }
}

/// The read of a logged-in user's figures and head, with a window of
/// `window` messages (and 1 MiB).
fn head_read(user: UserId, window: usize) -> ReadOp {
    ReadOp::MailboxAndHead {
        user,
        limit: window,
        max_bytes: 1 << 20,
    }
}

/// A core that reads on demand, its fake store, and a clock.
struct OnDemand {
    b: Bench,
    store: FakeStore,
}

impl OnDemand {
    /// `account_cache` accounts and a window of `window` messages; the
    /// store holds alice, bob and carol, the core none of them.
    fn new(account_cache: usize, window: usize, mailbox_limit: usize) -> OnDemand {
        let settings = CoreSettings {
            on_demand: true,
            account_cache,
            mailbox_window: window,
            mailbox_window_bytes: 1 << 20,
            mailbox_limit,
            ..CoreSettings::default()
        };
        let mut b = Bench::new(settings);
        // Start as a real start does: nothing cached, the figures read.
        b.core.accounts = Accounts::new(account_cache);
        b.core.accounts.set_last_id(CAROL);
        let store = FakeStore {
            users: accounts(),
            ..FakeStore::default()
        };
        OnDemand { b, store }
    }

    /// The totals a start reads from `meta`.
    fn started_with_backlog(mut self) -> OnDemand {
        let total = self.store.messages.len();
        let bytes = self.store.pending_bytes();
        let last = self.store.messages.last().map_or(0, |m| m.id);
        self.b.core.mailboxes.add_totals(total, bytes);
        self.b.core.last_message_id = last;
        self
    }

    /// The reads asked so far, taken out of the outbox.
    fn asked(&mut self) -> Vec<Read> {
        std::mem::take(&mut self.b.out.reads)
    }

    /// Answers every read asked, oldest first, until none is left.
    fn answer_all(&mut self) {
        loop {
            let reads = self.asked();
            if reads.is_empty() {
                return;
            }
            for read in reads {
                self.answer(read);
            }
        }
    }

    fn answer(&mut self, read: Read) {
        let answer = self.store.answer(&read.op);
        let done = ReadDone {
            id: read.id,
            answer: Ok(answer),
        };
        self.b.core.on_read(done, self.b.now, &mut self.b.out);
    }

    /// Takes the open batch to the fake store and reports it committed.
    fn commit(&mut self) {
        let batch = self.b.core.take_batch().expect("something to commit");
        let done = self.store.commit(&batch);
        self.b.core.on_committed(done, self.b.now, &mut self.b.out);
    }

    /// AUTH as `user`, whose account is read first if need be.
    fn connect(&mut self, conn: ConnId, user: UserId) {
        self.b.core.open_session(conn);
        const YEAR: Millis = 365 * 24 * 3600 * 1000;
        let token = self
            .b
            .core
            .key
            .seal(user, u128::from(user), NOW, NOW + YEAR);
        let (t, handled) = self.b.call(
            conn,
            Request::Auth {
                token: Cow::Owned(token),
            },
        );
        if let Handled::Later { .. } = handled {
            self.answer_all();
            assert!(matches!(self.b.reply(t), Reply::User(_)));
        }
        self.answer_all();
        assert_eq!(self.b.core.session_user(conn), Some(user));
    }

    fn ack(&mut self, conn: ConnId, upto: MessageId) {
        let (t, handled) = self.b.call(conn, Request::Ack { upto });
        if let Handled::Later { .. } = handled {
            self.answer_all();
            if !self.b.has_reply(t) {
                self.commit();
            }
            assert!(matches!(self.b.reply(t), Reply::Acked));
        }
        self.answer_all();
    }

    /// SYNC without `after`, answered from the head or a page of the store.
    fn sync(&mut self, conn: ConnId, limit: usize) -> Vec<MessageId> {
        let args = SyncArgs {
            limit: Some(limit),
            ..SyncArgs::default()
        };
        let (t, handled) = self.b.sync(conn, args);
        match handled {
            Handled::Now(reply) => ids(reply),
            Handled::Later { .. } => {
                self.answer_all();
                ids(self.b.reply(t))
            }
        }
    }

    fn resident(&self) -> usize {
        self.b.core.stats().resident_messages
    }
}

#[test]
fn calls_parked_on_one_read_run_again_in_the_order_they_came() {
    let mut d = OnDemand::new(8, 4, 100);
    d.connect(10, ALICE);
    d.connect(11, CAROL);
    // Two SENDs to bob, whose account is not cached: one read for both.
    let (first, h1) = d.b.send(10, "bob", "one", None);
    let (second, h2) = d.b.send(11, "bob", "two", None);
    assert!(later(h1) && later(h2), "each holds its connection");
    let reads = d.asked();
    assert_eq!(reads.len(), 1, "asked once: {reads:?}");
    assert_eq!(reads[0].op, ReadOp::UserByName("bob".into()));
    // A LOOKUP of the same name from a third connection joins them.
    d.b.core.open_session(12);
    let (lookup, h3) = d.b.call(
        12,
        Request::Lookup {
            username: Cow::Borrowed("bob"),
        },
    );
    assert!(later(h3));
    assert!(d.asked().is_empty(), "the read is already asked");
    d.answer(reads[0].clone());
    // The LOOKUP is answered; both SENDs now wait for bob's figures.
    assert!(matches!(d.b.reply(lookup), Reply::User(u) if u.id == BOB));
    let reads = d.asked();
    assert_eq!(
        reads.iter().map(|r| &r.op).collect::<Vec<_>>(),
        [&ReadOp::Mailbox(BOB)]
    );
    d.answer(reads[0].clone());
    d.commit();
    // Ids follow the order the SENDs came in, and so do the replies.
    let order: Vec<_> = d.b.out.replies.iter().map(|(t, _)| *t).collect();
    assert_eq!(order, [first, second]);
    let (one, two) = (sent(d.b.reply(first)), sent(d.b.reply(second)));
    assert!(one < two, "{one} then {two}");
    assert_eq!(
        d.store.answered,
        [
            ReadOp::UserById(ALICE),
            head_read(ALICE, 4),
            ReadOp::UserById(CAROL),
            head_read(CAROL, 4),
            ReadOp::UserByName("bob".into()),
            ReadOp::Mailbox(BOB),
        ]
    );
}

#[test]
fn an_unknown_name_is_read_once_and_then_not_found() {
    let mut d = OnDemand::new(8, 4, 100);
    d.b.core.open_session(10);
    let (t, handled) = d.b.call(
        10,
        Request::Lookup {
            username: Cow::Borrowed("nobody"),
        },
    );
    assert!(later(handled));
    d.answer_all();
    failure(d.b.reply(t), ErrorCode::NotFound, "nobody");
    assert_eq!(d.store.answered, [ReadOp::UserByName("nobody".into())]);
}

#[test]
fn the_head_refills_from_the_store_as_acks_drain_it() {
    let mut d = OnDemand::new(8, 4, 100);
    d.store.backlog(ALICE, BOB, 1, 10);
    let mut d = d.started_with_backlog();
    d.connect(20, BOB);
    // The figures were read, then a page of the window's size.
    assert_eq!(d.resident(), 4);
    assert_eq!(d.b.core.stats().pending_messages, 10);
    assert_eq!(d.sync(20, 3), [1, 2, 3], "from the head");
    assert_eq!(
        d.sync(20, 100),
        (1..=10).collect::<Vec<_>>(),
        "beyond the head: a page of the store"
    );
    assert_eq!(d.resident(), 4, "a SYNC's page does not grow the head");

    d.ack(20, 3);
    // One message left in the head: it is refilled to the window.
    assert_eq!(d.resident(), 4);
    assert_eq!(d.sync(20, 4), [4, 5, 6, 7]);
    assert_eq!(d.b.core.stats().pending_messages, 7);
    d.ack(20, 7);
    assert_eq!(d.sync(20, 100), [8, 9, 10]);
    d.ack(20, 10);
    assert_eq!(d.resident(), 0);
    assert_eq!(d.b.core.stats().pending_messages, 0);
    assert!(d.sync(20, 100).is_empty());
    assert!(d.store.messages.is_empty());
}

#[test]
fn acks_beyond_the_head_report_what_they_removed_so_the_caps_stay_exact() {
    let mut d = OnDemand::new(8, 4, 10);
    d.store.backlog(ALICE, BOB, 1, 10);
    let mut d = d.started_with_backlog();
    d.connect(10, ALICE);
    d.connect(20, BOB);
    assert_eq!(d.resident(), 4);
    // Full: 10 messages, the cap.
    let (t, handled) = d.b.send(10, "bob", "over", None);
    let reply = match handled {
        Handled::Now(reply) => reply,
        Handled::Later { .. } => {
            d.answer_all();
            d.b.reply(t)
        }
    };
    failure(reply, ErrorCode::RateLimited, "10");

    // An ACK up to 6, beyond the 4 messages RAM holds: the store says it
    // removed 6 messages and their exact size.
    d.ack(20, 6);
    let stats = d.b.core.stats();
    assert_eq!(stats.pending_messages, 4);
    assert_eq!(stats.pending_bytes, d.store.pending_bytes(), "to the byte");
    // Exactly six more fit.
    for n in 0..6 {
        let (t, handled) = d.b.send(10, "bob", &format!("new {n}"), None);
        assert!(
            !later(handled),
            "nothing to read: only the commit is awaited"
        );
        d.commit();
        sent(d.b.reply(t));
    }
    let (_, handled) = d.b.send(10, "bob", "one too many", None);
    failure(now(handled), ErrorCode::RateLimited, "10");
    assert_eq!(d.b.core.stats().pending_bytes, d.store.pending_bytes());
    assert_eq!(d.store.messages.len(), 10);
}

#[test]
fn a_client_id_the_store_already_holds_names_the_first_message() {
    let mut d = OnDemand::new(8, 4, 100);
    d.connect(10, ALICE);
    // The first SEND with this client_id, stored before a restart: the
    // core's cache does not know it, the store does.
    d.store.backlog(ALICE, BOB, 1, 1);
    d.store.client_ids.push((ALICE, "c-1".into(), 1, NOW));
    let mut d = d.started_with_backlog();
    let (t, handled) = d.b.send(10, "bob", "again", Some("c-1"));
    assert!(later(handled));
    d.answer_all();
    d.commit();
    match d.b.reply(t) {
        Reply::Sent { id, ts } => assert_eq!((id, ts), (1, NOW)),
        other => panic!("expected the first SEND's reply, got {other:?}"),
    }
    assert_eq!(d.store.messages.len(), 1, "nothing stored");
    assert_eq!(d.b.core.stats().pending_messages, 1);
}

#[test]
fn an_auth_reads_the_account_and_the_whole_small_mailbox_in_one_round() {
    let mut d = OnDemand::new(8, 4, 100);
    d.store.backlog(ALICE, BOB, 1, 3);
    let mut d = d.started_with_backlog();
    d.b.core.open_session(20);
    const YEAR: Millis = 365 * 24 * 3600 * 1000;
    let token = d.b.core.key.seal(BOB, u128::from(BOB), NOW, NOW + YEAR);
    let (auth, handled) = d.b.call(
        20,
        Request::Auth {
            token: Cow::Owned(token),
        },
    );
    assert!(later(handled));
    // The account first, the mailbox with its head beside it: one round.
    let reads = d.asked();
    let ops: Vec<_> = reads.iter().map(|r| r.op.clone()).collect();
    assert_eq!(ops, [ReadOp::UserById(BOB), head_read(BOB, 4)]);
    for read in reads {
        d.answer(read);
    }
    assert!(matches!(d.b.reply(auth), Reply::User(u) if u.id == BOB));
    assert!(
        d.asked().is_empty(),
        "nothing more to read: {:?}",
        d.asked()
    );
    assert_eq!(d.resident(), 3, "the whole mailbox is in RAM");
    // The first SYNC is answered from RAM at once.
    let args = SyncArgs {
        after: Some(0),
        limit: Some(1000),
        ..SyncArgs::default()
    };
    let (_, handled) = d.b.sync(20, args);
    let Handled::Now(reply) = handled else {
        panic!("answered from RAM")
    };
    assert_eq!(ids(reply), [1, 2, 3]);
    // The SYNC that acknowledges them is answered after the commit, with
    // no read: the mailbox is known to be empty.
    let args = SyncArgs {
        after: Some(3),
        limit: Some(1000),
        ..SyncArgs::default()
    };
    let (t, handled) = d.b.sync(20, args);
    assert!(later(handled));
    d.commit();
    assert!(ids(d.b.reply(t)).is_empty());
    assert!(d.asked().is_empty(), "no read after the ACK");
    assert_eq!(d.b.core.stats().pending_messages, 0);
    assert_eq!(
        d.store.answered,
        [ReadOp::UserById(BOB), head_read(BOB, 4)],
        "the figures came with the head, not from a read of their own"
    );
}

#[test]
fn a_head_read_for_a_large_mailbox_keeps_the_window_and_refills_later() {
    let mut d = OnDemand::new(8, 4, 100);
    d.store.backlog(ALICE, BOB, 1, 10);
    let mut d = d.started_with_backlog();
    d.connect(20, BOB);
    // One read brought the figures and the window's first four messages.
    assert_eq!(d.store.answered, [ReadOp::UserById(BOB), head_read(BOB, 4)]);
    assert_eq!(d.resident(), 4);
    assert_eq!(d.b.core.stats().pending_messages, 10);
    assert_eq!(d.sync(20, 4), [1, 2, 3, 4]);
    d.ack(20, 4);
    assert_eq!(d.sync(20, 100), (5..=10).collect::<Vec<_>>());
}
