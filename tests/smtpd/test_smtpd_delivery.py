"""Inbound (MX port) delivery: what lands in which mailbox, with which
headers, and which recipients are refused (SPEC §4)."""
import base64
import json
import re
import smtplib
import socket
import subprocess
import time

import pytest

import backend

from smtpd_util import DOMAIN, HOSTNAME, LOCAL_USERS, PASSWORD, Raw, body, client_part, \
    header_names, headers, simple_message, unverified_context

QUEUED = re.compile(r"^2\.0\.0 Ok: queued as (\S+)$")


def send(port, sender, rcpts, msg, ehlo="client.outside.test"):
    """One transaction with smtplib; returns (refused-rcpt dict, DATA reply)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=ehlo, timeout=15) as s:
        s.ehlo()
        code, _ = s.mail(sender)
        assert code == 250
        refused = {}
        for r in rcpts:
            c, m = s.rcpt(r)
            if c != 250:
                refused[r] = (c, m.decode())
        assert len(refused) < len(rcpts), refused
        reply = s.data(msg)
        return refused, (reply[0], reply[1].decode())


def only_message(d, login):
    entries = d.mailbox(login)
    assert len(entries) == 1, entries
    return d.export(login, entries[0]["uid"])


def counts(d):
    return {u: len(d.mailbox(u)) for u in LOCAL_USERS}


def test_smtplib_delivery_adds_trace_headers_and_queue_id(smtpd):
    msg = simple_message("hello alice", "Line one.\r\nLine two.")
    refused, (code, text) = send(smtpd.mx, "sender@outside.test", [f"alice@{DOMAIN}"], msg)
    assert refused == {}
    assert code == 250
    m = QUEUED.match(text)
    assert m, text
    qid = m.group(1)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", qid)

    assert counts(smtpd) == {"admin": 0, "alice": 1, "bob": 0, "carol": 0}
    stored = only_message(smtpd, "alice")
    names = header_names(stored)
    # Exactly one of each trace header, on top, before the client's headers.
    assert names.count("return-path") == 1
    assert names.count("delivered-to") == 1
    assert names.count("received") == 1
    assert set(names[:3]) == {"return-path", "delivered-to", "received"}
    assert headers(stored, "Return-Path") == ["<sender@outside.test>"]
    assert headers(stored, "Delivered-To") == [f"alice@{DOMAIN}"]
    received = headers(stored, "Received")[0]
    assert HOSTNAME in received
    assert "127.0.0.1" in received
    # The client's message follows, byte for byte.
    assert client_part(stored) == msg.encode()
    assert body(stored) == b"Line one.\r\nLine two.\r\n"
    assert b"\n" not in stored.replace(b"\r\n", b"")


def test_swaks_delivery(smtpd):
    p = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{smtpd.mx}", "--from", "someone@outside.test",
         "--to", f"bob@{DOMAIN}", "--helo", "swaks.outside.test",
         "--header", "Subject: via swaks", "--body", "swaks body"],
        capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as \S+", p.stdout), p.stdout
    assert counts(smtpd) == {"admin": 0, "alice": 0, "bob": 1, "carol": 0}
    stored = only_message(smtpd, "bob")
    assert headers(stored, "Subject") == ["via swaks"]
    assert headers(stored, "Return-Path") == ["<someone@outside.test>"]
    assert headers(stored, "Delivered-To") == [f"bob@{DOMAIN}"]
    assert len(headers(stored, "Received")) == 1
    assert b"swaks body" in body(stored)


def test_each_transaction_stored_once_with_distinct_queue_ids(smtpd):
    ids = []
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.ehlo()
        for i in range(3):
            s.mail("sender@outside.test")
            s.rcpt(f"alice@{DOMAIN}")
            code, text = s.data(simple_message(f"n{i}"))
            assert code == 250
            ids.append(QUEUED.match(text.decode()).group(1))
    assert len(set(ids)) == 3
    subjects = sorted(e["subject"] for e in smtpd.mailbox("alice"))
    assert subjects == ["n0", "n1", "n2"]


@pytest.mark.parametrize("rcpt", [f"100@{DOMAIN}", "alice@EXAMPLE.TEST", "Alice@Example.Test"])
def test_extension_and_case_insensitive_domain(smtpd, rcpt):
    refused, (code, _) = send(smtpd.mx, "sender@outside.test", [rcpt], simple_message())
    assert refused == {} and code == 250
    assert counts(smtpd) == {"admin": 0, "alice": 1, "bob": 0, "carol": 0}


def test_alias_members_each_get_one_copy(smtpd):
    # crowd -> alice, team (alice bob carol), 101 (bob): each once.
    refused, (code, _) = send(smtpd.mx, "sender@outside.test", [f"crowd@{DOMAIN}"],
                              simple_message("to the crowd"))
    assert refused == {} and code == 250
    assert counts(smtpd) == {"admin": 0, "alice": 1, "bob": 1, "carol": 1}
    for login in ("alice", "bob", "carol"):
        stored = only_message(smtpd, login)
        assert headers(stored, "Subject") == ["to the crowd"]
        assert len(headers(stored, "Received")) == 1
        assert len(headers(stored, "Delivered-To")) == 1


def test_same_mailbox_twice_in_one_transaction_gets_one_copy(smtpd):
    refused, (code, _) = send(smtpd.mx, "sender@outside.test",
                              [f"alice@{DOMAIN}", f"100@{DOMAIN}", f"team@{DOMAIN}"],
                              simple_message("dedup"))
    assert refused == {} and code == 250
    assert counts(smtpd) == {"admin": 0, "alice": 1, "bob": 1, "carol": 1}


@pytest.mark.parametrize("rcpt", ["postmaster", f"postmaster@{DOMAIN}", "PostMaster@Example.TEST",
                                  f'"postmaster"@{DOMAIN}', '"postmaster"'])
def test_postmaster_goes_to_configured_admin(smtpd, rcpt):
    refused, (code, _) = send(smtpd.mx, "sender@outside.test", [rcpt], simple_message())
    assert refused == {} and code == 250
    assert counts(smtpd) == {"admin": 1, "alice": 0, "bob": 0, "carol": 0}


def test_unknown_local_recipient_550_and_outside_554(smtpd):
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.ehlo("client.outside.test")
        assert s.mail("sender@outside.test")[0] == 250
        code, text = s.rcpt(f"nobody@{DOMAIN}")
        assert (code, text.split()[0]) == (550, b"5.1.1"), text
        code, text = s.rcpt("someone@outside.test")
        assert (code, text.split()[0]) == (554, b"5.7.1"), text
        code, text = s.rcpt(f"someone@sub.{DOMAIN}")
        assert (code, text.split()[0]) == (554, b"5.7.1"), text
        # The transaction is still open: a good recipient is accepted.
        assert s.rcpt(f"alice@{DOMAIN}")[0] == 250
        assert s.data(simple_message())[0] == 250
    assert smtpd.queue() == []
    assert counts(smtpd) == {"admin": 0, "alice": 1, "bob": 0, "carol": 0}


def test_null_sender_gets_empty_return_path(smtpd):
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.ehlo("bounces.outside.test")
        assert s.mail("<>")[0] == 250
        assert s.rcpt(f"alice@{DOMAIN}")[0] == 250
        assert s.data(simple_message("a bounce"))[0] == 250
    stored = only_message(smtpd, "alice")
    assert headers(stored, "Return-Path") == ["<>"]


def test_received_header_names_the_client_and_protocol(smtpd):
    send(smtpd.mx, "sender@outside.test", [f"alice@{DOMAIN}"], simple_message(),
         ehlo="helo-name.outside.test")
    [received] = headers(only_message(smtpd, "alice"), "Received")
    assert received.startswith("from helo-name.outside.test"), received
    assert "[127.0.0.1]" in received
    assert f"by {HOSTNAME}" in received
    assert re.search(r"\bwith ESMTP\b", received), received
    # RFC 5322 date at the end, after the semicolon.
    assert re.search(r"; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", received), received


def test_received_id_is_the_announced_queue_id(smtpd):
    _, (code, text) = send(smtpd.mx, "sender@outside.test", [f"alice@{DOMAIN}"], simple_message())
    qid = QUEUED.match(text).group(1)
    [received] = headers(only_message(smtpd, "alice"), "Received")
    assert re.search(rf"\bid {re.escape(qid)}\b", received), (qid, received)


@pytest.mark.parametrize("helo", ["(evil", "x;y", "a)b\\c\"d<e>f,g@h"])
def test_received_header_stays_well_formed_whatever_the_helo(smtpd, helo):
    """The HELO name is the client's word: one that would open a comment or
    end the list early (RFC 5322 §3.6.7) is written with "_" for those
    characters, and the date still ends the field."""
    with Raw(smtpd.mx) as c:
        assert c.cmd(f"EHLO {helo}").code == 250
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: odd helo\r\n\r\nx\r\n.\r\n")
        assert c.reply().code == 250
    [received] = headers(only_message(smtpd, "alice"), "Received")
    name = received.split()[1]
    assert re.fullmatch(r"[A-Za-z0-9._:\[\]-]+", name) and len(name) == len(helo), received
    assert received.count("(") == received.count(")") and received.count(";") == 1, received
    assert re.search(r"; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", received)


@pytest.mark.parametrize("content,bdat", [
    (b"just a body line\r\nand another\r\n", None),
    (b"From someone: not a header\r\n", None),
    (b"no-colon-word\r\n", None),
    (b"Subject: split\r\n\r\nbody\r\n", [b"Sub", b"ject: split\r\n\r\nbody\r\n"]),
    (b"\r\nbody after an empty line\r\n", None),
    (b"Subject: plain\r\n\r\nbody\r\n", None),
], ids=["no-header", "space-before-colon", "one-word", "bdat-split-name", "empty-first",
        "header"])
def test_message_without_a_header_gets_the_empty_line(smtpd, content, bdat):
    """A message whose first line is not a header field would run on from
    the Received: field the server adds: it gets the empty line that ends
    the header section, so its text stays the body.  A header, an empty
    first line, and a field name split across BDAT chunks stay as sent."""
    with Raw(smtpd.mx) as c:
        assert c.cmd("EHLO client.outside.test").code == 250
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        if bdat is None:
            assert c.cmd("DATA").code == 354
            c.send(content + b".\r\n")
            assert c.reply().code == 250
        else:
            for i, chunk in enumerate(bdat):
                last = b" LAST" if i == len(bdat) - 1 else b""
                c.send(b"BDAT %d%s\r\n" % (len(chunk), last) + chunk)
                assert c.reply().code == 250
    stored = only_message(smtpd, "alice")
    head, _, rest = stored.partition(b"\r\n\r\n")
    is_header = content[:1] != b"\r" and re.match(rb"[!-9;-~]+:", content)
    if content.startswith(b"\r\n"):
        assert rest == content[2:], stored      # its own empty line ends ours
    elif is_header:
        assert stored.endswith(content) and b"\r\n\r\n" + content not in stored, stored
    else:
        assert rest == content, stored
        assert all(re.match(rb"[!-9;-~]+:|[ \t]", l) for l in head.split(b"\r\n")), head


def test_half_closed_client_gets_its_250_and_221(smtpd):
    """A client that sends the end of its message and QUIT and then shuts
    its side (nc -N, some scripts) is still answered: the 250 after the
    commit, then 221.  Without it, the message would be stored and the
    client, told nothing, would send it again."""
    sock = socket.create_connection(("127.0.0.1", smtpd.mx), timeout=15)
    sock.recv(1000)                                   # the greeting
    sock.sendall(f"EHLO client.outside.test\r\nMAIL FROM:<sender@outside.test>\r\n"
                 f"RCPT TO:<alice@{DOMAIN}>\r\nDATA\r\n".encode())
    got = b""
    while got.count(b"\r\n354 ") == 0 and not got.startswith(b"354 "):
        got += sock.recv(65536)
    sock.sendall(b"Subject: half closed\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    sock.shutdown(socket.SHUT_WR)
    rest = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    sock.close()
    lines = rest.split(b"\r\n")
    assert lines[0].startswith(b"250 2.0.0 Ok: queued as "), lines
    assert lines[1].startswith(b"221 "), lines
    assert [e["subject"] for e in smtpd.mailbox("alice")] == ["half closed"]


def test_trusted_network_may_relay_and_talk_early(smtpd_factory):
    d = smtpd_factory(trusted_networks="127.0.0.0/8")
    with Raw(d.mx, greet=False) as c:
        c.send(b"EHLO pbx.example.test\r\n")          # no wait for the greeting
        assert c.reply().code == 220
        assert c.reply().code == 250
        assert c.cmd("MAIL FROM:<pbx@example.test>").code == 250
        assert c.cmd("RCPT TO:<someone@outside.test>").code == 250
        # Relay tricks at the local domain are local parts, never routes.
        assert c.cmd(f"RCPT TO:<relaytest%outside.test@{DOMAIN}>").code == 550
        assert c.cmd(f"RCPT TO:<outside.test!relaytest@{DOMAIN}>").code == 550
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: from the pbx\r\n\r\nx\r\n.\r\n")
        assert c.reply().code == 250
    assert [(r[1], r[2]) for r in d.queue()] == [("pbx@example.test", "someone@outside.test")]


def test_over_quota_is_452_4_2_2(smtpd):
    smtpd.ctl("user", "set", "bob", "--quota", "2K")
    with Raw(smtpd.mx) as c:
        assert c.cmd("EHLO client.outside.test").code == 250
        # Declared size: refused at RCPT.
        assert c.cmd("MAIL FROM:<sender@outside.test> SIZE=5000").code == 250
        r = c.cmd(f"RCPT TO:<bob@{DOMAIN}>")
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        assert c.cmd("RSET").code == 250
        # Undeclared: refused after the data, nothing stored.
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<bob@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 40 + b".\r\n")
        r = c.reply()
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        # What fits is accepted.
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<bob@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: small\r\n\r\nx\r\n.\r\n")
        assert c.reply().code == 250
    assert [e["subject"] for e in smtpd.mailbox("bob")] == ["small"]


def test_alias_user_extension_precedence_and_live_changes(smtpd):
    """alias > login > extension; changes made with umboxctl while the
    daemon runs apply to the next message (SPEC §2, §4)."""
    def deliver(rcpt, subject):
        refused, (code, _) = send(smtpd.mx, "sender@outside.test", [rcpt], simple_message(subject))
        assert refused == {} and code == 250

    smtpd.ctl("alias", "add", "bob", "carol")          # an alias named like a user
    smtpd.ctl("alias", "add", "100", "admin")          # ... and like an extension
    deliver(f"bob@{DOMAIN}", "to bob")
    deliver(f"100@{DOMAIN}", "to 100")
    subjects = {u: [e["subject"] for e in smtpd.mailbox(u)] for u in LOCAL_USERS}
    assert subjects == {"admin": ["to 100"], "alice": [], "bob": [], "carol": ["to bob"]}

    smtpd.ctl("alias", "del", "bob")
    smtpd.ctl("user", "add", "dave", "--extension", "104")
    deliver(f"bob@{DOMAIN}", "bob again")
    deliver(f"104@{DOMAIN}", "new user")
    assert [e["subject"] for e in smtpd.mailbox("bob")] == ["bob again"]
    assert [e["subject"] for e in smtpd.mailbox("dave")] == ["new user"]

    smtpd.ctl("user", "del", "dave")
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.ehlo()
        s.mail("sender@outside.test")
        code, text = s.rcpt(f"dave@{DOMAIN}")
        assert code == 550, text


def test_directory_changed_by_another_program_is_followed(smtpd):
    """A change made behind umboxctl's back (the sqlite3 shell, psql)
    reaches the daemon's copy of the directory within its poll: a renamed
    user is refused by the old name, taken by the new one at once."""
    def rcpt(login):
        with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
            s.ehlo()
            s.mail("sender@outside.test")
            return s.rcpt(f"{login}@{DOMAIN}")[0]

    assert rcpt("alice") == 250
    backend.write(smtpd.data_dir, "UPDATE users SET login = 'alicia' WHERE login = 'alice'")
    assert rcpt("alicia") == 250
    deadline = time.monotonic() + 10
    while rcpt("alice") != 550:
        assert time.monotonic() < deadline, "the old name is still taken"
        time.sleep(0.2)


def test_helo_client_and_multiple_recipients_one_reply(smtpd):
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        assert s.helo("old.outside.test")[0] == 250
        assert s.mail("sender@outside.test")[0] == 250
        for r in ("alice", "bob", "carol"):
            assert s.rcpt(f"{r}@{DOMAIN}")[0] == 250
        code, text = s.data(simple_message("helo"))
        assert code == 250 and QUEUED.match(text.decode()), text
    for login in ("alice", "bob", "carol"):
        stored = only_message(smtpd, login)
        [received] = headers(stored, "Received")
        assert re.search(r"\bwith SMTP\b", received), received
        assert headers(stored, "Delivered-To") == [f"{login}@{DOMAIN}"]


def test_raw_8bit_header_is_listed_as_valid_json(smtpd):
    """A sender may put raw Latin-1 in a header; umboxctl --json must still
    print UTF-8 (the byte becomes U+FFFD), or every script reading that
    mailbox breaks.  mailbox() parses the bytes strictly."""
    msg = (b"From: s@outside.test\r\nSubject: Caf\xe9 \xff r\xc3\xa9sum\xc3\xa9\r\n"
           b"\r\nbody\r\n")
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.sendmail("s@outside.test", [f"alice@{DOMAIN}"], msg)
    [e] = smtpd.mailbox("alice")
    assert e["subject"] == "Caf\ufffd \ufffd r\u00e9sum\u00e9"


def test_mail_list_shows_what_outsiders_wrote_without_terminal_controls(smtpd):
    """A Subject or From whose encoded words decode to escape sequences
    (clear the screen, set the title) or C1 controls, or that is raw
    Latin-1, is listed with those as '?': umboxctl's table goes to an
    administrator's terminal.  A long Subject is cut at a character."""
    nasty = "=?utf-8?q?hi=1B[2J=1B]0;title=07x=C2=9B1m?="
    long_subject = "=?utf-8?b?" + base64.b64encode(("\u00e9" * 70).encode()).decode() + "?="
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.sendmail("a@outside.test", [f"alice@{DOMAIN}"],
                   f"From: =?utf-8?q?Eve=1B[31m?= <eve@outside.test>\r\nSubject: {nasty}\r\n\r\nx\r\n")
        s.sendmail("a@outside.test", [f"alice@{DOMAIN}"],
                   b"From: Ren\xe9 <r@outside.test>\r\nSubject: " + long_subject.encode() + b"\r\n\r\nx\r\n")
    out = smtpd.ctl("mail", "list", "alice")[1]
    text = out.decode("utf-8")          # valid UTF-8 throughout
    assert not [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0], text
    assert "hi?[2J?]0;title?x?1m" in text and "Eve?[31m" in text and "Ren?" in text
    assert "\u00e9" * 57 + "..." in text and "\u00e9" * 58 not in text
    # JSON keeps the decoded text, escaped.
    subjects = [e["subject"] for e in smtpd.mailbox("alice")]
    assert "hi\x1b[2J\x1b]0;title\x07x\x9b1m" in subjects


