"""Real clients and real client habits: Outlook's "leave a copy on the server"
and "remove after N days" replayed with poplib, curl, fetchmail and mpop
(SPEC §5, §10)."""
import os
import re
import subprocess

import pytest

from pop3d_util import PASSWORD, joined, message


def uidl_map(p):
    out = {}
    for l in p.uidl()[1]:
        n, u = l.split(b" ", 1)
        out[u.decode()] = int(n)
    return out


def test_outlook_leave_copy_then_remove_after_days(env):
    env.deliver("alice", [message(f"old {i}", f"old message {i}\r\n") for i in range(5)])
    stored = env.messages("alice")

    # Session 1: "leave a copy on the server": UIDL, RETR everything, QUIT.
    p = env.poplib()
    s1 = uidl_map(p)
    sizes = {int(n): int(s) for n, s in (l.split() for l in p.list()[1])}
    downloaded = {}
    for uid, n in s1.items():
        _, lines, _ = p.retr(n)
        downloaded[uid] = joined(lines)
        assert len(downloaded[uid]) == sizes[n]
    assert p.quit().startswith(b"+OK")
    assert downloaded == stored
    assert env.uids("alice") == list(stored)       # nothing deleted

    # New mail arrives between sessions.
    env.deliver("alice", [message("new 1"), message("new 2")])

    # Session 2: the same ids again; the client fetches only what it has not seen.
    p = env.poplib()
    s2 = uidl_map(p)
    assert {u: n for u, n in s2.items() if u in s1} == s1
    new = [u for u in s2 if u not in downloaded]
    assert len(new) == 2
    for u in new:
        downloaded[u] = joined(p.retr(s2[u])[1])
    # "Remove when deleted from Deleted Items": the user deleted old message 2.
    gone_by_user = list(s1)[1]
    assert p.dele(s2[gone_by_user]).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")

    # Session 3: "remove after N days": DELE the (still present) messages seen
    # in session 1, mapping UIDL -> number afresh; the numbers have shifted.
    p = env.poplib()
    s3 = uidl_map(p)
    assert gone_by_user not in s3
    assert set(s3) == set(downloaded) - {gone_by_user}
    aged = [u for u in s1 if u != gone_by_user]
    for u in aged:
        size = int(p.list(s3[u]).split()[2])
        assert size == len(downloaded[u]), "size changed between sessions"
        assert p.dele(s3[u]).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")

    assert env.uids("alice") == new
    p = env.poplib()
    s4 = uidl_map(p)
    assert list(s4) == new
    for u, n in s4.items():
        assert joined(p.retr(n)[1]) == downloaded[u]
    p.quit()


# -- curl -------------------------------------------------------------------------

def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "30", *args], capture_output=True,
                       timeout=60)
    assert p.returncode == 0, (args, p.returncode, p.stderr)
    return p.stdout


def test_curl_list_and_retr(env):
    env.deliver("alice", [message("curl one", ".dot first\r\nbody\r\n"), message("curl two")])
    stored = list(env.messages("alice").values())
    base = f"pop3://127.0.0.1:{env.pop3_port}"
    listing = curl("-u", f"alice:{PASSWORD}", f"{base}/")
    assert listing == b"".join(b"%d %d\r\n" % (i + 1, len(m)) for i, m in enumerate(stored))
    assert curl("-u", f"alice:{PASSWORD}", f"{base}/1") == stored[0]
    assert curl("-u", f"100:{PASSWORD}", f"{base}/2") == stored[1]
    # STLS on the plain port, then the same.
    assert curl("-k", "--ssl-reqd", "-u", f"alice:{PASSWORD}", f"{base}/1") == stored[0]
    assert env.uids("alice") == list(env.messages("alice"))
    assert len(env.uids("alice")) == 2


def test_curl_pop3s(env):
    env.deliver("alice", message("curl over tls"))
    (stored,) = env.messages("alice").values()
    base = f"pop3s://127.0.0.1:{env.pop3s_port}"
    assert curl("-k", "-u", f"alice:{PASSWORD}", f"{base}/") == b"1 %d\r\n" % len(stored)
    assert curl("-k", "-u", f"alice:{PASSWORD}", f"{base}/1") == stored


