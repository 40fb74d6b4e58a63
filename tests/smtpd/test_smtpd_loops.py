"""Several event loops in one umbox-smtpd (SPEC §2 [general] threads, §4).

Loop 0 accepts every connection and applies the caps; each session then
lives on one of the loops.  What a client sees must not depend on which:
the caps are exact however the sessions are spread, concurrent sessions on
different loops store every message whole, SIGTERM answers the sessions
on every loop, and SIGHUP's new certificate is what STARTTLS presents on
every loop.  Every daemon here runs 4 loops, whatever UMBOX_THREADS says.
"""
import re
import select
import signal
import smtplib
import sqlite3
import ssl
import subprocess
import threading
import time

import pytest

import backend
import loops_util
import proc_util
from loops_util import burst, close_all

from smtpd_util import DOMAIN, HOSTNAME, LOCAL_USERS, Raw, binary, client_part, headers

LOOPS = 4
QUEUED = re.compile(r"^2\.0\.0 Ok: queued as (\S+)$")
REFUSED_IP = b"421 4.7.0 Too many connections from your address"
REFUSED_BUSY = b"421 4.7.0 Too many connections, try again later"
SHUTDOWN = f"421 4.3.2 {HOSTNAME} Service shutting down\r\n".encode()


def loops_daemon(factory, **smtpd_extra):
    """A started daemon with 4 event loops and extra [smtpd] keys."""
    return factory(**{"general.threads": LOOPS}, **smtpd_extra)


def wait_log(d, pattern, count=1, timeout=5):
    """Wait until the log has count matches of the regex; returns them."""
    return loops_util.wait_log(d.log, pattern, count, timeout)


def session_of(d, sock):
    """(session id, loop) of the session behind our connected socket."""
    return loops_util.session_of(d.log, sock, r"port=\w+ ")


def loops_of(d, socks):
    return sorted(session_of(d, s)[1] for s in socks)


def ehlo(c, name="client.outside.test"):
    r = c.cmd(f"EHLO {name}")
    assert r.code == 250, r


def split_burst(results, refusal):
    return loops_util.split_burst(results, b"220 ", refusal)


def wait_sessions(d, n, timeout=5):
    return proc_util.wait_sessions(d.proc.pid, {d.mx, d.submission, d.smtps}, n, timeout)


def hang_up(d, socks, remaining):
    """Close our end of idle sessions and wait until the daemon has seen
    each go (its `disconnect` line) and holds only the remaining ones."""
    ids = [session_of(d, s)[0] for s in socks]
    for s in socks:
        s.close()
    for sid in ids:
        wait_log(d, rf"^.*\b{re.escape(sid)}: disconnect from ")
    wait_sessions(d, remaining)


# -- the loops and how sessions are spread -------------------------------------------

def test_four_loops_and_sessions_spread_over_all(smtpd_factory):
    d = loops_daemon(smtpd_factory)
    wait_log(d, rf"umbox-smtpd \S+ started: {re.escape(HOSTNAME)}, 4 event loops$")
    wait_sessions(d, 0)
    clients = []
    try:
        for _ in range(8):                      # one after another, all kept open
            clients.append(Raw(d.submission))
            assert clients[-1].greeting.code == 220
        assert loops_of(d, [c.sock for c in clients]) == [0, 0, 1, 1, 2, 2, 3, 3]
        # Every one of them is served.
        for i, c in enumerate(clients):
            ehlo(c, f"c{i}.outside.test")
            assert c.cmd("NOOP").code == 250
    finally:
        for c in clients:
            c.close()


# -- caps are exact across loops -------------------------------------------------------

def test_per_ip_cap_is_exact_under_a_burst_across_loops(smtpd_factory):
    d = loops_daemon(smtpd_factory, max_connections_per_ip=5, max_connections=100)
    wait_sessions(d, 0)
    held = []
    try:
        greeted = split_burst(burst(d.submission, ["127.0.0.1"] * 40), REFUSED_IP)
        held += greeted
        assert len(greeted) == 5
        # The five are on every loop, and each is served.
        assert set(loops_of(d, greeted)) == set(range(LOOPS))
        for s in greeted:
            assert Raw.wrap(s).cmd("NOOP").code == 250

        # Two hang up: exactly two places come free, on whichever loops.
        hang_up(d, greeted[:2], remaining=3)
        held = greeted[2:]
        again = split_burst(burst(d.submission, ["127.0.0.1"] * 10), REFUSED_IP)
        held += again
        assert len(again) == 2
        with Raw(d.mx, greet=False) as late:     # the cap counts every port
            assert late.wait_closed().startswith(REFUSED_IP + b"\r\n")
        for s in held:
            assert Raw.wrap(s).cmd("NOOP").code == 250
    finally:
        close_all(held)


