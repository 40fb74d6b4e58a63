"""The outbound SMTP client (aliases/mta.c) against real SMTP servers on
loopback: aiosmtpd as the outside world, and a scripted raw server for
what no well-behaved server sends.  Driven through tests/tools/mta-send."""
import base64
import hashlib
import hmac
import subprocess
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from mta_util import ScriptServer, free_port, mta_send, server_context

MESSAGE = (b"From: a@client.test\r\nTo: x@sink.test\r\nSubject: hello\r\n\r\n"
           b"line one\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\nlast\r\n")
PASSWORD = "s3cret pass"


class Sink:
    """Records what it receives; refuses recipients and senders on demand."""

    def __init__(self):
        self.messages = []
        self.refuse_rcpt = {}
        self.refuse_mail = None
        self.auth = []

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                              session.ssl is not None, getattr(session, "authenticated", False)))
        return "250 2.0.0 Ok: queued"

    async def auth_CRAM__MD5(self, server, args):
        challenge = b"<1234.5678@sink.test>"
        resp = await server.challenge_auth(challenge)
        # aiosmtpd hands over the answer already base64-decoded.
        user, digest = resp.decode().split(" ")
        want = hmac.new(PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
        self.auth.append(("CRAM-MD5", user))
        return AuthResult(success=user == "relayuser" and digest == want)


def authenticator(sink):
    def check(server, session, envelope, mechanism, data):
        if isinstance(data, LoginPassword):
            sink.auth.append((mechanism, data.login.decode()))
            ok = data.login == b"relayuser" and data.password == PASSWORD.encode()
            return AuthResult(success=ok)
        return AuthResult(success=False)
    return check


@pytest.fixture
def sink_factory(cert):
    started = []

    def make(tls=None, implicit=False, cert_dir=cert, **kw):
        sink = Sink()
        port = free_port()
        params = dict(kw)
        if tls:
            params["tls_context"] = server_context(cert_dir)
        if "auth" in params:
            params.pop("auth")
            params["authenticator"] = authenticator(sink)
        c = Controller(sink, hostname="127.0.0.1", port=port,
                       ssl_context=server_context(cert_dir) if implicit else None, **params)
        c.start()
        started.append(c)
        sink.port = port
        return sink
    yield make
    for c in started:
        c.stop()


def test_delivers_several_recipients_in_one_transaction(sink_factory, tmp_path):
    sink = sink_factory()
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--tls", "none",
                 "--from", "a@client.test", rcpts=["x@sink.test", "y@sink.test"],
                 message=MESSAGE, tmp_path=tmp_path)
    assert r.rc == 0, r
    assert r.rcpts["x@sink.test"][0] == "delivered"
    assert r.rcpts["y@sink.test"][0] == "delivered"
    assert len(sink.messages) == 1
    frm, tos, content, tls, _ = sink.messages[0]
    assert frm == "a@client.test" and tos == ["x@sink.test", "y@sink.test"]
    # Dot-stuffing on the wire, undone by the server: the bytes arrive as sent.
    assert content.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")


def test_each_recipient_gets_its_own_outcome(sink_factory, tmp_path):
    sink = sink_factory()
    sink.refuse_rcpt = {"gone@sink.test": "550 5.1.1 <gone@sink.test>: no such user",
                        "later@sink.test": "451 4.3.0 try later"}
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--tls", "none",
                 "--from", "a@client.test",
                 rcpts=["ok@sink.test", "gone@sink.test", "later@sink.test"],
                 message=MESSAGE, tmp_path=tmp_path)
    assert r.rcpts["ok@sink.test"][0] == "delivered", r
    assert r.rcpts["gone@sink.test"] == ("failed", "550 5.1.1 <gone@sink.test>: no such user")
    assert r.rcpts["later@sink.test"][0] == "deferred"
    assert "451 4.3.0 try later" in r.rcpts["later@sink.test"][1]
    assert [m[1] for m in sink.messages] == [["ok@sink.test"]]


def test_refused_sender_fails_every_recipient(sink_factory, tmp_path):
    sink = sink_factory()
    sink.refuse_mail = "553 5.7.1 sender refused"
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--tls", "none",
                 "--from", "a@client.test", rcpts=["x@sink.test", "y@sink.test"],
                 message=MESSAGE, tmp_path=tmp_path)
    assert {s for s, _ in r.rcpts.values()} == {"failed"}, r
    assert sink.messages == []


