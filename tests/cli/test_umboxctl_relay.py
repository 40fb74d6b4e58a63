"""umboxctl relay add | list | show | set | del (SPEC §6, §9).

A relay (smarthost) has a unique name, host, port, domains, default and
active flags, TLS mode, certificate verification, auth mechanism,
account and password (read only from stdin, never printed), sender
override, timeout and chunking.  Routes are checked through
`alias resolve`, which names the relay an outside address goes through.
"""
import os
import stat

import pytest

import backend

RELAY_KEYS = {"name", "host", "port", "port_default", "domains", "default", "active", "tls",
              "verify", "auth", "account", "password_set", "sender", "timeout", "chunking",
              "created_at"}


def show(umbox, name):
    """`relay show` as a dict of its "key: value" lines."""
    r = umbox.ok("relay", "show", name)
    return {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in r.lines)}


def route(umbox, address):
    """The route `alias resolve` gives an outside address."""
    r = umbox.ok("alias", "resolve", address)
    assert len(r.lines) == 1, r
    assert r.lines[0].lower().startswith(f"remote {address.lower()} via "), r
    j = umbox.json("alias", "resolve", address)
    text = r.lines[0].split(" via ", 1)[1]
    assert text == ("mx" if j[0]["route"] == "mx" else f"relay {j[0]['relay']}"), (r, j)
    return text


# -- add / show / list / del ---------------------------------------------------

def test_empty_list(umbox):
    assert umbox.ok("relay", "list").lines == \
        ["NAME  HOST  PORT  TLS  AUTH  DEFAULT  ACTIVE  DOMAINS"]
    assert umbox.json("relay", "list") == []


def test_add_defaults(umbox):
    r = umbox.ok("relay", "add", "Office", "--host", "smtp.example.net")
    assert r.out == "relay office added\n"
    j = umbox.json("relay", "show", "office")
    assert set(j) == RELAY_KEYS
    assert j["name"] == "office"
    assert j["host"] == "smtp.example.net"
    assert j["port"] == 25 and j["port_default"] is True
    assert j["domains"] == []
    assert j["default"] is False
    assert j["active"] is True
    assert j["tls"] == "auto"
    assert j["verify"] is True
    assert j["auth"] == "auto"
    assert j["account"] is None
    assert j["password_set"] is False
    assert j["sender"] is None
    assert j["timeout"] == 120
    assert j["chunking"] is True
    assert j["created_at"] > 0

    f = show(umbox, "OFFICE")
    assert f["relay"] == "office"
    assert f["port"] == "25 (the default for tls auto)"
    assert f["domains"] == "-"
    assert f["password"] == "not set"
    assert f["timeout"] == "120 s"
    assert f["verify"] == "yes (only with tls starttls or implicit)"
    umbox.ok("relay", "set", "office", "--tls", "implicit")
    assert show(umbox, "office")["verify"] == "yes"


def test_add_every_option(umbox):
    umbox.ok("relay", "add", "corp", "--host", "192.0.2.25", "--port", "2525",
             "--domain", "Partner.Example", "--domain", "b.example", "--default",
             "--inactive", "--tls", "STARTTLS", "--no-verify", "--auth", "cram-md5",
             "--user", "voicemail@corp.example", "--password-stdin",
             "--sender", "pbx@corp.example", "--timeout", "2m", "--no-chunking",
             stdin="pa ss\u00e9word\n")
    j = umbox.json("relay", "show", "corp")
    assert j["host"] == "192.0.2.25"
    assert j["port"] == 2525 and j["port_default"] is False
    assert j["domains"] == ["b.example", "partner.example"]
    assert j["default"] is True
    assert j["active"] is False
    assert j["tls"] == "starttls"
    assert j["verify"] is False
    assert j["auth"] == "cram-md5"
    assert j["account"] == "voicemail@corp.example"
    assert j["password_set"] is True
    assert j["sender"] == "pbx@corp.example"
    assert j["timeout"] == 120
    assert j["chunking"] is False
    # The password is kept as given (it must be sent to the relay), and
    # one trailing newline is stripped.
    assert umbox.query("SELECT password FROM relays WHERE name = 'corp'") == \
        [("pa ss\u00e9word",)]

    rows = umbox.ok("relay", "list").table()
    assert rows == [{"NAME": "corp", "HOST": "192.0.2.25", "PORT": "2525", "TLS": "starttls",
                     "AUTH": "cram-md5", "DEFAULT": "yes", "ACTIVE": "no",
                     "DOMAINS": "b.example, partner.example"}]
    assert umbox.json("relay", "list") == [j]