def test_mail_list_json_says_null_for_a_header_not_there(smtpd):
    """umboxctl(8): strings are null when unset; an empty Subject is "" ."""
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.sendmail("x@outside.test", [f"alice@{DOMAIN}"], b"X-Only: this\r\n\r\nbody\r\n")
        s.sendmail("x@outside.test", [f"alice@{DOMAIN}"], b"Subject:\r\n\r\nbody\r\n")
    got = [(e["from"], e["subject"]) for e in smtpd.mailbox("alice")]
    assert got == [(None, None), (None, "")], got


def test_mail_show_prints_raw_headers_without_terminal_controls(smtpd):
    """mail show prints the header section as stored, but a raw escape
    sequence or BEL in it (a terminal would act on them) and bytes that
    are not UTF-8 come out as '?', as in mail list; folded lines keep
    their TAB."""
    msg = (b"From: x\x1b]0;pwned\x07 <x@outside.test>\r\n"
           b"Subject: hi \x1b[2J\x1b[31mRED\x1b[0m caf\xc3\xa9 \xff\r\n"
           b"X-Folded: one\r\n\ttwo\r\n\r\nbody\r\n")
    with smtplib.SMTP("127.0.0.1", smtpd.mx, timeout=15) as s:
        s.sendmail("x@outside.test", [f"alice@{DOMAIN}"], msg)
    [e] = smtpd.mailbox("alice")
    out = smtpd.ctl("mail", "show", "alice", e["uid"])[1]
    text = out.decode("utf-8")          # valid UTF-8 throughout
    assert not [c for c in text if (ord(c) < 0x20 and c not in "\t\n") or 0x7f <= ord(c) < 0xa0]
    assert "Subject: hi ?[2J?[31mRED?[0m caf\u00e9 ?\n" in text, text
    assert "From: x?]0;pwned? <x@outside.test>\n" in text and "X-Folded: one\n\ttwo\n" in text
    # The JSON form keeps the header section as it is, escaped.
    shown = json.loads(smtpd.ctl("--json", "mail", "show", "alice", e["uid"])[1])
    assert "\x1b[2J" in shown["headers"]


@pytest.mark.parametrize("value", ["-1", "18446744073709551616", "12s", ""])
def test_voicemail_counts_that_are_not_numbers_are_none(smtpd, value):
    """A forwarded voicemail (from an authenticated client) whose
    X-Umbox-Duration is not a count of seconds lists no duration, not
    4294967295 seconds."""
    msg = (f"From: 555 <555@{DOMAIN}>\r\nSubject: vm\r\nX-Umbox-Kind: voicemail\r\n"
           f"X-Umbox-Caller-ID: 555\r\nX-Umbox-Duration: {value}\r\n\r\nhello\r\n")
    with smtplib.SMTP("127.0.0.1", smtpd.submission, timeout=15) as s:
        s.starttls(context=unverified_context())
        s.login("alice", PASSWORD)
        s.sendmail(f"alice@{DOMAIN}", [f"bob@{DOMAIN}"], msg)
    [v] = json.loads(smtpd.ctl("--json", "voicemail", "list", "bob")[1])
    assert v["duration"] == 0, v
