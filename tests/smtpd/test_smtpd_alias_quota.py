"""Quota and aliases (SPEC §4, §6): a message is accepted when at least one
of its targets can take it; a local target whose mailbox is full becomes a
deferred queue entry; only when no target can take it is the answer
452 4.2.2, and no reply names an alias's members or anyone's usage."""
import re
import json
import smtplib
import time

import pytest

from smtpd_util import DOMAIN, Raw, simple_message

SENDER = "sender@outside.test"


def used(d, login):
    return json.loads(d.ctl("--json", "user", "show", login)[1])["used"]


def deferred(d):
    """(local login, recipient, last_error) of every queue row for a local mailbox."""
    return d.sql("SELECT u.login, q.recipient, q.last_error FROM queue q"
                 " JOIN users u ON u.id = q.local_user_id ORDER BY q.id")


def remote_rows(d):
    return [r[0] for r in d.sql(
        "SELECT recipient FROM queue WHERE local_user_id IS NULL ORDER BY id")]


def subjects(d, login):
    return [e["subject"] for e in d.mailbox(login)]


def fill_bob(d, quota, size):
    """bob gets a message of about size bytes, then the quota."""
    d.ctl("user", "set", "bob", "--quota", str(quota))
    text = "x" * 70 + "\r\n"
    msg = simple_message("filler", text * (size // len(text)))
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
        s.ehlo("client.outside.test")
        s.mail(SENDER)
        assert s.rcpt(f"bob@{DOMAIN}")[0] == 250
        assert s.data(msg)[0] == 250
    return used(d, "bob")


def assert_private(replies, secrets):
    """No reply text names a full member or a usage figure (as a word of
    its own: a queue ID may hold the same digits)."""
    for r in replies:
        for word in secrets:
            assert not re.search(r"(?<![0-9A-Za-z])" + re.escape(word) + r"(?![0-9A-Za-z])", r), \
                (word, r)


def test_alias_with_one_full_member_is_accepted_and_deferred(smtpd):
    smtpd.ctl("alias", "del-member", "team", "carol")       # team = alice, bob
    quota = 4000
    bob_used = fill_bob(smtpd, quota, 3000)
    assert 3000 <= bob_used < quota
    replies = []
    body = ("y" * 70 + "\r\n") * 20                          # ~1.4K: bob would exceed
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.ehlo("client.outside.test")
        replies.append(s.mail(SENDER)[1].decode())
        code, text = s.rcpt(f"team@{DOMAIN}")
        replies.append(text.decode())
        assert code == 250, text
        code, text = s.data(simple_message("to the team", body))
        replies.append(text.decode())
        assert code == 250, text
    assert_private(replies, ("bob", "101", str(quota), str(bob_used)))

    assert subjects(smtpd, "alice") == ["to the team"]
    assert subjects(smtpd, "bob") == ["filler"]
    assert used(smtpd, "bob") == bob_used
    assert deferred(smtpd) == [("bob", f"bob@{DOMAIN}", "mailbox full")]
    # The details are for the log only.
    assert "bob" in smtpd.log()


def test_direct_recipient_full_is_452_at_rcpt(smtpd):
    quota = 4000
    bob_used = fill_bob(smtpd, quota, 3000)
    with Raw(smtpd.mx) as c:
        assert c.cmd("EHLO client.outside.test").code == 250
        # Would exceed with the declared size.
        assert c.cmd(f"MAIL FROM:<{SENDER}> SIZE=2000").code == 250
        r = c.cmd(f"RCPT TO:<bob@{DOMAIN}>")
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        assert_private([r.text], (str(quota), str(bob_used)))
        # An alias with room elsewhere is still accepted with that size.
        assert c.cmd(f"RCPT TO:<team@{DOMAIN}>").code == 250
        assert c.cmd("RSET").code == 250

        # Already full: refused without a declared size too.
        smtpd.ctl("user", "set", "bob", "--quota", "1000")
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        r = c.cmd(f"RCPT TO:<bob@{DOMAIN}>")
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        r = c.cmd(f"RCPT TO:<101@{DOMAIN}>")
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        assert_private([r.text], ("1000", str(bob_used)))
    assert subjects(smtpd, "bob") == ["filler"]
    assert deferred(smtpd) == []


def test_full_recipient_after_one_with_room_is_accepted_and_deferred(smtpd):
    """The message is stored for alice, so bob's full mailbox does not
    refuse it: his copy waits in the queue, with or without SIZE=."""
    quota = 4000
    bob_used = fill_bob(smtpd, quota, 3000)
    body = ("w" * 70 + "\r\n") * 20
    replies = []
    with Raw(smtpd.mx) as c:
        assert c.cmd("EHLO client.outside.test").code == 250
        # Past the quota with the declared size; then already full, no SIZE=.
        for subject, size, full_rcpt in (("sized", " SIZE=2000", "bob"),
                                         ("unsized", "", "101")):
            if not size:
                smtpd.ctl("user", "set", "bob", "--quota", "1000")
            assert c.cmd(f"MAIL FROM:<{SENDER}>{size}").code == 250
            assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
            r = c.cmd(f"RCPT TO:<{full_rcpt}@{DOMAIN}>")
            replies.append(r.text)
            assert r.code == 250, r
            assert c.cmd("DATA").code == 354
            c.send(simple_message(subject, body).encode() + b".\r\n")
            r = c.reply()
            replies.append(r.text)
            assert r.code == 250, r
    assert_private(replies, ("bob", str(quota), "1000", str(bob_used)))

    assert subjects(smtpd, "alice") == ["sized", "unsized"]
    assert subjects(smtpd, "bob") == ["filler"]
    assert deferred(smtpd) == [("bob", f"bob@{DOMAIN}", "mailbox full"),
                               ("bob", f"bob@{DOMAIN}", "mailbox full")]
    assert "its copy waits in the queue" in smtpd.log()


@pytest.mark.parametrize("room", ["quota lifted", "mail deleted"])
def test_deferred_copy_is_delivered_once_the_mailbox_has_room(smtpd, room):
    """SPEC §6: a full mailbox's copy is delivered as soon as its mailbox
    has room, not at its next scheduled attempt (30 s away by default) or
    the runner's 30 s sweep: whether its quota is raised or mail in it is
    deleted.  The runner looks every second (SQLite); on PostgreSQL the
    change that makes room wakes it."""
    quota = 4000
    fill_bob(smtpd, quota, 3000)
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.sendmail(SENDER, [f"alice@{DOMAIN}", f"bob@{DOMAIN}"],
                   simple_message("wait for room", ("v" * 70 + "\r\n") * 20))
    assert deferred(smtpd) == [("bob", f"bob@{DOMAIN}", "mailbox full")]
    # Its first attempt, at once, found no room: the next is 30 s away.
    deadline = time.monotonic() + 10
    while smtpd.sql("SELECT attempts FROM queue") != [(1,)]:
        assert time.monotonic() < deadline, smtpd.log()[-3000:]
        time.sleep(0.1)
    if room == "quota lifted":
        smtpd.ctl("user", "set", "bob", "--quota", "0")
        want = ["filler", "wait for room"]
    else:
        [filler] = smtpd.mailbox("bob")
        smtpd.ctl("mail", "del", "bob", filler["uid"])
        want = ["wait for room"]
    deadline = time.monotonic() + 5
    while subjects(smtpd, "bob") != want:
        assert time.monotonic() < deadline, smtpd.log()[-3000:]
        time.sleep(0.2)
    assert deferred(smtpd) == []


def test_alias_of_only_a_full_member(smtpd):
    smtpd.ctl("alias", "add", "solo", "bob")
    quota = 4000
    bob_used = fill_bob(smtpd, quota, 3000)
    body = ("z" * 70 + "\r\n") * 20
    secrets = ("bob", "101", str(quota), str(bob_used))
    with Raw(smtpd.mx) as c:
        assert c.cmd("EHLO client.outside.test").code == 250
        # Size unknown at RCPT and the mailbox not yet full: 452 after the data.
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert c.cmd(f"RCPT TO:<solo@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(simple_message("too big", body).encode() + b".\r\n")
        r = c.reply()
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        assert_private([r.text], secrets)

        # Known from SIZE=: at RCPT.
        assert c.cmd(f"MAIL FROM:<{SENDER}> SIZE=2000").code == 250
        r = c.cmd(f"RCPT TO:<solo@{DOMAIN}>")
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        assert_private([r.text], secrets)
        assert c.cmd("RSET").code == 250

        # Already full: at RCPT.
        smtpd.ctl("user", "set", "bob", "--quota", "1000")
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        r = c.cmd(f"RCPT TO:<solo@{DOMAIN}>")
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        assert_private([r.text], secrets)
    # Nothing stored for the refused message: no entry, no queue row.
    assert subjects(smtpd, "bob") == ["filler"]
    assert smtpd.queue() == []


def test_remote_member_takes_what_a_full_local_member_cannot(smtpd):
    smtpd.ctl("alias", "add", "mixed", "bob", "friend@outside.test")
    smtpd.ctl("user", "set", "bob", "--quota", "100")
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.ehlo("client.outside.test")
        s.mail(SENDER)
        code, text = s.rcpt(f"mixed@{DOMAIN}")
        assert code == 250, text
        code, text = s.data(simple_message("mixed", "x" * 200))
        assert code == 250, text
        assert b"bob" not in text and b"friend" not in text
    assert subjects(smtpd, "bob") == []
    assert remote_rows(smtpd) == ["friend@outside.test"]
    assert deferred(smtpd) == [("bob", f"bob@{DOMAIN}", "mailbox full")]
