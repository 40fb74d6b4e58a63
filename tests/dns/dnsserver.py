#!/usr/bin/python3
"""A small authoritative DNS server for the tests of aliases/dns.c.

    dnsserver.py [PORT]

Serves the zone "test." below on 127.0.0.1, UDP and TCP on the same port
(a free one when PORT is 0 or left out), and prints "PORT <n>" on stdout
once it listens.  It exits when its standard input reaches end of file (the
test that started it has gone) or after LIFETIME seconds, whichever comes
first, so a crashed test leaves nothing behind.

Answers are built with dnslib (Debian's python3-dnslib).  Besides plain
data, some names behave on purpose:

  servfail.test    SERVFAIL for every question
  refused.test     REFUSED
  slow.test        MX answered after SLOW seconds (a timeout for the tests)
  mx.slowhost.test A/AAAA answered after SLOW seconds
  big.test         40 MX records: too big for UDP, so TC and a retry on TCP
  odd.test         an MX host name with a control byte and a dot in a label
  N.counter.test   MX "mxK.N.counter.test", K counting MX questions for the
                   name; TTL 1 (the cache test)
  N.flip.test      NXDOMAIN to the first MX question, an MX after
  N.flaky.test     SERVFAIL to the first MX question, an MX after

The subtree guard.test holds the cases of the MX guard's tests (umboxctl
domain add/check, tests/cli/test_umboxctl_guard.py), for a server whose
host name is mail.example.test (not in the zone) or host.guard.test:

  byname.guard.test     MX mail.example.test (which has no address)
  several.guard.test    MX 10 far.several (198.51.100.51), MX 20 mx.several
                        (198.51.100.50 and 127.0.0.1)
  public.guard.test     MX mx.public (203.0.113.5)
  foreign.guard.test    MX 10 a.foreign (198.51.100.11, 2001:db8::11),
                        MX 20 b.foreign (no such name)
  ownaddr.guard.test    no MX, A 127.0.0.1
  elsewhere.guard.test  no MX, A 198.51.100.60
  v6.guard.test         MX mx.v6 (2001:db8::77 only)
  loop6.guard.test      MX mx.loop6 (::1 only)
  host.guard.test       A 198.51.100.70 (a host name for the config)
  hostaddr.guard.test   MX mx.hostaddr (198.51.100.70, like host.guard.test)
  tempfail.guard.test   MX 10 servfail.test (SERVFAIL), MX 20 mx.tempfail
                        (198.51.100.80)
  tempok.guard.test     MX 10 servfail.test, MX 20 mx.tempok (127.0.0.1)
  deep.guard.test       24 foreign MX hosts, then MX 100 mx.deep: 20 foreign
                        addresses and 127.0.0.1
  dotmx.guard.test      MX 10 . (names no host; not a null MX)

A PostgreSQL server named in [store] dsn (tests/nodes/test_pg_connect.py):

  pgdb.test             AAAA ::1 (where nothing listens) and A 127.0.0.1

Every other name under test. that is not in the zone is NXDOMAIN.
"""
import heapq
import os
import selectors
import socket
import sys
import time

from dnslib import AAAA, A, DNSLabel, DNSRecord, MX, QTYPE, RCODE, RR, SOA, TXT

SLOW = 3.0
LIFETIME = 600.0
TTL = 300

SOA_RR = RR("test.", QTYPE.SOA, ttl=60,
            rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, 60)))

# name -> list of (type, rdata, ttl)
ZONE = {}


def add(name, rtype, rdata, ttl=TTL):
    ZONE.setdefault(name.lower().rstrip(".") + ".", []).append((rtype, rdata, ttl))


