"""The outside world of the outbound tests: an authoritative DNS zone
(dnslib) and an SMTP server (aiosmtpd) on loopback, both started for real.

    with dns_zone(MyZone()) as port: ...     # UDP and TCP on one free port
    with sink_server() as sink: ...          # sink.port, sink.messages
"""
import contextlib
import time

from aiosmtpd.controller import Controller
from dnslib.server import DNSServer

from smtpd_util import free_port


@contextlib.contextmanager
def dns_zone(resolver):
    """Serve resolver (a dnslib BaseResolver) on 127.0.0.1, UDP and TCP."""
    port = free_port()
    udp = DNSServer(resolver, port=port, address="127.0.0.1")
    tcp = DNSServer(resolver, port=port, address="127.0.0.1", tcp=True)
    udp.start_thread()
    tcp.start_thread()
    try:
        yield port
    finally:
        udp.stop()
        tcp.stop()


class Sink:
    """Takes every message, but for the recipients in refuse (address ->
    replies, used up in order, then accepted) and in always (address -> the
    reply given every time)."""

    def __init__(self):
        self.messages = []      # (mail_from, [rcpt], content bytes)
        self.refuse = {}
        self.always = {}
        self.smtputf8 = []      # per message: did MAIL say SMTPUTF8
        self.mail_options = []  # per message: MAIL's parameters
        self.eightbit = True    # offer 8BITMIME (taking 8-bit data either way)
        self.max_rcpts = None   # (limit, reply) for recipients past limit in a transaction
        self.data_reply = None  # the reply to the end of data, instead of taking the message
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if getattr(session, "counted", None) is None:
            session.counted = True
            self.connections += 1
        session.host_name = hostname
        return [r for r in responses if self.eightbit or r[4:] != "8BITMIME"]

    async def handle_RCPT(self, server, session, envelope, address, options):
        key = address.lower()
        if key in self.always:
            return self.always[key]
        if self.refuse.get(key):
            return self.refuse[key].pop(0)
        if self.max_rcpts and len(envelope.rcpt_tos) >= self.max_rcpts[0]:
            return self.max_rcpts[1]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.smtputf8.append(envelope.smtp_utf8)
        self.mail_options.append(list(envelope.mail_options))
        return "250 2.0.0 Ok"

    def wait(self, n, timeout=10, log=None):
        """The messages, once n have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            assert time.monotonic() < deadline, \
                f"{len(self.messages)} of {n} messages arrived: {self.messages}\n" + \
                (log()[-3000:] if log else "")
            time.sleep(0.05)
        return list(self.messages)


@contextlib.contextmanager
def sink_server(sink=None, smtputf8=False):
    """Run sink (a new Sink by default) on a free loopback port: sink.port;
    smtputf8: offer SMTPUTF8."""
    sink = sink or Sink()
    sink.port = free_port()
    c = Controller(sink, hostname="127.0.0.1", port=sink.port, enable_SMTPUTF8=smtputf8)
    c.start()
    try:
        yield sink
    finally:
        c.stop()
