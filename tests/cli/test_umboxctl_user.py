"""umboxctl user add | list | show | del | passwd | set (SPEC §3, §9)."""
import os
import warnings

import pytest

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, gone in 3.13; present in Debian 12's 3.11
except ImportError:  # pragma: no cover
    crypt = None

USER_KEYS = {"login", "extension", "name", "email", "quota", "pop3", "password_set"}


def stored_hash(umbox, login):
    rows = umbox.query("SELECT password FROM users WHERE login = ?", login)
    assert len(rows) == 1, rows
    return rows[0][0]


def assert_yescrypt(umbox, login, password, not_passwords=()):
    h = stored_hash(umbox, login)
    assert h is not None
    assert h.startswith("$y$"), h
    assert password not in h
    if crypt is not None:
        assert crypt.crypt(password, h) == h, "the hash does not verify the password"
        for other in not_passwords:
            assert crypt.crypt(other, h) != h, f"the hash also verifies {other!r}"
    return h


# -- add / show / list -------------------------------------------------------

def test_add_with_every_option(umbox):
    r = umbox.ok("user", "add", "Carol", "--extension", "205", "--name", "Carol Q. Public",
                 "--email", "carol@outside.test", "--quota", "10M", "--no-pop3",
                 "--password-stdin", stdin="s3cret pass\n")
    assert "carol" in r.out

    j = umbox.json("user", "show", "carol")
    assert USER_KEYS <= set(j)
    assert j["login"] == "carol"                  # stored lowercase
    assert j["extension"] == "205"
    assert j["name"] == "Carol Q. Public"
    assert j["email"] == "carol@outside.test"
    assert j["quota"] == 10 * 1024 * 1024
    assert j["pop3"] is False
    assert j["password_set"] is True
    assert j["messages"] == 0 and j["used"] == 0

    assert_yescrypt(umbox, "carol", "s3cret pass", ["s3cret pass\n", "s3cret"])

    r = umbox.ok("user", "show", "CAROL")
    fields = dict(l.split(":", 1) for l in r.lines if ":" in l)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["login"] == "carol"
    assert fields["extension"] == "205"
    assert fields["name"] == "Carol Q. Public"
    assert fields["email"] == "carol@outside.test"
    assert fields["quota"] == "10M"
    assert fields["pop3"] == "off"
    assert fields["password"].startswith("set")
    assert "s3cret" not in r.out and "$y$" not in r.out


def test_add_minimal_defaults(umbox):
    umbox.ok("user", "add", "dave")
    j = umbox.json("user", "show", "dave")
    assert j["extension"] is None
    assert j["name"] is None
    assert j["email"] is None
    assert j["quota"] == 0
    assert j["pop3"] is True
    assert j["password_set"] is False
    assert stored_hash(umbox, "dave") is None
    fields = {l.split(":", 1)[0]: l.split(":", 1)[1].strip() for l in
              umbox.ok("user", "show", "dave").lines}
    assert fields["quota"] == "unlimited"
    assert fields["pop3"] == "on"
    assert fields["password"].startswith("not set")


def test_login_limits(umbox):
    umbox.ok("user", "add", "a" * 64)
    umbox.ok("user", "add", "x1.y_z-9")
    umbox.ok("user", "add", "9lives")
    assert sorted(u["login"] for u in umbox.json("user", "list")) == \
        sorted(["a" * 64, "x1.y_z-9", "9lives"])


@pytest.mark.parametrize("name", ["", "a" * 65, ".a", "_a", "-a", "a b", "a@b", "a+b",
                                  "ab.", "a..b", "caf\u00e9", "123"])
def test_bad_login_and_alias_name_refused(umbox, name):
    """A login and an alias name are the local part of addresses: a dot at
    the end or two in a row would make an address nobody can send to."""
    umbox.fail(2, "user", "add", name)
    if name != "123":
        umbox.fail(2, "alias", "add", name, "root@outside.test")
    assert umbox.json("user", "list") == [] and umbox.json("alias", "list") == []


@pytest.mark.parametrize("quota, value", [("0", 0), ("1234", 1234), ("512K", 512 * 1024),
                                          ("2G", 2 * 1024 ** 3), ("10M", 10 * 1024 ** 2)])
def test_quota_sizes(umbox, quota, value):
    umbox.ok("user", "add", "dave", "--quota", quota)
    assert umbox.json("user", "show", "dave")["quota"] == value


@pytest.mark.parametrize("quota", ["18446744073709551616", "99999999999G", "-1", "1.5M",
                                   "5KB", "0x10", " 5"])
def test_bad_quota_is_usage_error(umbox, quota):
    umbox.fail(2, "user", "add", "dave", "--quota", quota)
    umbox.fail(4, "user", "show", "dave")