def build_zone():
    add("pgdb.test", QTYPE.AAAA, AAAA("::1"))
    add("pgdb.test", QTYPE.A, A("127.0.0.1"))
    add("mx.test", QTYPE.MX, MX("mx1.mx.test.", 10))
    add("mx.test", QTYPE.MX, MX("mx2.mx.test.", 20), ttl=200)
    add("mx1.mx.test", QTYPE.A, A("192.0.2.1"))
    add("mx1.mx.test", QTYPE.AAAA, AAAA("2001:db8::1"))
    add("mx2.mx.test", QTYPE.A, A("192.0.2.2"))

    for h in ("a", "b"):
        add("twin.test", QTYPE.MX, MX(h + ".twin.test.", 10))
    add("twin.test", QTYPE.MX, MX("c.twin.test.", 20))
    add("a.twin.test", QTYPE.A, A("192.0.2.11"))
    add("b.twin.test", QTYPE.A, A("192.0.2.12"))
    add("c.twin.test", QTYPE.A, A("192.0.2.13"))

    add("nullmx.test", QTYPE.MX, MX(".", 0))
    add("nullmx.test", QTYPE.A, A("192.0.2.99"))

    # No MX, but addresses: the implicit MX.
    add("amx.test", QTYPE.A, A("192.0.2.10"))
    add("amx.test", QTYPE.AAAA, AAAA("2001:db8::10"))
    # The name exists, with neither MX nor address.
    add("nomx.test", QTYPE.TXT, TXT("nothing here"))

    add("nohost.test", QTYPE.MX, MX("gone.nohost.test.", 10))
    add("nohost.test", QTYPE.MX, MX("mx.nohost.test.", 20))
    add("nohost.test", QTYPE.MX, MX("noaddr.nohost.test.", 30))
    add("mx.nohost.test", QTYPE.A, A("192.0.2.20"))
    add("noaddr.nohost.test", QTYPE.TXT, TXT("no address"))

    add("allgone.test", QTYPE.MX, MX("gone.allgone.test.", 10))

    add("slowhost.test", QTYPE.MX, MX("mx.slowhost.test.", 10))
    add("mx.slowhost.test", QTYPE.A, A("192.0.2.21"))

    for i in range(40):
        add("big.test", QTYPE.MX, MX("mx%02d.big.test." % i, 100 - i))
        add("mx%02d.big.test" % i, QTYPE.A, A("192.0.2.%d" % (100 + i)))

    add("odd.test", QTYPE.MX, MX(DNSLabel([b"bad\x01ho.st", b"odd", b"test"]), 5))
    add("odd.test", QTYPE.MX, MX("mx.odd.test.", 10))
    add("mx.odd.test", QTYPE.A, A("192.0.2.22"))

    add("cached.test", QTYPE.MX, MX("mx.cached.test.", 10))
    add("mx.cached.test", QTYPE.A, A("192.0.2.23"))

    add("v6only.test", QTYPE.MX, MX("mx.v6only.test.", 10))
    add("mx.v6only.test", QTYPE.AAAA, AAAA("2001:db8::24"))

    add("relay.test", QTYPE.A, A("192.0.2.40"))
    add("relay.test", QTYPE.AAAA, AAAA("2001:db8::40"))
    add("relay.test", QTYPE.AAAA, AAAA("2001:db8::41"))

    build_guard_zone()


