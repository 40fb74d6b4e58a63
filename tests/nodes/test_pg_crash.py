"""A node and its PostgreSQL server under crashes (SPEC §3): the server
stopped with `pg_ctl stop -m immediate` in the middle of an ingest, then
started again.  The node reconnects by itself; every message acknowledged
with 250 exists once and whole; nothing is acknowledged that is not stored."""
import os
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
