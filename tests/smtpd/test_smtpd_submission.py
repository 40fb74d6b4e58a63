"""Submission on 587 (STARTTLS) and 465 (implicit TLS): AUTH before MAIL,
the sender must be the user's own address, outside recipients are queued."""
import base64
import json
import smtplib
import time

import pytest

from smtpd_util import DOMAIN, PASSWORD, Raw, headers, sanitized_build, sanitizer_report, \
    simple_message, unverified_context


def submission(d, login=None, password=PASSWORD):
    s = smtplib.SMTP("127.0.0.1", d.submission, local_hostname="laptop.example.test", timeout=15)
    s.ehlo()
    s.starttls(context=unverified_context())
    s.ehlo()
    if login is not None:
        s.login(login, password)
    return s


def test_mail_before_auth_is_530(smtpd):
    with smtplib.SMTP("127.0.0.1", smtpd.submission, timeout=15) as s:
        s.ehlo()
        code, text = s.mail(f"alice@{DOMAIN}")
        assert (code, text.split()[0]) == (530, b"5.7.0"), text
        s.starttls(context=unverified_context())
        s.ehlo()
        code, text = s.mail(f"alice@{DOMAIN}")
        assert (code, text.split()[0]) == (530, b"5.7.0"), text
    assert smtpd.queue() == []


def test_ehlo_offers_starttls_then_auth(smtpd):
    with smtplib.SMTP("127.0.0.1", smtpd.submission, timeout=15) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        s.starttls(context=unverified_context())
        s.ehlo()
        assert not s.has_extn("starttls")
        mechs = s.esmtp_features.get("auth", "").upper().split()
        assert "PLAIN" in mechs and "LOGIN" in mechs
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "chunking", "smtputf8"):
            assert s.has_extn(ext), (ext, s.esmtp_features)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("name", ["alice", f"alice@{DOMAIN}", "100"])
def test_auth_with_login_address_or_extension(smtpd, mech, name):
    with submission(smtpd) as s:
        s.user, s.password = name, PASSWORD
        auth = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login}[mech]
        code, text = s.auth(mech, auth, initial_response_ok=(mech == "PLAIN"))
        assert code == 235, text
        assert text.startswith(b"2.7.0")
        assert s.mail(f"alice@{DOMAIN}")[0] == 250
        assert s.rcpt(f"bob@{DOMAIN}")[0] == 250
        assert s.data(simple_message(f"{mech} {name}"))[0] == 250
    [entry] = smtpd.mailbox("bob")
    assert entry["subject"] == f"{mech} {name}"
    assert entry["sender"] == f"alice@{DOMAIN}"


def test_wrong_password_is_535_after_a_delay_and_three_close(smtpd):
    with submission(smtpd) as s:
        s.sock.settimeout(60)
        s.user, s.password = "alice", "not-the-password"
        delays = []
        for _ in range(3):
            t0 = time.monotonic()
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                s.auth("PLAIN", s.auth_plain)
            delays.append(time.monotonic() - t0)
            assert e.value.smtp_code == 535
            assert e.value.smtp_error.startswith(b"5.7.8"), e.value.smtp_error
            if len(delays) == 1:
                # Not logged in: still no MAIL.
                assert s.mail(f"alice@{DOMAIN}")[0] == 530
        assert delays[0] >= 1.9, delays
        assert delays[2] >= delays[0], delays       # growing, never shrinking
        # The third failure closes the session (a 421 may come first).
        s.sock.settimeout(5)
        rest = b""
        while True:
            chunk = s.sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        assert rest == b"" or rest.startswith(b"421 "), rest
    # The right password still works from a new session.
    with submission(smtpd, "alice") as s:
        assert s.mail(f"alice@{DOMAIN}")[0] == 250
    # The daemon exits cleanly (and, under sanitizers, without a report).
    assert smtpd.stop() == 0
    assert not sanitizer_report(smtpd.log()), smtpd.log()


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_over_long_auth_response_ends_the_exchange(smtpd, mech):
    """RFC 4954 §4: a response over the line limit fails the AUTH command
    with 500; the next line is a command again, not a response, and no
    login failed."""
    with Raw(smtpd.mx) as c:
        c.cmd("EHLO client.example.test")
        assert c.cmd(f"AUTH {mech}").code == 334
        assert c.cmd("A" * 3000).code == 500
        t0 = time.monotonic()
        assert c.cmd("NOOP").code == 250
        assert time.monotonic() - t0 < 1
        token = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
        assert c.cmd(f"AUTH PLAIN {token}").code == 235


def test_refused_authorization_identity_counts_as_a_failure(smtpd):
    """Acting for another user (PLAIN's authzid) fails like a wrong
    password: after the address's delay, which it doubles."""
    with Raw(smtpd.mx, timeout=30) as c:
        c.cmd("EHLO client.example.test")
        token = base64.b64encode(f"bob\0alice\0{PASSWORD}".encode()).decode()
        delays = []
        for _ in range(2):
            t0 = time.monotonic()
            assert c.cmd(f"AUTH PLAIN {token}").code == 535
            delays.append(time.monotonic() - t0)
    assert delays[0] >= 1.9 and delays[1] >= 2 * delays[0] - 0.2, delays


