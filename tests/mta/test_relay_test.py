"""`umboxctl relay test NAME` (SPEC §9): connects like a real delivery and
prints each step with the server's reply; exit 0 only when all pass."""
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from mta_util import ScriptServer, free_port, server_context

PASSWORD = "relay pw"


class Quiet:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
    return AuthResult(success=ok)


def sink(cert, authenticator=check):
    port = free_port()
    c = Controller(Quiet(), hostname="127.0.0.1", port=port, tls_context=server_context(cert),
                   authenticator=authenticator, auth_required=True)
    c.start()
    return c, port


def steps(out):
    """{step: (ok, detail)} of the last line of each step."""
    got = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[1] in ("ok", "FAILED"):
            got[parts[0]] = (parts[1] == "ok", parts[2] if len(parts) > 2 else "")
    return got


def test_every_step_passes(umbox, cert):
    c, port = sink(cert)
    try:
        umbox.ok("relay", "add", "hub", "--host", "127.0.0.1", "--port", str(port),
                 "--tls", "starttls", "--no-verify", "--user", "me", "--password-stdin",
                 stdin=PASSWORD + "\n")
        r = umbox.run("relay", "test", "hub")
    finally:
        c.stop()
    assert r.rc == 0, r
    s = steps(r.out)
    for name in ("resolve", "connect", "greeting", "EHLO", "STARTTLS", "TLS", "AUTH"):
        assert s[name][0], (name, r.out)
    assert "CN=sink.test" in s["TLS"][1] and "self-signed" in s["TLS"][1]
    assert s["greeting"][1].startswith("220 ")
    assert "relay hub works" in r.out


@pytest.mark.parametrize("mech,plen", [("plain", 400), ("login", 512)])
def test_long_account_and_password_are_sent(umbox, cert, mech, plen):
    """An account of 255 bytes (the most umboxctl takes) and a password of
    more than 256 go to the relay whole: with LOGIN the longest, 512; with
    PLAIN one whose initial response would take the command past 512
    octets, which then follows the server's 334 (RFC 4954 §4; the test
    server reads no line longer than about 1,000 octets)."""
    account, password = "a" * 255, "p" * plen
    seen = []

    def auth(server, session, envelope, mechanism, data):
        seen.append((mechanism, data.login, data.password))
        return AuthResult(success=(data.login, data.password) ==
                          (account.encode(), password.encode()))

    c, port = sink(cert, auth)
    try:
        umbox.ok("relay", "add", "hub", "--host", "127.0.0.1", "--port", str(port),
                 "--tls", "starttls", "--no-verify", "--auth", mech, "--user", account,
                 "--password-stdin", stdin=password + "\n")
        r = umbox.run("relay", "test", "hub")
    finally:
        c.stop()
    assert r.rc == 0, r
    assert steps(r.out)["AUTH"][0], r.out
    assert [m for m, _, _ in seen] == [mech.upper()]


def test_certificate_verification_fails_on_a_self_signed_server(umbox, cert):
    c, port = sink(cert)
    try:
        umbox.ok("relay", "add", "hub", "--host", "127.0.0.1", "--port", str(port),
                 "--tls", "starttls", "--user", "me", "--password-stdin", stdin=PASSWORD + "\n")
        r = umbox.run("relay", "test", "hub")
    finally:
        c.stop()
    assert r.rc == 1, r
    ok, detail = steps(r.out)["TLS"]
    assert not ok and "self-signed" in detail, r.out
    assert r.err.startswith("umboxctl: relay hub did not pass")


def relay_test_scripted(umbox, script):
    """relay test of a relay (plain, AUTH PLAIN) at a server that answers
    as script says."""
    server = ScriptServer(script)
    try:
        umbox.ok("relay", "add", "hub", "--host", "127.0.0.1", "--port", str(server.port),
                 "--tls", "none", "--auth", "plain", "--user", "me", "--password-stdin",
                 stdin="pw\n")
        return umbox.run("relay", "test", "hub")
    finally:
        server.close()


def test_wrong_password_fails_at_auth(umbox):
    r = relay_test_scripted(umbox, [
        (None, b"220 raw ESMTP\r\n"),
        ("EHLO", b"250-raw\r\n250 AUTH PLAIN LOGIN\r\n"),
        ("AUTH PLAIN", b"535 5.7.8 Authentication credentials invalid\r\n"),
    ])
    assert r.rc == 1, r
    ok, detail = steps(r.out)["AUTH"]
    assert not ok and detail.startswith("535 5.7.8"), r.out


@pytest.mark.parametrize("when", ["greeting", "AUTH"])
def test_a_malformed_reply_is_shown_at_its_step(umbox, when):
    """SPEC §9: each step with the server's reply.  A reply that is not
    SMTP (here "33x") fails its step with the reason, not silently."""
    r = relay_test_scripted(umbox, [(None, b"22x what\r\n")] if when == "greeting" else [
        (None, b"220 raw ESMTP\r\n"),
        ("EHLO", b"250-raw\r\n250 AUTH PLAIN\r\n"),
        ("AUTH PLAIN", b"33x hi\r\n"),
    ])
    assert r.rc == 1, r
    ok, detail = steps(r.out)[when]
    assert not ok and "malformed reply code" in detail, r.out


def test_nothing_listening(umbox):
    umbox.ok("relay", "add", "hub", "--host", "127.0.0.1", "--port", str(free_port()),
             "--tls", "none")
    r = umbox.run("relay", "test", "hub")
    assert r.rc == 1, r
    assert steps(r.out)["connect"][0] is False, r.out


def test_unknown_relay(umbox):
    r = umbox.run("relay", "test", "nosuch")
    assert r.rc == 4, r
