"""Shared fixtures for umbox's integration tests (tests/cli, tests/smtpd, ...).

Every test gets its own temporary directory holding a config file and a
data_dir; the programs under test are the built binaries in $UMBOX_BUILD
(default: <repo>/build).  Only the standard library and pytest are used
here; the DNS server every installation asks (tests/dns/dnsserver.py, one
per session) needs dnslib (Debian's python3-dnslib).
"""
import atexit
import json
import os
import pathlib
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading

import pytest

import backend

REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build")))

HOSTNAME = "mail.example.test"
POSTMASTER = "admin"

# What a command-line error looks like (SPEC §9).
ERROR_PREFIX = "umboxctl: "

DNS_SERVER = REPO / "tests" / "dns" / "dnsserver.py"


class DnsServer:
    """tests/dns/dnsserver.py on 127.0.0.1, started on first use and kept
    for the session, so that `domain add` (the MX guard, SPEC §7) asks a
    zone of known answers and never the machine's resolver.

    The server exits when its stdin reaches end of file (we hold the write
    end of a pipe) and by itself after some minutes; port() starts it again
    on the same port when it has gone, so configs already written stay
    right.
    """

    def __init__(self):
        self.proc = None
        self._port = None
        self._lock = threading.Lock()

    @staticmethod
    def _python():
        try:
            import dnslib  # noqa: F401
            return sys.executable
        except ImportError:
            return "/usr/bin/python3"

    def port(self):
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                return self._port
            self._start()
            return self._port

    def _start(self):
        if self.proc is not None:
            self._reap()
        args = [self._python(), str(DNS_SERVER)]
        if self._port is not None:
            args.append(str(self._port))
        err = tempfile.TemporaryFile()
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err)
        line = proc.stdout.readline().decode(errors="replace")
        if not line.startswith("PORT "):
            proc.kill()
            proc.wait()
            err.seek(0)
            raise RuntimeError(f"{DNS_SERVER} did not start: {line!r}\n"
                               f"{err.read().decode(errors='replace')}")
        err.close()
        self.proc = proc
        self._port = int(line.split()[1])

    def _reap(self):
        proc, self.proc = self.proc, None
        try:
            proc.stdin.close()          # end of file: the server exits
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()

    def stop(self):
        with self._lock:
            if self.proc is not None:
                self._reap()


DNS = DnsServer()
atexit.register(DNS.stop)

def daemon_threads():
    """[general] threads for the daemons under test: UMBOX_THREADS, else
    auto.  `make check` runs the daemon suites at 4 (more loops than this
    machine's cores, so races show) and again at 1."""
    return os.environ.get("UMBOX_THREADS", "auto")


_DNS_SECTION = re.compile(r"^\s*\[\s*dns\s*\]", re.M | re.I)


@pytest.fixture(scope="session", autouse=True)
def _session_dns_server():
    """Stops the session's DNS server at the end (it starts when needed)."""
    yield
    DNS.stop()


@pytest.fixture(scope="session")
def dnsserver_port():
    """The port of the session's tests/dns/dnsserver.py on 127.0.0.1."""
    return DNS.port()


def binary(name):
    """Path of a built program; fails the test (not skips) if it is missing."""
    path = BUILD / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is not built (run make, or set UMBOX_BUILD)")
    return path


class Result:
    """What one run of a program did."""

    def __init__(self, args, rc, out, err):
        self.args = args
        self.rc = rc
        self.out = out
        self.err = err

    @property
    def lines(self):
        return self.out.splitlines()

    @property
    def err_lines(self):
        return self.err.splitlines()

    @property
    def err_after_usage(self):
        """stderr lines without the usage text some errors print first."""
        return strip_usage(self.err)

    def table(self):
        """Parse an aligned table (header row, columns two spaces apart,
        each starting where its header starts) into a list of dicts."""
        lines = self.lines
        assert lines, f"no table in {self!r}"
        header = lines[0]
        names, starts = [], []
        for i, ch in enumerate(header):
            if ch != " " and (i == 0 or header[i - 1] == " "):
                starts.append(i)
        names = header.split()
        assert len(names) == len(starts), f"header with spaces? {header!r}"
        rows = []
        for line in lines[1:]:
            cells = []
            for k, s in enumerate(starts):
                end = starts[k + 1] if k + 1 < len(starts) else None
                if k + 1 < len(starts):
                    assert line[end - 2:end] == "  " or len(line) < end, \
                        f"misaligned row {line!r} under {header!r}"
                cells.append(line[s:end].strip())
            rows.append(dict(zip(names, cells)))
        return rows

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise AssertionError(f"not valid JSON ({e}) from {self.args}:\n{self.out}")

    def __repr__(self):
        return (f"<Result {self.args} rc={self.rc}\n--- stdout\n{self.out}"
                f"--- stderr\n{self.err}>")


