"""The WebSocket door (`GET /ws`) with the `websockets` library as the
client, plain and over TLS: the line protocol in text messages (register,
login, send, push, ACK), pipelining, a 64 KiB message, fragments and
ping/pong; each bad frame closed with its code while the server keeps
serving others; a foreign Origin refused; --no-websocket; the server's
keep-alive ping and its stop; and the Python client's transport="ws"."""

import contextlib
import json
import socket
import ssl
import struct
import subprocess

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

import gotalk_ws
from conftest import PASSWORD, Server, gotalk_bin
from gotalk_client import Client


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    made = subprocess.run(
        [gotalk_bin(), "gen-cert", "--host", "localhost", "127.0.0.1", "--data", str(d)],
        capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    return d / "tls-cert.pem", d / "tls-key.pem"


@pytest.fixture(params=["plain", "tls"])
def door(request, cert):
    """A server and how to reach its /ws: (server, url, ssl context).

    Over TLS the `websockets` client is held to TLS 1.2. Its threading
    client reads the `ssl.SSLSocket` on a thread of its own while the
    caller writes to it, which OpenSSL does not allow: when the server's
    TLS 1.3 session tickets are read just as the upgrade request is
    written, the request is lost and the upgrade times out (the server's
    log then shows the handshake's 597 bytes in and nothing more). TLS 1.2
    sends nothing after the handshake. TLS 1.3 on /ws is covered by
    `test_the_python_client_speaks_websocket`, whose client does every TLS
    operation under one lock."""
    if request.param == "plain":
        srv = Server().start()
        yield srv, "ws://127.0.0.1:%d/ws" % srv.port, None
    else:
        srv = Server(extra_args=["--tls-cert", str(cert[0]), "--tls-key", str(cert[1]),
                                 "--tls-handshakes-per-address-second", "0"]).start()
        ctx = ssl.create_default_context(cafile=str(cert[0]))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        yield srv, "wss://localhost:%d/ws" % srv.port, ctx
    srv.stop()


def ask(ws, request):
    ws.send(json.dumps(request) if isinstance(request, dict) else request)
    return json.loads(ws.recv(timeout=10))


@contextlib.contextmanager
def logged_in(url, ctx, name):
    with ws_connect(url, ssl=ctx, subprotocols=["gotalk.v1"], open_timeout=10) as ws:
        assert ask(ws, "REGISTER %s %s" % (name, PASSWORD))["ok"]
        reply = ask(ws, {"cmd": "login", "username": name, "password": PASSWORD})
        assert reply["ok"], reply
        yield ws


def test_register_login_send_push_and_ack(door):
    _, url, ctx = door
    with logged_in(url, ctx, "alice") as alice, logged_in(url, ctx, "bob") as bob:
        assert alice.subprotocol == "gotalk.v1"
        sent = ask(alice, {"cmd": "send", "to": "bob", "content": "hi bob", "tag": "t1"})
        assert sent["ok"] and sent["tag"] == "t1"
        push = json.loads(bob.recv(timeout=10))
        assert push["event"] == "message"
        assert push["message"]["content"] == "hi bob"
        assert push["message"]["id"] == sent["id"]
        # Text form too, as from nc.
        assert ask(bob, "SEND alice hi alice")["ok"]
        assert json.loads(alice.recv(timeout=10))["message"]["content"] == "hi alice"
        assert ask(bob, {"cmd": "ack", "upto": sent["id"]}) == {"ok": True}
        synced = ask(bob, {"cmd": "sync"})
        assert synced["ok"] and synced["messages"] == []


def test_sent_copies_and_read_markers_reach_other_websocket_devices(door):
    """The history commands' events come over /ws as over the line door."""
    _, url, ctx = door
    with logged_in(url, ctx, "alice") as phone, logged_in(url, ctx, "bob") as bob:
        with ws_connect(url, ssl=ctx, open_timeout=10) as laptop:
            assert ask(laptop, "LOGIN alice %s" % PASSWORD)["ok"]
            sent = ask(phone, {"cmd": "send", "to": "bob", "content": "from the phone"})
            copy = json.loads(laptop.recv(timeout=10))
            assert copy["event"] == "sent", copy
            assert copy["message"]["id"] == sent["id"]
            assert copy["message"]["content"] == "from the phone"
            assert json.loads(bob.recv(timeout=10))["message"]["id"] == sent["id"]
            assert ask(bob, {"cmd": "read", "with": "alice", "upto": sent["id"]})["upto"] == sent["id"]
            for device in (phone, laptop):
                marker = json.loads(device.recv(timeout=10))
                assert marker["event"] == "read" and marker["by"] == "bob", marker
                assert marker["upto"] == sent["id"]
            page = ask(laptop, {"cmd": "history", "with": "bob"})
            assert [m["content"] for m in page["messages"]] == ["from the phone"]


def test_500_pipelined_sends_are_answered_in_order(door):
    _, url, ctx = door
    with logged_in(url, ctx, "carol") as carol, logged_in(url, ctx, "dave"):
        for i in range(500):
            carol.send(json.dumps({"cmd": "send", "to": "dave", "content": "m%d" % i, "tag": i}))
        replies = [json.loads(carol.recv(timeout=20)) for _ in range(500)]
        assert [r["tag"] for r in replies] == list(range(500))
        assert all(r["ok"] for r in replies)
        ids = [r["id"] for r in replies]
        assert ids == sorted(ids)


def test_a_64_kib_message_goes_through_both_ways(cert):
    srv = Server(extra_args=["--max-line", "131072"]).start()
    try:
        url = "ws://127.0.0.1:%d/ws" % srv.port
        with logged_in(url, None, "erin") as erin, logged_in(url, None, "frank") as frank:
            content = "x" * 65536
            assert ask(erin, {"cmd": "send", "to": "frank", "content": content})["ok"]
            push = json.loads(frank.recv(timeout=10))
            assert push["message"]["content"] == content
    finally:
        srv.stop()


def test_a_fragmented_message_is_one_request(door):
    _, url, ctx = door
    with logged_in(url, ctx, "gina") as gina:
        gina.send(['{"cmd":"pi', 'ng","ta', 'g":"frag"}'])
        assert json.loads(gina.recv(timeout=10)) == {"ok": True, "pong": True, "tag": "frag"}


def test_a_ping_is_answered_with_a_pong(door):
    _, url, ctx = door
    with ws_connect(url, ssl=ctx) as ws:
        assert ws.ping(b"are you there").wait(10)
        assert ask(ws, "PING") == {"ok": True, "pong": True}


# -- bad frames, each with its close code, on raw sockets ------------------

def raw_ws(port, path="/ws"):
    """A socket past the upgrade; frames are then written by hand."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % path).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return s


def read_frames(s):
    """Every frame the server writes until it closes: [(opcode, payload)]."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    frames = []
    while data:
        n, at = data[1] & 0x7F, 2
        if n == 126:
            n, at = struct.unpack("!H", data[2:4])[0], 4
        elif n == 127:
            n, at = struct.unpack("!Q", data[2:10])[0], 10
        frames.append((data[0] & 0x0F, data[at:at + n]))
        data = data[at + n:]
    return frames


def close_code(frames):
    assert frames and frames[-1][0] == 0x8, frames
    return struct.unpack("!H", frames[-1][1][:2])[0]


def unmasked(first, payload):
    return bytes([first, len(payload)]) + payload


BAD_FRAMES = [
    ("too big", gotalk_ws.frame(0x1, b"x" * 70000), 1009),
    ("not utf-8", gotalk_ws.frame(0x1, b"\xff\xfe"), 1007),
    ("binary", gotalk_ws.frame(0x2, b"\x00\x01"), 1003),
    ("unmasked", unmasked(0x81, b"PING"), 1002),
    ("reserved bit", bytes([0xC1]) + gotalk_ws.frame(0x1, b"PING")[1:], 1002),
    ("unknown opcode", gotalk_ws.frame(0x3, b"x"), 1002),
    ("control over 125 bytes", gotalk_ws.frame(0x9, b"p" * 126), 1002),
    ("fragmented control", gotalk_ws.frame(0x9, b"p", fin=False), 1002),
    ("stray continuation", gotalk_ws.frame(0x0, b"x"), 1002),
    ("fragments over the limit",
     gotalk_ws.frame(0x1, b"x" * 40000, fin=False) + gotalk_ws.frame(0x0, b"x" * 40000), 1009),
]


@pytest.mark.parametrize("what,data,code", BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_each_bad_frame_gets_its_close_code_and_others_are_served(server, what, data, code):
    with ws_connect("ws://127.0.0.1:%d/ws" % server.port) as bystander:
        s = raw_ws(server.port)
        # A request before the bad frame is still answered, before the close.
        s.sendall(gotalk_ws.frame(0x1, b'{"cmd":"ping","tag":"before"}') + data)
        frames = read_frames(s)
        s.close()
        assert json.loads(frames[0][1]) == {"ok": True, "pong": True, "tag": "before"}
        assert close_code(frames) == code, what
        assert ask(bystander, "PING") == {"ok": True, "pong": True}


def test_a_close_handshake_is_answered_and_quit_closes_with_1000(server):
    s = raw_ws(server.port)
    s.sendall(gotalk_ws.frame(0x8, struct.pack("!H", 1000) + b"done"))
    assert close_code(read_frames(s)) == 1000
    s.close()
    s = raw_ws(server.port)
    s.sendall(gotalk_ws.frame(0x1, b"QUIT"))
    frames = read_frames(s)
    s.close()
    assert json.loads(frames[0][1])["ok"] is True
    assert close_code(frames) == 1000


def test_a_ping_flood_gets_one_pong_per_drain_and_the_requests_still_run(server):
    s = raw_ws(server.port)
    s.sendall(gotalk_ws.frame(0x9, b"a") * 1000 + gotalk_ws.frame(0x1, b"QUIT"))
    frames = read_frames(s)
    s.close()
    pongs = [f for f in frames if f[0] == 0xA]
    assert 1 <= len(pongs) < 10, len(pongs)
    assert close_code(frames) == 1000


# -- the upgrade's checks ----------------------------------------------------

def test_a_foreign_origin_is_refused_with_403(server):
    with pytest.raises(InvalidStatus) as refused:
        ws_connect("ws://127.0.0.1:%d/ws" % server.port, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    # The server's own page is welcome.
    with ws_connect("ws://127.0.0.1:%d/ws" % server.port,
                    origin="http://127.0.0.1:%d" % server.port) as ws:
        assert ask(ws, "PING")["ok"]


def test_no_websocket_refuses_the_upgrade_with_a_plain_http_error():
    srv = Server(extra_args=["--no-websocket"]).start()
    try:
        with pytest.raises(InvalidStatus) as refused:
            ws_connect("ws://127.0.0.1:%d/ws" % srv.port)
        assert refused.value.response.status_code == 404
        assert b"--no-websocket" in refused.value.response.body
    finally:
        srv.stop()


# -- keep-alive and the server's stop -----------------------------------------

def test_a_silent_client_is_pinged_then_closed():
    srv = Server(extra_args=["--ws-ping-interval", "1"]).start()
    try:
        s = raw_ws(srv.port)
        s.sendall(gotalk_ws.frame(0x1, ("REGISTER ping_user %s" % PASSWORD).encode()))
        s.sendall(gotalk_ws.frame(0x1, ("LOGIN ping_user %s" % PASSWORD).encode()))
        frames = read_frames(s)  # until the server gives up on the silent client
        s.close()
        assert [json.loads(p)["ok"] for op, p in frames if op == 0x1] == [True, True]
        # Pinged, and closed (read_frames returned) for not answering.
        assert any(op == 0x9 for op, _ in frames), frames
    finally:
        srv.stop()


def test_sigterm_sends_the_shutdown_event_then_1001(cert):
    srv = Server().start()
    try:
        with logged_in("ws://127.0.0.1:%d/ws" % srv.port, None, "henry") as ws:
            srv.proc.terminate()
            assert json.loads(ws.recv(timeout=10)) == {"event": "shutdown"}
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 1001
    finally:
        srv.stop()


# -- the Python client over WebSocket ------------------------------------------

def tls_version(client):
    """The TLS version of a `Client` over wss: its WebSocket stream's socket
    is the client's own TLS stream."""
    return client._conn.sock.sock._tls.version()


def test_the_python_client_speaks_websocket(door):
    srv, url, ctx = door
    tls = url.startswith("wss")
    host = "localhost" if tls else "127.0.0.1"
    kw = {"cafile": ctx and srv.extra_args[1]} if tls else {}
    with Client(host, srv.port, transport="ws", **kw) as ivy, \
            Client(host, srv.port, transport="ws", **kw) as jack:
        if tls:
            # The client's own context, not the fixture's: TLS 1.3 on /ws.
            assert tls_version(ivy) == "TLSv1.3"
        ivy.register("ivy", PASSWORD)
        jack.register("jack", PASSWORD)
        ivy.login("ivy", PASSWORD)
        jack.login("jack", PASSWORD)
        sent = ivy.send("jack", "over ws")
        for msg in jack.messages(idle_timeout=10):
            assert msg["content"] == "over ws" and msg["id"] == sent["id"]
            break
        else:
            pytest.fail("no message for jack")
        assert ivy.ping() is not None
