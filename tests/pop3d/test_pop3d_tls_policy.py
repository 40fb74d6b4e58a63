"""The TLS policy on every TLS port of umbox-pop3d (SPEC §2 [tls], §5):
TLS 1.2 only with forward-secret ECDHE suites, authenticated encryption
preferred, no SHA-1 CBC suites, no static RSA key exchange; TLS 1.3 as
OpenSSL offers it.  STLS on 110, implicit TLS on 995; the clients are
Python's ssl and poplib."""
import poplib
import ssl
import time

import pytest

from pop3d_util import Env

PORTS = ("pop3", "pop3s")

# TLS 1.2 client offers the server must refuse: each leaves no suite in common.
REFUSED = {
    "static-rsa": "AES128-GCM-SHA256:AES256-SHA",
    "ecdhe-cbc-sha1": "ECDHE-RSA-AES128-SHA",
    "dhe-only": "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
}


@pytest.fixture(scope="module")
def tls_env(tmp_path_factory, pop3_tls_dir, pop3_template):
    """One installation for the module: these tests store nothing."""
    env = Env(tmp_path_factory.mktemp("pop3-tls-policy"), pop3_tls_dir, pop3_template)
    env.start()
    yield env
    problems = env.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def client_context(ciphers=None, tls13=False):
    """An unverifying client context: TLS 1.3 only, or TLS 1.2 only offering
    exactly ciphers."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls13:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
    return ctx


def connect(env, port, ctx):
    """A poplib session over TLS: STLS on the plain port, implicit on pop3s."""
    if port == "pop3s":
        return poplib.POP3_SSL("127.0.0.1", env.pop3s_port, context=ctx, timeout=15)
    p = poplib.POP3("127.0.0.1", env.pop3_port, timeout=15)
    try:
        assert p.stls(context=ctx).startswith(b"+OK")
    except BaseException:
        try:
            p.close()
        except OSError:
            pass  # a failed handshake leaves poplib a closed socket
        raise
    return p


def logs_in(p):
    """A command after the handshake: CAPA, then a login and STAT."""
    assert "USER" in p.capa()
    p.user("alice")
    p.pass_("secret")
    assert p.stat() == (0, 0)
    p.quit()


def still_serves(env, port):
    """A default client still gets TLS and a login through on port."""
    p = connect(env, port, client_context(tls13=True))
    try:
        logs_in(p)
    finally:
        p.close()


def wait_log(env, text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in env.pop3d.log():
        assert time.monotonic() < deadline, f"{text!r} not in the log:\n{env.pop3d.log()}"
        time.sleep(0.05)


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("offer", sorted(REFUSED))
def test_tls12_without_ecdhe_aead_or_sha2_is_refused(tls_env, port, offer):
    ctx = client_context(REFUSED[offer])
    with pytest.raises(ssl.SSLError) as refused:
        connect(tls_env, port, ctx).close()
    # A handshake_failure alert, not a bare EOF: the client can say why.
    assert "HANDSHAKE_FAILURE" in str(refused.value), refused.value
    still_serves(tls_env, port)


@pytest.mark.parametrize("port", PORTS)
def test_tls12_ecdhe_rsa_aes_gcm(tls_env, port):
    p = connect(tls_env, port, client_context("ECDHE-RSA-AES128-GCM-SHA256"))
    try:
        assert p.sock.version() == "TLSv1.2"
        assert p.sock.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"
        logs_in(p)
    finally:
        p.close()
    wait_log(tls_env, "TLS established: TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256")


@pytest.mark.parametrize("port", PORTS)
def test_tls13(tls_env, port):
    p = connect(tls_env, port, client_context(tls13=True))
    try:
        assert p.sock.version() == "TLSv1.3"
        logs_in(p)
    finally:
        p.close()
    wait_log(tls_env, "TLS established: TLSv1.3 TLS_")


@pytest.mark.parametrize("port", PORTS)
def test_tls12_ecdhe_cbc_sha2_kept_for_old_windows(tls_env, port):
    """Windows 7 and 8.1 (Outlook through SChannel) have no ECDHE-RSA AEAD
    suite; with an RSA certificate these are what they can use."""
    p = connect(tls_env, port, client_context("ECDHE-RSA-AES256-SHA384"))
    try:
        assert p.sock.cipher()[0] == "ECDHE-RSA-AES256-SHA384"
        logs_in(p)
    finally:
        p.close()


@pytest.mark.parametrize("port", PORTS)
def test_server_prefers_aead(tls_env, port):
    """A client that lists CBC first still gets AES-GCM: server preference."""
    ctx = client_context("ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:"
                         "ECDHE-RSA-AES256-GCM-SHA384")
    p = connect(tls_env, port, ctx)
    try:
        assert p.sock.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384"
        logs_in(p)
    finally:
        p.close()
