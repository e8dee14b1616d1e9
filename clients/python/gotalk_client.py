#!/usr/bin/env python3
"""goTalk Python client: the `Client` class and a small command-line program.

As a module (standard library only, Python 3.9+)::

    from gotalk_client import Client
    with Client("127.0.0.1", 9000) as c:
        c.login("alice", "s3cret-alice-pw")
        c.send("bob", "hello bob")
        for msg in c.messages():          # blocks; acknowledges what you consumed
            print(msg["from"], msg["content"])

As a program (`pip install ./clients/python` installs it as `gotalk-client`,
with `gotalk-chat` and `gotalk-send` for its two most used commands; without
installing, run `python3 gotalk_client.py` instead)::

    gotalk-client register --server 127.0.0.1:9000 --user alice
    gotalk-client send --server 127.0.0.1:9000 --user alice --to bob hello bob
    gotalk-client chat --server 127.0.0.1:9000 --user alice
    gotalk-client sync --server 127.0.0.1:9000 --user alice --wait --ack   # JSON lines
    gotalk-client logout --server 127.0.0.1:9000 --user alice   # every token of alice
    GOTALK_SERVER=127.0.0.1:9000 gotalk-chat --user alice

Over TLS (a server started with --tls-cert/--tls-key)::

    Client("localhost", 9000, tls=True, cafile="gotalk-data/tls-cert.pem")
    gotalk-chat --server localhost:9000 --tls --cafile gotalk-data/tls-cert.pem --user alice

`tls=True` verifies the server's certificate against the system's trusted
authorities, or against `cafile` when given (a self-signed certificate from
`gotalk gen-cert`); `ssl_context` takes a ready `ssl.SSLContext` instead.

The client speaks the JSON form of the goTalk line protocol. Every request
carries an integer "tag"; a reader thread matches each reply to its request by
that tag (or, for a reply the server could not tag, by request order) while
push events go to a queue that `Client.messages()` consumes.
"""

import argparse
import collections
import getpass
import itertools
import json
import os
import queue
import socket
import ssl
import sys
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

Message = Dict[str, Any]  # {"id", "from", "from_id", "to", "to_id", "content", "ts"}

__all__ = [
    "Client", "GotalkError", "ConnectionLost", "RequestTimeout", "BadRequest",
    "UnknownCommand", "Unauthorized", "NotFound", "Conflict", "TooLarge",
    "RateLimited", "Unavailable", "InternalError",
]

DEFAULT_PORT = 9000


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

class GotalkError(Exception):
    """An error reply from the server: `code` is the contract's error code."""

    code = "error"

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return "%s: %s" % (self.code, self.message)


class BadRequest(GotalkError):
    code = "bad_request"


class UnknownCommand(GotalkError):
    code = "unknown_command"


class Unauthorized(GotalkError):
    code = "unauthorized"


class NotFound(GotalkError):
    code = "not_found"


class Conflict(GotalkError):
    code = "conflict"


class TooLarge(GotalkError):
    code = "too_large"


class RateLimited(GotalkError):
    code = "rate_limited"


class Unavailable(GotalkError):
    code = "unavailable"


class InternalError(GotalkError):
    code = "internal"


class ConnectionLost(GotalkError):
    """The connection closed (or could not be made) before a reply arrived."""

    code = "connection_lost"


class RequestTimeout(ConnectionLost):
    """No reply in time; the connection is dropped, since it can't be trusted."""

    code = "timeout"


ERRORS = {cls.code: cls for cls in (
    BadRequest, UnknownCommand, Unauthorized, NotFound, Conflict, TooLarge,
    RateLimited, Unavailable, InternalError)}


def error_from_reply(reply: Dict[str, Any]) -> GotalkError:
    """Build the typed exception for an `{"ok":false,...}` reply."""
    err = reply.get("error") or {}
    code = err.get("code", "error")
    return ERRORS.get(code, GotalkError)(err.get("message", ""), code)


# --------------------------------------------------------------------------
# TLS over a plain socket, safe for one reading and one writing thread
# --------------------------------------------------------------------------

