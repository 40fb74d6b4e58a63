"""Outbound delivery by umbox-smtpd's queue runner (SPEC §6): a real DNS
server on loopback (dnslib) answers MX and A questions, real SMTP servers
on loopback (aiosmtpd) are the outside world.  Mail to an alias's outside
member, a keep-copy alias and a submission to an outside address leave
through MX; a relay listing the domain takes precedence; 4xx is retried
(after `queue flush` at once), 5xx, NXDOMAIN and a null MX fail."""
import asyncio
import email
import email.policy
import re
import smtplib
import socket
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from dnslib import A, MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver

from outside import Sink, dns_zone, sink_server
from smtpd_util import DOMAIN, PASSWORD, free_port, simple_message, unverified_context


class Zone(BaseResolver):
    """far.test and near.test have MX records pointing at 127.0.0.1;
    two.test has two MX hosts, the better one (127.0.0.2) refusing
    connections; aonly.test has no MX but an A record; nullmx.test has a
    null MX (RFC 7505); servfail.test fails; anything else is NXDOMAIN."""

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = request.q.qtype
        if name == "servfail.test.":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if name == "two.test.":
            if qtype == QTYPE.MX:
                reply.add_answer(RR(name, QTYPE.MX, ttl=60, rdata=MX("mx1.two.test.", 10)))
                reply.add_answer(RR(name, QTYPE.MX, ttl=60, rdata=MX("mx2.two.test.", 20)))
            return reply
        if name in ("mx1.two.test.", "mx2.two.test.", "aonly.test."):
            if qtype == QTYPE.A:
                addr = "127.0.0.2" if name.startswith("mx1") else "127.0.0.1"
                reply.add_answer(RR(name, QTYPE.A, ttl=60, rdata=A(addr)))
            return reply
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
        if name in ("dotmx.test.", "litmx.test."):
            if qtype == QTYPE.MX:
                host = "." if name == "dotmx.test." else "127.0.0.1."
                reply.add_answer(RR(name, QTYPE.MX, ttl=60, rdata=MX(host, 10)))
            return reply
        reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture(scope="module")
def dns_port():
    with dns_zone(Zone()) as port:
        yield port


@pytest.fixture
def sink():
    with sink_server() as s:
        yield s


@pytest.fixture
def outbound(smtpd_factory, dns_port, sink):
    """A daemon whose DNS is the zone above and whose MX port is the sink's."""
    d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                         "queue.smtp_port": sink.port, "queue.retry_initial": "1s"})
    d.sink = sink
    return d


def rows(d):
    """(recipient, status, attempts, last_error) of each queue row."""
    return d.sql("SELECT recipient, status, attempts, last_error FROM queue ORDER BY id")


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


@pytest.mark.parametrize("offered", [True, False], ids=["smtputf8", "ascii-only"])
def test_utf8_addresses_go_with_smtputf8_or_not_at_all(smtpd_factory, dns_port, offered):
    """RFC 6531: a message with a non-ASCII recipient is sent with MAIL ...
    SMTPUTF8 to a server that offers it; to one that does not it fails
    (5.6.7) and bounces, never sent as if it were ASCII."""
    with sink_server(smtputf8=offered) as sink:
        d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                             "queue.smtp_port": sink.port})
        with smtplib.SMTP("127.0.0.1", d.submission, timeout=15) as s:
            s.starttls(context=unverified_context())
            s.login("alice", PASSWORD)
            s.sendmail(f"alice@{DOMAIN}", ["j\u00f6rg@far.test"],
                       simple_message("gr\u00fc\u00dfe").encode(), mail_options=["SMTPUTF8"])
        if offered:
            [(frm, tos, _)] = sink.wait(1)
            assert (frm, tos, sink.smtputf8) == (f"alice@{DOMAIN}", ["j\u00f6rg@far.test"], [True])
            wait_rows(d, lambda r: r == [])
        else:
            deadline = time.monotonic() + 10
            while not [m for m in d.mailbox("alice") if "5.6.7" in d.export("alice", m["uid"]).decode()]:
                assert time.monotonic() < deadline, d.log()[-3000:]
                time.sleep(0.1)
            assert sink.messages == []
            assert "status=failed" in d.log() and "SMTPUTF8" in d.log()


