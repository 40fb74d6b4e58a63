"""Fixtures for several umbox nodes sharing one PostgreSQL database.

A site is a database on the test cluster (tests/run's, UMBOX_TEST_PG)
with the pop3d tests' domain and users; node(name) starts umbox-smtpd and
umbox-pop3d with [store] node_id = name on it, on ports of their own.
"""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "pop3d"))

import backend                                              # noqa: E402
from pop3d_util import Env, add_site  # noqa: E402


@pytest.fixture(scope="session")
def node_tls_dir(tmp_path_factory):
    import subprocess
    d = tmp_path_factory.mktemp("node-tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
         "/CN=mail.example.test", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
         "-days", "2"], check=True, capture_output=True, timeout=60)
    return d


class Site:
    """One database; nodes on it."""

    def __init__(self, root, tls_dir):
        self.root = root
        self.tls_dir = tls_dir
        self.db = backend.new_database()
        self.nodes = []
        conf = root / "site.conf"
        conf.write_text("[general]\nhostname = mail.example.test\n"
                        f"data_dir = {root / 'site-data'}\nuser =\npostmaster = admin\n"
                        f"[store]\nbackend = postgresql\ndsn = {backend.dsn(self.db)}\n")
        self.config = conf
        add_site(conf)
        self.empty = root / "empty"
        self.empty.mkdir()

    def node(self, name, sections=None, start=True, dsn=None, home=None, **kw):
        """umbox-smtpd and umbox-pop3d as node `name` (more config in
        sections), reaching the database by dsn if given; home: their
        directory's name, when two installations share the node name."""
        sections = dict(sections or {})
        sections["store"] = {"backend": "postgresql", "dsn": dsn or backend.dsn(self.db),
                             "node_id": name}
        env = Env(self.root / (home or f"node-{name}"), self.tls_dir, self.empty,
                  sections=sections, **kw)
        self.nodes.append(env)
        return env.start() if start else env

    def query(self, sql):
        return backend.query_db(self.db, sql)


@pytest.fixture
def site(request, tmp_path, node_tls_dir):
    s = Site(tmp_path, node_tls_dir)
    yield s
    problems = []
    for env in s.nodes:
        problems += env.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
