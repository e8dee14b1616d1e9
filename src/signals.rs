//! SIGTERM, SIGINT and SIGHUP. A helper thread waits for them with
//! `signal-hook` (its self-pipe does the async-signal-unsafe part away from
//! the handler), hands the first stop signal to the event loop over a
//! channel and wakes it, so the loop can shut down gracefully; a second
//! one ends the process at once, for an operator who does not want to
//! wait. SIGHUP asks the reload thread ([`crate::reload`]) to read the TLS
//! certificate and the token keys again.

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io;
use std::sync::Arc;
use std::thread;

/// A stop signal, by name.
pub type StopSignal = &'static str;

fn name(signal: i32) -> StopSignal {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// Starts the signal thread; the loop reads stop requests from the
/// channel, and each SIGHUP is a request on `reload`.
pub fn start(waker: Arc<Waker>, reload: Sender<()>) -> io::Result<Receiver<StopSignal>> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::Builder::new()
        .name("gotalk-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    // Full: a reload is asked for already and reads the
                    // files after this signal anyway.
                    let _ = reload.try_send(());
                    continue;
                }
                seen += 1;
                if seen > 1 {
                    log::warn!(
                        "{} again: exiting at once (every acknowledged write is already committed)",
                        name(signal)
                    );
                    std::process::exit(128 + signal);
                }
                let _ = tx.try_send(name(signal));
                if let Err(e) = waker.wake() {
                    log::error!("cannot wake the event loop to shut down: {e}");
                }
            }
        })?;
    Ok(rx)
}
