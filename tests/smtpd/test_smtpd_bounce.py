"""Bounces and SRS (SPEC §6, its last two bullets), end to end.

A real DNS server on loopback (dnslib) gives the outside test domains an MX
that is an SMTP sink on loopback (aiosmtpd); the sink tells destinations
apart by recipient and refuses the ones it is told to.

Delivery status notifications (RFC 3464): a refused outside recipient
makes one multipart/report from MAILER-DAEMON with a null sender, to a
local sender's mailbox or out to a remote sender's MX; a failed message
whose sender is null is never bounced, the postmaster gets a copy.

SRS: mail from an outside sender forwarded to an outside member leaves
with an SRS0 (or SRS1) sender of ours, whose hash the tests check with
their own HMAC-SHA1; bounces to our SRS addresses are accepted on the MX
port and routed back; forged, expired and malformed ones are unknown
users; with no secret nothing is rewritten and every SRS address is
refused.
"""
import base64
import email
import email.policy
import email.utils
import hashlib
import hmac
import json
import re
import smtplib
import time

import pytest
from dnslib import A, MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver

from outside import dns_zone, sink_server
from smtpd_util import DOMAIN, HOSTNAME, LOCAL_USERS, Raw, free_port, headers

SECRET = "bounce-test-secret-0123456789"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
DAY = 86400
# The test domains whose MX is the sink (mx.<domain> -> 127.0.0.1).
SINK_DOMAINS = ("far.test", "near.test", "hop.test", "orig.test", "other.test")
NULL_PATHS = ("", "<>")     # aiosmtpd keeps "<>" for MAIL FROM:<>


# -- the outside world ---------------------------------------------------------

class Zone(BaseResolver):
    """Every name of SINK_DOMAINS has an MX mx.<name> whose A is 127.0.0.1;
    anything else is NXDOMAIN."""

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        qtype = request.q.qtype
        if name in SINK_DOMAINS:
            if qtype == QTYPE.MX:
                reply.add_answer(RR(name + ".", QTYPE.MX, ttl=60, rdata=MX(f"mx.{name}.", 10)))
            return reply
        if name.startswith("mx.") and name[3:] in SINK_DOMAINS:
            if qtype == QTYPE.A:
                reply.add_answer(RR(name + ".", QTYPE.A, ttl=60, rdata=A("127.0.0.1")))
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
def make(smtpd_factory, dns_port, sink):
    """make(secret=None) -> a daemon whose DNS is the zone above and whose
    outgoing SMTP port is the sink's, with [queue] srs_secret = secret."""
    def start(secret=None, start=True):
        extra = {"dns.servers": f"127.0.0.1:{dns_port}", "queue.smtp_port": sink.port,
                 "queue.retry_initial": "1s"}
        if secret is not None:
            extra["queue.srs_secret"] = secret
        d = smtpd_factory(start=start, **extra)
        d.sink = sink
        return d
    return start


# -- helpers -----------------------------------------------------------------------

def message(subject, sender="someone@near.test", to=f"fwd@{DOMAIN}", body="hello there"):
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n\r\n{body}\r\n")


def send(d, sender, rcpts, subject):
    """One message on the MX port; sender "" is the null path."""
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
        s.sendmail(sender, rcpts, message(subject, sender or "mailer-daemon@near.test"))


def rcpt_reply(d, rcpt, sender=""):
    """The MX port's reply to RCPT TO:<rcpt> after MAIL FROM:<sender>."""
    with Raw(d.mx) as c:
        assert c.cmd("EHLO client.near.test").code == 250
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        c.cmd("QUIT")
        return r


def send_bounce(d, rcpt, subject="bounce"):
    """A bounce from outside (MAIL FROM:<>) to rcpt on the MX port."""
    with Raw(d.mx) as c:
        assert c.cmd("EHLO mx.far.test").code == 250
        assert c.cmd("MAIL FROM:<>").code == 250
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(message(subject, "MAILER-DAEMON@mx.far.test", rcpt, "your message failed")
               + ".\r\n")
        r = c.reply()
        assert r.code == 250, r
        c.cmd("QUIT")


