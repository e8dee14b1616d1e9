"""Tests of the client's conversation features (issue 18) against the real
server: history pages, the conversation list, read markers and their
events, sent copies to the user's other connections, and the chat's
/history command and read markers."""

import queue

import pytest

from conftest import PASSWORD
from gotalk_client import BadRequest, Client, NotFound
from test_cli import CLIENT, Terminal

WAIT = 10.0


def events_of(client):
    """A queue that gets every "sent" and "read" event of `client`."""
    got = queue.Queue()
    client.on_event = got.put
    return got


def next_event(events, kind):
    """The next event of `kind` (others before it are skipped)."""
    while True:
        event = events.get(timeout=WAIT)
        if event.get("event") == kind:
            return event


@pytest.fixture
def chat_terminal():
    terms = []

    def start(*args):
        terms.append(Terminal([CLIENT, *args]))
        return terms[-1]

    yield start
    for t in terms:
        t.close()


def test_history_pages_walk_back_in_both_directions(server, connect):
    alice = connect(server, "alice", register=True)
    bob = connect(server, "bob", register=True)
    sent = []
    for i in range(130):
        sender, to = (alice, "bob") if i % 3 else (bob, "alice")
        text = "m%d from %s" % (i, sender.user["username"])
        sent.append((sender.send(to, text)["id"], text))

    page = alice.history("bob")
    assert page["more"] is True
    assert [(m["id"], m["content"]) for m in page["messages"]] == sent[-50:]  # default 50, oldest first

    walked, before = [], None
    while True:
        page = alice.history("bob", before=before, limit=40)
        walked = page["messages"] + walked
        if not page["more"]:
            break
        before = page["messages"][0]["id"]
    assert [(m["id"], m["content"]) for m in walked] == sent  # no gap, no repeat
    assert {(m["from"], m["to"]) for m in walked} == {("alice", "bob"), ("bob", "alice")}

    # By user id, and from bob's side: the same conversation.
    by_id = bob.history(alice.user["id"], limit=10)["messages"]
    assert [m["id"] for m in by_id] == [i for i, _ in sent[-10:]]
    assert len(alice.history("bob", limit=10_000)["messages"]) == 130  # clamped to 200, 130 exist

    with pytest.raises(BadRequest):
        alice.history("bob", limit=0)
    with pytest.raises(NotFound):
        alice.history("nobody-here")

    # Reading history acknowledges nothing: bob's mailbox still holds alice's messages.
    backlog = bob.sync(limit=1000)
    assert [m["content"] for m in backlog] == [t for _, t in sent if t.endswith("from alice")]


def test_read_markers_unread_counts_and_their_events(server, connect):
    alice = connect(server, "alice", register=True)
    alice_phone = connect(server, "alice")
    bob = connect(server, "bob", register=True)
    bob_events, phone_events = events_of(bob), events_of(alice_phone)
    ids = [bob.send("alice", text)["id"] for text in ("one", "two", "three")]

    [conv] = alice.conversations()["conversations"]
    assert (conv["with"], conv["with_id"], conv["unread"]) == ("bob", bob.user["id"], 3)
    assert conv["last"]["id"] == ids[-1] and conv["last"]["content"] == "three"

    assert alice.read("bob", ids[1]) == ids[1]
    for events in (bob_events, phone_events):  # the partner, and alice's other device
        event = next_event(events, "read")
        assert (event["by"], event["by_id"], event["with"], event["upto"]) == (
            "alice", alice.user["id"], "bob", ids[1])
        assert "ok" not in event
    assert alice.conversations()["conversations"][0]["unread"] == 1
    assert alice.read("bob", ids[0]) == ids[1]  # a marker never moves back

    alice.read(bob.user["id"], ids[-1])
    assert next_event(bob_events, "read")["upto"] == ids[-1]
    assert alice.conversations()["conversations"][0]["unread"] == 0
    [theirs] = bob.conversations()["conversations"]
    assert (theirs["with"], theirs["read_upto"], theirs["unread"]) == ("alice", ids[-1], 0)


def test_conversation_list_newest_first_in_pages(server, connect):
    alice = connect(server, "alice", register=True)
    names = ["p%d" % i for i in range(5)]
    for name in names:
        connect(server, name, register=True).send("alice", "hi from %s" % name)
    first = alice.conversations(limit=2)
    assert [c["with"] for c in first["conversations"]] == ["p4", "p3"] and first["more"]
    rest = alice.conversations(before=first["conversations"][-1]["last"]["id"])
    assert [c["with"] for c in rest["conversations"]] == ["p2", "p1", "p0"]
    assert rest["more"] is False


def test_a_send_reaches_the_senders_other_connections_as_a_sent_copy(server, connect):
    alice = connect(server, "alice", register=True)
    laptop = connect(server, "alice")
    bob = connect(server, "bob", register=True)
    laptop_events = events_of(laptop)
    reply = alice.send("bob", "from the phone")
    copy = next_event(laptop_events, "sent")["message"]
    assert (copy["id"], copy["from"], copy["to"], copy["content"]) == (
        reply["id"], "alice", "bob", "from the phone")
    got = next(bob.messages(idle_timeout=WAIT))
    assert got["id"] == reply["id"]


def test_chat_history_command_read_markers_and_sent_copies(server, connect, chat_terminal):
    bob = connect(server, "bob", register=True)
    connect(server).register("alice", PASSWORD)
    bob_events = events_of(bob)
    ids = [bob.send("alice", text)["id"] for text in ("first", "second", "third")]

    chat = chat_terminal("chat", "--server", server.address, "--user", "alice", "--to", "bob")
    chat.expect("password for alice: ")
    chat.type(PASSWORD + "\n")
    chat.expect("bob: third")
    # What the chat printed is marked read: bob hears it.
    upto = 0
    while upto < ids[-1]:
        upto = next_event(bob_events, "read")["upto"]
    assert upto == ids[-1]

    chat.expect("to bob> ")
    chat.type("/history 2\n")
    chat.expect(r"--- the last 2 with bob ---\s+\[\d\d:\d\d\] bob: second\s+\[\d\d:\d\d\] bob: third\s+---")

    chat.type("hello bob\n")
    got = next(bob.messages(idle_timeout=WAIT))
    assert got["content"] == "hello bob"
    bob.read("alice", got["id"])
    chat.expect(r"\(bob has read: hello bob\)")

    phone = connect(server, "alice")
    phone.send("bob", "from my phone")
    chat.expect(r"you \(another device\) to bob: from my phone")

    chat.type("/history x\n")
    chat.expect("usage: /history")
    chat.type("/quit\n")
    assert chat.wait_exit() == 0


def test_history_and_its_events_over_a_websocket(server, connect):
    # The same commands and events through the WebSocket door (transport="ws").
    bob = connect(server, "bob", register=True)
    alice = connect(server, "alice", register=True)
    laptop = Client("127.0.0.1", server.port, timeout=10, transport="ws")
    try:
        laptop.login("alice", PASSWORD)
        laptop_events = events_of(laptop)
        sent = alice.send("bob", "over the line door")["id"]
        assert next_event(laptop_events, "sent")["message"]["id"] == sent
        bob.read("alice", sent)
        assert next_event(laptop_events, "read")["upto"] == sent
        page = laptop.history("bob")
        assert [m["content"] for m in page["messages"]] == ["over the line door"]
        [conv] = laptop.conversations()["conversations"]
        assert (conv["with"], conv["read_upto"]) == ("bob", sent)
    finally:
        laptop.close()
