"""Helpers for the umbox-pop3d integration tests: a private installation with
umbox-smtpd (to put mail in) and umbox-pop3d running on free loopback ports,
a byte-exact raw POP3 client, and message helpers.

The fixtures that use these live in conftest.py beside this file.
"""
import json
import os
import pathlib
import poplib
import shutil
import signal
import smtplib
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
SENDER = "sender@outside.test"

# Users of the template store: (login, extension, pop3 on?)
USERS = (("admin", None, True), ("alice", "100", True), ("bob", "101", True),
         ("carol", "102", True), ("dave", "103", False))

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer", "UndefinedBehaviorSanitizer")

# Ports are found by binding port 0; remember what was handed out so that two
# daemons of one run never get the same one.
_handed_out = set()


def free_port():
    for _ in range(100):
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
    try:
        data = (BUILD / "umbox-pop3d").read_bytes()
        return b"__asan_init" in data or b"__tsan_init" in data
    except OSError:
        return False


def ctl_env():
    return dict(os.environ, TZ="UTC", LC_ALL="C")


def run_ctl(config, *args, stdin=b"", check=True, timeout=60):
    """umboxctl -c config ARGS; returns CompletedProcess (bytes)."""
    p = subprocess.run([str(binary("umboxctl")), "-c", str(config)] + [str(a) for a in args],
                       input=stdin, capture_output=True, timeout=timeout, env=ctl_env())
    if check:
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p


def unverified_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def add_site(config):
    """The template's directory through umboxctl: DOMAIN, and USERS with PASSWORD."""
    run_ctl(config, "domain", "add", DOMAIN, "--force")
    for login, ext, pop3 in USERS:
        args = ["user", "add", login, "--password-stdin"]
        if ext:
            args += ["--extension", ext]
        if not pop3:
            args.append("--no-pop3")
        run_ctl(config, *args, stdin=(PASSWORD + "\n").encode())


def make_config(root, data_dir, ports, plaintext_auth=None, smtpd_extra=None,
                pop3_listen_extra=(), pop3d_extra=None, sections=None):
    smtp, pop3, pop3s = ports
    listen = ", ".join([f"127.0.0.1:{pop3}"] + list(pop3_listen_extra))
    lines = [
        "[general]",
        f"hostname = {HOSTNAME}",
        f"data_dir = {data_dir}",
        "user =",
        "postmaster = admin",
    ]
    # sections={"general": {"threads": N}} replaces the default line.
    if "threads" not in (sections or {}).get("general", {}):
        lines.append(f"threads = {os.environ.get('UMBOX_THREADS', 'auto')}")
    lines += [
        "[tls]",
        f"certificate = {root}/cert.pem",
        f"key = {root}/key.pem",
        "[smtpd]",
        f"listen = 127.0.0.1:{smtp}",
        "submission =",
        "smtps =",
    ]
    if "trusted_networks" not in (smtpd_extra or {}):
        lines.append("trusted_networks = 127.0.0.1/32")
    for k, v in (smtpd_extra or {}).items():
        lines.append(f"{k} = {v}")
    lines += ["[pop3d]", f"listen = {listen}", f"pop3s = 127.0.0.1:{pop3s}"]
    if plaintext_auth:
        lines.append(f"plaintext_auth = {plaintext_auth}")
    for k, v in (pop3d_extra or {}).items():
        lines.append(f"{k} = {v}")
    # A closed port unless sections name a server: umbox-smtpd's MX guard
    # and queue never ask the machine's own resolver.
    if "dns" not in (sections or {}):
        lines += ["[dns]", "servers = 127.0.0.1:9"]
    # Whole sections more: {"voicemail": {"mwi_command": "/path"}}
    for section, keys in (sections or {}).items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {v}" for k, v in keys.items()]
    text = "\n".join(lines) + "\n"
    if "store" not in (sections or {}):
        text += backend.store_section(data_dir)
    return text


