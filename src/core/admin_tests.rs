//! `gotalk admin`'s requests in the core (`commands/admin.rs`), with the
//! memory store's rules: a disabled account's LOGIN fails like a wrong
//! password and its connections are told `revoked` once stored; a delete
//! takes the mailbox out of the totals and the account out of the cache,
//! and its name can be registered again.

use super::*;
use crate::admin::{AdminReply, AdminRequest};
use crate::hasher::HashJob;

impl Bench {
    fn admin(&mut self, request: AdminRequest) -> (Ticket, Handled) {
        // Admin requests come with connection ids no socket uses.
        self.call(1 << 40, Request::Admin(Box::new(request)))
    }

    /// Finishes the password jobs queued so far, each as `verify` says
    /// (a LOGIN's) or with a hash of its own (a new password's).
    fn finish_hashes(&mut self, verify: bool) {
        for job in std::mem::take(&mut self.out.hash_jobs) {
            let done = match job {
                HashJob::Verify { job, .. } => HashDone::Verified {
                    job,
                    ok: verify,
                    rehashed: None,
                },
                HashJob::Hash { job, password } => HashDone::Hashed {
                    job,
                    hash: Ok(format!("hash-of-{password}")),
                },
            };
            self.core.on_hash_done(done, self.now, &mut self.out);
        }
    }
}

fn done(reply: Reply) -> String {
    match reply {
        Reply::Admin(admin) => match *admin {
            AdminReply::Done { what } => what,
            other => panic!("expected done, got {other:?}"),
        },
        other => panic!("expected an admin reply, got {other:?}"),
    }
}

#[test]
fn a_disabled_account_is_told_revoked_and_its_login_fails_like_a_wrong_password() {
    let mut b = Bench::new(CoreSettings::default());
    b.connect(10, ALICE);
    let (t, handled) = b.admin(AdminRequest::Disable {
        name: "alice".into(),
    });
    assert!(later(handled));
    assert!(b.out.events.is_empty(), "nothing before the commit");
    b.commit(true);
    assert_eq!(done(b.reply(t)), "disabled alice (id 1)");
    assert_eq!(
        std::mem::take(&mut b.out.events),
        [(10, SessionEvent::Revoked)]
    );
    assert_eq!(b.core.session_user(10), None);
    // The password is checked against the dummy hash, whatever it is.
    b.core.open_session(11);
    let login = Request::Login {
        username: Cow::Borrowed("alice"),
        password: Cow::Borrowed("anything"),
    };
    let (t, _) = b.call(11, login);
    match &b.out.hash_jobs[..] {
        [HashJob::Verify { hash, .. }] => assert_eq!(&**hash, "dummy"),
        other => panic!("one check against the dummy hash: {other:?}"),
    }
    b.finish_hashes(false);
    failure(
        b.reply(t),
        ErrorCode::Unauthorized,
        "wrong username or password",
    );
    // Enabled: the same hash as before.
    let (t, _) = b.admin(AdminRequest::Enable {
        name: "alice".into(),
    });
    b.commit(true);
    assert_eq!(done(b.reply(t)), "enabled alice (id 1)");
    assert_eq!(
        &*b.core.accounts.get(ALICE).unwrap().password_hash,
        "unused"
    );
}

#[test]
fn a_delete_empties_the_mailbox_from_the_totals_and_frees_the_name() {
    let mut b = Bench::new(CoreSettings::default());
    b.connect(10, ALICE);
    let (t, _) = b.send(10, "bob", "for bob", None);
    b.commit(true);
    sent(b.reply(t));
    assert_eq!(b.core.stats().pending_messages, 1);
    let (t, handled) = b.admin(AdminRequest::Delete { name: "bob".into() });
    assert!(later(handled));
    b.commit(true);
    assert_eq!(done(b.reply(t)), "deleted bob (id 2)");
    let stats = b.core.stats();
    assert_eq!((stats.pending_messages, stats.pending_bytes), (0, 0));
    assert!(b.core.accounts.get(BOB).is_none());
    // The name again: a new account, with a new id.
    let (t, _) = b.admin(AdminRequest::Add {
        name: "bob".into(),
        password: "a-new-password".into(),
    });
    b.finish_hashes(true);
    b.commit(true);
    match b.reply(t) {
        Reply::User(user) => assert!(user.id > CAROL, "{user:?}"),
        other => panic!("expected the new account, got {other:?}"),
    }
}
