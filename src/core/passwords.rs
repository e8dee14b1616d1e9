//! Password jobs seen from the core: LOGIN and REGISTER queue their argon2
//! work in the fair password queue (kept by the logins owner, `logins.rs`),
//! jobs go to the workers only as workers become idle, and a job whose
//! connection has gone is dropped before it is hashed; what it held (a
//! name reserved in the account cache) is given back here.

use super::logins::HashWait;
use super::{Core, Outbox};
use crate::error::{ErrorCode, Failure};
use crate::hasher::{HashJob, JobId};
use crate::request::Reply;
use crate::ConnId;

impl Core {
    /// Whether a password job of `conn` may be queued now.
    pub(super) fn check_password_room(&self, conn: ConnId) -> Result<(), Failure> {
        self.logins.check_room(conn)
    }

    /// Queues a password job and hands it to a worker if one is idle.
    pub(super) fn queue_password_job(
        &mut self,
        wait: HashWait,
        job: JobId,
        work: HashJob,
        out: &mut Outbox,
    ) {
        self.logins.queue(wait, job, work, out);
    }

    /// A worker finished `job`: what waited for it (`None` if its
    /// connection has gone).
    pub(super) fn password_job_done(&mut self, job: JobId, out: &mut Outbox) -> Option<HashWait> {
        self.logins.job_done(job, out)
    }

    /// The connection closed: its jobs are forgotten (nobody reads their
    /// replies), and what they held is given back.
    pub(super) fn drop_password_jobs(&mut self, conn: ConnId) {
        for wait in self.logins.close(conn) {
            self.abandon(wait);
        }
    }

    /// The client stopped sending: its jobs that have not started are
    /// answered `unavailable` at once, so the connection can finish and
    /// close without waiting for hashes nobody will act on.
    pub(super) fn cancel_waiting_password_jobs(&mut self, conn: ConnId, out: &mut Outbox) {
        for wait in self.logins.cancel_waiting(conn) {
            let ticket = wait.ticket();
            self.abandon(wait);
            let failure = Failure::new(
                ErrorCode::Unavailable,
                "the connection closed before the password was checked",
            );
            out.replies.push((ticket, Reply::Error(failure)));
        }
    }

    /// Undoes what a password job held: a registration's name reservation.
    fn abandon(&mut self, wait: HashWait) {
        if let HashWait::Register {
            username, charge, ..
        } = wait
        {
            self.accounts.release(&username);
            self.logins.throttle.register_failed(charge);
        }
    }

    /// Password jobs waiting for a worker, and running.
    pub fn password_jobs(&self) -> (usize, usize) {
        self.logins.jobs()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CoreSettings, Handled, Ticket};
    use super::*;
    use crate::hasher::HashDone;
    use crate::request::{Call, Request};
    use crate::token::TokenKey;
    use std::borrow::Cow;
    use std::net::IpAddr;

    const NOW: u64 = 1_700_000_000_000;