class Proc:
    """One daemon started with -f -c CONFIG, stderr/stdout into a log file."""

    def __init__(self, name, root, config):
        self.name = name
        self.root = root
        self.config = config
        self.log_path = root / f"{name}.log"
        self.proc = None
        self.exit_codes = []
        self.command_prefix = []            # e.g. prlimit ... --

    def start(self):
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.command_prefix, str(binary(self.name)), "-f", "-c", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root,
                env=ctl_env())

    @property
    def pid(self):
        return self.proc.pid

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise AssertionError(f"{self.name} did not exit within {timeout}s of {sig!r}")
        self.proc = None
        self.exit_codes.append(rc)
        return rc

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def rss_kb(self):
        """VmRSS of the running daemon, in kB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")


class Env:
    """A private installation: config, data_dir (a copy of the template),
    umbox-smtpd and umbox-pop3d on free loopback ports."""

    def __init__(self, root, tls_dir, template_data_dir, plaintext_auth=None,
                 smtpd_extra=None, pop3_listen_extra=(), pop3d_extra=None, sections=None,
                 pop3d_prefix=()):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        for f in ("cert.pem", "key.pem"):
            shutil.copyfile(pathlib.Path(tls_dir) / f, self.root / f)
        os.chmod(self.root / "key.pem", 0o600)
        self.data_dir = self.root / "data"
        shutil.copytree(template_data_dir, self.data_dir)
        backend.adopt(self.data_dir)
        self.config = self.root / "umbox.conf"
        self.plaintext_auth = plaintext_auth
        self.smtpd_extra = smtpd_extra
        self.pop3d_extra = pop3d_extra      # more [pop3d] keys
        self.sections = sections            # more sections, {name: {key: value}}
        self.pop3_listen_extra = list(pop3_listen_extra)
        self._new_ports()
        self.smtpd = Proc("umbox-smtpd", self.root, self.config)
        self.pop3d = Proc("umbox-pop3d", self.root, self.config)
        self.pop3d.command_prefix = list(pop3d_prefix)

    def _new_ports(self):
        self.smtp_port, self.pop3_port, self.pop3s_port = (free_port() for _ in range(3))
        self.config.write_text(make_config(
            self.root, self.data_dir, (self.smtp_port, self.pop3_port, self.pop3s_port),
            self.plaintext_auth, self.smtpd_extra,
            [x.format(port=self.pop3_port) for x in self.pop3_listen_extra],
            self.pop3d_extra, self.sections))

    # -- daemons --------------------------------------------------------------

    def start(self, timeout=20):
        for attempt in range(3):
            ok = self._start(timeout, may_fail=attempt < 2)
            if ok:
                return self
            self._new_ports()
        raise AssertionError("unreachable")

    def _start(self, timeout, may_fail):
        for p in (self.smtpd, self.pop3d):
            p.start()
        deadline = time.monotonic() + timeout
        ready = {"smtpd": False, "pop3d": False}
        while not all(ready.values()):
            for key, p, port, probe in (("smtpd", self.smtpd, self.smtp_port, _probe_smtp),
                                        ("pop3d", self.pop3d, self.pop3_port, _probe_pop3)):
                if ready[key]:
                    continue
                if p.proc.poll() is not None:
                    rc = p.proc.returncode
                    p.proc = None
                    new_log = p.log()[p.log_offset:]
                    if may_fail and "in use" in new_log:
                        for q in (self.smtpd, self.pop3d):
                            if q.proc is not None:
                                q.stop()
                        return False
                    pytest.fail(f"{p.name} exited with {rc} at start:\n{p.log()}")
                ready[key] = probe(port)
            if time.monotonic() > deadline:
                pytest.fail(f"daemons not ready: {ready}\n{self.logs()}")
            if not all(ready.values()):
                time.sleep(0.02)
        self.wait_probes_gone()
        return True

    def wait_probes_gone(self):
        """The probes' sessions are gone before a test counts connections."""
        proc_util.wait_sessions(self.pop3d.pid, {self.pop3_port, self.pop3s_port}, 0)

    def restart_pop3d(self, sig=signal.SIGTERM, timeout=20):
        """Stop umbox-pop3d with sig, start it again on the same ports and
        wait until it serves; returns the exit code of the stopped one."""
        rc = self._restart(self.pop3d, self.pop3_port, _probe_pop3, sig, timeout)
        self.wait_probes_gone()
        return rc

    def restart_smtpd(self, sig=signal.SIGTERM, timeout=20):
        """The same for umbox-smtpd."""
        return self._restart(self.smtpd, self.smtp_port, _probe_smtp, sig, timeout)

    @staticmethod
    def _restart(p, port, probe, sig, timeout):
        rc = p.stop(sig)
        p.start()
        deadline = time.monotonic() + timeout
        while not probe(port):
            if not p.running:
                pytest.fail(f"{p.name} exited at restart:\n{p.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{p.name} does not serve after restart:\n{p.log()}")
            time.sleep(0.02)
        return rc

    def stop(self):
        """SIGTERM both; returns problems (empty list when both exited 0)."""
        problems = []
        for p in (self.pop3d, self.smtpd):
            try:
                rc = p.stop()
            except AssertionError as e:
                problems.append(f"{e}\n{p.log()}")
                continue
            if rc not in (None, 0):
                problems.append(f"{p.name} exited {rc} on SIGTERM:\n{p.log()}")
            for mark in SANITIZER_MARKS:
                if mark in p.log():
                    problems.append(f"sanitizer report in {p.name}'s log:\n{p.log()}")
                    break
        return problems

    def logs(self):
        return "\n".join(f"--- {p.name}\n{p.log()}" for p in (self.smtpd, self.pop3d))

    # -- umboxctl -------------------------------------------------------------

    def ctl(self, *args, **kw):
        return run_ctl(self.config, *args, **kw)

    def add_user(self, login, extension=None, pop3=True, password=PASSWORD):
        args = ["user", "add", login, "--password-stdin"]
        if extension:
            args += ["--extension", extension]
        if not pop3:
            args.append("--no-pop3")
        self.ctl(*args, stdin=(password + "\n").encode())

    def mailbox(self, login):
        """Entries of a mailbox: umboxctl --json mail list."""
        return json.loads(self.ctl("--json", "mail", "list", login).stdout)

    def uids(self, login):
        return [e["uid"] for e in self.mailbox(login)]

    def export(self, login, uid):
        """The exact stored bytes of an entry."""
        return self.ctl("mail", "export", login, uid).stdout

    def messages(self, login):
        """{uid: stored bytes} in list order."""
        return {u: self.export(login, u) for u in self.uids(login)}

    # -- putting mail in --------------------------------------------------------

    def deliver(self, login, msgs):
        """Send each message (str/bytes) to login@DOMAIN in one SMTP session."""
        if isinstance(msgs, (str, bytes)):
            msgs = [msgs]
        with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="client.outside.test",
                          timeout=60) as s:
            for m in msgs:
                refused = s.sendmail(SENDER, [f"{login}@{DOMAIN}"], m)
                assert refused == {}, refused

    # -- POP3 clients -------------------------------------------------------------

    def poplib(self, login="alice", password=PASSWORD, timeout=15):
        """A poplib.POP3 session logged in with USER/PASS."""
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=timeout)
        p.user(login)
        p.pass_(password)
        return p

    def raw(self, **kw):
        return Pop3Raw(self.pop3_port, **kw)

    def raw_tls(self, **kw):
        return Pop3Raw(self.pop3s_port, tls=True, **kw)


