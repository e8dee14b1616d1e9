"""docs/operating.md's "Metrics" section against a running server: the
/stats example has the keys the server's /stats has (values differ per
run, and the keys of the by-reason maps are whatever happened), every
figure its table explains is in the output, every figure in the output is
explained, and each /metrics line it shows is a family the server writes."""

import json
import re
import urllib.request

import pytest

from conftest import REPO, Server

DOC = REPO / "docs" / "operating.md"
# Maps keyed by what happened (a reason, a door/state, a flag): only their
# presence is compared.
OPEN_MAPS = {"server.closed_by_reason", "server.refused_by_reason",
             "server.connections_by_door_and_state", "limit_hits"}


def metrics_section():
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Metrics\n")
    return text[start:text.index("\n## ", start + 1)]


def keys(value, prefix=""):
    """The dotted paths of a /stats object, down to the open maps and lists."""
    found = set()
    for key, inner in value.items():
        path = prefix + key
        found.add(path)
        if isinstance(inner, dict) and path not in OPEN_MAPS:
            found |= keys(inner, path + ".")
    return found


@pytest.fixture
def stats(tmp_path):
    server = Server(tmp_path / "data", extra_args=["--metrics", "127.0.0.1:0"]).start()
    try:
        (address,) = {m.group(1) for line in server.log
                      for m in [re.search(r"metrics served at http://([0-9.:]+)/stats", line)] if m}

        def get(path):
            with urllib.request.urlopen("http://%s%s" % (address, path), timeout=10) as r:
                return r.read().decode()

        yield json.loads(get("/stats")), get("/metrics")
    finally:
        server.stop()


def test_the_stats_example_has_the_keys_of_real_output(stats):
    (example,) = re.findall(r"```json\n(.*?)```", metrics_section(), re.S)
    live, _ = stats
    assert keys(json.loads(example)) == keys(live)


def test_the_table_explains_every_figure_and_only_real_ones(stats):
    live, _ = stats
    real = keys(live)
    section = metrics_section()
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = set()
    for row in rows:
        first_cell = row.split("|")[1]
        parent = None
        for name in re.findall(r"`([a-z_.]+)`", first_cell):
            if name.startswith("."):  # `.pushed` after `messages.stored`: a sibling
                name = parent + name
            parent = name.rsplit(".", 1)[0] if "." in name else name
            named.add(name)
    assert named - real == set(), "the table names figures /stats does not have"
    leaves = {k for k in real if not isinstance(_at(live, k), dict) or k in OPEN_MAPS}
    unexplained = {k for k in leaves if k not in named and k.rsplit(".", 1)[0] not in named}
    assert unexplained == set(), "figures of /stats the table does not explain"


def _at(value, path):
    for part in path.split("."):
        value = value[part]
    return value


def test_the_metrics_lines_shown_are_families_the_server_writes(stats):
    _, metrics = stats
    families = {line.split("{")[0].split(" ")[0] for line in metrics.splitlines()
                if line and not line.startswith("#")}
    shown = re.findall(r"^(gotalk_[a-z_]+)[ {]", metrics_section(), re.M)
    assert shown, "the section shows no /metrics line"
    for name in shown:
        assert name in families, "%s is not in the server's /metrics" % name
