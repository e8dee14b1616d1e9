//! Fuzz target: arbitrary bytes as one line of the line protocol. Parsing
//! must never panic, and whatever it gives (a call or an error) must render
//! as one line of valid JSON echoing the tag.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gotalk_fuzz::check_line(data);
});
