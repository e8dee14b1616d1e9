//! Fuzz target: a byte stream on an HTTP connection, cut at arbitrary
//! points (the first bytes give the chunk sizes; run markers let a short
//! input stand for a long head, see `expand`). Reading, form decoding,
//! routing and rendering must never panic or loop, and the cuts must not
//! change which requests are read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sizes, stream) = gotalk_fuzz::chunked_input(data);
    gotalk_fuzz::check_http(&gotalk_fuzz::expand(stream, 64 * 1024), &sizes);
});
