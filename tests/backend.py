"""Which store the integration tests run on.

UMBOX_TEST_BACKEND=postgresql runs them on the private cluster that
tests/run starts (UMBOX_TEST_PG, a libpq conninfo); anything else, or
nothing, on SQLite.  On PostgreSQL an installation's database is named in
a file in its data_dir (PG_MARKER), so that copying a template's data_dir,
as the fixtures do for SQLite, copies the database too: adopt() makes the
copy's own database from the one the marker names.
"""
import itertools
import os
import pathlib
import re
import sqlite3
import subprocess

import pytest

BACKEND = os.environ.get("UMBOX_TEST_BACKEND", "sqlite")
PG = BACKEND == "postgresql"
PG_MARKER = ".pgdb"

_seq = itertools.count(1)


def _admin(sql):
    conninfo = os.environ.get("UMBOX_TEST_PG")
    if not conninfo:
        pytest.fail("UMBOX_TEST_BACKEND=postgresql needs UMBOX_TEST_PG (tests/run starts a cluster)")
    p = subprocess.run(["psql", conninfo, "-Atqc", sql], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, f"{sql}: {p.stderr}"
    return p.stdout


def new_database():
    """A new empty database on the test cluster, whatever the backend under test."""
    name = _new_name()
    _admin(f'CREATE DATABASE "{name}"')
    return name


def execute(db, sql):
    """Run SQL on database db (behind the programs' backs: for tests that stage a state)."""
    subprocess.run(["psql", dsn(db), "-Atqc", sql], capture_output=True, text=True,
                   timeout=60, check=True)


def dsn(db):
    return f"{os.environ['UMBOX_TEST_PG']} dbname={db}"


def _new_name():
    return f"umbox_it_{os.getpid()}_{next(_seq)}"


def adopt(data_dir):
    """data_dir's database: a fresh one, or a copy of the one its marker
    names (a copied template's).  Returns the database's name; None on SQLite."""
    if not PG:
        return None
    data_dir = pathlib.Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    marker = data_dir / PG_MARKER
    name = _new_name()
    if marker.exists():
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{marker.read_text().strip()}"')
    else:
        _admin(f'CREATE DATABASE "{name}"')
    marker.write_text(name + "\n")
    return name


def database(data_dir):
    """The database data_dir's marker names (adopting one if it has none)."""
    marker = pathlib.Path(data_dir) / PG_MARKER
    return marker.read_text().strip() if marker.exists() else adopt(data_dir)


def store_section(data_dir):
    """The [store] section for an installation's config ("" on SQLite)."""
    if not PG:
        return ""
    return f"[store]\nbackend = postgresql\ndsn = {dsn(database(data_dir))}\n"


def _value(text):
    if text == "\\N":
        return None
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text


def query_db(db, sql):
    """Rows of a query on PostgreSQL database db (see query)."""
    out = subprocess.run(["psql", dsn(db), "-AtqF", "\t", "-P", "null=\\N", "-c", sql],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [tuple(_value(v) for v in line.split("\t")) for line in out.splitlines()]


def _literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def query(data_dir, sql, *params):
    """Rows of a read-only query on data_dir's store, whichever the backend.
    On PostgreSQL each ? is replaced by its parameter as a literal, and a
    value is an int when it looks like one, None for NULL, else text: what
    the tests compare is the same.  Values must not hold tabs or newlines."""
    if PG:
        parts = sql.split("?")
        assert len(parts) == len(params) + 1, (sql, params)
        sql = parts[0] + "".join(_literal(p) + rest for p, rest in zip(params, parts[1:]))
        return query_db(database(data_dir), sql)
    path = pathlib.Path(data_dir) / "store.db"
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def snapshot(data_dir):
    """Every row of every table of data_dir's store, to show that nothing
    changed; None when there is no store yet (SQLite)."""
    if PG:
        tables = [t for (t,) in query_db(database(data_dir),
                  "SELECT table_name FROM information_schema.tables"
                  " WHERE table_schema = 'public' ORDER BY 1")]
        return {t: sorted(map(repr, query_db(database(data_dir), f'SELECT * FROM "{t}"')))
                for t in tables}
    path = pathlib.Path(data_dir) / "store.db"
    if not path.exists():
        return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    finally:
        con.close()


def sqlite_only():
    """For a test that reads the SQLite file itself."""
    if PG:
        pytest.skip("reads the SQLite store file")