@pytest.mark.parametrize("offered", [True, False], ids=["8bitmime", "7bit-only"])
def test_8bit_message_is_declared_or_converted(smtpd_factory, dns_port, offered):
    """RFC 6152: a forwarded message with octets above 127 goes with MAIL
    ... BODY=8BITMIME to a server that offers 8BITMIME, as it is; a 7-bit
    one never says so.  To a server without 8BITMIME its 8-bit parts are
    re-encoded as quoted-printable (RFC 6152 §3) and decode to the same
    text; an 8-bit header field cannot be and goes as it is, and a message
    with nothing else to convert goes unchanged."""
    mime = ("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n")
    text = "sch\u00f6ne Gr\u00fc\u00dfe\r\n.und ein Punkt\r\n"
    body8 = ("Subject: body8\r\n" + mime + "\r\n" + text).encode()
    head8 = ("Subject: gr\u00fc\u00dfe\r\n" + mime + "\r\n" + text).encode()
    only = "Subject: only\r\nFrom: J\u00fcrgen <j@elsewhere.example>\r\n\r\nascii\r\n".encode()
    sink = Sink()
    sink.eightbit = offered
    with sink_server(sink):
        d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                             "queue.smtp_port": sink.port})
        d.ctl("alias", "add", "fwd", "friend@far.test")
        with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
            for m in (body8, head8, only):
                s.sendmail("someone@elsewhere.example", [f"fwd@{DOMAIN}"], m,
                           mail_options=["BODY=8BITMIME"])
            s.sendmail("someone@elsewhere.example", [f"fwd@{DOMAIN}"], simple_message("plain"))
        got = sink.wait(4, log=d.log)
        by_subject = {}
        for (_, _, content), options in zip(got, sink.mail_options):
            msg = email.message_from_bytes(content)
            by_subject[msg["Subject"] if "Subject: gr" not in content.decode(errors="replace")
                       else "head8"] = (content, options, msg)
        assert "BODY=8BITMIME" not in by_subject["plain"][1]
        for key in ("body8", "head8"):
            content, options, msg = by_subject[key]
            assert ("BODY=8BITMIME" in options) == offered, (key, options)
            assert msg.get_payload(decode=True) == text.encode(), key
            if offered:
                assert text.encode() in content, key
            else:
                assert msg["Content-Transfer-Encoding"] == "quoted-printable", key
                body = content.split(b"\r\n\r\n", 1)[1]
                assert max(body) < 128, key
        # Only what a header field holds is left 8-bit.
        assert max(by_subject["body8"][0]) < 128 or offered
        assert "gr\u00fc\u00dfe".encode() in by_subject["head8"][0]
        assert by_subject["only"][0].endswith(only)    # after our Received:
        assert ("BODY=8BITMIME" in by_subject["only"][1]) == offered
        if not offered:
            assert d.log().count("converted to 7-bit for a server without 8BITMIME") == 2
            assert "8-bit header fields go as they are" in d.log()
            assert "(none of its 8-bit parts can be re-encoded); it goes as it is" in d.log()
        wait_rows(d, lambda r: r == [])


@pytest.mark.parametrize("limit", [None, (30, "452 4.5.3 Too many recipients"),
                                   (30, "552 5.5.3 Too many recipients")],
                         ids=["100-per-transaction", "452-past-30", "552-past-30"])
