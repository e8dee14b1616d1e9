//! Fuzz target: the line framer over a byte stream cut at arbitrary points.
//! Byte 0 picks `max_line` (0 to 30, or `usize::MAX`), then byte 1 and the
//! following bytes give the chunk sizes (see `chunked_input`); the rest is
//! the stream. Every line must be accounted for and within the limit, and
//! the result must not depend on the cuts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let max_line = if limit == 0xFF {
        usize::MAX
    } else {
        usize::from(limit % 31)
    };
    let (sizes, stream) = gotalk_fuzz::chunked_input(rest);
    gotalk_fuzz::check_framer(stream, &sizes, max_line);
});
