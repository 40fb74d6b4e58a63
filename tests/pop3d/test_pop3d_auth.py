"""Greeting, CAPA, logins (USER/PASS, SASL PLAIN and LOGIN), plaintext_auth,
STLS and implicit TLS (SPEC §5; RFC 1939, 2449, 2595, 5034)."""
import base64
import poplib
import socket
import time

import pytest

from pop3d_util import DOMAIN, PASSWORD, message, unverified_context


def b64(s):
    return base64.b64encode(s.encode()).decode()


def capa_lines(c):
    r = c.cmd("CAPA")
    assert r.startswith("+OK"), r
    return [l.decode() for l in c.multi()]


def stat_ok(c):
    r = c.cmd("STAT")
    assert r.startswith("+OK "), r
    return r


# -- greeting, CAPA, AUTH listing -------------------------------------------------

def test_greeting_and_capa(env):
    with env.raw() as c:
        assert c.greeting.startswith(b"+OK"), c.greeting
        caps = capa_lines(c)
    names = {l.split()[0].upper() for l in caps}
    for cap in ("TOP", "UIDL", "USER", "SASL", "RESP-CODES", "AUTH-RESP-CODE",
                "PIPELINING", "STLS", "IMPLEMENTATION"):
        assert cap in names, caps
    sasl = [l for l in caps if l.upper().startswith("SASL ")]
    assert len(sasl) == 1, caps
    assert {"PLAIN", "LOGIN"} <= set(sasl[0].upper().split()[1:]), caps
    impl = [l for l in caps if l.upper().startswith("IMPLEMENTATION")]
    assert len(impl[0].split()) >= 2, caps

    # The same through a client we did not write.
    p = poplib.POP3("127.0.0.1", env.pop3_port, timeout=15)
    try:
        assert p.getwelcome().startswith(b"+OK")
        caps = p.capa()
        assert {"TOP", "UIDL", "USER", "SASL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                "STLS", "IMPLEMENTATION"} <= set(caps), caps
        assert {"PLAIN", "LOGIN"} <= set(caps["SASL"]), caps
    finally:
        p.quit()


def test_bare_auth_lists_mechanisms(env):
    with env.raw() as c:
        r = c.cmd("AUTH")
        assert r.startswith("+OK"), r
        mechs = [l.decode().upper() for l in c.multi()]
        assert {"PLAIN", "LOGIN"} <= set(mechs), mechs
        # The session goes on: a login still works.
        c.login()
        stat_ok(c)


# -- logins ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["alice", f"alice@{DOMAIN}", "100"])
def test_user_pass_login_names(env, name):
    env.deliver("alice", message("for alice"))
    p = env.poplib(name)
    try:
        assert p.stat()[0] == 1
        _, lines, _ = p.retr(1)
        assert b"Subject: for alice" in lines
    finally:
        p.quit()


@pytest.mark.parametrize("name", ["alice", f"alice@{DOMAIN}", "100"])
def test_auth_plain_initial_response(env, name):
    env.deliver("alice", message("for alice"))
    with env.raw() as c:
        r = c.cmd("AUTH PLAIN " + b64(f"\0{name}\0{PASSWORD}"))
        assert r.startswith("+OK"), r
        assert stat_ok(c).startswith("+OK 1 ")
        assert c.cmd("QUIT").startswith("+OK")


def test_auth_plain_continuation(env):
    with env.raw() as c:
        r = c.cmd("AUTH PLAIN")
        assert r.rstrip() == "+", r            # "+ " with an empty challenge
        r = c.cmd(b64(f"\0alice\0{PASSWORD}"))
        assert r.startswith("+OK"), r
        stat_ok(c)
        assert c.cmd("QUIT").startswith("+OK")


@pytest.mark.parametrize("name", ["alice", "100"])
def test_auth_login(env, name):
    with env.raw() as c:
        r = c.cmd("AUTH LOGIN")
        assert r.startswith("+ "), r
        assert base64.b64decode(r[2:]).lower().startswith(b"username"), r
        r = c.cmd(b64(name))
        assert r.startswith("+ "), r
        assert base64.b64decode(r[2:]).lower().startswith(b"password"), r
        r = c.cmd(b64(PASSWORD))
        assert r.startswith("+OK"), r
        stat_ok(c)
        assert c.cmd("QUIT").startswith("+OK")


def test_sasl_star_cancels(env):
    with env.raw() as c:
        # PLAIN, cancelled at the challenge.
        assert c.cmd("AUTH PLAIN").startswith("+")
        assert c.cmd("*").startswith("-ERR"), "'*' must cancel AUTH PLAIN"
        # LOGIN, cancelled at the user name and at the password.
        assert c.cmd("AUTH LOGIN").startswith("+ ")
        assert c.cmd("*").startswith("-ERR")
        assert c.cmd("AUTH LOGIN").startswith("+ ")
        assert c.cmd(b64("alice")).startswith("+ ")
        assert c.cmd("*").startswith("-ERR")
        # Still in AUTHORIZATION, not logged in, and a login works.
        assert c.cmd("STAT").startswith("-ERR")
        c.login()
        stat_ok(c)
        assert c.cmd("QUIT").startswith("+OK")


def test_wrong_password_is_delayed_auth_error(env):
    with env.raw(timeout=40) as c:
        assert c.cmd("USER alice").startswith("+OK")
        t0 = time.monotonic()
        r = c.cmd("PASS not-the-password")
        elapsed = time.monotonic() - t0
        assert r.startswith("-ERR [AUTH]"), r
        assert elapsed >= 2.0, f"failed login answered after {elapsed:.2f}s"
        # Not logged in; the session lives on and a good login works.
        assert c.cmd("STAT").startswith("-ERR")
        c.login()
        stat_ok(c)
        assert c.cmd("QUIT").startswith("+OK")


def test_pass_without_password_is_a_syntax_error(env):
    """RFC 1939 gives PASS an argument: without one it is a bad command,
    not a failed login, and the user name given stays."""
    with env.raw() as c:
        assert c.cmd("USER alice").startswith("+OK")
        for line in ("PASS", "PASS "):
            r = c.cmd(line)
            assert r.startswith("-ERR Syntax"), r
        assert c.cmd(f"PASS {PASSWORD}").startswith("+OK")
        stat_ok(c)


def test_user_with_pop3_off_gets_auth_error(env):
    env.deliver("dave", message("for dave"))
    with env.raw() as c:
        assert c.cmd("USER dave").startswith("+OK")
        r = c.cmd(f"PASS {PASSWORD}")
        assert r.startswith("-ERR [AUTH]"), r
        r = c.cmd("AUTH PLAIN " + b64(f"\0dave\0{PASSWORD}"))
        assert r.startswith("-ERR [AUTH]"), r
        r = c.cmd("AUTH PLAIN " + b64(f"\x00103\x00{PASSWORD}"))
        assert r.startswith("-ERR [AUTH]"), r
        assert c.cmd("STAT").startswith("-ERR")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        env.poplib("dave")
    # Switched on, the same account logs in (the daemon sees the change).
    env.ctl("user", "set", "dave", "--pop3", "on")
    p = env.poplib("dave")
    assert p.stat()[0] == 1
    p.quit()


# -- plaintext_auth, STLS, implicit TLS ------------------------------------------------

@pytest.mark.parametrize("mode", [None, "tls-or-loopback", "always"])
def test_plaintext_allowed_on_loopback(pop3_factory, mode):
    env = pop3_factory(plaintext_auth=mode)
    p = env.poplib()
    try:
        assert p.stat() == (0, 0)
    finally:
        p.quit()


def test_never_without_tls_refuses_plain_allows_after_stls(pop3_factory):
    env = pop3_factory(plaintext_auth="never-without-tls")
    env.deliver("alice", message("tls only"))
    with env.raw() as c:
        caps = capa_lines(c)
        names = {l.split()[0].upper() for l in caps}
        assert "STLS" in names, caps
        assert "USER" not in names and "SASL" not in names, \
            f"CAPA offers plaintext logins that are refused: {caps}"
        assert c.cmd("USER alice").startswith("-ERR")
        assert c.cmd(f"PASS {PASSWORD}").startswith("-ERR")
        assert c.cmd("AUTH PLAIN " + b64(f"\0alice\0{PASSWORD}")).startswith("-ERR")
        assert c.cmd("STAT").startswith("-ERR")   # not logged in
    p = poplib.POP3("127.0.0.1", env.pop3_port, timeout=15)
    try:
        with pytest.raises(poplib.error_proto):
            p.user("alice")
        p.stls(context=unverified_context())
        assert "USER" in p.capa()
        p.user("alice")
        p.pass_(PASSWORD)
        assert p.stat()[0] == 1
    finally:
        p.quit()


def test_implicit_tls_on_pop3s_port(env):
    env.deliver("alice", message("over tls"))
    p = poplib.POP3_SSL("127.0.0.1", env.pop3s_port, context=unverified_context(), timeout=15)
    try:
        assert p.getwelcome().startswith(b"+OK")
        caps = p.capa()
        assert "STLS" not in caps, caps
        assert "USER" in caps and {"PLAIN", "LOGIN"} <= set(caps["SASL"])
        p.user("alice")
        p.pass_(PASSWORD)
        assert p.stat()[0] == 1
        _, lines, _ = p.retr(1)
        assert b"Subject: over tls" in lines
    finally:
        p.quit()
    # STLS inside TLS is refused, the session goes on.
    with env.raw_tls() as c:
        assert c.cmd("STLS").startswith("-ERR")
        c.login()
        stat_ok(c)
        assert c.cmd("QUIT").startswith("+OK")


def test_stls_then_login(env):
    p = poplib.POP3("127.0.0.1", env.pop3_port, timeout=15)
    try:
        r = p.stls(context=unverified_context())
        assert r.startswith(b"+OK")
        assert "STLS" not in p.capa()
        p.user("alice")
        p.pass_(PASSWORD)
        assert p.stat() == (0, 0)
    finally:
        p.quit()


def test_stls_discards_pipelined_command(env):
    """RFC 2595 §4 / SPEC §4 for SMTP: what a client pipelined behind STLS in
    the clear must not be executed inside TLS (command injection)."""
    with env.raw() as c:
        c.send(b"STLS\r\nUSER alice\r\n")
        r = c.line()
        assert r.startswith(b"+OK"), r
        assert c.buf == b"", f"server answered the pipelined USER in the clear: {c.buf!r}"
        c.starttls()
        r = c.cmd(f"PASS {PASSWORD}")
        assert r.startswith("-ERR"), f"pipelined USER was executed after STLS: {r}"
        assert c.cmd("STAT").startswith("-ERR")      # not logged in
        c.login()
        stat_ok(c)
        assert c.cmd("QUIT").startswith("+OK")


# -- from an address that is not loopback -------------------------------------------

def local_non_loopback_ipv4():
    """An IPv4 address of this machine other than 127/8, or None."""
    for probe in ("192.0.2.1", "198.51.100.1", "10.255.255.1"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                addr = s.getsockname()[0]
        except OSError:
            continue
        if not addr.startswith("127.") and addr != "0.0.0.0":
            try:   # really ours: bindable
                with socket.socket() as b:
                    b.bind((addr, 0))
            except OSError:
                continue
            return addr
    return None


@pytest.mark.parametrize("mode,plain_ok", [(None, False), ("tls-or-loopback", False),
                                           ("always", True), ("never-without-tls", False)])
def test_plaintext_auth_from_non_loopback_address(pop3_factory, mode, plain_ok):
    addr = local_non_loopback_ipv4()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    env = pop3_factory(plaintext_auth=mode, pop3_listen_extra=[f"{addr}:{{port}}"])
    with env.raw(host=addr) as c:
        r = c.cmd("USER alice")
        if plain_ok:
            assert r.startswith("+OK"), r
            assert c.cmd(f"PASS {PASSWORD}").startswith("+OK")
            stat_ok(c)
            assert c.cmd("QUIT").startswith("+OK")
            return
        assert r.startswith("-ERR"), f"plaintext USER accepted from {addr} in mode {mode}: {r}"
        assert c.cmd("AUTH PLAIN " + b64(f"\0alice\0{PASSWORD}")).startswith("-ERR")
        assert c.cmd("STLS").startswith("+OK")
        c.starttls()
        c.login()
        stat_ok(c)
        assert c.cmd("QUIT").startswith("+OK")


# -- details of logins ------------------------------------------------------------

def test_commands_are_case_insensitive(env):
    with env.raw() as c:
        assert c.cmd("capa").startswith("+OK")
        c.multi()
        assert c.cmd("user alice").startswith("+OK")
        assert c.cmd(f"pass {PASSWORD}").startswith("+OK")
        assert c.cmd("Stat").startswith("+OK")
        assert c.cmd("nOoP").startswith("+OK")
        assert c.cmd("quit").startswith("+OK")


def test_password_with_spaces(env):
    pw = "correct horse  battery staple "
    env.ctl("user", "passwd", "alice", "--password-stdin", stdin=(pw + "\n").encode())
    p = env.poplib(password=pw)
    assert p.stat() == (0, 0)
    p.quit()
    with env.raw() as c:
        assert c.cmd("AUTH PLAIN " + b64(f"\0alice\0{pw}")).startswith("+OK")
        assert c.cmd("QUIT").startswith("+OK")


def test_long_password_in_sasl_continuations(env):
    """RFC 5034 §4: a SASL response line may be longer than 255 octets."""
    pw = "p" * 200
    env.ctl("user", "passwd", "alice", "--password-stdin", stdin=(pw + "\n").encode())
    with env.raw() as c:
        assert c.cmd("AUTH PLAIN").startswith("+")
        line = b64(f"\0alice\0{pw}")
        assert len(line) > 255
        r = c.cmd(line)
        assert r.startswith("+OK"), r
        assert c.cmd("QUIT").startswith("+OK")
    with env.raw() as c:
        assert c.cmd("AUTH LOGIN").startswith("+ ")
        assert c.cmd(b64("alice")).startswith("+ ")
        line = b64(pw)
        assert len(line) > 255
        r = c.cmd(line)
        assert r.startswith("+OK"), r
        assert c.cmd("QUIT").startswith("+OK")
    # And USER/PASS (a 205-octet line).
    p = env.poplib(password=pw)
    p.quit()


@pytest.mark.parametrize("authzid", ["alice", "ALICE"])
def test_authzid_equal_to_authcid_is_accepted(env, authzid):
    """The same login, in any case (logins are case-insensitive)."""
    with env.raw() as c:
        r = c.cmd("AUTH PLAIN " + b64(f"{authzid}\0alice\0{PASSWORD}"))
        assert r.startswith("+OK"), r
        assert c.cmd("QUIT").startswith("+OK")


def test_authzid_of_another_user_is_an_auth_refusal_and_garbage_is_not(env):
    """RFC 3206: [AUTH] tells of credentials.  A well-formed PLAIN response
    naming another user to act as is refused as such; a malformed one is
    a syntax error, without [AUTH]."""
    with env.raw() as c:
        r = c.cmd("AUTH PLAIN " + b64(f"bob\0alice\0{PASSWORD}"))
        assert r.startswith("-ERR [AUTH] ") and "another user" in r, r
        r = c.cmd("AUTH PLAIN " + b64("no separators"))
        assert r.startswith("-ERR ") and "[AUTH]" not in r and "Invalid" in r, r
        r = c.cmd("AUTH PLAIN " + b64(f"\0alice\0{PASSWORD}"))
        assert r.startswith("+OK Logged in: "), r
        assert c.cmd("QUIT").startswith("+OK")


def test_drop_during_password_check_leaves_no_lock(env):
    for _ in range(3):
        c = env.raw()
        c.send(f"USER alice\r\nPASS {PASSWORD}\r\n".encode())
        c.close()
    from pop3d_util import wait_login
    c = wait_login(env)
    assert c.cmd("QUIT").startswith("+OK")
    c.close()
    assert env.pop3d.running


def test_password_change_and_pop3_off_apply_to_the_next_login(env):
    """A client that polls logs in again and again with the same password;
    whatever the daemon remembers of a good login must not outlive a
    password change or POP3 being switched off (SPEC §2: data changes are
    seen without a restart)."""
    for _ in range(2):
        env.poplib().quit()
    env.ctl("user", "passwd", "alice", "--password-stdin", stdin=b"new-secret\n")
    with env.raw(timeout=40) as c:
        assert c.cmd("USER alice").startswith("+OK")
        r = c.cmd(f"PASS {PASSWORD}")
        assert r.startswith("-ERR [AUTH]"), f"old password still accepted: {r}"
    env.poplib(password="new-secret").quit()
    env.ctl("user", "set", "alice", "--pop3", "off")
    with env.raw() as c:
        assert c.cmd("USER alice").startswith("+OK")
        r = c.cmd("PASS new-secret")
        assert r.startswith("-ERR [AUTH]"), f"POP3 off but login accepted: {r}"