def test_password_never_printed(umbox):
    secret = "Tr0ub4dor&3-unique"
    umbox.ok("relay", "add", "r", "--host", "h.example", "--user", "u",
             "--password-stdin", stdin=secret + "\n")
    for args in (("relay", "show", "r"), ("relay", "list"), ("--json", "relay", "show", "r"),
                 ("--json", "relay", "list"), ("status",)):
        r = umbox.ok(*args)
        assert secret not in r.out and secret not in r.err, args
    assert show(umbox, "r")["password"] == "set"


def test_store_file_is_private(umbox):
    """The store holds relay passwords: readable by its owner only."""
    umbox.ok("relay", "add", "r", "--host", "h.example", "--user", "u",
             "--password-stdin", stdin="pw\n")
    for name in ("store.db", "store.db-wal", "store.db-shm"):
        p = umbox.data_dir / name
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, name


def test_store_file_tightened(umbox):
    backend.sqlite_only()
    umbox.ok("status")
    os.chmod(umbox.store_path, 0o644)
    umbox.ok("relay", "list")
    assert stat.S_IMODE(umbox.store_path.stat().st_mode) == 0o600


def test_implicit_tls_port_465(umbox):
    umbox.ok("relay", "add", "s", "--host", "h.example", "--tls", "implicit")
    j = umbox.json("relay", "show", "s")
    assert j["port"] == 465 and j["port_default"] is True
    assert show(umbox, "s")["port"] == "465 (the default for tls implicit)"
    # The port follows the mode until one is given, and again after --port "".
    umbox.ok("relay", "set", "s", "--tls", "none")
    assert umbox.json("relay", "show", "s")["port"] == 25
    umbox.ok("relay", "set", "s", "--port", "587")
    umbox.ok("relay", "set", "s", "--tls", "implicit")
    assert umbox.json("relay", "show", "s")["port"] == 587
    umbox.ok("relay", "set", "s", "--port", "")
    assert umbox.json("relay", "show", "s")["port"] == 465


def test_name_taken_exit_1(umbox):
    umbox.ok("relay", "add", "r", "--host", "a.example")
    before = umbox.snapshot()
    umbox.fail(1, "relay", "add", "r", "--host", "b.example")
    umbox.fail(1, "relay", "add", "R", "--host", "b.example")
    assert umbox.snapshot() == before


def test_del(umbox):
    umbox.ok("relay", "add", "r", "--host", "a.example", "--domain", "p.example")
    assert umbox.ok("relay", "del", "R").out == "relay r deleted\n"
    umbox.fail(4, "relay", "del", "r")
    umbox.fail(4, "relay", "show", "r")
    assert umbox.json("relay", "list") == []
    # Its domains went with it.
    umbox.ok("relay", "add", "r2", "--host", "a.example", "--domain", "p.example")


# -- set ------------------------------------------------------------------------

def test_set_changes_only_what_is_named(umbox):
    umbox.ok("relay", "add", "r", "--host", "a.example", "--domain", "p.example",
             "--user", "u", "--password-stdin", stdin="pw\n")
    before = umbox.json("relay", "show", "r")
    assert umbox.ok("relay", "set", "r", "--host", "b.example").out == "relay r changed\n"
    after = umbox.json("relay", "show", "r")
    assert after == dict(before, host="b.example")
    assert umbox.query("SELECT password FROM relays") == [("pw",)]


def test_set_switches_both_ways(umbox):
    umbox.ok("relay", "add", "r", "--host", "a.example", "--inactive", "--no-verify",
             "--no-chunking", "--default")
    umbox.ok("relay", "set", "r", "--active", "--verify", "--chunking", "--no-default")
    j = umbox.json("relay", "show", "r")
    assert (j["active"], j["verify"], j["chunking"], j["default"]) == (True, True, True, False)
    umbox.ok("relay", "set", "r", "--inactive", "--no-verify", "--no-chunking", "--default")
    j = umbox.json("relay", "show", "r")
    assert (j["active"], j["verify"], j["chunking"], j["default"]) == (False, False, False, True)


