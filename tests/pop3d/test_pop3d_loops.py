"""Several event loops in one umbox-pop3d (SPEC §2 [general] threads, §5).

Loop 0 accepts every connection and applies the caps; each session then
lives on one of the loops.  What a client sees must not depend on which:
the caps are exact however the sessions are spread, mailboxes drained at
once from different loops give every message whole, once, the mailbox
lock holds between sessions on different loops, and SIGTERM answers the
sessions on every loop.  Every daemon here runs 4 loops (umbox-smtpd,
which only puts mail in, too), whatever UMBOX_THREADS says.
"""
import re
import signal
import socket
import threading
import time

import pytest

import backend
import loops_util
import proc_util
from loops_util import burst, close_all

from pop3d_util import PASSWORD, joined, message

LOOPS = 4
FOUR_LOOPS = {"general": {"threads": LOOPS}}
REFUSED_IP = b"-ERR [SYS/TEMP] Too many connections from your address"
REFUSED_BUSY = b"-ERR [SYS/TEMP] Too many connections, try again later"
SHUTDOWN = b"-ERR [SYS/TEMP] Server shutting down\r\n"
LOGINS = ("admin", "alice", "bob", "carol")


def loops_env(factory, **kw):
    """A started installation whose daemons run 4 event loops."""
    return factory(sections=FOUR_LOOPS, **kw)


def wait_log(env, pattern, count=1, timeout=5):
    """Wait until umbox-pop3d's log has count matches of the regex."""
    return loops_util.wait_log(env.pop3d.log, pattern, count, timeout)


def session_of(env, sock):
    """(session id, loop) of the session behind our connected socket."""
    return loops_util.session_of(env.pop3d.log, sock)


def loops_of(env, socks):
    return sorted(session_of(env, s)[1] for s in socks)


def wait_sessions(env, n, timeout=5):
    return proc_util.wait_sessions(env.pop3d.pid, {env.pop3_port, env.pop3s_port}, n, timeout)


def split_burst(results, refusal):
    return loops_util.split_burst(results, b"+OK", refusal)


def capa(sock):
    """The session behind a greeted socket answers CAPA."""
    sock.sendall(b"CAPA\r\n")
    data = b""
    while not data.endswith(b"\r\n.\r\n"):
        chunk = sock.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    assert data.startswith(b"+OK") and b"\r\nUIDL\r\n" in data, data


# -- the loops and how sessions are spread --------------------------------------------

def test_four_loops_and_sessions_spread_over_all(pop3_factory):
    env = loops_env(pop3_factory)
    wait_log(env, r"umbox-pop3d \S+ started: mail\.example\.test, 4 event loops$")
    wait_sessions(env, 0)
    clients = []
    try:
        for _ in range(8):                      # one after another, all kept open
            clients.append(env.raw())
            assert clients[-1].greeting.startswith(b"+OK")
        assert loops_of(env, [c.sock for c in clients]) == [0, 0, 1, 1, 2, 2, 3, 3]
        # Every one of them is served: four log in, four ask CAPA.
        for c, login in zip(clients[:4], LOGINS):
            c.login(login)
            assert c.cmd("STAT").startswith("+OK 0 0")
        for c in clients[4:]:
            assert c.cmd("CAPA").startswith("+OK")
            assert b"UIDL" in c.multi()
    finally:
        for c in clients:
            c.close()


# -- caps are exact across loops -----------------------------------------------------------

@pytest.mark.parametrize("cap", ["per-ip", "total"])
def test_cap_is_exact_under_a_burst_across_loops(pop3_factory, cap):
    if cap == "per-ip":
        limits = {"max_connections_per_ip": 5, "max_connections": 100}
        sources, again_sources, refusal = ["127.0.0.1"] * 40, ["127.0.0.1"] * 10, REFUSED_IP
    else:
        limits = {"max_connections_per_ip": 100, "max_connections": 5}
        sources = ["127.0.0.1", "127.0.0.2"] * 20
        again_sources, refusal = ["127.0.0.2", "127.0.0.1"] * 5, REFUSED_BUSY
    env = loops_env(pop3_factory, pop3d_extra=limits)
    wait_sessions(env, 0)
    held = []
    try:
        greeted = split_burst(burst(env.pop3_port, sources), refusal)
        held += greeted
        assert len(greeted) == 5
        assert set(loops_of(env, greeted)) == set(range(LOOPS))
        for s in greeted:
            capa(s)

        # Two hang up: exactly two places come free, on whichever loops.
        ids = [session_of(env, s)[0] for s in greeted[:2]]
        for s in greeted[:2]:
            s.close()
        held = greeted[2:]
        for sid in ids:
            wait_log(env, rf"^.*\b{re.escape(sid)}: disconnect in state ")
        wait_sessions(env, 3)
        again = split_burst(burst(env.pop3_port, again_sources), refusal)
        held += again
        assert len(again) == 2
        # The cap counts the POP3S port too (refused there by a close: nothing
        # may come before the TLS handshake).
        with socket.create_connection(("127.0.0.1", env.pop3s_port), timeout=5) as s:
            s.settimeout(5)
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data == b""
        for s in held:
            capa(s)
    finally:
        close_all(held)


# -- concurrent drains ---------------------------------------------------------------------

def fill(env, login, n):
    """Deliver n numbered messages to login; returns {uid: stored bytes}."""
    env.deliver(login, [message(f"{login} {i}",
                                "".join(f"{login} message {i} line {k:02d} {'y' * 40}\r\n"
                                        for k in range(20)) + ".dot first\r\n")
                        for i in range(n)])
    stored = env.messages(login)
    assert len(stored) == n
    return stored


