#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine lacks: Chromium
# (browser test), pytest (Python client tests), curl (the documented curl
# commands are replayed, and run against TLS with --cacert), openssl (the
# documented s_client session), playwright-core (drives Chromium), systemd-analyze
# (checks deploy/gotalk.service; it works without systemd running),
# prometheus_client (parses /metrics), PostgreSQL's server programs (the
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

if ! python3 -c 'import pytest' 2>/dev/null; then
  echo "installing pytest"
  python3 -m pip install -q pytest
fi

if ! python3 -c 'import websockets.sync.client' 2>/dev/null; then
  echo "installing websockets"
  python3 -m pip install -q 'websockets>=13'
fi

if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  echo "installing prometheus_client"
  python3 -m pip install -q prometheus_client
fi

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "installing the browser test's node packages"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
