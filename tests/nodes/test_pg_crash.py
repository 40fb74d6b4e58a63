"""A node and its PostgreSQL server under crashes (SPEC §3): the server
stopped with `pg_ctl stop -m immediate` in the middle of an ingest, then
started again.  The node reconnects by itself; every message acknowledged
with 250 exists once and whole; nothing is acknowledged that is not stored.
And the server frozen (SIGSTOP): sessions still answer, and what needs
the store fails for now after its wait limit (5 s)."""
import os
import signal
import pathlib
import re
import smtplib
import subprocess
import tempfile
import threading
import time

import pytest

from pop3d_util import DOMAIN, PASSWORD, Closed, Env, add_site

REPO = pathlib.Path(__file__).resolve().parents[2]
PG_CLUSTER = REPO / "tests" / "pg-cluster"


class Cluster:
    """A private PostgreSQL server for one test, which it may crash."""

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="umbox-pgc.", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.conninfo = subprocess.run([str(PG_CLUSTER), "start", str(self.dir / "c")],
                                       capture_output=True, text=True, check=True,
                                       timeout=120).stdout.strip()
        bindir = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self.pg_ctl = [str(bindir / "pg_ctl"), "-D", str(self.dir / "c" / "data")]
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []

    def ctl(self, *args):
        subprocess.run(self.as_owner + self.pg_ctl + list(args), check=True,
                       capture_output=True, timeout=120)

    def crash(self):
        self.ctl("-m", "immediate", "-w", "stop")

    def start(self):
        self.ctl("-l", str(self.dir / "c" / "server.log"), "-w", "-t", "60", "start")

    def processes(self):
        """The server's processes: the postmaster and its children."""
        pid = int((self.dir / "c" / "data" / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                  text=True).stdout.split()
        return [pid] + [int(c) for c in children]

    def freeze(self):
        for pid in self.processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        for pid in self.processes():
            os.kill(pid, signal.SIGCONT)

    def remove(self):
        subprocess.run([str(PG_CLUSTER), "stop", str(self.dir / "c")], timeout=120)
        os.rmdir(self.dir)


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.remove()


def start_node(tmp_path, cluster, tls_dir):
    """The site's directory in a new database, and node a serving it."""
    subprocess.run(["psql", cluster.conninfo, "-qc", "CREATE DATABASE site"], check=True,
                   capture_output=True, timeout=60)
    dsn = f"{cluster.conninfo} dbname=site"
    conf = tmp_path / "site.conf"
    conf.write_text(f"[general]\nhostname = mail.example.test\ndata_dir = {tmp_path / 'sd'}\n"
                    f"user =\npostmaster = admin\n[store]\nbackend = postgresql\ndsn = {dsn}\n")
    add_site(conf)
    empty = tmp_path / "empty"
    empty.mkdir()
    node = Env(tmp_path / "node", tls_dir, empty,
               sections={"store": {"backend": "postgresql", "dsn": dsn, "node_id": "a"}})
    return dsn, node.start()


def test_server_crash_during_ingest_loses_no_acknowledged_message(tmp_path, cluster,
                                                                   node_tls_dir):
    dsn, node = start_node(tmp_path, cluster, node_tls_dir)
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def sender(w):
        n = 0
        s = None
        while not stop.is_set():
            seq = f"{w}-{n}"
            n += 1
            try:
                if s is None:
                    s = smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30)
                s.sendmail("w@outside.test", [f"alice@{DOMAIN}"],
                           f"Subject: {seq}\r\nX-Seq: {seq}\r\n\r\nmessage {seq}\r\n")
                with lock:
                    acked.append(seq)
            except smtplib.SMTPResponseException as e:
                assert 400 <= e.smtp_code < 500, e      # a temporary failure, never 5xx
                time.sleep(0.1)
            except (smtplib.SMTPException, OSError):
                s = None
                time.sleep(0.1)
        if s is not None:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                pass

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(2)
        before = len(acked)
        assert before > 0, node.logs()
        cluster.crash()
        time.sleep(2)
        cluster.start()
        # The node reconnects by itself: mail is acknowledged again.
        deadline = time.monotonic() + 30
        while len(acked) < before + 20:
            assert time.monotonic() < deadline, f"no ack after the restart\n{node.logs()}"
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    stored = backend_messages(dsn)
    missing = [seq for seq in acked if seq not in stored]
    assert not missing, (missing[:10], node.logs()[-3000:])
    for seq in acked:
        assert stored[seq] == 1, (seq, stored[seq])
    problems = node.stop()
    assert not problems, problems


