"""Delivery status notifications as another mail program reads them:
the build's dsn-sample tool writes a report with two recipients (one
refused with 550 5.1.1, one given up on at the end of the queue lifetime),
and Python's email package, which did not come from umbox, parses it."""
import email
import email.policy
import email.utils
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build")))


def sample(*args):
    path = BUILD / "tests" / "tools" / "dsn-sample"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is not built (run make, or set UMBOX_BUILD)")
    p = subprocess.run([str(path), *args], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.fixture(scope="module")
def raw():
    return sample()


@pytest.fixture(scope="module")
def msg(raw):
    return parse(raw)


def test_crlf_only(raw):
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert b"\0" not in raw


def test_top_level(msg):
    assert msg.is_multipart()
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.com"
    assert msg["From"].addresses[0].display_name == "Mail Delivery System"
    assert msg["To"].addresses[0].addr_spec == "alice@example.com"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Message-ID"].startswith("<4F2A9C1B.")
    assert msg["Message-ID"].endswith("@mail.example.com>")
    assert msg["Date"].datetime.timestamp() == 1700432000
    assert not msg.defects


def test_parts(msg):
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    for p in parts:
        assert not p.defects


def test_text(msg):
    text = list(msg.iter_parts())[0]
    assert text.get_content_charset() == "us-ascii"
    body = " ".join(text.get_content().split())
    assert "This is the mail system at host mail.example.com." in body
    assert ("<bob@example.net>: the server mx1.example.net said: "
            "550 5.1.1 <bob@example.net>: no such user") in body
    assert ("<carol@example.org> (expanded from <sales@example.com>): could "
            "not be delivered within 5 days; the last error was: the server "
            "mx.example.org said: 451 4.3.0") in body


def test_delivery_status(msg):
    status = list(msg.iter_parts())[1]
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    assert len(blocks) == 3
    per_msg, bob, carol = blocks
    assert per_msg["Reporting-MTA"] == "dns; mail.example.com"
    assert email.utils.parsedate_to_datetime(
        per_msg["Arrival-Date"]).timestamp() == 1700000000
    assert per_msg["Final-Recipient"] is None

    assert bob["Final-Recipient"] == "rfc822; bob@example.net"
    assert bob["Original-Recipient"] is None
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx1.example.net"
    assert bob["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@example.net>: no such user"
    assert email.utils.parsedate_to_datetime(
        bob["Last-Attempt-Date"]).timestamp() == 1700000400
    assert bob["Will-Retry-Until"] is None

    assert carol["Original-Recipient"] == "rfc822; sales@example.com"
    assert carol["Final-Recipient"] == "rfc822; carol@example.org"
    assert carol["Action"] == "failed"
    assert carol["Status"] == "5.4.7"
    assert carol["Remote-MTA"] == "dns; mx.example.org"
    assert carol["Diagnostic-Code"] == (
        "smtp; 451 4.3.0 temporary failure, please try again later")


def test_original_headers(msg, raw):
    headers = list(msg.iter_parts())[2]
    assert headers["Content-Transfer-Encoding"] == "8bit"
    assert headers.get_content_charset() == "utf-8"
    text = headers.get_content()
    assert "Subject: Quarterly report \u2014 draft" in text
    assert "Message-ID: <draft-7@example.com>" in text
    assert "The body is not part of the report" not in text
    # Kept as it was, 8-bit, not encoded.
    assert "Subject: Quarterly report \u2014 draft\r\n".encode() in raw


def test_delayed():
    msg = parse(sample("delayed"))
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    blocks = list(msg.iter_parts())[1].get_payload()
    assert len(blocks) == 3
    for b in blocks[1:]:
        assert b["Action"] == "delayed"
        assert b["Status"].startswith("4.")
        assert email.utils.parsedate_to_datetime(
            b["Will-Retry-Until"]).timestamp() == 1700432000
    assert blocks[1]["Status"] == "4.2.1"
    assert blocks[2]["Status"] == "4.3.0"
