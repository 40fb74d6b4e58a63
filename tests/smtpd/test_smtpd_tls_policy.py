"""The TLS policy on every TLS port of umbox-smtpd (SPEC §2 [tls], §4):
TLS 1.2 only with forward-secret ECDHE suites, authenticated encryption
preferred, no SHA-1 CBC suites, no static RSA key exchange; TLS 1.3 as
OpenSSL offers it.  STARTTLS on the MX port (25) and on submission (587),
implicit TLS on 465; the clients are Python's ssl and smtplib."""
import smtplib
import ssl
import subprocess
import time

import pytest

PORTS = ("mx", "submission", "smtps")

# TLS 1.2 client offers the server must refuse: each leaves no suite in common.
REFUSED = {
    "static-rsa": "AES128-GCM-SHA256:AES256-SHA",
    "ecdhe-cbc-sha1": "ECDHE-RSA-AES128-SHA",
    "dhe-only": "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
}


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


def connect(d, port, ctx):
    """An smtplib session over TLS on one of d's ports (STARTTLS on mx and
    submission, implicit on smtps), after EHLO in TLS."""
    if port == "smtps":
        s = smtplib.SMTP_SSL("127.0.0.1", d.smtps, local_hostname="client.example.test",
                             context=ctx, timeout=15)
    else:
        s = smtplib.SMTP("127.0.0.1", getattr(d, port), local_hostname="client.example.test",
                         timeout=15)
        try:
            s.ehlo()
            assert s.has_extn("starttls")
            code, text = s.starttls(context=ctx)
            assert code == 220, text
        except BaseException:
            s.close()
            raise
    s.ehlo()
    return s


def still_serves(d, port):
    """A default client still gets TLS and a command through on port."""
    with connect(d, port, client_context(tls13=True)) as s:
        assert s.noop()[0] == 250


def wait_log(d, text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in d.log():
        assert time.monotonic() < deadline, f"{text!r} not in the log:\n{d.log()}"
        time.sleep(0.05)


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("offer", sorted(REFUSED))
def test_tls12_without_ecdhe_aead_or_sha2_is_refused(shared_smtpd, port, offer):
    ctx = client_context(REFUSED[offer])
    with pytest.raises(ssl.SSLError) as refused:
        connect(shared_smtpd, port, ctx).close()
    # A handshake_failure alert, not a bare EOF: the client can say why.
    assert "HANDSHAKE_FAILURE" in str(refused.value), refused.value
    still_serves(shared_smtpd, port)


@pytest.mark.parametrize("port", PORTS)
def test_tls12_ecdhe_rsa_aes_gcm(shared_smtpd, port):
    with connect(shared_smtpd, port, client_context("ECDHE-RSA-AES128-GCM-SHA256")) as s:
        assert s.sock.version() == "TLSv1.2"
        assert s.sock.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"
        assert s.noop()[0] == 250
    wait_log(shared_smtpd, "TLS established: TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256")


@pytest.mark.parametrize("port", PORTS)
def test_tls13(shared_smtpd, port):
    with connect(shared_smtpd, port, client_context(tls13=True)) as s:
        assert s.sock.version() == "TLSv1.3"
        assert s.noop()[0] == 250
    wait_log(shared_smtpd, "TLS established: TLSv1.3 TLS_")


@pytest.mark.parametrize("port", PORTS)
def test_tls12_ecdhe_cbc_sha2_kept_for_old_windows(shared_smtpd, port):
    """Windows 7 and 8.1 (Outlook through SChannel) have no ECDHE-RSA AEAD
    suite; with an RSA certificate these are what they can use."""
    with connect(shared_smtpd, port, client_context("ECDHE-RSA-AES256-SHA384")) as s:
        assert s.sock.cipher()[0] == "ECDHE-RSA-AES256-SHA384"
        assert s.noop()[0] == 250


@pytest.mark.parametrize("port", PORTS)
def test_server_prefers_aead(shared_smtpd, port):
    """A client that lists CBC first still gets AES-GCM: server preference."""
    ctx = client_context("ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:"
                         "ECDHE-RSA-AES256-GCM-SHA384")
    with connect(shared_smtpd, port, ctx) as s:
        assert s.sock.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384"
        assert s.noop()[0] == 250


# How openssl s_client names the group in its "Server Temp Key" line.
TEMP_KEY = {"X25519": "X25519", "P-256": "prime256v1", "P-384": "secp384r1"}


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
@pytest.mark.parametrize("group,ok", [("X25519", True), ("P-256", True), ("P-384", True),
                                      ("X448", False), ("P-521", False)])
def test_key_exchange_groups(shared_smtpd, version, group, ok):
    """ECDHE over X25519, P-256 and P-384 only (Python's ssl cannot choose
    the client's groups: openssl s_client can)."""
    p = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{shared_smtpd.smtps}", version,
         "-groups", group, "-brief", "-ign_eof"],
        input=b"QUIT\r\n", capture_output=True, timeout=30)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    if ok:
        # (The exit code is 1 even so: the server closes without close_notify.)
        assert "CONNECTION ESTABLISHED" in out, out
        assert TEMP_KEY[group] in out, out
        assert "221 " in out, out   # a command answered after the handshake
    else:
        assert p.returncode != 0 and "CONNECTION ESTABLISHED" not in out, out
