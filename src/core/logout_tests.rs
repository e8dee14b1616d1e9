//! LOGOUT and token expiry in the core: a revoked token stops opening
//! once the revocation is stored, and connections bound by it are told
//! and unbound; a bound connection whose token expires is told at its
//! expiry through `tick`.

use super::*;

const TTL: Millis = 60_000;

impl Bench {
    fn token(&self, user: UserId) -> String {
        self.core
            .key
            .seal(user, u128::from(user), self.now, self.now + TTL)
    }

    fn auth_with(&mut self, conn: ConnId, token: &str) -> Reply {
        let request = Request::Auth {
            token: Cow::Owned(token.into()),
        };
        now(self.call(conn, request).1)
    }

    fn bind(&mut self, conn: ConnId, token: &str) {
        self.core.open_session(conn);
        assert!(matches!(self.auth_with(conn, token), Reply::User(_)));
    }

    fn logout(&mut self, conn: ConnId, all: bool) -> Ticket {
        let (ticket, handled) = self.call(conn, Request::Logout { all });
        assert!(later(handled), "LOGOUT is a barrier");
        ticket
    }

    fn events(&mut self) -> Vec<(ConnId, SessionEvent)> {
        std::mem::take(&mut self.out.events)
    }
}

#[test]
fn logout_unbinds_every_connection_of_that_token_once_stored() {
    let mut b = Bench::new(CoreSettings::default());
    let shared = b.token(ALICE);
    b.bind(10, &shared);
    b.bind(11, &shared);
    let other = b.token(ALICE);
    b.bind(12, &other);

    let t = b.logout(10, false);
    assert!(b.events().is_empty(), "nothing before the commit");
    assert_eq!(b.core.session_user(11), Some(ALICE));
    b.commit(true);
    assert!(matches!(b.reply(t), Reply::LoggedOut { all: false, .. }));
    assert_eq!(
        b.events(),
        [(11, SessionEvent::Revoked)],
        "not to the asker"
    );
    assert_eq!(b.core.session_user(10), None);
    assert_eq!(b.core.session_user(11), None);
    assert_eq!(b.core.session_user(12), Some(ALICE), "another token");
    failure(
        now(b.send(11, "bob", "still me?", None).1),
        ErrorCode::Unauthorized,
        "log in first",
    );
    b.core.open_session(13);
    failure(b.auth_with(13, &shared), ErrorCode::Unauthorized, "revoked");
    assert!(matches!(b.auth_with(10, &other), Reply::User(_)));
}

#[test]
fn logout_all_voids_every_earlier_token_of_the_account_only() {
    let mut b = Bench::new(CoreSettings::default());
    let (first, second) = (b.token(ALICE), b.token(ALICE));
    b.bind(10, &first);
    b.bind(11, &second);
    b.connect(12, BOB);
    let t = b.logout(10, true);
    b.commit(true);
    assert!(matches!(b.reply(t), Reply::LoggedOut { all: true, .. }));
    assert_eq!(b.events(), [(11, SessionEvent::Revoked)]);
    b.core.open_session(13);
    for token in [&first, &second] {
        failure(b.auth_with(13, token), ErrorCode::Unauthorized, "revoked");
    }
    assert_eq!(b.core.session_user(12), Some(BOB));
    b.now += 1;
    let later_token = b.token(ALICE);
    assert!(matches!(b.auth_with(13, &later_token), Reply::User(_)));
}

#[test]
fn logout_with_a_token_argument_revokes_that_token() {
    let mut b = Bench::new(CoreSettings::default());
    let token = b.token(ALICE);
    b.bind(10, &token);
    b.core.open_session(11);
    b.seq += 1;
    let ticket = Ticket::new(11, b.seq);
    let call = Call {
        token: Some(Cow::Owned(token.clone())),
        ..Call::new(Request::Logout { all: false })
    };
    later(b.core.handle(ticket, call, b.now, &mut b.out));
    b.commit(true);
    assert!(matches!(
        b.reply(ticket),
        Reply::LoggedOut { all: false, .. }
    ));
    assert_eq!(b.events(), [(10, SessionEvent::Revoked)]);
}

