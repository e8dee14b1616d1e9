//! The reading thread both durable stores share: it takes the core's
//! reads from the channel, answers them through a [`ReadBackend`] (SQLite
//! or PostgreSQL, each on a connection of its own), sends each answer back
//! as soon as it is read and wakes the loop. Accounts go before pages
//! ([`Queue`]), so a LOGIN does not wait behind other users' pages.

use super::{OpenError, Read, ReadAnswer, ReadDone, ReadOp, StoreError};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use mio::Waker;
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What one store does on the reading thread.
pub trait ReadBackend: Send + 'static {
    /// Answers one read; a failure is logged here, where its cause is
    /// known.
    fn answer(&mut self, op: &ReadOp) -> Result<ReadAnswer, StoreError>;

    /// How long to wait for a read before [`ReadBackend::idle`]; `None`:
    /// as long as it takes.
    fn wait(&self) -> Option<Duration> {
        None
    }

    /// No read came within [`ReadBackend::wait`] (PostgreSQL reconnects).
    fn idle(&mut self) {}
}

/// Starts the reader thread, named `name`, over `backend`. It runs until
/// `reads` is closed.
pub fn spawn<B: ReadBackend>(
    name: &str,
    mut backend: B,
    reads: Receiver<Read>,
    done: Sender<ReadDone>,
    waker: Arc<Waker>,
) -> Result<JoinHandle<()>, OpenError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(move || run(&mut backend, &reads, &done, &waker))
        .map_err(|cause| OpenError::Thread {
            what: "store's reader thread",
            cause,
        })
}

fn run<B: ReadBackend>(
    backend: &mut B,
    reads: &Receiver<Read>,
    done: &Sender<ReadDone>,
    waker: &Waker,
) {
    let mut queue = Queue::default();
    loop {
        if queue.is_empty() {
            let first = match backend.wait() {
                None => reads.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => reads.recv_timeout(wait),
            };
            match first {
                Ok(read) => queue.push(read),
                Err(RecvTimeoutError::Timeout) => {
                    backend.idle();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        queue.extend(reads.try_iter());
        let Some(read) = queue.next() else { continue };
        let answer = backend.answer(&read.op);
        if done
            .send(ReadDone {
                id: read.id,
                answer,
            })
            .is_err()
        {
            return;
        }
        // Each answer is handed over as soon as it is read; the loop takes
        // every finished read per turn, so wakes that come while it is
        // busy cost one turn, not one each.
        if let Err(e) = waker.wake() {
            log::error!("store: cannot wake the event loop: {e}");
        }
    }
}

/// The reads taken from the channel and not answered yet: accounts (a row
/// each) before mailboxes and pages (up to a window of rows), each kind in
/// the order asked. A LOGIN or AUTH waits for its account, not for the
/// pages other users asked before it. Reads of one kind never overtake
/// each other, and a page waits for at most [`ACCOUNTS_BEFORE_A_PAGE`]
/// accounts, so a flood of account reads cannot starve pages.
#[derive(Default)]
pub struct Queue {
    accounts: VecDeque<Read>,
    pages: VecDeque<Read>,
    /// Accounts answered in a row while a page waited.
    overtaken: usize,
}

/// Most account reads answered in a row while a page waits.
pub const ACCOUNTS_BEFORE_A_PAGE: usize = 16;

impl Queue {
    fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.pages.is_empty()
    }

    fn push(&mut self, read: Read) {
        match read.op {
            ReadOp::UserById(_) | ReadOp::UserByName(_) => self.accounts.push_back(read),
            _ => self.pages.push_back(read),
        }
    }

    fn extend(&mut self, reads: impl Iterator<Item = Read>) {
        for read in reads {
            self.push(read);
        }
    }

    fn next(&mut self) -> Option<Read> {
        if self.pages.is_empty() || self.overtaken >= ACCOUNTS_BEFORE_A_PAGE {
            self.overtaken = 0;
            return self.pages.pop_front().or_else(|| self.accounts.pop_front());
        }
        match self.accounts.pop_front() {
            Some(read) => {
                self.overtaken += 1;
                Some(read)
            }
            None => self.pages.pop_front(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(id: u64, op: ReadOp) -> Read {
        Read { id, op }
    }

    fn order(queue: &mut Queue) -> Vec<u64> {
        std::iter::from_fn(|| queue.next()).map(|r| r.id).collect()
    }

    #[test]
    fn accounts_go_before_pages_each_kind_in_order() {
        let mut queue = Queue::default();
        queue.push(read(1, ReadOp::Mailbox(5)));
        queue.push(read(2, ReadOp::UserById(5)));
        queue.push(read(3, ReadOp::Mailbox(6)));
        queue.push(read(4, ReadOp::UserByName("bob".into())));
        assert_eq!(order(&mut queue), [2, 4, 1, 3]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_page_waits_for_a_bounded_number_of_accounts() {
        let mut queue = Queue::default();
        queue.push(read(0, ReadOp::Mailbox(5)));
        for id in 1..=40 {
            queue.push(read(id, ReadOp::UserById(id)));
        }
        let ids = order(&mut queue);
        let page = ids.iter().position(|&id| id == 0).unwrap();
        assert_eq!(page, ACCOUNTS_BEFORE_A_PAGE);
        assert_eq!(ids.len(), 41);
    }
}
