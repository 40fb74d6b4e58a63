"""umboxctl store copy --to postgresql and store check (SPEC §2, §3, §9).

A site's SQLite store (made with umboxctl and tests/tools/store-put) is
copied into a fresh database on the private PostgreSQL cluster that
tests/run starts (UMBOX_TEST_PG); then the same umboxctl, pointed at
PostgreSQL, must show the same users, aliases, relays and mailboxes, with
the same UIDLs and the same bytes, and new mail must get new UIDs.
"""
import json
import os
import pathlib
import sqlite3
import subprocess
import uuid

import pytest

import backend

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build")))

PG = os.environ.get("UMBOX_TEST_PG")
pytestmark = [
    pytest.mark.skipif(not PG, reason="UMBOX_TEST_PG is not set (tests/run starts"
                       " a PostgreSQL cluster for these tests)"),
    # Each test makes a SQLite site and its own databases: the SQLite pass
    # of the suite runs them all, the PostgreSQL pass has nothing to add.
    pytest.mark.skipif(backend.PG, reason="copies a SQLite site into PostgreSQL"),
]


def binary(name):
    path = BUILD / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is not built (run make, or set UMBOX_BUILD)")
    return path


def psql(dsn, sql):
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn,
                        "-c", sql], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture
def pgdb():
    """A database of the test's own on the cluster; its conninfo."""
    name = "umbox_cli_" + uuid.uuid4().hex[:12]
    psql(PG, f"CREATE DATABASE {name}")
    yield f"{PG} dbname={name}"
    psql(PG, f"DROP DATABASE {name} WITH (FORCE)")


