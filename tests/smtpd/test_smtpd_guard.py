"""umbox-smtpd's periodic MX guard (SPEC §7): every stored domain is checked
again shortly after start and then every [dns] guard_interval; the verdict
and its time are recorded (`umboxctl domain list`), a warning is logged when
a domain's MX moves to another server and a notice when it comes back, and
mail for the domain is still accepted and delivered here meanwhile.

DNS is a dnslib zone in this process whose MX for example.test the tests
switch; TTLs are 0 or 1 so that the daemon's resolver cache hides nothing
(and only positive answers are switched: negative ones are kept longer)."""
import json
import smtplib
import threading
import time

import pytest
from dnslib import A, MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSServer

from smtpd_util import DOMAIN, free_port, simple_message

HERE = "in.example.test"           # 127.0.0.1: this server
AWAY = "away.elsewhere.test"       # 198.51.100.77: another one
AWAY_ADDR = "198.51.100.77"

CLAIMED_DETAIL = f"MX {HERE} has this server's address 127.0.0.1"
FOREIGN_DETAIL = f"MX {AWAY} ({AWAY_ADDR})"

GONE_WARNING = (f"MX guard: {DOMAIN}: its mail now goes elsewhere: {FOREIGN_DETAIL}; "
                f"mail for {DOMAIN} that arrives here, and alias members at {DOMAIN}, "
                "are still delivered to the mailboxes on this server")
BACK_NOTICE = f"MX guard: {DOMAIN}: its MX points at this server again: {CLAIMED_DETAIL}"


class SwitchZone(BaseResolver):
    """example.test MX -> self.mx_host (TTL 0); in.example.test A 127.0.0.1,
    away.elsewhere.test A 198.51.100.77 (TTL 1); anything else NXDOMAIN."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mx_host = HERE
        self.mx_questions = 0

    def point_at(self, host):
        with self.lock:
            self.mx_host = host

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        qtype = request.q.qtype
        if name == DOMAIN:
            if qtype == QTYPE.MX:
                with self.lock:
                    self.mx_questions += 1
                    host = self.mx_host
                if host is None:            # point_at(None): SERVFAIL
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                reply.add_answer(RR(name + ".", QTYPE.MX, ttl=0, rdata=MX(host + ".", 10)))
            return reply
        addrs = {HERE: "127.0.0.1", AWAY: AWAY_ADDR}
        if name in addrs:
            if qtype == QTYPE.A:
                reply.add_answer(RR(name + ".", QTYPE.A, ttl=1, rdata=A(addrs[name])))
            return reply
        reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture
def zone():
    z = SwitchZone()
    z.port = free_port()
    servers = [DNSServer(z, port=z.port, address="127.0.0.1"),
               DNSServer(z, port=z.port, address="127.0.0.1", tcp=True)]
    for s in servers:
        s.start_thread()
    yield z
    for s in servers:
        s.stop()


def domain_row(d):
    [row] = [r for r in json.loads(d.ctl("--json", "domain", "list")[1]) if r["name"] == DOMAIN]
    return row


def wait_for(d, what, pred, timeout=10):
    """Poll the domain's row until pred(row) holds; returns the row."""
    deadline = time.monotonic() + timeout
    while True:
        row = domain_row(d)
        if pred(row):
            return row
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; row {row}\n{d.log()[-3000:]}")
        time.sleep(0.1)


