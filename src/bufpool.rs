//! Byte buffers for busy connections, reused through a small per-thread
//! pool. An idle connection holds no buffer; a busy one takes a buffer when
//! it has something to read or write and gives it back once that is done,
//! so the event loop does not go to malloc for every turn of every
//! connection. Only the event-loop thread uses it.

use std::cell::RefCell;

/// Buffers kept for reuse at most; more are freed. Enough for the busy
/// connections of a turn under a relay load (64 in `gotalk-bench relay`);
/// a burst beyond it (hundreds of clients logging in within one turn) is
/// not kept, since each kept buffer holds at least a resident page that
/// every online user would otherwise pay a share of.
const MAX_POOLED: usize = 64;
/// Buffers that grew past this are freed rather than kept.
const MAX_POOLED_CAPACITY: usize = 256 * 1024;
/// Capacity of a fresh buffer: a reply or a few pushes. Under a page, so
/// the buffers of a burst (hundreds of connections answered in one turn)
/// share pages instead of leaving a resident page each behind; a buffer
/// that needs more grows, and comes back to the pool grown.
const FRESH_CAPACITY: usize = 2 * 1024;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer, from the pool when one is there.
pub fn take() -> Vec<u8> {
    FREE.with(|free| free.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(FRESH_CAPACITY))
}

/// Hands a buffer back (emptied), or frees it if the pool is full or the
/// buffer grew too large.
pub fn give(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_POOLED_CAPACITY {
        return;
    }
    buf.clear();
    FREE.with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < MAX_POOLED {
            free.push(buf);
        }
    });
}

/// Makes sure `buf` has a pooled allocation before bytes are appended.
pub fn ensure(buf: &mut Vec<u8>) {
    if buf.capacity() == 0 {
        *buf = take();
    }
}

/// Returns `buf`'s allocation to the pool, leaving it empty and unallocated.
pub fn release(buf: &mut Vec<u8>) {
    give(std::mem::take(buf));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_reused() {
        let mut a = take();
        a.extend_from_slice(b"hello");
        let ptr = a.as_ptr();
        give(a);
        let b = take();
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), ptr, "the same allocation is reused");
        give(b);
    }

    #[test]
    fn oversized_buffers_are_not_kept() {
        let big = Vec::<u8>::with_capacity(MAX_POOLED_CAPACITY + 1);
        let ptr = big.as_ptr();
        give(big);
        let next = take();
        assert_ne!(next.as_ptr(), ptr);
    }

    #[test]
    fn release_leaves_nothing_allocated() {
        let mut buf = Vec::new();
        ensure(&mut buf);
        assert!(buf.capacity() >= FRESH_CAPACITY);
        release(&mut buf);
        assert_eq!(buf.capacity(), 0);
    }
}
