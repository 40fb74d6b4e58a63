"""umboxctl queue list | show | flush | del | hold | release (SPEC §6, §9).

One row per recipient: an outside address waiting for delivery, a local
mailbox that was full waiting for room, or a failed recipient kept for
its bounce.

Rows get into the queue through umbox-smtpd (the last tests here do it
that way, end to end).  The other tests need rows in states that only a
queue runner makes (attempts, errors, claims, failures) and there is no
runner in umbox-smtpd yet, so `seed` writes them into the store the way
the store itself does: a message row and one queue row per recipient.
"""
import pathlib
import smtplib
import sqlite3
import subprocess
import sys
import time

import pytest

import backend

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "smtpd"))
from smtpd_util import Daemon  # noqa: E402

HEADER = "ID  RECIPIENT  STATUS  ATTEMPTS  NEXT-ATTEMPT  LAST-ERROR"
ROW_KEYS = {"id", "queue_id", "sender", "recipient", "local", "kind", "size", "status", "held",
            "delivering", "claimed_by", "claimed_until", "attempts", "next_attempt",
            "last_attempt", "last_error", "created_at", "expires_at"}
FUTURE = 2000000000          # 2033-05-18 03:33 UTC
LIFETIME = 5 * 86400         # [queue] lifetime's default


def seed(umbox, recipients, sender="alice@example.test", body=b"Subject: hi\r\n\r\nhello\r\n",
         **state):
    """A message from sender queued for each recipient; returns the row ids.
    state sets queue columns on every row (attempts=2, held=1, ...)."""
    now = int(time.time())
    rows = []
    for r in recipients:
        cols = {"sender": sender, "recipient": r,
                "domain": r.rsplit("@", 1)[1].lower() if "@" in r else "",
                "next_attempt": now, "created_at": now}
        cols.update(state)
        rows.append(cols)
    if backend.PG:
        return seed_pg(umbox, rows, sender, body, now)
    con = sqlite3.connect(umbox.store_path)
    try:
        with con:
            mid = con.execute("INSERT INTO messages (sender, size, body, created_at)"
                              " VALUES (?, ?, ?, ?)", (sender, len(body), body, now)).lastrowid
            return [con.execute(
                f"INSERT INTO queue (message_id, {', '.join(cols)}) VALUES"
                f" (?, {', '.join('?' * len(cols))})", (mid, *cols.values())).lastrowid
                for cols in rows]
    finally:
        con.close()


def seed_pg(umbox, rows, sender, body, now):
    """seed on PostgreSQL: the body is the message's one chunk.  Every value
    goes as a quoted literal, which takes its column's type (held=1 too)."""
    def lit(v):
        return "'" + str(v).replace("'", "''") + "'"

    sql = ("WITH m AS (INSERT INTO messages (sender, size, created_at) VALUES"
           f" ({lit(sender)}, {len(body)}, {now}) RETURNING id),"
           " c AS (INSERT INTO message_chunks (message_id, seq, data)"
           f" SELECT id, 0, '\\x{body.hex()}' FROM m)")
    for i, cols in enumerate(rows):
        sql += (f", q{i} AS (INSERT INTO queue (message_id, {', '.join(cols)})"
                f" SELECT id, {', '.join(lit(v) for v in cols.values())} FROM m RETURNING id)")
    sql += " " + " UNION ALL ".join(f"SELECT {i}, id FROM q{i}" for i in range(len(rows)))
    got = backend.query_db(backend.database(umbox.data_dir), sql + " ORDER BY 1")
    return [qid for _, qid in got]


def live_messages(query):
    """How many messages are stored, by a query function (Umbox.query,
    Daemon.sql).  On PostgreSQL the last reference gone marks a message
    orphaned, for the sweeper to delete once no RETR can be reading it."""
    return query("SELECT count(*) FROM messages"
                 + (" WHERE orphaned_at IS NULL" if backend.PG else ""))[0][0]


def rows(umbox):
    return {int(r["ID"]): r for r in umbox.ok("queue", "list").table()}


def show(umbox, qid):
    r = umbox.ok("queue", "show", qid)
    return {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in r.lines)}


def row(umbox, qid):
    return umbox.query("SELECT CASE WHEN held THEN 1 ELSE 0 END, next_attempt, status"
                       " FROM queue WHERE id = ?", qid)


# -- list / show --------------------------------------------------------------

def test_empty(umbox):
    assert umbox.ok("queue", "list").lines == [HEADER]
    assert umbox.json("queue", "list") == []