class _TlsStream:
    """A TLS session driven through memory buffers (`ssl.MemoryBIO`).

    An `ssl.SSLSocket` must not be read by one thread while another writes
    to it: OpenSSL's state is shared, and a read that takes in the server's
    session tickets while a write runs can lose the write or fail it with
    "internal error". Here every TLS operation runs under one lock that is
    never held while waiting for the network: the reader waits on the raw
    socket and then decrypts under the lock. Ciphertext to send is queued
    under that lock (so records keep their order) and written by whoever
    holds the send lock; the reader never waits for it, so a writer blocked
    on a full socket cannot stop the replies from being read."""

    CHUNK = 64 * 1024

    def __init__(self, sock, context, server_hostname):
        self.sock = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self._lock = threading.Lock()       # the TLS state and the queue
        self._send_lock = threading.Lock()  # the socket's sending side
        self._queued = bytearray()
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._take_output()
                self._flush(wait=True)
                if not self._receive():
                    raise ssl.SSLEOFError("the server closed during the handshake")
        self._take_output()
        self._flush(wait=True)

    def _take_output(self):
        """Queues the session's new ciphertext (call under the lock)."""
        self._queued += self._out.read()

    def _flush(self, wait):
        """Sends the queued ciphertext, unless `wait` is false and another
        thread is sending (it sends what is queued before it stops)."""
        if not self._send_lock.acquire(blocking=wait):
            return
        try:
            while True:
                with self._lock:
                    data, self._queued = bytes(self._queued), bytearray()
                if not data:
                    return
                self.sock.sendall(data)
        finally:
            self._send_lock.release()

    def _receive(self):
        """Moves what the socket has into the session; False at its end."""
        data = self.sock.recv(self.CHUNK)
        if not data:
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    def sendall(self, data):
        with self._lock:
            self._tls.write(data)
            self._take_output()
        self._flush(wait=True)

    def recv(self, size):
        """Plaintext, waiting for it; b"" once the server closed."""
        while True:
            with self._lock:
                try:
                    data = self._tls.read(size)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = b""
                self._take_output()
            self._flush(wait=False)
            if data is not None:
                return data
            # The locks are free while the socket is waited on.
            if not self._receive():
                with self._lock:
                    try:
                        return self._tls.read(size)
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLWantReadError):
                        return b""

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def shutdown(self, how):
        self.sock.shutdown(how)

    def close(self):
        self.sock.close()


def _lines(sock):
    """The lines a socket-like object receives, without their newline."""
    buf = bytearray()
    while True:
        data = sock.recv(65536)
        if not data:
            return
        start = len(buf)
        buf += data
        end = buf.find(b"\n", start)
        while end >= 0:
            yield bytes(buf[:end])
            del buf[:end + 1]
            end = buf.find(b"\n")


# --------------------------------------------------------------------------
# One TCP connection: writes under a lock, a reader thread for replies/events
# --------------------------------------------------------------------------

