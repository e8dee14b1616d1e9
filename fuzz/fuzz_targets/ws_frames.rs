//! Fuzz target: the WebSocket door's input path, client frames cut at
//! arbitrary points. Byte 0 picks the message limit (1 to 256 bytes, or
//! 64 KiB), then byte 1 and the following bytes give the chunk sizes (see
//! `chunked_input`); the rest is the stream. The decoder must account for
//! every byte, read the same however the stream is cut, hand out only
//! UTF-8 text within the limit, and read what tungstenite reads whenever
//! it finds no violation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let max = if limit == 0xFF {
        64 * 1024
    } else {
        usize::from(limit) + 1
    };
    let (sizes, stream) = gotalk_fuzz::chunked_input(rest);
    gotalk_fuzz::ws::check_ws(stream, &sizes, max);
});