def test_concurrent_drains_on_every_loop(pop3_factory):
    env = loops_env(pop3_factory)
    per = 30
    stored = {login: fill(env, login, per) for login in LOGINS}
    wait_sessions(env, 0)
    got = {}                    # login -> {uid: retrieved bytes}
    loop_of = {}
    quit_replies = {}
    errors = []
    logged_in = threading.Barrier(len(LOGINS))

    def drain(login):
        try:
            p = env.poplib(login, timeout=30)
            try:
                logged_in.wait(10)              # all four sessions open at once
                loop_of[login] = session_of(env, p.sock)[1]
                uidl = [l.split(b" ", 1) for l in p.uidl()[1]]
                mine = {}
                for n, uid in uidl:
                    _, lines, _ = p.retr(int(n))
                    assert uid.decode() not in mine, f"UIDL {uid} twice"
                    mine[uid.decode()] = joined(lines)
                for n, _ in uidl:
                    assert p.dele(int(n)).startswith(b"+OK")
                got[login] = mine
            finally:
                quit_replies[login] = p.quit()
        except Exception as e:                  # reported below
            errors.append((login, repr(e)))
            logged_in.abort()

    threads = [threading.Thread(target=drain, args=(login,)) for login in LOGINS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    # The four sessions were on the four loops.
    assert sorted(loop_of.values()) == [0, 1, 2, 3]
    for login in LOGINS:
        assert quit_replies[login].startswith(b"+OK"), quit_replies[login]
        # Every message retrieved once, whole (the bytes umboxctl exports).
        assert set(got[login]) == set(stored[login]), login
        for uid, data in got[login].items():
            assert data == stored[login][uid], f"{login} {uid} differs"
        # QUIT committed the deletions: the mailbox is empty everywhere.
        assert env.mailbox(login) == []


def test_mailbox_in_use_across_loops(pop3_factory):
    env = loops_env(pop3_factory)
    env.deliver("alice", [message("locked", "mine\r\n")])
    wait_sessions(env, 0)
    clients = []
    try:
        first = env.raw()
        clients.append(first)
        first.login("alice")
        _, first_loop = session_of(env, first.sock)
        # Open sessions until one is on another loop than the lock holder.
        for _ in range(LOOPS):
            second = env.raw()
            clients.append(second)
            if session_of(env, second.sock)[1] != first_loop:
                break
        else:
            pytest.fail("no session on a second loop")
        assert second.cmd("USER alice").startswith("+OK")
        r = second.cmd(f"PASS {PASSWORD}")
        assert r.startswith("-ERR [IN-USE]"), r
        # The lock holder is unaffected.
        assert first.cmd("STAT").startswith("+OK 1 ")
        # And the lock goes with its QUIT: the other loop's session gets in.
        assert first.cmd("QUIT").startswith("+OK")
        first.wait_closed(5)
        assert second.cmd("USER alice").startswith("+OK")
        r = second.cmd(f"PASS {PASSWORD}")
        assert r.startswith("+OK"), r
        assert second.cmd("STAT").startswith("+OK 1 ")
        # Now the other way round: the first loop's new session is refused.
        third = env.raw()
        clients.append(third)
        assert third.cmd("USER alice").startswith("+OK")
        assert third.cmd(f"PASS {PASSWORD}").startswith("-ERR [IN-USE]")
    finally:
        for c in clients:
            c.close()


def mailbox_locks(env):
    """How many POP3 mailbox locks the store holds (read-only look)."""
    return int(backend.query(env.data_dir, "SELECT count(*) FROM pop3_locks")[0][0])


# -- SIGTERM ---------------------------------------------------------------------------------

def test_sigterm_answers_sessions_on_every_loop(pop3_factory):
    env = loops_env(pop3_factory)
    for login in LOGINS:
        env.deliver(login, [message(f"kept for {login}", "still here\r\n")])
    wait_sessions(env, 0)
    clients = []
    try:
        for i in range(8):
            clients.append(env.raw())
        assert loops_of(env, [c.sock for c in clients]) == [0, 0, 1, 1, 2, 2, 3, 3]
        # Half are logged in, with a deletion marked; half have not logged in.
        for c, login in zip(clients[::2], LOGINS):
            c.login(login)
            assert c.cmd("DELE 1").startswith("+OK")
        for c in clients[1::2]:
            assert c.cmd("USER alice").startswith("+OK")

        assert mailbox_locks(env) == len(LOGINS)
        t0 = time.monotonic()
        env.pop3d.proc.send_signal(signal.SIGTERM)
        for c in clients:
            assert c.wait_closed(5) == SHUTDOWN
            c.close()
        rc = env.pop3d.stop(timeout=10)
        assert rc == 0, env.pop3d.log()
        assert time.monotonic() - t0 < 5
    finally:
        for c in clients:
            c.close()
    wait_log(env, r"stopping: 8 sessions open")
    # The four mailbox locks went with their sessions (a restarted daemon
    # would clear its host's old locks itself: look before that).
    assert mailbox_locks(env) == 0
    # Only QUIT commits: nothing was deleted.
    env.restart_pop3d()
    for login in LOGINS:
        assert [e["subject"] for e in env.mailbox(login)] == [f"kept for {login}"]
        with env.raw() as c:
            c.login(login)
            assert c.cmd("STAT").startswith("+OK 1 ")
            assert c.cmd("QUIT").startswith("+OK")
