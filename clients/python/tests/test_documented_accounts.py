"""docs/operating.md's "Accounts" section, pasted as an operator would:
every `gotalk admin` command it shows runs, in order, against a server
started with a data directory of its own (standing in for
/var/lib/gotalk), from a scratch directory (the section writes team.csv),
and prints what the document shows.

The section is read as a terminal transcript, as test_documented_commands
reads the README (its `transcript` and JSON wildcards are reused). A
command's exit status is not checked here: the section shows refusals,
whose one-line reason on stderr is part of the output compared. A line of
output that is not JSON matches with each `…` standing for any text.
"""

import json
import os
import re
import subprocess

from conftest import REPO, Server, gotalk_bin
from test_documented_commands import COMMAND_TIMEOUT, same, transcript, wildcards

OPERATING = REPO / "docs" / "operating.md"
DOCUMENTED_DATA = "/var/lib/gotalk"


def line_ok(want, got):
    try:
        return same(wildcards(json.loads(want)), json.loads(got))
    except ValueError:
        pattern = ".*".join(re.escape(part) for part in want.split("\u2026"))
        return re.fullmatch(pattern, got) is not None


def test_the_accounts_section_works_when_pasted_in_order(tmp_path):
    data = tmp_path / "data"
    work = tmp_path / "work"
    work.mkdir()
    server = Server(data_dir=data).start()
    try:
        binary = os.path.dirname(gotalk_bin())
        env = dict(os.environ, PATH=binary + os.pathsep + os.environ["PATH"])
        env.pop("GOTALK_DATA", None)
        steps = transcript(OPERATING, "## Accounts")
        assert len(steps) >= 15, steps
        for command, want in steps:
            assert command.startswith(("gotalk admin", "echo", "printf")), command
            run = subprocess.run(
                ["bash", "-c", command.replace(DOCUMENTED_DATA, str(data))],
                cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, timeout=COMMAND_TIMEOUT)
            got = [l for l in (run.stdout + run.stderr).splitlines() if l.strip()]
            ok = len(want) == len(got) and all(line_ok(w, g) for w, g in zip(want, got))
            assert ok, ("docs/operating.md, %r:\nthe document shows\n  %s\nthe server said\n  %s"
                        % (command, "\n  ".join(want), "\n  ".join(got)))
    finally:
        server.stop()
