"""umboxctl: command line, exit codes, error form, configuration, status.

SPEC §2 (configuration), §9 (umboxctl).  Exit codes: 0 done, 1 failed,
2 usage, 3 refused, 4 not found; errors on stderr as "umboxctl: ...".
"""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

import backend
from disk_util import fill, small_disk

ERROR_PREFIX = "umboxctl: "
REPO = pathlib.Path(__file__).resolve().parents[2]
UMBOXCTL = pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build"))) / "umboxctl"

# -- usage errors (exit 2) ---------------------------------------------------

USAGE_ERRORS = [
    # top level
    ("frobnicate",),
    ("--bogus", "status"),
    ("-x", "status"),
    # domain
    ("domain",),
    ("domain", "frob"),
    ("domain", "add"),
    ("domain", "add", "a.test", "b.test"),
    ("domain", "add", "bad domain"),
    ("domain", "add", "example..test"),
    ("domain", "add", "exa_mple.test"),
    ("domain", "add", ".example.test"),
    ("domain", "add", "@example.test"),
    ("domain", "add", ""),
    ("domain", "list", "extra"),
    ("domain", "del"),
    # user
    ("user",),
    ("user", "frob"),
    ("user", "add"),
    ("user", "add", "carol", "dave"),
    ("user", "add", "Bad Login"),
    ("user", "add", "123"),
    ("user", "add", "-carol"),
    ("user", "add", ".carol"),
    ("user", "add", "jörg"),
    ("user", "add", "carol@example.test"),
    ("user", "add", "a" * 65),
    ("user", "add", "carol", "--extension", "12a"),
    ("user", "add", "carol", "--extension", "12345678901234567"),
    ("user", "add", "carol", "--quota", "12X"),
    ("user", "add", "carol", "--quota", "lots"),
    ("user", "add", "carol", "--email", "not-an-address"),
    ("user", "add", "carol", "--name", "tab\there"),
    ("user", "add", "carol", "--bogus"),
    ("user", "add", "carol", "--pop3", "off"),        # add takes --no-pop3
    ("user", "add", "carol", "--extension"),
    ("user", "list", "extra"),
    ("user", "show"),
    ("user", "del"),
    ("user", "passwd", "alice"),                     # no --password-stdin
    ("user", "passwd"),
    ("user", "set", "alice"),                        # nothing to change
    ("user", "set", "alice", "--pop3", "maybe"),
    ("user", "set", "alice", "--no-pop3"),           # set takes --pop3 off
    ("user", "set", "alice", "--password-stdin"),
    ("user", "set", "alice", "--extension", "12a"),
    ("user", "set", "alice", "--quota", "12X"),
    # alias
    ("alias",),
    ("alias", "frob"),
    ("alias", "add"),
    ("alias", "add", "sales"),
    ("alias", "add", "bad name", "alice"),
    ("alias", "add", "a" * 65, "alice"),
    ("alias", "add", "sales", "a%b@remote.test"),
    ("alias", "add", "sales", "bad member"),
    ("alias", "add-member", "sales"),
    ("alias", "del-member", "sales"),
    ("alias", "show"),
    ("alias", "del"),
    ("alias", "list", "extra"),
    ("alias", "resolve"),
    ("alias", "resolve", "a", "b"),
    ("alias", "resolve", "bad name"),
    ("alias", "resolve", "alice@"),
    ("alias", "resolve", "<alice@example.test>"),
    ("alias", "resolve", "alice@@example.test"),
    # mail
    ("mail",),
    ("mail", "frob"),
    ("mail", "list"),
    ("mail", "show", "alice"),
    ("mail", "export", "alice"),
    ("mail", "del", "alice"),
    # status
    ("status", "extra"),
]


@pytest.mark.parametrize("args", USAGE_ERRORS,
                         ids=lambda a: " ".join(x[:20] for x in a) or "''")
def test_usage_error_exit_2(site, args):
    before = site.snapshot()
    site.fail(2, *args)
    assert site.snapshot() == before, "a usage error changed the store"


def test_no_arguments_is_usage_error(umbox):
    r = umbox.run(config=None)
    assert r.rc == 2, r
    assert r.out == ""
    assert "usage: umboxctl" in r.err
    # SPEC §9: errors go to stderr as "umboxctl: ...", this one too.
    assert r.err_after_usage[-1].startswith(ERROR_PREFIX), r