def test_next_host_after_a_refused_connection_and_a_busy_greeting(sink_factory, tmp_path):
    sink = sink_factory()
    # Same port, three addresses: nothing listens on .2, .3 greets with 421, .1 is the sink.
    busy = ScriptServer([(None, b"421 4.3.2 busy, try another\r\n")], "127.0.0.3", sink.port)
    try:
        r = mta_send("--host", "127.0.0.2", "--host", "127.0.0.3", "--host", "127.0.0.1",
                     "--port", str(sink.port), "--tls", "none", "--from", "a@client.test",
                     rcpts=["x@sink.test"], message=MESSAGE, tmp_path=tmp_path)
    finally:
        busy.close()
    assert r.rcpts["x@sink.test"][0] == "delivered", r
    assert r.steps[0][:2] == ["connect", "fail"], r
    assert ["greeting", "fail"] == [s for s in r.steps if s[0] == "greeting"][0][:2], r
    assert len(sink.messages) == 1


def test_busy_greeting_on_the_only_host_defers(tmp_path):
    busy = ScriptServer([(None, b"421 4.3.2 busy\r\n")])
    try:
        r = mta_send("--host", "127.0.0.1", "--port", str(busy.port), "--tls", "none",
                     "--from", "a@client.test", rcpts=["x@sink.test"], message=MESSAGE,
                     tmp_path=tmp_path)
    finally:
        busy.close()
    status, why = r.rcpts["x@sink.test"]
    assert status == "deferred" and "421 4.3.2 busy" in why, r


def test_starttls_auto_and_verification(sink_factory, tmp_path):
    sink = sink_factory(tls=True)
    common = ["--host", "127.0.0.1", "--name", "sink.test", "--port", str(sink.port),
              "--from", "a@client.test"]
    # auto: TLS when offered, the certificate not required to verify.
    r = mta_send(*common, rcpts=["x@sink.test"], message=MESSAGE, tmp_path=tmp_path)
    assert r.rcpts["x@sink.test"][0] == "delivered", r
    ok, detail = r.step("TLS")
    assert ok and "CN=sink.test" in detail and "self-signed" in detail, detail
    assert sink.messages[-1][3] is True
    # starttls with verification: a self-signed certificate is refused ...
    r = mta_send(*common, "--tls", "starttls", rcpts=["x@sink.test"], message=MESSAGE,
                 tmp_path=tmp_path)
    status, why = r.rcpts["x@sink.test"]
    assert status == "deferred" and "self-signed" in why, r
    # ... and accepted with --no-verify.
    r = mta_send(*common, "--tls", "starttls", "--no-verify", rcpts=["x@sink.test"],
                 message=MESSAGE, tmp_path=tmp_path)
    assert r.rcpts["x@sink.test"][0] == "delivered", r


def broken_starttls(hello):
    """A server that offers STARTTLS and then answers the handshake with
    hello (bytes, or ScriptServer.CLOSE; None: nothing at all); in clear
    it takes the message."""
    first = [(None, b"220 raw ESMTP\r\n"),
             ("EHLO", b"250-raw\r\n250 STARTTLS\r\n"),
             ("STARTTLS", b"220 go ahead\r\n")]
    if hello is not None:
        first.append((ScriptServer.ANY, hello))
    plain = [(None, b"220 raw ESMTP\r\n"),
             ("EHLO", b"250-raw\r\n250 STARTTLS\r\n"),
             ("MAIL FROM:<a@client.test>", b"250 ok\r\n"),
             ("RCPT TO:<x@sink.test>", b"250 ok\r\n"),
             ("DATA", b"354 go ahead\r\n"),
             (b"\r\n.\r\n", b"250 2.0.0 queued in clear\r\n")]
    return ScriptServer(first, later=[plain])


@pytest.mark.parametrize("hello", [b"this is not TLS\r\n", ScriptServer.CLOSE, None],
                         ids=["garbage", "hangup", "silence"])
