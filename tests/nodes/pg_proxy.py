"""A TCP port on 127.0.0.1 in front of the test cluster's Unix socket, so
that a dsn can name a host and port.  It passes bytes both ways; or, when
silent, accepts connections and never says a word (a server that hangs);
or, once armed with drop_commit, cuts the first connection that sends a
COMMIT in the extended protocol (the writer's pipeline): "before" it
reaches the server, or "after" the server has it and its Sync, keeping
the server's answer from the client (so the client cannot know whether
it committed).  Or, with commit_delay set, holds every COMMIT (simple or extended
protocol) that long before passing it on (a slow server).
Connections must not use TLS (sslmode=disable)."""
import os
import re
import select
import socket
import struct
import threading
import time


def _is_commit(kind, msg):
    """Whether a Parse (type byte included) prepares COMMIT, or a simple
    Query runs it."""
    if kind == b"P":
        return msg[5:].split(b"\0")[1].strip().upper() == b"COMMIT"
    return kind == b"Q" and msg[5:].rstrip(b"\0").strip().upper() == b"COMMIT"


def cluster_socket():
    """The Unix socket of tests/run's cluster (UMBOX_TEST_PG)."""
    info = os.environ["UMBOX_TEST_PG"]
    host = re.search(r"host=(\S+)", info).group(1)
    port = re.search(r"port=(\d+)", info).group(1)
    return f"{host}/.s.PGSQL.{port}"


class Proxy:
    def __init__(self, silent=False):
        self.silent = silent
        self.target = None if silent else cluster_socket()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.held = []
        self.closing = False
        self.drop_commit = None         # "before" or "after": armed
        self.commit_delay = 0.0         # seconds each COMMIT is held
        self.fired = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.silent:
                self.held.append(c)
                continue
            threading.Thread(target=self._pump, args=(c,), daemon=True).start()

    def _take_commit(self):
        """The armed mode, for the one connection that gets to use it."""
        with self.lock:
            mode, self.drop_commit = self.drop_commit, None
            return mode

    def _pump(self, c):
        u = socket.socket(socket.AF_UNIX)
        pending = b""           # from the client, not yet parsed into messages
        started = False         # the untyped startup message went by
        mode = None             # this connection's COMMIT is being cut
        muted = False           # the server's answers are no longer passed on
        try:
            u.connect(self.target)
            while not self.closing:
                ready, _, _ = select.select([c, u], [], [], 0.5)
                if u in ready:
                    data = u.recv(65536)
                    if not data:
                        return
                    if not muted:
                        c.sendall(data)
                if c not in ready:
                    continue
                data = c.recv(65536)
                if not data:
                    return
                pending += data
                out = b""
                while True:
                    if not started:
                        if len(pending) < 4:
                            break
                        size = struct.unpack("!I", pending[:4])[0]
                        kind = None
                    else:
                        if len(pending) < 5:
                            break
                        kind = pending[:1]
                        size = 1 + struct.unpack("!I", pending[1:5])[0]
                    if len(pending) < size:
                        break
                    msg, pending = pending[:size], pending[size:]
                    # An SSLRequest or GSSENCRequest comes before the startup message.
                    started = started or msg[4:8] not in (b"\x04\xd2\x16\x2f",
                                                          b"\x04\xd2\x16\x30")
                    if self.commit_delay and _is_commit(kind, msg):
                        u.sendall(out)
                        out = b""
                        time.sleep(self.commit_delay)
                    if kind == b"P" and mode is None and self.drop_commit:
                        if kind == b"P" and _is_commit(kind, msg):
                            mode = self._take_commit()
                            if mode == "before":
                                u.sendall(out)
                                self.fired.set()
                                return
                    out += msg
                    if kind == b"S" and mode == "after":
                        u.sendall(out)
                        out = b""
                        muted = True
                        time.sleep(1)   # the server commits meanwhile
                        self.fired.set()
                        return
                u.sendall(out)
        except OSError:
            pass
        finally:
            c.close()
            u.close()

    def close(self):
        self.closing = True
        self.listener.close()
        for c in self.held:
            c.close()