def test_c_without_file_is_usage_error(umbox):
    r = umbox.run("-c", config=None)
    assert r.rc == 2, r
    assert r.out == ""
    assert r.err_after_usage[-1].startswith(ERROR_PREFIX), r


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_on_stdout(umbox, flag):
    r = umbox.ok(flag, config=None)
    assert r.out.startswith("usage: umboxctl")
    for noun in ("domain", "user", "alias", "mail", "status"):
        assert noun in r.out


# Every verb of SPEC §9, by noun.
SPEC_VERBS = {
    "domain": {"add", "check", "list", "del"},
    "user": {"add", "list", "show", "del", "passwd", "set"},
    "alias": {"add", "list", "show", "del", "add-member", "del-member", "resolve"},
    "relay": {"add", "list", "show", "set", "del", "test"},
    "queue": {"list", "show", "flush", "del", "hold", "release"},
    "mail": {"list", "show", "export", "del", "speak"},
    "voicemail": {"deposit", "list", "play", "heard"},
    "fax": {"deposit"},
    "store": {"copy", "check"},
}


def test_completion_offers_every_verb():
    """The bash completion reads the words from --help: every verb the
    SPEC names must be there to be offered."""
    script = REPO / "etc" / "bash-completion" / "umboxctl"
    for noun, verbs in SPEC_VERBS.items():
        p = subprocess.run(["bash", "-c", f'. "$1"; _umboxctl_words "$2" verbs {noun}', "-",
                            str(script), str(UMBOXCTL)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert set(p.stdout.split()) == verbs, noun


def test_version(umbox):
    r = umbox.ok("--version", config=None)
    assert re.fullmatch(r"umboxctl \S+\n", r.out), r


@pytest.mark.parametrize("opts", [
    ("--config={conf}", "--json"),
    ("--config", "{conf}", "--json"),
    ("--json", "-c", "{conf}"),
    ("-c", "{conf}", "--json"),
])
def test_global_option_forms(site, opts):
    opts = [o.format(conf=site.config) for o in opts]
    r = site.ok(*opts, "user", "list", config=None)
    assert sorted(u["login"] for u in r.json()) == ["admin", "alice", "bob"]


@pytest.mark.parametrize("args, named", [
    (("voicemail", "deposit", "alice", "--audio"), "--audio"),
    (("user", "add", "erin", "--quota"), "--quota"),
    (("relay", "add", "r", "--host"), "--host"),
    (("user", "set", "erin", "--pop3"), "--pop3"),
], ids=lambda a: " ".join(a) if isinstance(a, tuple) else "")
def test_option_without_its_value_says_so(umbox, args, named):
    """A known option given last without its value is not a "bad option"."""
    r = umbox.fail(2, *args)
    assert f"umboxctl: {named} needs a value; usage: {' '.join(args[:2])} " in r.err, r


@pytest.mark.parametrize("args, named", [
    (("domain", "add", "example.test", "-x"), "-x"),
    (("domain", "add", "example.test", "--bogus"), "--bogus"),
    (("domain", "add", "-a.test"), "-a"),
    (("user", "add", "-x.y"), "-x"),
    (("user", "add", "erin", "--frob"), "--frob"),
    (("user", "add", "erin", "--pop3", "on"), None),
    (("relay", "add", "r", "--host", "h", "--active"), "--active"),
    (("voicemail", "deposit", "alice", "--audoi", "x.wav"), "--audoi"),
    (("fax", "deposit", "alice", "-t", "x.tif"), "-t"),
], ids=lambda a: " ".join(a) if isinstance(a, tuple) else "")
def test_bad_option_error_names_it(umbox, args, named):
    """The message names the option as given (its first letter for a
    cluster of short ones), then the verb's usage."""
    r = umbox.fail(2, *args)
    usage = " ".join(args[:2])
    if named:
        assert f"umboxctl: bad option {named}; usage: {usage} " in r.err, r
    else:
        assert f"umboxctl: usage: {usage} " in r.err, r


# -- not found (exit 4) ------------------------------------------------------

NOT_FOUND = [
    ("domain", "del", "nowhere.test"),
    ("user", "show", "nobody"),
    ("user", "del", "nobody"),
    ("user", "set", "nobody", "--name", "X"),
    ("alias", "show", "nope"),
    ("alias", "del", "nope"),
    ("alias", "add-member", "nope", "alice"),
    ("alias", "del-member", "nope", "alice"),
    ("alias", "resolve", "nobody"),
    ("alias", "resolve", "nobody@example.test"),
    ("alias", "resolve", "NoBody@Example.Test"),
    ("mail", "list", "nobody"),
    ("mail", "list", "999"),
    ("mail", "list", "nobody@example.test"),
    ("mail", "list", "alice@nowhere.test"),
    ("mail", "show", "alice", "1"),
    ("mail", "export", "alice", "1"),
    ("mail", "del", "alice", "1"),
    ("mail", "show", "nobody", "1"),
]


@pytest.mark.parametrize("args", NOT_FOUND, ids=" ".join)
def test_not_found_exit_4(site, args):
    before = site.snapshot()
    site.fail(4, *args)
    assert site.snapshot() == before


def test_passwd_unknown_user_exit_4(site):
    site.fail(4, "user", "passwd", "nobody", "--password-stdin", stdin="secret\n")


# -- failed (exit 1) ---------------------------------------------------------

def test_duplicates_fail_exit_1(site):
    site.fail(1, "domain", "add", "example.test")
    site.fail(1, "domain", "add", "EXAMPLE.Test", "--force")
    site.fail(1, "user", "add", "alice")
    site.fail(1, "user", "add", "ALICE")
    site.ok("alias", "add", "sales", "alice")
    site.fail(1, "alias", "add", "sales", "bob")
    site.fail(1, "alias", "add", "Sales", "bob")
    # and nothing was changed by the failures
    assert [d["name"] for d in site.json("domain", "list")] == ["example.test"]
    assert sorted(u["login"] for u in site.json("user", "list")) == ["admin", "alice", "bob"]
    assert site.json("alias", "show", "sales")["members"] == ["alice"]


# -- configuration (SPEC §2) -------------------------------------------------

def config_failure(r, code=1):
    """Config errors: exit code, nothing on stdout, last line umboxctl's."""
    assert r.rc == code, r
    assert r.out == "", r
    assert r.err_lines and r.err_lines[-1].startswith(ERROR_PREFIX), r


def test_missing_config_file_is_error(umbox):
    missing = umbox.root / "no-such.conf"
    r = umbox.run("status", config=missing)
    config_failure(r)
    assert "no-such.conf" in r.err
    assert not umbox.store_exists()
    # (on PostgreSQL the fixture made data_dir, to name the test's database)
    assert backend.PG or not umbox.data_dir.exists()


def test_missing_config_file_fails_for_every_noun(umbox):
    missing = umbox.root / "no-such.conf"
    for args in (("domain", "list"), ("user", "list"), ("alias", "list")):
        config_failure(umbox.run(*args, config=missing))


@pytest.mark.parametrize("extra, key", [
    ("bogus_key = 1", "bogus_key"),
    ("[smtpd]\nmax_recipients = 100\nno_such_thing = yes", "no_such_thing"),
    ("[queue]\nretry_max = 1h\nretry_initial = 30s\nflavour = vanilla", "flavour"),
])
def test_unknown_key_names_file_line_key(umbox, extra, key):
    umbox.write_config(extra)
    lineno = umbox.config.read_text().splitlines().index(next(
        l for l in umbox.config.read_text().splitlines() if l.startswith(key))) + 1
    r = umbox.run("domain", "add", "example.test", "--force")
    config_failure(r)
    assert str(umbox.config) in r.err or umbox.config.name in r.err
    assert re.search(rf"{re.escape(umbox.config.name)}:{lineno}\b", r.err), r
    assert key in r.err
    # nothing was changed
    assert not umbox.store_exists()


@pytest.mark.parametrize("extra, key", [
    ("[smtpd]\nmax_message_size = 12X", "max_message_size"),
    ("[queue]\nretry_initial = soon", "retry_initial"),
    ("[pop3d]\nplaintext_auth = sometimes", "plaintext_auth"),
])
def test_bad_value_names_file_line_key(umbox, extra, key):
    umbox.write_config(extra)
    lines = umbox.config.read_text().splitlines()
    lineno = next(i for i, l in enumerate(lines, 1) if l.startswith(key))
    r = umbox.run("status")
    config_failure(r)
    assert re.search(rf"{re.escape(umbox.config.name)}:{lineno}\b", r.err), r
    assert key in r.err


def test_config_error_lines_have_umboxctl_prefix(umbox):
    umbox.write_config("bogus_key = 1")
    r = umbox.run("status")
    assert r.rc == 1
    assert all(l.startswith(ERROR_PREFIX) for l in r.err_lines), r


def test_relative_data_dir_is_config_error(umbox):
    umbox.config.write_text("[general]\ndata_dir = relative/data\n")
    r = umbox.run("user", "list")
    config_failure(r)
    assert "data_dir" in r.err and ":2" in r.err


def test_uncreatable_data_dir_fails_cleanly(umbox):
    (umbox.root / "plainfile").write_text("")
    umbox.config.write_text(f"[general]\ndata_dir = {umbox.root}/plainfile/data\n")
    umbox.fail(1, "user", "list")


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to another user")
def test_store_read_only_to_the_user_says_so(umbox):
    """A store another user owns and this one may only read (an
    administrator's account on the daemons' store) is refused with a
    message saying so, not SQLite's "attempt to write a readonly
    database" halfway through."""
    backend.sqlite_only()
    umbox.ok("user", "add", "alice")
    # Where nobody may read (pytest's own directories are root's alone).
    top = pathlib.Path(tempfile.mkdtemp(prefix="umbox-ro-"))
    try:
        os.chmod(top, 0o755)
        shutil.copytree(umbox.data_dir, top / "data")
        for f in [top / "data", *(top / "data").iterdir()]:
            os.chmod(f, 0o755 if f.is_dir() else 0o644)
        conf = top / "umbox.conf"
        conf.write_text(umbox.config.read_text().replace(str(umbox.data_dir), str(top / "data")))
        os.chmod(conf, 0o644)
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            str(umbox_binary()), "-c", str(conf), "user", "list"],
                           capture_output=True, text=True, timeout=30)
    finally:
        shutil.rmtree(top)
    assert r.returncode == 1, r
    assert "is read-only to this user" in r.stderr and "readonly database" not in r.stderr, r


