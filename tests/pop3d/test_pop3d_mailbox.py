"""Mailbox semantics over POP3: sizes, UIDL, TOP, dot-stuffing, DELE/RSET/QUIT,
the mailbox lock and the login snapshot (SPEC §3, §5; RFC 1939)."""
import base64
import re
import socket
import subprocess
import time

import pytest

import backend
from pop3d_util import (PASSWORD, binary, body_of, free_port, head_of, joined, message, stuff,
                        wait_login)

DOTTY_BODY = (".\r\n"                 # a line that is only a dot
              "..\r\n"
              ".leading dot\r\n"
              "...three\r\n"
              "middle . dot\r\n"
              " .space first\r\n"
              ".\r\n"
              "last line\r\n")

UIDL_RE = re.compile(rb"^[\x21-\x7e]{1,70}$")


def three_messages(env, login="alice"):
    """Three messages of different shapes; returns {uid: stored bytes}."""
    env.deliver(login, [
        message("short", "hi\r\n"),
        message("dots", DOTTY_BODY),
        message("longer", "".join(f"line {i} " + "x" * (i % 70) + "\r\n" for i in range(200))),
    ])
    msgs = env.messages(login)
    assert len(msgs) == 3
    return msgs


def uidl_map(p):
    """{uidl: number} from poplib's UIDL."""
    out = {}
    for l in p.uidl()[1]:
        n, u = l.split(b" ", 1)
        out[u.decode()] = int(n)
    return out


def test_sizes_are_exact_octets_of_retr(env):
    stored = three_messages(env)
    p = env.poplib()
    try:
        count, total = p.stat()
        assert count == 3
        assert total == sum(len(m) for m in stored.values())
        listing = {int(n): int(s) for n, s in (l.split() for l in p.list()[1])}
        uidls = uidl_map(p)
        assert set(uidls) == set(stored), "UIDL must be the UID that umboxctl shows"
        for uid, n in uidls.items():
            resp, lines, octets = p.retr(n)
            got = joined(lines)
            assert got == stored[uid], f"RETR {n} differs from mail export {uid}"
            assert listing[n] == len(got) == len(stored[uid])
            assert resp.split()[:2] == [b"+OK", str(len(got)).encode()], resp
            single = p.list(n)
            assert single == f"+OK {n} {len(got)}".encode()
    finally:
        p.quit()


def test_uidl_format_and_stable_across_sessions(env):
    three_messages(env)
    p = env.poplib()
    first = p.uidl()[1]
    single = [p.uidl(n) for n in (1, 2, 3)]
    p.quit()
    assert len(first) == 3
    ids = [l.split(b" ", 1)[1] for l in first]
    for u in ids:
        assert UIDL_RE.match(u), u
    assert len(set(ids)) == 3
    assert single == [b"+OK " + l for l in first]
    # A later session, with more mail arrived in between: same ids, same numbers.
    env.deliver("alice", message("fourth"))
    p = env.poplib("100")
    second = p.uidl()[1]
    p.quit()
    assert second[:3] == first
    assert len(second) == 4 and second[3].split(b" ", 1)[1] not in ids
    # And after the daemon restarts.
    assert env.restart_pop3d() == 0
    p = env.poplib()
    assert p.uidl()[1] == second
    p.quit()


def test_top(env):
    stored = three_messages(env)
    p = env.poplib()
    try:
        uidls = uidl_map(p)
        for uid, n in uidls.items():
            m = stored[uid]
            head, body = head_of(m), body_of(m)
            body_lines = body.split(b"\r\n")[:-1]
            _, lines, _ = p.top(n, 0)
            assert joined(lines) == head, f"TOP {n} 0"
            _, lines, _ = p.top(n, 2)
            assert joined(lines) == head + b"".join(l + b"\r\n" for l in body_lines[:2]), \
                f"TOP {n} 2"
            _, lines, _ = p.top(n, 10 ** 9)
            assert joined(lines) == m, f"TOP {n} with a huge line count"
    finally:
        p.quit()


