//! The event loop's side of a store that writes on one thread and reads on
//! another (SQLite and PostgreSQL alike): the channels to both threads, the
//! non-blocking calls [`Store`](super::Store) makes of them, and the
//! answer the loop gets when a thread has died, so no request waits
//! forever. Stopping joins the reader first, then lets the writer finish
//! what was submitted.

use super::{Batch, Committed, Read, ReadDone, StoreError};
use crossbeam_channel::{Receiver, Sender};
use std::thread::JoinHandle;

/// The loop's ends of the channels, and the two threads.
pub struct StoreThreads {
    /// Batches for the writer; `None` once stopping.
    jobs: Option<Sender<Batch>>,
    done: Receiver<Committed>,
    /// A copy of the writer's end, to answer batches if the writer is gone.
    done_tx: Sender<Committed>,
    /// Reads for the reader; `None` once stopping.
    reads: Option<Sender<Read>>,
    read_done: Receiver<ReadDone>,
    /// A copy of the reader's end, to answer reads if the reader is gone.
    read_done_tx: Sender<ReadDone>,
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
}

/// The threads' ends, handed to the writer and the reader when they start.
pub struct ThreadEnds {
    pub jobs: Receiver<Batch>,
    pub done: Sender<Committed>,
    pub reads: Receiver<Read>,
    pub read_done: Sender<ReadDone>,
}

impl StoreThreads {
    /// The channels; the threads are given with [`StoreThreads::started`].
    pub fn channels() -> (StoreThreads, ThreadEnds) {
        let (jobs, jobs_rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::unbounded();
        let (reads, reads_rx) = crossbeam_channel::unbounded();
        let (read_done_tx, read_done) = crossbeam_channel::unbounded();
        let ends = ThreadEnds {
            jobs: jobs_rx,
            done: done_tx.clone(),
            reads: reads_rx,
            read_done: read_done_tx.clone(),
        };
        let threads = StoreThreads {
            jobs: Some(jobs),
            done,
            done_tx,
            reads: Some(reads),
            read_done,
            read_done_tx,
            writer: None,
            reader: None,
        };
        (threads, ends)
    }

    /// Records the running writer and reader, for [`StoreThreads::stop`].
    pub fn started(&mut self, writer: JoinHandle<()>, reader: JoinHandle<()>) {
        self.writer = Some(writer);
        self.reader = Some(reader);
    }

    /// Queues a batch for the writer.
    pub fn submit(&self, batch: Batch) {
        let Some(jobs) = &self.jobs else { return };
        if let Err(lost) = jobs.send(batch) {
            // Only if the writer thread died: answer rather than hang.
            let _ = self
                .done_tx
                .send(Committed::of(lost.0.seq, Err(StoreError::Stopped)));
        }
    }

    /// A finished batch, if any.
    pub fn completed(&self) -> Option<Committed> {
        self.done.try_recv().ok()
    }

    /// Queues a read for the reader.
    pub fn read(&self, read: Read) {
        let Some(reads) = &self.reads else { return };
        if let Err(lost) = reads.send(read) {
            // Only if the reader thread died: answer rather than hang.
            let _ = self.read_done_tx.send(ReadDone {
                id: lost.0.id,
                answer: Err(StoreError::Stopped),
            });
        }
    }

    /// A finished read, if any.
    pub fn read_done(&self) -> Option<ReadDone> {
        self.read_done.try_recv().ok()
    }

    /// Stops the reader, then lets the writer finish what was submitted
    /// and stops it.
    pub fn stop(&mut self) {
        self.reads = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Drop for StoreThreads {
    fn drop(&mut self) {
        self.stop();
    }
}