class _Connection:
    def __init__(self, host, port, timeout, on_event, ssl_context=None, transport="line"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            if ssl_context is not None:
                # The handshake runs here, within the connect timeout.
                self.sock = _TlsStream(self.sock, ssl_context, server_hostname=host)
            if transport == "ws":
                import gotalk_ws  # the line protocol in WebSocket messages (/ws)
                self.sock = gotalk_ws.WsStream(self.sock, host, port)
        except (OSError, ssl.SSLError):
            self.sock.close()
            raise
        self.sock.settimeout(None)  # the reader thread blocks until data or close
        self._on_event = on_event
        self._lock = threading.Lock()
        self._pending = collections.OrderedDict()  # tag -> [threading.Event, reply]
        self.alive = True
        threading.Thread(target=self._read_loop, daemon=True,
                         name="gotalk-reader").start()

    def request(self, obj, timeout):
        """Send one request object and wait for its reply object."""
        slot = [threading.Event(), None]
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if not self.alive:
                raise ConnectionLost("not connected")
            self._pending[obj["tag"]] = slot  # registered before the reply can come
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self._pending.pop(obj["tag"], None)
                self._shutdown()
                raise ConnectionLost("write failed: %s" % exc) from None
        if not slot[0].wait(timeout):
            self.close()
            raise RequestTimeout("no reply to %r within %.1fs" % (obj.get("cmd"), timeout))
        if slot[1] is None:
            raise ConnectionLost("connection closed before the reply")
        return slot[1]

    def _read_loop(self):
        try:
            for raw in _lines(self.sock):
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue  # not JSON: nothing we could match it to
                if not isinstance(obj, dict):
                    continue
                if "ok" in obj:
                    self._deliver(obj)
                elif "event" in obj:
                    self._on_event(obj, self)
        except (OSError, ValueError):
            pass
        finally:
            self.close()

    def _deliver(self, reply):
        with self._lock:
            slot = self._pending.pop(reply.get("tag"), None)
            if slot is None and self._pending:
                # Untagged reply (e.g. too_large: the server never saw our JSON).
                # Replies come in request order, so it answers the oldest request.
                _, slot = self._pending.popitem(last=False)
        if slot is not None:
            slot[1] = reply
            slot[0].set()

    def _shutdown(self):
        """Close the socket; the reader thread then finishes the cleanup."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        with self._lock:
            if not self.alive:
                return
            self.alive = False
            pending, self._pending = self._pending, collections.OrderedDict()
        self._shutdown()
        self.sock.close()
        for slot in pending.values():
            slot[0].set()  # the waiter finds no reply: ConnectionLost
        self._on_event(None, self)  # tells messages() this connection is gone

    def send_quiet(self, obj):
        """Fire-and-forget write (used for QUIT on close)."""
        with self._lock:
            if self.alive:
                try:
                    self.sock.sendall((json.dumps(obj) + "\n").encode())
                except OSError:
                    pass


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------

class Client:
    """A goTalk connection. Thread-safe: one thread may iterate `messages()`
    while others send."""

    SYNC_PAGE = 100
    KEEPALIVE = 30.0  # seconds of silence before messages() pings the server

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = 10.0,
                 tls: bool = False, cafile: Optional[str] = None,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 transport: str = "line") -> None:
        self.host, self.port, self.timeout = host, int(port), timeout
        self.transport = transport  # "line", or "ws" for WebSocket (gotalk_ws)
        if ssl_context is None and (tls or cafile):
            try:
                ssl_context = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise GotalkError("cannot read the CA file %s: %s" % (cafile, exc)) from None
        self.ssl_context = ssl_context  # None: plain TCP
        self.token = None
        self.user = None  # {"id":..., "username":...} once logged in
        self._password = None  # kept only to log in again if a token expires
        self._tags = itertools.count(1)
        self._events = queue.Queue()
        self._reconnect_lock = threading.Lock()
        self._closed = False
        self._acked = 0  # highest id this client acknowledged
        # Called on the reader thread with each "sent" and "read" event
        # (see on_event's use below); None: they are dropped.
        self.on_event = None
        self._conn = None
        self._connect()

    # -- plumbing ---------------------------------------------------------

    def _connect(self):
        try:
            self._conn = _Connection(self.host, self.port, self.timeout, self._on_event,
                                     self.ssl_context, self.transport)
        except OSError as exc:  # ssl.SSLError (a failed verification) is one too
            raise ConnectionLost("cannot connect to %s:%d: %s"
                                 % (self.host, self.port, exc)) from None

    def _on_event(self, event, conn):
        if event is not None and event.get("event") in ("sent", "read"):
            # Not messages to consume: they go to the caller's hook. It runs on
            # the reader thread, so it must not wait for a reply itself.
            hook = self.on_event
            if hook is not None:
                hook(event)
            return
        self._events.put((event, conn))

    def request(self, cmd: str, timeout: Optional[float] = None, **fields: Any) -> Dict[str, Any]:
        """Send any command; return the reply without "ok"/"tag", or raise."""
        conn = self._conn
        if self._closed or conn is None:
            raise ConnectionLost("client is closed")
        obj = {"cmd": cmd, "tag": next(self._tags)}
        obj.update((k, v) for k, v in fields.items() if v is not None)
        reply = conn.request(obj, self.timeout if timeout is None else timeout)
        if not reply.get("ok"):
            raise error_from_reply(reply)
        return {k: v for k, v in reply.items() if k not in ("ok", "tag")}

    # -- commands ---------------------------------------------------------

    def register(self, username: str, password: str) -> Dict[str, Any]:
        """Create an account; returns the user object."""
        return self.request("register", username=username, password=password)["user"]

    def login(self, username: str, password: str) -> Dict[str, Any]:
        """Log in and bind this connection to the user; returns the user object."""
        reply = self.request("login", username=username, password=password)
        self.token, self.user, self._password = reply["token"], reply["user"], password
        return self.user

    def auth(self, token: str) -> Dict[str, Any]:
        """Bind this connection to the user a token (from LOGIN) belongs to."""
        self.user = self.request("auth", token=token)["user"]
        self.token = token
        return self.user

    def send(self, to: Union[str, int], content: str,
             client_id: Optional[str] = None) -> Dict[str, Any]:
        """Send a message; returns {"id":..., "ts":...}. `to` is a username or
        an integer user id. The same `client_id` never stores a message twice."""
        target = {"to_id": to} if isinstance(to, int) else {"to": to}
        return self.request("send", content=content, client_id=client_id, **target)

    def sync(self, after: Optional[int] = None, limit: Optional[int] = None,
             wait_ms: int = 0) -> List[Message]:
        """Unacknowledged messages with id above `after` (which also
        acknowledges everything up to `after`), oldest first."""
        timeout = self.timeout + (wait_ms or 0) / 1000.0
        reply = self.request("sync", timeout=timeout, after=after, limit=limit,
                             wait_ms=wait_ms or None)
        if after:
            self._acked = max(self._acked, after)
        return reply["messages"]

    def ack(self, upto: int) -> None:
        """Acknowledge every message up to id `upto`."""
        self.request("ack", upto=upto)
        self._acked = max(self._acked, upto)

    def ping(self) -> bool:
        return bool(self.request("ping").get("pong"))

    def logout(self, all: bool = False) -> str:
        """Revoke this connection's token (all=True: every token of the
        account, on every connection). The connection stays open but is no
        longer logged in; other connections bound by a revoked token get a
        "revoked" event. Returns "token" or "all"."""
        reply = self.request("logout", all=True if all else None)
        # Forgotten, so a reconnect does not log in again behind the user's back.
        self.token, self._password = None, None
        return reply["revoked"]

    def close(self) -> None:
        """Say QUIT and close; messages() then ends. Safe to call twice."""
        self._closed = True
        conn = self._conn
        if conn is not None:
            conn.send_quiet({"cmd": "quit"})
            conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- conversations: history, read markers, the list ----------------

    @staticmethod
    def _partner(with_: "str | int") -> dict:
        return {"with_id": with_} if isinstance(with_, int) else {"with": with_}

    def history(self, with_: "str | int", before: "int | None" = None,
                limit: "int | None" = None) -> dict:
        """One page of the conversation with `with_` (a username or a user
        id), both directions: {"messages": [...], "more": bool}. The messages
        are the `limit` (default 50, at most 200) with ids below `before`
        (the newest when None), oldest first; "more" says whether older ones
        exist (ask again with before=messages[0]["id"]). Reading history
        acknowledges nothing."""
        return self.request("history", before=before, limit=limit, **self._partner(with_))

    def conversations(self, before: "int | None" = None, limit: "int | None" = None) -> dict:
        """The user's conversations, newest first: {"conversations": [{"with",
        "with_id", "last" (the newest message), "unread" (the partner's
        messages above your read marker), "read_upto" (the partner's marker on
        your messages)}, ...], "more": bool}. The next page: before=the last
        entry's last["id"]."""
        return self.request("conversations", before=before, limit=limit)

    def read(self, with_: "str | int", upto: int) -> int:
        """Marks the conversation with `with_` read up to message id `upto`
        (a marker never moves back; an id above the newest is clamped).
        Returns the marker. The partner's connections, and your other ones,
        get {"event":"read",...} (see `on_event`)."""
        return self.request("read", upto=upto, **self._partner(with_))["upto"]

    # -- surviving a dropped connection ---------------------------------

    def reconnect(self, give_up_after: Optional[float] = 30.0, force: bool = False) -> None:
        """Open a new connection and authenticate it again with the token (or,
        if the server no longer knows the token, with the login password).
        Does nothing if another thread already reconnected, unless `force`:
        then the current connection is dropped first. Retries with backoff
        for `give_up_after` seconds (None: forever)."""
        with self._reconnect_lock:
            if force and self._conn is not None:
                self._conn.close()
            if self._conn is not None and self._conn.alive:
                return
            deadline = None if give_up_after is None else time.monotonic() + give_up_after
            delay = 0.05
            while True:
                if self._closed:
                    raise ConnectionLost("client is closed")
                try:
                    self._connect()
                    self._authenticate()
                    return
                except ConnectionLost:
                    if deadline is not None and time.monotonic() + delay > deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _authenticate(self):
        if not self.token:
            return
        try:
            self.auth(self.token)
            return
        except Unauthorized:
            if self._password is None or self.user is None:
                raise
        # The token was refused: log in again, outside the except, so that a
        # failure here is reported as itself, not as a chain of causes.
        name = self.user["username"]
        try:
            self.login(name, self._password)
        except Unauthorized as exc:
            raise Unauthorized("cannot log in again as %s after reconnecting: %s "
                               "(was the server's data reset?)" % (name, exc.message)) from None

    # -- receiving --------------------------------------------------------

    def messages(self, idle_timeout: Optional[float] = None,
                 reconnect_for: Optional[float] = 30.0) -> Iterator[Message]:
        """Yield incoming messages (dicts), oldest first, forever.

        First the unacknowledged backlog (SYNC), then pushed messages. A
        message counts as consumed once you ask for the next one (or stop
        iterating); consumed messages are acknowledged before the iterator
        blocks. If the connection drops, it reconnects, authenticates again
        and resumes after the last consumed id: nothing lost, nothing handed
        to you twice.

        idle_timeout: stop iterating after this many seconds without a
        message (None: never). reconnect_for: give up (ConnectionLost) when
        the server can't be reached for this long (None: never).
        """
        handed = self._acked  # highest id handed to the caller
        seen = set()  # ids handed over that the server may still hold unacknowledged
        backlog = True
        try:
            while True:
                try:
                    if backlog:
                        batch = self.sync(after=handed or None, limit=self.SYNC_PAGE)
                        backlog = bool(batch)  # a page may be short (size cap): go on until empty
                    else:
                        batch = self._wait_for_pushes(handed, idle_timeout)
                        if batch is None:
                            return
                except ConnectionLost:
                    if self._closed:
                        return
                    batch = None
                except _Unbound as exc:
                    if exc.event == "revoked":
                        raise Unauthorized("this connection's token was revoked (LOGOUT); "
                                           "log in again") from None
                    # Expired: log in again with the password (AUTH would be
                    # refused), then pick up what arrived meanwhile.
                    self._authenticate()
                    backlog = True
                    continue
                if batch is None:
                    # Outside the except, so a failure to reconnect is
                    # reported alone, not as a chain of causes.
                    self.reconnect(reconnect_for)
                    backlog = True
                    continue
                seen = {i for i in seen if i > self._acked}
                for msg in sorted(batch, key=lambda m: m["id"]):
                    if msg["id"] <= self._acked or msg["id"] in seen:
                        continue  # already handed over (a redelivery after reconnect)
                    seen.add(msg["id"])
                    handed = max(handed, msg["id"])
                    yield msg
        finally:
            if handed > self._acked and not self._closed:
                try:
                    self.ack(handed)
                except GotalkError:
                    pass  # not acknowledged: the server delivers it again later

    def _wait_for_pushes(self, handed, idle_timeout):
        """Block for pushed messages; acknowledge `handed` before blocking.
        Returns a list of messages, or None after idle_timeout seconds."""
        deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
        while True:
            if handed > self._acked and self._events.empty():
                self.ack(handed)
            wait = self.KEEPALIVE
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return None
            try:
                event, conn = self._events.get(timeout=wait)
            except queue.Empty:
                if deadline is None or time.monotonic() < deadline:
                    self.ping()  # a silent dead connection shows up here
                continue
            if event is None:  # a connection closed
                if conn is self._conn:
                    raise ConnectionLost("connection closed")
                continue
            batch = []
            while True:
                kind = event.get("event") if event is not None else None
                if kind in ("revoked", "expired") and conn is self._conn:
                    raise _Unbound(kind)
                if kind == "message":
                    batch.append(event["message"])
                try:
                    event, conn = self._events.get_nowait()
                except queue.Empty:
                    break
                if event is None:  # keep the close marker for the next round
                    self._events.put((event, conn))
                    break
            if batch:
                return batch