def test_many_recipients_go_in_several_transactions(smtpd_factory, dns_port, limit):
    """At most 100 recipients per transaction (RFC 5321 §4.5.3.1.8); a
    server that says 452, or 552 as older ones do, to recipients past its
    own limit gets the rest in further transactions on the same
    connection, none of them failed or waiting for a retry
    (§4.5.3.1.10)."""
    members = [f"m{i:03d}@far.test" for i in range(250 if limit is None else 70)]
    sink = Sink()
    sink.max_rcpts = limit
    with sink_server(sink):
        d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                             "queue.smtp_port": sink.port})
        d.ctl("alias", "add", "many", *members)
        send(d, [f"many@{DOMAIN}"], "to many")
        got = sink.wait(3, log=d.log)
        wait_rows(d, lambda r: r == [])
        sizes = sorted((len(tos) for _, tos, _ in got), reverse=True)
        assert sizes == ([100, 100, 50] if limit is None else [30, 30, 10]), sizes
        assert sorted(t.lower() for _, tos, _ in got for t in tos) == members
        assert sink.connections == 1
        assert "status=deferred" not in d.log() and "status=failed" not in d.log()


def test_transaction_deferred_at_the_end_of_data_defers_the_rest(smtpd_factory, dns_port):
    """A 4xx to the end of the first transaction's data defers its 100
    recipients with that reply; the 50 never sent say why they were not
    (the reply that stopped the attempt), not a bare "not delivered"."""
    members = [f"m{i:03d}@far.test" for i in range(150)]
    sink = Sink()
    sink.data_reply = "451 4.3.0 try again later"
    with sink_server(sink):
        d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                             "queue.smtp_port": sink.port})
        d.ctl("alias", "add", "many", *members)
        send(d, [f"many@{DOMAIN}"], "deferred")
        r = wait_rows(d, lambda r: len(r) == 150 and all(x[2] == 1 for x in r))
        assert len({x[1] for x in r}) == 1, r   # all waiting alike
        errors = {x[0]: x[3] for x in r}
        sent = [m for m in members if "451 4.3.0 try again later" in errors[m]
                and "not sent" not in errors[m]]
        assert len(sent) == 100, errors
        for m in set(members) - set(sent):
            assert "not sent" in errors[m] and "451 4.3.0 try again later" in errors[m], errors[m]
        assert sink.messages == [] and sink.connections == 1


def test_refused_transaction_goes_on_with_the_rest(smtpd_factory, dns_port):
    """The first 100 recipients all refused: RSET, and the other 50 in a
    transaction of their own; the 120 failures make one report (not one per
    100 rows read) that lists them all."""
    members = [f"m{i:03d}@far.test" for i in range(150)]
    sink = Sink()
    for m in members[:120]:
        sink.always[m] = "550 5.1.1 no such user"
    with sink_server(sink):
        d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                             "queue.smtp_port": sink.port})
        d.ctl("alias", "add", "many", *members)
        send(d, [f"many@{DOMAIN}"], "half refused", sender=f"alice@{DOMAIN}")
        [(_, tos, _)] = sink.wait(1, log=d.log)
        assert sorted(t.lower() for t in tos) == members[120:]
        [dsn] = wait_bounce(d, "alice")
        wait_rows(d, lambda r: r == [])
        report = [p for p in dsn.iter_parts() if p.get_content_type() == "message/delivery-status"]
        failed = [f["Final-Recipient"] for f in report[0].get_payload()[1:]]
        assert sorted(str(f).split("; ")[1] for f in failed) == members[:120]
        time.sleep(1)
        assert len(wait_bounce(d, "alice")) == 1
        assert sink.connections == 1


def test_utf8_recipients_are_judged_like_others(outbound):
    """With SMTPUTF8 a non-ASCII recipient is a well-formed address: unknown
    in a local domain (no login is UTF-8), relay denied outside."""
    with smtplib.SMTP("127.0.0.1", outbound.mx, timeout=15) as s:
        s.ehlo("client.outside.test")
        s.command_encoding = "utf-8"
        assert s.mail("someone@elsewhere.example", ["SMTPUTF8"])[0] == 250
        assert s.rcpt(f"j\u00f6rg@{DOMAIN}")[0] == 550
        assert s.rcpt("j\u00f6rg@far.test")[0] == 554
        assert s.rcpt(f"alice@{DOMAIN}")[0] == 250


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