def _probe_smtp(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            f = s.makefile("rb")
            if not f.readline().startswith(b"220 "):
                return False
            s.sendall(b"QUIT\r\n")
            f.readline()
            return True
    except OSError:
        return False


def _probe_pop3(port):
    """Greets, QUIT answered, and the server hangs up (the session is gone
    before the test starts)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            f = s.makefile("rb")
            if not f.readline().startswith(b"+OK"):
                return False
            s.sendall(b"QUIT\r\n")
            f.readline()
            while s.recv(4096):
                pass
            return True
    except OSError:
        return False


# -- a byte-exact POP3 client ------------------------------------------------

class Closed(Exception):
    """The server closed the connection while a reply was expected."""


class Pop3Raw:
    """A raw POP3 client: lines are bytes without CRLF; nothing is hidden."""

    def __init__(self, port, host="127.0.0.1", tls=False, timeout=15, greet=True):
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            sock = unverified_context().wrap_socket(sock, server_hostname=HOSTNAME)
        self.sock = sock
        self.buf = b""
        self.greeting = self.line() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            raise Closed(self.buf)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, line):
        """Send one command (CRLF added); return the status line as str."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.line().decode("utf-8", "replace")

    def multi(self):
        """The lines of a multi-line body up to "." (still dot-stuffed)."""
        lines = []
        while True:
            l = self.line()
            if l == b".":
                return lines
            lines.append(l)

    def body_raw(self):
        """The wire bytes of a multi-line body, terminator excluded, with the
        CRLF before it: e.g. b'a\\r\\n..b\\r\\n'."""
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
            return b""
        start = 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                data, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return data
            start = max(0, len(self.buf) - 4)
            self._fill()

    def login(self, user="alice", password=PASSWORD):
        r = self.cmd(f"USER {user}")
        assert r.startswith("+OK"), r
        r = self.cmd(f"PASS {password}")
        assert r.startswith("+OK"), r
        return r

    def retr(self, n):
        """(status, un-stuffed message bytes) of RETR n."""
        r = self.cmd(f"RETR {n}")
        if not r.startswith("+OK"):
            return r, None
        return r, unstuff(self.body_raw())

    def starttls(self):
        assert self.buf == b"", f"unread bytes before TLS: {self.buf!r}"
        self.sock = unverified_context().wrap_socket(self.sock, server_hostname=HOSTNAME)

    def wait_closed(self, timeout=10):
        """Read until EOF; returns what came before it."""
        self.sock.settimeout(timeout)
        data, self.buf = self.buf, b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                return data
            if not chunk:
                return data
            data += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def stuff(msg):
    """RFC 1939 byte-stuffing of a message whose lines end with CRLF."""
    out = msg.replace(b"\r\n.", b"\r\n..")
    if out.startswith(b"."):
        out = b"." + out
    return out


def unstuff(data):
    out = data.replace(b"\r\n..", b"\r\n.")
    if out.startswith(b".."):
        out = out[1:]
    return out


def joined(lines):
    """poplib's un-stuffed lines back to bytes: CRLF after each line."""
    return b"".join(l + b"\r\n" for l in lines)


def message(subject, body="hello\r\n", extra_headers=""):
    """A small message as the client sends it (CRLF lines)."""
    return (f"From: {SENDER}\r\nTo: someone@{DOMAIN}\r\nSubject: {subject}\r\n"
            f"{extra_headers}\r\n{body}")


def head_of(msg):
    """Header block of a stored message including the empty line."""
    return msg.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"


def body_of(msg):
    return msg.split(b"\r\n\r\n", 1)[1]


def wait_login(env, login="alice", password=PASSWORD, timeout=5):
    """Log in, retrying briefly while the mailbox is still [IN-USE] (a dropped
    session's lock is released once the server has seen the drop)."""
    deadline = time.monotonic() + timeout
    while True:
        c = env.raw()
        assert c.cmd(f"USER {login}").startswith("+OK")
        r = c.cmd(f"PASS {password}")
        if r.startswith("+OK"):
            return c
        c.close()
        assert r.startswith("-ERR [IN-USE]"), r
        assert time.monotonic() < deadline, f"mailbox still in use after {timeout}s"
        time.sleep(0.1)
