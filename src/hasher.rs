//! Password hashing off the event loop. A few worker threads take jobs from
//! a `crossbeam-channel`, run argon2id, send the result back on another
//! channel and wake the loop with its `mio::Waker`.
//!
//! The channel is never a queue: jobs wait in the core's fair queue
//! (`core::logins::password_queue`), which hands over only as many as there are
//! idle workers, so a job can still be dropped while it waits.

use crate::histogram::Histogram;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use std::sync::Arc;
use std::thread;

/// Identifies a job so the core can match its result.
pub type JobId = u64;

/// Work for a password worker.
#[derive(Debug)]
pub enum HashJob {
    /// Hash a new password (REGISTER).
    Hash { job: JobId, password: String },
    /// Check a password against a stored PHC hash (LOGIN). Unknown users are
    /// checked against a dummy hash so both cases take the same time.
    Verify {
        job: JobId,
        password: String,
        hash: Arc<str>,
    },
}

/// A finished job.
#[derive(Debug)]
pub enum HashDone {
    Hashed {
        job: JobId,
        hash: Result<String, HashError>,
    },
    Verified {
        job: JobId,
        ok: bool,
        /// The password hashed again with today's parameters, when it was
        /// right and its stored hash used others (weaker, older ones).
        rehashed: Option<String>,
    },
}

/// Memory of each hash in KiB (46 MiB), passes and lanes: OWASP's first
/// recommendation for argon2id. They are written into every PHC string, so
/// hashes made with other parameters still verify, and are upgraded at
/// their account's next successful LOGIN.
pub const M_COST_KIB: u32 = 47_104;
pub const T_COST: u32 = 1;
pub const P_COST: u32 = 1;

/// The argon2id instance every new hash uses.
fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Whether a stored PHC string was made otherwise than [`argon2`] makes
/// hashes now (another algorithm, version or cost), so it is upgraded.
pub fn needs_rehash(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false; // not a hash at all: nothing to verify, nothing to upgrade
    };
    let current = argon2();
    let params = Params::try_from(&parsed);
    parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed.version != Some(Version::V0x13.into())
        || params.map_or(true, |p| {
            (p.m_cost(), p.t_cost(), p.p_cost())
                != (
                    current.params().m_cost(),
                    current.params().t_cost(),
                    current.params().p_cost(),
                )
        })
}

/// Why a password could not be hashed (argon2's own reason).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HashError(argon2::password_hash::Error);

/// Hashes a password into a PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(HashError)
}

/// Whether `password` matches the PHC string `hash` (with the parameters
/// the string names).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks `password` against `hash`; when it matches and `hash` was made
/// with other parameters, also hashes it anew with today's.
fn verify_and_upgrade(password: &str, hash: &str) -> (bool, Option<String>) {
    let ok = verify_password(password, hash);
    if !ok || !needs_rehash(hash) {
        return (ok, None);
    }
    match hash_password(password) {
        Ok(new) => (true, Some(new)),
        Err(e) => {
            log::error!("upgrading a password hash failed: {e}");
            (true, None)
        }
    }
}

/// A hash with the same cost as real ones, for LOGIN of unknown users.
pub fn dummy_hash() -> Arc<str> {
    hash_password("goTalk dummy password")
        .expect("hashing a constant works")
        .into()
}

/// Handles to the worker pool.
pub struct Hasher {
    jobs: Sender<HashJob>,
    pub results: Receiver<HashDone>,
    /// How long each hash or check took on its worker (for metrics).
    pub seconds: Arc<Histogram>,
}

/// Each argon2 run allocates its 46 MiB working memory and frees it after.
/// glibc's malloc raises its mmap threshold the first time such a block is
/// freed, and from then on serves these blocks from heap arenas that it
/// keeps: a server that handled a few logins would hold hundreds of MiB it
/// no longer uses. A fixed threshold makes every block above 1 MiB its own
/// mapping, returned to the system when freed.
///
/// Fixing the mmap threshold also stops glibc from raising its trim
/// threshold (it would follow the mmap threshold up, to twice it), which
/// then stays at 128 KiB: every burst of large messages (a 60 KB SEND of
/// control characters is 360 KB as JSON, then as much again in the push)
/// gave its heap back at once and faulted it in again for the next one,
/// about 165 page faults a message on the loop. Up to 16 MiB of free heap
/// is kept instead: a third less loop time for such messages.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tuning parameter; it is called
    // before the worker threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

impl Hasher {
    /// Starts `threads` workers that wake `waker` after each result.
    pub fn start(threads: usize, waker: Arc<Waker>) -> Hasher {
        return_large_blocks_to_the_system();
        let (jobs, job_rx) = crossbeam_channel::unbounded::<HashJob>();
        let (done_tx, results) = crossbeam_channel::unbounded();
        let seconds = Arc::new(Histogram::new(crate::histogram::SECONDS));
        for n in 0..threads.max(1) {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            let waker = waker.clone();
            let timing = seconds.clone();
            thread::Builder::new()
                .name(format!("gotalk-hash-{n}"))
                .spawn(move || {
                    for job in job_rx {
                        let started = std::time::Instant::now();
                        let done = run(job);
                        timing.observe(started.elapsed().as_secs_f64());
                        if done_tx.send(done).is_err() {
                            break;
                        }
                        if let Err(e) = waker.wake() {
                            log::error!("password worker could not wake the loop: {e}");
                        }
                    }
                })
                .expect("spawning a password worker");
        }
        Hasher {
            jobs,
            results,
            seconds,
        }
    }

    pub fn submit(&self, job: HashJob) {
        // The receivers live as long as the workers, which never exit first.
        let _ = self.jobs.send(job);
    }
}

fn run(job: HashJob) -> HashDone {
    match job {
        HashJob::Hash { job, password } => HashDone::Hashed {
            job,
            hash: hash_password(&password),
        },
        HashJob::Verify {
            job,
            password,
            hash,
        } => {
            let (ok, rehashed) = verify_and_upgrade(&password, &hash);
            HashDone::Verified { job, ok, rehashed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_salts_differ() {
        let a = hash_password("secret").unwrap();
        let b = hash_password("secret").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_password("secret", &a));
        assert!(!verify_password("Secret", &a));
        assert!(!verify_password("secret", "not a hash"));
        assert!(a.contains("$m=47104,t=1,p=1$"), "{a}");
        assert!(!needs_rehash(&a));
    }

    /// A hash as goTalk made them before (the crate's defaults then).
    fn old_hash(password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(19_456, 2, 1, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_hash_with_older_parameters_verifies_and_is_upgraded_when_right() {
        let old = old_hash("old-password");
        assert!(old.contains("$m=19456,t=2,p=1$"), "{old}");
        assert!(needs_rehash(&old));
        assert_eq!(verify_and_upgrade("wrong-password", &old), (false, None));
        let (ok, new) = verify_and_upgrade("old-password", &old);
        assert!(ok);
        let new = new.expect("upgraded");
        assert!(new.contains("$m=47104,t=1,p=1$"), "{new}");
        assert!(verify_password("old-password", &new));
        let current = hash_password("new-password").unwrap();
        assert_eq!(verify_and_upgrade("new-password", &current), (true, None));
    }
}
