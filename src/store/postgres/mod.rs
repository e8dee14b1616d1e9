//! The PostgreSQL store (`--postgres URL`): the same [`Store`](super::Store) as the
//! SQLite one, on a database that several goTalk nodes can share (see
//! `docs/storage.md`, "PostgreSQL").
//!
//! - [`link`]: a connection per thread that reconnects with backoff, and
//!   what a failed statement means.
//! - [`schema`]: the versioned migrations (`schema_migrations`).
//! - [`load`]: the figures read at start.
//! - [`writer`]: the writing thread's PostgreSQL side (retries,
//!   reconnecting, presence, pruning).
//! - [`group`]: one group as one transaction, and the id scheme; its
//!   statements, accounts, messages and NOTIFYs in `statements`,
//!   `accounts`, `messages` and `notify`.
//! - [`client_id_window`]: a sender's newest N `client_id`s, numbered
//!   through a counter row per sender.
//! - [`reader`]: the thread that answers the core's reads.
//! - [`listener`]: the thread that hears other nodes (LISTEN) and
//!   heartbeats this one; [`wakeup`]: what nodes tell each other.
//!
//! It uses the synchronous `postgres` client on those threads only; the
//! event loop touches channels, as with SQLite. Message and account ids
//! are given by the database inside the writing transaction and reported
//! in [`crate::store::Assigned`].

mod accounts;
pub mod client_id_window;
pub mod custody;
pub mod group;
pub mod history;
pub mod link;
pub mod listener;
pub mod load;
mod messages;
mod notify;
pub mod reader;
pub mod schema;
mod statements;
pub mod wakeup;
pub mod writer;

use super::threaded::{Opened, Threaded};
use super::threads::StoreThreads;
use super::{group_commit, read_loop};
use super::{HistoryRules, MailboxCaps, OpenError, Remote, SchemaError, Snapshot, StoreMetrics};
use crate::{Millis, UserId};
use crossbeam_channel::{Receiver, Sender};
use link::Link;
use mio::Waker;
use postgres::Client;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The PostgreSQL store: its threads, and [`Cluster`] on the loop's side.
pub type PostgresStore = Threaded<Cluster>;

/// What the PostgreSQL store keeps on the loop's side.
pub struct Cluster {
    /// Presence changes for the writer; other nodes' changes from the
    /// listener; closing `stop` ends the listener.
    presence: Option<Sender<(UserId, bool)>>,
    remote: Receiver<Vec<Remote>>,
    stop: Option<Sender<()>>,
    listener: Option<JoinHandle<()>>,
    /// The connection that migrated the schema; [`Opened::load`] reads
    /// with it and closes it.
    loader: Option<Client>,
    /// The URL without its password, for the log.
    shown: String,
}

impl Threaded<Cluster> {
    /// Connects to `url`, brings the schema up to date and starts the
    /// writer and reader threads. Every failure is an error that names the
    /// database (without its password) and the cause.
    pub fn open(
        url: &str,
        node: &str,
        caps: MailboxCaps,
        waker: Arc<Waker>,
    ) -> Result<PostgresStore, OpenError> {
        Self::open_with_history(url, node, caps, HistoryRules::default(), waker)
    }

    /// [`PostgresStore::open`] keeping conversations as `history` says (the
    /// server's flags; the default keeps none).
    pub fn open_with_history(
        url: &str,
        node: &str,
        caps: MailboxCaps,
        history: HistoryRules,
        waker: Arc<Waker>,
    ) -> Result<PostgresStore, OpenError> {
        if !wakeup::is_node_id(node) {
            return Err(OpenError::NodeId(node.to_string()));
        }
        let config = link::config(url)?;
        let shown = link::redact(url);
        let fail = |cause: SchemaError| OpenError::UseDatabase {
            shown: shown.clone(),
            cause,
        };
        let failed = |e: postgres::Error| fail(SchemaError::Database(e.to_string()));
        let connect = || link::connect(&config).map_err(failed);
        let mut loader = connect()?;
        let found = schema::migrate(&mut loader).map_err(fail)?;
        if found == 0 {
            log::info!("created goTalk's tables in {shown}");
        }
        // A node that starts holds nobody yet (a restart after kill -9
        // leaves the rows of the last run).
        loader
            .execute(
                "INSERT INTO nodes (id) VALUES ($1) \
                 ON CONFLICT (id) DO UPDATE SET started = now(), heartbeat = now()",
                &[&node],
            )
            .and_then(|_| loader.execute("DELETE FROM presence WHERE node = $1", &[&node]))
            .map_err(failed)?;
        let (presence, presence_rx) = crossbeam_channel::unbounded();
        let (mut threads, ends) = StoreThreads::channels();
        let metrics = Arc::new(StoreMetrics::default());
        let writer_link = Link::new(config.clone(), "writer", connect()?);
        let reader_link = Link::new(config.clone(), "reader", connect()?);
        let writer = group_commit::spawn(
            "gotalk-pg-store",
            writer::Postgres::new(writer_link, node.to_string(), caps, presence_rx)
                .with_history(history),
            ends.jobs,
            ends.done,
            waker.clone(),
            metrics.clone(),
        )?;
        let read_thread = read_loop::spawn(
            "gotalk-pg-reader",
            reader::PgReader::new(reader_link),
            ends.reads,
            ends.read_done,
            waker.clone(),
        )?;
        threads.started(writer, read_thread);
        let (remote_tx, remote) = crossbeam_channel::unbounded();
        let (stop, stop_rx) = crossbeam_channel::bounded(0);
        let listen_client = connect()?;
        let listen_link = Link::new(config, "listener", listen_client);
        let listener = listener::spawn(listen_link, node.to_string(), remote_tx, waker, stop_rx)?;
        let cluster = Cluster {
            presence: Some(presence),
            remote,
            stop: Some(stop),
            listener: Some(listener),
            loader: Some(loader),
            shown,
        };
        Ok(Threaded::new(threads, metrics, cluster))
    }
}

impl Opened for Cluster {
    fn load(&mut self) -> Result<Snapshot, OpenError> {
        let fail = |cause: String| OpenError::ReadDatabase {
            shown: self.shown.clone(),
            cause,
        };
        let Some(mut client) = self.loader.take() else {
            return Err(fail("the store was loaded already".into()));
        };
        let started = Instant::now();
        let snapshot =
            load::read_snapshot(&mut client, wall_clock_ms()).map_err(|e| fail(e.to_string()))?;
        log::info!(
            "opened {}: {} unacknowledged messages ({} bytes) stay in the database until \
             read; started in {} ms",
            self.shown,
            snapshot.pending_messages,
            snapshot.pending_bytes,
            started.elapsed().as_millis()
        );
        Ok(snapshot)
    }

    fn remote(&mut self) -> Option<Vec<Remote>> {
        self.remote.try_recv().ok()
    }

    fn set_presence(&mut self, changes: Vec<(UserId, bool)>) {
        if let Some(presence) = &self.presence {
            for change in changes {
                let _ = presence.send(change);
            }
        }
    }

    /// The listener stops first; the writer then finishes what was
    /// submitted (presence closes after it, with this side).
    fn stopping(&mut self) {
        self.stop = None;
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}

/// Milliseconds since the Unix epoch, now.
fn wall_clock_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
