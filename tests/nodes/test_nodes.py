"""Two umbox nodes on one PostgreSQL database (SPEC §3, [store]): a
mailbox open on one node is in use on the other until its holder goes,
even by kill -9; the queue is shared, and each row is delivered once."""
import shutil
import signal
import smtplib
import sys
import time

from dnslib import A, MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "smtpd"))

from outside import dns_zone, sink_server       # noqa: E402
from pop3d_util import DOMAIN, PASSWORD, _probe_pop3, message, run_ctl   # noqa: E402


def test_mailbox_in_use_on_the_other_node_until_its_holder_is_killed(site):
    a = site.node("a")
    b = site.node("b")
    a.deliver("alice", [message("one", "held on node a\r\n")])
    with a.raw() as first, b.raw() as second:
        first.login("alice")
        assert first.cmd("STAT").startswith("+OK 1 ")
        assert second.cmd("USER alice").startswith("+OK")
        r = second.cmd(f"PASS {PASSWORD}")
        assert r.startswith("-ERR [IN-USE]"), r

        # Node a's pop3d dies without a word: its lock goes with its heartbeat.
        killed = time.monotonic()
        a.pop3d.stop(signal.SIGKILL)
        while True:
            with b.raw() as again:
                assert again.cmd("USER alice").startswith("+OK")
                r = again.cmd(f"PASS {PASSWORD}")
                if r.startswith("+OK"):
                    assert again.cmd("STAT").startswith("+OK 1 ")
                    break
                assert r.startswith("-ERR [IN-USE]"), r
            assert time.monotonic() - killed < 40, "still in use 40 s after kill -9"
            time.sleep(1)


def test_a_node_that_starts_leaves_the_other_nodes_locks(site):
    """Nodes share [general] hostname (one name for the mail service); a
    pop3d that starts drops only its own node's old locks, never a
    session's on another node."""
    a = site.node("a")
    a.deliver("alice", [message("one", "held on node a\r\n")])
    with a.raw() as first:
        first.login("alice")
        b = site.node("b")
        with b.raw() as second:
            assert second.cmd("USER alice").startswith("+OK")
            r = second.cmd(f"PASS {PASSWORD}")
            assert r.startswith("-ERR [IN-USE]"), r
        assert first.cmd("STAT").startswith("+OK 1 ")


def test_a_node_name_held_on_this_machine_is_refused_until_its_holder_is_gone(site):
    """A second umbox-pop3d or umbox-smtpd started with a node_id whose
    daemon runs on this machine is refused, naming the holder: it would
    take that daemon's POP3 locks and queue claims for a dead process's.
    Once the holder is killed (-9) a new one takes the name at once."""
    a = site.node("a")
    a.deliver("alice", [message("one", "held on node a\r\n")])
    with a.raw() as first:
        first.login("alice")
        twin = site.node("a", start=False, home="node-a-twin")
        for mine, theirs in ((twin.pop3d, a.pop3d), (twin.smtpd, a.smtpd)):
            mine.start()
            assert mine.proc.wait(20) != 0
            assert f"is in use by process {theirs.pid} on this machine" in mine.log(), mine.log()
            mine.proc = None
        assert first.cmd("STAT").startswith("+OK 1 ")
        assert len(site.query("SELECT owner FROM pop3_locks")) == 1
    a.pop3d.stop(signal.SIGKILL)
    twin.pop3d.start()
    deadline = time.monotonic() + 10
    while not _probe_pop3(twin.pop3_port):
        assert twin.pop3d.running, twin.pop3d.log()
        assert time.monotonic() < deadline, twin.pop3d.log()
        time.sleep(0.05)
    with twin.raw() as again:
        again.login("alice")
        assert again.cmd("STAT").startswith("+OK 1 ")


