//! The attacker's CPU priority. On a real network an attacker runs on its
//! own machine: its threads, and the kernel's work for its side of each
//! connection, cost the server nothing. Here they share the server's two
//! cores, so by default every attacker thread runs at nice 19 (the
//! lowest priority): the machine still does all of the server's work for
//! the attack (accepting, reading, refusing, closing), but the attacker's
//! own user and system time no longer takes the cores from the loop and
//! the bystander. `--attacker-nice 0` runs it at the server's priority,
//! which measures how a co-located attacker starves the machine.

use std::sync::atomic::{AtomicI32, Ordering};

/// The nice value attacker threads take (0..=19).
static ATTACKER_NICE: AtomicI32 = AtomicI32::new(DEFAULT_NICE);

/// The default: the lowest priority.
pub const DEFAULT_NICE: i32 = 19;

/// Sets the nice value that [`as_attacker`] gives each attacker thread.
pub fn set_attacker_nice(nice: i32) {
    ATTACKER_NICE.store(nice.clamp(0, 19), Ordering::Relaxed);
}

/// The nice value attacker threads run at.
pub fn attacker_nice() -> i32 {
    ATTACKER_NICE.load(Ordering::Relaxed)
}

/// Lowers the calling thread (and only it: on Linux, `setpriority` on a
/// thread id applies to that thread) to the attacker's priority. Raising a
/// nice value needs no privilege; a failure leaves the thread as it was,
/// which only makes the attack harsher.
pub fn as_attacker() {
    let nice = attacker_nice();
    if nice == 0 {
        return;
    }
    // SAFETY: gettid has no preconditions; setpriority only reads its
    // arguments and changes this thread's scheduling weight.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_nice() -> i32 {
        // SAFETY: as above; getpriority only reads.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    /// One test: the value is process-wide, so two tests setting it
    /// would race.
    #[test]
    fn an_attacker_thread_is_lowered_others_are_not_and_values_are_clamped() {
        set_attacker_nice(40);
        assert_eq!(attacker_nice(), 19);
        set_attacker_nice(-5);
        assert_eq!(attacker_nice(), 0);
        set_attacker_nice(7);
        let before = own_nice();
        let lowered = std::thread::spawn(|| {
            as_attacker();
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, 7.max(before));
        assert_eq!(own_nice(), before, "only the attacker thread moved");
        set_attacker_nice(DEFAULT_NICE);
    }
}
