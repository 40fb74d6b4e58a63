"""Helpers for the outbound SMTP client's tests: the build's mta-send
driver, its output parsed, and a scripted raw server for replies no
real server would send."""
import os
import pathlib
import socket
import ssl
import subprocess
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build")))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_context(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert / "cert.pem"), str(cert / "key.pem"))
    return ctx


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.steps = [l.split(" ", 3)[1:] for l in self.out.splitlines() if l.startswith("step ")]
        self.rcpts = {}
        for l in self.out.splitlines():
            if l.startswith("rcpt "):
                _, addr, status, *reply = l.split(" ", 3)
                self.rcpts[addr] = (status, reply[0] if reply else "")
        self.probe = next((l.split()[1] for l in self.out.splitlines()
                           if l.startswith("probe ")), None)

    def step(self, name):
        """(ok, detail) of the last step of that name."""
        found = [s for s in self.steps if s[0] == name]
        assert found, f"no {name} step in:\n{self.out}"
        return found[-1][1] == "ok", (found[-1][2] if len(found[-1]) > 2 else "")

    def __repr__(self):
        return f"<rc={self.rc}\n{self.out}{self.err}>"


def mta_send(*args, rcpts=(), message=None, tmp_path=None, timeout=30):
    """Run the driver; message (bytes) is written to a file first."""
    cmd = [str(BUILD / "tests" / "tools" / "mta-send"), *args]
    if message is not None:
        f = tmp_path / f"msg{len(list(tmp_path.iterdir()))}"
        f.write_bytes(message)
        cmd += ["--file", str(f)]
    cmd += list(rcpts)
    return Result(subprocess.run(cmd, capture_output=True, text=True, timeout=timeout))


class ScriptServer:
    """A raw TCP server answering each connection from a script: a list of
    (expect, reply) where expect is a command prefix to read first (None:
    send reply at once, as the greeting; ANY: whatever bytes come next,
    such as a TLS ClientHello; bytes: everything up to and including
    them, such as a message's final dot) and reply the exact bytes sent
    (CLOSE: hang up; Slow(seconds, bytes): after a pause).  With
    later, the second connection follows later[0], and so on, the last
    script serving every connection after it."""

    ANY = object()
    CLOSE = object()

    class Slow:
        """A reply sent after a pause of seconds."""

        def __init__(self, seconds, data):
            self.seconds, self.data = seconds, data

    def __init__(self, script, host="127.0.0.1", port=0, later=()):
        self.scripts = [script, *later]
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            script = self.scripts[min(self.connections, len(self.scripts) - 1)]
            self.connections += 1
            threading.Thread(target=self.serve, args=(c, script), daemon=True).start()

    def serve(self, c, script):
        buf = b""
        c.settimeout(10)
        try:
            for expect, reply in script:
                if expect is self.ANY:
                    d = buf or c.recv(65536)
                    if not d:
                        return
                    self.received.append(d)
                    buf = b""
                elif isinstance(expect, bytes):
                    while expect not in buf:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                    upto, buf = buf.split(expect, 1)
                    self.received.append(upto + expect)
                elif expect is not None:
                    while b"\r\n" not in buf:
                        d = c.recv(65536)
                        if not d:
                            return
                        buf += d
                    line, buf = buf.split(b"\r\n", 1)
                    self.received.append(line)
                    assert line.upper().startswith(expect.upper().encode()), (line, expect)
                if reply is self.CLOSE:
                    return
                if isinstance(reply, self.Slow):
                    time.sleep(reply.seconds)
                    reply = reply.data
                if reply:
                    c.sendall(reply)
            if buf:
                self.received.append(buf)
            while True:
                d = c.recv(65536)
                if not d:
                    return
                self.received.append(d)
        except (OSError, AssertionError):
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()