def test_inactive_relay_is_skipped(outbound, sink_factory_relay):
    relay = sink_factory_relay()
    outbound.ctl("relay", "add", "standby", "--host", "127.0.0.1", "--port", str(relay.port),
                 "--domain", "near.test", "--default", "--inactive", "--tls", "none")
    outbound.ctl("alias", "add", "near", "x@near.test")
    send(outbound, [f"near@{DOMAIN}"], "not through the standby")
    [(_, tos, _)] = outbound.sink.wait(1)
    assert tos == ["x@near.test"] and relay.messages == []
    # Made active, it takes the next message: no restart needed.
    outbound.ctl("relay", "set", "standby", "--active")
    send(outbound, [f"near@{DOMAIN}"], "through the relay now")
    [(_, tos, _)] = relay.wait(1)
    assert tos == ["x@near.test"]


def test_temporary_failure_is_retried_and_flush_hurries_it(outbound):
    outbound.sink.refuse["later@far.test"] = ["451 4.3.0 come back later"] * 1
    outbound.ctl("alias", "add", "later", "later@far.test")
    send(outbound, [f"later@{DOMAIN}"], "retry me")
    # Retried after retry_initial, a second away at most: the row may be gone already.
    r = wait_rows(outbound, lambda r: r == [] or r[0][2] >= 1)
    assert r == [] or (r[0][1] == 0 and "451 4.3.0 come back later" in r[0][3]), r
    assert "status=deferred (451 4.3.0 come back later)" in outbound.log()
    outbound.ctl("queue", "flush")
    outbound.sink.wait(1)
    wait_rows(outbound, lambda r: r == [])


def wait_bounce(d, login, n=1, timeout=15):
    """The parsed bounces in a local mailbox, once n have arrived."""
    deadline = time.monotonic() + timeout
    while True:
        msgs = [email.message_from_bytes(m, policy=email.policy.default)
                for m in d.messages(login)]
        bounces = [m for m in msgs if m.get_content_type() == "multipart/report"]
        if len(bounces) >= n:
            return bounces
        assert time.monotonic() < deadline, f"{len(bounces)} bounces\n{d.log()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.parametrize("rcpt,why,status", [
    ("gone@far.test", "550 5.1.1", "5.1.1"),
    ("x@nullmx.test", "null MX", "5.1.10"),
    ("x@nowhere.test", "NXDOMAIN", "5.1.2"),
])
def test_permanent_failures_bounce_to_the_sender(outbound, rcpt, why, status):
    outbound.sink.refuse["gone@far.test"] = ["550 5.1.1 no such user"]
    outbound.ctl("alias", "add", "doomed", rcpt)
    send(outbound, [f"doomed@{DOMAIN}"], "doomed", sender=f"alice@{DOMAIN}")
    [dsn] = wait_bounce(outbound, "alice")
    report = [p for p in dsn.iter_parts() if p.get_content_type() == "message/delivery-status"]
    fields = report[0].get_payload()[1]
    assert fields["Final-Recipient"] == f"rfc822; {rcpt}"
    assert fields["Action"] == "failed" and fields["Status"] == status
    assert why in str(fields["Diagnostic-Code"])
    assert f"to=<{rcpt}>" in outbound.log() and "status=failed" in outbound.log()
    # the failed row went with its bounce
    wait_rows(outbound, lambda r: r == [])
    assert outbound.sink.messages == []


@pytest.mark.parametrize("domain", ["two.test", "aonly.test"])
def test_second_mx_and_address_fallback(outbound, domain):
    outbound.ctl("alias", "add", "far", f"x@{domain}")
    send(outbound, [f"far@{DOMAIN}"], domain)
    [(_, tos, _)] = outbound.sink.wait(1)
    assert tos == [f"x@{domain}"]
    wait_rows(outbound, lambda r: r == [])


