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
cargo clippy --all-targets --all-features --quiet -- -D warnings

echo "== Rust tests"
cargo build --quiet --all-features
# --all-features builds gotalk-bench too, which the chaos test drives.
cargo test --all-targets --all-features

echo "== Python client tests"
GOTALK_BIN="$PWD/target/debug/gotalk" python3 -m pytest -q clients/python/tests

echo "== browser test"
GOTALK_BIN="$PWD/target/debug/gotalk" node --test tests/browser/