def test_sender_must_be_own_address(smtpd):
    with submission(smtpd, "alice") as s:
        code, text = s.mail(f"bob@{DOMAIN}")
        assert code == 553 and text.startswith(b"5.7.1"), (code, text)
        code, text = s.mail("ceo@outside.test")
        assert code == 553 and text.startswith(b"5.7.1"), (code, text)
        assert s.mail(f"ALICE@{DOMAIN.upper()}")[0] == 250
        s.rset()
        assert s.mail(f"alice@{DOMAIN}")[0] == 250
        assert s.rcpt(f"carol@{DOMAIN}")[0] == 250
        assert s.data(simple_message("own address"))[0] == 250
    [entry] = smtpd.mailbox("carol")
    assert entry["sender"] == f"alice@{DOMAIN}"


def test_authenticated_sender_is_checked_on_the_mx_port_too(smtpd):
    """A user who authenticates on port 25 (STARTTLS, or loopback) may not
    send as someone else there either; a client that did not authenticate
    is mail from outside, its sender unchecked."""
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.ehlo("client.example.test")
        s.login("alice", PASSWORD)
        code, text = s.mail(f"bob@{DOMAIN}")
        assert code == 553 and text.startswith(b"5.7.1"), (code, text)
        assert s.mail("<>")[0] == 553
        assert s.mail(f"alice@{DOMAIN}")[0] == 250
        assert s.rcpt("friend@outside.test")[0] == 250
        s.rset()
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.ehlo("client.example.test")
        assert s.mail(f"bob@{DOMAIN}")[0] == 250


@pytest.mark.parametrize("port", ["mx", "submission"])
def test_a_user_deleted_while_logged_in_sends_nothing_more(smtpd, port):
    """SPEC §2: the daemons see changes without a restart.  A session
    whose user was deleted after AUTH is refused its next MAIL (530, it
    must log in again, which fails) instead of sending as the account
    that is gone."""
    with smtplib.SMTP("127.0.0.1", getattr(smtpd, port), timeout=15) as s:
        s.ehlo("client.example.test")
        if port == "submission":
            s.starttls(context=unverified_context())
            s.ehlo("client.example.test")
        s.login("carol", PASSWORD)
        assert s.mail(f"carol@{DOMAIN}")[0] == 250
        s.rset()
        smtpd.ctl("user", "del", "carol")
        code, text = s.mail(f"carol@{DOMAIN}")
        assert code == 530 and b"no longer exists" in text, (code, text)
        assert s.rcpt("friend@outside.test")[0] in (503, 554)
    assert smtpd.queue() == []


def test_outside_recipient_is_queued(smtpd):
    with submission(smtpd, "alice") as s:
        assert s.mail(f"alice@{DOMAIN}")[0] == 250
        assert s.rcpt("friend@outside.test")[0] == 250
        assert s.rcpt(f"bob@{DOMAIN}")[0] == 250
        assert s.data(simple_message("out and in"))[0] == 250
    rows = smtpd.queue()
    assert [(r[1], r[2]) for r in rows] == [(f"alice@{DOMAIN}", "friend@outside.test")]
    assert len(smtpd.mailbox("bob")) == 1
    assert smtpd.mailbox("alice") == []
    rc, out, _ = smtpd.ctl("--json", "status")
    assert json.loads(out)["queued"] == 1


def test_implicit_tls_on_465(smtpd):
    with smtplib.SMTP_SSL("127.0.0.1", smtpd.smtps, context=unverified_context(), timeout=15) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.mail(f"bob@{DOMAIN}")[0] == 530
        s.login("bob", PASSWORD)
        assert s.mail(f"bob@{DOMAIN}")[0] == 250
        assert s.rcpt(f"alice@{DOMAIN}")[0] == 250
        code, text = s.data(simple_message("over 465"))
        assert code == 250 and b"queued as" in text
    [entry] = smtpd.mailbox("alice")
    assert entry["subject"] == "over 465"
    stored = smtpd.export("alice", entry["uid"])
    [received] = headers(stored, "Received")
    assert "with ESMTPSA" in received, received      # RFC 3848: TLS + AUTH
    assert headers(stored, "Return-Path") == [f"<bob@{DOMAIN}>"]


def test_auth_offered_on_loopback_mx_without_tls(smtpd):
    """SPEC: AUTH only on TLS, or loopback; authenticated clients may relay."""
    with Raw(smtpd.mx) as c:
        r = c.cmd("EHLO client.example.test")
        assert any("AUTH" in l and "PLAIN" in l for l in r.lines), r
        token = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
        assert c.cmd(f"AUTH PLAIN {token}").code == 235
        assert c.cmd(f"MAIL FROM:<alice@{DOMAIN}>").code == 250
        assert c.cmd("RCPT TO:<friend@outside.test>").code == 250
