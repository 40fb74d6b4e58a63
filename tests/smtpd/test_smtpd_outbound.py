"""Outbound delivery by umbox-smtpd's queue runner (SPEC §6): a real DNS
server on loopback (dnslib) answers MX and A questions, real SMTP servers
on loopback (aiosmtpd) are the outside world.  Mail to an alias's outside
member, a keep-copy alias and a submission to an outside address leave
through MX; a relay listing the domain takes precedence; 4xx is retried
(after `queue flush` at once), 5xx, NXDOMAIN and a null MX fail."""
import smtplib
import socket
import subprocess
import time

import pytest
from aiosmtpd.controller import Controller
from dnslib import A, MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSServer

from smtpd_util import DOMAIN, PASSWORD, free_port, simple_message, unverified_context


class Zone(BaseResolver):
    """far.test and near.test have MX records pointing at 127.0.0.1; nullmx.test
    has a null MX (RFC 7505); anything else is NXDOMAIN."""

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = request.q.qtype
        if name in ("far.test.", "near.test."):
            if qtype == QTYPE.MX:
                reply.add_answer(RR(name, QTYPE.MX, ttl=60, rdata=MX("mx." + name, 10)))
            return reply
        if name in ("mx.far.test.", "mx.near.test."):
            if qtype == QTYPE.A:
                reply.add_answer(RR(name, QTYPE.A, ttl=60, rdata=A("127.0.0.1")))
            return reply
        if name == "nullmx.test.":
            if qtype == QTYPE.MX:
                reply.add_answer(RR(name, QTYPE.MX, ttl=60, rdata=MX(".", 0)))
            return reply
        reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture(scope="module")
def dns_port():
    port = free_port()
    udp = DNSServer(Zone(), port=port, address="127.0.0.1")
    tcp = DNSServer(Zone(), port=port, address="127.0.0.1", tcp=True)
    udp.start_thread()
    tcp.start_thread()
    yield port
    udp.stop()
    tcp.stop()


class Sink:
    def __init__(self):
        self.messages = []
        self.refuse = {}        # recipient -> list of replies, used up in order

    async def handle_RCPT(self, server, session, envelope, address, options):
        replies = self.refuse.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok"

    def wait(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {n} messages arrived"
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def sink():
    s = Sink()
    s.port = free_port()
    c = Controller(s, hostname="127.0.0.1", port=s.port)
    c.start()
    yield s
    c.stop()


@pytest.fixture
def outbound(smtpd_factory, dns_port, sink):
    """A daemon whose DNS is the zone above and whose MX port is the sink's."""
    d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                         "queue.smtp_port": sink.port, "queue.retry_initial": "1s"})
    d.sink = sink
    return d


def rows(d):
    """(recipient, status, attempts, last_error) of each queue row."""
    import sqlite3
    con = sqlite3.connect(f"file:{d.store_path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT recipient, status, attempts, last_error FROM queue"
                           " ORDER BY id").fetchall()
    finally:
        con.close()


def wait_rows(d, pred, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        r = rows(d)
        if pred(r):
            return r
        assert time.monotonic() < deadline, f"queue rows: {r}\n{d.log()[-3000:]}"
        time.sleep(0.1)


def send(d, rcpts, subject="out", sender="someone@elsewhere.example"):
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
        s.sendmail(sender, rcpts, simple_message(subject))


def test_alias_member_outside_goes_through_mx(outbound):
    outbound.ctl("alias", "add", "fwd", "friend@far.test")
    send(outbound, [f"fwd@{DOMAIN}"], "forwarded")
    [(frm, tos, content)] = outbound.sink.wait(1)
    assert tos == ["friend@far.test"] and b"Subject: forwarded" in content
    wait_rows(outbound, lambda r: r == [])
    assert "to=<friend@far.test> relay=mx status=sent" in outbound.log()


def test_keep_copy_alias_delivers_inside_and_out(outbound):
    outbound.ctl("alias", "add", "carol", "carol", "carol@far.test")
    send(outbound, [f"carol@{DOMAIN}"], "both")
    [(_, tos, _)] = outbound.sink.wait(1)
    assert tos == ["carol@far.test"]
    assert [m["subject"] for m in outbound.mailbox("carol")] == ["both"]


def test_submission_to_an_outside_address(outbound):
    with smtplib.SMTP("127.0.0.1", outbound.submission, timeout=15) as s:
        s.starttls(context=unverified_context())
        s.login("alice", PASSWORD)
        s.sendmail(f"alice@{DOMAIN}", ["pal@far.test", "pal2@far.test"], simple_message("sub"))
    [(frm, tos, _)] = outbound.sink.wait(1)
    # Two recipients of one domain: one transaction.
    assert frm == f"alice@{DOMAIN}" and sorted(tos) == ["pal2@far.test", "pal@far.test"]


def test_relay_listing_the_domain_wins(outbound, sink_factory_relay):
    relay = sink_factory_relay()
    outbound.ctl("relay", "add", "smarthost", "--host", "127.0.0.1", "--port", str(relay.port),
                 "--domain", "near.test", "--tls", "none")
    outbound.ctl("alias", "add", "two", "x@near.test", "y@far.test")
    send(outbound, [f"two@{DOMAIN}"], "two routes")
    [(_, tos, _)] = relay.wait(1)
    assert tos == ["x@near.test"]
    [(_, tos2, _)] = outbound.sink.wait(1)
    assert tos2 == ["y@far.test"]
    assert "relay=smarthost status=sent" in outbound.log()


def test_temporary_failure_is_retried_and_flush_hurries_it(outbound):
    outbound.sink.refuse["later@far.test"] = ["451 4.3.0 come back later"] * 1
    outbound.ctl("alias", "add", "later", "later@far.test")
    send(outbound, [f"later@{DOMAIN}"], "retry me")
    r = wait_rows(outbound, lambda r: r and r[0][2] >= 1)
    assert r[0][1] == 0 and "451 4.3.0 come back later" in r[0][3]
    outbound.ctl("queue", "flush")
    outbound.sink.wait(1)
    wait_rows(outbound, lambda r: r == [])


@pytest.mark.parametrize("rcpt,why", [
    ("gone@far.test", "550 5.1.1"),
    ("x@nullmx.test", "null MX"),
    ("x@nowhere.test", "NXDOMAIN"),
])
def test_permanent_failures_are_marked_failed(outbound, rcpt, why):
    outbound.sink.refuse["gone@far.test"] = ["550 5.1.1 no such user"]
    outbound.ctl("alias", "add", "doomed", rcpt)
    send(outbound, [f"doomed@{DOMAIN}"], "doomed")
    r = wait_rows(outbound, lambda r: r and r[0][1] == 1)
    assert r[0][0] == rcpt and why in r[0][3], r
    assert outbound.sink.messages == []


@pytest.fixture
def sink_factory_relay():
    made = []

    def make():
        s = Sink()
        s.port = free_port()
        c = Controller(s, hostname="127.0.0.1", port=s.port)
        c.start()
        made.append(c)
        return s
    yield make
    for c in made:
        c.stop()