    fn core(workers: usize, total: usize, per_address: usize) -> Core {
        let settings = CoreSettings {
            token_ttl_ms: 60_000,
            mailbox_limit: 100,
            hash_workers: workers,
            hash_queue: total,
            hash_queue_per_address: per_address,
            ..CoreSettings::default()
        };
        Core::new(settings, TokenKey::from_bytes(&[7; 32]), "dummy".into())
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn ticket(conn: ConnId, seq: u64) -> Ticket {
        Ticket::new(conn, seq)
    }

    fn login(core: &mut Core, t: Ticket, password: &str, out: &mut Outbox) -> Handled {
        let call = Call::new(Request::Login {
            username: Cow::Borrowed("alice"),
            password: Cow::Owned(password.to_string()),
        });
        core.handle(t, call, NOW, out)
    }

    fn register(core: &mut Core, t: Ticket, name: &str, out: &mut Outbox) -> Handled {
        let call = Call::new(Request::Register {
            username: Cow::Owned(name.to_string()),
            password: Cow::Borrowed("pw-secret"),
        });
        core.handle(t, call, NOW, out)
    }

    /// The ids of the jobs handed to workers, emptying the outbox's list.
    fn released(out: &mut Outbox) -> Vec<JobId> {
        out.hash_jobs
            .drain(..)
            .map(|j| match j {
                HashJob::Hash { job, .. } | HashJob::Verify { job, .. } => job,
            })
            .collect()
    }

    fn error_of(reply: &Reply) -> (ErrorCode, String) {
        match reply {
            Reply::Error(f) => (f.code, f.message.to_string()),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn jobs_reach_the_workers_only_as_workers_become_idle() {
        let mut core = core(1, 100, 100);
        let mut out = Outbox::default();
        for conn in 0..3 {
            core.open_connection(conn, ip(1));
            let handled = login(&mut core, ticket(conn, conn as u64), "pw-secret", &mut out);
            assert!(matches!(handled, Handled::Later { barrier: true }));
        }
        assert_eq!(released(&mut out), [1], "one worker, one job out");
        assert_eq!(core.password_jobs(), (2, 1));
        let done = HashDone::Verified {
            job: 1,
            ok: false,
            rehashed: None,
        };
        core.on_hash_done(done, NOW, &mut out);
        assert_eq!(released(&mut out), [2]);
        assert_eq!(out.replies.len(), 1);
        assert_eq!(out.replies[0].0, ticket(0, 0));
        assert_eq!(error_of(&out.replies[0].1).0, ErrorCode::Unauthorized);
    }

    #[test]
    fn jobs_of_a_closed_connection_are_never_hashed_nor_answered() {
        let mut core = core(1, 100, 100);
        let mut out = Outbox::default();
        for conn in 0..3 {
            core.open_connection(conn, ip(1));
            login(
                &mut core,
                ticket(conn, 10 + conn as u64),
                "pw-secret",
                &mut out,
            );
        }
        assert_eq!(released(&mut out), [1]);
        core.close_session(0); // its job runs
        core.close_session(1); // its job waits
        assert_eq!(core.password_jobs(), (1, 1));
        core.on_hash_done(
            HashDone::Verified {
                job: 1,
                ok: true,
                rehashed: None,
            },
            NOW,
            &mut out,
        );
        assert!(out.replies.is_empty(), "nobody is there to answer");
        assert_eq!(released(&mut out), [3], "job 2 was dropped before hashing");
    }

    #[test]
    fn a_peer_that_stopped_sending_gets_its_waiting_jobs_answered_unavailable() {
        let mut core = core(1, 100, 100);
        let mut out = Outbox::default();
        core.open_connection(1, ip(1));
        core.open_connection(2, ip(1));
        login(&mut core, ticket(1, 1), "pw-secret", &mut out);
        login(&mut core, ticket(2, 2), "pw-secret", &mut out);
        assert_eq!(released(&mut out), [1]);
        core.peer_closed(1, NOW, &mut out);
        assert!(out.replies.is_empty(), "a running job is left to finish");
        core.peer_closed(2, NOW, &mut out);
        assert_eq!(out.replies.len(), 1);
        let (code, message) = error_of(&out.replies[0].1);
        assert_eq!(
            (out.replies[0].0, code),
            (ticket(2, 2), ErrorCode::Unavailable)
        );
        assert!(message.contains("closed before the password was checked"));
        assert_eq!(core.password_jobs(), (0, 1));
    }

    #[test]
    fn a_dropped_registration_gives_its_name_back() {
        let mut core = core(1, 100, 100);
        let mut out = Outbox::default();
        core.open_connection(1, ip(1));
        core.open_connection(2, ip(1));
        register(&mut core, ticket(1, 1), "first", &mut out);
        register(&mut core, ticket(2, 2), "carol", &mut out); // waits
        core.close_session(2);
        core.open_connection(3, ip(1));
        let handled = register(&mut core, ticket(3, 3), "carol", &mut out);
        assert!(matches!(handled, Handled::Later { .. }), "{handled:?}");
    }

    #[test]
    fn limits_are_rate_limited_naming_their_flag() {
        let mut core = core(1, 3, 2);
        let mut out = Outbox::default();
        for conn in 0..4 {
            core.open_connection(conn, ip(2));
        }
        core.open_connection(9, ip(3));
        for conn in 0..3 {
            login(&mut core, ticket(conn, conn as u64), "pw-secret", &mut out);
        }
        // One runs, two wait: 127.0.0.2 is at its limit.
        let Handled::Now(reply) = login(&mut core, ticket(3, 3), "pw-secret", &mut out) else {
            panic!("expected a refusal");
        };
        let (code, message) = error_of(&reply);
        assert_eq!(code, ErrorCode::RateLimited);
        assert!(message.contains("--hash-queue-per-address 2"), "{message}");
        // Another address still gets in, up to the global limit.
        let handled = login(&mut core, ticket(9, 9), "pw-secret", &mut out);
        assert!(matches!(handled, Handled::Later { .. }));
        let Handled::Now(reply) = register(&mut core, ticket(9, 10), "dave", &mut out) else {
            panic!("expected a refusal");
        };
        let (code, message) = error_of(&reply);
        assert_eq!(code, ErrorCode::RateLimited);
        assert!(message.contains("--hash-queue 3"), "{message}");
    }

    #[test]
    fn a_login_password_over_the_cap_is_refused_before_hashing() {
        let mut core = core(1, 100, 100);
        let mut out = Outbox::default();
        core.open_connection(1, ip(1));
        let long = "x".repeat(crate::config::limits::MAX_PASSWORD_BYTES + 1);
        let Handled::Now(reply) = login(&mut core, ticket(1, 1), &long, &mut out) else {
            panic!("expected a refusal");
        };
        assert_eq!(error_of(&reply).0, ErrorCode::BadRequest);
        assert!(out.hash_jobs.is_empty());
    }
}
