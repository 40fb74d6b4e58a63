"""Helpers for the tests of daemons with several event loops, shared by
tests/smtpd/test_smtpd_loops.py and tests/pop3d/test_pop3d_loops.py:
bursts of connections, and which loop a session is on (from the log)."""
import errno
import os
import re
import select
import socket
import time


def wait_log(read_log, pattern, count=1, timeout=5):
    """Wait until read_log() has count matches of the regex; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        text = read_log()
        found = list(re.finditer(pattern, text, re.M))
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, \
            f"{pattern!r} not {count} times in the log:\n{text}"
        time.sleep(0.02)


def session_of(read_log, sock, fields=""):
    """(session id, loop) of the session behind our connected socket, from
    its `connect from [IP]:PORT FIELDSloop=N` line."""
    ip, port = sock.getsockname()[:2]
    m = wait_log(read_log, rf"(\S+): connect from \[{re.escape(ip)}\]:{port} {fields}loop=(\d+)")
    return m[-1].group(1), int(m[-1].group(2))


def burst(port, sources):
    """One connection per entry of sources (the client's source address),
    all connecting at once (non-blocking connects, then one poll loop), and
    the first line each receives.  Returns [(blocking socket, line)]."""
    socks = []
    try:
        for src in sources:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((src, 0))
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            assert err in (0, errno.EINPROGRESS), os.strerror(err)
        bufs = {s: b"" for s in socks}
        pending = set(socks)
        deadline = time.monotonic() + 10
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} connections got no line"
            readable, _, _ = select.select(list(pending), [], [], 0.5)
            for s in readable:
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                bufs[s] += chunk
                if b"\r\n" in bufs[s] or not chunk:
                    pending.discard(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    out = []
    for s in socks:
        s.setblocking(True)
        s.settimeout(10)
        line, sep, rest = bufs[s].partition(b"\r\n")
        assert rest == b"", f"more than one line before a command: {bufs[s]!r}"
        out.append((s, line if sep else bufs[s]))
    return out


def split_burst(results, greeting, refusal):
    """The greeted sockets; every line is a greeting (starts with greeting)
    or the refusal, and a refused connection is closed after its line."""
    greeted = [s for s, line in results if line.startswith(greeting)]
    refused = [s for s, line in results if line == refusal]
    other = [line for _, line in results if not line.startswith(greeting) and line != refusal]
    assert not other, f"neither greeted nor refused: {other[:5]}"
    for s in refused:
        assert s.recv(4096) == b"", "a refused connection stays open"
        s.close()
    return greeted


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
