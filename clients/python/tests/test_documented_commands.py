"""Every command the README and docs/http.md show, run as a newcomer would
paste it, in order, against a started server.

The `console` blocks of a section are read as a terminal transcript: a line
starting with `$ ` is a command (continued on the next line after a
trailing `\\` or `|`), the lines up to the next command are what it prints.
Commands run one after another in one bash (so `ALICE=$(...)` carries over)
from the repository root, with the documented port 9000 replaced by the test
server's. Output must match line by line: a line that is `…` stands for any
number of lines, a `…` inside a JSON string for any string, and `ts` values
differ per run. The netcat walkthrough is replayed by
test_readme_walkthrough.py's `replay_walkthrough`, which this reuses; the
commands that start a server or the test suite are what runs these tests,
and are not replayed.

Also here: one password per user across the documents (each at least 8
characters, as new passwords must be), and the Python commands, which must
run from the repository root as written.
"""

import json
import os
import pty
import queue
import re
import shutil
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, installed_script, read_until
from test_readme_walkthrough import replay_walkthrough

README = REPO / "README.md"
HTTP_DOC = REPO / "docs" / "http.md"
PYTHON_README = REPO / "clients" / "python" / "README.md"
PROTOCOL = REPO / "protocol.md"
HELP_RS = REPO / "src" / "core" / "help.rs"

README_CURL = (README, "## From a browser, curl, or Python")
HTTP_SESSION = (HTTP_DOC, "## A session with curl")
PYTHON_PROGRAM = (PYTHON_README, "## The program")
COMMAND_TIMEOUT = 30.0
MIN_PASSWORD = 8
# Commands a person then types into: replayed in a terminal by their own test.
INTERACTIVE = ("gotalk_client.py chat",)


def section(path, heading):
    text = path.read_text(encoding="utf-8")
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end != -1 else len(text)]


def transcript(path, heading):
    """[(command, [expected output lines])] of the section's console blocks."""
    steps = []
    blocks = re.findall(r"^[ \t]*```console\n(.*?)^[ \t]*```", section(path, heading), re.S | re.M)
    assert blocks, f"{path.name}: no console blocks under {heading!r}"
    for block in blocks:
        lines = textwrap.dedent(block).splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                command = line[2:]
                while command.rstrip().endswith(("\\", "|")):
                    i += 1
                    command += "\n" + lines[i]
                steps.append((command, []))
            elif line.strip():
                assert steps, f"{path.name}: output before any command: {line!r}"
                steps[-1][1].append(line)
            i += 1
    return steps


class Shell:
    """One bash, fed one command at a time, in the repository root."""

    def __init__(self, port):
        self.port = port
        self.proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile"], cwd=REPO, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, command):
        """Runs `command` (its port 9000 made the server's); returns its
        output lines and exit status."""
        marker = "__gotalk_docs_%d__" % time.monotonic_ns()
        command = command.replace(":9000", ":%d" % self.port)
        self.proc.stdin.write("%s\nprintf '\\n%s %%s\\n' $?\n" % (command, marker))
        self.proc.stdin.flush()
        out = []
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("no end of %r within %.0fs; it printed:\n%s"
                            % (command, COMMAND_TIMEOUT, "".join(out)))
            if line is None:
                pytest.fail("bash exited during %r; it printed:\n%s" % (command, "".join(out)))
            if line.startswith(marker):
                status = int(line.split()[1])
                break
            out.append(line)
        text = "".join(out)
        # The marker starts on a new line: drop the newline it added.
        text = text[:-1] if text.endswith("\n") else text
        return [l.rstrip("\r") for l in text.splitlines() if l.strip("\r")], status

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def shell(server):
    assert shutil.which("curl"), "curl is missing: run scripts/install-test-deps.sh"
    sh = Shell(server.port)
    yield sh
    sh.close()


ANY = object()


# Figures that follow message ids: after other documents ran on the same
# server, their conversations hold more messages than one document shows.
ID_FIGURES = ("id", "upto", "read_upto", "unread", "more")


def wildcards(value, key=None, ids_vary=False):
    """A documented JSON value with the parts that differ per run as ANY."""
    if isinstance(value, dict):
        return {k: wildcards(v, k, ids_vary) for k, v in value.items()}
    if isinstance(value, list):
        return [wildcards(v, None, ids_vary) for v in value]
    if key == "ts" or (ids_vary and key in ID_FIGURES):
        return ANY
    if isinstance(value, str) and "\u2026" in value:
        return ANY
    return value


