//! goTalk server entry point (work in progress).
fn main() {}
