"""The client as a package (clients/python/pyproject.toml): these tests run
with the Python of the environment it was installed into, and check that
every module beside the client was installed and is what the tests import,
that the console scripts are there and start, and that the public API keeps
its type hints."""

import importlib.metadata
import importlib.util
import inspect
import subprocess
import sysconfig
import typing
from pathlib import Path

import gotalk_client
from conftest import CLIENT_DIR, installed_script

SCRIPTS = {
    "gotalk-client": "gotalk_client:main",
    "gotalk-chat": "gotalk_client:chat_main",
    "gotalk-send": "gotalk_client:send_main",
}


def test_every_module_of_the_client_comes_from_the_installed_package():
    modules = sorted(path.stem for path in CLIENT_DIR.glob("*.py"))
    assert {"gotalk_client", "gotalk_ws"} <= set(modules), modules
    site = Path(sysconfig.get_path("purelib")).resolve()
    for name in modules:
        spec = importlib.util.find_spec(name)
        assert spec is not None, (
            "clients/python/%s.py is not in the installed package: list it in "
            "pyproject.toml's py-modules" % name)
        origin = Path(spec.origin).resolve()
        assert origin.parent == site, (
            "%s is imported from %s, not from the installed package in %s"
            % (name, origin, site))
    assert Path(gotalk_client.__file__).resolve().parent == site


def test_the_package_declares_the_console_scripts():
    dist = importlib.metadata.distribution("gotalk-client")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == SCRIPTS
    assert dist.requires is None, "the client is standard library only: %s" % dist.requires


def run(script, *args):
    return subprocess.run([installed_script(script), *args], capture_output=True, text=True,
                          timeout=30)


def test_gotalk_chat_help_runs_from_the_environment():
    r = run("gotalk-chat", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: gotalk-chat "), r.stdout
    for option in ("--server", "--user", "--to", "--cafile", "$GOTALK_SERVER"):
        assert option in r.stdout, r.stdout


def test_gotalk_send_help_and_a_missing_argument():
    r = run("gotalk-send", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: gotalk-send "), r.stdout
    r = run("gotalk-send", "--user", "alice")
    assert r.returncode == 2
    assert "gotalk-send: error: the following arguments are required: --to" in r.stderr


def test_gotalk_client_lists_its_commands():
    r = run("gotalk-client", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: gotalk-client "), r.stdout
    for command in ("register", "send", "chat", "sync", "logout"):
        assert command in r.stdout, r.stdout
    r = run("gotalk-client", "sync", "--help")
    assert r.returncode == 0 and "--wait" in r.stdout and "--ack" in r.stdout, r.stdout


def test_the_public_api_has_type_hints():
    client_methods = [getattr(gotalk_client.Client, name) for name in dir(gotalk_client.Client)
                      if not name.startswith("_") and inspect.isfunction(
                          getattr(gotalk_client.Client, name))]
    functions = [gotalk_client.Client.__init__, gotalk_client.GotalkError.__init__,
                 gotalk_client.error_from_reply, gotalk_client.parse_server,
                 gotalk_client.main, gotalk_client.chat_main, gotalk_client.send_main]
    assert len(client_methods) >= 12
    for func in client_methods + functions:
        hints = typing.get_type_hints(func)  # also checks that they resolve
        params = [p for p in inspect.signature(func).parameters if p not in ("self",)]
        missing = [p for p in params if p not in hints
                   and inspect.signature(func).parameters[p].kind not in (
                       inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
        assert "return" in hints and not missing, (
            "%s lacks type hints for %s" % (func.__qualname__, missing or ["its return"]))