def test_dot_stuffing_both_ways(env):
    env.deliver("alice", message("dots", DOTTY_BODY))
    (uid, stored), = env.messages("alice").items()
    assert body_of(stored) == DOTTY_BODY.encode(), "smtpd must un-stuff what smtplib stuffed"
    # On the wire: stuffed exactly (a raw client), terminated by CRLF.CRLF.
    with env.raw() as c:
        c.login()
        r = c.cmd("RETR 1")
        assert r.startswith("+OK"), r
        wire = c.body_raw()
        assert wire == stuff(stored)
        r = c.cmd("TOP 1 3")
        assert r.startswith("+OK"), r
        top = c.body_raw()
        assert top == stuff(head_of(stored) + b".\r\n..\r\n.leading dot\r\n")
        assert c.cmd("QUIT").startswith("+OK")
    # And un-stuffed by a client we did not write.
    p = env.poplib()
    _, lines, _ = p.retr(1)
    p.quit()
    assert joined(lines) == stored


def test_dele_then_rset_deletes_nothing(env):
    stored = three_messages(env)
    total = sum(len(m) for m in stored.values())
    p = env.poplib()
    assert p.dele(2).startswith(b"+OK")
    assert p.stat() == (2, total - len(list(stored.values())[1]))
    with pytest.raises(Exception, match="-ERR"):
        p.retr(2)
    with pytest.raises(Exception, match="-ERR"):
        p.dele(2)
    assert [l.split()[0] for l in p.list()[1]] == [b"1", b"3"]
    assert p.rset().startswith(b"+OK")
    assert p.stat() == (3, total)
    assert p.quit().startswith(b"+OK")
    assert env.uids("alice") == list(stored)
    p = env.poplib()
    assert p.stat() == (3, total)
    p.quit()


def test_dele_then_quit_removes(env):
    stored = three_messages(env)
    uids = list(stored)
    p = env.poplib()
    assert p.dele(1).startswith(b"+OK")
    assert p.dele(3).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")
    # Gone everywhere as soon as QUIT said +OK.
    assert env.uids("alice") == [uids[1]]
    r = env.ctl("mail", "export", "alice", uids[0], check=False)
    assert r.returncode == 4, r
    p = env.poplib()
    assert p.stat() == (1, len(stored[uids[1]]))
    assert uidl_map(p) == {uids[1]: 1}
    assert joined(p.retr(1)[1]) == stored[uids[1]]
    p.quit()


def test_dele_then_drop_deletes_nothing(env):
    stored = three_messages(env)
    c = env.raw()
    c.login()
    assert c.cmd("DELE 1").startswith("+OK")
    assert c.cmd("DELE 2").startswith("+OK")
    assert c.cmd("STAT").startswith("+OK 1 ")
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    c = wait_login(env)
    assert c.cmd("STAT") == f"+OK 3 {sum(len(m) for m in stored.values())}"
    assert c.cmd("QUIT").startswith("+OK")
    c.close()
    assert env.uids("alice") == list(stored)


