#!/usr/bin/env bash
# The whole goTalk test suite: formatting and lints, Rust unit and
# integration tests (they start the real server on 127.0.0.1), the Python
# client's tests (against the client installed as a package into a virtual
# environment, target/python-venv), and the browser test in headless
# Chromium. Nothing is skipped: a missing tool is a failure. Each step says
# what it runs and about how long it takes on two cores when nothing is
# built yet (a second run is much faster); cargo prints its own progress.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/python-venv
started=$SECONDS
step_started=

# A heading for the next step, after how long the one before took.
step() {
  [ -z "$step_started" ] || echo "   (took $((SECONDS - step_started)) s)"
  step_started=$SECONDS
  echo
  echo "== $*"
}

step "installing what is missing (scripts/install-test-deps.sh; nothing to do when all is there, minutes on a fresh machine)"
bash scripts/install-test-deps.sh

step "cargo fmt --check, then cargo clippy on every target (about 2 minutes when nothing is built)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "Rust tests: building the server and the load generator, then cargo test (about 5 minutes: the debug build, then the unit and integration tests, a 20-second chaos run among them)"
# Every workspace member: the server and the load generator (bench/), whose
# chaos test drives target/debug/gotalk, built here and by the same run.
cargo build --workspace --all-features
cargo test --workspace --all-targets --all-features

step "Python client: installing clients/python into $VENV (a few seconds)"
# Installed, not linked: the tests import the installed copy, so a module
# the package leaves out fails them. setuptools builds in clients/python/build;
# a stale build there could put a removed module back, so it goes first.
rm -rf clients/python/build clients/python/*.egg-info
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
  --no-deps --force-reinstall ./clients/python
rm -rf clients/python/build clients/python/*.egg-info

step "Python client tests, with $VENV/bin/python (about 2 minutes)"
GOTALK_BIN="$PWD/target/debug/gotalk" "$VENV/bin/python" -m pytest -q clients/python/tests

step "browser tests in headless Chromium: node --test tests/browser/ (about 2 minutes: page_cost.test.mjs waits for the page to go quiet between messages)"
GOTALK_BIN="$PWD/target/debug/gotalk" node --test tests/browser/

echo "   (took $((SECONDS - step_started)) s)"
echo
echo "== the whole suite passed in $((SECONDS - started)) s"