def test_set_domains_replace_and_clear(umbox):
    umbox.ok("relay", "add", "r", "--host", "a.example", "--domain", "x.example")
    umbox.ok("relay", "set", "r", "--domain", "Y.example", "--domain", "z.example")
    assert umbox.json("relay", "show", "r")["domains"] == ["y.example", "z.example"]
    umbox.ok("relay", "set", "r", "--domain", "")
    assert umbox.json("relay", "show", "r")["domains"] == []


def test_set_credentials(umbox):
    umbox.ok("relay", "add", "r", "--host", "a.example")
    umbox.ok("relay", "set", "r", "--user", "acct", "--password-stdin", stdin="one\n")
    j = umbox.json("relay", "show", "r")
    assert j["account"] == "acct" and j["password_set"] is True
    # The password alone.
    umbox.ok("relay", "set", "r", "--password-stdin", stdin="two\n")
    assert umbox.query("SELECT account, password FROM relays") == [("acct", "two")]
    # --user "" removes both.
    umbox.ok("relay", "set", "r", "--user", "")
    j = umbox.json("relay", "show", "r")
    assert j["account"] is None and j["password_set"] is False
    # A password without an account is refused, and changes nothing.
    before = umbox.snapshot()
    umbox.fail(2, "relay", "set", "r", "--password-stdin", stdin="three\n")
    assert umbox.snapshot() == before


def test_set_sender_and_clear(umbox):
    umbox.ok("relay", "add", "r", "--host", "a.example", "--sender", "pbx@Corp.Example")
    assert umbox.json("relay", "show", "r")["sender"] == "pbx@Corp.Example"
    umbox.ok("relay", "set", "r", "--sender", "")
    assert umbox.json("relay", "show", "r")["sender"] is None


def test_set_unknown_relay_exit_4_before_password(umbox):
    umbox.fail(4, "relay", "set", "nosuch", "--host", "a.example")
    umbox.fail(4, "relay", "set", "nosuch", "--user", "u", "--password-stdin", stdin="pw\n")


def test_named_mechanism_needs_credentials(umbox):
    umbox.fail(2, "relay", "add", "r", "--host", "a.example", "--auth", "plain")
    umbox.ok("relay", "add", "r", "--host", "a.example", "--auth", "login", "--user", "u",
             "--password-stdin", stdin="pw\n")
    before = umbox.snapshot()
    umbox.fail(2, "relay", "set", "r", "--user", "")          # login still named
    assert umbox.snapshot() == before
    umbox.ok("relay", "set", "r", "--user", "", "--auth", "none")


# -- one default, one active relay per domain ----------------------------------

def test_one_default(umbox):
    umbox.ok("relay", "add", "a", "--host", "a.example", "--default")
    umbox.ok("relay", "add", "b", "--host", "b.example", "--default")
    assert {r["name"]: r["default"] for r in umbox.json("relay", "list")} == \
        {"a": False, "b": True}
    umbox.ok("relay", "set", "a", "--default")
    assert {r["name"]: r["default"] for r in umbox.json("relay", "list")} == \
        {"a": True, "b": False}
    rows = umbox.ok("relay", "list").table()
    assert [r["DEFAULT"] for r in rows] == ["yes", "no"]


def test_domain_in_one_active_relay(umbox):
    umbox.ok("relay", "add", "main", "--host", "a.example", "--domain", "partner.example")
    before = umbox.snapshot()
    r = umbox.fail(1, "relay", "add", "other", "--host", "b.example",
                   "--domain", "PARTNER.example")
    assert "partner.example" in r.err and "main" in r.err
    assert umbox.snapshot() == before
    # An inactive standby may list it, and cannot be activated alongside.
    umbox.ok("relay", "add", "standby", "--host", "b.example", "--domain", "partner.example",
             "--inactive")
    umbox.fail(1, "relay", "set", "standby", "--active")
    umbox.ok("relay", "set", "main", "--inactive")
    umbox.ok("relay", "set", "standby", "--active")
    assert {r["name"]: r["active"] for r in umbox.json("relay", "list")} == \
        {"main": False, "standby": True}


# -- routes: alias resolve names the relay --------------------------------------