#[test]
fn logout_needs_a_token_and_a_failed_commit_revokes_nothing() {
    let mut b = Bench::new(CoreSettings::default());
    b.core.open_session(10);
    let (_, handled) = b.call(10, Request::Logout { all: false });
    failure(now(handled), ErrorCode::Unauthorized, "log in first");
    let token = b.token(ALICE);
    b.bind(10, &token);
    let t = b.logout(10, false);
    b.commit(false);
    failure(b.reply(t), ErrorCode::Unavailable, "try again");
    assert_eq!(b.core.session_user(10), Some(ALICE));
    b.core.open_session(11);
    assert!(matches!(b.auth_with(11, &token), Reply::User(_)));
}

#[test]
fn revocations_come_back_from_the_store() {
    let key = TokenKey::random();
    let issued = key.issue(ALICE, u128::from(ALICE), NOW, NOW + TTL);
    let bob = key.seal(BOB, u128::from(BOB), NOW, NOW + TTL);
    let mut b = Bench::restored(
        CoreSettings::default(),
        Snapshot {
            revoked_tokens: vec![(issued.id, NOW + TTL, ALICE)],
            // LOGOUT all is stored with the account.
            users: accounts()
                .into_iter()
                .map(|u| StoredUser {
                    tokens_valid_from: if u.id == BOB { NOW + 1 } else { 0 },
                    ..u
                })
                .collect(),
            ..Snapshot::default()
        },
    );
    b.core.key = key;
    b.core.open_session(10);
    failure(
        b.auth_with(10, &issued.token),
        ErrorCode::Unauthorized,
        "revoked",
    );
    failure(b.auth_with(10, &bob), ErrorCode::Unauthorized, "revoked");
}

#[test]
fn a_bound_connection_is_told_when_its_token_expires() {
    let mut b = Bench::new(CoreSettings::default());
    let token = b.token(ALICE);
    b.bind(10, &token);
    b.bind(11, &token);
    assert!(b.core.next_deadline() <= NOW + TTL);
    b.tick(NOW + 1000);
    // Connection 11 binds again with a newer token: its deadline moves.
    let newer = b.token(ALICE);
    b.auth_with(11, &newer);
    b.tick(NOW + TTL - 1);
    assert!(b.events().is_empty());
    b.tick(NOW + TTL);
    assert_eq!(b.events(), [(10, SessionEvent::Expired)]);
    assert_eq!(b.core.session_user(10), None);
    assert_eq!(b.core.session_user(11), Some(ALICE));
    b.tick(NOW + 1000 + TTL);
    assert_eq!(b.events(), [(11, SessionEvent::Expired)]);
    assert_eq!(b.core.stats().users_online, 0);
}

#[test]
fn an_expiring_connection_ends_its_long_poll() {
    let mut b = Bench::new(CoreSettings::default());
    let token = b.token(ALICE);
    b.bind(10, &token);
    let (poll, handled) = b.sync(10, waiting(TTL * 2));
    later(handled);
    b.tick(NOW + TTL);
    assert!(ids(b.reply(poll)).is_empty());
    assert_eq!(b.events(), [(10, SessionEvent::Expired)]);
}

#[test]
fn past_its_share_of_revocations_a_logout_ends_every_session() {
    let mut b = Bench::new(CoreSettings {
        revocations_per_account: 2,
        ..CoreSettings::default()
    });
    let kept = b.token(ALICE);
    for (conn, capped) in [(10, false), (11, false), (12, true)] {
        let token = b.token(ALICE);
        b.bind(conn, &token);
        let t = b.logout(conn, false);
        b.commit(true);
        match b.reply(t) {
            Reply::LoggedOut { all, capped: c } => assert_eq!((all, c), (capped, capped)),
            other => panic!("{other:?}"),
        }
        let expected = if capped { 0 } else { conn - 9 };
        assert_eq!(
            b.core.sessions.revocations.len(),
            expected,
            "one by one, then none"
        );
    }
    b.core.open_session(13);
    failure(b.auth_with(13, &kept), ErrorCode::Unauthorized, "revoked");
    b.now += 1;
    let later_token = b.token(ALICE);
    assert!(matches!(b.auth_with(13, &later_token), Reply::User(_)));
}