def test_half_closed_client_gets_every_reply_and_its_quit(env):
    """A client that sends its last commands and then shuts its side (as
    nc -N does) still gets every reply, the QUIT's "+OK Bye" after the
    deletions are committed; commands pipelined behind a login are all
    done.  Without QUIT, the deletions are not made."""
    stored = three_messages(env)
    uids = list(stored)
    c = env.raw()
    c.login()
    c.send(b"DELE 1\r\nQUIT\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    lines = c.wait_closed().split(b"\r\n")
    c.close()
    assert lines[0].startswith(b"+OK") and lines[1].startswith(b"+OK Bye (1 "), lines
    assert env.uids("alice") == uids[1:]

    c = env.raw()
    c.send(f"USER alice\r\nPASS {PASSWORD}\r\nSTAT\r\nDELE 1\r\n".encode())
    c.sock.shutdown(socket.SHUT_WR)
    lines = c.wait_closed().split(b"\r\n")
    c.close()
    assert [l[:3] for l in lines[:4]] == [b"+OK"] * 4, lines
    assert lines[2].startswith(b"+OK 2 "), lines
    wait_login(env).close()
    assert env.uids("alice") == uids[1:]


def test_retrieving_a_message_deleted_since_login_ends_the_session(env):
    """umboxctl(8): a session still lists an entry `mail del` removed, and
    retrieving it ends that session; the session's own DELE is not made
    (it ended without QUIT), and the next login lists the truth."""
    stored = three_messages(env)
    uids = list(stored)
    c = env.raw()
    c.login()
    assert c.cmd("DELE 1").startswith("+OK")
    env.ctl("mail", "del", "alice", uids[1])
    c.send(b"RETR 2\r\nNOOP\r\n")
    rest = c.wait_closed()
    c.close()
    first = rest.split(b"\r\n", 1)[0]
    assert first.startswith(b"-ERR ") and b"deleted" in first, rest[:300]
    c = wait_login(env)
    assert c.cmd("STAT") == f"+OK 2 {len(stored[uids[0]]) + len(stored[uids[2]])}"
    assert c.cmd("QUIT").startswith("+OK")
    c.close()
    assert env.uids("alice") == [uids[0], uids[2]]


def test_a_second_pop3d_on_the_same_store_is_refused(env, tmp_path):
    """A second umbox-pop3d on the store (other ports) would take the
    first one's mailbox locks for its own earlier process's: it does not
    start, and says which process serves the store; the session on the
    first keeps its mailbox."""
    if backend.PG:
        pytest.skip("on PostgreSQL the node's name is held (tests/nodes)")
    env.deliver("alice", [message("held")])
    with env.raw() as first:
        first.login()
        text = env.config.read_text()
        conf = tmp_path / "second.conf"
        conf.write_text(re.sub(r"127\.0\.0\.1:(\d+)",
                               lambda m: f"127.0.0.1:{free_port()}", text))
        p = subprocess.run([str(binary("umbox-pop3d")), "-f", "-c", str(conf)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, p
        assert "another umbox-pop3d (pid " in p.stderr and "serves the store" in p.stderr, \
            p.stderr
        assert first.cmd("STAT").startswith("+OK 1 ")
        with env.raw() as second:
            assert second.cmd("USER alice").startswith("+OK")
            assert second.cmd(f"PASS {PASSWORD}").startswith("-ERR [IN-USE]")


def test_the_log_says_where_it_listens_or_that_it_does_not(env, tmp_path):
    """At start the log names every listener; with every listener key
    empty it warns that nothing can connect."""
    assert re.search(rf"listening: pop3 \[127\.0\.0\.1\]:{env.pop3_port}, pop3s "
                     rf"\[127\.0\.0\.1\]:{env.pop3s_port}$", env.pop3d.log(), re.M), \
        env.pop3d.log()
    env.pop3d.stop()
    conf = tmp_path / "none.conf"
    conf.write_text(re.sub(r"(?m)^(listen|pop3s) = .*$", r"\1 =",
                           re.sub(r"(?s)\[smtpd\].*?(?=\n\[)", "", env.config.read_text())))
    p = subprocess.run(["timeout", "-s", "TERM", "2", str(binary("umbox-pop3d")), "-f", "-c",
                        str(conf)], capture_output=True, text=True, timeout=30)
    assert "warning: no listener" in p.stderr, p.stderr


def test_deleted_uidl_is_never_reused(env):
    """SPEC §3: an entry's UID is never reused, even after deletion - also when
    the newest entry, or every entry of the store, was deleted."""
    stored = three_messages(env)
    seen = set(stored)
    # Delete the newest one, then everything.
    p = env.poplib()
    p.dele(3)
    p.quit()
    env.deliver("alice", message("after newest deleted"))
    now = env.uids("alice")
    assert len(now) == 3 and not (set(now[2:]) & seen), now
    seen |= set(now)
    p = env.poplib()
    for n in range(1, p.stat()[0] + 1):
        p.dele(n)
    p.quit()
    assert env.uids("alice") == []
    env.deliver("alice", [message("after all deleted 1"), message("after all deleted 2")])
    p = env.poplib()
    new = uidl_map(p)
    p.quit()
    assert len(new) == 2
    assert not (set(new) & seen), f"UIDL reused: {set(new) & seen}"


def test_second_session_gets_in_use_until_quit(env):
    env.deliver("alice", message("locked"))
    first = env.raw()
    first.login()
    for name in ("alice", "100"):
        with env.raw() as second:
            assert second.cmd(f"USER {name}").startswith("+OK")
            r = second.cmd(f"PASS {PASSWORD}")
            assert r.startswith("-ERR [IN-USE]"), r
            assert second.cmd("STAT").startswith("-ERR")
    with env.raw() as second:
        assert second.cmd("USER alice").startswith("+OK")
        assert second.cmd(f"PASS {PASSWORD}").startswith("-ERR [IN-USE]")
        assert first.cmd("QUIT").startswith("+OK")
        first.close()
        # The same connection logs in once the first session is gone.
        second.login()
        assert second.cmd("STAT").startswith("+OK 1 ")
        assert second.cmd("QUIT").startswith("+OK")


def test_in_use_replies_do_not_close_a_waiting_client(env):
    """A client retrying while another session holds the mailbox is not
    sending bad commands: 25 [IN-USE] in a row leave its session open."""
    first = env.raw()
    first.login()
    token = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    with env.raw(timeout=30) as second:
        for i in range(25):
            r = second.cmd(f"AUTH PLAIN {token}")
            assert r.startswith("-ERR [IN-USE]"), (i, r)
        assert first.cmd("QUIT").startswith("+OK")
        first.close()
        assert second.cmd(f"AUTH PLAIN {token}").startswith("+OK")


def test_dropped_session_releases_the_lock(env):
    env.deliver("alice", message("locked"))
    first = env.raw()
    first.login()
    with env.raw() as second:
        assert second.cmd("USER alice").startswith("+OK")
        assert second.cmd(f"PASS {PASSWORD}").startswith("-ERR [IN-USE]")
    first.close()   # no QUIT
    c = wait_login(env)
    assert c.cmd("STAT").startswith("+OK 1 ")
    assert c.cmd("QUIT").startswith("+OK")
    c.close()


def test_other_mailboxes_are_not_locked(env):
    a = env.poplib("alice")
    b = env.poplib("bob")
    assert a.stat() == (0, 0) and b.stat() == (0, 0)
    a.quit()
    b.quit()


def test_listing_is_a_snapshot(env):
    stored = three_messages(env)
    total = sum(len(m) for m in stored.values())
    p = env.poplib()
    assert p.stat() == (3, total)
    env.deliver("alice", message("arrives during the session"))
    assert len(env.uids("alice")) == 4
    assert p.stat() == (3, total)
    assert len(p.list()[1]) == 3 and len(p.uidl()[1]) == 3
    with pytest.raises(Exception, match="-ERR"):
        p.retr(4)
    # Deleting everything seen must not take the new message with it.
    for n in (1, 2, 3):
        p.dele(n)
    assert p.quit().startswith(b"+OK")
    p = env.poplib()
    assert p.stat()[0] == 1
    _, lines, _ = p.retr(1)
    assert b"Subject: arrives during the session" in lines
    p.quit()


def test_quit_in_authorization_state(env):
    with env.raw() as c:
        assert c.cmd("QUIT").startswith("+OK")
        assert c.wait_closed() == b""


def test_quit_closes_and_is_durable(env):
    three_messages(env)
    with env.raw() as c:
        c.login()
        assert c.cmd("DELE 2").startswith("+OK")
        assert c.cmd("QUIT").startswith("+OK")
        assert c.wait_closed() == b""
    # +OK to QUIT means committed: visible to another process right away.
    assert len(env.uids("alice")) == 2


def test_sizes_exact_for_message_without_final_crlf(env):
    data = b"From: sender@outside.test\r\nSubject: no final CRLF\r\n\r\nlast line without CRLF"
    with socket.create_connection(("127.0.0.1", env.smtp_port), timeout=15) as s:
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    return line

        assert reply().startswith(b"220")
        s.sendall(b"EHLO client.outside.test\r\n")
        assert reply().startswith(b"250")
        s.sendall(b"MAIL FROM:<sender@outside.test>\r\n")
        assert reply().startswith(b"250")
        s.sendall(b"RCPT TO:<alice@example.test>\r\n")
        assert reply().startswith(b"250")
        s.sendall(b"BDAT %d LAST\r\n" % len(data) + data)
        assert reply().startswith(b"250")
        s.sendall(b"QUIT\r\n")
        reply()
    with env.raw() as c:
        c.login()
        r = c.cmd("LIST 1")
        listed = int(r.split()[2])
        r, got = c.retr(1)
        assert r.startswith("+OK"), r
        assert c.cmd("QUIT").startswith("+OK")
    assert len(got) == listed, f"LIST says {listed} octets, RETR sent {len(got)}"


def test_message_shared_by_two_mailboxes(env):
    """One SMTP transaction to two users: each mailbox has its own exact copy
    (own Delivered-To); deleting it from one leaves the other intact."""
    import smtplib
    with smtplib.SMTP("127.0.0.1", env.smtp_port, timeout=30) as s:
        s.sendmail("sender@outside.test", ["alice@example.test", "bob@example.test"],
                   message("for both", "shared body\r\n.dot\r\n"))
    (a_uid, a_msg), = env.messages("alice").items()
    (b_uid, b_msg), = env.messages("bob").items()
    for login, stored in (("alice", a_msg), ("bob", b_msg)):
        p = env.poplib(login)
        assert p.stat() == (1, len(stored))
        assert joined(p.retr(1)[1]) == stored
        if login == "alice":
            p.dele(1)
        assert p.quit().startswith(b"+OK")
    assert env.uids("alice") == []
    p = env.poplib("bob")
    assert p.stat() == (1, len(b_msg))
    assert joined(p.retr(1)[1]) == b_msg
    p.quit()
    assert env.export("bob", b_uid) == b_msg


def test_sigterm_with_open_session_exits_0_and_deletes_nothing(env):
    three_messages(env)
    c = env.raw()
    c.login()
    assert c.cmd("DELE 1").startswith("+OK")
    rc = env.restart_pop3d()
    assert rc == 0, env.pop3d.log()
    rest = c.wait_closed()
    assert rest == b"" or rest.startswith(b"-ERR"), rest
    c.close()
    assert len(env.uids("alice")) == 3
    c = env.raw()      # the restarted daemon: no stale lock
    c.login()
    assert c.cmd("STAT").startswith("+OK 3 ")
    assert c.cmd("QUIT").startswith("+OK")
    c.close()


def test_killed_daemon_leaves_no_stale_lock(env):
    """kill -9 with a session logged in: the restarted daemon must not answer
    [IN-USE] for the next 30 minutes (the lock's lease)."""
    import signal
    three_messages(env)
    c = env.raw()
    c.login()
    assert c.cmd("DELE 2").startswith("+OK")
    env.restart_pop3d(signal.SIGKILL)
    c.close()
    c = env.raw()
    assert c.cmd("USER alice").startswith("+OK")
    r = c.cmd(f"PASS {PASSWORD}")
    assert r.startswith("+OK"), r
    assert c.cmd("STAT").startswith("+OK 3 ")
    assert c.cmd("QUIT").startswith("+OK")
    c.close()


def test_dot_lines_across_read_slices(env):
    """Bodies made only of "." lines, shifted by 0-2 octets so that some
    line starts exactly where the server's read slices meet; the last line
    is "." too, right before the terminator."""
    env.deliver("alice", [message(f"slices {k}", "x" * k + "\r\n" + ".\r\n" * 40000)
                          for k in range(3)])
    stored = env.messages("alice")
    with env.raw(timeout=30) as c:
        c.login()
        for n, (uid, m) in enumerate(stored.items(), 1):
            assert c.cmd(f"RETR {n}").startswith("+OK")
            assert c.body_raw() == stuff(m), f"RETR {n}"
            assert c.cmd(f"TOP {n} 100000").startswith("+OK")
            assert c.body_raw() == stuff(m), f"TOP {n}"
            assert c.cmd(f"TOP {n} 30000").startswith("+OK")
            assert c.body_raw() == stuff(head_of(m) + b"x" * (n - 1) + b"\r\n" +
                                         b".\r\n" * 29999), f"TOP {n} 30000"
        assert c.cmd("QUIT").startswith("+OK")


def test_retr_in_any_order_gives_each_message_whole(env):
    """RETRs in order, skipping, going back, after DELE and between TOPs,
    over messages small and large (past 64 KiB) and dot-stuffed: each
    RETR is exactly that message, and TOP is that message's head.  (On
    PostgreSQL a RETR reads the next messages ahead of their RETR.)"""
    msgs = []
    for i in range(24):
        if i % 7 == 3:
            body = "".join(f"big {i} line {k} " + "y" * 60 + "\r\n" for k in range(1200))
        elif i % 5 == 1:
            body = DOTTY_BODY
        else:
            body = f"small {i}\r\n" * (1 + i)
        msgs.append(message(f"m{i}", body))
    env.deliver("alice", msgs)
    stored = list(env.messages("alice").values())
    assert len(stored) == 24
    assert any(len(m) > 65536 for m in stored)
    p = env.poplib()
    try:
        def retr(n):
            assert joined(p.retr(n)[1]) == stored[n - 1], f"RETR {n}"

        retr(1)
        retr(2)
        p.dele(3)
        retr(4)
        assert joined(p.top(5, 0)[1]) == stored[4].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        retr(5)
        retr(7)
        retr(6)         # back
        retr(2)         # again
        for n in range(8, 25):
            retr(n)
        retr(1)
    finally:
        p.quit()
