//! Password hashing off the event loop. A few worker threads take jobs from
//! a `crossbeam-channel`, run argon2id, send the result back on another
//! channel and wake the loop with its `mio::Waker`.
//!
//! The channel is never a queue: jobs wait in the core's fair queue
//! (`core::password_queue`), which hands over only as many as there are
//! idle workers, so a job can still be dropped while it waits.

use crate::histogram::Histogram;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
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
        hash: Result<String, String>,
    },
    Verified {
        job: JobId,
        ok: bool,
    },
}

/// The argon2id instance every hash uses: the crate's defaults (m=19 MiB,
/// t=2, p=1), the OWASP-recommended minimum.
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes a password into a PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
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

/// Each argon2 run allocates its 19 MiB working memory and frees it after.
/// glibc's malloc raises its mmap threshold the first time such a block is
/// freed, and from then on serves these blocks from heap arenas that it
/// keeps: a server that handled a few logins would hold hundreds of MiB it
/// no longer uses. A fixed threshold makes every block above 1 MiB its own
/// mapping, returned to the system when freed.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tuning parameter; it is called
    // before the worker threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
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
        } => HashDone::Verified {
            job,
            ok: verify_password(&password, &hash),
        },
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
    }
}