def backend_messages(dsn):
    """X-Seq -> how many of alice's entries hold that message, whole."""
    out = subprocess.run(
        ["psql", dsn, "-Atqc",
         "SELECT convert_from(string_agg(c.data, ''::bytea ORDER BY c.seq), 'UTF8')"
         " FROM entries e JOIN users u ON u.id = e.user_id AND u.login = 'alice'"
         " JOIN message_chunks c ON c.message_id = e.message_id"
         " GROUP BY e.uid"], capture_output=True, text=True, check=True, timeout=60).stdout
    counts = {}
    for seq in re.findall(r"X-Seq: (\S+)\r?\n\r?\nmessage \1\r?\n", out):
        counts[seq] = counts.get(seq, 0) + 1
    return counts


def test_server_crash_during_a_pop3_drain_keeps_every_acknowledged_deletion(
        tmp_path, cluster, node_tls_dir):
    """A client drains a mailbox ten messages per session while the server
    crashes and comes back: a deletion acknowledged by QUIT's +OK never
    comes back, no UIDL changes or appears from nowhere, and the node
    serves again by itself until the mailbox is empty."""
    dsn, node = start_node(tmp_path, cluster, node_tls_dir)
    node.deliver("alice", [f"Subject: {i}\r\n\r\nbody {i}\r\n" for i in range(150)])
    first = None
    deleted = set()
    crashed = False
    deadline = time.monotonic() + 90
    while True:
        assert time.monotonic() < deadline, node.logs()[-3000:]
        if not crashed and len(deleted) >= 40:
            cluster.crash()
            crashed = True
            threading.Timer(2, cluster.start).start()
        try:
            with node.raw(timeout=20) as c:
                if not (c.cmd("USER alice").startswith("+OK") and
                        c.cmd(f"PASS {PASSWORD}").startswith("+OK") and
                        c.cmd("UIDL").startswith("+OK")):
                    time.sleep(0.2)         # the store is down: -ERR [SYS/TEMP]
                    continue
                listing = dict(l.decode().split() for l in c.multi())
                uidls = set(listing.values())
                first = uidls if first is None else first
                assert uidls <= first, ("new or renamed UIDLs", uidls - first)
                assert not uidls & deleted, ("deletions came back", uidls & deleted)
                if not uidls:
                    c.cmd("QUIT")
                    break
                batch = sorted(listing, key=int)[:10]
                for n in batch:
                    status, _ = c.retr(int(n))
                    assert status.startswith("+OK"), status
                    assert c.cmd(f"DELE {n}").startswith("+OK")
                if c.cmd("QUIT").startswith("+OK"):
                    deleted |= {listing[n] for n in batch}
        except (OSError, Closed):
            time.sleep(0.2)                 # the session went with the server
    assert crashed
    assert deleted == first
    problems = node.stop()
    assert not problems, problems


