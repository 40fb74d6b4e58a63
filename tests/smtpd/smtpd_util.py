"""Helpers for the umbox-smtpd integration tests: a running daemon on free
loopback ports, a byte-exact raw SMTP client, and mailbox/queue inspection.

The fixtures that use these live in conftest.py beside this file.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

import backend
import proc_util

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build")))
HOSTNAME = "mail.example.test"

DOMAIN = "example.test"
PASSWORD = "secret"
LOCAL_USERS = ("admin", "alice", "bob", "carol")

# Ports are found by binding port 0; the socket is closed before the daemon
# binds, so remember what was handed out to avoid giving the same one twice.
_handed_out = set()


def free_port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port")


def binary(name):
    """Path of a built program; fails the test (not skips) if it is missing."""
    path = BUILD / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is not built (run make, or set UMBOX_BUILD)")
    return path


def sanitized_build():
    """Is umbox-smtpd built with a sanitizer (make asan or make tsan)?"""
    path = BUILD / "umbox-smtpd"
    try:
        data = path.read_bytes()
        return b"__asan_init" in data or b"__tsan_init" in data
    except OSError:
        return False


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer", "UndefinedBehaviorSanitizer")


def sanitizer_report(log):
    """The first sanitizer complaint in a daemon log, or None."""
    for mark in SANITIZER_MARKS:
        if mark in log:
            return mark
    return None


def smtpd_config(data_dir, tls_dir, ports, smtpd_extra=None):
    """A complete config: loopback ports, our certificate, extra [smtpd] keys."""
    mx, sub, smtps = ports
    lines = [
        "[general]",
        f"hostname = {HOSTNAME}",
        f"data_dir = {data_dir}",
        "user =",
        "postmaster = admin",
    ]
    # A test that sets general.threads itself gets only its own line.
    if "general.threads" not in (smtpd_extra or {}):
        lines.append(f"threads = {os.environ.get('UMBOX_THREADS', 'auto')}")
    lines += [
        "[tls]",
        f"certificate = {tls_dir}/cert.pem",
        f"key = {tls_dir}/key.pem",
        "[smtpd]",
        f"listen = {(smtpd_extra or {}).get('listen_host', '127.0.0.1')}:{mx}",
        f"submission = 127.0.0.1:{sub}",
        f"smtps = 127.0.0.1:{smtps}",
    ]
    # Keys "section.key" go to their section; the rest to [smtpd].
    other = {"dns": {"servers": "127.0.0.1:9"}}
    for k, v in (smtpd_extra or {}).items():
        if k == "listen_host":      # the MX listener's address, above
            continue
        if "." in k:
            section, key = k.split(".", 1)
            other.setdefault(section, {})[key] = v
        else:
            lines.append(f"{k} = {v}")
    lines += ["[pop3d]", "listen =", "pop3s ="]
    # By default outside recipients stay queued: the DNS server is a closed
    # port on loopback, so every lookup fails for now (a temporary failure,
    # never the network's own answer for the test domains).
    for section, keys in other.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {v}" for k, v in keys.items()]
    text = "\n".join(lines) + "\n"
    if "store" not in other:
        text += backend.store_section(data_dir)
    return text


class Daemon:
    """One umbox-smtpd -f on its own config, data dir and ports."""

    def __init__(self, root, tls_dir, template_data_dir=None, smtpd_extra=None):
        """root: an empty directory of the test's own; tls_dir holds the
        session's cert.pem/key.pem; template_data_dir is copied as data_dir."""
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        for f in ("cert.pem", "key.pem"):
            shutil.copyfile(pathlib.Path(tls_dir) / f, self.root / f)
        os.chmod(self.root / "key.pem", 0o600)
        self.data_dir = self.root / "data"
        if template_data_dir is not None:
            shutil.copytree(template_data_dir, self.data_dir)
        backend.adopt(self.data_dir)
        self.store_path = self.data_dir / "store.db"
        self.mx, self.submission, self.smtps = (free_port() for _ in range(3))
        self.config = self.root / "umbox.conf"
        self.smtpd_extra = dict(smtpd_extra or {})
        self.write_config(self.smtpd_extra)
        self.log_path = self.root / "smtpd.log"
        self.proc = None
        # Run the daemon through this command (e.g. prlimit --nofile=N:N --),
        # which must exec it so that proc.pid stays the daemon's.
        self.command_prefix = []

    def write_config(self, smtpd_extra=None):
        self.config.write_text(smtpd_config(
            self.data_dir, self.root, (self.mx, self.submission, self.smtps), smtpd_extra))

    # -- process --------------------------------------------------------

    def start(self, timeout=15):
        """Start and wait until it serves.  If another program took one of
        our ports in the meantime, move to fresh ports and try again."""
        for attempt in range(3):
            if self._start(timeout, may_fail=attempt < 2):
                return self
            self.mx, self.submission, self.smtps = (free_port() for _ in range(3))
            self.write_config(self.smtpd_extra)
        raise AssertionError("unreachable")

    def _start(self, timeout, may_fail):
        assert self.proc is None
        log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [*self.command_prefix, str(binary("umbox-smtpd")), "-f", "-c", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root,
                env=dict(os.environ, TZ="UTC", LC_ALL="C"))
        finally:
            log.close()
        # Ready when the submission port greets.  The probe says QUIT and
        # waits for the server to hang up, so that the session is gone
        # before the test starts counting connections.  (All listeners are
        # bound before the daemon serves any.)
        deadline = time.monotonic() + timeout
        greeted = False
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                if may_fail and rc == 1 and "Address already in use" in self.log()[log_size:]:
                    return False
                pytest.fail(f"umbox-smtpd exited with {rc} at start:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.submission), timeout=5) as s:
                    f = s.makefile("rb")
                    if f.readline().startswith(b"220 "):
                        s.sendall(b"QUIT\r\n")
                        f.readline()
                        s.settimeout(5)
                        while s.recv(4096):
                            pass
                        greeted = True
                    f.close()   # the socket closes only with its file
                if greeted:
                    proc_util.wait_sessions(self.proc.pid,
                                            {self.mx, self.submission, self.smtps}, 0)
                    return True
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"umbox-smtpd does not greet on {self.submission}:\n{self.log()}")
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Send sig and wait; returns the exit code (None when not running)."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise AssertionError(f"umbox-smtpd did not exit within {timeout}s of {sig!r}")
        self.proc = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- looking at the store ---------------------------------------------

    def ctl(self, *args, check=True, timeout=30):
        """Run umboxctl -c CONF ARGS; returns (rc, stdout bytes, stderr str)."""
        p = subprocess.run([str(binary("umboxctl")), "-c", str(self.config)] + [str(a) for a in args],
                           capture_output=True, timeout=timeout, cwd=self.root,
                           env=dict(os.environ, TZ="UTC", LC_ALL="C"))
        if check:
            assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")

    def mailbox(self, login):
        """The entries of a mailbox (umboxctl --json mail list)."""
        return json.loads(self.ctl("--json", "mail", "list", login)[1])

    def export(self, login, uid):
        return self.ctl("mail", "export", login, uid)[1]

    def messages(self, login):
        """Every message of a mailbox, raw bytes as stored, in list order."""
        return [self.export(login, e["uid"]) for e in self.mailbox(login)]

    def sql(self, query, *params):
        """Rows of a read-only query on the store (backend.query)."""
        return backend.query(self.data_dir, query, *params)

    def queue(self):
        """(message_id, sender, recipient) of every queue row (read-only)."""
        return [(int(m), s, r) for m, s, r in
                self.sql("SELECT message_id, sender, recipient FROM queue")]

    def assert_nothing_stored(self):
        """No queue row and no mailbox entry in any of the template's users."""
        assert self.queue() == []
        assert {u: self.mailbox(u) for u in LOCAL_USERS} == {u: [] for u in LOCAL_USERS}