def test_total_cap_is_exact_under_a_burst_from_two_addresses(smtpd_factory):
    d = loops_daemon(smtpd_factory, max_connections=6, max_connections_per_ip=100)
    wait_sessions(d, 0)
    held = []
    try:
        sources = ["127.0.0.1", "127.0.0.2"] * 20
        greeted = split_burst(burst(d.submission, sources), REFUSED_BUSY)
        held += greeted
        assert len(greeted) == 6
        assert set(loops_of(d, greeted)) == set(range(LOOPS))
        for s in greeted:
            assert Raw.wrap(s).cmd("NOOP").code == 250
        hang_up(d, greeted[:1], remaining=5)
        held = greeted[1:]
        again = split_burst(burst(d.submission, ["127.0.0.2", "127.0.0.1"] * 5), REFUSED_BUSY)
        held += again
        assert len(again) == 1
    finally:
        close_all(held)


# -- concurrent ingest ---------------------------------------------------------------------

def ingest_message(i, n):
    rcpt = LOCAL_USERS[i % len(LOCAL_USERS)]
    lines = "".join(f"client {i} message {n} line {k:02d} {'x' * 50}\r\n" for k in range(30))
    return (f"From: c{i}@outside.test\r\nTo: {rcpt}@{DOMAIN}\r\n"
            f"Subject: ingest {i}-{n}\r\nMessage-ID: <ingest.{i}.{n}@outside.test>\r\n"
            f"\r\n{lines}.a line that starts with a dot\r\nend of {i}-{n}\r\n")


def test_concurrent_ingest_on_every_loop_stores_each_message_whole(smtpd_factory):
    d = loops_daemon(smtpd_factory)
    clients, per = 8, 40
    replies = {}                # (i, n) -> (code, text)
    loop_of = {}                # i -> the loop its session was on
    errors = []
    start = threading.Barrier(clients)

    def client(i):
        rcpt = f"{LOCAL_USERS[i % len(LOCAL_USERS)]}@{DOMAIN}"
        try:
            with smtplib.SMTP("127.0.0.1", d.mx, local_hostname=f"c{i}.outside.test",
                              timeout=30) as s:
                s.ehlo()
                start.wait(10)                  # all sessions open before any sends
                for n in range(per):
                    assert s.mail(f"c{i}@outside.test")[0] == 250
                    assert s.rcpt(rcpt)[0] == 250
                    code, text = s.data(ingest_message(i, n))
                    replies[(i, n)] = (code, text.decode())
                loop_of[i] = session_of(d, s.sock)[1]
        except Exception as e:                  # reported below
            errors.append((i, repr(e)))
            start.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    # The eight sessions were on every loop.
    assert sorted(loop_of.values()) == [0, 0, 1, 1, 2, 2, 3, 3]

    assert len(replies) == clients * per
    bad = {k: v for k, v in replies.items() if v[0] != 250}
    assert not bad, f"{len(bad)} not accepted, e.g. {sorted(bad.items())[:3]}"
    qids = {}
    for k, (_, text) in replies.items():
        m = QUEUED.match(text)
        assert m, text
        qids[k] = m.group(1)
    assert len(set(qids.values())) == len(qids), "a queue ID was given twice"

    # Each mailbox holds exactly what was accepted for it, each message whole,
    # under the queue ID its 250 announced.
    for u, login in enumerate(LOCAL_USERS):
        senders = [i for i in range(clients) if i % len(LOCAL_USERS) == u]
        want = {f"ingest {i}-{n}": (i, n) for i in senders for n in range(per)}
        entries = d.mailbox(login)
        subjects = [e["subject"] for e in entries]
        assert sorted(subjects) == sorted(want), login
        for e in entries:
            i, n = want[e["subject"]]
            stored = d.export(login, e["uid"])
            assert client_part(stored) == ingest_message(i, n).encode(), e
            assert headers(stored, "Message-ID") == [f"<ingest.{i}.{n}@outside.test>"]
            assert headers(stored, "Delivered-To") == [f"{login}@{DOMAIN}"]
            [received] = headers(stored, "Received")
            assert re.search(rf"\bid {re.escape(qids[(i, n)])}\b", received), received
    assert d.queue() == []


# -- SIGTERM ---------------------------------------------------------------------------------

