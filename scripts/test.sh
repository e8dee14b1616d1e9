#!/usr/bin/env bash
# The whole goTalk test suite: formatting and lints, Rust unit and
# integration tests (they start the real server on 127.0.0.1), the Python
# client's tests, and the browser test in headless Chromium. Nothing is
# skipped: a missing tool is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

echo "== cargo fmt and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

echo "== Rust tests"
# Every workspace member: the server and the load generator (bench/), whose
# chaos test drives target/debug/gotalk, built here and by the same run.
cargo build --quiet --workspace --all-features
cargo test --workspace --all-targets --all-features

echo "== Python client tests"
GOTALK_BIN="$PWD/target/debug/gotalk" python3 -m pytest -q clients/python/tests

echo "== browser test"
GOTALK_BIN="$PWD/target/debug/gotalk" node --test tests/browser/
