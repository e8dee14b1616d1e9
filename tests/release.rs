//! What a release says about itself and how it takes over a database an
//! older one wrote: `--version` names the crate version and the commit;
//! an upgraded version-1 database counts its custody exactly; a retry
//! deduplicated from disk takes no message id; the process ends promptly
//! after it logs that it stopped.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let run = run_cli(&["--version"], Duration::from_secs(10));
    assert!(run.status.is_some_and(|s| s.success()), "{run:?}");
    let line = run.stdout.trim();
    let expected = format!("gotalk {} (", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&expected), "{line}");
    assert!(line.ends_with(')'), "{line}");
    let commit = &line[expected.len()..line.len() - 1];
    let hex = commit.trim_end_matches("-dirty");
    let named = commit == "unknown commit"
        || (hex.len() >= 7
            && hex
                .rsplit('g')
                .next()
                .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit())));
    assert!(named, "not a commit: {commit:?} in {line}");
}