def umbox_binary():
    return pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build"))) / "umboxctl"


def test_data_dir_created_with_parents(umbox):
    umbox.data_dir = umbox.root / "a" / "b" / "data"
    umbox.write_config()
    umbox.ok("user", "add", "alice")
    assert umbox.store_exists()


# -- data lives in the store, not in the config --------------------------------

def test_changes_persist_across_processes(umbox):
    before = umbox.config.read_bytes()
    umbox.ok("domain", "add", "example.test", "--force")
    umbox.ok("user", "add", "alice", "--extension", "100")
    umbox.ok("alias", "add", "sales", "alice")
    # the config file is untouched: domains, users, aliases are data
    assert umbox.config.read_bytes() == before
    assert umbox.store_exists()
    # later processes see the changes
    assert [d["name"] for d in umbox.json("domain", "list")] == ["example.test"]
    assert [u["login"] for u in umbox.json("user", "list")] == ["alice"]
    assert umbox.ok("alias", "resolve", "sales@example.test").lines == ["local alice"]
    umbox.ok("user", "del", "alice")
    assert umbox.json("user", "list") == []


def test_second_config_on_same_data_dir_sees_the_data(umbox):
    umbox.ok("user", "add", "alice")
    other = umbox.root / "other.conf"
    other.write_text(f"[general]\ndata_dir = {umbox.data_dir}\nhostname = other.test\n"
                     + backend.store_section(umbox.data_dir))
    r = umbox.ok("--json", "user", "list", config=other)
    assert [u["login"] for u in r.json()] == ["alice"]