def test_frozen_server_leaves_sessions_answering_and_fails_commits_for_now(
        tmp_path, cluster, node_tls_dir):
    """PostgreSQL stopped dead for 10 s: a connected session answers NOOP
    at once, a new one is greeted, a known recipient is taken from the
    directory in memory; RCPT of a recipient that only the database could
    confirm gets 451 after the 5 s wait limit rather than hanging, as a
    POP3 login gets -ERR [SYS/TEMP]; the end of DATA waits for its commit
    (up to 30 s), which goes through once the server runs again: 250, and
    stored once.  The same sessions go on delivering."""
    dsn, node = start_node(tmp_path, cluster, node_tls_dir)
    node.deliver("alice", "Subject: waiting\r\n\r\nfor POP3\r\n")
    pop = node.raw(timeout=20)
    assert pop.cmd("USER alice").startswith("+OK")
    assert pop.cmd(f"PASS {PASSWORD}").startswith("+OK")
    idle = smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30)
    idle.ehlo()
    sender = smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30)
    sender.ehlo()
    assert sender.mail("w@outside.test")[0] == 250
    assert sender.rcpt(f"alice@{DOMAIN}")[0] == 250     # resolved before the freeze
    late = smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30)
    late.ehlo()
    assert late.mail("w@outside.test")[0] == 250
    frozen = time.monotonic()
    cluster.freeze()
    try:
        results = {}

        def commit():
            t = time.monotonic()
            results["data"] = (sender.data(b"X-Seq: frozen\r\n\r\nmessage frozen\r\n")[0],
                               time.monotonic() - t)

        def rcpt():
            t = time.monotonic()
            results["rcpt"] = (late.rcpt(f"nobody@{DOMAIN}")[0], time.monotonic() - t)

        def login():
            with node.raw(timeout=20) as c:
                c.cmd("USER bob")
                results["pass"] = c.cmd(f"PASS {PASSWORD}")

        waiting = [threading.Thread(target=f) for f in (commit, rcpt, login)]
        for t in waiting:
            t.start()
        time.sleep(0.5)
        t = time.monotonic()
        assert idle.noop()[0] == 250
        assert idle.mail("w@outside.test")[0] == 250
        assert idle.rcpt(f"bob@{DOMAIN}")[0] == 250     # from the directory in memory
        assert idle.rset()[0] == 250
        assert pop.cmd("NOOP").startswith("+OK")
        assert pop.cmd("STAT") == "+OK 1 " + pop.cmd("LIST 1").split()[2]
        assert time.monotonic() - t < 1
        with smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=5) as fresh:
            assert fresh.noop()[0] == 250
        for t in waiting[1:]:
            t.join(9.5 - (time.monotonic() - frozen))
            assert not t.is_alive(), "a session waited on the frozen server past its limit"
        assert results["rcpt"][0] == 451, results
        assert results["pass"].startswith("-ERR [SYS/TEMP]"), results
        assert "data" not in results, results       # still waiting for its commit
        time.sleep(max(0, 10 - (time.monotonic() - frozen)))
    finally:
        cluster.thaw()
    waiting[0].join(30)
    assert not waiting[0].is_alive(), "the end of DATA still waits after the thaw"
    assert results["data"][0] == 250, results
    assert 9 <= results["data"][1] < 30, results
    # The same sessions go on: mail is acknowledged again.
    deadline = time.monotonic() + 30
    while True:
        sender.rset()
        sender.mail("w@outside.test")
        code = sender.rcpt(f"alice@{DOMAIN}")[0]
        if code == 250:
            code = sender.data(b"X-Seq: thawed\r\n\r\nmessage thawed\r\n")[0]
        if code == 250:
            break
        assert 400 <= code < 500 and time.monotonic() < deadline, (code, node.logs()[-3000:])
        time.sleep(0.5)
    assert idle.noop()[0] == 250
    assert pop.cmd("QUIT").startswith("+OK")
    pop.close()
    for s in (idle, sender, late):
        s.quit()
    assert backend_messages(dsn).get("thawed") == 1
    assert backend_messages(dsn).get("frozen") == 1
    problems = node.stop()
    assert not problems, problems


