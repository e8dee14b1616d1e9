//! The throw-away PostgreSQL cluster the PostgreSQL tests run on: it
//! starts, answers SQL, survives an immediate restart and is removed.

mod common;

use common::postgres;

#[test]
fn a_cluster_starts_answers_and_restarts() {
    let pg = postgres::Postgres::start();
    assert_eq!(pg.psql("SELECT 40 + 2"), "42");
    pg.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (7)");
    pg.restart_immediate();
    assert_eq!(pg.psql("SELECT v FROM t"), "7");
    assert!(pg.url().ends_with("/gotalk"));
}