def test_opportunistic_tls_that_fails_goes_again_in_clear(tmp_path, hello):
    """tls auto: when the handshake after an offered STARTTLS fails (the
    server answers garbage, hangs up, or says nothing until the timeout),
    the same host is tried again at once without TLS, as for a server that
    offers no STARTTLS; a route that requires STARTTLS never does."""
    for mode in ("auto", "starttls"):
        server = broken_starttls(hello)
        try:
            r = mta_send("--host", "127.0.0.1", "--port", str(server.port), "--tls", mode,
                         "--no-verify", "--from", "a@client.test", "--timeout", "2",
                         rcpts=["x@sink.test"], message=MESSAGE, tmp_path=tmp_path)
        finally:
            server.close()
        status, why = r.rcpts["x@sink.test"]
        sent = b"".join(x for x in server.received if isinstance(x, bytes))
        if mode == "auto":
            assert status == "delivered" and "queued in clear" in why, r
            assert server.connections == 2 and b"line one" in sent
            assert [s[0] for s in r.steps].count("connect") == 2, r
            assert not r.step("TLS")[0]
        else:
            assert status == "deferred" and server.connections == 1, r
            assert b"line one" not in sent


def ca_signed(tmp_path, san):
    """A CA and a certificate it signed for subjectAltName san; returns the
    certificate's directory (cert.pem, key.pem) and the CA's file."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60,
                       cwd=tmp_path)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Test CA",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2")
    leaf = tmp_path / "leaf"
    leaf.mkdir()
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=relay", "-keyout",
        "leaf/key.pem", "-out", "leaf.csr")
    (tmp_path / "ext").write_text(f"subjectAltName={san}\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf/cert.pem", "-days", "2", "-extfile", "ext")
    return leaf, tmp_path / "ca.pem"


@pytest.mark.parametrize("san,ok", [("IP:127.0.0.1", True), ("DNS:sink.test", False),
                                    ("IP:127.0.0.2", False)])
def test_relay_given_by_address_must_be_named_in_the_certificate(
        sink_factory, tmp_path, monkeypatch, san, ok):
    """A relay whose host is an IP address is verified against the
    certificate's IP subjectAltNames: a trusted chain is not enough."""
    leaf, ca = ca_signed(tmp_path, san)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    for implicit in (False, True):
        sink = sink_factory(tls=not implicit, implicit=implicit, cert_dir=leaf)
        r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--tls",
                     "implicit" if implicit else "starttls", "--from", "a@client.test",
                     rcpts=["x@sink.test"], message=MESSAGE, tmp_path=tmp_path)
        status, why = r.rcpts["x@sink.test"]
        if ok:
            assert status == "delivered", r
        else:
            assert status == "deferred" and sink.messages == [], r
            assert "mismatch" in why or "verif" in why, why


def test_starttls_required_but_not_offered(sink_factory, tmp_path):
    sink = sink_factory()
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--tls", "starttls",
                 "--from", "a@client.test", rcpts=["x@sink.test"], message=MESSAGE,
                 tmp_path=tmp_path)
    status, why = r.rcpts["x@sink.test"]
    assert status == "deferred" and "STARTTLS" in why, r
    assert sink.messages == []


def test_implicit_tls(sink_factory, tmp_path):
    sink = sink_factory(implicit=True)
    r = mta_send("--host", "127.0.0.1", "--name", "sink.test", "--port", str(sink.port),
                 "--tls", "implicit", "--no-verify", "--from", "a@client.test",
                 rcpts=["x@sink.test"], message=MESSAGE, tmp_path=tmp_path)
    assert r.rcpts["x@sink.test"][0] == "delivered", r
    assert r.step("TLS")[0]


@pytest.mark.parametrize("mech", ["plain", "login"])
def test_auth_named_mechanism_over_tls(sink_factory, tmp_path, mech):
    sink = sink_factory(tls=True, auth=True, auth_required=True)
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--tls", "starttls",
                 "--no-verify", "--auth", mech, "--user", "relayuser", "--password", PASSWORD,
                 "--from", "a@client.test", rcpts=["x@sink.test"], message=MESSAGE,
                 tmp_path=tmp_path)
    assert r.rcpts["x@sink.test"][0] == "delivered", r
    assert sink.auth == [(mech.upper(), "relayuser")]


