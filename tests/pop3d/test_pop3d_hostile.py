"""Hostile clients (SPEC §5): bounded memory per session before login,
after STLS and while RETR streams; one client never stalling the others;
20 bad commands in a row; connection caps in total and per address; STLS
forgetting what came before it.

Every flood stops as soon as the daemon's RSS has grown past its bound, so
a daemon that buffers without limit fails the test instead of growing by
gigabytes."""
import smtplib
import socket
import time

import pytest

from hostile_util import Flooder, assert_back_pressure, connect, flood, rss_kb, wrap_tls
from pop3d_util import DOMAIN, PASSWORD, SENDER, Closed, Pop3Raw, message, sanitized_build

# AddressSanitizer's quarantine keeps freed memory resident: a looser bound
# there, the back-pressure check stays the same.
# AddressSanitizer keeps freed memory in a quarantine of up to 256 MiB.
RSS_BOUND_MIB = 320 if sanitized_build() else 16


def raw_over(sock):
    """A Pop3Raw over a connected socket, its greeting read."""
    c = Pop3Raw.__new__(Pop3Raw)
    c.sock, c.buf = sock, b""
    c.greeting = c.line()
    assert c.greeting.startswith(b"+OK"), c.greeting
    return c


def session(env, port):
    """A greeted session before login: "plain" (110), "stls" (110 after
    STLS) or "pop3s" (995, implicit TLS)."""
    if port == "plain":
        return raw_over(connect(env.pop3_port))
    if port == "stls":
        c = raw_over(connect(env.pop3_port))
        r = c.cmd("STLS")
        assert r.startswith("+OK"), r
        c.sock = wrap_tls(c.sock)
        return c
    if port == "pop3s":
        return raw_over(wrap_tls(connect(env.pop3s_port)))
    raise ValueError(port)


