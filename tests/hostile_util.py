"""Helpers for the hostile-client tests of both daemons (SPEC §4 and §5:
bounded memory per session, back-pressure, fairness, file descriptors).

A flood sends one payload over and over from a non-blocking socket and
never reads, while it watches the daemon's resident memory in
/proc/PID/status.  It stops as soon as the memory bound is crossed (the
test fails there: nothing is sent past the bound), when the daemon has
stopped taking bytes for a while (the kernel buffers are full: TCP
back-pressure), or at a time and byte limit.
"""
import os
import select
import socket
import ssl
import threading
import time

MIB = 1024 * 1024

# Small client buffers make back-pressure show after a few MiB instead of
# after the tens of MiB that loopback autotuning allows.
CLIENT_BUF = 128 * 1024


def rss_kb(pid):
    """VmRSS of a process, in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid):
    """User plus system CPU time of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def connect(port, host="127.0.0.1", timeout=10, bufsize=CLIENT_BUF):
    """A connected TCP socket with small send and receive buffers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if bufsize:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def unverified_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wrap_tls(sock, hostname="mail.example.test"):
    return unverified_context().wrap_socket(sock, server_hostname=hostname)


class FloodResult:
    def __init__(self, label, sent, seconds, base_kb, peak_kb, stalled, closed):
        self.label = label
        self.sent = sent
        self.seconds = seconds
        self.base_kb = base_kb
        self.peak_kb = peak_kb
        self.stalled = stalled      # the daemon stopped taking bytes
        self.closed = closed        # the daemon hung up during the flood

    @property
    def grew_mib(self):
        return (self.peak_kb - self.base_kb) / 1024

    def __repr__(self):
        return (f"<flood {self.label}: sent {self.sent / MIB:.1f} MiB in {self.seconds:.1f}s,"
                f" RSS {self.base_kb // 1024} -> {self.peak_kb // 1024} MiB,"
                f" stalled={self.stalled} closed={self.closed}>")


def flood(sock, payload, pid, label="", seconds=6.0, max_bytes=64 * MIB,
          rss_bound_mib=16, stall=1.0):
    """Send payload again and again on sock (plain or TLS) without reading.

    Fails (AssertionError) the moment the daemon's RSS has grown by more
    than rss_bound_mib over what it was when the flood began.  Otherwise
    returns a FloodResult once the daemon has taken no byte for `stall`
    seconds, or at `seconds` / `max_bytes`, whichever comes first.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    is_tls = isinstance(sock, ssl.SSLSocket)
    # TLS writes are retried with the same bytes after WANT_WRITE: keep
    # the unit one record long there.
    unit = payload * max(1, (16384 if is_tls else 65536) // len(payload))
    view = memoryview(unit)
    pos = 0
    sock.setblocking(False)
    base = peak = rss_kb(pid)
    t0 = last_progress = time.monotonic()
    sent = 0
    stalled = closed = False
    while True:
        now = time.monotonic()
        rss = rss_kb(pid)
        peak = max(peak, rss)
        if rss - base > rss_bound_mib * 1024:
            raise AssertionError(
                f"{label}: the daemon's RSS grew by {(rss - base) / 1024:.1f} MiB "
                f"(bound {rss_bound_mib} MiB) while a client sent {sent / MIB:.1f} MiB "
                f"in {now - t0:.1f}s without reading a reply")
        if now - last_progress >= stall:
            stalled = True
            break
        if now - t0 >= seconds or sent >= max_bytes:
            break
        try:
            n = sock.send(view[pos:])
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            n = 0
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            closed = True
            break
        if n:
            sent += n
            pos += n
            if pos == len(unit):
                pos = 0
            last_progress = time.monotonic()
        else:
            # Wait for room without spinning: the daemon shares the CPUs.
            select.select([], [sock], [], 0.05)
    return FloodResult(label, sent, time.monotonic() - t0, base, peak, stalled, closed)


def assert_back_pressure(r, rss_bound_mib=16):
    """The flood met TCP back-pressure: the daemon stopped reading (it did
    not hang up, and it did not keep reading into a growing buffer)."""
    assert not r.closed, f"the daemon closed the connection during the flood: {r!r}"
    assert r.stalled, (f"the daemon kept reading from a client that reads nothing "
                       f"(no TCP back-pressure): {r!r}")
    assert r.grew_mib < rss_bound_mib, r


class Flooder:
    """flood() in a background thread until stop(): for measuring how the
    daemon serves other clients meanwhile.  read_every > 0 makes it a slow
    reader that takes 4 KiB of replies every read_every seconds; 0 reads
    nothing.  The RSS bound still holds: crossing it ends the flood and
    stop() raises."""

    def __init__(self, sock, payload, pid, label="", read_every=0.0,
                 rss_bound_mib=16, seconds=15.0):
        self.sock, self.payload, self.pid, self.label = sock, payload, pid, label
        self.read_every = read_every
        self.rss_bound_mib = rss_bound_mib
        self.seconds = seconds
        self.error = None
        self.result = None
        self.replies = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        payload = self.payload.encode() if isinstance(self.payload, str) else self.payload
        is_tls = isinstance(self.sock, ssl.SSLSocket)
        unit = payload * max(1, (16384 if is_tls else 65536) // len(payload))
        view = memoryview(unit)
        pos = sent = 0
        self.sock.setblocking(False)
        base = peak = rss_kb(self.pid)
        t0 = time.monotonic()
        next_read = t0 + self.read_every
        try:
            while not self._stop.is_set() and time.monotonic() - t0 < self.seconds:
                rss = rss_kb(self.pid)
                peak = max(peak, rss)
                if rss - base > self.rss_bound_mib * 1024:
                    self.error = (f"{self.label}: the daemon's RSS grew by "
                                  f"{(rss - base) / 1024:.1f} MiB (bound {self.rss_bound_mib} "
                                  f"MiB) after {sent / MIB:.1f} MiB sent")
                    return
                if self.read_every and time.monotonic() >= next_read:
                    next_read += self.read_every
                    try:
                        data = self.sock.recv(4096)
                        if not data:
                            self.error = f"{self.label}: the daemon hung up"
                            return
                        self.replies += data.count(b"\r\n")
                    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        pass
                try:
                    n = self.sock.send(view[pos:])
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    n = 0
                if n:
                    sent += n
                    pos = 0 if pos + n == len(unit) else pos + n
                else:
                    select.select([], [self.sock], [], 0.02)
        except OSError as e:
            self.error = f"{self.label}: {e!r} after {sent / MIB:.1f} MiB sent"
        finally:
            self.result = FloodResult(self.label, sent, time.monotonic() - t0, base, peak,
                                      False, False)

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), f"{self.label}: flooder did not stop"
        assert self.error is None, self.error
        return self.result
