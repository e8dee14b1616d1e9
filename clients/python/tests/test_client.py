"""Tests of the `Client` class against a real gotalk server: every command,
error mapping, tags with pushes in between, the messages() iterator, and
resuming after a dropped connection or a server restart."""

import json
import socket
import threading
import time

import pytest

from conftest import PASSWORD
from gotalk_client import (BadRequest, Client, Conflict, ConnectionLost, GotalkError,
                           NotFound, TooLarge, Unauthorized, UnknownCommand)


def contents(msgs):
    return [m["content"] for m in msgs]


def collect(client, count, idle_timeout=10, **kw):
    """Take `count` messages from client.messages(), then stop iterating."""
    got = []
    for msg in client.messages(idle_timeout=idle_timeout, **kw):
        got.append(msg)
        if len(got) == count:
            break
    return got


# -- accounts ---------------------------------------------------------------

def test_register_returns_the_new_user(server, connect):
    c = connect(server)
    alice = c.register("alice", PASSWORD)
    bob = c.register("bob", PASSWORD)
    assert alice["username"] == "alice" and isinstance(alice["id"], int)
    assert bob["username"] == "bob" and bob["id"] != alice["id"]
    assert "password" not in json.dumps([alice, bob])


def test_register_taken_name_is_conflict(server, connect):
    c = connect(server)
    c.register("alice", PASSWORD)
    with pytest.raises(Conflict) as info:
        c.register("alice", "other-password")
    assert info.value.code == "conflict" and info.value.message


@pytest.mark.parametrize("name", ["", "a" * 33, "has space", "semi;colon", "ünï"])
def test_register_bad_username_is_bad_request(server, connect, name):
    with pytest.raises(BadRequest) as info:
        connect(server).register(name, PASSWORD)
    assert info.value.code == "bad_request"


def test_login_binds_connection_and_returns_token(server, connect):
    c = connect(server)
    registered = c.register("alice", PASSWORD)
    user = c.login("alice", PASSWORD)
    assert user == registered == c.user
    assert isinstance(c.token, str) and c.token


def test_login_wrong_password_and_unknown_user_look_the_same(server, connect):
    c = connect(server)
    c.register("alice", PASSWORD)
    with pytest.raises(Unauthorized) as wrong:
        c.login("alice", "not-the-password")
    with pytest.raises(Unauthorized) as unknown:
        c.login("nobody", PASSWORD)
    assert wrong.value.code == unknown.value.code == "unauthorized"
    assert wrong.value.message == unknown.value.message


def test_auth_with_token_on_another_connection(server, connect):
    alice = connect(server, "alice", register=True)
    connect(server, "bob", register=True).send("alice", "for alice")
    other = connect(server)
    assert other.auth(alice.token) == alice.user
    assert contents(other.sync()) == ["for alice"]
    with pytest.raises(Unauthorized):
        connect(server).auth("not-a-token")


def test_logout_revokes_the_token_and_stops_another_connections_messages(server, connect):
    alice = connect(server, "alice", register=True)
    other = connect(server)
    other.auth(alice.token)
    token = alice.token
    assert alice.logout() == "token"
    assert alice.token is None
    # The other connection is no longer logged in: told by the "revoked"
    # event, or by its SYNC if that comes first.
    with pytest.raises(Unauthorized):
        for _ in other.messages(idle_timeout=10):
            pass
    with pytest.raises(Unauthorized):
        connect(server).auth(token)


def test_logout_all_revokes_every_token_of_the_account(server, connect):
    first = connect(server, "alice", register=True)
    second = connect(server)
    second.login("alice", PASSWORD)
    tokens = (first.token, second.token)
    assert tokens[0] != tokens[1]
    assert first.logout(all=True) == "all"
    for token in tokens:
        with pytest.raises(Unauthorized):
            connect(server).auth(token)
    with pytest.raises(Unauthorized):
        second.sync()


# -- messages ---------------------------------------------------------------

