"""Which store the integration tests run on.

UMBOX_TEST_BACKEND=postgresql runs them on the private cluster that
tests/run starts (UMBOX_TEST_PG, a libpq conninfo); anything else, or
nothing, on SQLite.  On PostgreSQL an installation's database is named in
a file in its data_dir (PG_MARKER), so that copying a template's data_dir,
as the fixtures do for SQLite, copies the database too: adopt() makes the
copy's own database from the one the marker names.
"""
import contextlib
import itertools
import os
import pathlib
import re
import sqlite3

import pytest

try:
    import psycopg2
except ImportError:         # a test on SQLite does not need it
    psycopg2 = None

BACKEND = os.environ.get("UMBOX_TEST_BACKEND", "sqlite")
PG = BACKEND == "postgresql"
PG_MARKER = ".pgdb"

_seq = itertools.count(1)


@contextlib.contextmanager
def _connect(conninfo):
    """A connection of its own, closed after use: a database open in a
    session cannot serve as another's template."""
    if psycopg2 is None:
        pytest.fail("the tests on PostgreSQL need python3-psycopg2 (scripts/install-deps)")
    con = psycopg2.connect(conninfo)
    con.autocommit = True
    try:
        yield con.cursor()
    finally:
        con.close()


def _admin(sql):
    conninfo = os.environ.get("UMBOX_TEST_PG")
    if not conninfo:
        pytest.fail("UMBOX_TEST_BACKEND=postgresql needs UMBOX_TEST_PG (tests/run starts a cluster)")
    with _connect(conninfo) as cur:
        cur.execute(sql)


def new_database():
    """A new empty database on the test cluster, whatever the backend under test."""
    name = _new_name()
    _admin(f'CREATE DATABASE "{name}"')
    return name


def execute(db, sql):
    """Run SQL on database db (behind the programs' backs: for tests that stage a state)."""
    with _connect(dsn(db)) as cur:
        cur.execute(sql)


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


def _value(v):
    """A value as psql would print it, then as query() returns it."""
    if v is None or isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (bytes, memoryview)):
        return "\\x" + bytes(v).hex()
    text = str(v)
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text


def _rows(cur, sql):
    cur.execute(sql)
    return [tuple(_value(v) for v in row) for row in cur.fetchall()]


def query_db(db, sql):
    """Rows of a query on PostgreSQL database db (see query)."""
    with _connect(dsn(db)) as cur:
        return _rows(cur, sql)


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


def write(data_dir, sql):
    """Change data_dir's store with SQL as another program would (the
    sqlite3 shell, psql): behind umboxctl's back."""
    if PG:
        execute(database(data_dir), sql)
        return
    con = sqlite3.connect(pathlib.Path(data_dir) / "store.db", timeout=10)
    try:
        with con:
            con.execute(sql)
    finally:
        con.close()


def snapshot(data_dir):
    """Every row of every table of data_dir's store, to show that nothing
    changed; None when there is no store yet (SQLite)."""
    if PG:
        with _connect(dsn(database(data_dir))) as cur:
            tables = [t for (t,) in _rows(cur, "SELECT table_name FROM information_schema.tables"
                                          " WHERE table_schema = 'public' ORDER BY 1")]
            return {t: sorted(map(repr, _rows(cur, f'SELECT * FROM "{t}"'))) for t in tables}
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


def store_exists(data_dir):
    """Whether data_dir's store has been made: the SQLite file, or the
    schema in its PostgreSQL database."""
    if PG:
        return query_db(database(data_dir), "SELECT count(*) FROM information_schema.tables"
                        " WHERE table_name = 'umbox_schema'") == [(1,)]
    return (pathlib.Path(data_dir) / "store.db").exists()


def store_where(data_dir):
    """How umboxctl status names data_dir's store."""
    if PG:
        return f"postgresql database {database(data_dir)} on "
    return str(pathlib.Path(data_dir) / "store.db")


def sqlite_only():
    """For a test that reads the SQLite file itself."""
    if PG:
        pytest.skip("reads the SQLite store file")
