"""A small WebSocket client (RFC 6455) on the standard library alone, for
`gotalk_client.Client(transport="ws")`: the line protocol over goTalk's
`GET /ws` door instead of a bare TCP line stream.

`WsStream` wraps a connected socket (or the client's TLS stream) and looks
like one to the client: `sendall(b"<json line>\\n")` sends each line as one
masked text message, and `recv()` returns the next text message with a
newline appended, so the client's line reader works unchanged. Pings from
the server are answered with pongs, a close from the server is answered
with a close, and then `recv()` returns b"" like a socket at its end.
"""

import base64
import hashlib
import os
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUBPROTOCOL = "gotalk.v1"
MAX_HEAD = 16 * 1024

TEXT, BINARY, CONTINUE, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class HandshakeError(OSError):
    """The server did not switch to WebSocket (its HTTP status line says why)."""


def _mask(payload, key):
    """XOR with the 4-byte key, a whole integer at a time (fast in CPython)."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def frame(opcode, payload, fin=True):
    """One client frame: masked, as RFC 6455 requires of clients."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    key = os.urandom(4)
    return head + key + _mask(payload, key)


class WsStream:
    """A WebSocket connection to `/ws` over `sock`, with a socket's face."""

    def __init__(self, sock, host, port, path="/ws"):
        self.sock = sock
        self._send_lock = threading.Lock()
        self._buf = bytearray()
        self._fragments = None
        self._closed = False
        self.close_code = None  # the server's close code, once it closed
        key = base64.b64encode(os.urandom(16)).decode()
        authority = "[%s]" % host if ":" in host else host
        request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n"
                   % (path, authority, port, key, SUBPROTOCOL))
        sock.sendall(request.encode())
        head = self._read_head()
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if not status.startswith("HTTP/1.1 101"):
            raise HandshakeError("the server refused the WebSocket upgrade: %s" % status)
        expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"sec-websocket-accept") != expected:
            raise HandshakeError("the server's Sec-WebSocket-Accept does not match")

    def _read_head(self):
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > MAX_HEAD:
                raise HandshakeError("the server's answer to the upgrade is too long")
            data = self.sock.recv(65536)
            if not data:
                raise HandshakeError("the server closed during the WebSocket upgrade")
            self._buf += data
        end = self._buf.index(b"\r\n\r\n")
        head = bytes(self._buf[:end])
        del self._buf[:end + 4]
        return head

    def _send(self, opcode, payload):
        with self._send_lock:
            self.sock.sendall(frame(opcode, payload))

    def sendall(self, data):
        """Sends each line of `data` as one text message."""
        for line in bytes(data).split(b"\n"):
            if line:
                self._send(TEXT, line)

    def _need(self, n):
        """Reads until `n` bytes are buffered; False at the end of the stream."""
        while len(self._buf) < n:
            data = self.sock.recv(65536)
            if not data:
                return False
            self._buf += data
        return True

    def _next_frame(self):
        """(fin, opcode, payload) of the next server frame, or None at the end."""
        if not self._need(2):
            return None
        first, second = self._buf[0], self._buf[1]
        n, at = second & 0x7F, 2
        if n == 126:
            if not self._need(4):
                return None
            n, at = struct.unpack("!H", self._buf[2:4])[0], 4
        elif n == 127:
            if not self._need(10):
                return None
            n, at = struct.unpack("!Q", self._buf[2:10])[0], 10
        if not self._need(at + n):
            return None
        payload = bytes(self._buf[at:at + n])
        del self._buf[:at + n]
        return bool(first & 0x80), first & 0x0F, payload

    def recv(self, size=65536):
        """The next text message plus a newline; b"" once the server closed."""
        while not self._closed:
            got = self._next_frame()
            if got is None:
                self._closed = True
                break
            fin, opcode, payload = got
            if opcode == PING:
                try:
                    self._send(PONG, payload)
                except OSError:
                    pass
            elif opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self._send(CLOSE, payload[:2])
                except OSError:
                    pass
                self._closed = True
            elif opcode in (TEXT, CONTINUE):
                self._fragments = (self._fragments or b"") + payload
                if fin:
                    message, self._fragments = self._fragments, None
                    return message + b"\n"
        return b""

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def shutdown(self, how):
        if not self._closed:
            try:
                self._send(CLOSE, struct.pack("!H", 1000))
            except OSError:
                pass
        self.sock.shutdown(how)

    def close(self):
        self.sock.close()