@pytest.mark.parametrize("quota", ["9223372036854775808", "18446744073709551615"])
def test_huge_quota_refused_or_kept(umbox, quota):
    r = umbox.run("user", "add", "dave", "--quota", quota)
    if r.rc == 0:
        assert umbox.json("user", "show", "dave")["quota"] == int(quota)
    else:
        assert r.rc == 2, r


def test_name_with_quotes_and_utf8_round_trips_in_json(umbox):
    name = 'Zoë "Z" O\'Neil \\ Ünïcode'
    umbox.ok("user", "add", "zoe", "--name", name)
    assert umbox.json("user", "show", "zoe")["name"] == name
    assert umbox.json("user", "list")[0]["name"] == name


@pytest.mark.parametrize("name", [b"Jos\xe9 (Latin-1)", b"surrogate \xed\xa0\x80",
                                  b"overlong \xc0\xaf", "C1 \u0085 control".encode()],
                         ids=["latin1", "surrogate", "overlong", "c1-control"])
def test_name_must_be_utf8_text(umbox, name):
    """A name is shown to people and printed in JSON, which is UTF-8."""
    umbox.fail(2, "user", "add", "jose", "--name", os.fsdecode(name))
    assert umbox.run("user", "show", "jose").rc == 4


def test_name_limit_counts_characters(umbox):
    umbox.ok("user", "add", "zoe", "--name", "\u00e9" * 200)
    assert umbox.json("user", "show", "zoe")["name"] == "\u00e9" * 200
    r = umbox.fail(2, "user", "set", "zoe", "--name", "\u00e9" * 201)
    assert "200 characters" in r.err


def test_list_table_and_json(site):
    site.ok("user", "add", "carol", "--extension", "102", "--email", "c@x.test",
            "--quota", "1G", "--no-pop3")
    j = {u["login"]: u for u in site.json("user", "list")}
    assert set(j) == {"admin", "alice", "bob", "carol"}
    for u in j.values():
        assert USER_KEYS <= set(u)
    assert j["alice"]["extension"] == "100"
    assert j["alice"]["name"] == "Alice Example"
    assert j["carol"]["pop3"] is False
    assert j["carol"]["quota"] == 1024 ** 3

    rows = {r["LOGIN"]: r for r in site.ok("user", "list").table()}
    assert set(rows) == {"admin", "alice", "bob", "carol"}
    assert rows["alice"]["EXTENSION"] == "100"
    assert rows["alice"]["NAME"] == "Alice Example"
    assert rows["carol"]["EXTENSION"] == "102"
    assert rows["carol"]["EMAIL"] == "c@x.test"
    assert rows["carol"]["QUOTA"] == "1G"
    assert rows["carol"]["POP3"] == "off"
    assert rows["alice"]["POP3"] == "on"
    assert rows["admin"]["QUOTA"] == "unlimited"
    assert rows["admin"]["EXTENSION"] == "-"


@pytest.mark.parametrize("quota", ["4096G", "8589934591G", "5G", "512K"])
def test_listed_quota_can_be_given_back(umbox, quota):
    """The QUOTA column uses only the suffixes --quota takes."""
    umbox.ok("user", "add", "dave", "--quota", quota)
    [row] = umbox.ok("user", "list").table()
    assert row["QUOTA"] == quota
    umbox.ok("user", "set", "dave", "--quota", row["QUOTA"])


@pytest.mark.parametrize("quota,shown", [("1048575", "1.0M"), ("1047552", "1023K"), ("1047553", "1023.0K"),
                                         ("1025", "1.0K"), ("1536", "1.5K"), ("1024", "1K"),
                                         ("1073741823", "1.0G"), ("1023", "1023")])
def test_listed_quota_is_rounded_into_the_next_unit(umbox, quota, shown):
    """A size just short of a unit is shown in it (1.0M), never as 1024.0K."""
    umbox.ok("user", "add", "dave", "--quota", quota)
    [row] = umbox.ok("user", "list").table()
    assert row["QUOTA"] == shown


def test_list_table_aligned_with_utf8_names(umbox):
    umbox.ok("user", "add", "joerg", "--name", "Jörg Müller", "--email", "j@x.test")
    umbox.ok("user", "add", "ann", "--name", "Ann Smith", "--email", "a@x.test")
    rows = {r["LOGIN"]: r for r in umbox.ok("user", "list").table()}
    assert rows["joerg"]["NAME"] == "Jörg Müller"
    assert rows["joerg"]["EMAIL"] == "j@x.test"


