"""Bad input: -ERR and the session lives on; too many bad commands close it
(RFC 1939, RFC 2449 §4 line length)."""
import base64
import os
import poplib
import smtplib

import pytest

import backend
from disk_util import fill, small_disk
from pop3d_util import PASSWORD, Closed, Env, message


def b64(text):
    return base64.b64encode(text.encode()).decode()

# Each sent in TRANSACTION state (one message in the mailbox); each must get
# -ERR, and a NOOP after it +OK.
BAD_IN_TRANSACTION = [
    "USER alice",            # wrong state
    "PASS secret",
    "APOP alice 0123456789abcdef0123456789abcdef",
    "AUTH PLAIN",
    "STLS",
    "XYZZY",                 # unknown
    "RETRIEVE 1",
    "LIST 1 2",              # too many arguments
    "RETR",                  # too few
    "TOP 1",
    "TOP 1  0",              # two spaces: an empty argument
    "RETR 0",
    "RETR -1",
    "RETR 99999999999999999999",
    "RETR 18446744073709551616",
    "RETR 1x",
    "RETR 2",                # past the end
    "LIST 0",
    "LIST 2",
    "UIDL 2",
    "UIDL -1",
    "DELE 0",
    "DELE 2",
    "DELE 99999999999999999999",
    "TOP 2 0",
    "TOP 1 -1",
    "TOP 1 x",
    "TOP 0 1",
    "NOOP " + "x" * 300,     # a 300-octet line
    "X" * 300,
    "",                      # empty line
    "NO\x00OP",               # NUL
    "NOOP\nNOOP",             # bare LF: one bad line, never two commands
    "NOOP\rNOOP",             # bare CR
    "RETR 1\nDELE 1",
]


@pytest.mark.parametrize("line", BAD_IN_TRANSACTION, ids=lambda l: repr(l[:40]))
def test_bad_command_in_transaction_keeps_session(env, line):
    env.deliver("alice", message("one"))
    with env.raw() as c:
        c.login()
        r = c.cmd(line)
        assert r.startswith("-ERR"), f"{line[:60]!r} -> {r}"
        r = c.cmd("NOOP")
        assert r.startswith("+OK"), f"after {line[:60]!r}: {r}"
        assert c.cmd("STAT").startswith("+OK 1 ")
        r, got = c.retr(1)
        assert r.startswith("+OK"), r
        assert b"Subject: one" in got


def test_trailing_spaces_are_no_argument(env):
    """"STAT ", "RETR 1 ", "DELE 1 " and "QUIT " are taken as without the
    spaces, as Dovecot takes them: a QUIT refused for one would have
    dropped the session's deletions."""
    env.deliver("alice", message("one"))
    env.deliver("alice", message("two"))
    with env.raw() as c:
        c.login()
        assert c.cmd("STAT ").startswith("+OK 2 ")
        assert c.cmd("RETR 1 ").startswith("+OK")
        assert b"Subject: one" in c.body_raw()
        assert c.cmd("DELE 1  ").startswith("+OK")
        assert c.cmd("QUIT ").startswith("+OK")
    assert [e["subject"] for e in env.mailbox("alice")] == ["two"]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_trailing_spaces_after_a_sasl_response_are_nothing(env, mech):
    """As on a command line: a continuation line's trailing spaces do not
    spoil its base64."""
    with env.raw() as c:
        assert c.cmd(f"AUTH {mech}").startswith("+")
        if mech == "PLAIN":
            r = c.cmd(b64(f"\0alice\0{PASSWORD}") + "   ")
        else:
            assert c.cmd(b64("alice") + "  ").startswith("+")
            r = c.cmd(b64(PASSWORD) + " ")
        assert r.startswith("+OK"), r


