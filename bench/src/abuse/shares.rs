//! The attacks on fair shares: a send-rate flood from one account, a
//! fan-out spam run to many fresh users, and a connect storm from one
//! address. Like the other attacks they speak the wire protocol only, from
//! the attacker's address (127.0.0.1), while the bystander and the new
//! clients are on 127.0.0.2, so every per-address limit sees two hosts.

use super::attacks::{
    attacker_connect, cycles, genuine_login, pump, storm_connect, LOGIN_RETRY_PAUSE,
};
use super::probe::{Guard, Tally};
use super::{Ctx, Outcome};
use crate::thousands;
use crate::wire;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Fresh users the fan-out run writes to (more than the default
/// `--new-recipients-per-hour`, 100).
const RECIPIENTS: usize = 150;
/// REGISTERs pipelined at once (under `--hash-queue-per-address`, 16).
const REGISTER_CHUNK: usize = 16;

/// Attack 8: one account SENDs one-byte messages to itself as fast as the
/// server answers, 256 in flight, on a token connection.
pub fn send_rate(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    const MAX: u64 = 3_000_000;
    let stream = attacker_connect(ctx.addr)?;
    let (user, token) = (&ctx.user, &ctx.token);
    let p = pump(stream, guard, 256, MAX, false, &|n, out| {
        let _ = writeln!(
            out,
            "{{\"cmd\":\"send\",\"to\":\"{user}\",\"content\":\"flood {n}\",\"token\":\"{token}\"}}"
        );
    })?;
    let mut notes = vec![format!(
        "JSON SENDs of a few bytes to the attacker's own user, 256 in flight, never \
         waiting for retry_after_ms; {} stored, {} SENDs in all",
        thousands(p.ok as f64),
        thousands(p.sent as f64)
    )];
    if let Some((n, code)) = &p.first_error_at {
        notes.push(format!("first refusal ({code}) at SEND {n}"));
    }
    if p.unanswered > 0 {
        notes.push(format!("{} SENDs unanswered", p.unanswered));
    }
    Ok(Outcome {
        ops: format!("{} SENDs", thousands(p.sent as f64)),
        errors: p.errors,
        notes,
        ..Outcome::default()
    })
}

/// The fan-out run's recipients, by name.
fn recipients() -> Vec<String> {
    (0..RECIPIENTS).map(|n| format!("fan{n}")).collect()
}

/// Registers the fan-out run's [`RECIPIENTS`] fresh users, before the
/// attack's time (each is a password hash on the helper threads).
pub fn register_recipients(ctx: &Ctx) -> Result<(), String> {
    for chunk in recipients().chunks(REGISTER_CHUNK) {
        wire::register_all(ctx.addr, chunk)?;
    }
    Ok(())
}

/// Attack 9: a spam run. The attacker writes one message to each of
/// [`RECIPIENTS`] fresh users in turn, round after round, 64 in flight,
/// until the time is up.
pub fn fan_out(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    let names = recipients();
    let stream = attacker_connect(ctx.addr)?;
    let token = &ctx.token;
    let p = pump(stream, guard, 64, u64::MAX, false, &|n, out| {
        let to = &names[n as usize % names.len()];
        let _ = writeln!(
            out,
            "{{\"cmd\":\"send\",\"to\":\"{to}\",\"content\":\"buy now {n}\",\"token\":\"{token}\"}}"
        );
    })?;
    let notes = vec![format!(
        "{RECIPIENTS} fresh users (registered before the attack), one JSON SEND to each \
         in turn, round after round, 64 in flight; {} stored",
        thousands(p.ok as f64)
    )];
    Ok(Outcome {
        ops: format!("{} SENDs to {RECIPIENTS} users", thousands(p.sent as f64)),
        errors: p.errors,
        notes,
        ..Outcome::default()
    })
}

/// One storm cycle: connect, PING, look 2 ms for the PONG, close.
fn storm_once(addr: SocketAddr, tally: &mut Tally) -> Result<(), String> {
    let Some(mut s) = storm_connect(addr, tally)? else {
        return Ok(());
    };
    if s.write_all(b"PING\n").is_err() {
        tally.add("closed at once");
        return Ok(());
    }
    let _ = s.set_read_timeout(Some(Duration::from_millis(2)));
    let mut buf = [0u8; 128];
    match s.read(&mut buf) {
        Ok(0) => tally.add("closed at once"),
        Ok(_) => tally.add("answered"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => tally.add("closed at once"),
        Err(_) => tally.add("no reply in 2 ms"),
    }
    Ok(())
}

/// Attack 10: a connect storm from 32 threads (connect, PING, close) while
/// genuine users log in from the other address, as in the login flood.
pub fn connect_storm(ctx: &Ctx, guard: &Guard) -> Result<Outcome, String> {
    const THREADS: usize = 32;
    const MAX: u64 = 1_000_000;
    const SAMPLES: usize = 4;
    let stop = AtomicBool::new(false);
    let mut samples = Vec::new();
    let c = std::thread::scope(|s| {
        let storm = s.spawn(|| {
            cycles(
                THREADS,
                MAX,
                &|| !stop.load(Ordering::Relaxed) && guard.go(),
                &|_, tally| storm_once(ctx.addr, tally),
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        while samples.len() < SAMPLES && (samples.is_empty() || guard.go()) {
            samples.push(genuine_login(ctx.addr, &ctx.bystander));
            std::thread::sleep(Duration::from_millis(300));
        }
        guard.wait_out();
        stop.store(true, Ordering::Relaxed);
        storm.join().expect("the storm threads do not panic")
    });
    let mut notes = vec![format!(
        "{THREADS} threads: connect, PING, look 2 ms for the PONG, close; {} genuine \
         logins from 127.0.0.2 meanwhile, each retrying `rate_limited` every {} ms",
        samples.len(),
        LOGIN_RETRY_PAUSE.as_millis()
    )];
    notes.extend(c.note("the storm"));
    let answered = c.errors.count("answered");
    let mut errors = c.errors;
    errors.0.remove("answered");
    Ok(Outcome {
        ops: format!(
            "{} tries, {} answered",
            thousands(c.done as f64),
            thousands(answered as f64)
        ),
        errors,
        notes,
        logins: samples,
        ..Outcome::default()
    })
}
