"""Test harness for the Python client: starts real `gotalk` servers on free
loopback ports, a cuttable TCP proxy, and helpers to make users and clients.

The server binary is $GOTALK_BIN, else <repo>/target/debug/gotalk (build it
with `cargo build`). A missing binary fails the tests; it never skips them.

The client is the installed package, not the files beside these tests: run
them with the Python of an environment it was installed into (scripts/test.sh
uses target/python-venv), so a module the package leaves out fails them.
"""

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[1]
REPO = CLIENT_DIR.parents[1]
INSTALL_HINT = ("python3 -m venv target/python-venv && target/python-venv/bin/pip install "
                "pytest prometheus_client ./clients/python, then run the tests with "
                "target/python-venv/bin/python -m pytest (scripts/test.sh does this)")

try:
    from gotalk_client import Client
except ImportError:
    raise pytest.UsageError("the goTalk client package is not installed for %s: %s"
                            % (sys.executable, INSTALL_HINT)) from None


def installed_script(name):
    """The path of a console script the package installed (gotalk-client, …)."""
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.is_file():
        pytest.fail("%s is not installed beside %s: %s" % (name, sys.executable, INSTALL_HINT),
                    pytrace=False)
    return str(path)

READY = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
START_TIMEOUT = 20.0
PASSWORD = "secret-pw"


def gotalk_bin():
    path = Path(os.environ.get("GOTALK_BIN") or REPO / "target" / "debug" / "gotalk")
    if not path.is_file():
        pytest.fail("gotalk server binary not found at %s: run `cargo build` in %s "
                    "or set GOTALK_BIN" % (path, REPO), pytrace=False)
    return str(path)


# The tests register many users and try wrong passwords from one address:
# the login and registration throttles are opened wide.
UNTHROTTLED = ["--registers-per-address-hour", "1000000",
               "--login-failures-per-minute", "1000000",
               "--login-failure-burst", "1000000",
               "--login-failures-per-address-minute", "1000000",
               "--lookups-per-address-minute", "1000000",
               "--logins-per-account-minute", "1000000",
               # The fair shares too: tests send and connect faster than people.
               "--sends-per-second", "0",
               "--new-recipients-per-hour", "0",
               "--read-bytes-per-second", "0",
               "--connections-per-address-per-second", "0"]


class Server:
    """One gotalk process. `data_dir` None means --memory; `extra_args` are
    appended to its command line (--tls-cert, ...)."""

    def __init__(self, data_dir=None, extra_args=()):
        self.binary = gotalk_bin()
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = 0
        self.log = []  # stderr lines, for failure messages

    def start(self, port=0):
        store = ["--data", str(self.data_dir)] if self.data_dir else ["--memory"]
        self.proc = subprocess.Popen(
            [self.binary, *store, "--listen", "127.0.0.1:%d" % port, *UNTHROTTLED, *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        found = threading.Event()
        threading.Thread(target=self._drain, args=(self.proc, found), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not found.wait(0.05):
            exited = self.proc.poll()
            if exited is not None or time.monotonic() > deadline:
                self.kill()
                why = ("exited with status %s" % exited if exited is not None
                       else "stayed silent for %.0fs" % START_TIMEOUT)
                pytest.fail("gotalk (%s) %s without logging 'listening on 127.0.0.1:PORT'; "
                            "stderr:\n%s" % (self.binary, why, "".join(self.log[-30:])),
                            pytrace=False)
        return self

    def _drain(self, proc, found):
        # Reads stderr to the end, so the server never blocks on a full pipe.
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.log.append(line)
            m = READY.search(line)
            if m and not found.is_set():
                self.port = int(m.group(1))
                found.set()

    def kill(self):
        """SIGKILL, like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def restart(self):
        """Kill -9 and start again on the same port and data dir."""
        port = self.port
        self.kill()
        self.start(port)
        assert self.port == port, "restarted server is on another port"
        return self

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port


class Proxy:
    """A TCP relay to the server that the test can cut, to drop connections."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return  # listener closed
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                down.close()
                continue
            with self.lock:
                self.socks += [down, up]
            threading.Thread(target=self._pipe, args=(down, up), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 60)
                if not ready:
                    return
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self):
        """Drop every connection that goes through the proxy now."""
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()
        self.cut()


@pytest.fixture
def server():
    srv = Server().start()
    yield srv
    srv.stop()


@pytest.fixture
def durable_server(tmp_path):
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


@pytest.fixture
def proxy(server):
    p = Proxy(server.port)
    yield p
    p.close()


@pytest.fixture
def connect():
    """connect(server_or_port, user=None): a Client, logged in when `user` is
    given (registering it first when register=True); closed at teardown."""
    clients = []

    def _connect(target, user=None, register=False, password=PASSWORD):
        port = target if isinstance(target, int) else target.port
        c = Client("127.0.0.1", port, timeout=10)
        clients.append(c)
        if user and register:
            c.register(user, password)
        if user:
            c.login(user, password)
        return c

    yield _connect
    for c in clients:
        c.close()


def read_until(fd, pattern, timeout=10.0, text=""):
    """Read a pty/pipe fd until the regex `pattern` appears in `text` plus what
    was read; returns that text. Fails on timeout or end of stream."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, text):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("timed out waiting for %r; got:\n%s" % (pattern, text))
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                pytest.fail("stream closed waiting for %r; got:\n%s" % (pattern, text))
            text += chunk.decode("utf-8", "replace")
    return text
