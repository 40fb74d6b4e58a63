"""The MX port is not an open relay: the 16 sender/recipient combinations
that nmap's smtp-open-relay script tries, from unauthenticated loopback
(which is not trusted unless listed), never relay (SPEC §4)."""
import pytest

from smtpd_util import DOMAIN, Raw

OUT = "external.test"     # nmap's smtp-open-relay.domain
SRV = DOMAIN              # the server's own (local) domain
IP = "[127.0.0.1]"        # the server's address literal

# (MAIL FROM, RCPT TO) exactly as smtp-open-relay.nse builds them.
NMAP_FORMS = [
    ("<>", f"<relaytest@{OUT}>"),
    (f"<antispam@{OUT}>", f"<relaytest@{OUT}>"),
    (f"<antispam@{SRV}>", f"<relaytest@{OUT}>"),
    (f"<antispam@{IP}>", f"<relaytest@{OUT}>"),
    (f"<antispam@{IP}>", f"<relaytest%{OUT}@{IP}>"),
    (f"<antispam@{IP}>", f"<relaytest%{OUT}@{SRV}>"),
    (f"<antispam@{IP}>", f'<"relaytest@{OUT}">'),
    (f"<antispam@{IP}>", f'<"relaytest%{OUT}">'),
    (f"<antispam@{IP}>", f"<relaytest@{OUT}@{IP}>"),
    (f"<antispam@{IP}>", f'<"relaytest@{OUT}"@{IP}>'),
    (f"<antispam@{IP}>", f"<relaytest@{OUT}@{SRV}>"),
    (f"<antispam@{IP}>", f"<@{IP}:relaytest@{OUT}>"),
    (f"<antispam@{IP}>", f"<@{SRV}:relaytest@{OUT}>"),
    (f"<antispam@{IP}>", f"<{OUT}!relaytest>"),
    (f"<antispam@{IP}>", f"<{OUT}!relaytest@{IP}>"),
    (f"<antispam@{IP}>", f"<{OUT}!relaytest@{SRV}>"),
]


@pytest.mark.parametrize("sender,rcpt", NMAP_FORMS, ids=[r for _, r in NMAP_FORMS])
def test_nmap_open_relay_form_is_refused(shared_smtpd, sender, rcpt):
    d = shared_smtpd
    rcpt_reply = None
    with Raw(d.mx) as c:
        assert c.cmd(f"EHLO {OUT}").code == 250
        if c.cmd(f"MAIL FROM:{sender}").code == 250:
            rcpt_reply = c.cmd(f"RCPT TO:{rcpt}")
            if rcpt_reply.code < 400 and c.cmd("DATA").code == 354:
                # Accepted?  Then see what becomes of a message.
                c.send(b"Subject: relay test\r\n\r\nrelay\r\n.\r\n")
                c.reply()
        c.cmd("QUIT")
    d.assert_nothing_stored()
    if rcpt_reply is not None:
        assert 500 <= rcpt_reply.code < 600, (rcpt, rcpt_reply)


def test_relay_forms_in_one_session_then_a_local_recipient(shared_smtpd):
    """Refusals are per recipient: the session and transaction live on."""
    d = shared_smtpd
    with Raw(d.mx) as c:
        assert c.cmd(f"EHLO {OUT}").code == 250
        assert c.cmd(f"MAIL FROM:<antispam@{IP}>").code == 250
        for _, rcpt in NMAP_FORMS:
            r = c.cmd(f"RCPT TO:{rcpt}")
            assert 500 <= r.code < 600, (rcpt, r)
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd("QUIT").code == 221
    d.assert_nothing_stored()
