"""The README's two-terminal netcat walkthrough, replayed letter by letter.

The test reads README.md, takes each code block of the section "Chat from
two terminals with netcat", types its request lines into the terminal the
text before the block names (one socket per terminal, as `nc` would), and
checks every reply and event line shown. A `…` in the README stands for a
value that differs per run (a token); `ts` values differ too. Everything
else must match exactly, so the README cannot drift from the server.
"""

import json
import re
import socket
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"
SECTION = "## Chat from two terminals with netcat"
ANY = object()


def walkthrough_blocks():
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end != -1 else len(text)]
    blocks = []
    for match in re.finditer(r"((?:[^\n]*\n)*?)```\n(.*?)```", section, re.S):
        before, body = match.group(1), match.group(2)
        terminal = re.findall(r"[Tt]erminal (\d)", before)
        lines = [l for l in body.splitlines() if l.strip()]
        blocks.append((int(terminal[-1]) if terminal else None, lines))
    return blocks


def expected(line):
    """A README reply line as JSON, with per-run values as wildcards."""
    value = json.loads(line.replace('"…"', '"\\u2026"'))

    def wild(v, key=None):
        if isinstance(v, dict):
            return {k: wild(x, k) for k, x in v.items()}
        if v == "\u2026" or key == "ts":
            return ANY
        return v

    return wild(value)


def matches(want, got):
    if want is ANY:
        return True
    if isinstance(want, dict):
        return isinstance(got, dict) and want.keys() == got.keys() and all(
            matches(want[k], got[k]) for k in want
        )
    return want == got


def test_the_readme_walkthrough_works_as_written(server):
    for sock, reader in replay_walkthrough(server.port).values():
        reader.close()
        sock.close()


def replay_walkthrough(port):
    """Types the walkthrough into sockets to 127.0.0.1:`port`, checking every
    line; returns the terminals, still open: {number: (socket, reader)}."""
    blocks = walkthrough_blocks()
    assert len(blocks) >= 4, "the walkthrough has a block per step"
    terminals = {}
    for terminal, lines in blocks:
        assert terminal in (1, 2), f"block without a terminal: {lines}"
        for line in lines:
            if line.startswith("$ nc"):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                terminals[terminal] = (sock, sock.makefile("rb"))
                continue
            sock, reader = terminals[terminal]
            if line.startswith("{"):
                got = json.loads(reader.readline())
                assert matches(expected(line), got), f"terminal {terminal}: README shows {line}, server said {got}"
            else:
                sock.sendall(line.encode() + b"\n")
    return terminals