def test_a_session_whose_mailbox_was_taken_over_saves_nothing(site):
    """Node a's session outlives its heartbeat (paused, cut off); node b
    takes the mailbox, deletes and quits.  When a's session quits after
    that, its deletions are not saved: -ERR [IN-USE], and only b's are
    gone (two sessions never both commit)."""
    a = site.node("a")
    b = site.node("b")
    a.deliver("carol", [message(f"m{i}", f"message {i}\r\n") for i in range(4)])
    with a.raw() as first:
        first.login("carol")
        assert first.cmd("DELE 1").startswith("+OK")
        deadline = time.monotonic() + 20
        while True:
            # Node a's pop3d looks dead to the others until its next heartbeat.
            site.query("UPDATE nodes SET heartbeat = heartbeat - 31 WHERE id = 'a/pop3d'"
                       " RETURNING id")
            with b.raw() as second:
                assert second.cmd("USER carol").startswith("+OK")
                r = second.cmd(f"PASS {PASSWORD}")
                if r.startswith("+OK"):
                    assert second.cmd("DELE 2").startswith("+OK")
                    assert second.cmd("QUIT").startswith("+OK")
                    break
            assert time.monotonic() < deadline, r
        r = first.cmd("QUIT")
        assert r.startswith("-ERR [IN-USE]"), r
    with b.raw() as check:
        check.login("carol")
        assert check.cmd("STAT").startswith("+OK 3 ")
        assert check.cmd("QUIT").startswith("+OK")
    assert "another session took the mailbox over" in a.pop3d.log()


def test_a_node_whose_data_dir_is_missing_makes_it(site):
    """On PostgreSQL data_dir holds only spool files, so nothing else
    shows that it is missing: the daemons make it at start (as umboxctl
    does), and a message larger than the 1 MiB kept in memory is taken."""
    z = site.node("z", start=False)
    shutil.rmtree(z.data_dir)
    z.start()
    assert z.data_dir.is_dir()
    body = "Subject: big\r\n\r\n" + ("y" * 998 + "\r\n") * 1500
    with smtplib.SMTP("127.0.0.1", z.smtp_port, timeout=30) as s:
        s.sendmail(f"someone@{DOMAIN}", [f"alice@{DOMAIN}"], body)
    with z.raw() as c:
        c.login("alice")
        assert c.cmd("STAT").startswith("+OK 1 ")


class Outside(BaseResolver):
    """far.test's MX is 127.0.0.1 once `up` is set; until then the zone
    fails (a temporary error: rows wait in the queue)."""

    up = False

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if not self.up:
            reply.header.rcode = RCODE.SERVFAIL
        elif request.q.qtype == QTYPE.MX and name == "far.test":
            reply.add_answer(RR("far.test", QTYPE.MX, rdata=MX("mx.far.test"), ttl=60))
        elif request.q.qtype == QTYPE.A and name == "mx.far.test":
            reply.add_answer(RR("mx.far.test", QTYPE.A, rdata=A("127.0.0.1"), ttl=60))
        return reply