def test_message_numbers_with_leading_zeros_are_read_as_dovecot_reads_them(env):
    """"01" is message 1, as Dovecot (and a client that pads numbers) has it;
    "00" is still no message."""
    env.deliver("alice", message("one"))
    env.deliver("alice", message("two"))
    with env.raw() as c:
        c.login()
        assert c.cmd("LIST 02").split()[:2] == ["+OK", "2"]
        uidl = c.cmd("UIDL 2").split()[2]
        assert c.cmd("UIDL 0002").split()[1:] == ["2", uidl]
        r, got = c.retr("01")
        assert r.startswith("+OK") and b"Subject: one" in got, r
        assert c.cmd("TOP 002 00").startswith("+OK")
        head = c.multi()
        assert any(l == b"Subject: two" for l in head) and head[-1] == b""
        assert c.cmd("LIST 00").startswith("-ERR")
        assert c.cmd("DELE 001").startswith("+OK")
        assert c.cmd("STAT").startswith("+OK 1 ")
        assert c.cmd("QUIT").startswith("+OK")
    # Nothing was deleted by any of it.
    assert len(env.uids("alice")) == 1


BAD_IN_AUTHORIZATION = [
    "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "UIDL", "TOP 1 0",
    "PASS secret",           # no USER first
    "XYZZY",
    "AUTH CRAM-MD5",         # not offered
    "AUTH PLAIN !!!notbase64",
    "USER " + "a" * 300,
    "",
]


@pytest.mark.parametrize("line", BAD_IN_AUTHORIZATION, ids=lambda l: repr(l[:40]))
def test_bad_command_in_authorization_keeps_session(env, line):
    with env.raw() as c:
        r = c.cmd(line)
        assert r.startswith("-ERR"), f"{line[:60]!r} -> {r}"
        r = c.cmd("CAPA")
        assert r.startswith("+OK"), r
        c.multi()
        c.login()
        assert c.cmd("NOOP").startswith("+OK")
        assert c.cmd("QUIT").startswith("+OK")


def test_twenty_bad_commands_in_a_row_close_the_session(env):
    """SPEC §5: 20 bad commands in a row close; a valid one resets the count."""
    with env.raw() as c:
        c.login()
        for _ in range(2):
            for i in range(19):
                r = c.cmd(f"BOGUS{i}")
                assert r.startswith("-ERR"), r
            assert c.cmd("NOOP").startswith("+OK"), "19 bad commands must not close the session"
        for i in range(19):
            assert c.cmd(f"BOGUS{i}").startswith("-ERR")
        c.send(b"BOGUS19\r\n")
        rest = c.wait_closed()
        lines = rest.split(b"\r\n")
        assert lines[0].startswith(b"-ERR"), rest
        assert all(l.startswith(b"-ERR") for l in lines if l), rest
    # The mailbox is free again and the daemon serves on: the connection
    # closed only once the lock was given back, whichever loop logs in next.
    p = env.poplib()
    p.quit()


def test_bad_commands_before_login_close_too(env):
    with env.raw() as c:
        for i in range(30):
            try:
                r = c.cmd(f"BOGUS{i}")
            except (Closed, OSError):
                break
            assert r.startswith("-ERR"), r
        else:
            pytest.fail("30 bad commands and the session is still open")
        assert 19 <= i <= 21, f"closed after {i} bad commands"


def test_long_line_in_pieces_keeps_session(env):
    """A line longer than the limit that arrives in several writes."""
    import time
    with env.raw() as c:
        c.login()
        for _ in range(4):
            c.send(b"N" * 200)
            time.sleep(0.05)
        c.send(b"\r\n")
        r = c.line()
        assert r.startswith(b"-ERR"), r
        assert c.cmd("NOOP").startswith("+OK")
        assert c.cmd("QUIT").startswith("+OK")


def test_pipelined_commands(env):
    """CAPA says PIPELINING: a batch of commands in one write is answered in order."""
    env.deliver("alice", [message("p1"), message("p2")])
    with env.raw() as c:
        c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 1\r\n"
               b"XYZZY\r\nNOOP\r\nTOP 2 0\r\nQUIT\r\n")
        assert c.line().startswith(b"+OK")          # USER
        assert c.line().startswith(b"+OK")          # PASS
        assert c.line().startswith(b"+OK 2 ")       # STAT
        assert c.line().startswith(b"+OK")          # LIST
        assert len(c.multi()) == 2
        assert c.line().startswith(b"+OK 2 ")       # UIDL 2
        assert c.line().startswith(b"+OK")          # RETR 1
        assert b"Subject: p1" in c.body_raw()
        assert c.line().startswith(b"-ERR")         # XYZZY
        assert c.line().startswith(b"+OK")          # NOOP
        assert c.line().startswith(b"+OK")          # TOP
        assert b"Subject: p2" in c.body_raw()
        assert c.line().startswith(b"+OK")          # QUIT
        assert c.wait_closed() == b""