# -- messages -----------------------------------------------------------------

def header_block(msg):
    """The header lines of a raw message (unfolded not), as a list of str."""
    head = msg.split(b"\r\n\r\n", 1)[0]
    return head.decode("utf-8", "replace").split("\r\n")


def header_names(msg):
    return [l.split(":", 1)[0].lower() for l in header_block(msg) if l and l[0] not in " \t"]


def headers(msg, name):
    """Values of every header called name (folded lines joined)."""
    out, cur = [], None
    for line in header_block(msg):
        if line[:1] in (" ", "\t") and cur is not None:
            out[-1] += " " + line.strip()
            continue
        cur = None
        k, sep, v = line.partition(":")
        if sep and k.lower() == name.lower():
            out.append(v.strip())
            cur = k
    return out


def body(msg):
    return msg.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in msg else b""


def client_part(msg):
    """What the client sent: the message without the headers the server
    put on top (Return-Path, Delivered-To, Received and its folded lines)."""
    lines = msg.split(b"\r\n")
    i = 0
    added = (b"return-path:", b"delivered-to:", b"received:")
    while i < len(lines):
        low = lines[i].lower()
        if low.startswith(added):
            i += 1
            while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                i += 1
            continue
        break
    return b"\r\n".join(lines[i:])


def simple_message(subject="test", body_text="hello", extra_headers=""):
    return (f"From: sender@outside.test\r\nTo: someone@{DOMAIN}\r\n"
            f"Subject: {subject}\r\n{extra_headers}\r\n{body_text}\r\n")


# -- raw client -----------------------------------------------------------------

class Closed(Exception):
    """The server closed the connection while a reply was expected."""


class Reply:
    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[0][:3])
        self.text = "\n".join(l[4:] for l in lines)

    def __repr__(self):
        return "<Reply " + " | ".join(self.lines) + ">"


class Raw:
    """A byte-exact SMTP client over a plain socket.

    greet=True reads the 220 greeting (the MX port sends it after ~100 ms)."""

    def __init__(self, port, greet=True, timeout=10, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.transcript = []
        self.greeting = self.reply() if greet else None

    @classmethod
    def wrap(cls, sock):
        """A Raw over an already connected (and greeted) blocking socket."""
        c = cls.__new__(cls)
        c.sock, c.buf, c.transcript, c.greeting = sock, b"", [], None
        return c

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self._line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        r = Reply(lines)
        self.transcript.append(r)
        return r

    def cmd(self, line):
        """Send one command line (CRLF added) and return its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def wait_closed(self, timeout=5):
        """Read until EOF; returns what came before it (raises on timeout)."""
        self.sock.settimeout(timeout)
        data = self.buf
        self.buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def starttls(self):
        """Wrap the socket in TLS (no verification: self-signed cert)."""
        assert self.buf == b"", f"unread bytes before TLS: {self.buf!r}"
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mail.example.test")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def unverified_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
