//! The `--memory` store: keeps nothing, and "commits" each batch at once, so
//! replies go out in the same event-loop turn. The core keeps every
//! account and message in RAM with this store ([`Store::keeps_data`]), so
//! reads find nothing the core does not already hold.

use super::{Batch, Committed, OpenError, Read, ReadAnswer, ReadDone, ReadOp, Snapshot, Store};
use std::collections::VecDeque;

#[derive(Default)]
pub struct MemoryStore {
    done: VecDeque<Committed>,
    reads: VecDeque<ReadDone>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Snapshot, OpenError> {
        Ok(Snapshot::default())
    }

    fn submit(&mut self, batch: Batch) {
        self.done.push_back(Committed::of(batch.seq, Ok(())));
    }

    fn completed(&mut self) -> Option<Committed> {
        self.done.pop_front()
    }

    fn read(&mut self, read: Read) {
        let answer = match read.op {
            ReadOp::UserById(_) | ReadOp::UserByName(_) => ReadAnswer::User(None),
            ReadOp::Mailbox(_) | ReadOp::MailboxAndHead { .. } => ReadAnswer::Mailbox {
                count: 0,
                bytes: 0,
                head: Vec::new(),
            },
            ReadOp::Page { .. } => ReadAnswer::Page(Vec::new()),
            // The core keeps history in RAM with this store and never asks.
            ReadOp::History { .. } => ReadAnswer::History {
                messages: Vec::new(),
                more: false,
            },
            ReadOp::Conversations { .. } => ReadAnswer::Conversations {
                list: Vec::new(),
                more: false,
            },
        };
        self.reads.push_back(ReadDone {
            id: read.id,
            answer: Ok(answer),
        });
    }

    fn read_done(&mut self) -> Option<ReadDone> {
        self.reads.pop_front()
    }

    fn keeps_data(&self) -> bool {
        false
    }
}
