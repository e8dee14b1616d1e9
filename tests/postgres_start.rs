//! A PostgreSQL node's start and stop, through the real binary: a start,
//! on a new database or an up-to-date one, logs no NOTICE of the schema
//! bookkeeping; a graceful stop ends the node's listener at once (its row
//! in `nodes` is gone when the process has exited) and logs "gotalk
//! stopped" as its last line.

mod common;

use common::postgres::Postgres;
use common::*;
use std::time::Duration;

/// A node on `url`, with the cluster's shared key file.
fn node(pg: &Postgres, url: &str) -> TestServer {
    let key = pg.key_file();
    TestServer::start(&["--postgres", url, "--key-file", key.to_str().unwrap()])
}

#[test]
fn nodes_start_without_notices_and_stop_by_leaving_the_cluster() {
    let pg = Postgres::start();
    let url = pg.url();
    // The first node creates the tables; the second and a restarted first
    // find them up to date.
    let mut first = node(&pg, &url);
    let second = node(&pg, &url);
    first.signal(libc::SIGTERM);
    assert!(first
        .wait_exit(Duration::from_secs(30))
        .is_some_and(|s| s.success()));
    let first_log = first.stderr_text();
    first.start_again();
    for log in [first_log, second.stderr_text(), first.stderr_text()] {
        assert!(!log.contains("NOTICE"), "{log}");
        assert!(!log.contains("already exists"), "{log}");
        assert!(log.contains("listening on"), "{log}");
    }
    let nodes = pg.psql("SELECT count(*) FROM nodes");
    assert_eq!(nodes, "2", "the restarted first node and the second");

    let mut second = second;
    second.signal(libc::SIGTERM);
    let status = second.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(second.wait_for_stderr("gotalk stopped", Duration::from_secs(5)));
    let log = second.stderr_text();
    let last = log.lines().last().unwrap_or("");
    assert!(last.contains("gotalk stopped"), "{log}");
    let stop = log
        .find("stopped after SIGTERM")
        .expect("the loop's stop line");
    assert!(stop < log.find("gotalk stopped").unwrap(), "{log}");
    // The listener deleted the node's row on its way out.
    assert_eq!(pg.psql("SELECT count(*) FROM nodes"), "1");
}