def test_concurrent_processes_on_fresh_store(umbox):
    """Several umboxctl at once (as while the daemons run): none is lost,
    even while the store is being created."""
    with ThreadPoolExecutor(max_workers=12) as ex:
        results = list(ex.map(lambda i: umbox.run("user", "add", f"u{i}", "--extension",
                                                  str(200 + i)), range(12)))
    for r in results:
        assert r.rc == 0, r
    j = umbox.json("user", "list")
    assert sorted(u["login"] for u in j) == sorted(f"u{i}" for i in range(12))


def test_concurrent_same_extension_one_wins(umbox):
    umbox.ok("status")
    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(lambda i: umbox.run("user", "add", f"u{i}", "--extension",
                                                  "300"), range(8)))
    assert sorted(r.rc for r in results) == [0] + [1] * 7, results
    for r in results:
        if r.rc:
            assert r.out == "" and r.err.startswith("umboxctl: "), r
    j = umbox.json("user", "list")
    assert len(j) == 1 and j[0]["extension"] == "300"


def test_separate_data_dirs_are_separate(umbox_factory):
    a, b = umbox_factory(), umbox_factory()
    a.ok("user", "add", "alice")
    assert b.json("user", "list") == []


# -- status ------------------------------------------------------------------

def test_status_empty(umbox):
    r = umbox.ok("status")
    assert re.search(r"^domains:\s+0$", r.out, re.M), r
    assert re.search(r"^users:\s+0$", r.out, re.M), r
    j = umbox.json("status")
    assert j["users"] == 0 and j["domains"] == 0
    assert j["domain_guard"] == []