def test_queue_raced_by_two_nodes_delivers_each_row_once(site):
    zone = Outside()
    rows = 10000
    per_message = 100
    with dns_zone(zone) as dns_port, sink_server() as sink:
        sections = {"dns": {"servers": f"127.0.0.1:{dns_port}"},
                    "queue": {"smtp_port": sink.port}}
        a = site.node("a", sections=sections, smtpd_extra={"max_recipients": per_message})
        b = site.node("b", sections=sections, smtpd_extra={"max_recipients": per_message})
        # Every row is queued while the outside cannot be reached.
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=60) as s:
            for m in range(rows // per_message):
                rcpts = [f"r{m}-{i}@far.test" for i in range(per_message)]
                assert s.sendmail(f"alice@{DOMAIN}", rcpts,
                                  f"Subject: {m}\r\n\r\nmessage {m}\r\n") == {}
        queued = int(site.query("SELECT count(*) FROM queue")[0][0])
        assert queued == rows
        # Now it can: both nodes' runners claim from the same queue at once.
        zone.up = True
        run_ctl(site.config, "queue", "flush")
        deadline = time.monotonic() + 120
        while site.query("SELECT count(*) FROM queue")[0][0] != 0:
            assert time.monotonic() < deadline, (
                site.query("SELECT status, count(*) FROM queue GROUP BY status"),
                a.smtpd.log()[-2000:], b.smtpd.log()[-2000:])
            time.sleep(0.5)
        delivered = [r for _, rs, _ in sink.messages for r in rs]
        assert len(delivered) == rows, len(delivered)
        assert len(set(delivered)) == rows
        # Both nodes took part.
        for node in (a, b):
            assert "status=sent" in node.smtpd.log(), node.smtpd.log()[-2000:]


def test_queue_flush_wakes_the_runner_at_once(site):
    """Rows made due from outside the daemon (`umboxctl queue flush`) are
    tried at once: the database tells the runner, which, while it hears
    such news, reads the next due time only every 10 s.  Three rounds, so
    that a runner merely polling would have to be lucky three times."""
    zone = Outside()
    zone.up = True
    with dns_zone(zone) as dns_port, sink_server() as sink:
        sections = {"dns": {"servers": f"127.0.0.1:{dns_port}"},
                    "queue": {"smtp_port": sink.port, "retry_initial": "1h"}}
        a = site.node("a", sections=sections)
        for n in range(3):
            # The first attempt is put off for an hour by the outside's 451.
            sink.refuse[f"r{n}@far.test"] = ["451 4.3.0 come back later"]
            with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=30) as s:
                assert s.sendmail(f"alice@{DOMAIN}", [f"r{n}@far.test"],
                                  f"Subject: {n}\r\n\r\nround {n}\r\n") == {}
            deadline = time.monotonic() + 30
            while site.query("SELECT count(*) FROM queue WHERE attempts > 0") != [(1,)]:
                assert time.monotonic() < deadline, a.smtpd.log()[-2000:]
                time.sleep(0.2)
            time.sleep(1.5)     # past the runner's look after its report
            flushed = time.monotonic()
            run_ctl(site.config, "queue", "flush")
            while len(sink.messages) < n + 1:
                assert time.monotonic() - flushed < 4, (
                    f"round {n}: not tried within 4 s of the flush", a.smtpd.log()[-2000:])
                time.sleep(0.1)
            deadline = time.monotonic() + 10
            while site.query("SELECT count(*) FROM queue") != [(0,)]:
                assert time.monotonic() < deadline
                time.sleep(0.2)


def test_unreferenced_message_is_swept_after_an_hour(site):
    """A message deleted from its last mailbox stays for an hour on
    PostgreSQL (a RETR on another node may be reading it), then the
    daemons remove it."""
    a = site.node("a")
    a.deliver("alice", [message("gone soon", "bye\r\n")])
    with a.raw() as c:
        c.login("alice")
        assert c.cmd("DELE 1").startswith("+OK")
        assert c.cmd("QUIT").startswith("+OK")
    assert site.query("SELECT count(*) FROM messages WHERE orphaned_at IS NOT NULL") == [(1,)]
    # Not before its hour is up: a restart sweeps at once, and keeps it.
    a.restart_smtpd()
    time.sleep(8)
    assert site.query("SELECT count(*) FROM messages") == [(1,)]
    # An hour later it goes.
    site.query("UPDATE messages SET orphaned_at = orphaned_at - 3601 RETURNING id")
    a.restart_smtpd()
    deadline = time.monotonic() + 20
    while site.query("SELECT count(*) FROM messages") != [(0,)]:
        assert time.monotonic() < deadline, a.smtpd.log()[-2000:]
        time.sleep(0.5)
    assert "1 unreferenced message removed" in a.smtpd.log()


def test_queue_ids_carry_the_node_name(site):
    """Each node's queue IDs end with its name, so two nodes never hand out
    the same one, and the ID in the reply is the one the store keeps."""
    seen = {}
    for name in ("a", "b"):
        node = site.node(name)
        with smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30) as s:
            s.ehlo()
            assert s.mail("w@outside.test")[0] == 250
            assert s.rcpt(f"alice@{DOMAIN}")[0] == 250
            code, text = s.data(f"Subject: from {name}\r\n\r\nbody\r\n".encode())
        assert code == 250, text
        qid = text.decode().rsplit(" ", 1)[1]
        assert qid.endswith(f".{name}") and len(qid) == 17 + 1 + len(name), qid
        seen[name] = qid
    stored = {r[0] for r in site.query("SELECT qid FROM messages")}
    assert set(seen.values()) <= stored, (seen, stored)
