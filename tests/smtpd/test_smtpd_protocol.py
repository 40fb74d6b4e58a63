"""The SMTP dialogue itself, byte for byte over raw sockets: command line
rules, STARTTLS injection, SIZE, CHUNKING, PIPELINING, the small commands,
and clients that are not SMTP clients (SPEC §4)."""

import pytest

from smtpd_util import DOMAIN, Raw, client_part, header_names, headers


def ehlo(c, name="client.outside.test"):
    r = c.cmd(f"EHLO {name}")
    assert r.code == 250, r
    return r


def assert_alive(c):
    r = c.cmd("NOOP")
    assert r.code == 250, r


def code_and_enhanced(r):
    return r.code, r.text.split()[0] if r.text else ""


# -- STARTTLS --------------------------------------------------------------------

def test_commands_pipelined_behind_starttls_are_discarded(smtpd):
    with Raw(smtpd.submission) as c:
        ehlo(c)
        c.send(b"STARTTLS\r\nMAIL FROM:<a@b>\r\n")
        r = c.reply()
        assert r.code == 220, r
        # Whatever the server thought of the plaintext tail, it must not
        # answer it (in clear) before the handshake.
        assert c.buf == b""
        c.starttls()
        ehlo(c)
        r = c.cmd(f"RCPT TO:<alice@{DOMAIN}>")
        assert r.code == 503, r
        assert_alive(c)