def queue_rows(d):
    return d.sql("SELECT sender, recipient, status, last_error FROM queue ORDER BY id")


def wait_queue_empty(d, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        r = queue_rows(d)
        if r == []:
            return
        assert time.monotonic() < deadline, f"queue rows: {r}\n{d.log()[-3000:]}"
        time.sleep(0.1)


def parsed(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def wait_mail(d, login, n=1, timeout=15):
    """The raw messages of a mailbox once it holds at least n."""
    deadline = time.monotonic() + timeout
    while True:
        msgs = d.messages(login)
        if len(msgs) >= n:
            return msgs
        assert time.monotonic() < deadline, f"{login} has {len(msgs)} of {n}\n{d.log()[-3000:]}"
        time.sleep(0.1)


def report_parts(dsn):
    """(text/plain, delivery-status blocks, text/rfc822-headers) of a report."""
    assert dsn.get_content_type() == "multipart/report", dsn.get_content_type()
    assert dsn.get_param("report-type") == "delivery-status"
    parts = list(dsn.iter_parts())
    # RFC 3464 §2 / RFC 6522: human part first, then the report, then the original.
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/delivery-status", "text/rfc822-headers"], parts
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list) and len(blocks) >= 2, blocks
    return parts[0], blocks, parts[2]


def unfold(value):
    return " ".join(str(value).split())


def srs_hash(secret, *pieces):
    mac = hmac.new(secret.encode(), "".join(pieces).lower().encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()[:4]


def srs_stamp(t):
    day = int(t // DAY) % 1024
    return B32[day >> 5] + B32[day & 31]


def srs0(secret, local, domain, t, at=DOMAIN):
    stamp = srs_stamp(t)
    return f"SRS0={srs_hash(secret, stamp, domain, local)}={stamp}={domain}={local}@{at}"


def other_users_empty(d, *but):
    return {u: d.mailbox(u) for u in LOCAL_USERS if u not in but} == \
        {u: [] for u in LOCAL_USERS if u not in but}


# -- delivery status notifications ---------------------------------------------------

def test_refusal_bounces_once_to_a_local_sender(make):
    d = make(SECRET)
    refusal = "550 5.1.1 <gone@far.test>: Recipient address rejected: no such user here"
    d.sink.always["gone@far.test"] = refusal
    d.ctl("alias", "add", "doomed", "gone@far.test")
    before = time.time()
    send(d, f"alice@{DOMAIN}", [f"doomed@{DOMAIN}"], "the doomed original")
    [raw] = wait_mail(d, "alice")
    after = time.time()

    # Stored with a null envelope sender.
    assert headers(raw, "Return-Path") == ["<>"], raw[:500]
    dsn = parsed(raw)
    name, addr = email.utils.parseaddr(str(dsn["From"]))
    assert addr == f"MAILER-DAEMON@{HOSTNAME}" and name == "Mail Delivery System", dsn["From"]
    assert email.utils.parseaddr(str(dsn["To"]))[1] == f"alice@{DOMAIN}"
    assert dsn["Subject"] == "Undelivered Mail Returned to Sender"
    assert dsn["Auto-Submitted"] == "auto-replied"
    text, blocks, original = report_parts(dsn)

    assert "gone@far.test" in text.get_content()
    per_msg, rcpts = blocks[0], blocks[1:]
    assert per_msg["Reporting-MTA"] == f"dns; {HOSTNAME}"
    arrival = email.utils.parsedate_to_datetime(per_msg["Arrival-Date"]).timestamp()
    assert before - 2 <= arrival <= after + 1, per_msg["Arrival-Date"]
    [r] = rcpts
    assert r["Final-Recipient"] == "rfc822; gone@far.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert r["Remote-MTA"] == "dns; mx.far.test", r["Remote-MTA"]
    assert unfold(r["Diagnostic-Code"]) == f"smtp; {refusal}"
    last = email.utils.parsedate_to_datetime(r["Last-Attempt-Date"]).timestamp()
    assert arrival <= last <= after + 1

    head = original.get_content()
    assert "Subject: the doomed original" in head
    assert "Message-ID: <the.doomed.original@test>" in head
    assert "hello there" not in head        # the header block only

    # The failed row went with its bounce; nothing went out; no second one.
    wait_queue_empty(d)
    time.sleep(3)
    assert len(d.mailbox("alice")) == 1
    assert d.sink.messages == []
    assert queue_rows(d) == []
    assert other_users_empty(d, "alice")


@pytest.mark.parametrize("members", [("gone1@far.test", "gone2@far.test"),
                                     ("gone@far.test", "gone@near.test")],
                         ids=["one-domain", "two-domains"])
def test_two_refused_recipients_make_one_report(make, members):
    d = make()
    for m in members:
        d.sink.always[m] = f"550 5.1.1 <{m}>: unknown"
    d.ctl("alias", "add", "pair", *members)
    send(d, f"bob@{DOMAIN}", [f"pair@{DOMAIN}"], "to a pair")
    wait_mail(d, "bob")
    wait_queue_empty(d)
    time.sleep(2)
    reports = [report_parts(parsed(m))[1] for m in d.messages("bob")]
    assert len(reports) == 1, \
        [[b["Final-Recipient"] for b in blocks[1:]] for blocks in reports]
    [blocks] = reports
    finals = sorted(b["Final-Recipient"] for b in blocks[1:])
    assert finals == sorted(f"rfc822; {m}" for m in members)
    for b in blocks[1:]:
        assert b["Action"] == "failed" and b["Status"] == "5.1.1"
        assert b["Final-Recipient"].split("; ")[1] in unfold(b["Diagnostic-Code"])


def test_remote_sender_gets_its_report_through_its_mx(make):
    d = make(SECRET)
    d.sink.always["gone@far.test"] = "550 5.1.1 <gone@far.test>: unknown"
    d.ctl("alias", "add", "fwd", "gone@far.test")
    send(d, "someone@near.test", [f"fwd@{DOMAIN}"], "from far away")
    [(frm, tos, content)] = d.sink.wait(1, log=d.log)
    assert frm in NULL_PATHS, frm
    assert tos == ["someone@near.test"]
    dsn = parsed(content)
    assert email.utils.parseaddr(str(dsn["From"]))[1] == f"MAILER-DAEMON@{HOSTNAME}"
    _, blocks, original = report_parts(dsn)
    [r] = blocks[1:]
    assert r["Final-Recipient"] == "rfc822; gone@far.test" and r["Status"] == "5.1.1"
    assert "Subject: from far away" in original.get_content()
    wait_queue_empty(d)
    time.sleep(2)
    assert len(d.sink.messages) == 1
    assert other_users_empty(d)
    # The log ties the report's own delivery to the message it reports on.
    log = d.log()
    m = re.search(r"^\S+ umbox-smtpd info: (\S+): to=<gone@far\.test> relay=mx status=failed",
                  log, re.M)
    b = re.search(r"^\S+ umbox-smtpd info: %s: sender=<someone@near\.test> bounce (\S+) sent"
                  r" for 1 recipient$" % re.escape(m.group(1)), log, re.M)
    assert b, log[-3000:]
    assert re.search(r"^\S+ umbox-smtpd info: %s: to=<someone@near\.test> relay=mx status=sent"
                     % re.escape(b.group(1)), log, re.M), log[-3000:]


def test_a_failed_report_is_not_bounced(make):
    d = make()
    d.sink.always["gone@far.test"] = "550 5.1.1 <gone@far.test>: unknown"
    d.sink.always["someone@near.test"] = "550 5.1.1 <someone@near.test>: no bounces here"
    d.ctl("alias", "add", "fwd", "gone@far.test")
    send(d, "someone@near.test", [f"fwd@{DOMAIN}"], "bounces nowhere")
    [raw] = wait_mail(d, "admin")
    assert headers(raw, "Return-Path") == ["<>"]
    copy = parsed(raw)
    assert copy["Subject"] == "Undelivered Mail Returned to Sender"
    _, blocks, original = report_parts(copy)
    assert [b["Final-Recipient"] for b in blocks[1:]] == ["rfc822; gone@far.test"]
    assert "Subject: bounces nowhere" in original.get_content()
    log = d.log()
    assert "a message with a null sender failed (" in log
    assert "it is not bounced, the postmaster gets a copy" in log
    assert "to=<someone@near.test> a message with a null sender failed" in log
    wait_queue_empty(d)
    time.sleep(3)
    assert len(d.mailbox("admin")) == 1
    assert d.sink.messages == []
    assert other_users_empty(d, "admin")
    assert queue_rows(d) == []


def test_null_sender_failure_goes_to_the_postmaster_only(make):
    d = make(SECRET)
    d.sink.always["gone@far.test"] = "550 5.1.1 <gone@far.test>: unknown"
    d.ctl("alias", "add", "mixed", "bob", "gone@far.test")
    send(d, "", [f"mixed@{DOMAIN}"], "null and doomed")
    [copy] = wait_mail(d, "admin")
    assert headers(copy, "Return-Path") == ["<>"]
    assert parsed(copy)["Subject"] == "null and doomed"
    assert "to=<gone@far.test> a message with a null sender failed (" in d.log()
    assert "it is not bounced, the postmaster gets a copy" in d.log()
    wait_queue_empty(d)
    time.sleep(3)
    assert len(d.mailbox("admin")) == 1
    assert [m["subject"] for m in d.mailbox("bob")] == ["null and doomed"]
    assert other_users_empty(d, "admin", "bob")
    assert d.sink.messages == []
    assert queue_rows(d) == []


def test_report_to_a_local_alias_reaches_only_its_mailboxes_here(make):
    """A sender at a local domain that is an alias with outside members
    (forged by anyone on the MX port) gets its report in the alias's
    mailboxes here only; with none, the postmaster's.  The outside members
    never get it: one failure cannot be copied to all of them."""
    d = make(SECRET)
    d.sink.always["gone@far.test"] = "550 5.1.1 <gone@far.test>: unknown"
    d.ctl("alias", "add", "fwd", "gone@far.test")
    d.ctl("alias", "add", "crew", "bob", "x1@other.test", "x2@other.test")
    d.ctl("alias", "add", "outonly", "x3@other.test")
    send(d, f"crew@{DOMAIN}", [f"fwd@{DOMAIN}"], "from the crew")
    send(d, f"outonly@{DOMAIN}", [f"fwd@{DOMAIN}"], "from outside only")
    [to_bob] = wait_mail(d, "bob")
    [to_admin] = wait_mail(d, "admin")
    for raw, subject in ((to_bob, "from the crew"), (to_admin, "from outside only")):
        dsn = parsed(raw)
        assert dsn["Subject"] == "Undelivered Mail Returned to Sender"
        _, _, original = report_parts(dsn)
        assert f"Subject: {subject}" in original.get_content()
    wait_queue_empty(d)
    time.sleep(2)
    assert d.sink.messages == []
    assert other_users_empty(d, "admin", "bob")


def test_report_to_an_address_literal_goes_to_the_postmaster(make):
    """A sender at an address literal (anyone may give one) would have the
    report delivered to whatever host it names, this appliance's LAN or
    loopback included: it goes to the postmaster instead."""
    d = make(SECRET)
    d.sink.always["gone@far.test"] = "550 5.1.1 <gone@far.test>: unknown"
    d.ctl("alias", "add", "fwd", "gone@far.test")
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
        s.sendmail("x@[127.0.0.1]", [f"fwd@{DOMAIN}"], message("from a literal", "x@[127.0.0.1]"))
    [raw] = wait_mail(d, "admin")
    assert parsed(raw)["Subject"] == "Undelivered Mail Returned to Sender"
    wait_queue_empty(d)
    assert "is an address literal: the report goes to the postmaster" in d.log()
    assert [m for m in d.sink.messages if m[1] != ["gone@far.test"]] == []


@pytest.mark.parametrize("aliases", [
    [("postmaster", "itadmin@other.test")],
    [("postmaster", "pm-out@other.test"), ("admin", "admin-out@other.test")],
], ids=["postmaster-alias-outside", "admin-login-forwarded-too"])
def test_postmaster_copies_reach_the_login_mailbox_past_outside_aliases(make, aliases):
    """A postmaster alias whose members are all outside cannot take a copy
    of a failed null-sender message, nor can an alias named like the
    [general] postmaster login that forwards it outside (as users do):
    the login's own mailbox gets it rather than nobody."""
    d = make(SECRET)
    d.sink.always["gone@far.test"] = "550 5.1.1 <gone@far.test>: unknown"
    for name, member in aliases:
        d.ctl("alias", "add", name, member)
    d.ctl("alias", "add", "fwd", "gone@far.test")
    send(d, "", [f"fwd@{DOMAIN}"], "null past outside aliases")
    [copy] = wait_mail(d, "admin")
    assert parsed(copy)["Subject"] == "null past outside aliases"
    wait_queue_empty(d)
    assert "the bounce is dropped" not in d.log()
    assert d.sink.messages == []


def test_a_sender_past_the_resolver_limits_does_not_hold_up_other_reports(make):
    """A failed message whose sender is an alias that cannot be resolved
    (more than 1,000 addresses) has its report go to the postmaster, said
    in the log; the reports of later failures go out as ever (they waited
    behind it for good, silently)."""
    d = make(SECRET)
    d.sink.always["gone@far.test"] = "550 5.1.1 <gone@far.test>: unknown"
    d.ctl("alias", "add", "fwd", "gone@far.test")
    d.ctl("alias", "add", "huge", *[f"h{i}@other.test" for i in range(1001)])
    send(d, f"huge@{DOMAIN}", [f"fwd@{DOMAIN}"], "from a huge alias")
    send(d, "someone@near.test", [f"fwd@{DOMAIN}"], "from outside")
    [to_admin] = wait_mail(d, "admin")
    _, _, original = report_parts(parsed(to_admin))
    assert "Subject: from a huge alias" in original.get_content()
    deadline = time.monotonic() + 15
    while not [m for m in d.sink.messages if m[1] == ["someone@near.test"]]:
        assert time.monotonic() < deadline, d.log()[-3000:]
        time.sleep(0.1)
    wait_queue_empty(d)
    assert "the sender <huge@example.test> cannot be resolved (more than 1000 final" \
        " targets): the report goes to the postmaster" in d.log()


def test_no_postmaster_mailbox_drops_the_bounce_and_goes_on(make):
    """With no mailbox for the postmaster, a report for a sender who has
    none either is dropped, said so in the log, its rows settled; the
    daemon goes on serving (it used to die on the log line)."""
    d = make()
    d.ctl("user", "del", "admin")
    d.sink.always["gone@far.test"] = "550 5.1.1 <gone@far.test>: unknown"
    d.ctl("alias", "add", "fwd", "gone@far.test")
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
        s.sendmail(f"nobody@{DOMAIN}", [f"fwd@{DOMAIN}"], message("to a sender of nowhere"))
    wait_queue_empty(d, timeout=20)
    deadline = time.time() + 10
    while "the bounce is dropped" not in d.log() and time.time() < deadline:
        time.sleep(0.2)
    assert "has no mailbox here: the bounce is dropped" in d.log()
    time.sleep(1)
    assert d.proc.poll() is None, d.log()[-2000:]
    assert rcpt_reply(d, f"alice@{DOMAIN}").code == 250
    assert queue_rows(d) == []


# -- SRS --------------------------------------------------------------------------------

def test_srs0_round_trip(make):
    d = make(SECRET)
    d.ctl("alias", "add", "fwd", "x@far.test")
    t0 = time.time()
    send(d, "someone@near.test", [f"fwd@{DOMAIN}"], "forwarded")
    [(frm, tos, content)] = d.sink.wait(1, log=d.log)
    t1 = time.time()
    assert tos == ["x@far.test"] and b"Subject: forwarded" in content
    assert frm in (srs0(SECRET, "someone", "near.test", t0),
                   srs0(SECRET, "someone", "near.test", t1)), frm
    wait_queue_empty(d)

    # The receiver bounces it: back to the sender, with a null sender.
    send_bounce(d, frm, "bounced once")
    [_, (bfrm, btos, bcontent)] = d.sink.wait(2, log=d.log)
    assert bfrm in NULL_PATHS and btos == ["someone@near.test"]
    assert b"Subject: bounced once" in bcontent
    # An MTA that lowercased the address: the hash is compared without case.
    send_bounce(d, frm.lower(), "bounced lowercased")
    [_, _, (bfrm, btos, bcontent)] = d.sink.wait(3, log=d.log)
    assert bfrm in NULL_PATHS and btos == ["someone@near.test"]
    assert b"Subject: bounced lowercased" in bcontent
    wait_queue_empty(d)
    assert other_users_empty(d)


def test_long_sender_round_trip(make):
    """An SRS form longer than the 64 octets RFC 5321 promises for a local
    part is still made, and its bounce is still received."""
    d = make(SECRET)
    d.ctl("alias", "add", "fwd", "x@far.test")
    local = "a.rather.long.sender.name.for.this.test.only"
    t0 = time.time()
    send(d, f"{local}@near.test", [f"fwd@{DOMAIN}"], "forwarded long")
    [(frm, tos, _)] = d.sink.wait(1, log=d.log)
    t1 = time.time()
    assert len(frm.split("@")[0]) > 64, frm
    assert frm in (srs0(SECRET, local, "near.test", t0), srs0(SECRET, local, "near.test", t1)), frm
    wait_queue_empty(d)
    send_bounce(d, frm, "bounced long")
    [_, (bfrm, btos, bcontent)] = d.sink.wait(2, log=d.log)
    assert bfrm in NULL_PATHS and btos == [f"{local}@near.test"]
    assert b"Subject: bounced long" in bcontent
    wait_queue_empty(d)


def forged(addr):
    """addr with its first hash character changed (also without case)."""
    h = addr[5]
    new = "0" if h.lower() != "0" else "1"
    return addr[:5] + new + addr[6:]


def test_bad_srs_addresses_are_unknown(make):
    d = make(SECRET)
    now = time.time()
    good = srs0(SECRET, "someone", "near.test", now)
    cases = {
        "valid": (good, 250),
        "21 days old": (srs0(SECRET, "someone", "near.test", now - 21 * DAY), 250),
        "forged": (forged(good), 550),
        "22 days old": (srs0(SECRET, "someone", "near.test", now - 22 * DAY), 550),
        "30 days old": (srs0(SECRET, "someone", "near.test", now - 30 * DAY), 550),
        "5 days ahead": (srs0(SECRET, "someone", "near.test", now + 5 * DAY), 550),
        "other secret": (srs0("not-the-secret", "someone", "near.test", now), 550),
        "garbage": (f"SRS0=xx@{DOMAIN}", 550),
        "garbage SRS1": (f"SRS1=xx@{DOMAIN}", 550),
        "forged SRS1": (f"SRS1=abcd=hop.test==abcd=XY=orig.test=bob@{DOMAIN}", 550),
    }
    got = {}
    for name, (addr, _) in cases.items():
        r = rcpt_reply(d, addr)
        got[name] = r.code if r.code != 550 or r.text.startswith("5.1.1") else r.lines
    assert got == {name: code for name, (_, code) in cases.items()}, cases
    d.assert_nothing_stored()


@pytest.mark.parametrize("secret", [SECRET, None], ids=["srs-on", "srs-off"])
def test_names_that_look_like_srs_are_users_and_aliases(make, secret):
    """A login or alias named like an SRS address (srs1-lab, SRS0-list)
    receives its mail; anything else of that form is still judged as SRS."""
    d = make(secret)
    d.ctl("user", "add", "srs1-lab")
    d.ctl("alias", "add", "SRS0-list", "bob")
    for rcpt in (f"srs1-lab@{DOMAIN}", f"SRS1-LAB@{DOMAIN}", f"srs0-list@{DOMAIN}"):
        assert rcpt_reply(d, rcpt).code == 250, rcpt
    r = rcpt_reply(d, f"srs0-other@{DOMAIN}")
    assert r.code == 550 and r.text.startswith("5.1.1"), r
    send(d, "someone@near.test", [f"srs1-lab@{DOMAIN}", f"srs0-list@{DOMAIN}"], "srs-like names")
    for login in ("srs1-lab", "bob"):
        [raw] = wait_mail(d, login)
        assert parsed(raw)["Subject"] == "srs-like names"


def test_every_srs_address_is_unknown_without_a_secret(make):
    d = make()
    now = time.time()
    for addr in (srs0(SECRET, "someone", "near.test", now), srs0("", "someone", "near.test", now),
                 f"SRS0=xx@{DOMAIN}"):
        r = rcpt_reply(d, addr)
        assert r.code == 550 and r.text.startswith("5.1.1"), (addr, r)
    d.assert_nothing_stored()


def test_srs1_for_a_sender_already_srs0(make):
    d = make(SECRET)
    d.ctl("alias", "add", "fwd", "x@far.test")
    sender = "SRS0=abcd=XY=orig.test=bob@hop.test"
    send(d, sender, [f"fwd@{DOMAIN}"], "twice forwarded")
    [(frm, tos, _)] = d.sink.wait(1, log=d.log)
    assert tos == ["x@far.test"]
    rest = "=abcd=XY=orig.test=bob"
    assert frm == f"SRS1={srs_hash(SECRET, 'hop.test', rest)}=hop.test={rest}@{DOMAIN}", frm
    wait_queue_empty(d)

    send_bounce(d, frm, "back to the first hop")
    [_, (bfrm, btos, bcontent)] = d.sink.wait(2, log=d.log)
    assert bfrm in NULL_PATHS and btos == [sender]
    assert b"Subject: back to the first hop" in bcontent
    wait_queue_empty(d)
    assert other_users_empty(d)


@pytest.mark.parametrize("secret,sender", [
    (SECRET, f"alice@{DOMAIN}"),        # local sender
    (SECRET, f"alice@{DOMAIN.upper()}"),  # domains match without case (SPEC §4)
    (SECRET, ""),                       # the null sender
    (None, "someone@near.test"),        # SRS off
], ids=["local-sender", "local-sender-uppercase", "null-sender", "no-secret"])
def test_senders_that_are_not_rewritten(make, secret, sender):
    d = make(secret)
    d.ctl("alias", "add", "fwd", "x@far.test")
    send(d, sender, [f"fwd@{DOMAIN}"], "kept sender")
    [(frm, tos, _)] = d.sink.wait(1, log=d.log)
    assert tos == ["x@far.test"]
    if sender:
        assert frm.lower() == sender.lower()     # a domain may come back lowercased
    else:
        assert frm in NULL_PATHS
    wait_queue_empty(d)


def test_status_tells_whether_srs_is_on(make):
    off = make(start=False)
    _, out, _ = off.ctl("status")
    out = out.decode()
    assert "SRS:        off" in out
    assert "WARNING: SRS is off" in out
    warning = out[out.index("WARNING: SRS is off"):]
    assert "srs_secret" in warning and "[queue]" in warning and str(off.config) in warning
    assert json.loads(off.ctl("--json", "status")[1])["srs"] is False

    on = make(SECRET, start=False)
    _, out, _ = on.ctl("status")
    out = out.decode()
    assert "SRS:        on" in out
    assert "SRS is off" not in out and "srs_secret" not in out
    js = on.ctl("--json", "status")[1]
    assert json.loads(js)["srs"] is True
    assert SECRET not in out and SECRET.encode() not in js     # never shown
