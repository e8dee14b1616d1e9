"""A scripted "netcat session": plain sockets type the text form of the line
protocol, as a person with netcat would, through a two-person walkthrough.
Replies and events are checked by content; HELP comes as readable lines."""

import json
import socket

import pytest


class Line:
    """A text-mode connection: send a line, read one JSON line back."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def say(self, text):
        self.sock.sendall((text + "\n").encode())
        return self.read()

    def read(self):
        line = self.file.readline()
        assert line, "server closed the connection"
        return json.loads(line)

    def say_for_a_person(self, text):
        """Send a line whose reply is readable lines ended by a JSON line
        (the text form's HELP); return both."""
        self.sock.sendall((text + "\n").encode())
        lines = []
        while True:
            line = self.file.readline()
            assert line, "server closed the connection"
            if line.startswith(b"{"):
                return lines, json.loads(line)
            lines.append(line.decode().rstrip("\n"))

    def close(self):
        self.file.close()
        self.sock.close()


@pytest.fixture
def line(server):
    opened = []

    def open_line():
        opened.append(Line(server.port))
        return opened[-1]

    yield open_line
    for conn in opened:
        conn.close()


def test_two_person_walkthrough(line):
    alice, bob = line(), line()

    r = alice.say("REGISTER alice secret-words")
    assert r["ok"] is True and r["user"]["username"] == "alice"
    assert bob.say("register bob secret-words")["user"]["username"] == "bob"  # any case
    r = alice.say("REGISTER alice again-and-again")
    assert r["ok"] is False and r["error"]["code"] == "conflict" and r["error"]["message"]

    r = alice.say("LOGIN alice secret-words")
    assert r["ok"] is True and r["token"] and r["user"]["username"] == "alice"
    assert bob.say("LOGIN bob wrong")["error"]["code"] == "unauthorized"
    assert bob.say("LOGIN bob secret-words")["ok"] is True

    sent = alice.say("SEND bob hello bob,  how are you?")
    assert sent["ok"] is True and isinstance(sent["id"], int) and isinstance(sent["ts"], int)

    push = bob.read()  # bob is logged in: the message is pushed at once
    assert "ok" not in push and push["event"] == "message"
    m = push["message"]
    assert (m["id"], m["from"], m["to"], m["content"]) == (
        sent["id"], "alice", "bob", "hello bob,  how are you?")

    r = bob.say("SYNC")  # pushed but not acknowledged: still there
    assert [x["content"] for x in r["messages"]] == ["hello bob,  how are you?"]
    assert bob.say("ACK %d" % sent["id"]) == {"ok": True}
    assert bob.say("SYNC") == {"ok": True, "messages": []}

    reply = bob.say("SEND alice fine, thanks")
    assert reply["ok"] is True and reply["id"] > sent["id"]
    push = alice.read()
    assert push["event"] == "message" and push["message"]["content"] == "fine, thanks"
    assert [x["content"] for x in alice.say("SYNC")["messages"]] == ["fine, thanks"]
    assert alice.say("SYNC %d" % reply["id"])["messages"] == []  # SYNC n acknowledges up to n
    assert alice.say("SYNC")["messages"] == []

    assert alice.say("SEND nobody hi")["error"]["code"] == "not_found"
    assert alice.say("FLY away")["error"]["code"] == "unknown_command"
    assert alice.say("PING") == {"ok": True, "pong": True}
    lines, reply = alice.say_for_a_person("help")  # readable in nc, not escaped JSON
    assert reply == {"ok": True}
    assert any(l.startswith("SEND <username>") for l in lines), lines
    assert alice.say("PING") == {"ok": True, "pong": True}
    assert bob.say("QUIT") == {"ok": True}
    assert bob.file.readline() == b""  # then the server closes


def test_text_commands_need_login_and_ignore_empty_lines(line):
    anon = line()
    assert anon.say("SEND bob hi")["error"]["code"] == "unauthorized"
    anon.sock.sendall(b"\n\r\n")  # ignored: no reply
    assert anon.say("PING\r") == {"ok": True, "pong": True}


def test_json_and_text_forms_mix_on_one_connection(line):
    conn = line()
    assert conn.say('{"cmd":"register","username":"dora","password":"pw-secret","tag":"r"}')["tag"] == "r"
    assert conn.say("LOGIN dora pw-secret")["user"]["username"] == "dora"
    conn.sock.sendall(b'{"cmd":"send","to":"dora","content":"note to self","tag":2}\n')
    # The reply and the push of the same message may come in either order.
    first, second = conn.read(), conn.read()
    reply, push = (first, second) if "ok" in first else (second, first)
    assert reply["ok"] is True and reply["tag"] == 2
    assert push["event"] == "message" and push["message"]["content"] == "note to self"
    assert [m["content"] for m in conn.say("SYNC")["messages"]] == ["note to self"]