def test_routes_first_match_wins(site):
    assert route(site, "x@partner.example") == "mx"
    site.ok("relay", "add", "dflt", "--host", "d.example", "--default")
    site.ok("relay", "add", "partner", "--host", "p.example", "--domain", "partner.example")
    site.ok("relay", "add", "off", "--host", "o.example", "--domain", "off.example",
            "--inactive")
    assert route(site, "x@partner.example") == "relay partner"
    assert route(site, "x@PARTNER.Example") == "relay partner"
    assert route(site, "x@sub.partner.example") == "relay dflt"
    assert route(site, "x@off.example") == "relay dflt"
    assert route(site, "x@elsewhere.example") == "relay dflt"
    site.ok("relay", "set", "dflt", "--inactive")
    assert route(site, "x@elsewhere.example") == "mx"
    assert route(site, "x@off.example") == "mx"
    site.ok("relay", "set", "off", "--active")
    assert route(site, "x@off.example") == "relay off"
    site.ok("relay", "del", "partner")
    assert route(site, "x@partner.example") == "mx"


def test_alias_members_show_their_routes(site):
    site.ok("relay", "add", "partner", "--host", "p.example", "--domain", "partner.example")
    site.ok("alias", "add", "team", "alice", "carol@partner.example", "dave@other.example")
    assert site.ok("alias", "resolve", "team").lines == [
        "local alice",
        "remote carol@partner.example via relay partner",
        "remote dave@other.example via mx",
    ]


# -- usage errors (exit 2) -------------------------------------------------------

USAGE = [
    ("relay",),
    ("relay", "frob"),
    ("relay", "test"),                                        # no NAME
    ("relay", "test", "r", "s"),
    ("relay", "add"),
    ("relay", "add", "r"),                                    # no --host
    ("relay", "add", "r", "s", "--host", "h.example"),
    ("relay", "add", "bad name", "--host", "h.example"),
    ("relay", "add", "-r", "--host", "h.example"),
    ("relay", "add", ".r", "--host", "h.example"),
    ("relay", "add", "r/x", "--host", "h.example"),
    ("relay", "add", "a" * 65, "--host", "h.example"),
    ("relay", "add", "r", "--host", "bad host"),
    ("relay", "add", "r", "--host", ""),
    ("relay", "add", "r", "--host", "h.example", "--port", "0"),
    ("relay", "add", "r", "--host", "h.example", "--port", "65536"),
    ("relay", "add", "r", "--host", "h.example", "--port", "25x"),
    ("relay", "add", "r", "--host", "h.example", "--port", ""),
    ("relay", "add", "r", "--host", "h.example", "--domain", "bad domain"),
    ("relay", "add", "r", "--host", "h.example", "--domain", "a@b.example"),
    ("relay", "add", "r", "--host", "h.example", "--domain", ""),
    ("relay", "add", "r", "--host", "h.example", "--tls", "ssl"),
    ("relay", "add", "r", "--host", "h.example", "--auth", "xoauth2"),
    ("relay", "add", "r", "--host", "h.example", "--user", "u"),   # no --password-stdin
    ("relay", "add", "r", "--host", "h.example", "--password-stdin"),  # no --user
    ("relay", "add", "r", "--host", "h.example", "--sender", "not-an-address"),
    ("relay", "add", "r", "--host", "h.example", "--timeout", "0"),
    ("relay", "add", "r", "--host", "h.example", "--timeout", "3601"),
    ("relay", "add", "r", "--host", "h.example", "--timeout", "soon"),
    ("relay", "add", "r", "--host", "h.example", "--active"),      # set only
    ("relay", "add", "r", "--host", "h.example", "--no-default"),  # set only
    ("relay", "add", "r", "--host", "h.example", "--bogus"),
    ("relay", "list", "extra"),
    ("relay", "show"),
    ("relay", "del"),
    ("relay", "set", "r"),                                    # nothing to change
    ("relay", "set", "r", "--user", "u"),                     # no --password-stdin
    ("relay", "set", "r", "--domain", "", "--domain", "x.example"),
]


@pytest.mark.parametrize("args", USAGE, ids=lambda a: " ".join(x[:20] for x in a))
def test_usage_error_exit_2(umbox, args):
    umbox.ok("relay", "add", "r", "--host", "h.example")
    before = umbox.snapshot()
    umbox.fail(2, *args, stdin="pw\n")
    assert umbox.snapshot() == before


@pytest.mark.parametrize("stdin", ["", "\n", "two\nlines\n", "nul\0byte\n", "tab\there\n"])
def test_bad_password_exit_2(umbox, stdin):
    before = umbox.snapshot()
    umbox.fail(2, "relay", "add", "r", "--host", "h.example", "--user", "u",
               "--password-stdin", stdin=stdin)
    assert umbox.snapshot() == before
