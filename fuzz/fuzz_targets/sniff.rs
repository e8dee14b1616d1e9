//! Fuzz target: which door a connection's first bytes choose. Once `sniff`
//! decides on a prefix, every longer prefix must decide the same (run
//! markers let a short input reach the 8 KiB request-line limit, see
//! `expand`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gotalk_fuzz::check_sniff(&gotalk_fuzz::expand(data, 16 * 1024));
});