def test_list_one_row_per_recipient(site):
    a, b = seed(site, ["friend@outside.test", "Other@Else.Test"])
    (c,) = seed(site, ["late@outside.test"], sender="", attempts=3, next_attempt=FUTURE,
                last_error="451 4.3.0 greylisted, try again later", last_attempt=1700000000)
    t = rows(site)
    assert list(t) == [a, b, c]
    assert t[a] == {"ID": str(a), "RECIPIENT": "friend@outside.test", "STATUS": "queued",
                    "ATTEMPTS": "0", "NEXT-ATTEMPT": "now", "LAST-ERROR": "-"}
    assert t[b]["RECIPIENT"] == "Other@Else.Test"
    assert t[c]["ATTEMPTS"] == "3"
    assert t[c]["NEXT-ATTEMPT"] == "2033-05-18 03:33"
    assert t[c]["LAST-ERROR"] == "451 4.3.0 greylisted, try again later"

    j = site.json("queue", "list")
    assert [e["id"] for e in j] == [a, b, c]
    assert set(j[0]) == ROW_KEYS
    assert j[0]["recipient"] == "friend@outside.test"
    assert j[0]["sender"] == "alice@example.test"
    assert j[0]["status"] == "queued" and j[0]["held"] is False
    assert j[0]["delivering"] is False and j[0]["claimed_by"] is None
    assert j[0]["local"] is False and j[0]["kind"] == "email"
    assert j[0]["size"] == len(b"Subject: hi\r\n\r\nhello\r\n")
    assert j[0]["queue_id"] and j[0]["queue_id"] == j[1]["queue_id"] != j[2]["queue_id"]
    assert j[0]["expires_at"] == j[0]["created_at"] + LIFETIME
    assert j[2]["sender"] == ""
    assert (j[2]["attempts"], j[2]["next_attempt"], j[2]["last_attempt"]) == \
        (3, FUTURE, 1700000000)


def test_list_states(site):
    (q,) = seed(site, ["q@outside.test"])
    (h,) = seed(site, ["h@outside.test"], held=1, next_attempt=FUTURE)
    (f,) = seed(site, ["f@outside.test"], status=1, attempts=1,
                last_error="550 5.1.1 no such user")
    (d,) = seed(site, ["d@outside.test"], claimed_by="mail:1234", claimed_until=FUTURE)
    (x,) = seed(site, ["x@outside.test"], claimed_by="mail:99", claimed_until=1)  # ran out
    t = rows(site)
    assert {k: (v["STATUS"], v["NEXT-ATTEMPT"]) for k, v in t.items()} == {
        q: ("queued", "now"), h: ("held", "2033-05-18 03:33"), f: ("failed", "-"),
        d: ("delivering", "now"), x: ("queued", "now")}
    j = {e["id"]: e for e in site.json("queue", "list")}
    assert (j[h]["held"], j[h]["status"]) == (True, "queued")
    assert j[f]["status"] == "failed"
    assert (j[d]["delivering"], j[d]["claimed_by"], j[d]["claimed_until"]) == \
        (True, "mail:1234", FUTURE)
    assert j[x]["delivering"] is False


def test_long_error_cut_in_list_whole_in_show(site):
    err = "421 4.4.2 " + "the connection was dropped by the remote host " * 3
    (q,) = seed(site, ["x@outside.test"], last_error=err.strip())
    cell = rows(site)[q]["LAST-ERROR"]
    assert len(cell) == 60 and cell.endswith("...") and err.startswith(cell[:-3])
    assert show(site, q)["last error"] == err.strip()
    assert site.json("queue", "show", q)["last_error"] == err.strip()


def test_long_error_is_cut_at_a_character(site):
    """A reply in UTF-8 is cut between characters, never inside one."""
    err = "550 5.1.1 " + "\u00e9" * 80
    (q,) = seed(site, ["x@outside.test"], last_error=err)
    cell = rows(site)[q]["LAST-ERROR"]
    assert cell == err[:57] + "...", cell


