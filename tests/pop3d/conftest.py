"""Fixtures for the umbox-pop3d tests: per test, a private installation (temp
dir, config, store copied from a session-wide template) with umbox-smtpd (to
put mail in) and umbox-pop3d running on free loopback ports.

Template store: domain example.test (added with --force: no DNS in tests),
users admin (the postmaster), alice (extension 100), bob (101), carol (102)
and dave (103, POP3 off), all with password "secret".
"""
import subprocess

import pytest

import backend
from pop3d_util import Env, add_site


@pytest.fixture(scope="session")
def pop3_tls_dir(tmp_path_factory):
    """A self-signed certificate for mail.example.test, made once."""
    d = tmp_path_factory.mktemp("pop3-tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-subj", "/CN=mail.example.test", "-keyout", str(d / "key.pem"),
         "-out", str(d / "cert.pem"), "-days", "2"],
        check=True, capture_output=True, timeout=60)
    return d


@pytest.fixture(scope="session")
def pop3_template(tmp_path_factory):
    """The data_dir every test's store starts from (see the module docstring)."""
    root = tmp_path_factory.mktemp("pop3-template")
    data = root / "data"
    conf = root / "umbox.conf"
    conf.write_text(f"[general]\nhostname = mail.example.test\ndata_dir = {data}\n"
                    "user =\npostmaster = admin\n" + backend.store_section(data))
    add_site(conf)
    return data


@pytest.fixture
def pop3_factory(request, tmp_path, pop3_tls_dir, pop3_template):
    """pop3_factory(plaintext_auth=..., smtpd_extra={...}, pop3d_extra={...}) -> a started Env.
    Every daemon must exit 0 on SIGTERM at teardown."""
    envs = []
    request.node._pop3_envs = envs

    def make(**kw):
        env = Env(tmp_path / f"env{len(envs) + 1}", pop3_tls_dir, pop3_template, **kw)
        envs.append(env)
        return env.start()

    yield make
    problems = []
    for env in envs:
        problems += env.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def env(pop3_factory):
    """The default installation: plaintext_auth = tls-or-loopback."""
    return pop3_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the daemons' logs to a failing test's report."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for env in getattr(item, "_pop3_envs", []):
        for p in (env.smtpd, env.pop3d):
            rep.sections.append((f"{p.name} log ({env.root})", p.log()))
