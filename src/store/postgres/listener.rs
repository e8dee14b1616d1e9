//! The node's own thread for the other nodes: one dedicated connection
//! that LISTENs on this node's channel ([`super::wakeup::channel`]),
//! heartbeats the node's row in `nodes` every [`HEARTBEAT`], and deletes
//! the rows of nodes whose heartbeat stopped (their `presence` goes with
//! them). What arrives is parsed and handed to the loop over a channel,
//! and the loop woken with the `Waker`.
//!
//! A NOTIFY sent while this connection is down is lost, so each time the
//! connection is (re)made, and every [`RESYNC`] as a fallback, the loop is
//! told [`Remote::Resync`]: it re-reads what it holds for its bound users
//! and announces them again. A lost wake-up delays a push; it never loses
//! a message, which stays in the database until acknowledged.

use super::group::NODE_TIMEOUT_SECONDS;
use super::link::Link;
use super::wakeup;
use crate::store::{OpenError, Remote};
use crossbeam_channel::{Receiver, Sender};
use mio::Waker;
use postgres::fallible_iterator::FallibleIterator;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the node's row is touched.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How often the loop re-reads its bound users' heads anyway.
pub const RESYNC: Duration = Duration::from_secs(5);
/// Longest wait for a notification before looking at the clock again.
const POLL: Duration = Duration::from_millis(500);

pub struct Listener {
    link: Link,
    node: String,
    events: Sender<Vec<Remote>>,
    waker: Arc<Waker>,
    /// Closed when the store is dropped.
    stop: Receiver<()>,
    /// The connection generation that LISTENs (0: none yet).
    listening: u64,
}

/// Starts the thread; it runs until `stop` is closed, then deletes the
/// node's row (a graceful stop: the other nodes stop waking it at once).
pub fn spawn(
    link: Link,
    node: String,
    events: Sender<Vec<Remote>>,
    waker: Arc<Waker>,
    stop: Receiver<()>,
) -> Result<JoinHandle<()>, OpenError> {
    let listener = Listener {
        link,
        node,
        events,
        waker,
        stop,
        listening: 0,
    };
    thread::Builder::new()
        .name("gotalk-pg-listen".into())
        .spawn(move || listener.run())
        .map_err(|cause| OpenError::Thread {
            what: "store's listening thread",
            cause,
        })
}

impl Listener {
    fn run(mut self) {
        let mut next_heartbeat = Instant::now();
        let mut next_resync = Instant::now() + RESYNC;
        loop {
            if matches!(
                self.stop.try_recv(),
                Err(crossbeam_channel::TryRecvError::Disconnected)
            ) {
                self.leave();
                return;
            }
            let now = Instant::now();
            if self.link.generation() != self.listening || !self.link.is_up() {
                if !self.listen() {
                    thread::sleep(POLL);
                    continue;
                }
                next_heartbeat = now;
                next_resync = now + RESYNC;
            }
            if now >= next_heartbeat {
                self.heartbeat();
                next_heartbeat = now + HEARTBEAT;
            }
            if now >= next_resync {
                self.send(vec![Remote::Resync]);
                next_resync = now + RESYNC;
            }
            let wait = POLL.min(next_heartbeat.saturating_duration_since(Instant::now()));
            self.receive(wait);
        }
    }

    /// (Re)connects, LISTENs and announces the node; then tells the loop
    /// to resync (wake-ups may have been missed meanwhile).
    fn listen(&mut self) -> bool {
        let channel = wakeup::channel(&self.node);
        let Ok(client) = self.link.client() else {
            return false;
        };
        let result = client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .and_then(|()| {
                client.execute(
                    "INSERT INTO nodes (id) VALUES ($1) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat = now()",
                    &[&self.node],
                )
            });
        if let Err(e) = result {
            self.link.failed(&e);
            return false;
        }
        self.listening = self.link.generation();
        log::info!(
            "node {}: listening for the other nodes on {channel}",
            self.node
        );
        self.send(vec![Remote::Resync]);
        true
    }

    /// Touches the node's row (re-creating it if another node took this
    /// one for gone) and deletes the rows of nodes that stopped.
    fn heartbeat(&mut self) {
        let Ok(client) = self.link.client() else {
            return;
        };
        let result = client
            .execute(
                "INSERT INTO nodes (id) VALUES ($1) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat = now()",
                &[&self.node],
            )
            .and_then(|_| {
                client.execute(
                    "DELETE FROM nodes WHERE id <> $1 \
                     AND heartbeat < now() - make_interval(secs => $2::int)",
                    &[&self.node, &NODE_TIMEOUT_SECONDS],
                )
            });
        match result {
            Ok(gone) if gone > 0 => log::info!("{gone} node(s) stopped heartbeating; forgotten"),
            Ok(_) => {}
            Err(e) => {
                self.link.failed(&e);
            }
        }
    }

    /// Waits up to `wait` for notifications; hands over all that came.
    fn receive(&mut self, wait: Duration) {
        let Ok(client) = self.link.client() else {
            return;
        };
        let mut events = Vec::new();
        let mut skipped = 0;
        let mut failed = None;
        {
            let mut notifications = client.notifications();
            let mut take = |n: postgres::Notification| {
                let (parsed, bad) = wakeup::parse(n.payload());
                events.extend(parsed);
                skipped += bad;
            };
            let first = notifications.timeout_iter(wait).next();
            match first {
                Ok(Some(n)) => {
                    take(n);
                    // Whatever else is buffered, without waiting.
                    let mut more = notifications.iter();
                    loop {
                        match more.next() {
                            Ok(Some(n)) => take(n),
                            Ok(None) => break,
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => failed = Some(e),
            }
        }
        if skipped > 0 {
            log::warn!("{skipped} wake-up entries from another node not understood; skipped");
        }
        if !events.is_empty() {
            self.send(events);
        }
        if let Some(e) = failed {
            self.link.failed(&e);
        }
    }

    fn send(&self, events: Vec<Remote>) {
        if self.events.send(events).is_ok() {
            if let Err(e) = self.waker.wake() {
                log::error!("store: cannot wake the event loop: {e}");
            }
        }
    }

    /// A graceful stop: the node's row (and its presence) is deleted.
    fn leave(&mut self) {
        if let Ok(client) = self.link.client() {
            let _ = client.execute("DELETE FROM nodes WHERE id = $1", &[&self.node]);
        }
    }
}