def test_sigterm_answers_sessions_on_every_loop_and_finishes_a_commit(smtpd_factory):
    backend.sqlite_only()       # holds SQLite's write lock
    d = loops_daemon(smtpd_factory)
    wait_sessions(d, 0)
    idle = []
    lock = None
    try:
        for i in range(8):
            idle.append(Raw(d.submission))
            ehlo(idle[-1], f"idle{i}.outside.test")
        assert loops_of(d, [c.sock for c in idle]) == [0, 0, 1, 1, 2, 2, 3, 3]

        # One more session sends a whole message; its commit is held up by
        # another writer holding the store's write lock (as a long umboxctl
        # transaction would), so it is in flight when SIGTERM comes.
        busy = Raw(d.mx)
        idle.append(busy)                       # closed in finally
        ehlo(busy, "busy.outside.test")
        assert busy.cmd("MAIL FROM:<busy@outside.test>").code == 250
        assert busy.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert busy.cmd("DATA").code == 354
        lock = sqlite3.connect(str(d.store_path), timeout=10, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        busy.send(b"Subject: in flight\r\n\r\ncommitted at SIGTERM\r\n.\r\n")
        assert select.select([busy.sock], [], [], 0.5)[0] == [], \
            "answered although the store was locked"

        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        # Every idle session, on every loop, is told and closed at once,
        # while the commit still waits.
        for c in idle[:8]:
            assert c.wait_closed(timeout=5) == SHUTDOWN
            c.close()
        assert time.monotonic() - t0 < 3
        assert d.running, "exited with a commit in flight"
        assert select.select([busy.sock], [], [], 0.2)[0] == []

        lock.execute("ROLLBACK")                # the commit goes ahead
        lock.close()
        lock = None
        r = busy.reply()
        assert r.code == 250 and QUEUED.match(r.text), r
        assert busy.wait_closed(timeout=5) in (b"", SHUTDOWN)
        busy.close()
        rc = d.stop(timeout=10)
        assert rc == 0, d.log()
        assert time.monotonic() - t0 < 5
    finally:
        if lock is not None:
            lock.close()
        for c in idle:
            c.close()
    wait_log(d, r"stopping: 9 sessions open")
    assert [e["subject"] for e in d.mailbox("alice")] == ["in flight"]


# -- SIGHUP ------------------------------------------------------------------------------------

def make_pair(dirpath, cn):
    """A new self-signed certificate and key: (cert PEM bytes, key PEM bytes)."""
    dirpath.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
         "-keyout", str(dirpath / "key.pem"), "-out", str(dirpath / "cert.pem"), "-days", "2"],
        check=True, capture_output=True, timeout=60)
    return (dirpath / "cert.pem").read_bytes(), (dirpath / "key.pem").read_bytes()


def der(pem):
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def starttls_cert(c):
    """STARTTLS on a session (EHLO first): the DER certificate the server
    presents; the session then works in TLS."""
    ehlo(c)
    r = c.cmd("STARTTLS")
    assert r.code == 220, r
    c.starttls()
    cert = c.sock.getpeercert(binary_form=True)
    ehlo(c)
    assert c.cmd("NOOP").code == 250
    return cert


def smtps_cert(d):
    with Raw(d.smtps, greet=False) as c:
        c.starttls()                            # implicit TLS: wrap at once
        assert c.reply().code == 220
        return c.sock.getpeercert(binary_form=True)


def replace_tls_files(d, cert, key):
    """Overwrite the files the config names, as a renewal does."""
    (d.root / "key.pem").write_bytes(key)
    (d.root / "cert.pem").write_bytes(cert)


def open_on_every_loop(d):
    wait_sessions(d, 0)
    clients = []
    for i in range(8):
        clients.append(Raw(d.submission))
        ehlo(clients[-1], f"c{i}.outside.test")
    assert loops_of(d, [c.sock for c in clients]) == [0, 0, 1, 1, 2, 2, 3, 3]
    return clients


def test_sighup_new_certificate_on_every_loop(smtpd_factory, tmp_path):
    d = loops_daemon(smtpd_factory)
    old = der((d.root / "cert.pem").read_bytes())
    clients = open_on_every_loop(d)
    try:
        cert, key = make_pair(tmp_path / "new", "renewed.example.test")
        new = der(cert)
        assert new != old
        replace_tls_files(d, cert, key)
        d.proc.send_signal(signal.SIGHUP)
        wait_log(d, r"SIGHUP: TLS certificate reloaded$")
        # The sessions that were open before the reload, on every loop.
        for c in clients:
            assert starttls_cert(c) == new
        # New sessions on every port and loop.
        fresh = [Raw(d.submission) for _ in range(LOOPS)] + [Raw(d.mx)]
        clients += fresh
        for c in fresh:
            assert starttls_cert(c) == new
        assert smtps_cert(d) == new
        assert d.running
    finally:
        for c in clients:
            c.close()