# -- fetchmail ------------------------------------------------------------------------

def run_fetchmail(env, rc, home):
    p = subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "-v"],
                       capture_output=True, timeout=120, cwd=home,
                       env=dict(os.environ, FETCHMAILHOME=str(home), HOME=str(home)))
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


@pytest.mark.parametrize("tls", ["stls", "plain"])
def test_fetchmail_keep_twice(env, tmp_path, tls):
    n = 6
    env.deliver("alice", [message(f"fetchmail {i}", f"body {i}\r\n.dot line {i}\r\n")
                          for i in range(n)])
    home = tmp_path / "fetchmail"
    home.mkdir()
    out = home / "delivered"
    rc = home / "fetchmailrc"
    tls_opts = "no sslcertck" if tls == "stls" else "sslproto ''"
    rc.write_text(
        "set no syslog\n"
        f"set idfile \"{home}/fetchids\"\n"
        f"poll 127.0.0.1 with proto POP3 port {env.pop3_port} uidl\n"
        f"  user \"alice\" there with password \"{PASSWORD}\" is \"root\" here\n"
        f"  keep {tls_opts}\n"
        f"  mda \"cat >> {out}\"\n")
    rc.chmod(0o600)

    code, log = run_fetchmail(env, rc, home)
    assert code == 0, log
    if tls == "stls":
        assert "STLS" in log and "upgrade to TLS succeeded" in log, log
    text = out.read_bytes()
    for i in range(n):
        assert text.count(b"Subject: fetchmail %d\n" % i) + \
            text.count(b"Subject: fetchmail %d\r\n" % i) == 1, text
        assert b".dot line %d" % i in text
    assert len(env.uids("alice")) == n, "keep: nothing deleted on the server"

    # Second run: nothing new (exit 1 means "no mail").
    code, log = run_fetchmail(env, rc, home)
    assert code == 1, log
    assert out.read_bytes() == text
    # A new message: the third run fetches exactly that one.
    env.deliver("alice", message("fetchmail late"))
    code, log = run_fetchmail(env, rc, home)
    assert code == 0, log
    added = out.read_bytes()[len(text):]
    assert b"Subject: fetchmail late" in added
    assert added.count(b"\nSubject: ") == 1, added
    assert len(env.uids("alice")) == n + 1


# -- mpop ---------------------------------------------------------------------------

def test_mpop_keep_twice(env, tmp_path):
    n = 5
    env.deliver("alice", [message(f"mpop {i}", f"body {i}\r\n") for i in range(n)])
    d = tmp_path / "mpop"
    d.mkdir()
    mbox = d / "mbox"
    conf = d / "mpoprc"
    conf.write_text(
        "defaults\n"
        "account test\n"
        "host 127.0.0.1\n"
        f"port {env.pop3_port}\n"
        "user alice\n"
        f"password {PASSWORD}\n"
        "tls on\n"
        "tls_starttls on\n"
        "tls_certcheck off\n"
        "keep on\n"
        f"uidls_file {d}/uidls\n"
        f"delivery mbox {mbox}\n")
    conf.chmod(0o600)

    def run():
        p = subprocess.run(["mpop", "-C", str(conf), "test"], capture_output=True,
                           timeout=120, cwd=d, env=dict(os.environ, HOME=str(d)))
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")

    code, log = run()
    assert code == 0, log
    assert re.search(rf"new: {n} messages", log), log
    text = mbox.read_bytes()
    assert len(re.findall(rb"^From ", text, re.M)) == n, text
    for i in range(n):
        assert b"Subject: mpop %d\n" % i in text
    assert len(env.uids("alice")) == n

    code, log = run()
    assert code == 0, log
    assert "new: no messages" in log, log
    assert mbox.read_bytes() == text
    assert len(env.uids("alice")) == n