def test_cram_md5_challenge_not_base64_is_cancelled(tmp_path):
    """A challenge that does not decode is answered with "*", which ends
    the exchange (RFC 4954 §4), never with a guess or a bare QUIT."""
    server = ScriptServer([
        (None, b"220 raw ESMTP\r\n"),
        ("EHLO", b"250-raw\r\n250 AUTH CRAM-MD5\r\n"),
        ("AUTH CRAM-MD5", b"334 !!not base64!!\r\n"),
        ("*", b"501 5.7.0 cancelled\r\n"),
        ("QUIT", b"221 bye\r\n"),
    ])
    try:
        r = mta_send("--host", "127.0.0.1", "--port", str(server.port), "--tls", "none",
                     "--user", "relayuser", "--password", PASSWORD, "--from",
                     "a@client.test", rcpts=["x@sink.test"], message=MESSAGE,
                     tmp_path=tmp_path)
    finally:
        server.close()
    status, why = r.rcpts["x@sink.test"]
    assert status == "deferred" and "CRAM-MD5" in why, r
    assert server.received[2:4] == [b"*", b"QUIT"], server.received


def test_auth_auto_prefers_cram_md5(sink_factory, tmp_path):
    sink = sink_factory(tls=True, auth=True, auth_required=True)
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--no-verify",
                 "--user", "relayuser", "--password", PASSWORD, "--from", "a@client.test",
                 rcpts=["x@sink.test"], message=MESSAGE, tmp_path=tmp_path)
    assert r.rcpts["x@sink.test"][0] == "delivered", r
    assert sink.auth == [("CRAM-MD5", "relayuser")]


def test_auth_auto_never_sends_a_password_in_clear(sink_factory, tmp_path):
    sink = sink_factory(auth=True, auth_require_tls=False, auth_exclude_mechanism=["CRAM-MD5"])
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--tls", "none",
                 "--user", "relayuser", "--password", PASSWORD, "--from", "a@client.test",
                 rcpts=["x@sink.test"], message=MESSAGE, tmp_path=tmp_path)
    status, why = r.rcpts["x@sink.test"]
    assert status == "deferred" and "unencrypted" in why, r
    assert sink.auth == []
    # Named explicitly, the administrator's choice is honoured.
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--tls", "none",
                 "--auth", "plain", "--user", "relayuser", "--password", PASSWORD,
                 "--from", "a@client.test", rcpts=["x@sink.test"], message=MESSAGE,
                 tmp_path=tmp_path)
    assert r.rcpts["x@sink.test"][0] == "delivered", r
    assert sink.auth == [("PLAIN", "relayuser")]


def test_wrong_password_defers(tmp_path):
    server = ScriptServer([
        (None, b"220 raw ESMTP\r\n"),
        ("EHLO", b"250-raw\r\n250 AUTH PLAIN\r\n"),
        ("AUTH PLAIN", b"535 5.7.8 Authentication credentials invalid\r\n"),
    ])
    try:
        r = mta_send("--host", "127.0.0.1", "--port", str(server.port), "--tls", "none",
                     "--auth", "plain", "--user", "relayuser", "--password", "wrong",
                     "--from", "a@client.test", rcpts=["x@sink.test"], message=MESSAGE,
                     tmp_path=tmp_path)
    finally:
        server.close()
    status, why = r.rcpts["x@sink.test"]
    # Refused credentials need the administrator: retried later, not bounced.
    assert status == "deferred" and "535 5.7.8" in why, r
    assert not any(x.startswith(b"MAIL") for x in server.received if isinstance(x, bytes))


def test_probe_stops_after_auth(sink_factory, tmp_path):
    sink = sink_factory(tls=True, auth=True, auth_required=True)
    r = mta_send("--host", "127.0.0.1", "--port", str(sink.port), "--no-verify",
                 "--user", "relayuser", "--password", PASSWORD, "--probe", tmp_path=tmp_path)
    assert r.rc == 0 and r.probe == "ok", r
    assert [s[0] for s in r.steps] == ["connect", "greeting", "EHLO", "STARTTLS", "TLS",
                                      "EHLO", "AUTH"]
    assert sink.messages == []


def test_silent_server_times_out(tmp_path):
    silent = ScriptServer([("NEVER", b"")])
    try:
        t0 = time.monotonic()
        r = mta_send("--host", "127.0.0.1", "--port", str(silent.port), "--timeout", "1",
                     "--from", "a@client.test", rcpts=["x@sink.test"], message=MESSAGE,
                     tmp_path=tmp_path)
    finally:
        silent.close()
    status, why = r.rcpts["x@sink.test"]
    assert status == "deferred" and "timed out in greeting" in why, r
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("greeting", [
    b"220-first\r\n221 second code differs\r\n",
    b"2x0 bad digits\r\n",
    b"220 ok\rno line feed\r\n",
    b"220" + b"x" * 5000 + b"\r\n",
], ids=["code-mismatch", "bad-digits", "bare-cr", "overlong"])
def test_malformed_replies_defer(tmp_path, greeting):
    bad = ScriptServer([(None, greeting)])
    try:
        r = mta_send("--host", "127.0.0.1", "--port", str(bad.port), "--tls", "none",
                     "--from", "a@client.test", rcpts=["x@sink.test"], message=MESSAGE,
                     tmp_path=tmp_path)
    finally:
        bad.close()
    assert r.rcpts["x@sink.test"][0] == "deferred", r


