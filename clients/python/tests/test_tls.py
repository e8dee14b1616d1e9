"""The client over TLS: against a server started with a certificate from
`gotalk gen-cert`, the library (tls=True, cafile=...) and the program
(--tls --cafile) log in, send and receive; a client that does not trust the
certificate is refused at the handshake, and a plain client is told the
server requires TLS."""

import subprocess
import sys

import pytest

from conftest import PASSWORD, Server, gotalk_bin, installed_script
from gotalk_client import Client, ConnectionLost, GotalkError

CLIENT = installed_script("gotalk-client")


@pytest.fixture
def tls_server(tmp_path):
    made = subprocess.run(
        [gotalk_bin(), "gen-cert", "--host", "localhost", "127.0.0.1", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    cert, key = tmp_path / "tls-cert.pem", tmp_path / "tls-key.pem"
    assert "--tls-cert %s --tls-key %s" % (cert, key) in made.stdout
    # One test opens 100 sessions back to back from one address, past the
    # default per-address handshake rate, which tests/tls.rs checks.
    srv = Server(extra_args=["--tls-cert", str(cert), "--tls-key", str(key),
                             "--tls-handshakes-per-address-second", "0"]).start()
    srv.cafile = str(cert)
    yield srv
    srv.stop()


def test_library_over_tls(tls_server):
    port, cafile = tls_server.port, tls_server.cafile
    with Client("localhost", port, tls=True, cafile=cafile) as alice, \
            Client("127.0.0.1", port, cafile=cafile) as bob:
        alice.register("alice", PASSWORD)
        bob.register("bob", PASSWORD)
        alice.login("alice", PASSWORD)
        bob.login("bob", PASSWORD)
        sent = alice.send("bob", "hello over tls")
        for msg in bob.messages(idle_timeout=10):
            assert msg["content"] == "hello over tls"
            assert msg["id"] == sent["id"]
            break
        else:
            pytest.fail("no message for bob")
        assert alice.ping() is not None


def test_program_over_tls(tls_server):
    def run(*args):
        return subprocess.run(
            [sys.executable, CLIENT, *args, "--server", "localhost:%d" % tls_server.port,
             "--tls", "--cafile", tls_server.cafile, "--password", PASSWORD],
            capture_output=True, text=True, timeout=30)

    r = run("register", "--user", "carol")
    assert r.returncode == 0, r.stderr
    assert "registered carol" in r.stdout
    r = run("register", "--user", "dave")
    assert r.returncode == 0, r.stderr
    r = run("send", "--user", "carol", "--to", "dave", "hi", "dave")
    assert r.returncode == 0, r.stderr
    with Client("localhost", tls_server.port, cafile=tls_server.cafile) as dave:
        dave.login("dave", PASSWORD)
        got = dave.sync()
        assert [m["content"] for m in got] == ["hi dave"]


def test_an_untrusted_certificate_is_refused(tls_server):
    # The system's authorities do not know a gen-cert certificate.
    with pytest.raises(ConnectionLost) as refused:
        Client("localhost", tls_server.port, tls=True)
    assert "certificate" in str(refused.value).lower()


def test_a_plain_client_is_told_tls_is_required(tls_server):
    with Client("127.0.0.1", tls_server.port) as plain:
        with pytest.raises(GotalkError) as refused:
            plain.ping()
    assert "TLS" in str(refused.value)


def test_a_missing_cafile_is_a_clear_error(tls_server, tmp_path):
    with pytest.raises(GotalkError) as failed:
        Client("localhost", tls_server.port, cafile=str(tmp_path / "nope.pem"))
    assert "nope.pem" in str(failed.value)


def test_requests_right_after_the_handshake_are_answered(tls_server):
    # The server's session tickets arrive while the first request is
    # written; a client whose reader and writer shared one SSL object lost
    # or broke that write now and then. Many short sessions show it.
    port, cafile = tls_server.port, tls_server.cafile
    for i in range(100):
        with Client("localhost", port, cafile=cafile, timeout=10) as c:
            assert c.request("ping") == {"pong": True}, "session %d" % i