def same(want, got):
    if want is ANY:
        return True
    if isinstance(want, dict):
        return isinstance(got, dict) and want.keys() == got.keys() and all(
            same(want[k], got[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(want) == len(got) and all(
            same(w, g) for w, g in zip(want, got))
    return want == got


def line_matches(want, got, ids_vary):
    if want[:1] in ("{", "["):
        try:
            return same(wildcards(json.loads(want), ids_vary=ids_vary), json.loads(got))
        except ValueError:
            return False
    return want == got


def lines_match(want, got, ids_vary=False):
    """`want` against `got`, line by line; a `…` line matches any run of lines."""
    if not want:
        return not got
    if want[0].strip() == "\u2026":
        return any(lines_match(want[1:], got[k:], ids_vary) for k in range(len(got) + 1))
    return bool(got) and line_matches(want[0], got[0], ids_vary) and lines_match(
        want[1:], got[1:], ids_vary)


def replay(shell, doc, after_other_docs=False):
    """Runs every command of `doc` = (path, heading), checking its output.
    `after_other_docs`: the users exist already (a `/register` may answer
    409) and message ids are higher than shown."""
    path, heading = doc
    for command, want in transcript(path, heading):
        if any(word in command for word in INTERACTIVE):
            continue
        got, status = shell.run(command)
        where = "%s, %r" % (path.relative_to(REPO), command)
        assert status == 0, "%s exited with %d:\n%s" % (where, status, "\n".join(got))
        if after_other_docs and "/register" in command and len(got) == 1:
            reply = json.loads(got[0])
            if reply.get("error", {}).get("code") == "conflict":
                continue
        assert lines_match(want, got, ids_vary=after_other_docs), (
            "%s:\nthe document shows\n  %s\nthe server said\n  %s"
            % (where, "\n  ".join(want), "\n  ".join(got)))


def close_terminals(terminals):
    for sock, reader in terminals.values():
        reader.close()
        sock.close()


def test_the_readme_works_when_pasted_in_order(server, shell):
    terminals = replay_walkthrough(server.port)
    try:
        replay(shell, README_CURL)
    finally:
        close_terminals(terminals)


def test_the_http_docs_session_works_when_pasted_in_order(shell):
    replay(shell, HTTP_SESSION)


def test_the_http_docs_work_after_the_readme(server, shell):
    """Following the README and then docs/http.md, on one server."""
    terminals = replay_walkthrough(server.port)
    try:
        replay(shell, README_CURL)
        replay(shell, HTTP_SESSION, after_other_docs=True)
    finally:
        close_terminals(terminals)


def test_the_readme_chat_command_runs_from_the_repository_root(server, connect):
    connect(server).register("alice", documented_passwords()["alice"])
    (command,) = [c for c, _ in transcript(*README_CURL) if "gotalk_client.py chat" in c]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, as bash in a terminal runs it
        os.chdir(REPO)
        os.environ.pop("GOTALK_PASSWORD", None)
        os.environ["TERM"] = "dumb"
        os.execvp("bash", ["bash", "-c", command.replace(":9000", ":%d" % server.port)])
    try:
        text = read_until(fd, "password for alice: ", timeout=15)
        os.write(fd, (documented_passwords()["alice"] + "\n").encode())
        text = read_until(fd, "logged in as alice", text=text)
        os.write(fd, b"/quit\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                assert os.waitstatus_to_exitcode(status) == 0, text
                break
            try:
                os.read(fd, 4096)
            except OSError:
                time.sleep(0.05)
        assert pid == 0, "the chat did not exit after /quit"
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def code_blocks(path):
    return re.findall(r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```", path.read_text(encoding="utf-8"),
                      re.S | re.M)


def test_python_commands_in_the_docs_name_files_from_the_repository_root():
    found = 0
    for path in (README, PYTHON_README, HTTP_DOC):
        for block in code_blocks(path):
            for script in re.findall(r"python3 (\S+\.py)\b", block):
                found += 1
                assert (REPO / script).is_file(), (
                    "%s runs `python3 %s`, which is not a file under the repository root"
                    % (path.relative_to(REPO), script))
    assert found >= 3


def test_the_echo_bot_command_works_from_the_repository_root(server, connect):
    (command,) = [line for block in code_blocks(PYTHON_README) for line in block.splitlines()
                  if "echo_bot.py" in line]
    bot = subprocess.Popen(["bash", "-c", command.replace(":9000", ":%d" % server.port)],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        read_until(bot.stdout.fileno(), "echo bot echo ready", timeout=15)
        alice = connect(server, "alice", register=True)
        alice.send("echo", "are you there?")
        reply = next(alice.messages(idle_timeout=10))
        assert (reply["from"], reply["content"]) == ("echo", "echo: are you there?")
    finally:
        os.killpg(bot.pid, signal.SIGKILL)  # bash and the bot it started
        bot.wait(10)
        bot.stdout.close()


def test_the_client_readme_programs_work_when_pasted_in_order(server):
    """The client README's commands, run with the installed programs on an
    empty server (as the README says to start), each user's documented
    password in $GOTALK_PASSWORD and the input closed (the chat leaves at
    once); then its `sync` transcript, whose output must match."""
    passwords = documented_passwords()
    path = os.pathsep.join([os.path.dirname(installed_script("gotalk-client")),
                            os.environ["PATH"]])
    text = section(*PYTHON_PROGRAM)
    block = re.search(r"^```sh\n(.*?)^```", text, re.S | re.M).group(1)
    steps = [(command, None) for command in block.splitlines()] + transcript(*PYTHON_PROGRAM)
    assert len(steps) >= 8, steps
    for command, want in steps:
        user = re.search(r"--user (\w+)", command).group(1)
        env = dict(os.environ, PATH=path, GOTALK_PASSWORD=passwords[user],
                   GOTALK_SERVER="127.0.0.1:%d" % server.port)
        r = subprocess.run(["bash", "-c", command.replace(":9000", ":%d" % server.port)],
                           cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=COMMAND_TIMEOUT)
        assert r.returncode == 0, "%r exited with %d:\n%s%s" % (
            command, r.returncode, r.stdout, r.stderr)
        if want is not None:
            got = r.stdout.splitlines()
            assert lines_match(want, got), (
                "clients/python/README.md, %r:\nthe document shows\n  %s\nthe client said\n  %s"
                % (command, "\n  ".join(want), "\n  ".join(got)))


# ------------------------------------------------------------ passwords

def password_examples():
    """(document, user, password) for every example password in the docs."""
    patterns = [
        r"(?:REGISTER|LOGIN) (\w+) (\S+)",
        r"username=(\w+) -d password=(\S+)",
        r'"username":"(\w+)","password":"([^"]+)"',
        r'c\.(?:register|login)\("(\w+)", "([^"]+)"\)',
    ]
    found = []
    for path in (README, HTTP_DOC, PROTOCOL, PYTHON_README, HELP_RS):
        text = code_text(path)
        pairs = [pair for pattern in patterns for pair in re.findall(pattern, text)]
        pairs += [(user, password) for password, user
                  in re.findall(r"GOTALK_PASSWORD=(\S+) .*--user (\w+)", text)]
        for user, password in pairs:
            if password.startswith("<") or password.strip("`") == "password":
                continue  # a usage line: REGISTER <username> <password>
            found.append((path.relative_to(REPO), user, password))
    return found


def code_text(path):
    """What a reader would type: a document's code blocks and `code` spans
    (all of a source file)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".md":
        return text
    blocks = code_blocks(path)
    prose = re.sub(r"^[ \t]*```[a-z]*\n.*?^[ \t]*```", "", text, flags=re.S | re.M)
    return "\n".join(blocks + re.findall(r"`([^`\n]+)`", prose))


def documented_passwords():
    return {user: password for _, user, password in password_examples()}


def test_each_user_has_one_password_of_8_or_more_characters_in_every_document():
    examples = password_examples()
    assert len(examples) >= 10, examples
    by_user = {}
    for doc, user, password in examples:
        by_user.setdefault(user, set()).add((password, str(doc)))
        assert len(password) >= MIN_PASSWORD, (
            "%s gives %s the password %r, shorter than %d characters"
            % (doc, user, password, MIN_PASSWORD))
    for user, seen in by_user.items():
        passwords = {p for p, _ in seen}
        assert len(passwords) == 1, "%s has several passwords: %s" % (user, sorted(seen))