def test_send_sync_ack(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    before = time.time() * 1000
    first = alice.send("bob", "hello bob")
    second = alice.send("bob", "  spaces  kept ")
    assert second["id"] > first["id"]
    assert before - 5000 <= first["ts"] <= time.time() * 1000 + 5000

    msgs = bob.sync()
    assert contents(msgs) == ["hello bob", "  spaces  kept "]
    m = msgs[0]
    assert (m["id"], m["from"], m["to"], m["ts"]) == (first["id"], "alice", "bob", first["ts"])
    assert m["from_id"] == alice.user["id"] and m["to_id"] == bob.user["id"]

    bob.ack(first["id"])
    assert contents(bob.sync()) == ["  spaces  kept "]
    assert bob.sync(after=second["id"]) == []  # `after` acknowledges too
    assert bob.sync() == []
    assert alice.sync() == []  # sent messages are not the sender's mail


def test_sync_after_and_limit(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    ids = [alice.send("bob", "m%d" % i)["id"] for i in range(5)]
    assert contents(bob.sync(limit=2)) == ["m0", "m1"]
    assert contents(bob.sync(after=ids[1], limit=2)) == ["m2", "m3"]
    assert contents(bob.sync()) == ["m2", "m3", "m4"]  # after=ids[1] acknowledged m0, m1


def test_send_to_user_id(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    alice.send(bob.user["id"], "by id")
    assert contents(bob.sync()) == ["by id"]


def test_sync_wait_ms_returns_when_a_message_arrives(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    t0 = time.monotonic()
    assert bob.sync(wait_ms=300) == []
    assert time.monotonic() - t0 >= 0.25

    timer = threading.Timer(0.3, alice.send, ("bob", "worth the wait"))
    timer.start()
    t0 = time.monotonic()
    msgs = bob.sync(wait_ms=5000)
    timer.join()
    assert contents(msgs) == ["worth the wait"]
    assert time.monotonic() - t0 < 4


def test_client_id_makes_send_idempotent(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    first = alice.send("bob", "once", client_id="c-1")
    bob.ack(first["id"])
    again = alice.send("bob", "once", client_id="c-1")  # even after the ACK
    assert again["id"] == first["id"]
    other = alice.send("bob", "twice", client_id="c-2")
    msgs = bob.sync()
    assert contents(msgs) == ["twice"] and msgs[0]["id"] == other["id"]
    assert msgs[0]["client_id"] == "c-2"


def test_send_errors_are_typed(server, connect):
    anonymous = connect(server)
    with pytest.raises(Unauthorized):
        anonymous.send("bob", "who am i")
    with pytest.raises(Unauthorized):
        anonymous.sync()
    with pytest.raises(Unauthorized):
        anonymous.ack(1)
    alice = connect(server, "alice", register=True)
    with pytest.raises(NotFound) as info:
        alice.send("nobody", "hello?")
    assert info.value.code == "not_found" and info.value.message
    with pytest.raises(BadRequest):
        alice.send("alice", "")


def test_ping_and_unknown_command(server, connect):
    c = connect(server)
    assert c.ping() is True
    with pytest.raises(UnknownCommand) as info:
        c.request("frobnicate")
    assert info.value.code == "unknown_command"
    assert "help" in c.request("help")
    assert c.ping() is True  # errors leave the connection usable


def test_too_large_line_keeps_connection_usable(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    with pytest.raises(TooLarge) as info:
        alice.send("bob", "x" * 70000)
    assert info.value.code == "too_large"
    assert alice.ping() is True
    alice.send("bob", "small")
    assert contents(bob.sync()) == ["small"]


def test_errors_are_gotalk_errors_with_code_and_message():
    err = Conflict("name taken")
    assert isinstance(err, GotalkError)
    assert (err.code, err.message, str(err)) == ("conflict", "name taken", "conflict: name taken")


def test_context_manager_closes(server):
    with Client("127.0.0.1", server.port) as c:
        assert c.ping()
    with pytest.raises(ConnectionLost):
        c.ping()


def test_connect_refused_is_connection_lost():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(ConnectionLost):
        Client("127.0.0.1", port, timeout=2)


# -- tags and pushes --------------------------------------------------------

def test_raw_tags_are_echoed_and_pushes_carry_no_ok(server, connect):
    connect(server).register("bob", PASSWORD)
    alice = connect(server, "alice", register=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        f = s.makefile("rwb")

        def call(obj):
            f.write((json.dumps(obj) + "\n").encode())
            f.flush()

        call({"cmd": "login", "username": "bob", "password": PASSWORD, "tag": 1})
        reply = json.loads(f.readline())
        assert reply["ok"] is True and reply["tag"] == 1
        assert reply["user"]["username"] == "bob" and reply["token"]
        sent = alice.send("bob", "pushed")
        event = json.loads(f.readline())
        assert event["event"] == "message" and "ok" not in event and "tag" not in event
        assert event["message"]["content"] == "pushed" and event["message"]["id"] == sent["id"]
        for tag in ["str", {"a": [1]}, 7.5, None]:
            call({"cmd": "ping", "tag": tag})
            reply = json.loads(f.readline())
            assert reply == {"ok": True, "pong": True, "tag": tag}


def test_replies_match_requests_while_pushes_arrive(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    n = 30
    sender = threading.Thread(target=lambda: [alice.send("bob", "p%d" % i) for i in range(n)])
    sender.start()
    for i in range(n):  # replies of many kinds, with pushes landing in between
        assert bob.ping() is True
        assert "help" in bob.request("help")
        assert isinstance(bob.sync(limit=1), list)
    sender.join(20)
    assert contents(collect(bob, n)) == ["p%d" % i for i in range(n)]


def test_requests_from_several_threads(server, connect):
    alice = connect(server, "alice", register=True)
    connect(server, "bob", register=True)
    results = {}

    def work(k):
        results[k] = [alice.send("bob", "t%d-%d" % (k, i))["id"] for i in range(10)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    ids = [i for k in range(4) for i in results[k]]
    assert len(set(ids)) == 40


# -- messages() iterator ----------------------------------------------------

def test_messages_gives_backlog_then_pushes_and_acknowledges(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    for i in range(3):
        alice.send("bob", "old%d" % i)
    threading.Timer(0.5, lambda: [alice.send("bob", "new%d" % i) for i in range(2)]).start()
    got = collect(bob, 5)
    assert contents(got) == ["old0", "old1", "old2", "new0", "new1"]
    assert [m["from"] for m in got] == ["alice"] * 5
    assert connect(server, "bob").sync() == []  # all consumed, all acknowledged


def test_messages_acknowledges_only_what_was_consumed(server, connect):
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    for i in range(4):
        alice.send("bob", "m%d" % i)
    assert contents(collect(bob, 2)) == ["m0", "m1"]
    assert contents(connect(server, "bob").sync()) == ["m2", "m3"]
    assert contents(collect(bob, 2)) == ["m2", "m3"]  # the same client goes on


def test_messages_pages_through_a_large_backlog(server, connect):
    connect(server).register("bob", PASSWORD)
    alice = connect(server, "alice", register=True)
    big = "x" * 60000  # 20 of these pass the server's 1 MiB cap on one SYNC reply
    for i in range(20):
        alice.send("bob", "%02d%s" % (i, big))
    for i in range(5):
        alice.send("bob", "small%d" % i)
    bob = connect(server, "bob")  # logged in afterwards: no pushes, all backlog
    got = collect(bob, 25, idle_timeout=3)
    assert [m["content"][:2] for m in got[:20]] == ["%02d" % i for i in range(20)]
    assert contents(got[20:]) == ["small%d" % i for i in range(5)]
    assert connect(server, "bob").sync() == []


def test_messages_idle_timeout_ends_iteration(server, connect):
    bob = connect(server, "bob", register=True)
    t0 = time.monotonic()
    assert list(bob.messages(idle_timeout=0.5)) == []
    assert 0.4 <= time.monotonic() - t0 < 5


def test_messages_ends_when_client_is_closed(server, connect):
    bob = connect(server, "bob", register=True)
    threading.Timer(0.3, bob.close).start()
    assert list(bob.messages(idle_timeout=10)) == []


def test_messages_resume_after_connection_drop(server, proxy, connect):
    connect(server, "bob", register=True)
    bob = connect(proxy.port, "bob")
    alice = connect(server, "alice", register=True)
    for i in range(6):
        alice.send("bob", "a%d" % i)
    got = []
    for msg in bob.messages(idle_timeout=10, reconnect_for=10):
        got.append(msg)
        if len(got) == 3:
            proxy.cut()  # mid-stream: a3..a5 may be in flight or already read
            alice.send("bob", "after-cut")
        if len(got) == 7:
            break
    assert contents(got) == ["a0", "a1", "a2", "a3", "a4", "a5", "after-cut"]
    assert bob.ping() is True  # a new connection, authenticated again
    assert bob.sync() == []
    alice.send("bob", "live again")
    assert contents(collect(bob, 1)) == ["live again"]


def test_messages_resume_after_server_restart(durable_server, connect):
    bob = connect(durable_server, "bob", register=True)
    alice = connect(durable_server, "alice", register=True)
    for i in range(4):
        alice.send("bob", "d%d" % i)
    got = []
    for msg in bob.messages(idle_timeout=20, reconnect_for=20):
        got.append(msg)
        if len(got) == 2:
            durable_server.restart()  # kill -9, then start on the same data and port
            alice = connect(durable_server, "alice")
            alice.send("bob", "after-restart")
        if len(got) == 5:
            break
    assert contents(got) == ["d0", "d1", "d2", "d3", "after-restart"]
    assert connect(durable_server, "bob").sync() == []


def test_messages_log_in_again_when_the_token_is_refused(durable_server, connect):
    bob = connect(durable_server, "bob", register=True)
    alice = connect(durable_server, "alice", register=True)
    old_token = bob.token
    alice.send("bob", "before")
    got = []
    for msg in bob.messages(idle_timeout=20, reconnect_for=20):
        got.append(msg)
        if len(got) == 1:
            durable_server.kill()
            (durable_server.data_dir / "secret.key").unlink()  # a new key: old tokens die
            durable_server.restart()
            connect(durable_server, "alice").send("bob", "after new key")
        if len(got) == 2:
            break
    assert contents(got) == ["before", "after new key"]
    assert bob.token != old_token  # it logged in again with its password
