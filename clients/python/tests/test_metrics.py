"""The --metrics listener, read the way Prometheus reads it: GET /metrics
is parsed by prometheus_client's own parser, every documented family is
there with its type, and the counters move as traffic flows. /stats gives
the same figures as JSON."""

import json
import re
import subprocess
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import gotalk_bin
from gotalk_client import Client, ConnectionLost, RateLimited, Unauthorized

# Every family protocol.md documents, with its type.
DOCUMENTED = {
    "gotalk_connections": "gauge",
    "gotalk_connections_max": "gauge",
    "gotalk_connections_closed": "counter",
    "gotalk_connections_refused": "counter",
    "gotalk_accept_paused": "gauge",
    "gotalk_commands": "counter",
    "gotalk_logins_failed": "counter",
    "gotalk_logins_throttled": "counter",
    "gotalk_messages_stored": "counter",
    "gotalk_messages_pushed": "counter",
    "gotalk_messages_acknowledged": "counter",
    "gotalk_pending_messages": "gauge",
    "gotalk_pending_bytes": "gauge",
    "gotalk_accounts": "gauge",
    "gotalk_users_online": "gauge",
    "gotalk_client_ids": "gauge",
    "gotalk_long_poll_waiters": "gauge",
    "gotalk_queued_output_bytes": "gauge",
    "gotalk_queued_output_bytes_max": "gauge",
    "gotalk_password_jobs": "gauge",
    "gotalk_password_check_seconds": "histogram",
    "gotalk_store_commit_seconds": "histogram",
    "gotalk_store_writes_per_commit": "histogram",
    "gotalk_slow_consumer_disconnects": "counter",
    "gotalk_limit_hits": "counter",
}


@pytest.fixture
def metered(tmp_path):
    """A durable server with --metrics; yields (port, metrics address)."""
    proc = subprocess.Popen(
        [gotalk_bin(), "--data", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
         "--metrics", "127.0.0.1:0", "--waiters-per-user", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    found = {}
    ready = threading.Event()

    def drain():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            m = re.search(r"metrics served at http://([0-9.:]+)/stats", line)
            if m:
                found["metrics"] = m.group(1)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                found["port"] = int(m.group(1))
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    assert ready.wait(20), "the server did not start"
    yield found["port"], found["metrics"]
    proc.kill()
    proc.wait(10)


def scrape(address):
    with urllib.request.urlopen("http://%s/metrics" % address, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return families


def value(families, family, sample=None, **labels):
    """The value of one sample (default: the family's own name)."""
    for s in families[family].samples:
        if s.name == (sample or family + ("_total" if families[family].type == "counter" else "")) \
                and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


def test_every_documented_family_is_exposed_with_its_type(metered):
    _, address = metered
    families = scrape(address)
    for name, kind in DOCUMENTED.items():
        assert name in families, "missing %s; have %s" % (name, sorted(families))
        assert families[name].type == kind, (name, families[name].type)


def test_figures_move_as_traffic_flows(metered):
    port, address = metered
    before = scrape(address)
    assert value(before, "gotalk_messages_stored") == 0

    alice = Client(port=port)
    alice.register("alice", "alice-password")
    alice.login("alice", "alice-password")
    bob = Client(port=port)
    bob.register("bob", "bob-password")
    bob.login("bob", "bob-password")
    with pytest.raises(Unauthorized):
        Client(port=port).login("bob", "not-bobs-password")

    for i in range(5):
        alice.send("bob", "hello %d" % i)
    during = scrape(address)
    assert value(during, "gotalk_messages_stored") == 5
    assert value(during, "gotalk_messages_pushed") == 5  # bob is logged in
    assert value(during, "gotalk_pending_messages") == 5
    assert value(during, "gotalk_pending_bytes") > 5 * len("hello 0")
    assert value(during, "gotalk_commands", command="send", outcome="ok") == 5
    assert value(during, "gotalk_commands", command="login", outcome="ok") == 2
    assert value(during, "gotalk_logins_failed") == 1
    assert value(during, "gotalk_connections", door="line", state="logged_in") == 2
    assert value(during, "gotalk_password_check_seconds", "gotalk_password_check_seconds_count") == 5
    assert value(during, "gotalk_store_commit_seconds", "gotalk_store_commit_seconds_count") >= 1
    assert value(during, "gotalk_store_writes_per_commit", "gotalk_store_writes_per_commit_sum") >= 7

    newest = bob.sync()[-1]["id"]
    bob.ack(newest)
    # A long-poll waits; a second one for the same user is refused at the limit.
    waiter = Client(port=port)
    waiter.login("bob", "bob-password")
    def wait_quietly():
        try:
            waiter.sync(wait_ms=3000)
        except ConnectionLost:
            pass  # the server is stopped at the end of the test

    waiting = threading.Thread(target=wait_quietly, daemon=True)
    waiting.start()
    deadline = time.monotonic() + 10
    while value(scrape(address), "gotalk_long_poll_waiters") < 1:
        assert time.monotonic() < deadline, "the long-poll never showed"
        time.sleep(0.02)
    with pytest.raises(RateLimited):
        bob.sync(wait_ms=3000)

    after = scrape(address)
    assert value(after, "gotalk_messages_acknowledged") == 5
    assert value(after, "gotalk_pending_messages") == 0
    assert value(after, "gotalk_long_poll_waiters") == 1
    assert value(after, "gotalk_limit_hits", limit="--waiters-per-user") == 1
    assert value(after, "gotalk_commands", command="sync", outcome="rate_limited") == 1

    with urllib.request.urlopen("http://%s/stats" % address, timeout=10) as response:
        stats = json.loads(response.read())
    assert stats["messages"] == {"stored": 5, "pushed": 5, "acknowledged": 5, "expired": 0}
    assert stats["logins"]["failed"] == 1
    assert stats["limit_hits"]["--waiters-per-user"] == 1
    for c in (alice, bob, waiter):
        c.close()
