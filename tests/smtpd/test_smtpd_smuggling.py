"""SMTP smuggling (CVE-2023-51764/5/6): only CRLF "." CRLF ends DATA, so a
bare CR/LF "end of data" followed by a second transaction can never become
a second message (SPEC §4)."""
import pytest

from smtpd_util import DOMAIN, Raw, header_block

# The ten "fake end of data" sequences of the SMTP smuggling research.
SEQUENCES = [
    b"\n.\n",
    b"\r.\r",
    b"\r.\n",
    b"\n.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n\x00.\r\n",
    b"\r\n.\r\r\n",
]

INJECTED = (b"MAIL FROM:<evil@x>\r\n"
            + f"RCPT TO:<alice@{DOMAIN}>\r\n".encode()
            + b"DATA\r\n"
            b"Subject: smuggled\r\n"
            b"\r\n"
            b"smuggled\r\n")


@pytest.mark.parametrize("seq", SEQUENCES, ids=[repr(s)[2:-1] for s in SEQUENCES])
def test_fake_end_of_data_never_splits_a_message(smtpd, seq):
    with Raw(smtpd.mx) as c:
        assert c.cmd("EHLO client.outside.test").code == 250
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"From: sender@outside.test\r\nSubject: real\r\n\r\nreal body" + seq + INJECTED
               + b"\r\n.\r\n")
        first = c.reply()
        c.send(b"QUIT\r\n")
        rest = c.wait_closed(timeout=10)
    transcript = [first.lines[0]] + rest.decode("latin1").split("\r\n")
    accepted = [l for l in transcript if "queued as" in l]
    assert len(accepted) <= 1, transcript
    # Whatever the server made of the data, the injected commands were not
    # answered as commands: exactly one reply to the data, then 221.
    assert first.code == 250 or 400 <= first.code < 600, first
    assert transcript[1].startswith("221"), transcript

    entries = smtpd.mailbox("alice")
    assert len(entries) <= 1, entries
    for e in entries:
        assert e["sender"] != "evil@x", e
        msg = smtpd.export("alice", e["uid"])
        client = [l for l in header_block(msg)
                  if not l.lower().startswith(("return-path:", "delivered-to:", "received:"))
                  and not l[:1] in (" ", "\t")]
        assert client[0] != "Subject: smuggled", msg
        assert "Subject: real" in client, msg
    if first.code == 250:
        assert len(entries) == 1
    else:
        assert entries == []
    assert smtpd.queue() == []
