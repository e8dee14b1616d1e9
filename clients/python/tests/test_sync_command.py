"""The command line for scripts: `gotalk-client sync [--wait] [--ack]`, which
prints messages as JSON lines, and $GOTALK_SERVER, the server's address
when --server is not given. Run as installed console scripts."""

import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

from conftest import PASSWORD, Server, installed_script


def run(script, *args, server=None, env_server=None, stdin=None):
    env = dict(os.environ, GOTALK_PASSWORD=PASSWORD)
    env.pop("GOTALK_SERVER", None)
    if env_server is not None:
        env["GOTALK_SERVER"] = env_server
    if server is not None:
        args = (*args, "--server", server.address)
    return subprocess.run([installed_script(script), *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def sync(server, *args):
    r = run("gotalk-client", "sync", "--user", "alice", *args, server=server)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture
def alice_and_bob(server, connect):
    alice = connect(server, "alice", register=True)
    bob = connect(server, "bob", register=True)
    return alice, bob


def test_sync_prints_json_lines_and_leaves_them_unacknowledged(server, alice_and_bob):
    alice, bob = alice_and_bob
    sent = [bob.send("alice", text)["id"] for text in ("one", "two \"quoted\"\nlines", "drei ü")]
    got = sync(server)
    assert [(m["id"], m["from"], m["to"], m["content"]) for m in got] == [
        (sent[0], "bob", "alice", "one"), (sent[1], "bob", "alice", "two \"quoted\"\nlines"),
        (sent[2], "bob", "alice", "drei ü")]
    assert all(isinstance(m["ts"], int) for m in got)
    assert sync(server) == got  # without --ack they stay
    assert [m["id"] for m in alice.sync()] == sent


def test_sync_ack_acknowledges_what_it_printed(server, alice_and_bob):
    alice, bob = alice_and_bob
    sent = [bob.send("alice", "m%d" % i)["id"] for i in range(3)]
    assert [m["id"] for m in sync(server, "--ack", "--limit", "2")] == sent[:2]
    assert [m["id"] for m in sync(server, "--ack")] == sent[2:]
    assert sync(server, "--ack") == []
    assert alice.sync() == []


def test_sync_ack_goes_on_past_one_reply(server, alice_and_bob):
    # A SYNC reply stops adding messages past 1 MiB: 24 messages of 60 KB
    # take two replies, and each is printed once, in order.
    alice, bob = alice_and_bob
    sent = [bob.send("alice", ("%02d" % i) * 30_000)["id"] for i in range(24)]
    first = alice.sync(limit=1000)
    assert 0 < len(first) < 24, "one reply should not hold them all"
    got = sync(server, "--ack")
    assert [m["id"] for m in got] == sent
    assert [m["content"][:2] for m in got] == ["%02d" % i for i in range(24)]
    assert alice.sync() == []


def test_sync_without_messages_prints_nothing(server, alice_and_bob):
    assert sync(server) == []
    assert sync(server, "--wait", "0.2", "--ack") == []


def waiting_syncs(metrics):
    with urllib.request.urlopen("http://%s/stats" % metrics, timeout=10) as response:
        return json.load(response)["core"]["waiters"]


def test_sync_wait_returns_the_message_that_arrives(connect):
    # /stats counts the SYNCs waiting: once it shows the command's, a
    # message is sent, which the command must print and acknowledge.
    server = Server(extra_args=["--metrics", "127.0.0.1:0"]).start()
    try:
        (metrics,) = {m.group(1) for line in server.log
                      for m in [re.search(r"metrics served at http://([0-9.:]+)/stats", line)] if m}
        alice = connect(server, "alice", register=True)
        bob = connect(server, "bob", register=True)
        proc = subprocess.Popen([installed_script("gotalk-client"), "sync", "--user", "alice",
                                 "--wait", "--ack"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ, GOTALK_PASSWORD=PASSWORD,
                                         GOTALK_SERVER=server.address), text=True)
        try:
            deadline = time.monotonic() + 20
            while waiting_syncs(metrics) == 0:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the command never waited"
                time.sleep(0.02)
            sent = bob.send("alice", "worth the wait")["id"]
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
            proc.wait(10)
        assert proc.returncode == 0, err
        (line,) = out.splitlines()
        got = json.loads(line)
        assert (got["id"], got["from"], got["content"]) == (sent, "bob", "worth the wait")
        assert alice.sync() == []  # --ack
    finally:
        server.stop()


def test_sync_rejects_a_bad_limit_or_wait(server):
    for args in (("--limit", "0"), ("--wait", "-1"), ("--wait", "soon")):
        r = run("gotalk-client", "sync", "--user", "alice", *args, server=server)
        assert r.returncode == 2 and "gotalk-client sync: error: argument" in r.stderr, r.stderr


def test_gotalk_server_gives_the_address_and_server_wins(server, alice_and_bob):
    alice, _ = alice_and_bob
    r = run("gotalk-send", "--user", "bob", "--to", "alice", "via", "the", "variable",
            env_server=server.address)
    assert r.returncode == 0, r.stderr
    # --server wins over the variable (which names a port nobody listens on).
    r = run("gotalk-send", "--user", "bob", "--to", "alice", "via the flag", server=server,
            env_server="127.0.0.1:1")
    assert r.returncode == 0, r.stderr
    r = run("gotalk-client", "sync", "--user", "alice", env_server=server.address)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line)["content"] for line in r.stdout.splitlines()]
    assert got == ["via the variable", "via the flag"]
    r = run("gotalk-send", "--user", "bob", "--to", "alice", "lost", env_server="127.0.0.1:1")
    assert r.returncode == 1 and "cannot connect to 127.0.0.1:1" in r.stderr, r.stderr
    r = run("gotalk-send", "--user", "bob", "--to", "alice", "x", env_server="host:port")
    assert r.returncode == 2 and "--server must be HOST:PORT" in r.stderr, r.stderr


def test_gotalk_chat_sends_from_a_pipe(server, alice_and_bob):
    alice, _ = alice_and_bob
    r = run("gotalk-chat", "--user", "bob", "--to", "alice", server=server,
            stdin="piped into gotalk-chat\n/quit\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("logged in as bob."), r.stdout
    got = next(alice.messages(idle_timeout=10))
    assert (got["from"], got["content"]) == ("bob", "piped into gotalk-chat")