class _Unbound(Exception):
    """The server unbound this connection: its token was revoked or expired."""

    def __init__(self, event):
        super().__init__(event)
        self.event = event


# --------------------------------------------------------------------------
# Command-line program
# --------------------------------------------------------------------------

def parse_server(text: str) -> Tuple[str, int]:
    """"host:port" (or just "host") -> (host, port)."""
    host, _, port = text.rpartition(":")
    if not host:
        return text, DEFAULT_PORT
    return host.strip("[]"), int(port)


def get_password(args):
    if args.password is not None:
        return args.password
    if os.environ.get("GOTALK_PASSWORD"):
        return os.environ["GOTALK_PASSWORD"]
    return getpass.getpass("password for %s: " % args.user)


def format_message(msg: Message) -> str:
    stamp = time.strftime("%H:%M", time.localtime(msg.get("ts", 0) / 1000.0))
    return "[%s] %s: %s" % (stamp, msg.get("from"), msg.get("content"))


def cmd_register(client, args):
    user = client.register(args.user, get_password(args))
    print("registered %s (id %s)" % (user["username"], user["id"]))


def cmd_send(client, args):
    client.login(args.user, get_password(args))
    content = " ".join(args.text) if args.text else sys.stdin.read().rstrip("\n")
    reply = client.send(args.to, content, client_id=uuid.uuid4().hex)
    print("sent %s" % reply["id"])