def test_list_table_aligned_with_wide_characters(umbox):
    """Names in CJK characters take two columns each on a terminal: the
    next column still starts at one place on every line (by display
    width, as unicodedata's East Asian Width says)."""
    import unicodedata

    def width(text):
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else
                   0 if unicodedata.combining(ch) else 1 for ch in text)

    umbox.ok("user", "add", "wang", "--name", "王小明", "--email", "w@x.test")
    umbox.ok("user", "add", "ann", "--name", "Ann Smith", "--email", "a@x.test")
    umbox.ok("user", "add", "zoe", "--name", "Zoe\u0301 Doe", "--email", "z@x.test")
    lines = umbox.ok("user", "list").lines
    starts = {width(ln[:ln.index(mail)]) for ln in lines
              for mail in ("w@x.test", "a@x.test", "z@x.test") if mail in ln}
    assert len(starts) == 1, lines


def test_empty_list(umbox):
    assert umbox.ok("user", "list").lines[0].split()[0] == "LOGIN"
    assert len(umbox.ok("user", "list").lines) == 1
    assert umbox.json("user", "list") == []


def test_duplicate_login_fails(site):
    site.fail(1, "user", "add", "Alice", "--extension", "555")
    assert site.json("user", "show", "alice")["extension"] == "100"
    assert [u for u in site.json("user", "list") if u["extension"] == "555"] == []


# -- passwords ---------------------------------------------------------------

def test_password_one_trailing_newline_stripped(umbox):
    umbox.ok("user", "add", "erin", "--password-stdin", stdin="hunter2\n")
    assert umbox.json("user", "show", "erin")["password_set"] is True
    assert_yescrypt(umbox, "erin", "hunter2", ["hunter2\n"])


def test_password_without_newline(umbox):
    umbox.ok("user", "add", "erin", "--password-stdin", stdin="hunter2")
    assert_yescrypt(umbox, "erin", "hunter2")


def test_password_hashes_are_salted(umbox):
    umbox.ok("user", "add", "u1", "--password-stdin", stdin="same\n")
    umbox.ok("user", "add", "u2", "--password-stdin", stdin="same\n")
    assert stored_hash(umbox, "u1") != stored_hash(umbox, "u2")


@pytest.mark.parametrize("stdin", ["", "\n"], ids=["empty", "newline-only"])
def test_empty_password_refused(umbox, stdin):
    umbox.fail(2, "user", "add", "erin", "--password-stdin", stdin=stdin)
    assert umbox.run("user", "show", "erin").rc == 4   # not created


def test_multiline_password_refused(umbox):
    umbox.fail(2, "user", "add", "erin", "--password-stdin", stdin="one\ntwo\n")
    assert umbox.run("user", "show", "erin").rc == 4


def test_password_length_limit_leaves_out_the_newline(umbox):
    """256 bytes is the most the daemons take at login: so many, with or
    without the newline that ends them, are accepted; one more is not."""
    pw = "p" * 256
    umbox.ok("user", "add", "erin", "--password-stdin", stdin=pw + "\n")
    assert_yescrypt(umbox, "erin", pw)
    umbox.ok("user", "passwd", "erin", "--password-stdin", stdin=pw[1:] + "q")
    assert_yescrypt(umbox, "erin", pw[1:] + "q")
    for stdin in (pw + "p", pw + "p\n"):
        r = umbox.fail(2, "user", "passwd", "erin", "--password-stdin", stdin=stdin)
        assert "longer than 256 bytes" in r.err
    assert_yescrypt(umbox, "erin", pw[1:] + "q")


@pytest.mark.parametrize("stdin", ["secret\r\n", "sec\tret\n", "secret\x1b\n"],
                         ids=["dos-line-end", "tab", "escape"])
def test_password_with_control_characters_refused(umbox, stdin):
    umbox.fail(2, "user", "add", "erin", "--password-stdin", stdin=stdin)
    assert umbox.run("user", "show", "erin").rc == 4


def test_passwd_needs_password_stdin(site):
    site.fail(2, "user", "passwd", "alice", stdin="secret\n")
    assert site.json("user", "show", "alice")["password_set"] is False


def test_passwd_changes_hash(umbox):
    umbox.ok("user", "add", "erin", "--password-stdin", stdin="old-pass\n")
    old = stored_hash(umbox, "erin")
    umbox.ok("user", "passwd", "ERIN", "--password-stdin", stdin="new-pass\n")
    new = assert_yescrypt(umbox, "erin", "new-pass", ["old-pass", "new-pass\n"])
    assert new != old


def test_passwd_sets_first_password(site):
    site.ok("user", "passwd", "bob", "--password-stdin", stdin="pw-for-bob\n")
    assert site.json("user", "show", "bob")["password_set"] is True
    assert_yescrypt(site, "bob", "pw-for-bob")


