//! The `--memory` store: keeps nothing, and "commits" each batch at once, so
//! replies go out in the same event-loop turn.

use super::{Batch, Committed, Snapshot, Store};
use std::collections::VecDeque;

#[derive(Default)]
pub struct MemoryStore {
    done: VecDeque<Committed>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Snapshot, String> {
        Ok(Snapshot::default())
    }

    fn submit(&mut self, batch: Batch) {
        self.done.push_back(Committed {
            seq: batch.seq,
            result: Ok(()),
            acks: Ok(()),
        });
    }

    fn completed(&mut self) -> Option<Committed> {
        self.done.pop_front()
    }
}