def cmd_logout(client, args):
    client.login(args.user, get_password(args))
    client.logout(all=True)
    print("revoked every token of %s; log in again where you use it" % args.user)


SYNC_WAIT_MAX = 300.0  # seconds: the server's cap on one long-poll (wait_ms)
SYNC_PAGE_MAX = 1000  # the server's cap on a SYNC's limit


def cmd_sync(client, args):
    """Prints unacknowledged messages as JSON lines, oldest first. With
    --ack, each page is acknowledged once it is written and flushed (by the
    next SYNC's `after`): what could not be written stays on the server."""
    client.login(args.user, get_password(args))
    left = args.limit or float("inf")  # with --ack: messages still to print
    page = int(min(left, SYNC_PAGE_MAX)) if args.ack else args.limit or client.SYNC_PAGE
    batch = client.sync(limit=page)
    if not batch and args.wait is not None:
        deadline = time.monotonic() + args.wait
        while not batch and time.monotonic() < deadline:
            wait = min(deadline - time.monotonic(), SYNC_WAIT_MAX)
            batch = client.sync(limit=page, wait_ms=max(1, int(wait * 1000)))
    while batch:
        batch = batch[:int(min(len(batch), left))]
        sys.stdout.write("".join(json.dumps(m, ensure_ascii=False, separators=(",", ":")) + "\n"
                                 for m in batch))
        sys.stdout.flush()  # a closed output raises here, before anything is acknowledged
        if not args.ack:
            return
        left -= len(batch)
        if left <= 0:
            client.ack(batch[-1]["id"])
            return
        batch = client.sync(after=batch[-1]["id"], limit=int(min(left, SYNC_PAGE_MAX)))