def test_passwd_empty_refused_keeps_old(umbox):
    umbox.ok("user", "add", "erin", "--password-stdin", stdin="old-pass\n")
    old = stored_hash(umbox, "erin")
    umbox.fail(2, "user", "passwd", "erin", "--password-stdin", stdin="")
    assert stored_hash(umbox, "erin") == old


# -- extensions --------------------------------------------------------------

def test_extension_unique_on_add(site):
    site.fail(1, "user", "add", "carol", "--extension", "100")
    assert site.run("user", "show", "carol").rc == 4
    assert site.json("user", "show", "alice")["extension"] == "100"
    assert site.ok("alias", "resolve", "100").lines == ["local alice"]


def test_extension_unique_on_set(site):
    site.fail(1, "user", "set", "bob", "--extension", "100")
    assert site.json("user", "show", "alice")["extension"] == "100"
    assert site.json("user", "show", "bob")["extension"] == "101"


def test_set_own_extension_again(site):
    site.ok("user", "set", "alice", "--extension", "100")
    assert site.json("user", "show", "alice")["extension"] == "100"


def test_extension_moves_after_clear(site):
    site.ok("user", "set", "alice", "--extension", "")
    assert site.json("user", "show", "alice")["extension"] is None
    site.ok("user", "set", "bob", "--extension", "100")
    assert site.json("user", "show", "bob")["extension"] == "100"
    assert site.ok("alias", "resolve", "100").lines == ["local bob"]


# -- set ---------------------------------------------------------------------

@pytest.mark.parametrize("option, value, key, expected", [
    ("--extension", "4711", "extension", "4711"),
    ("--name", "Alice Renamed", "name", "Alice Renamed"),
    ("--email", "alice@elsewhere.test", "email", "alice@elsewhere.test"),
    ("--quota", "5M", "quota", 5 * 1024 * 1024),
    ("--quota", "0", "quota", 0),
    ("--pop3", "off", "pop3", False),
    ("--pop3", "on", "pop3", True),
])
def test_set_each_field(site, option, value, key, expected):
    before = site.json("user", "show", "alice")
    site.ok("user", "set", "alice", option, value)
    after = site.json("user", "show", "alice")
    assert after[key] == expected
    # nothing else changed
    for k in USER_KEYS - {key}:
        assert after[k] == before[k], k


def test_set_pop3_off_then_on(site):
    site.ok("user", "set", "alice", "--pop3", "off")
    assert site.json("user", "show", "alice")["pop3"] is False
    rows = {r["LOGIN"]: r for r in site.ok("user", "list").table()}
    assert rows["alice"]["POP3"] == "off"
    site.ok("user", "set", "alice", "--pop3", "on")
    assert site.json("user", "show", "alice")["pop3"] is True


def test_set_several_fields_and_clear(site):
    site.ok("user", "set", "ALICE", "--extension", "777", "--name", "A", "--email",
            "a@b.test", "--quota", "1K", "--pop3", "off")
    j = site.json("user", "show", "alice")
    assert (j["extension"], j["name"], j["email"], j["quota"], j["pop3"]) == \
        ("777", "A", "a@b.test", 1024, False)
    site.ok("user", "set", "alice", "--extension", "", "--name", "", "--email", "")
    j = site.json("user", "show", "alice")
    assert (j["extension"], j["name"], j["email"]) == (None, None, None)


def test_set_keeps_password(umbox):
    umbox.ok("user", "add", "erin", "--password-stdin", stdin="pw\n")
    h = stored_hash(umbox, "erin")
    umbox.ok("user", "set", "erin", "--name", "Erin")
    assert stored_hash(umbox, "erin") == h


def test_set_bad_value_changes_nothing(site):
    before = site.json("user", "show", "alice")
    site.fail(2, "user", "set", "alice", "--name", "X", "--quota", "12X")
    site.fail(2, "user", "set", "alice", "--name", "X", "--extension", "12a")
    assert site.json("user", "show", "alice") == before


# -- del ---------------------------------------------------------------------

def test_del(site):
    site.ok("user", "del", "Alice")
    site.fail(4, "user", "show", "alice")
    assert sorted(u["login"] for u in site.json("user", "list")) == ["admin", "bob"]
    assert "alice" not in [r["LOGIN"] for r in site.ok("user", "list").table()]
    site.fail(4, "alias", "resolve", "alice")
    site.fail(4, "alias", "resolve", "100")
    site.fail(4, "mail", "list", "alice")
    site.fail(4, "user", "del", "alice")
    # the login and the extension are free again
    site.ok("user", "add", "alice", "--extension", "100")
    assert site.json("user", "show", "alice")["name"] is None