def test_dns_failure_is_temporary(outbound):
    outbound.ctl("alias", "add", "sf", "x@servfail.test")
    send(outbound, [f"sf@{DOMAIN}"], "servfail")
    r = wait_rows(outbound, lambda r: r and r[0][2] >= 2)
    assert r[0][1] == 0 and "SERVFAIL" in r[0][3].upper(), r


def test_held_entry_waits_until_released(outbound):
    outbound.sink.refuse["held@far.test"] = ["451 4.3.0 not yet"]
    outbound.ctl("alias", "add", "held", "held@far.test")
    send(outbound, [f"held@{DOMAIN}"], "held")
    wait_rows(outbound, lambda r: r and r[0][2] >= 1)
    [qid] = rows_ids(outbound)
    outbound.ctl("queue", "hold", str(qid))
    outbound.ctl("queue", "flush")
    time.sleep(2.5)
    assert outbound.sink.messages == [] and rows(outbound)[0][2] == 1
    outbound.ctl("queue", "release", str(qid))
    # Released, the entry is due at once: the queue may send it before a
    # flush by id finds it, so flush them all.
    outbound.ctl("queue", "flush")
    outbound.sink.wait(1)
    wait_rows(outbound, lambda r: r == [])


def test_full_mailbox_is_delivered_once_there_is_room(outbound):
    outbound.ctl("user", "set", "bob", "--quota", "1K")
    big = "x" * 3000
    with smtplib.SMTP("127.0.0.1", outbound.mx, timeout=15) as s:
        s.sendmail("someone@elsewhere.example", [f"team@{DOMAIN}"],
                   simple_message("for the team", big))
    wait_rows(outbound, lambda r: r and r[0][2] >= 1)
    assert outbound.mailbox("bob") == []
    outbound.ctl("user", "set", "bob", "--quota", "0")
    wait_rows(outbound, lambda r: r == [])
    assert [m["subject"] for m in outbound.mailbox("bob")] == ["for the team"]


def test_lifetime_expiry_bounces(smtpd_factory, dns_port, sink):
    d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}", "queue.smtp_port": sink.port,
                         "queue.retry_initial": "1s", "queue.lifetime": "2s"})
    sink.refuse["slow@far.test"] = ["451 4.3.0 not today"] * 100
    d.ctl("alias", "add", "slow", "slow@far.test")
    send(d, [f"slow@{DOMAIN}"], "expires", sender=f"alice@{DOMAIN}")
    [dsn] = wait_bounce(d, "alice")
    report = [p for p in dsn.iter_parts() if p.get_content_type() == "message/delivery-status"]
    fields = report[0].get_payload()[1]
    assert fields["Action"] == "failed" and fields["Status"] == "5.4.7"
    assert "451 4.3.0 not today" in str(fields["Diagnostic-Code"])
    wait_rows(d, lambda r: r == [])
    # The log says the row failed, not only that its last try was deferred.
    assert re.search(r"to=<slow@far\.test> status=failed \(deferred past \[queue\]"
                     r" lifetime; last: .*451 4\.3\.0 not today", d.log()), d.log()


def test_relay_sender_override(outbound, sink_factory_relay):
    relay = sink_factory_relay()
    outbound.ctl("relay", "add", "hub", "--host", "127.0.0.1", "--port", str(relay.port),
                 "--default", "--tls", "none", "--sender", "pbx@example.test")
    outbound.ctl("alias", "add", "ext", "someone@far.test")
    send(outbound, [f"ext@{DOMAIN}"], "via the default relay")
    [(frm, tos, _)] = relay.wait(1)
    assert frm == "pbx@example.test" and tos == ["someone@far.test"]
    assert outbound.sink.messages == []
    # A null sender stays null (RFC 5321 §4.5.5): a bounce or a report
    # given a sender could be answered with a bounce of its own.
    with smtplib.SMTP("127.0.0.1", outbound.mx, timeout=15) as s:
        s.sendmail("<>", [f"ext@{DOMAIN}"], simple_message("a bounce passing through"))
    [_, (frm, tos, _)] = relay.wait(2)
    assert frm in ("", "<>") and tos == ["someone@far.test"]