CHAT_HELP = """commands:
  /to NAME     send the following lines to NAME
  /history [N] show the last N messages with the current contact (default 20)
  /reconnect   connect and log in again (after "receiving stopped")
  /help        show this help
  /quit        leave (Ctrl-D works too)
any other line is sent to the current contact"""


class Chat:
    """The terminal chat: incoming messages print live above the input line."""

    def __init__(self, client, contact=None):
        self.client = client
        self.contact = contact
        self.out = threading.Lock()
        self.tty = sys.stdin.isatty() and sys.stdout.isatty()
        self.next_prompt = ""  # the prompt input() is about to show
        # The prompt on the screen, redrawn under output; set by readline's
        # pre-input hook once it has drawn it, never before: output that
        # comes earlier is written plainly, and readline draws the prompt
        # after it (else the prompt showed twice: "> > ").
        self.shown_prompt = None
        self.receiver = None  # the thread printing incoming messages
        self.sent = []  # (id, to, text) sent from this chat, until the partner reads them
        self.read_by = {}  # partner -> their read marker on our messages, from events
        client.on_event = self.on_event
        try:
            import readline  # noqa: F401  (line editing and get_line_buffer)
            self.readline = readline
        except ImportError:
            self.readline = None

    def prompt(self):
        """The input prompt; none when not talking to a person at a terminal."""
        if not self.tty:
            return ""
        return "to %s> " % self.contact if self.contact else "> "

    def prompt_drawn(self):
        """readline's pre-input hook: the prompt is on the screen now."""
        with self.out:
            self.shown_prompt = self.next_prompt

    def show(self, text):
        """Print a line without wrecking what the person is typing."""
        with self.out:
            if self.tty and self.readline is not None and self.shown_prompt is not None:
                typed = self.readline.get_line_buffer()
                sys.stdout.write("\r\x1b[2K%s\n%s%s" % (text, self.shown_prompt, typed))
            else:
                sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def receive(self):
        try:
            for msg in self.client.messages(reconnect_for=None):
                if self.contact is None:
                    self.contact = msg["from"]
                    self.show("(talking to %s now; /to NAME to change)" % self.contact)
                self.show(format_message(msg))
                self.mark_read(msg["from"], msg["id"])
        except GotalkError as exc:
            if not self.client._closed:
                self.show("receiving stopped: %s" % exc)
                self.show("new messages will not show: /reconnect to try again, /quit to leave")

    def start_receiving(self):
        self.receiver = threading.Thread(target=self.receive, daemon=True, name="gotalk-chat")
        self.receiver.start()

    def reconnect(self):
        if self.receiver is not None and self.receiver.is_alive():
            self.show("still connected and receiving")
            return
        try:
            self.client.reconnect(give_up_after=10.0, force=True)
        except GotalkError as exc:
            self.show("could not reconnect: %s (/reconnect to try again, /quit to leave)" % exc)
            return
        self.show("reconnected; receiving again")
        self.start_receiving()

    def send(self, text):
        client_id = uuid.uuid4().hex  # makes the retry below safe
        try:
            try:
                reply = self.client.send(self.contact, text, client_id=client_id)
            except ConnectionLost:
                self.client.reconnect()
                reply = self.client.send(self.contact, text, client_id=client_id)
            with self.out:
                self.sent.append((reply["id"], self.contact, text))
            # The partner may have read it before the reply was seen here.
            self.report_read(self.contact)
        except GotalkError as exc:
            self.show("not sent: %s" % exc)

    def report_read(self, partner):
        """Says which of our messages the partner has read, once each."""
        with self.out:
            upto = self.read_by.get(partner, 0)
            seen = [s for s in self.sent if s[1] == partner and s[0] <= upto]
            self.sent = [s for s in self.sent if s not in seen]
        if seen:
            self.show("(%s has read: %s)" % (partner, seen[-1][2]))

    def mark_read(self, partner, upto):
        """What is on the screen is read: tell the server (and so the partner)."""
        try:
            self.client.read(partner, upto)
        except GotalkError:
            pass  # marked again with the next message shown

    def on_event(self, event):
        """Sent copies from your other devices, and the partner's read markers
        (called on the client's reader thread: prints, asks nothing)."""
        me = self.client.user["username"] if self.client.user else None
        if event.get("event") == "sent":
            msg = event.get("message") or {}
            stamp = time.strftime("%H:%M", time.localtime(msg.get("ts", 0) / 1000.0))
            self.show("[%s] you (another device) to %s: %s" % (stamp, msg.get("to"), msg.get("content")))
        elif event.get("event") == "read" and event.get("by") != me:
            by = event.get("by")
            with self.out:
                self.read_by[by] = max(self.read_by.get(by, 0), event.get("upto", 0))
            self.report_read(by)

    def show_history(self, arg):
        """/history [N]: the newest N messages with the current contact."""
        if self.contact is None:
            self.show("no contact yet: /to NAME first")
            return
        try:
            want = int(arg) if arg else 20
            if want < 1:
                raise ValueError
        except ValueError:
            self.show("usage: /history [N], N a number of messages, e.g. /history 50")
            return
        msgs, before = [], None
        try:
            while len(msgs) < want:
                page = self.client.history(self.contact, before=before,
                                           limit=min(200, want - len(msgs)))
                msgs = page["messages"] + msgs
                if not page["more"] or not page["messages"]:
                    break
                before = page["messages"][0]["id"]
        except GotalkError as exc:
            self.show("no history: %s" % exc)
            return
        if not msgs:
            self.show("(no messages with %s yet)" % self.contact)
            return
        self.show("--- the last %d with %s ---" % (len(msgs), self.contact))
        for msg in msgs:
            self.show(format_message(msg))
        self.show("---")
        self.mark_read(self.contact, msgs[-1]["id"])

    def run(self):
        if self.tty and self.readline is not None:
            self.readline.set_pre_input_hook(self.prompt_drawn)
        # Said before the receiver starts, so it comes before the backlog.
        self.show("logged in as %s. /help for commands" % self.client.user["username"])
        self.start_receiving()
        while True:
            self.next_prompt = self.prompt()
            try:
                line = input(self.next_prompt)
            except EOFError:
                break
            finally:
                with self.out:
                    self.shown_prompt = None
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                word, _, rest = line.partition(" ")
                if word == "/quit":
                    break
                elif word == "/to" and rest.strip():
                    self.contact = rest.strip()
                elif word == "/reconnect":
                    self.reconnect()
                elif word == "/history":
                    self.show_history(rest.strip())
                elif word == "/help":
                    self.show(CHAT_HELP)
                else:
                    self.show("unknown command %s; /help lists them" % word)
            elif self.contact is None:
                self.show("no contact yet: /to NAME first")
            else:
                self.send(line)