def big_message(kib=1024):
    line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    return message("big", line * (kib * 1024 // len(line)))


def login(c, user="alice"):
    assert c.cmd(f"USER {user}").startswith("+OK")
    r = c.cmd(f"PASS {PASSWORD}")
    assert r.startswith("+OK"), r


def stat_promptly(env, label, within=1.5, user="bob"):
    """A second client is greeted, logs in and gets STAT promptly."""
    t0 = time.monotonic()
    try:
        with Pop3Raw(env.pop3_port, timeout=within + 2) as c:
            greeted = time.monotonic() - t0
            login(c, user)
            r = c.cmd("STAT")
            took = time.monotonic() - t0
            assert r.startswith("+OK"), r
            assert c.cmd("QUIT").startswith("+OK")
    except (OSError, Closed) as e:
        raise AssertionError(f"{label}: a second client was not served: {e!r}")
    assert greeted < within, f"{label}: a second client waited {greeted:.1f}s for its greeting"
    assert took < within, f"{label}: a second client took {took:.1f}s to log in and STAT"


# -- flooding without reading: bounded memory, back-pressure -------------------

@pytest.mark.parametrize("port", ["plain", "stls", "pop3s"])
def test_capa_flood_before_login_meets_back_pressure(env, port):
    c = session(env, port)
    try:
        r = flood(c.sock, "CAPA\r\n", env.pop3d.pid, label=f"CAPA on {port}",
                  rss_bound_mib=RSS_BOUND_MIB)
        assert_back_pressure(r, RSS_BOUND_MIB)
    finally:
        c.close()
    assert env.pop3d.running


@pytest.mark.parametrize("port", ["plain", "pop3s"])
def test_pipelined_retr_without_reading_meets_back_pressure(env, port):
    """RETR of a 1 MiB message again and again, nothing read: while RETR
    streams, the daemon reads no more commands."""
    env.deliver("alice", big_message())
    c = session(env, port)
    try:
        login(c)
        r = flood(c.sock, "RETR 1\r\n", env.pop3d.pid, label=f"RETR 1 on {port}",
                  rss_bound_mib=RSS_BOUND_MIB)
        assert_back_pressure(r, RSS_BOUND_MIB)
    finally:
        c.close()
    assert env.pop3d.running


# -- one client never stalls the others ----------------------------------------

@pytest.mark.parametrize("port,command,read_every", [
    ("plain", "CAPA", 0), ("pop3s", "CAPA", 0.01), ("plain", "RETR 1", 0.01),
], ids=["capa-no-reader", "capa-tls-slow-reader", "retr-slow-reader"])
def test_pipelining_client_does_not_stall_others(env, port, command, read_every):
    env.deliver("alice", big_message(256))
    label = f"a {command} flood on {port}"
    # A first login pays for its password hash (tens of MiB of yescrypt
    # memory that the allocator keeps); the RSS bound is about the flood.
    stat_promptly(env, "before the flood")
    c = session(env, port)
    try:
        if command.startswith("RETR"):
            login(c)
        f = Flooder(c.sock, f"{command}\r\n", env.pop3d.pid, label=label, read_every=read_every,
                    rss_bound_mib=RSS_BOUND_MIB).start()
        try:
            time.sleep(1.0)     # the flood is in full swing
            stat_promptly(env, label)
        finally:
            f.stop()
    finally:
        c.close()


# -- bad commands ----------------------------------------------------------------

OVERLONG = "NOOP " + "x" * 2993          # 3000 octets with its CRLF
UNKNOWN = "XYZZY plugh"


def read_lines(c, n, what):
    out = []
    try:
        for _ in range(n):
            out.append(c.line().decode("utf-8", "replace"))
    except Closed:
        raise AssertionError(f"the session was closed after {len(out)} replies to {what}: {out}")
    except socket.timeout:
        raise AssertionError(f"no reply after {len(out)} replies to {what}: {out}")
    return out


def assert_closed_after_err(c, what):
    """One more -ERR, then the server hangs up."""
    c.sock.settimeout(3)
    try:
        last = c.line().decode("utf-8", "replace")
    except socket.timeout:
        raise AssertionError(f"the session is still open after {what}")
    except Closed:
        raise AssertionError(f"the session was closed without a last -ERR after {what}")
    assert last.startswith("-ERR"), (what, last)
    rest = c.wait_closed(3)
    assert rest == b"", rest


@pytest.mark.parametrize("line", [OVERLONG, UNKNOWN], ids=["overlong", "unknown"])
def test_twenty_bad_commands_in_a_row_close_the_session(env, line):
    """One line at a time, each reply awaited: every line reaches the daemon
    whole, so closing after the 20th leaves no unread input behind (which
    would reset the connection and lose the last -ERR)."""
    with env.raw(timeout=5) as c:
        replies = []
        for i in range(20):
            c.send(line + "\r\n")
            replies += read_lines(c, 1, f"bad command {i + 1} ({line[:12]})")
        assert all(r.startswith("-ERR") for r in replies), replies
        assert_closed_after_err(c, f"20 x {line[:12]}")


def test_a_valid_command_resets_the_bad_command_count(env):
    with env.raw(timeout=5) as c:
        for round_ in range(2):
            c.send((UNKNOWN + "\r\n") * 19)
            replies = read_lines(c, 19, f"19 unknown commands (round {round_ + 1})")
            assert all(r.startswith("-ERR") for r in replies), replies
            assert c.cmd("CAPA").startswith("+OK"), round_
            c.multi()
        login(c)
        c.send((OVERLONG + "\r\n") * 19)
        replies = read_lines(c, 19, "19 over-long lines after login")
        assert all(r.startswith("-ERR") for r in replies), replies
        assert c.cmd("NOOP").startswith("+OK")
        c.send((UNKNOWN + "\r\n") * 19)
        read_lines(c, 19, "19 unknown commands after login")
        assert c.cmd("QUIT").startswith("+OK")


@pytest.mark.parametrize("line", [OVERLONG, UNKNOWN], ids=["overlong", "unknown"])
def test_repeated_errors_do_not_flood_the_log(env, line):
    """19 identical errors in a row are not 19 log lines."""
    with env.raw(timeout=5) as c:
        before = env.pop3d.log().splitlines()
        c.send((line + "\r\n") * 19)
        replies = read_lines(c, 19, "19 identical bad commands")
        assert all(r.startswith("-ERR") for r in replies), replies
        assert c.cmd("CAPA").startswith("+OK")    # a summary may be logged now
        c.multi()
        assert c.cmd("QUIT").startswith("+OK")
        c.wait_closed(3)
    time.sleep(0.1)
    new = env.pop3d.log().splitlines()[len(before):]
    assert len(new) < 8, f"{len(new)} log lines for 19 identical errors:\n" + "\n".join(new)


# -- connection caps ------------------------------------------------------------

def open_greeted(env, n):
    out = []
    for _ in range(n):
        c = env.raw(timeout=5)
        assert c.greeting.startswith(b"+OK"), c.greeting
        out.append(c)
    return out


def assert_refused(env):
    """A new connection gets one -ERR [SYS/TEMP] line and is closed."""
    with env.raw(timeout=5, greet=False) as c:
        data = c.wait_closed(5)
    assert data.startswith(b"-ERR [SYS/TEMP]"), data
    assert data.count(b"\r\n") == 1 and data.endswith(b"\r\n"), data


def assert_admitted_soon(env, within=3):
    """After a session ended, a new connection is greeted (the daemon may
    take a moment to see the close)."""
    deadline = time.monotonic() + within
    while True:
        with env.raw(timeout=5, greet=False) as c:
            first = c.line()
            if first.startswith(b"+OK"):
                assert c.cmd("QUIT").startswith("+OK")
                return
        assert first.startswith(b"-ERR [SYS/TEMP]"), first
        assert time.monotonic() < deadline, f"still refused {within}s after a session ended"
        time.sleep(0.1)


@pytest.mark.parametrize("key,cap", [("max_connections_per_ip", 3), ("max_connections", 2)])
def test_connection_cap(pop3_factory, key, cap):
    env = pop3_factory(pop3d_extra={key: cap})
    held = open_greeted(env, cap)
    try:
        assert_refused(env)
        assert_refused(env)
        # The refused ones did not count: the held sessions still work.
        assert held[0].cmd("CAPA").startswith("+OK")
        held[0].multi()
        assert held[-1].cmd("QUIT").startswith("+OK")
        held.pop().wait_closed(3)
        assert_admitted_soon(env)
    finally:
        for c in held:
            c.close()


def test_a_session_after_quit_frees_its_address_at_once(pop3_factory):
    """After "+OK Bye" the server closes its side and waits a moment for
    the client's own close; the address's count does not wait: a client
    that opens a new session as soon as it has seen the server close,
    before closing the old one itself, is greeted."""
    env = pop3_factory(pop3d_extra={"max_connections_per_ip": 2})
    held = [env.raw(timeout=5), env.raw(timeout=5)]
    try:
        for c in held:
            assert c.cmd("QUIT").startswith("+OK")
            assert c.wait_closed(3) == b""      # the server's FIN, not ours
        fresh = [env.raw(timeout=5), env.raw(timeout=5)]
        held += fresh
        assert all(c.greeting.startswith(b"+OK") for c in fresh), [c.greeting for c in fresh]
        assert_refused(env)
    finally:
        for c in held:
            c.close()


def test_connection_cap_counts_tls_port_too(pop3_factory):
    env = pop3_factory(pop3d_extra={"max_connections_per_ip": 2})
    held = [env.raw(timeout=5), env.raw_tls(timeout=5)]
    try:
        assert all(c.greeting.startswith(b"+OK") for c in held)
        assert_refused(env)
        # On the implicit-TLS port nothing comes in clear before a handshake
        # (RFC 8314 §3): the refusal is a close, not a line a TLS client
        # would take for a broken handshake.
        with socket.create_connection(("127.0.0.1", env.pop3s_port), timeout=5) as raw:
            assert raw.recv(100) == b""
    finally:
        for c in held:
            c.close()


def test_stalled_pop3s_handshake_is_closed_at_30_s_and_frees_its_slot(pop3_factory):
    """A silent client on pop3s is closed 30 s after it connected, not 40:
    the greeting waiting for the handshake is not waited for; then its
    address may connect again (a cap of 1 per address)."""
    env = pop3_factory(pop3d_extra={"max_connections_per_ip": 1})
    with socket.create_connection(("127.0.0.1", env.pop3s_port), timeout=60) as raw:
        t0 = time.monotonic()
        assert raw.recv(100) == b""
        took = time.monotonic() - t0
    assert 25 < took < 34, took
    c = env.raw(timeout=5)
    try:
        assert c.greeting.startswith(b"+OK")
    finally:
        c.close()


IDLE_LIMIT = 400       # descriptors; 300 idle sessions once cost 900
IDLE_SESSIONS = 300


def test_idle_sessions_cost_one_descriptor_each(pop3_factory):
    """A session holds only its socket (mailboxes are read on the loop's
    store connection): under nofile=400 the daemon greets 300 at once, and
    one of them still logs in and reads its mailbox."""
    env = pop3_factory(pop3d_extra={"max_connections_per_ip": 1000},
                       pop3d_prefix=["prlimit", f"--nofile={IDLE_LIMIT}:{IDLE_LIMIT}", "--"])
    env.deliver("alice", message("read beside idle sessions"))
    held = []
    try:
        for _ in range(IDLE_SESSIONS):
            held.append(env.raw(timeout=10, greet=False))
        for i, c in enumerate(held):
            first = c.line()
            assert first.startswith(b"+OK"), f"session {i + 1} of {IDLE_SESSIONS} got {first!r}"
        c = held[-1]
        assert c.cmd("USER alice").startswith("+OK")
        assert c.cmd(f"PASS {PASSWORD}").startswith("+OK")
        assert c.cmd("RETR 1").startswith("+OK")
        assert b"Subject: read beside idle sessions" in c.multi()
    finally:
        for c in held:
            c.close()


QUIET_SESSIONS = 60
QUIET_KIB = 64          # a quiet session's share of the RSS (what it read ahead: 120)


def test_quiet_sessions_after_retr_hold_no_messages(pop3_factory):
    """Sessions that RETR a message and then go quiet hold nothing of the
    messages after it: with PostgreSQL a RETR reads the next ones ahead for
    a client draining its mailbox, and a client that stops drops them
    within a few seconds.  Their next RETR still reads them whole."""
    env = pop3_factory(pop3d_extra={"max_connections_per_ip": 1000})
    users = [f"quiet{i}" for i in range(QUIET_SESSIONS)]
    for u in users:
        env.add_user(u)
    line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    texts = [message(f"part {n}", f"{n}{line}" * 540) for n in range(3)]      # 40 KiB each
    with smtplib.SMTP("127.0.0.1", env.smtp_port, timeout=60) as s:
        for t in texts:
            assert s.sendmail(SENDER, [f"{u}@{DOMAIN}" for u in users], t) == {}
    pid = env.pop3d.pid
    held = []
    try:
        base = rss_kb(pid)
        for u in users:
            c = env.raw()
            held.append(c)
            login(c, u)
            assert c.cmd("RETR 1").startswith("+OK")
            assert b"Subject: part 0" in c.multi()
        time.sleep(3)
        quiet = rss_kb(pid)
        for c in held:
            assert c.cmd("RETR 2").startswith("+OK")
            got = c.multi()
            assert b"Subject: part 1" in got
            assert got.count(("1" + line[:-2]).encode()) == 540
            assert c.cmd("QUIT").startswith("+OK")
    finally:
        for c in held:
            c.close()
    if not sanitized_build():       # ASan keeps freed memory resident
        grew = quiet - base
        assert grew < QUIET_SESSIONS * QUIET_KIB, (
            f"{QUIET_SESSIONS} quiet sessions hold {grew} KiB, "
            f"{grew // QUIET_SESSIONS} KiB each")


# -- STLS discards everything learnt before it -------------------------------------

def test_user_before_stls_is_forgotten(env):
    with env.raw() as c:
        assert c.cmd("USER alice").startswith("+OK")
        assert c.cmd("STLS").startswith("+OK")
        c.starttls()
        r = c.cmd(f"PASS {PASSWORD}")
        assert r.startswith("-ERR"), r
        login(c)
        assert c.cmd("QUIT").startswith("+OK")
