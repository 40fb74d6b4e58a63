"""Fixtures for the umbox-smtpd tests: a running daemon per test (or per
module), on free loopback ports, with its own temp dir, config and store.

The store starts as a copy of a session-wide template:
  domain example.test (added with --force: no DNS in tests),
  users admin (the postmaster), alice (extension 100), bob (101), carol (102),
  all with password "secret";
  aliases team -> alice bob carol,
          crowd -> alice team 101 (alice and bob twice: de-duplication).
"""
import subprocess

import pytest

from smtpd_util import DOMAIN, PASSWORD, Daemon, sanitizer_report


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory):
    """A self-signed certificate for mail.example.test, made once."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-subj", "/CN=mail.example.test", "-keyout", str(d / "key.pem"),
         "-out", str(d / "cert.pem"), "-days", "2"],
        check=True, capture_output=True, timeout=60)
    return d


@pytest.fixture(scope="session")
def smtpd_template(umbox_template_factory):
    """The store every daemon starts from (see the module docstring)."""
    t = umbox_template_factory("smtpd-template")
    t.ok("domain", "add", DOMAIN, "--force")
    for login, ext in (("admin", None), ("alice", "100"), ("bob", "101"), ("carol", "102")):
        args = ["user", "add", login, "--password-stdin"]
        if ext:
            args += ["--extension", ext]
        t.ok(*args, stdin=PASSWORD + "\n")
    t.ok("alias", "add", "team", "alice", "bob", "carol")
    t.ok("alias", "add", "crowd", "alice", "team", "101")
    return t


class _Daemons:
    """Makes daemons for one scope and stops them all at its end."""

    def __init__(self, base, tls, template):
        self.base, self.tls, self.template = base, tls, template
        self.all = []

    def __call__(self, start=True, **smtpd_extra):
        d = Daemon(self.base / f"smtpd{len(self.all) + 1}", self.tls,
                   self.template.data_dir, smtpd_extra)
        self.all.append(d)
        return d.start() if start else d

    def finish(self):
        problems = []
        for d in self.all:
            try:
                rc = d.stop()
            except AssertionError as e:
                problems.append(f"{e}\n{d.log()}")
                continue
            if rc not in (None, 0):
                problems.append(f"umbox-smtpd exited {rc} on SIGTERM:\n{d.log()}")
            elif rc == 0 and sanitizer_report(d.log()):
                problems.append(f"sanitizer report in umbox-smtpd's log:\n{d.log()}")
        if problems:
            pytest.fail("\n".join(problems))


@pytest.fixture
def smtpd_factory(request, tmp_path, tls_dir, smtpd_template):
    """smtpd_factory(max_recipients=5, ...) -> a started Daemon whose [smtpd]
    has those extra keys; every daemon must exit 0 on SIGTERM at teardown."""
    daemons = _Daemons(tmp_path, tls_dir, smtpd_template)
    request.node._umbox_daemons = daemons.all
    yield daemons
    daemons.finish()


@pytest.fixture
def smtpd(smtpd_factory):
    """A started daemon with the default limits."""
    return smtpd_factory()


@pytest.fixture(scope="module")
def shared_smtpd(request, tmp_path_factory, tls_dir, smtpd_template):
    """One daemon for a whole module: for tests that must store nothing."""
    daemons = _Daemons(tmp_path_factory.mktemp("shared-smtpd"), tls_dir, smtpd_template)
    request.node._umbox_daemons = daemons.all
    d = daemons()
    yield d
    daemons.finish()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the daemons' logs to a failing test's report."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    seen = list(getattr(item, "_umbox_daemons", []))
    mod = item.getparent(pytest.Module)
    seen += [d for d in getattr(mod, "_umbox_daemons", []) if d not in seen]
    for d in seen:
        rep.sections.append((f"umbox-smtpd log ({d.root})", d.log()))