def strip_usage(err):
    """Drop the usage text that umboxctl prints before a top-level error."""
    lines = err.splitlines()
    if lines and lines[0].startswith("usage: umboxctl"):
        for i, line in enumerate(lines):
            if line.startswith("See umboxctl(8)"):
                return lines[i + 1:]
    return lines


class Umbox:
    """A private umbox installation: a config file and a data directory."""

    def __init__(self, root, extra_config=""):
        self.root = pathlib.Path(root)
        self.data_dir = self.root / "data"
        self.config = self.root / "umbox.conf"
        self.hostname = HOSTNAME
        self.postmaster = POSTMASTER
        self.write_config(extra_config)

    def write_config(self, extra=""):
        self._extra = extra
        """(Re)write the config: [general] plus any extra sections/keys,
        then [dns] servers = the session's DNS server (tests/dns/dnsserver.py)
        unless extra has a [dns] section of its own."""
        text = (
            "[general]\n"
            f"data_dir = {self.data_dir}\n"
            f"hostname = {self.hostname}\n"
            f"postmaster = {self.postmaster}\n"
        )
        if not re.search(r"^threads\s*=", extra or "", re.M):
            text += f"threads = {daemon_threads()}\n"
        if extra:
            text += extra if extra.endswith("\n") else extra + "\n"
        if not _DNS_SECTION.search(extra or ""):
            text += f"[dns]\nservers = 127.0.0.1:{DNS.port()}\n"
        if not re.search(r"^\[store\]", extra or "", re.M):
            text += backend.store_section(self.data_dir)
        self.config.write_text(text)

    @property
    def store_path(self):
        return self.data_dir / "store.db"

    def store_exists(self):
        """Whether the store has been made (backend.store_exists)."""
        return backend.store_exists(self.data_dir)

    # -- running umboxctl -------------------------------------------------

    def run(self, *args, stdin=None, config=True, timeout=30):
        """Run umboxctl -c CONFIG ARGS...; never raises on a non-zero exit.

        config=True uses this installation's file, a path uses that file,
        None passes no -c at all.  stdin is str or bytes (default: empty).
        """
        cmd = [str(binary("umboxctl"))]
        if config is True:
            cmd += ["-c", str(self.config)]
        elif config is not None:
            cmd += ["-c", str(config)]
        cmd += [str(a) for a in args]
        if isinstance(stdin, str):
            stdin = stdin.encode()
        env = dict(os.environ, TZ="UTC", LC_ALL="C")
        p = subprocess.run(cmd, input=stdin if stdin is not None else b"",
                           capture_output=True, timeout=timeout, env=env,
                           cwd=self.root)
        return Result(cmd[1:], p.returncode, p.stdout.decode("utf-8", "replace"),
                      p.stderr.decode("utf-8", "replace"))

    def ok(self, *args, **kw):
        """Run and insist on success: exit 0 and no error on stderr."""
        r = self.run(*args, **kw)
        assert r.rc == 0, r
        assert not any(l.startswith(ERROR_PREFIX) and not l.startswith(ERROR_PREFIX + "warning:")
                       for l in r.err_lines), r
        return r

    def json(self, *args, **kw):
        """Run with --json, insist on success and return the parsed output."""
        return self.ok("--json", *args, **kw).json()

    def fail(self, code, *args, **kw):
        """Run and insist on failure with exit code and umboxctl's error form:
        nothing on stdout, and every stderr line (after any usage text)
        starting with 'umboxctl: '."""
        r = self.run(*args, **kw)
        assert r.rc == code, r
        assert r.out == "", r
        lines = r.err_after_usage
        assert lines, r
        assert all(l.startswith(ERROR_PREFIX) for l in lines), r
        return r

    # -- looking at the store ---------------------------------------------

    def snapshot(self):
        """Every row of every table, read-only: to show that nothing changed."""
        return backend.snapshot(self.data_dir)

    def clone_data_from(self, other):
        """Start from a copy of another (idle) installation's data_dir."""
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        shutil.copytree(other.data_dir, self.data_dir)
        if backend.PG:
            backend.adopt(self.data_dir)
            self.write_config(self._extra)

    def query(self, sql, *params):
        """Rows of a read-only query, whichever the backend (backend.query)."""
        return backend.query(self.data_dir, sql, *params)


@pytest.fixture
def umbox(tmp_path):
    """A fresh installation in its own temp dir; see Umbox."""
    return Umbox(tmp_path)


@pytest.fixture
def umbox_factory(tmp_path):
    """Make installations with extra config text: umbox_factory("[queue]\\n...")."""
    count = [0]

    def make(extra_config=""):
        count[0] += 1
        root = tmp_path / f"umbox{count[0]}"
        root.mkdir()
        return Umbox(root, extra_config)

    return make


@pytest.fixture(scope="session")
def umbox_template_factory(tmp_path_factory):
    """Session-wide installations, for templates that tests copy with
    Umbox.clone_data_from (setup run once, every test still on its own copy)."""

    def make(name="template", extra_config=""):
        return Umbox(tmp_path_factory.mktemp(name), extra_config)

    return make