def test_commands_pipelined_behind_starttls_on_mx_port(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        c.send(b"STARTTLS\r\nMAIL FROM:<a@b>\r\n")
        assert c.reply().code == 220
        assert c.buf == b""
        c.starttls()
        ehlo(c)
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 503
        # And a fresh transaction works over TLS.
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: over starttls\r\n\r\nx\r\n.\r\n")
        assert c.reply().code == 250
    [e] = smtpd.mailbox("alice")
    assert e["subject"] == "over starttls"
    assert e["sender"] == "sender@outside.test"


# -- command line limits ------------------------------------------------------------

def test_600_octet_command_line_is_accepted(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        line = "NOOP " + "x" * (600 - len("NOOP ") - 2)
        assert len(line) + 2 == 600
        assert c.cmd(line).code == 250
        # An ESMTP-parameter-heavy MAIL FROM of ~600 octets.
        local = "a" * 60
        line = f"MAIL FROM:<{local}@outside.test> ENVID=" + "e" * 400 + " SIZE=1000"
        r = c.cmd(line)
        assert r.code != 500, r
        assert r.code in (250, 501, 555), r


def test_2100_octet_command_line_is_500_and_session_lives(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        line = "NOOP " + "x" * (2100 - len("NOOP ") - 2)
        r = c.cmd(line)
        assert code_and_enhanced(r) == (500, "5.5.2"), r
        assert_alive(c)
        # The tail of the long line was not taken as a command either.
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250


def test_long_line_tail_never_becomes_a_command(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        # 2,100 octets of padding with a command placed after the 2048 limit.
        pad = "NOOP " + "x" * 2100
        r = c.cmd(pad + " RSET")
        assert code_and_enhanced(r) == (500, "5.5.2"), r
        r = c.cmd("HELP")
        assert r.code == 214, r


def test_nul_in_command_is_500_and_session_lives(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        r = c.cmd(b"NO\x00OP")
        assert code_and_enhanced(r) == (500, "5.5.2"), r
        r = c.cmd(b"MAIL FROM:<a\x00b@outside.test>")
        assert code_and_enhanced(r) == (500, "5.5.2"), r
        assert_alive(c)
        # No transaction was started by the refused MAIL.
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 503


@pytest.mark.parametrize("sep", [b"\n", b"\r"], ids=["LF", "CR"])
def test_bare_lf_or_cr_never_splits_a_command(smtpd, sep):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        c.send(b"NOOP" + sep + b"NOOP\r\n")
        r = c.reply()
        assert code_and_enhanced(r) == (500, "5.5.2"), r
        # The next reply is HELP's: there was exactly one reply to that line.
        r = c.cmd("HELP")
        assert r.code == 214, r


def test_bare_lf_cannot_inject_a_recipient(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        r = c.cmd(f"RCPT TO:<nobody@outside.test>\nRCPT TO:<alice@{DOMAIN}>")
        assert code_and_enhanced(r) == (500, "5.5.2"), r
        r = c.cmd("DATA")
        assert r.code in (503, 554) and r.text.startswith("5.5.1"), r
    assert smtpd.mailbox("alice") == []


# -- SIZE and max_message_size --------------------------------------------------------

def test_huge_size_parameter_is_552_and_session_lives(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        r = c.cmd("MAIL FROM:<a@b.test> SIZE=99999999999999999999")
        assert code_and_enhanced(r) == (552, "5.3.4"), r
        assert_alive(c)
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 503
        assert c.cmd("MAIL FROM:<a@b.test> SIZE=1000").code == 250


def test_size_of_more_than_twenty_digits_is_bad_syntax(smtpd):
    """RFC 1870's size-value is 1*20DIGIT: 21 digits (even leading zeros)
    are a syntax error, not a size."""
    with Raw(smtpd.mx) as c:
        ehlo(c)
        for v in ("9" * 21, "0" * 20 + "1"):
            r = c.cmd(f"MAIL FROM:<a@b.test> SIZE={v}")
            assert code_and_enhanced(r) == (501, "5.5.4"), r
        assert c.cmd("MAIL FROM:<a@b.test> SIZE=" + "0" * 19 + "1").code == 250


def test_size_above_max_message_size_is_552(smtpd_factory):
    d = smtpd_factory(max_message_size="10K")
    with Raw(d.mx) as c:
        r = ehlo(c)
        assert "SIZE 10240" in r.text.split("\n"), r
        r = c.cmd("MAIL FROM:<a@b.test> SIZE=10241")
        assert code_and_enhanced(r) == (552, "5.3.4"), r
        assert c.cmd("MAIL FROM:<a@b.test> SIZE=10240").code == 250


def test_message_over_max_message_size_is_552_after_the_dot(smtpd_factory):
    d = smtpd_factory(max_message_size="10K")
    with Raw(d.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        line = b"y" * 78 + b"\r\n"
        c.send(b"Subject: big\r\n\r\n" + line * 200)   # ~16 KB
        c.send(b".\r\n")
        r = c.reply()
        assert code_and_enhanced(r) == (552, "5.3.4"), r
        # One reply only, and the session is usable afterwards.
        assert_alive(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: small\r\n\r\n" + line * 10 + b".\r\n")
        assert c.reply().code == 250
    assert [e["subject"] for e in d.mailbox("alice")] == ["small"]
    assert d.queue() == []


# -- small commands --------------------------------------------------------------

def test_vrfy_expn_help_noop(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        assert c.cmd("VRFY alice").code == 252
        assert c.cmd(f"VRFY nobody@{DOMAIN}").code == 252
        assert c.cmd("VRFY").code == 501      # RFC 5321 §4.1.1.6: an argument
        r = c.cmd("EXPN team")
        assert r.code == 502, r
        assert "alice" not in r.text and "bob" not in r.text
        assert c.cmd("HELP").code == 214
        assert c.cmd("NOOP").code == 250
        assert c.cmd("NOOP with an argument").code == 250


def test_rset_clears_the_transaction(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 503
        assert c.cmd("DATA").code == 503
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        r = c.cmd("DATA")                         # no recipient yet
        assert r.code in (503, 554) and r.text.startswith("5.5.1"), r
        assert c.cmd("QUIT").code == 221
    assert smtpd.mailbox("alice") == []


def test_commands_out_of_order_are_503(smtpd):
    with Raw(smtpd.mx) as c:
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 503   # before EHLO
        ehlo(c)
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 503
        assert c.cmd("DATA").code == 503
        c.send(b"BDAT 10 LAST\r\n0123456789")       # the chunk is read and dropped
        assert c.reply().code == 503
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 503   # nested MAIL
        assert_alive(c)


def test_unknown_command_is_500_5_5_2(smtpd):
    with Raw(smtpd.mx) as c:
        ehlo(c)
        r = c.cmd("FROBNICATE now")
        assert code_and_enhanced(r) == (500, "5.5.2"), r
        assert_alive(c)


def test_http_request_is_refused_and_disconnected(smtpd):
    with Raw(smtpd.mx) as c:
        c.send(b"GET / HTTP/1.0\r\nHost: mail.example.test\r\n\r\n")
        first = c.reply()
        assert 500 <= first.code < 600, first
        rest = c.wait_closed(timeout=5)
        # No reply per header line: the server hung up.
        assert rest.count(b"\r\n") <= 1, rest


def test_early_talker_on_mx_port_is_554_and_disconnected(smtpd):
    with Raw(smtpd.mx, greet=False) as c:
        c.send(b"EHLO hasty.outside.test\r\n")
        data = c.wait_closed(timeout=5)
    assert data.startswith(b"554 5.5.0"), data
    assert b"220 " not in data.split(b"\r\n")[0]
    assert b"250" not in data


def test_submission_port_greets_at_once(smtpd):
    """Only the MX port holds back its greeting."""
    with Raw(smtpd.submission, greet=False) as c:
        c.send(b"EHLO laptop.example.test\r\n")
        assert c.reply().code == 220
        assert c.reply().code == 250


# -- CHUNKING --------------------------------------------------------------------

def test_bdat_stores_the_exact_bytes(smtpd):
    part1 = b"From: sender@outside.test\r\nSubject: chunks\r\n\r\n"
    # BDAT data is not dot-stuffed: a lone "." line and ".." stay as sent.
    part2 = b"line with a lone . dot\r\n.\r\n..leading dots stay\r\n\r\nend\r\n"
    with Raw(smtpd.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        c.send(f"BDAT {len(part1)}\r\n".encode() + part1)
        assert c.reply().code == 250
        c.send(f"BDAT {len(part2)} LAST\r\n".encode() + part2)
        r = c.reply()
        assert r.code == 250 and "queued as" in r.text, r
        assert_alive(c)
    [e] = smtpd.mailbox("alice")
    stored = smtpd.export("alice", e["uid"])
    assert client_part(stored) == part1 + part2
    names = header_names(stored)
    assert names.count("received") == 1
    assert names.count("return-path") == 1 and names.count("delivered-to") == 1


def test_bdat_with_bare_lf_and_cr_is_one_message(smtpd):
    """Bare CR/LF inside a chunk may be normalised, but never split or end it."""
    data = (b"Subject: bare\r\n\r\nfirst\n.\nMAIL FROM:<evil@x>\r\n"
            b"second\r.\rthird\r\n")
    with Raw(smtpd.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        c.send(f"BDAT {len(data)} LAST\r\n".encode() + data)
        r = c.reply()
        assert r.code == 250 or 500 <= r.code < 600, r
        assert c.cmd("HELP").code == 214     # exactly one reply to the chunk
    entries = smtpd.mailbox("alice")
    assert len(entries) == (1 if r.code == 250 else 0)
    for e in entries:
        stored = smtpd.export("alice", e["uid"])
        assert headers(stored, "Subject") == ["bare"]
        assert b"first" in stored and b"third" in stored
        assert b"MAIL FROM:<evil@x>" in stored


def test_bdat_0_last_ends_the_message(smtpd):
    msg = b"Subject: zero last\r\n\r\nbody\r\n"
    with Raw(smtpd.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<bob@{DOMAIN}>").code == 250
        c.send(f"BDAT {len(msg)}\r\n".encode() + msg)
        assert c.reply().code == 250
        r = c.cmd("BDAT 0 LAST")
        assert r.code == 250 and "queued as" in r.text, r
    [e] = smtpd.mailbox("bob")
    assert client_part(smtpd.export("bob", e["uid"])) == msg


# -- PIPELINING ------------------------------------------------------------------

def test_pipelined_transaction_gets_replies_in_order(smtpd):
    with Raw(smtpd.mx) as c:
        r = ehlo(c)
        assert "PIPELINING" in r.text.split("\n")
        c.send("MAIL FROM:<sender@outside.test>\r\n"
               f"RCPT TO:<alice@{DOMAIN}>\r\n"
               f"RCPT TO:<nobody@{DOMAIN}>\r\n"
               "DATA\r\n")
        replies = c.replies(4)
        assert [r.code for r in replies] == [250, 250, 550, 354], replies
        c.send(b"Subject: pipelined\r\n\r\nx\r\n.\r\nQUIT\r\n")
        assert c.reply().code == 250
        assert c.reply().code == 221
    [e] = smtpd.mailbox("alice")
    assert e["subject"] == "pipelined"


def test_pipelined_whole_session_in_one_write(smtpd):
    with Raw(smtpd.mx) as c:
        c.send("EHLO client.outside.test\r\n"
               "MAIL FROM:<sender@outside.test>\r\n"
               f"RCPT TO:<bob@{DOMAIN}>\r\n"
               "DATA\r\n")
        codes = [c.reply().code for _ in range(4)]
        assert codes == [250, 250, 250, 354]
        c.send(b"Subject: one write\r\n\r\nx\r\n.\r\n"
               b"MAIL FROM:<sender@outside.test>\r\n"
               + f"RCPT TO:<carol@{DOMAIN}>\r\n".encode() + b"DATA\r\n")
        codes = [c.reply().code for _ in range(4)]
        assert codes == [250, 250, 250, 354]
        c.send(b"Subject: second\r\n\r\ny\r\n.\r\nQUIT\r\n")
        assert [c.reply().code for _ in range(2)] == [250, 221]
    assert [e["subject"] for e in smtpd.mailbox("bob")] == ["one write"]
    assert [e["subject"] for e in smtpd.mailbox("carol")] == ["second"]


def test_non_ascii_addresses_need_smtputf8_at_mail_and_rcpt_alike(smtpd):
    """RFC 6531 §3.5: a non-ASCII address in a transaction begun without
    SMTPUTF8 is 553 5.6.7, at RCPT as at MAIL (not a syntax error)."""
    with Raw(smtpd.mx) as c:
        assert c.cmd("EHLO client.example.test").code == 250
        r = c.cmd("MAIL FROM:<j\u00f6rg@outside.test>")
        assert (r.code, r.text[:5]) == (553, "5.6.7"), r
        assert c.cmd("MAIL FROM:<a@outside.test>").code == 250
        r = c.cmd(f"RCPT TO:<j\u00f6rg@{DOMAIN}>")
        assert (r.code, r.text[:5]) == (553, "5.6.7"), r
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250


def test_received_names_a_smtputf8_transaction(smtpd):
    """RFC 6531 §4.3: a message received with SMTPUTF8 says "with UTF8SMTP"
    in its Received: field; one without, "with ESMTP"."""
    with Raw(smtpd.mx) as c:
        assert c.cmd("EHLO client.example.test").code == 250
        for sender, opt in (("j\u00f6rg@outside.test", " SMTPUTF8"), ("a@outside.test", "")):
            assert c.cmd(f"MAIL FROM:<{sender}>{opt}").code == 250
            assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(f"Subject: {'utf8' if opt else 'plain'}\r\n\r\nx\r\n.\r\n".encode())
            assert c.reply().code == 250
    got = {}
    for e in smtpd.mailbox("alice"):
        [received] = headers(smtpd.export("alice", e["uid"]), "Received")
        got[e["subject"]] = received
    assert " with UTF8SMTP id " in got["utf8"], got
    assert " with ESMTP id " in got["plain"], got


def test_smtputf8_after_helo_is_refused(smtpd):
    """RFC 6531 §3.4: SMTPUTF8 only where EHLO offered it; after HELO (no
    extensions) it is 555, and the same MAIL without it goes on."""
    with Raw(smtpd.mx) as c:
        assert c.cmd("HELO client.example.test").code == 250
        r = c.cmd("MAIL FROM:<a@outside.test> SMTPUTF8")
        assert (r.code, r.text[:5]) == (555, "5.5.4"), r
        assert c.cmd("MAIL FROM:<a@outside.test>").code == 250