def wait_log(d, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in d.log():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {text!r} in the log:\n{d.log()[-3000:]}")
        time.sleep(0.1)


def deliver(d, rcpt, subject):
    """Send one message on the MX port; insists on 250 for RCPT and DATA."""
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
        s.ehlo("client.outside.test")
        assert s.mail("someone@outside.test")[0] == 250
        code, msg = s.rcpt(rcpt)
        assert code == 250, (code, msg)
        code, msg = s.data(simple_message(subject))
        assert code == 250, (code, msg)


def subjects(d, login):
    return [e["subject"] for e in d.mailbox(login)]


def test_domain_turning_foreign_is_warned_and_still_served(smtpd_factory, zone):
    t0 = int(time.time())
    d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{zone.port}", "dns.guard_interval": "1s"})
    # The template added example.test as internal (NXDOMAIN in the session
    # DNS); here its MX is this server.
    row = wait_for(d, "verdict claimed", lambda r: r["guard"] == "claimed")
    assert row["guard_detail"] == CLAIMED_DETAIL
    assert row["checked_at"] >= t0
    assert row["forced"] is False
    assert "its mail now goes elsewhere" not in d.log()

    # The MX moves to another server.
    zone.point_at(AWAY)
    t1 = int(time.time())
    row = wait_for(d, "verdict foreign",
                   lambda r: r["guard"] == "foreign" and r["checked_at"] >= t1)
    assert row["guard_detail"] == FOREIGN_DETAIL
    assert row["forced"] is False
    wait_log(d, GONE_WARNING)

    # `umboxctl status` says it loudly.
    status = d.ctl("status")[1].decode()
    assert f"WARNING: {DOMAIN}'s mail goes to another server ({FOREIGN_DETAIL})" in status
    [g] = json.loads(d.ctl("--json", "status")[1])["domain_guard"]
    assert (g["name"], g["guard"], g["foreign"]) == (DOMAIN, "foreign", True)

    # Mail for the domain is still accepted and delivered here, to a user
    # and to an alias's members.
    deliver(d, f"alice@{DOMAIN}", "still here")
    deliver(d, f"team@{DOMAIN}", "team still here")
    assert subjects(d, "alice") == ["still here", "team still here"]
    assert subjects(d, "carol") == ["team still here"]

    # Re-checks while it stays foreign record the time, not a new warning.
    seen = row["checked_at"]
    wait_for(d, "another check", lambda r: r["checked_at"] > seen)
    assert d.log().count("its mail now goes elsewhere") == 1, d.log()

    # Back to this server.
    zone.point_at(HERE)
    t2 = int(time.time())
    row = wait_for(d, "verdict claimed again",
                   lambda r: r["guard"] == "claimed" and r["checked_at"] >= t2)
    assert row["guard_detail"] == CLAIMED_DETAIL
    wait_log(d, BACK_NOTICE)
    assert "mail goes to another server" not in d.ctl("status")[1].decode()
    assert d.running


def test_unreachable_dns_is_recorded_and_the_daemon_keeps_serving(smtpd_factory):
    """The default test config's DNS is a closed port (127.0.0.1:9); the
    default guard_interval (1h) still checks once, 2 s after start."""
    t0 = int(time.time())
    d = smtpd_factory()
    start = time.monotonic()
    row = wait_for(d, "verdict dns-error", lambda r: r["guard"] == "dns-error", timeout=8)
    assert time.monotonic() - start >= 1.0, "checked at once, not after about 2 s"
    assert row["checked_at"] >= t0
    assert row["guard_detail"], row
    wait_log(d, f"MX guard: {DOMAIN}: cannot check: {row['guard_detail']}")
    assert "its mail now goes elsewhere" not in d.log()

    deliver(d, f"bob@{DOMAIN}", "dns is down")
    assert subjects(d, "bob") == ["dns is down"]
    assert d.running


def test_dns_error_is_logged_once_not_every_pass(smtpd_factory):
    d = smtpd_factory(**{"dns.guard_interval": "1s"})
    row = wait_for(d, "verdict dns-error", lambda r: r["guard"] == "dns-error")
    seen = row["checked_at"]
    wait_for(d, "two more checks", lambda r: r["checked_at"] >= seen + 2)
    assert d.log().count(f"MX guard: {DOMAIN}: cannot check:") == 1, d.log()
    assert d.running


class UdpOnlyZone(SwitchZone):
    """SwitchZone, and big.udp.test with 40 MX records: too large for UDP,
    served by a server that takes no TCP."""

    def resolve(self, request, handler):
        name = str(request.q.qname).lower()
        if name == "big.udp.test.":
            reply = request.reply()
            if request.q.qtype == QTYPE.MX:
                for i in range(40):
                    reply.add_answer(RR(name, QTYPE.MX, ttl=0,
                                        rdata=MX(f"mx{i:02d}.far-away-host.udp.test.", i)))
            return reply
        return super().resolve(request, handler)


def test_a_domain_whose_answer_needs_tcp_fails_only_itself(smtpd_factory):
    """The UDP-only server truncates big.udp.test's answer and refuses TCP:
    that domain cannot be checked, and example.test, checked in the same
    pass, is still claimed every time (not failed along with it)."""
    z = UdpOnlyZone()
    z.port = free_port()
    server = DNSServer(z, port=z.port, address="127.0.0.1")
    server.start_thread()
    try:
        d = smtpd_factory(start=False, **{"dns.servers": f"127.0.0.1:{z.port}",
                                           "dns.guard_interval": "1s"})
        d.ctl("domain", "add", "big.udp.test", "--force", check=False)
        d.start()
        t0 = int(time.time())
        for _ in range(3):
            row = wait_for(d, "a newer check", lambda r: r["checked_at"] > t0)
            assert row["guard"] == "claimed", (row, d.log()[-3000:])
            t0 = row["checked_at"]
        assert "example.test: cannot check" not in d.log()
        [big] = [r for r in json.loads(d.ctl("--json", "domain", "list")[1])
                 if r["name"] == "big.udp.test"]
        assert big["guard"] == "dns-error", big
    finally:
        server.stop()


def test_a_dns_failure_in_between_is_not_a_change(smtpd_factory, zone):
    """foreign, cannot check, claimed: the notice that the MX points here
    again is logged (a failed check is not a verdict to compare with);
    foreign, cannot check, foreign: no second "now goes elsewhere"."""
    zone.point_at(AWAY)
    d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{zone.port}", "dns.guard_interval": "1s"})
    wait_log(d, GONE_WARNING)
    for back in (AWAY, HERE):
        zone.point_at(None)
        t = int(time.time())
        wait_for(d, "verdict dns-error", lambda r: r["guard"] == "dns-error" and r["checked_at"] >= t)
        zone.point_at(back)
        t = int(time.time())
        wait_for(d, "a verdict again", lambda r: r["guard"] != "dns-error" and r["checked_at"] >= t)
    wait_log(d, BACK_NOTICE)
    assert d.log().count("its mail now goes elsewhere") == 1, d.log()[-3000:]