def test_show(site):
    (q,) = seed(site, ["friend@partner.test"], attempts=2, last_error="451 later",
                last_attempt=1700000000, next_attempt=FUTURE, created_at=1699990000)
    f = show(site, q)
    assert f["id"] == str(q)
    assert f["sender"] == "<alice@example.test>"
    assert f["recipient"] == "friend@partner.test"
    assert f["route"] == "mx"
    assert f["status"] == "queued"
    assert f["size"] == "22 bytes"
    assert f["attempts"] == "2"
    assert f["created"] == "2023-11-14 19:26"
    assert f["last attempt"] == "2023-11-14 22:13"
    assert f["next attempt"] == "2033-05-18 03:33"
    assert f["last error"] == "451 later"
    assert f["gives up"] == "2023-11-19 19:26"

    j = site.json("queue", "show", q)
    assert set(j) == ROW_KEYS | {"route"}
    assert j["route"] == "mx" and "relay" not in j
    assert j["expires_at"] == 1699990000 + LIFETIME

    # The route follows the relays as they are now.
    site.ok("relay", "add", "partner", "--host", "mx.partner.test", "--domain", "partner.test")
    assert show(site, q)["route"] == "relay partner"
    j = site.json("queue", "show", q)
    assert (j["route"], j["relay"]) == ("relay", "partner")


def test_show_null_sender_failed_and_delivering(site):
    (f,) = seed(site, ["f@outside.test"], sender="", status=1, last_error="550 no")
    fs = show(site, f)
    assert fs["sender"] == "<>"
    assert fs["status"] == "failed"
    assert fs["next attempt"] == "-" and fs["gives up"] == "-"
    (d,) = seed(site, ["d@outside.test"], claimed_by="mail:1", claimed_until=FUTURE)
    assert show(site, d)["status"] == "delivering (claimed by mail:1 until 2033-05-18 03:33)"


# -- flush ----------------------------------------------------------------------

def test_flush_all(site):
    a, b = seed(site, ["a@outside.test", "b@outside.test"], next_attempt=FUTURE)
    (h,) = seed(site, ["h@outside.test"], held=1, next_attempt=FUTURE)
    (f,) = seed(site, ["f@outside.test"], status=1, next_attempt=FUTURE)
    before = int(time.time())
    r = site.ok("queue", "flush")
    assert r.out == "2 queue entries are due now\n"
    for q in (a, b):
        assert before <= row(site, q)[0][1] <= int(time.time())
    assert row(site, h)[0][1] == FUTURE
    assert row(site, f)[0][1] == FUTURE
    assert {rows(site)[q]["NEXT-ATTEMPT"] for q in (a, b)} == {"now"}
    site.ok("queue", "del", b)
    assert site.ok("queue", "flush").out == "1 queue entry is due now\n"


def test_flush_one(site):
    a, b = seed(site, ["a@outside.test", "b@outside.test"], next_attempt=FUTURE)
    assert site.ok("queue", "flush", a).out == f"queue entry {a} is due now\n"
    assert row(site, a)[0][1] <= int(time.time())
    assert row(site, b)[0][1] == FUTURE


def test_flush_held_or_failed_refused(site):
    (h,) = seed(site, ["h@outside.test"], held=1, next_attempt=FUTURE)
    (f,) = seed(site, ["f@outside.test"], status=1, next_attempt=FUTURE)
    before = site.snapshot()
    r = site.fail(3, "queue", "flush", h)
    assert "held" in r.err and "release" in r.err
    r = site.fail(3, "queue", "flush", f)
    assert "failed" in r.err
    assert site.snapshot() == before


# -- hold / release / del ---------------------------------------------------------

def test_hold_and_release_keep_the_schedule(site):
    (q,) = seed(site, ["q@outside.test"], next_attempt=FUTURE)
    assert site.ok("queue", "hold", q).out == f"queue entry {q} held\n"
    assert row(site, q) == [(1, FUTURE, 0)]
    assert rows(site)[q]["STATUS"] == "held"
    assert site.json("queue", "show", q)["held"] is True
    site.ok("queue", "hold", q)                          # again: still held
    assert site.ok("queue", "release", q).out == f"queue entry {q} released\n"
    assert row(site, q) == [(0, FUTURE, 0)]
    assert rows(site)[q]["STATUS"] == "queued"
    site.ok("queue", "release", q)                       # again: still released


def test_a_held_failed_row_says_both(site):
    """A failed row that is held waits for release before its bounce: the
    table and show say so, not just "failed"."""
    (f,) = seed(site, ["f@outside.test"], status=1, held=1)
    assert rows(site)[f]["STATUS"] == "failed, held"
    assert show(site, f)["status"] == "failed, held"
    site.ok("queue", "release", f)
    assert rows(site)[f]["STATUS"] == "failed"


def test_del(site):
    a, b = seed(site, ["a@outside.test", "b@outside.test"])
    assert site.ok("queue", "del", a).out == f"queue entry {a} deleted\n"
    assert list(rows(site)) == [b]
    assert live_messages(site.query) == 1
    site.ok("queue", "del", b)
    assert site.ok("queue", "list").lines == [HEADER]
    # The message went with its last row.
    assert live_messages(site.query) == 0
    site.fail(4, "queue", "del", b)