def build_guard_zone():
    """guard.test: the MX guard's cases (see the module docstring)."""
    g = "guard.test"
    add("byname." + g, QTYPE.MX, MX("mail.example.test.", 10))

    add("several." + g, QTYPE.MX, MX("far.several.%s." % g, 10))
    add("several." + g, QTYPE.MX, MX("mx.several.%s." % g, 20))
    add("far.several." + g, QTYPE.A, A("198.51.100.51"))
    add("mx.several." + g, QTYPE.A, A("198.51.100.50"))
    add("mx.several." + g, QTYPE.A, A("127.0.0.1"))

    add("public." + g, QTYPE.MX, MX("mx.public.%s." % g, 10))
    add("mx.public." + g, QTYPE.A, A("203.0.113.5"))

    add("foreign." + g, QTYPE.MX, MX("a.foreign.%s." % g, 10))
    add("foreign." + g, QTYPE.MX, MX("b.foreign.%s." % g, 20))
    add("a.foreign." + g, QTYPE.A, A("198.51.100.11"))
    add("a.foreign." + g, QTYPE.AAAA, AAAA("2001:db8::11"))

    add("ownaddr." + g, QTYPE.A, A("127.0.0.1"))
    add("elsewhere." + g, QTYPE.A, A("198.51.100.60"))

    add("v6." + g, QTYPE.MX, MX("mx.v6.%s." % g, 10))
    add("mx.v6." + g, QTYPE.AAAA, AAAA("2001:db8::77"))

    add("loop6." + g, QTYPE.MX, MX("mx.loop6.%s." % g, 10))
    add("mx.loop6." + g, QTYPE.AAAA, AAAA("::1"))

    add("host." + g, QTYPE.A, A("198.51.100.70"))
    add("hostaddr." + g, QTYPE.MX, MX("mx.hostaddr.%s." % g, 10))
    add("mx.hostaddr." + g, QTYPE.A, A("198.51.100.70"))

    add("tempfail." + g, QTYPE.MX, MX("servfail.test.", 10))
    add("tempfail." + g, QTYPE.MX, MX("mx.tempfail.%s." % g, 20))
    add("mx.tempfail." + g, QTYPE.A, A("198.51.100.80"))

    add("tempok." + g, QTYPE.MX, MX("servfail.test.", 10))
    add("tempok." + g, QTYPE.MX, MX("mx.tempok.%s." % g, 20))
    add("mx.tempok." + g, QTYPE.A, A("127.0.0.1"))

    for i in range(24):
        add("deep." + g, QTYPE.MX, MX("mx%02d.far.deep.%s." % (i, g), i))
        add("mx%02d.far.deep.%s" % (i, g), QTYPE.A, A("198.51.100.%d" % (100 + i)))
    add("deep." + g, QTYPE.MX, MX("mx.deep.%s." % g, 100))
    add("dotmx." + g, QTYPE.MX, MX(".", 10))
    for i in range(20):
        add("mx.deep." + g, QTYPE.A, A("198.51.100.%d" % (150 + i)))
    add("mx.deep." + g, QTYPE.A, A("127.0.0.1"))


counts = {}


def count(name, qtype):
    key = (name, qtype)
    counts[key] = counts.get(key, 0) + 1
    return counts[key]


def answer(request):
    """The reply to one question, and how long to wait before sending it."""
    reply = request.reply()
    reply.header.aa = 1
    reply.header.ra = 0
    q = request.q
    name = str(q.qname).lower()
    qtype = q.qtype
    labels = name.rstrip(".").split(".")
    delay = 0.0

    if not name.endswith("test."):
        reply.header.rcode = RCODE.REFUSED
        return reply, delay
    if name == "servfail.test.":
        reply.header.rcode = RCODE.SERVFAIL
        return reply, delay
    if name == "refused.test.":
        reply.header.rcode = RCODE.REFUSED
        return reply, delay
    if (name == "slow.test." and qtype == QTYPE.MX) or name == "mx.slowhost.test.":
        delay = SLOW

    dynamic = len(labels) >= 3 and labels[-1] == "test"
    if dynamic and labels[-2] == "counter" and len(labels) == 3:
        if qtype == QTYPE.MX:
            k = count(name, qtype)
            reply.add_answer(RR(name, QTYPE.MX, ttl=1,
                                rdata=MX("mx%d.%s" % (k, name), 10)))
        else:
            reply.add_auth(SOA_RR)
        return reply, delay
    if dynamic and len(labels) == 4 and labels[0].startswith("mx") and labels[-2] == "counter":
        if qtype == QTYPE.A:
            reply.add_answer(RR(name, QTYPE.A, ttl=1, rdata=A("192.0.2.30")))
        else:
            reply.add_auth(SOA_RR)
        return reply, delay
    if dynamic and labels[-2] in ("flip", "flaky") and len(labels) == 3:
        first = qtype == QTYPE.MX and count(name, qtype) == 1
        if first:
            reply.header.rcode = RCODE.NXDOMAIN if labels[-2] == "flip" else RCODE.SERVFAIL
            if labels[-2] == "flip":
                reply.add_auth(SOA_RR)
            return reply, delay
        if qtype == QTYPE.MX:
            reply.add_answer(RR(name, QTYPE.MX, ttl=TTL, rdata=MX("mx.amx.test.", 10)))
        else:
            reply.add_auth(SOA_RR)
        return reply, delay
    if name == "mx.amx.test.":
        if qtype == QTYPE.A:
            reply.add_answer(RR(name, QTYPE.A, ttl=TTL, rdata=A("192.0.2.10")))
        else:
            reply.add_auth(SOA_RR)
        return reply, delay

    if name == "slow.test.":
        if qtype == QTYPE.MX:
            reply.add_answer(RR(name, QTYPE.MX, ttl=TTL, rdata=MX("mx.amx.test.", 10)))
        return reply, delay

    records = ZONE.get(name)
    if records is None:
        reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(SOA_RR)
        return reply, delay
    found = False
    for rtype, rdata, ttl in records:
        if rtype == qtype:
            reply.add_answer(RR(name, rtype, ttl=ttl, rdata=rdata))
            found = True
    if not found:
        reply.add_auth(SOA_RR)      # NODATA
    return reply, delay