class SlowSink(Sink):
    """Takes its time to answer the end of data: a window to kill the sender in."""

    async def handle_DATA(self, server, session, envelope):
        self.started = True
        await asyncio.sleep(2)
        return await super().handle_DATA(server, session, envelope)


def test_killed_mid_delivery_loses_nothing(smtpd_factory, dns_port):
    slow = SlowSink()
    slow.started = False
    slow.port = free_port()
    c = Controller(slow, hostname="127.0.0.1", port=slow.port)
    c.start()
    try:
        d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                             "queue.smtp_port": slow.port, "queue.retry_initial": "1s"})
        d.ctl("alias", "add", "fwd", "friend@far.test")
        send(d, [f"fwd@{DOMAIN}"], "survives")
        deadline = time.monotonic() + 10
        while not slow.started:
            assert time.monotonic() < deadline, d.log()
            time.sleep(0.02)
        d.kill()
        assert [r[0] for r in rows(d)] == ["friend@far.test"]
        d.start()
        # Delivered after the restart (the sink may or may not have kept the
        # first, cut-off attempt: twice at worst, never lost).
        wait_rows(d, lambda r: r == [], timeout=15)
        assert 1 <= len(slow.messages) <= 2
        assert all(tos == ["friend@far.test"] for _, tos, _ in slow.messages)
    finally:
        c.stop()


class CountingSink(Sink):
    """Holds each message a moment and counts how many are held at once."""

    def __init__(self):
        super().__init__()
        self.now = self.most = 0

    async def handle_DATA(self, server, session, envelope):
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.sleep(0.5)
        self.now -= 1
        return await super().handle_DATA(server, session, envelope)


def test_at_most_twenty_deliveries_to_one_domain(smtpd_factory, dns_port):
    counting = CountingSink()
    counting.port = free_port()
    c = Controller(counting, hostname="127.0.0.1", port=counting.port)
    c.start()
    try:
        d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                             "queue.smtp_port": counting.port})
        d.ctl("alias", "add", "fwd", "friend@far.test")
        with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
            for i in range(30):
                s.sendmail("someone@elsewhere.example", [f"fwd@{DOMAIN}"],
                           simple_message(f"burst {i}"))
        counting.wait(30, timeout=20)
        wait_rows(d, lambda r: r == [])
    finally:
        c.stop()
    # Many at once, but never more than the per-domain limit (aliases/queue.h).
    assert 5 <= counting.most <= 20, counting.most


def rows_ids(d):
    return [r[0] for r in d.sql("SELECT id FROM queue ORDER BY id")]


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


class SlowRcptServer:
    """A raw SMTP server whose first connection holds its reply to RCPT for
    hold seconds (inside every reply timeout); later ones answer at once.
    Counts connections and the messages it took."""

    def __init__(self, hold):
        self.hold, self.connections, self.taken = hold, 0, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(c, self.connections == 1),
                             daemon=True).start()

    def serve(self, c, slow):
        f = c.makefile("rb")
        try:
            c.sendall(b"220 slow.far.test ESMTP\r\n")
            for line in f:
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    c.sendall(b"250 slow.far.test\r\n")
                elif verb == b"RCPT":
                    if slow:
                        time.sleep(self.hold)
                    c.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go\r\n")
                    for body in f:
                        if body == b".\r\n":
                            break
                    self.taken += 1
                    c.sendall(b"250 taken\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def test_a_delivery_that_outlasts_its_claim_is_not_started_twice(smtpd_factory, dns_port):
    """The claim on a row is extended while its delivery goes on: a server
    that takes longer than [queue] claim_lease to answer RCPT (but less
    than the reply timeout) gets the message once, on one connection, not
    a second copy from the next claim."""
    server = SlowRcptServer(hold=35)
    try:
        d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{dns_port}",
                             "queue.smtp_port": server.port, "queue.claim_lease": "10s"})
        d.ctl("alias", "add", "fwd", "friend@far.test")
        send(d, [f"fwd@{DOMAIN}"], "slow")
        wait_rows(d, lambda r: r == [], timeout=60)
        assert (server.connections, server.taken) == (1, 1), d.log()[-3000:]
        assert d.log().count("to=<friend@far.test> relay=mx status=sent") == 1
    finally:
        server.close()


