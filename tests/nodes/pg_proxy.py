"""A TCP port on 127.0.0.1 in front of the test cluster's Unix socket, so
that a dsn can name a host and port: it passes bytes both ways, or, when
silent, accepts connections and never says a word (a server that hangs)."""
import os
import re
import select
import socket
import threading


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

    def _pump(self, c):
        u = socket.socket(socket.AF_UNIX)
        try:
            u.connect(self.target)
            peers = {c: u, u: c}
            while not self.closing:
                ready, _, _ = select.select(list(peers), [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
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