def set_tls_paths(d, cert_path, key_path):
    """Point [tls] of the daemon's configuration file at other files."""
    text = re.sub(r"(?m)^certificate = .*$", f"certificate = {cert_path}",
                  d.config.read_text())
    d.config.write_text(re.sub(r"(?m)^key = .*$", f"key = {key_path}", text))


def test_sighup_takes_a_certificate_moved_to_a_new_path(smtpd_factory, tmp_path):
    """SIGHUP reads [tls] again: a certificate and key at new paths are
    served; a configuration file with errors keeps the one in use."""
    d = loops_daemon(smtpd_factory)
    old = der((d.root / "cert.pem").read_bytes())
    cert, _ = make_pair(tmp_path / "moved", "moved.example.test")
    set_tls_paths(d, tmp_path / "moved" / "cert.pem", tmp_path / "moved" / "key.pem")
    d.proc.send_signal(signal.SIGHUP)
    wait_log(d, r"SIGHUP: TLS certificate reloaded$")
    assert smtps_cert(d) == der(cert) != old
    with Raw(d.submission) as c:
        assert starttls_cert(c) == der(cert)

    # A broken file: the certificate in use stays, and the log says why.
    cert2, _ = make_pair(tmp_path / "third", "third.example.test")
    set_tls_paths(d, tmp_path / "third" / "cert.pem", tmp_path / "third" / "key.pem")
    d.config.write_text(d.config.read_text() + "[tls]\ncolour = blue\n")
    d.proc.send_signal(signal.SIGHUP)
    [m] = wait_log(d, r"SIGHUP: keeping the old TLS certificate: (.*)$")
    assert "configuration has errors" in m.group(1) and "colour" in m.group(1), m.group(0)
    assert smtps_cert(d) == der(cert)
    assert d.running


def test_a_key_with_a_passphrase_stops_the_start_without_asking(smtpd_factory, tmp_path):
    """On a terminal, OpenSSL would prompt for the passphrase and the
    daemon would hang there: it exits 1 at once and says what to do."""
    d = smtpd_factory(start=False)
    cert, key = make_pair(tmp_path / "enc", "enc.example.test")
    locked = subprocess.run(["openssl", "pkey", "-aes256", "-passout", "pass:secret"],
                            input=key, capture_output=True, check=True, timeout=60).stdout
    (tmp_path / "enc" / "key.pem").write_bytes(locked)
    set_tls_paths(d, tmp_path / "enc" / "cert.pem", tmp_path / "enc" / "key.pem")
    cmd = f"{binary('umbox-smtpd')} -f -c {d.config}"
    # script(1) gives the daemon a terminal, as an administrator's shell does.
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p
    assert "passphrase" in p.stdout and "Enter PEM pass phrase" not in p.stdout, p.stdout


@pytest.mark.parametrize("bad", ["mismatched", "garbage", "passphrase"])
def test_sighup_with_a_bad_key_keeps_the_old_certificate(smtpd_factory, tmp_path, bad):
    d = loops_daemon(smtpd_factory)
    old = der((d.root / "cert.pem").read_bytes())
    clients = open_on_every_loop(d)
    try:
        cert, key = make_pair(tmp_path / "new", "renewed.example.test")
        assert der(cert) != old
        if bad == "mismatched":
            _, wrong = make_pair(tmp_path / "other", "other.example.test")
        elif bad == "passphrase":
            wrong = subprocess.run(["openssl", "pkey", "-aes256", "-passout", "pass:secret"],
                                   input=key, capture_output=True, check=True,
                                   timeout=60).stdout
        else:
            wrong = b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
        replace_tls_files(d, cert, wrong)
        d.proc.send_signal(signal.SIGHUP)
        [m] = wait_log(d, r"SIGHUP: keeping the old TLS certificate: (.*)$")
        assert "key" in m.group(1), m.group(0)
        if bad == "passphrase":
            assert "passphrase" in m.group(1), m.group(0)
        assert "SIGHUP: TLS certificate reloaded" not in d.log()
        assert d.running
        for c in clients[:LOOPS]:
            assert starttls_cert(c) == old
        with Raw(d.submission) as c:
            assert starttls_cert(c) == old
        assert smtps_cert(d) == old

        # The right key next to the certificate: the next SIGHUP takes both.
        replace_tls_files(d, cert, key)
        d.proc.send_signal(signal.SIGHUP)
        wait_log(d, r"SIGHUP: TLS certificate reloaded$")
        for c in clients[LOOPS:]:
            assert starttls_cert(c) == der(cert)
    finally:
        for c in clients:
            c.close()