def cmd_chat(client, args):
    client.login(args.user, get_password(args))
    Chat(client, args.to).run()


def main(argv: Optional[List[str]] = None, command: Optional[str] = None) -> int:
    """The `gotalk-client COMMAND …` program (also `python3 gotalk_client.py
    COMMAND …`). With `command`, that command alone as its own program:
    `gotalk-chat …` is `gotalk-client chat …`. Returns the exit status."""
    parser = argparse.ArgumentParser(description="goTalk client")
    sub = parser.add_subparsers(dest="command", required=True)
    server = os.environ.get("GOTALK_SERVER") or "127.0.0.1:%d" % DEFAULT_PORT

    def add(name, func, help_text):
        own = {"prog": "gotalk-" + name} if name == command else {}
        p = sub.add_parser(name, help=help_text, description=help_text, **own)
        p.add_argument("--server", default=server,
                       help="HOST:PORT (default: $GOTALK_SERVER, else 127.0.0.1:%d)"
                            % DEFAULT_PORT)
        p.add_argument("--user", required=True, help="your username")
        p.add_argument("--password", help="default: $GOTALK_PASSWORD, else asked")
        p.add_argument("--tls", action="store_true",
                       help="connect with TLS, verifying the server's certificate")
        p.add_argument("--cafile", metavar="FILE",
                       help="trust this certificate (PEM), e.g. the one `gotalk gen-cert` "
                            "wrote; implies --tls")
        p.set_defaults(func=func)
        return p

    add("register", cmd_register, "create an account")
    p = add("send", cmd_send, "send one message (text from the arguments or stdin)")
    p.add_argument("--to", required=True, help="recipient username")
    p.add_argument("text", nargs="*", help="message text")
    add("logout", cmd_logout, "revoke every login token of the account (log out everywhere)")
    p = add("chat", cmd_chat, "interactive terminal chat")
    p.add_argument("--to", help="first contact")
    p = add("sync", cmd_sync, "print your unacknowledged messages as JSON lines, oldest first, "
                              "and exit (for scripts)")
    p.add_argument("--wait", nargs="?", type=_at_least(0, float), const=float("inf"),
                   metavar="SECONDS",
                   help="if none is waiting, wait for one (at most SECONDS; without a number, "
                        "as long as it takes)")
    p.add_argument("--ack", action="store_true",
                   help="acknowledge the printed messages once written, and go on until none "
                        "is left; without it they stay, and the next sync prints them again")
    p.add_argument("--limit", type=_at_least(1, int), metavar="N",
                   help="print at most N messages (default: without --ack one SYNC's worth, "
                        "%d; with --ack all)" % Client.SYNC_PAGE)

    if command is not None:
        argv = [command, *(sys.argv[1:] if argv is None else argv)]
    args = parser.parse_args(argv)
    try:
        host, port = parse_server(args.server)
    except ValueError:
        sub.choices[args.command].error("--server must be HOST:PORT")
    try:
        with Client(host, port, tls=args.tls, cafile=args.cafile) as client:
            args.func(client, args)
    except GotalkError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of our output went away: nothing more to say, and
        # nothing printed since the last flush was acknowledged.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _at_least(low, kind):
    """An argparse type: a number of `kind`, at least `low`."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value != value or value < low:  # value != value: NaN
            raise argparse.ArgumentTypeError("%r is not a number of at least %s" % (text, low))
        return value
    return parse


def chat_main(argv: Optional[List[str]] = None) -> int:
    """The `gotalk-chat` program: `gotalk-client chat` on its own."""
    return main(argv, command="chat")


def send_main(argv: Optional[List[str]] = None) -> int:
    """The `gotalk-send` program: `gotalk-client send` on its own."""
    return main(argv, command="send")


if __name__ == "__main__":
    sys.exit(main())
