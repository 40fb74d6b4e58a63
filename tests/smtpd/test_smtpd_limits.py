"""Limits: recipients per message, mail loops (Received count), many
concurrent sessions, connections per IP (SPEC §4)."""
import resource
import select
import socket
import time

import pytest

from smtpd_util import DOMAIN, HOSTNAME, Raw, headers, sanitized_build


def ehlo(c):
    assert c.cmd("EHLO client.outside.test").code == 250


def test_recipient_over_max_recipients_is_452_and_first_ones_get_it(smtpd_factory):
    d = smtpd_factory(max_recipients=5)
    rcpts = ["alice", "bob", "carol", "admin", "100", "101"]  # 6th is over
    with Raw(d.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        codes = [c.cmd(f"RCPT TO:<{r}@{DOMAIN}>") for r in rcpts]
        assert [r.code for r in codes[:5]] == [250] * 5, codes
        assert codes[5].code == 452 and codes[5].text.startswith("4.5.3"), codes[5]
        assert c.cmd("RCPT TO:<postmaster>").code == 452
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: five\r\n\r\nx\r\n.\r\n")
        assert c.reply().code == 250
    # 100 and 101 were the 5th and 6th: alice twice (de-duplicated), bob refused.
    got = {u: [e["subject"] for e in d.mailbox(u)] for u in ("admin", "alice", "bob", "carol")}
    assert got == {"admin": ["five"], "alice": ["five"], "bob": ["five"], "carol": ["five"]}


def three_accepted(c):
    """A transaction with max_recipients (3) accepted: alice, bob, carol."""
    assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
    for r in ("alice", "bob", "carol"):
        assert c.cmd(f"RCPT TO:<{r}@{DOMAIN}>").code == 250


def test_distinct_recipients_over_max_recipients(smtpd_factory):
    d = smtpd_factory(max_recipients=3)
    with Raw(d.mx) as c:
        ehlo(c)
        three_accepted(c)
        r = c.cmd(f"RCPT TO:<admin@{DOMAIN}>")
        assert r.code == 452 and r.text.startswith("4.5.3"), r
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: three\r\n\r\nx\r\n.\r\n")
        assert c.reply().code == 250
        # The limit is per message: the next transaction starts afresh.
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<admin@{DOMAIN}>").code == 250
    assert [len(d.mailbox(u)) for u in ("alice", "bob", "carol", "admin")] == [1, 1, 1, 0]


def test_recipients_past_the_limit_do_not_end_the_session(smtpd_factory):
    """RFC 5321 §4.5.3.1.10: past max_recipients each RCPT gets 452 and the
    client sends those later; they are not the client's errors, so the
    session goes on and the message reaches those accepted (smtplib sends
    every RCPT before it gives up).  Only a flood far past the limit (1000
    more) ends in 421."""
    d = smtpd_factory(max_recipients=3)
    with Raw(d.mx) as c:
        ehlo(c)
        three_accepted(c)
        c.send(f"RCPT TO:<admin@{DOMAIN}>\r\n".encode() * 60)
        codes = [c.reply() for _ in range(60)]
        assert all(r.code == 452 and r.text.startswith("4.5.3") for r in codes), codes
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: three of many\r\n\r\nx\r\n.\r\n")
        assert c.reply().code == 250
        # A flood: after 1000 over the limit they count, and 20 end it.
        three_accepted(c)
        c.send(f"RCPT TO:<admin@{DOMAIN}>\r\n".encode() * 1020)
        codes = [c.reply() for _ in range(1020)]
        assert [r.code for r in codes] == [452] * 1020, codes[-25:]
        r = c.reply()
        assert r.code == 421 and "too many errors" in r.text, r
    assert [len(d.mailbox(u)) for u in ("alice", "bob", "carol", "admin")] == [1, 1, 1, 0]


def received_message(n):
    hops = "".join(f"Received: from hop{i}.outside.test by hop{i + 1}.outside.test;"
                   f" Mon, 1 Jan 2024 00:00:{i % 60:02d} +0000\r\n" for i in range(n))
    return (hops + f"Subject: {n} hops\r\n\r\nloop?\r\n").encode()


def send_data(d, msg, rcpt="alice"):
    with Raw(d.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<{rcpt}@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        r = c.reply()
        assert c.cmd("NOOP").code == 250
        return r


def test_51_received_headers_is_a_mail_loop(smtpd):
    r = send_data(smtpd, received_message(51))
    assert r.code == 554 and r.text.startswith("5.4.6"), r
    assert smtpd.mailbox("alice") == []
    assert smtpd.queue() == []


def test_50_received_headers_are_accepted(smtpd):
    r = send_data(smtpd, received_message(50))
    assert r.code == 250, r
    [e] = smtpd.mailbox("alice")
    stored = smtpd.export("alice", e["uid"])
    assert len(headers(stored, "Received")) == 51      # ours on top


def our_passes_message(n):
    """A message that has passed through this server n times already (our
    own Received fields, as umbox-smtpd writes them), among others."""
    ours = "".join(f"Received: from hop{i}.outside.test ([192.0.2.{i}])\r\n"
                   f"\tby {HOSTNAME} (umbox) with ESMTP id 6B15B7FC59FF0000{i}\r\n"
                   f"\tfor <fwd@{DOMAIN}>; Mon, 1 Jan 2024 00:00:0{i} +0000\r\n"
                   f"Received: from {HOSTNAME} by mx.outside.test;"
                   f" Mon, 1 Jan 2024 00:00:0{i} +0000\r\n" for i in range(n))
    return (ours + f"Subject: passed {n} times\r\n\r\nround and round\r\n").encode()


@pytest.mark.parametrize("size", ["small", "spooled"])
def test_a_fifth_pass_through_this_server_is_a_forwarding_loop(smtpd, size):
    """Two aliases forwarding to each other through outside servers double
    the copies at each pass; the hop count alone (50) would allow 2^50.  A
    message that has passed here four times is refused the fifth (554
    5.4.6), well under the hop limit; a large one too (its header section
    is read before it goes to a spool file)."""
    pad = b"" if size == "small" else (b"x" * 998 + b"\r\n") * 1600
    r = send_data(smtpd, our_passes_message(4) + pad)
    assert r.code == 554 and r.text.startswith("5.4.6") and "5 times" in r.text, r
    assert smtpd.mailbox("alice") == []
    assert "passed here 5 times (a forwarding loop)" in smtpd.log()
    r = send_data(smtpd, our_passes_message(3))
    assert r.code == 250, r
    assert len(smtpd.mailbox("alice")) == 1


def test_51_received_headers_over_bdat_in_small_chunks(smtpd):
    """Counted across chunk boundaries: 7-octet chunks split the headers."""
    msg = received_message(51)
    chunks = [msg[i:i + 7] for i in range(0, len(msg), 7)]
    wire = b"".join(f"BDAT {len(ch)}\r\n".encode() + ch for ch in chunks) + b"BDAT 0 LAST\r\n"
    with Raw(smtpd.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        c.send(wire)
        replies = c.replies(len(chunks) + 1)
        r = replies[-1]
        assert r.code == 554 and r.text.startswith("5.4.6"), r
        assert c.cmd("NOOP").code == 250
    assert smtpd.mailbox("alice") == []


def test_received_in_the_body_does_not_count(smtpd):
    msg = b"Subject: quoting a bounce\r\n\r\n" + b"Received: from a by b; x\r\n" * 60
    r = send_data(smtpd, msg)
    assert r.code == 250, r
    assert len(smtpd.mailbox("alice")) == 1


def test_bdat_over_max_message_size_is_552(smtpd_factory):
    d = smtpd_factory(max_message_size="10K")
    part = b"Subject: big\r\n\r\n" + b"z" * 4980 + b"\r\n"
    with Raw(d.mx) as c:
        ehlo(c)
        assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        replies = []
        for _ in range(2):
            c.send(f"BDAT {len(part)}\r\n".encode() + part)
            replies.append(c.reply())
        assert [r.code for r in replies] == [250, 250], replies
        c.send(f"BDAT {len(part)} LAST\r\n".encode() + part)      # ~15 KB in all
        r = c.reply()
        assert r.code == 552 and r.text.startswith("5.3.4"), r
        assert c.cmd("NOOP").code == 250
    assert d.mailbox("alice") == []


def test_1000_concurrent_sessions(smtpd_factory):
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 200
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    d = smtpd_factory(max_connections=2000, max_connections_per_ip=2000)
    socks = []
    t0 = time.monotonic()
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", d.mx), timeout=10)
            s.setblocking(False)
            socks.append(s)
        # Read every greeting (the MX port sends it after ~100 ms).
        bufs = {s.fileno(): b"" for s in socks}
        by_fd = {s.fileno(): s for s in socks}
        pending = set(by_fd)
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + 20
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(500):
                try:
                    chunk = by_fd[fd].recv(4096)
                except BlockingIOError:
                    continue
                bufs[fd] += chunk
                if b"\r\n" in bufs[fd] or not chunk:
                    pending.discard(fd)
                    poller.unregister(fd)
        assert not pending, f"{len(pending)} sessions not greeted"
        greetings = [bufs[s.fileno()] for s in socks]
        bad = [g for g in greetings if not g.startswith(b"220 ")]
        assert not bad, f"{len(bad)} bad greetings, e.g. {bad[:3]}"

        # A few of them send a message while all are open.
        for i, s in enumerate(socks[:: n // 5]):
            s.setblocking(True)
            c = Raw.wrap(s)
            ehlo(c)
            assert c.cmd("MAIL FROM:<sender@outside.test>").code == 250
            assert c.cmd(f"RCPT TO:<bob@{DOMAIN}>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(f"Subject: busy {i}\r\n\r\nx\r\n.\r\n".encode())
            assert c.reply().code == 250
        for s in socks:
            s.setblocking(True)
            s.settimeout(10)
            s.sendall(b"QUIT\r\n")
        bye = 0
        for s in socks:
            data = b""
            while b"221 " not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            bye += b"221 " in data
        assert bye == n
    finally:
        for s in socks:
            s.close()
    assert time.monotonic() - t0 < 30
    assert sorted(e["subject"] for e in d.mailbox("bob")) == [f"busy {i}" for i in range(5)]


def test_connections_per_ip_limit_is_421(smtpd_factory):
    d = smtpd_factory(max_connections_per_ip=3)
    clients = [Raw(d.mx) for _ in range(3)]
    try:
        for c in clients:
            assert c.greeting.code == 220
        with Raw(d.mx, greet=False) as c4:
            data = c4.wait_closed(timeout=5)
        assert data.startswith(b"421 4.7.0"), data
        # On the implicit-TLS port nothing comes in clear before a handshake
        # (RFC 8314 §3): the refusal is a close.
        with socket.create_connection(("127.0.0.1", d.smtps), timeout=5) as raw:
            assert raw.recv(100) == b""
        # The others are unaffected; closing one makes room again.
        for c in clients:
            assert c.cmd("NOOP").code == 250
        assert clients[0].cmd("QUIT").code == 221
        clients[0].wait_closed()
        deadline = time.monotonic() + 5
        while True:
            c5 = Raw(d.mx, greet=False)
            first = c5.reply()
            if first.code == 220 or time.monotonic() > deadline:
                break
            c5.close()
            time.sleep(0.1)
        clients[0] = c5
        assert first.code == 220, first
    finally:
        for c in clients:
            c.close()


def test_a_tenth_of_the_sessions_is_kept_for_the_mx_port(smtpd_factory):
    """Submission and smtps clients stop a tenth short of max_connections:
    a flood there (stalled TLS handshakes, say) still leaves mail from
    outside its way in on the MX port."""
    d = smtpd_factory(max_connections=20, max_connections_per_ip=100)
    held = []
    try:
        for _ in range(18):
            held.append(Raw(d.submission))
            assert held[-1].greeting.code == 220
        with Raw(d.submission, greet=False) as c:
            assert c.wait_closed(timeout=5).startswith(b"421 4.7.0"), "19th on submission"
        with socket.create_connection(("127.0.0.1", d.smtps), timeout=5) as raw:
            assert raw.recv(100) == b""                 # smtps: the same, without a word
        for _ in range(2):
            held.append(Raw(d.mx))
            assert held[-1].greeting.code == 220
        with Raw(d.mx, greet=False) as c:
            assert c.wait_closed(timeout=5).startswith(b"421 4.7.0"), "21st in all"
        assert "kept for other ports" in d.log()
    finally:
        for c in held:
            c.close()


def test_total_connection_limit_is_421(smtpd_factory):
    d = smtpd_factory(max_connections=2)
    clients = [Raw(d.mx), Raw(d.submission)]
    try:
        with Raw(d.mx, greet=False) as c3:
            data = c3.wait_closed(timeout=5)
        assert data.startswith(b"421 4.7.0"), data
        for c in clients:
            assert c.cmd("NOOP").code == 250
    finally:
        for c in clients:
            c.close()


# -- memory stays flat for a 1 GB body ---------------------------------------------------

def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_one_gigabyte_body_keeps_memory_flat(smtpd_factory):
    """A 1 GiB DATA body over max_message_size streams through the parser:
    the daemon's memory does not grow with it, the client gets one 552 after
    its final dot, nothing is stored, and the session goes on."""
    d = smtpd_factory(max_message_size="10M")
    pid = d.proc.pid
    line = b"x" * 1022 + b"\r\n"
    chunk = line * 1024                       # 1 MiB
    with Raw(d.mx, timeout=120) as c:
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("MAIL FROM:<big@outside.test>").code == 250
        assert c.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: big\r\n\r\n")
        base = _rss_kib(pid)
        peak = base
        for i in range(1024):
            c.send(chunk)
            if i % 64 == 0:
                peak = max(peak, _rss_kib(pid))
        c.send(b".\r\n")
        r = c.reply()
        peak = max(peak, _rss_kib(pid))
        assert r.code == 552, r
        # Under AddressSanitizer freed buffers sit in its quarantine (256 MB):
        # the RSS says nothing about the daemon there.
        if not sanitized_build():
            assert peak - base < 48 * 1024, (base, peak)
        assert c.cmd("NOOP").code == 250
    d.assert_nothing_stored()