def test_sigterm_with_server_frozen_stops_in_bounded_time(tmp_path, cluster, node_tls_dir):
    """SIGTERM while PostgreSQL is frozen and a commit and a login wait on
    it: each daemon answers what waits (451, -ERR [SYS/TEMP]) after the
    wait limit and exits 0 a few seconds later, saying that it left work
    to the server, instead of waiting for a server that may never answer.
    Nothing unacknowledged is lost: the message either committed or was
    refused with a 4xx."""
    dsn, node = start_node(tmp_path, cluster, node_tls_dir)
    sender = smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30)
    sender.ehlo()
    assert sender.mail("w@outside.test")[0] == 250
    assert sender.rcpt(f"alice@{DOMAIN}")[0] == 250
    pop = node.raw(timeout=30)
    assert pop.cmd("USER alice").startswith("+OK")
    cluster.freeze()
    try:
        results = {}

        def commit():
            try:
                results["data"] = sender.data(b"X-Seq: stopping\r\n\r\nmessage stopping\r\n")[0]
            except (smtplib.SMTPException, OSError) as e:
                results["data"] = e

        def login():
            try:
                results["pass"] = pop.cmd(f"PASS {PASSWORD}")
            except (OSError, Closed) as e:
                results["pass"] = e

        waiting = [threading.Thread(target=f) for f in (commit, login)]
        for t in waiting:
            t.start()
        time.sleep(0.5)
        for p in (node.smtpd, node.pop3d):
            p.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        for p in (node.smtpd, node.pop3d):
            rc = p.stop(timeout=20)
            assert rc == 0, p.log()[-3000:]
        took = time.monotonic() - t0
        for t in waiting:
            t.join(5)
        assert results["data"] == 451, results
        assert str(results["pass"]).startswith("-ERR [SYS/TEMP]"), results
        assert took < 15, took
        assert "left to the server" in node.smtpd.log(), node.smtpd.log()[-3000:]
    finally:
        cluster.thaw()
    assert backend_messages(dsn).get("stopping", 0) <= 1


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z umbox-(smtpd|pop3d) \w+: ")


def test_server_down_is_logged_once_per_daemon_in_whole_lines(tmp_path, cluster,
                                                               node_tls_dir):
    """Ten seconds without the server: each thing that keeps trying (the
    directory, its listening connection, the queue runner's look for due
    rows, the heartbeat) says so once, not at every try, and says when it
    works again; libpq's messages of several lines are logged as one.  Once
    the server is back, the first messages are taken at once."""
    dsn, node = start_node(tmp_path, cluster, node_tls_dir)
    try:
        cluster.crash()
        # Recipients only the database could confirm, many of them: each gets
        # 451, and the log says so about once a second, not once each.
        t = time.monotonic()
        with smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30) as s:
            s.ehlo()
            s.mail("w@outside.test")
            for i in range(60):
                code = s.rcpt(f"nobody{i}@{DOMAIN}")[0]
                assert code == 451, code
        log = node.smtpd.log()
        lookups = [ln for ln in log.splitlines() if ": resolving <nobody" in ln]
        assert 1 <= len(lookups) <= 2 + (time.monotonic() - t), log
        # Whole: libpq's message of two lines on one, not cut short.
        assert all(ln.endswith("?") or ln.endswith(")") for ln in lookups), lookups
        time.sleep(max(0, 10 - (time.monotonic() - t)))
        cluster.start()
        time.sleep(5)       # past the longest wait between reconnections (4 s)
        # Connections the outage left behind are found closed before use, not
        # by a client's failed command: each message goes through at once.
        for i in range(6):  # sessions on every loop
            with smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30) as s:
                s.sendmail("w@outside.test", [f"alice@{DOMAIN}"], f"Subject: back {i}\r\n\r\nback\r\n")
        for i in range(6):
            p = node.poplib()
            assert p.stat()[0] >= 1
            p.quit()
        agains = {"smtpd": ["store: the directory is read again", "store: hearing of directory"
                            " changes again", "store: node heartbeat again",
                            "queue: the next due time is read again"],
                  "pop3d": ["store: the directory is read again", "store: hearing of directory"
                            " changes again", "store: node heartbeat again"]}
        deadline = time.monotonic() + 15     # the heartbeat's next beat, every 5 s
        while not all(a in getattr(node, n).log() for n in agains for a in agains[n]):
            assert time.monotonic() < deadline, node.logs()
            time.sleep(0.5)
        for name in agains:
            log = getattr(node, name).log()
            for line in log.splitlines():
                assert LOG_LINE.match(line), f"a line of umbox-{name}'s log is not an event: {line!r}"
            for said in ("store: reading the directory:", "store: a connection to hear of"
                         " directory changes:", "store: node heartbeat:"):
                assert log.count(said) == 1, (name, said, log)
        assert node.smtpd.log().count("queue: reading the next due time:") == 1, node.smtpd.log()
    finally:
        problems = node.stop()    # a failure above leaves no daemon behind
    assert not problems, problems
