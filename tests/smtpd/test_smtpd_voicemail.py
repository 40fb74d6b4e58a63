"""A voicemail for a mailbox whose alias forwards outside (SPEC §6, §8):
`umboxctl voicemail deposit` queues the outside member's copy and
umbox-smtpd's queue runner delivers it, audio intact, to the domain's MX
(a dnslib zone on loopback, an aiosmtpd sink as the outside world)."""
import email
import email.policy
import pathlib
import re
import sys
import time

import pytest
from dnslib import A, MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver

from outside import dns_zone, sink_server
from smtpd_util import DOMAIN, free_port

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import media  # noqa: E402


class Zone(BaseResolver):
    """far.test has an MX record pointing at 127.0.0.1; the rest NXDOMAIN."""

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = request.q.qtype
        if name == "far.test.":
            if qtype == QTYPE.MX:
                reply.add_answer(RR(name, QTYPE.MX, ttl=60, rdata=MX("mx.far.test.", 10)))
            return reply
        if name == "mx.far.test.":
            if qtype == QTYPE.A:
                reply.add_answer(RR(name, QTYPE.A, ttl=60, rdata=A("127.0.0.1")))
            return reply
        reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture(scope="module")
def vm_dns_port():
    with dns_zone(Zone()) as port:
        yield port


@pytest.fixture
def vm_sink():
    with sink_server() as s:
        yield s


@pytest.fixture
def outbound(smtpd_factory, vm_dns_port, vm_sink):
    d = smtpd_factory(**{"dns.servers": f"127.0.0.1:{vm_dns_port}",
                         "queue.smtp_port": vm_sink.port, "queue.retry_initial": "1s"})
    d.sink = vm_sink
    return d


def queue_rows(d):
    return d.sql("SELECT recipient FROM queue ORDER BY id")


def wait_queue_empty(d, timeout=20):
    deadline = time.monotonic() + timeout
    while queue_rows(d):
        assert time.monotonic() < deadline, f"queue: {queue_rows(d)}\n{d.log()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.parametrize("keep_copy", [False, True])
def test_forwarded_voicemail_leaves_with_its_audio(outbound, tmp_path, keep_copy):
    members = ["alice", "someone@far.test"] if keep_copy else ["someone@far.test"]
    outbound.ctl("alias", "add", "alice", *members)
    wav = tmp_path / "vm.wav"
    data = media.write_pcm_wav(wav, 4, rate=8000, channels=1, sampwidth=2)
    _, out, _ = outbound.ctl("voicemail", "deposit", "alice", "--audio", wav,
                             "--caller", "2125550147", "--caller-name", "Carl Caller")
    m = re.match(rb"^voicemail deposited: [^,\s]+, 4 s, (\d+) delivered, (\d+) queued\n?$", out)
    assert m, out
    assert (int(m.group(1)), int(m.group(2))) == ((1 if keep_copy else 0), 1)
    outbound.ctl("queue", "flush")

    [(frm, tos, content)] = outbound.sink.wait(1)
    assert tos == ["someone@far.test"]
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg["X-Umbox-Kind"] == "voicemail"
    assert msg["X-Umbox-Caller-ID"] == "2125550147"
    assert msg["X-Umbox-Duration"] == "4"
    assert msg["Subject"] == "Voicemail from Carl Caller (2125550147), 0:04"
    audio = [p for p in msg.walk() if p.get_content_type() == "audio/wav"]
    assert len(audio) == 1
    assert audio[0].get_filename().endswith(".wav")
    assert audio[0].get_content() == data
    wait_queue_empty(outbound)
    assert "to=<someone@far.test> relay=mx status=sent" in outbound.log()

    local = outbound.mailbox("alice")
    if keep_copy:
        assert [e["kind"] for e in local] == ["voicemail"]
        kept = email.message_from_bytes(outbound.export("alice", local[0]["uid"]),
                                        policy=email.policy.default)
        assert [p.get_content() for p in kept.walk()
                if p.get_content_type() == "audio/wav"] == [data]
    else:
        assert local == []
