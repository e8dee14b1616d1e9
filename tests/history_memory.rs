//! History (issue 18) with `--memory` (history bounded in RAM), through the real binary: the
//! scenarios of `tests/history/mod.rs`.

mod common;
mod history;
#[path = "common/http.rs"]
mod http;

use common::*;

fn run(extra: &[&str], body: fn(&TestServer)) {
    let mut args = vec!["--memory"];
    args.extend_from_slice(extra);
    let server = TestServer::start(&args);
    body(&server);
}

#[test]
fn two_devices_of_alice_and_one_of_bob() {
    run(&[], history::two_devices_of_alice_and_one_of_bob);
}

#[test]
fn pages_walk_back_without_gaps_while_messages_arrive() {
    run(&[], history::pages_walk_back_without_gaps);
}

#[test]
fn retention_prunes_the_older_and_keeps_the_rest() {
    run(
        &["--history-seconds", "5"],
        history::retention_prunes_the_older_and_keeps_the_rest,
    );
}

#[test]
fn no_history_behaves_as_before() {
    run(&["--no-history"], history::no_history_behaves_as_before);
}

#[test]
fn bad_input_is_refused_or_clamped() {
    run(&[], history::bad_input_is_refused_or_clamped);
}

#[test]
fn http_endpoints_answer_like_the_line() {
    run(&[], history::http_endpoints_answer_like_the_line);
}