def test_plaintext_on_tls_port_and_tls_on_plain_port(env):
    """Wrong-protocol clients are dropped or refused; the daemon serves on."""
    import socket
    import ssl
    from pop3d_util import unverified_context
    with socket.create_connection(("127.0.0.1", env.pop3s_port), timeout=10) as s:
        s.sendall(b"USER alice\r\nPASS secret\r\n")
        s.settimeout(10)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert b"+OK" not in data
    with socket.create_connection(("127.0.0.1", env.pop3_port), timeout=10) as s:
        s.recv(4096)                       # the greeting
        with pytest.raises((ssl.SSLError, OSError)):
            unverified_context().wrap_socket(s, server_hostname="mail.example.test")
    assert env.pop3d.running
    p = env.poplib()
    p.quit()


@pytest.mark.skipif(backend.PG, reason="the mailboxes are on the database server")
def test_quit_on_a_full_disk_deletes_nothing_and_says_so(tmp_path, pop3_tls_dir, pop3_template):
    """RFC 1939 §6: deletions that cannot be saved are not made, and QUIT
    says so with -ERR; once there is room, the same deletions go through in
    the next session."""
    env = Env(tmp_path / "env", pop3_tls_dir, pop3_template)
    problems = []
    with small_disk(env.data_dir, "4m", tmp_path / "template-data"):
        try:
            env.start()
            env.deliver("alice", [message(f"m{i}", "x" * 20000 + "\r\n") for i in range(3)])
            before = env.messages("alice")
            assert len(before) == 3

            p = env.poplib()
            p.dele(1)
            p.dele(3)
            filler = fill(env.data_dir)
            with pytest.raises(poplib.error_proto) as e:
                p.quit()
            p.close()
            assert e.value.args[0].startswith(b"-ERR [SYS/TEMP]"), e.value
            assert b"nothing was deleted" in e.value.args[0], e.value
            assert env.messages("alice") == before

            os.unlink(filler)
            p = env.poplib()
            assert p.stat()[0] == 3
            p.dele(1)
            p.dele(3)
            assert p.quit().startswith(b"+OK")
            assert list(env.messages("alice").values()) == [list(before.values())[1]]
        finally:
            problems = env.stop()
    assert not problems, problems


@pytest.mark.skipif(backend.PG, reason="the messages are stored on the database server")
def test_mail_that_fills_the_disk_leaves_room_to_log_in_and_delete(tmp_path, pop3_tls_dir,
                                                                   pop3_template):
    """Mail is refused (452 4.3.1) while room is still kept for what frees
    space: the user whose mailbox filled the disk logs in, deletes it all,
    and mail is taken again (umbox-smtpd(8), STORAGE)."""
    env = Env(tmp_path / "env", pop3_tls_dir, pop3_template)
    problems = []
    body = "Subject: filler\r\n\r\n" + ("x" * 76 + "\r\n") * 600

    def send_until_refused(s):
        for n in range(5000):
            try:
                s.sendmail("filler@outside.test", ["alice@example.test"], body)
            except smtplib.SMTPDataError as e:
                assert e.smtp_code == 452 and e.smtp_error.startswith(b"4.3.1"), e
                return n
        raise AssertionError("never refused")

    with small_disk(env.data_dir, "40m", tmp_path / "template-data"):
        try:
            env.start()
            with smtplib.SMTP("127.0.0.1", env.smtp_port, timeout=30) as s:
                taken = send_until_refused(s)
                assert taken > 100, taken
                p = env.poplib()
                assert p.stat()[0] == taken
                for i in range(1, taken + 1):
                    p.dele(i)
                assert p.quit().startswith(b"+OK")
                assert env.messages("alice") == {}
                assert send_until_refused(s) > 100
        finally:
            problems = env.stop()
    assert not problems, problems