def scripted(tmp_path, script, timeout="5"):
    """MESSAGE from a@client.test to x@sink.test through a ScriptServer
    running script: the result, and every byte the client sent."""
    server = ScriptServer(script)
    try:
        r = mta_send("--host", "127.0.0.1", "--port", str(server.port), "--tls", "none",
                     "--from", "a@client.test", "--timeout", timeout, rcpts=["x@sink.test"],
                     message=MESSAGE, tmp_path=tmp_path)
    finally:
        server.close()
    return r, b"".join(x for x in server.received if isinstance(x, bytes))


@pytest.mark.parametrize("reply", [b"250 ok data\r\n", b"221 bye\r\n"])
def test_data_answered_without_354_delivers_nothing(tmp_path, reply):
    """Only a 3xx lets the message go: a 2xx to DATA (a server out of step
    or lying) took no message, so the recipients are deferred, never
    counted delivered."""
    r, sent = scripted(tmp_path, [
        (None, b"220 raw ESMTP\r\n"),
        ("EHLO", b"250 raw\r\n"),
        ("MAIL FROM:<a@client.test>", b"250 ok\r\n"),
        ("RCPT TO:<x@sink.test>", b"250 ok\r\n"),
        ("DATA", reply),
    ])
    status, why = r.rcpts["x@sink.test"]
    assert status == "deferred" and "not 354" in why, r
    assert b"line one" not in sent


def test_end_of_data_reply_is_waited_for_past_the_timeout(tmp_path):
    """RFC 5321 §4.5.3.2.6: the reply to the final dot gets 10 minutes
    whatever the route's timeout (here 1 s), since giving up would send a
    message the server may already have taken a second time."""
    r, sent = scripted(tmp_path, [
        (None, b"220 raw ESMTP\r\n"),
        ("EHLO", b"250 raw\r\n"),
        ("MAIL FROM:<a@client.test>", b"250 ok\r\n"),
        ("RCPT TO:<x@sink.test>", b"250 ok\r\n"),
        ("DATA", b"354 go\r\n"),
        (b"\r\n.\r\n", ScriptServer.Slow(2.5, b"250 taken at last\r\n")),
        ("QUIT", b"221 bye\r\n"),
    ], timeout="1")
    assert r.rcpts["x@sink.test"][0] == "delivered", r
    assert b"line one" in sent


def test_message_larger_than_the_servers_size_is_not_sent(tmp_path):
    """RFC 1870: a server that says SIZE 10 does not get a larger message;
    its recipients fail (5.3.4) and nothing is sent, not even MAIL."""
    r, sent = scripted(tmp_path, [
        (None, b"220 raw ESMTP\r\n"),
        ("EHLO", b"250-raw\r\n250 SIZE 10\r\n"),
        ("QUIT", b"221 bye\r\n"),
    ])
    status, why = r.rcpts["x@sink.test"]
    assert status == "failed" and "5.3.4" in why and "SIZE 10" in why, r
    assert b"MAIL" not in sent


def test_bdat_when_offered(tmp_path):
    r, sent = scripted(tmp_path, [
        (None, b"220 raw ESMTP\r\n"),
        ("EHLO", b"250-raw\r\n250-CHUNKING\r\n250 PIPELINING\r\n"),
        ("MAIL FROM:<a@client.test>", b""),
        ("RCPT TO:<x@sink.test>", b"250 ok\r\n250 ok\r\n"),
        (f"BDAT {len(MESSAGE)} LAST", b""),
    ], timeout="2")
    # The raw server never answers the chunk: the point is what was sent.
    assert f"BDAT {len(MESSAGE)} LAST".encode() in sent, sent
    assert MESSAGE in sent, "the chunk is the message as it is, not dot-stuffed"
    assert r.rcpts["x@sink.test"][0] == "deferred"