def test_del_while_delivering_warns(site):
    (d,) = seed(site, ["d@outside.test"], claimed_by="mail:1", claimed_until=FUTURE)
    r = site.ok("queue", "del", d)
    assert r.out == f"queue entry {d} deleted\n"
    assert r.err.startswith("umboxctl: warning: ") and "being delivered" in r.err


def test_del_failed(site):
    (f,) = seed(site, ["f@outside.test"], status=1)
    site.ok("queue", "del", f)
    assert site.json("queue", "list") == []


# -- errors -------------------------------------------------------------------------

@pytest.mark.parametrize("verb", ["show", "flush", "del", "hold", "release"])
def test_unknown_id_exit_4(site, verb):
    seed(site, ["a@outside.test"])
    before = site.snapshot()
    site.fail(4, "queue", verb, "999999")
    assert site.snapshot() == before


USAGE = [
    ("queue",),
    ("queue", "frob"),
    ("queue", "list", "extra"),
    ("queue", "show"),
    ("queue", "show", "1", "2"),
    ("queue", "flush", "1", "2"),
    ("queue", "del"),
    ("queue", "hold"),
    ("queue", "release"),
    ("queue", "show", "abc"),
    ("queue", "show", "0"),
    ("queue", "show", "-1"),
    ("queue", "del", "1x"),
    ("queue", "hold", ""),
    ("queue", "flush", "99999999999999999999"),
    # A queue ID as a deposit prints it: the message's, not a row's number.
    ("queue", "show", "0000000001"),
    ("queue", "del", "01"),
]


@pytest.mark.parametrize("args", USAGE, ids=" ".join)
def test_usage_error_exit_2(site, args):
    seed(site, ["a@outside.test"], held=1)
    before = site.snapshot()
    site.fail(2, *args)
    assert site.snapshot() == before


def test_status_counts_waiting_and_failed(site):
    seed(site, ["a@outside.test", "b@outside.test"])
    seed(site, ["f@outside.test"], status=1)
    j = site.json("status")
    assert (j["queued"], j["queue_failed"]) == (2, 1)
    assert "2 recipients waiting, 1 failed" in site.ok("status").out


# -- end to end: rows made by umbox-smtpd ---------------------------------------

class QueueDaemon(Daemon):
    """umbox-smtpd whose DNS server does not answer (the smtpd tests'
    default): whatever it does with the queue, outside mail stays in it (a
    temporary failure at worst)."""


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=mail.example.test", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "2"],
                   check=True, capture_output=True, timeout=60)
    return d


def test_rows_from_smtpd(site, tls_dir, tmp_path):
    site.ok("alias", "add", "fwd", "alice", "Friend@Outside.Test")
    site.ok("user", "set", "alice", "--quota", "1K")
    d = QueueDaemon(tmp_path / "smtpd", tls_dir, site.data_dir).start()
    try:
        body = "Subject: to the outside\r\n\r\n" + "x" * 2000 + "\r\n"
        with smtplib.SMTP("127.0.0.1", d.mx, timeout=15) as s:
            s.sendmail("sender@remote.test", ["fwd@example.test"], body)
    finally:
        assert d.stop() == 0, d.log()

    j = site.json("queue", "list", config=d.config)
    assert len(j) == 2, j
    by = {e["recipient"]: e for e in j}
    out, full = by["Friend@outside.test"], by["alice@example.test"]
    assert out["sender"] == "sender@remote.test" and out["local"] is False
    assert full["local"] is True and full["last_error"] == "mailbox full"
    assert out["size"] == full["size"] > 2000
    assert out["status"] == full["status"] == "queued"

    f = {k.strip(): v.strip() for k, v in (
        l.split(":", 1) for l in site.ok("queue", "show", full["id"], config=d.config).lines)}
    assert f["route"] == "mailbox alice, waiting for room"
    assert f["recipient"] == "alice@example.test"
    f = {k.strip(): v.strip() for k, v in (
        l.split(":", 1) for l in site.ok("queue", "show", out["id"], config=d.config).lines)}
    assert f["route"] == "mx"
    assert f["sender"] == "<sender@remote.test>"

    site.ok("queue", "del", out["id"], config=d.config)
    site.ok("queue", "del", full["id"], config=d.config)
    assert site.json("queue", "list", config=d.config) == []
    assert live_messages(d.sql) == 0