def put(site, message, login, kind="email"):
    p = subprocess.run([str(binary("tests/tools/store-put")), str(site.config), login, kind],
                       input=message, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode().strip()


def export(site, mailbox, uid, config=True):
    cmd = [str(binary("umboxctl")), "-c", str(site.config if config is True else config),
           "mail", "export", mailbox, uid]
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


@pytest.fixture
def moved(umbox, pgdb):
    """An SQLite site with mail, and a second config for the same site on
    PostgreSQL (pgdb): (site, pg_config, uids by login)."""
    umbox.ok("domain", "add", "example.test", "--force")
    umbox.ok("user", "add", "alice", "--extension", "100", "--quota", "10M")
    umbox.ok("user", "add", "bob")
    umbox.ok("alias", "add", "sales", "alice", "Bob@Example.Test")
    umbox.ok("relay", "add", "up", "--host", "relay.example.net", "--domain", "far.example")
    uids = {"alice": [], "bob": []}
    for i in range(3):
        uids["alice"].append(put(umbox, f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode(), "alice"))
    # More than one 256 KiB chunk, with bytes of every value.
    big = b"Subject: big\r\n\r\n" + bytes(range(256)) * 3000 + b"\r\n"
    uids["bob"].append(put(umbox, big, "bob"))
    # The highest uid is deleted: it must not be given out again.
    umbox.ok("mail", "del", "alice", uids["alice"][-1])
    gone = uids["alice"].pop()
    pgconf = umbox.root / "pg.conf"
    pgconf.write_text(umbox.config.read_text() +
                      f"[store]\nbackend = postgresql\ndsn = {pgdb}\n")
    return umbox, pgconf, uids, gone


def test_copy_keeps_everything_a_client_sees(moved):
    site, pgconf, uids, gone = moved
    before = {n: site.json(n, "list") for n in ("user", "alias", "relay", "domain")}
    mail_before = {u: site.json("mail", "list", u) for u in uids}

    r = site.ok("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
    assert "2 users" in r.out and "3 messages" in r.out, r

    for noun, rows in before.items():
        assert site.json("-c", pgconf, noun, "list", config=None) == rows, noun
    for login, listing in mail_before.items():
        assert site.json("-c", pgconf, "mail", "list", login, config=None) == listing
        for uid in uids[login]:
            assert export(site, login, uid, pgconf) == export(site, login, uid)
    # Usage came along (recomputed from the entries).
    users = {u["login"]: u for u in site.json("-c", pgconf, "user", "list", config=None)}
    assert users["alice"]["messages"] == 2 and users["bob"]["messages"] == 1


def test_new_mail_after_the_copy_gets_a_new_uid(moved, tmp_path):
    site, pgconf, uids, gone = moved
    site.ok("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
    # A voicemail needs no daemon: deposited straight into the store.
    wav = tmp_path / "v.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(wav), "trim", "0",
                    "1"], check=True, capture_output=True)
    site.ok("-c", pgconf, "voicemail", "deposit", "alice", "--audio", wav, config=None)
    listing = site.json("-c", pgconf, "mail", "list", "alice", config=None)
    new = [e["uid"] for e in listing if e["uid"] not in uids["alice"]]
    assert len(new) == 1, listing
    epoch, n = new[0].split(".")
    assert epoch == gone.split(".")[0]
    assert int(n) > int(gone.split(".")[1]), (new, gone)


def test_copy_into_a_store_with_data_is_refused(moved):
    site, pgconf, uids, gone = moved
    site.ok("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
    r = site.run("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
    assert r.rc == 3, r
    assert "not empty" in r.err, r
    # Nothing doubled.
    assert len(site.json("-c", pgconf, "mail", "list", "alice", config=None)) == 2


def test_copy_while_daemons_run_is_refused(moved, pgdb):
    """A copy made while a daemon takes mail would leave what it takes
    behind: refused while a daemon holds the SQLite store (its flock beside
    it) or a node beats on the PostgreSQL database."""
    import fcntl
    site, pgconf, uids, gone = moved
    lock = site.data_dir / "store.db-umbox-smtpd.lock"
    with open(lock, "w") as f:
        f.write("4242\n")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX)
        r = site.run("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
        assert r.rc == 3, r
        assert "umbox-smtpd (pid 4242) serves" in r.err and "stop the daemons" in r.err, r
    # Not held any more (the daemon stopped): no obstacle.  A node on the
    # database is one.
    site.ok("-c", pgconf, "status", config=None)
    psql(pgdb, "INSERT INTO nodes (id, instance, started, heartbeat)"
               " VALUES ('n1/smtpd', 'elsewhere', umbox_now(), umbox_now())")
    r = site.run("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
    assert r.rc == 3 and "daemons are running on the PostgreSQL store (n1/smtpd)" in r.err, r
    psql(pgdb, "UPDATE nodes SET heartbeat = heartbeat - 31")
    site.ok("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
    assert len(site.json("-c", pgconf, "mail", "list", "alice", config=None)) == 2


def test_copy_needs_postgresql_configured(moved):
    site, pgconf, uids, gone = moved
    r = site.run("store", "copy", "--to", "postgresql")
    assert r.rc == 1 and "backend = postgresql" in r.err, r
    r = site.run("store", "copy", "--to", "mysql")
    assert r.rc == 2, r
    r = site.run("store", "copy")
    assert r.rc == 2, r


def test_copy_without_a_sqlite_store_is_not_found(umbox, pgdb):
    pgconf = umbox.root / "pg.conf"
    pgconf.write_text(umbox.config.read_text() +
                      f"[store]\nbackend = postgresql\ndsn = {pgdb}\n")
    r = umbox.run("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
    assert r.rc == 4, r


def test_check_on_both_backends(moved):
    site, pgconf, uids, gone = moved
    r = site.ok("store", "check")
    assert "integrity" in r.out and "wal" in r.out, r
    rows = site.json("-c", pgconf, "store", "check", config=None)
    by = {row["item"]: row for row in rows}
    assert by["schema"]["result"] == "ok"
    assert by["fsync"]["result"] == "ok"
    # The test cluster has no standby: a risk, said so, not a failure.
    assert by["standby"]["result"] == "warning"
    assert by["nodes"]["detail"] == "none live"


def test_check_fails_when_the_server_does_not_fsync(moved, pgdb):
    """A server that acknowledges commits without flushing them breaks the
    store's promise: store check fails (the cluster is the test's own)."""
    site, pgconf, uids, gone = moved
    psql(PG, "ALTER SYSTEM SET fsync = off")
    psql(PG, "SELECT pg_reload_conf()")
    try:
        r = site.run("-c", pgconf, "store", "check", config=None)
        assert r.rc == 1, r
        assert "fsync" in r.out and "FAILED" in r.out, r
    finally:
        psql(PG, "ALTER SYSTEM RESET fsync")
        psql(PG, "SELECT pg_reload_conf()")


def test_check_of_a_store_out_of_reach_is_a_failed_item(umbox):
    """A server that cannot be reached is the check's first finding: one
    FAILED line (a JSON array of one), status 1, the reason on one line."""
    conf = umbox.root / "down.conf"
    conf.write_text(umbox.config.read_text() + "[store]\nbackend = postgresql\n"
                    "dsn = host=127.0.0.1 port=9 dbname=nothing connect_timeout=2\n")
    r = umbox.run("-c", conf, "store", "check", config=None)
    assert r.rc == 1, r
    [line] = r.out.splitlines()
    assert line.split()[:2] == ["store", "FAILED"], r
    assert "refused" in line.lower(), r
    assert [ln for ln in r.err.splitlines()] == ["umboxctl: the store check found problems"], r
    r = umbox.run("--json", "-c", conf, "store", "check", config=None)
    assert r.rc == 1, r
    [row] = json.loads(r.out)
    assert row["item"] == "store" and row["result"] == "failed" and "\n" not in row["detail"]


def test_copy_carries_mail_stored_before_the_content_column(moved):
    """A store from before schema step 6 keeps its messages' bytes in
    messages.body, with content NULL; they are read, and copied, from there."""
    site, pgconf, uids, gone = moved
    before = {(u, i): export(site, u, i) for u in uids for i in uids[u]}
    db = sqlite3.connect(site.data_dir / "store.db")
    with db:
        assert db.execute("SELECT count(*) FROM messages WHERE content IS NOT NULL"
                          " AND length(body) = 0").fetchone() == (3,)
        db.execute("UPDATE messages SET body = content, content = NULL")
    db.close()
    for (u, i), text in before.items():
        assert export(site, u, i) == text
    site.ok("-c", pgconf, "store", "copy", "--to", "postgresql", config=None)
    for (u, i), text in before.items():
        assert export(site, u, i, pgconf) == text