class LoopZone(BaseResolver):
    """loop.test: its only MX is this server (127.0.0.1); backup.test: MX 10
    at 127.0.0.2 (down), MX 20 this server."""

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = request.q.qtype
        mx = {"loop.test.": [(10, "mx.loop.test.")],
              "backup.test.": [(10, "primary.backup.test."), (20, "mx.loop.test.")]}
        a = {"mx.loop.test.": "127.0.0.1", "primary.backup.test.": "127.0.0.2"}
        if name in mx and qtype == QTYPE.MX:
            for pref, host in mx[name]:
                reply.add_answer(RR(name, QTYPE.MX, ttl=60, rdata=MX(host, pref)))
        elif name in a and qtype == QTYPE.A:
            reply.add_answer(RR(name, QTYPE.A, ttl=60, rdata=A(a[name])))
        elif name not in mx and name not in a:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.mark.parametrize("listen", ["127.0.0.1", "0.0.0.0"])
def test_an_mx_that_is_this_server_is_a_loop_not_a_delivery(smtpd_factory, listen):
    """RFC 5321 §5.1: mail whose best MX is this server fails at once with
    a loop (5.4.6), never sent to ourselves; an MX host that is this
    server, and any no better, is dropped, so with the better one down the
    mail waits for it."""
    with dns_zone(LoopZone()) as port:
        d = smtpd_factory(start=False, **{"dns.servers": f"127.0.0.1:{port}",
                                          "queue.retry_initial": "1h", "listen_host": listen})
        d.smtpd_extra["queue.smtp_port"] = d.mx
        d.write_config(d.smtpd_extra)
        d.start()
        # With a wildcard listener 127.0.0.2 is this server too: no backup case.
        backup = ["v@backup.test"] if listen == "127.0.0.1" else []
        d.ctl("alias", "add", "fwd", "u@loop.test", *backup)
        send(d, [f"fwd@{DOMAIN}"], "round and round", sender=f"alice@{DOMAIN}")
        deadline = time.monotonic() + 10
        while not any("5.4.6" in d.export("alice", m["uid"]).decode()
                      for m in d.mailbox("alice")):
            assert time.monotonic() < deadline, d.log()[-3000:]
            time.sleep(0.1)
        log = d.log()
        assert "mail for loop.test loops back to myself: its MX host mx.loop.test is" \
            " this server" in log, log[-3000:]
        assert "Relay access denied" not in log and "Too many hops" not in log
        if backup:
            [(rcpt, status, _, error)] = wait_rows(d, lambda r: len(r) == 1 and r[0][2] > 0)
            assert (rcpt, status) == ("v@backup.test", 0), (rcpt, status, error)
            assert error.startswith("primary.backup.test: connection error"), error


@pytest.mark.parametrize("domain", ["dotmx.test", "litmx.test"])
def test_mx_records_that_name_no_host_fail_at_once(outbound, domain):
    """RFC 5321 §5.1: MX records none of which is usable (MX 10 ".", an
    address where a host name belongs) are an error, bounced at once
    (5.4.4), not retried for the queue's lifetime nor sent to the address."""
    outbound.ctl("alias", "add", "fwd", f"u@{domain}")
    send(outbound, [f"fwd@{DOMAIN}"], "nowhere", sender=f"alice@{DOMAIN}")
    deadline = time.monotonic() + 10
    while not [m for m in outbound.mailbox("alice")
               if b"5.4.4" in outbound.export("alice", m["uid"])]:
        assert time.monotonic() < deadline, outbound.log()[-3000:]
        time.sleep(0.1)
    assert f"{domain}: its MX records name no valid host" in outbound.log()
    assert outbound.sink.messages == []
