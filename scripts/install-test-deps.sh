#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine lacks: Chromium
# (browser test), a Python virtual environment in target/python-venv with
# pytest, prometheus_client (parses /metrics), websockets (an independent
# WebSocket client for the /ws door's tests) and setuptools (builds the
# client package that scripts/test.sh installs there; nothing goes into the
# system's Python), curl (the documented curl
# commands are replayed, and run against TLS with --cacert), openssl (the
# documented s_client session), playwright-core (drives Chromium), systemd-analyze
# (checks deploy/gotalk.service; it works without systemd running),
# axe-core (the browser test's accessibility check), PostgreSQL's server programs (the
# PostgreSQL store's tests start a throw-away cluster with initdb and
# pg_ctl; no system service is used), iproute2 and util-linux (a test
# gives a network namespace of its own ten IPv6 addresses). Idempotent: installs only what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs npm)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -q
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The Python client's tests run in a virtual environment of their own, made
# again if its Python is gone (python3 was upgraded or moved).
VENV=target/python-venv
if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  echo "making the Python test environment $VENV"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV"; then
    # Debian's own python3 makes virtual environments only with python3-venv.
    echo "installing Debian's python3-venv"
    rm -rf "$VENV"
    sudo_if_needed apt-get update -q
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
    python3 -m venv "$VENV"
  fi
fi
# setuptools 71 or newer builds a wheel by itself (an older one needs the
# wheel package), for scripts/test.sh's install without build isolation.
if ! "$VENV/bin/python" -c 'import sys, pytest, prometheus_client, setuptools, websockets.sync.client
sys.exit(int(setuptools.__version__.split(".")[0]) < 71)' 2>/dev/null; then
  echo "installing pytest, prometheus_client, websockets and setuptools into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check pytest prometheus_client 'websockets>=13' 'setuptools>=71'
fi

if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  echo "installing the browser test's node packages"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
