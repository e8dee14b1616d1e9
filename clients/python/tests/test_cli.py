"""Tests of the programs: the register/send subcommands, the echo bot, and the
terminal chat driven through a pseudo-terminal."""

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import CLIENT_DIR, PASSWORD, installed_script, read_until
from gotalk_client import Unauthorized

CLIENT = installed_script("gotalk-client")
ECHO_BOT = str(CLIENT_DIR / "examples" / "echo_bot.py")


def run_cli(*args, password=None, stdin=None):
    env = dict(os.environ)
    env.pop("GOTALK_PASSWORD", None)
    if password is not None:
        env["GOTALK_PASSWORD"] = password
    return subprocess.run([sys.executable, CLIENT, *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=30)


def test_register_and_send_subcommands(server, connect):
    r = run_cli("register", "--server", server.address, "--user", "carol", "--password", PASSWORD)
    assert r.returncode == 0, r.stderr
    assert "registered carol" in r.stdout
    bob = connect(server, "bob", register=True)

    r = run_cli("send", "--server", server.address, "--user", "carol", "--to", "bob",
                "hello", "from", "a", "script", password=PASSWORD)  # password from env
    assert r.returncode == 0, r.stderr
    sent_id = int(r.stdout.split()[-1])
    r = run_cli("send", "--server", server.address, "--user", "carol", "--to", "bob",
                password=PASSWORD, stdin="from stdin\n")
    assert r.returncode == 0, r.stderr
    msgs = bob.sync()
    assert [(m["from"], m["content"]) for m in msgs] == [
        ("carol", "hello from a script"), ("carol", "from stdin")]
    assert msgs[0]["id"] == sent_id


def test_logout_subcommand_revokes_every_token(server, connect):
    alice = connect(server, "alice", register=True)
    r = run_cli("logout", "--server", server.address, "--user", "alice", password=PASSWORD)
    assert r.returncode == 0, r.stderr
    assert "revoked every token of alice" in r.stdout
    with pytest.raises(Unauthorized):
        connect(server).auth(alice.token)


def test_subcommand_errors_exit_nonzero_with_the_server_code(server, connect):
    connect(server).register("carol", PASSWORD)
    r = run_cli("register", "--server", server.address, "--user", "carol", "--password", "x-password")
    assert r.returncode == 1 and "conflict" in r.stderr
    r = run_cli("send", "--server", server.address, "--user", "carol", "--to", "bob", "hi",
                password="wrong")
    assert r.returncode == 1 and "unauthorized" in r.stderr
    r = run_cli("send", "--server", server.address, "--user", "carol", "--to", "nobody", "hi",
                password=PASSWORD)
    assert r.returncode == 1 and "not_found" in r.stderr


def test_echo_bot_answers(server, connect):
    env = dict(os.environ, GOTALK_PASSWORD="bot-pw-123")
    bot = subprocess.Popen([sys.executable, ECHO_BOT, "--server", server.address,
                            "--user", "echo", "--register"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        read_until(bot.stdout.fileno(), "echo bot echo ready", timeout=15)
        alice = connect(server, "alice", register=True)
        alice.send("echo", "first")
        alice.send("echo", "second one")
        got = []
        for msg in alice.messages(idle_timeout=10):
            got.append((msg["from"], msg["content"]))
            if len(got) == 2:
                break
        assert got == [("echo", "echo: first"), ("echo", "echo: second one")]
    finally:
        bot.kill()
        bot.wait(10)
        bot.stdout.close()


class Terminal:
    """A child process on a pseudo-terminal, as a person at a keyboard sees it."""

    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: becomes the program, with the pty as its terminal
            os.environ.pop("GOTALK_PASSWORD", None)
            os.environ["TERM"] = "dumb"
            os.execv(sys.executable, [sys.executable, *argv])
        self.screen = ""  # everything matched so far
        self.unread = ""  # read, but after the last match

    def expect(self, pattern, timeout=10):
        text = read_until(self.fd, pattern, timeout, self.unread)
        end = re.search(pattern, text).end()
        self.screen += text[:end]
        self.unread = text[end:]

    def type(self, text):
        os.write(self.fd, text.encode())

    def wait_exit(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
            if select.select([self.fd], [], [], 0.05)[0]:
                try:
                    os.read(self.fd, 4096)  # keep draining: the child never blocks on output
                except OSError:
                    time.sleep(0.05)  # EIO once the child has let go of the terminal
        pytest.fail("chat did not exit within %ss" % timeout)

    def close(self):
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal():
    terms = []

    def start(*args):
        terms.append(Terminal([CLIENT, *args]))
        return terms[-1]

    yield start
    for t in terms:
        t.close()


def test_chat_in_a_terminal(server, connect, terminal):
    bob = connect(server, "bob", register=True)
    carol = connect(server, "carol", register=True)
    connect(server).register("alice", PASSWORD)

    chat = terminal("chat", "--server", server.address, "--user", "alice", "--to", "bob")
    chat.expect("password for alice: ")
    chat.type(PASSWORD + "\n")
    chat.expect("logged in as alice")
    chat.expect("to bob> ")

    bob.send("alice", "hi alice")
    chat.expect(r"bob: hi alice")  # printed live, no keypress needed

    chat.type("hello bob\n")
    got = next(bob.messages(idle_timeout=10))
    assert (got["from"], got["content"]) == ("alice", "hello bob")

    chat.expect(r"hello bob[\s\S]*to bob> ")  # sent; the next prompt is up
    chat.type("half-typ")  # an incoming message must not eat what is being typed
    chat.expect("half-typ")
    bob.send("alice", "interrupting")
    chat.expect(r"bob: interrupting[\s\S]*to bob> half-typ")
    chat.type("ed line\n")
    got = next(bob.messages(idle_timeout=10))
    assert got["content"] == "half-typed line"

    chat.type("/help\n")
    chat.expect(r"/to NAME")
    chat.type("/to carol\n")
    chat.expect("to carol> ")
    chat.type("hey carol\n")
    got = next(carol.messages(idle_timeout=10))
    assert (got["from"], got["content"]) == ("alice", "hey carol")

    chat.type("/to nobody\n")
    chat.type("anyone?\n")
    chat.expect("not sent: not_found")

    chat.type("/quit\n")
    assert chat.wait_exit() == 0
    assert PASSWORD not in chat.screen  # getpass did not echo it


def test_echo_bot_exits_with_one_clear_line_when_it_cannot_log_in_again(server):
    env = dict(os.environ, GOTALK_PASSWORD="bot-pw-123")
    bot = subprocess.Popen([sys.executable, ECHO_BOT, "--server", server.address,
                            "--user", "echo", "--register"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "echo bot echo ready" in bot.stdout.readline()
        server.restart()  # --memory: the new server knows neither the token nor the account
        _, err = bot.communicate(timeout=30)
    finally:
        bot.kill()
        bot.wait(10)
    assert bot.returncode == 1, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "unauthorized" in lines[0] and "cannot log in again as echo" in lines[0], err


def test_chat_without_a_terminal_shows_no_prompts(server, connect):
    connect(server).register("alice", PASSWORD)
    bob = connect(server, "bob", register=True)
    bob.send("alice", "waiting for you")
    r = run_cli("chat", "--server", server.address, "--user", "alice", "--to", "bob",
                password=PASSWORD, stdin="hello from a pipe\n/quit\n")
    assert r.returncode == 0, r.stderr
    assert ">" not in r.stdout, r.stdout
    got = next(bob.messages(idle_timeout=10))
    assert got["content"] == "hello from a pipe"


def test_chat_says_how_to_go_on_when_receiving_stops(server, connect, terminal):
    connect(server).register("alice", PASSWORD)
    chat = terminal("chat", "--server", server.address, "--user", "alice", "--to", "bob")
    chat.expect("password for alice: ")
    chat.type(PASSWORD + "\n")
    chat.expect("to bob> ")

    server.restart()  # --memory: alice's account and token are gone
    chat.expect("receiving stopped: unauthorized")
    chat.expect(r"/reconnect to try again, /quit to leave")
    chat.type("/reconnect\n")
    chat.expect("could not reconnect: unauthorized")

    connect(server).register("alice", PASSWORD)
    bob = connect(server, "bob", register=True)
    chat.type("/reconnect\n")
    chat.expect("receiving again")
    bob.send("alice", "after the reset")
    chat.expect("bob: after the reset")
    chat.type("/quit\n")
    assert chat.wait_exit() == 0


def test_chat_says_who_is_logged_in_before_the_backlog(server, connect, terminal):
    connect(server).register("alice", PASSWORD)
    bob = connect(server, "bob", register=True)
    bob.send("alice", "sent before the chat started")
    chat = terminal("chat", "--server", server.address, "--user", "alice")
    chat.expect("password for alice: ")
    chat.type(PASSWORD + "\n")
    chat.expect("bob: sent before the chat started")
    assert "logged in as alice" in chat.screen, chat.screen
    assert chat.screen.index("logged in as alice") < chat.screen.index("bob: sent before"), (
        chat.screen)
    chat.type("/quit\n")
    assert chat.wait_exit() == 0