def test_status_counts_and_guard_verdicts(site):
    site.ok("domain", "add", "other.test")
    site.ok("domain", "add", "foreign.guard.test", "--force")
    site.ok("alias", "add", "sales", "alice", "bob")
    guards = {d["name"]: d["guard"] for d in site.json("domain", "list")}
    assert guards["other.test"] == "internal"
    assert guards["foreign.guard.test"] == "foreign"

    r = site.ok("status")
    assert re.search(r"^domains:\s+3$", r.out, re.M), r
    assert re.search(r"^users:\s+3$", r.out, re.M), r
    assert re.search(r"^aliases:\s+1$", r.out, re.M), r
    assert site.hostname in r.out
    assert backend.store_where(site.data_dir) in r.out
    verdicts = dict(re.findall(r"^domain (\S+): MX guard (.+)$", r.out, re.M))
    assert set(verdicts) == {"example.test", "other.test", "foreign.guard.test"}, r
    assert verdicts["other.test"].startswith("internal, checked ")
    assert verdicts["foreign.guard.test"].startswith("foreign (forced), checked ")
    assert "WARNING: foreign.guard.test's mail goes to another server" in r.out

    j = site.json("status")
    assert j["domains"] == 3
    assert j["users"] == 3
    assert j["aliases"] == 1
    assert j["hostname"] == site.hostname
    g = {d["name"]: d for d in j["domain_guard"]}
    assert g["foreign.guard.test"]["forced"] is True
    assert g["foreign.guard.test"]["foreign"] is True
    assert g["other.test"]["forced"] is False
    assert g["other.test"]["guard"] == guards["other.test"]


def test_status_counts_follow_changes(site):
    site.ok("user", "del", "bob")
    assert site.json("status")["users"] == 2
    site.ok("domain", "del", "example.test")
    assert site.json("status")["domains"] == 0


# -- [store] backend -----------------------------------------------------------

def test_postgresql_unreachable_is_a_clear_error(umbox):
    """With backend = postgresql umboxctl uses that database, never an
    SQLite file instead; a server it cannot reach is an error that says so."""
    umbox.write_config("[store]\nbackend = postgresql\n"
                       "dsn = host=/nonexistent dbname=mail connect_timeout=2\n")
    r = umbox.run("user", "list")
    assert r.rc == 1, r
    assert "cannot connect to PostgreSQL" in r.err, r
    assert not umbox.store_exists()


@pytest.mark.skipif(backend.PG, reason="the store is on the database server")
def test_full_disk_is_named(site, tmp_path):
    """On a data directory with no room left, a change fails with exit 1
    and says why in the system's words, not only "disk I/O error"; with
    room again the same command works."""
    with small_disk(site.data_dir, "4m", tmp_path / "template-data"):
        filler = fill(site.data_dir)
        r = site.fail(1, "user", "add", "zed")
        assert "No space left on device" in r.err, r
        os.unlink(filler)
        site.ok("user", "add", "zed")
        assert "zed" in [u["login"] for u in site.json("user", "list")]