def handle(data, tcp):
    """Bytes of a reply to the query in data, and its delay; None to drop."""
    try:
        request = DNSRecord.parse(data)
    except Exception:
        return None, 0.0
    if not request.questions:
        return None, 0.0
    reply, delay = answer(request)
    out = reply.pack()
    if not tcp and len(out) > 512:
        short = request.reply()
        short.header.aa = 1
        short.header.tc = 1
        out = short.pack()
    return out, delay


def bind_pair(port):
    """A UDP and a TCP socket on 127.0.0.1 with the same port."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", port))
        p = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", p))
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
            continue
        tcp.listen(16)
        return udp, tcp, p
    raise OSError("no free port for UDP and TCP")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    build_zone()
    udp, tcp, port = bind_pair(port)
    udp.setblocking(False)
    tcp.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(udp, selectors.EVENT_READ, "udp")
    sel.register(tcp, selectors.EVENT_READ, "listen")
    watch_stdin = not os.isatty(0)
    if watch_stdin:
        sel.register(0, selectors.EVENT_READ, "stdin")
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()

    later = []          # heap of (when, seq, send function)
    seq = 0
    conns = {}          # socket -> bytes received so far
    deadline = time.monotonic() + LIFETIME

    def send_udp(data, addr):
        try:
            udp.sendto(data, addr)
        except OSError:
            pass

    def send_tcp(conn, data):
        if conn.fileno() < 0:
            return
        try:
            conn.setblocking(True)
            conn.sendall(len(data).to_bytes(2, "big") + data)
            conn.setblocking(False)
        except OSError:
            pass

    while time.monotonic() < deadline:
        now = time.monotonic()
        while later and later[0][0] <= now:
            heapq.heappop(later)[2]()
        timeout = min(1.0, later[0][0] - now) if later else 1.0
        for key, _ in sel.select(max(0.0, timeout)):
            what = key.data
            if what == "stdin":
                if not os.read(0, 512):
                    return
            elif what == "udp":
                try:
                    data, addr = udp.recvfrom(65535)
                except OSError:
                    continue
                out, delay = handle(data, False)
                if out is not None:
                    seq += 1
                    heapq.heappush(later, (time.monotonic() + delay, seq,
                                           lambda o=out, a=addr: send_udp(o, a)))
            elif what == "listen":
                try:
                    conn, _ = tcp.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                conns[conn] = b""
                sel.register(conn, selectors.EVENT_READ, "conn")
            else:
                conn = key.fileobj
                try:
                    data = conn.recv(65535)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(conn)
                    del conns[conn]
                    conn.close()
                    continue
                buf = conns[conn] + data
                while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                    n = int.from_bytes(buf[:2], "big")
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    out, delay = handle(msg, True)
                    if out is not None:
                        seq += 1
                        heapq.heappush(later, (time.monotonic() + delay, seq,
                                               lambda c=conn, o=out: send_tcp(c, o)))
                conns[conn] = buf


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
