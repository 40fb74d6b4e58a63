"""umboxctl domain add | list | del (SPEC §7, §9).

DNS is the session's tests/dns/dnsserver.py (see tests/conftest.py), where
every name under .test outside its zone does not exist: a plain `domain
add` of such a name is claimed as an internal name, with a warning.  The
MX guard's other verdicts are in test_umboxctl_guard.py.
"""
import time

import pytest


def when(ts):
    """CHECKED as `domain list` prints it (the tests run with TZ=UTC)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def test_empty_list(umbox):
    r = umbox.ok("domain", "list")
    assert r.lines == ["DOMAIN  GUARD  FORCED  CHECKED  DETAIL"]
    assert umbox.json("domain", "list") == []


def test_add_lowercases_and_lists(umbox):
    t0 = int(time.time())
    r = umbox.ok("domain", "add", "Example.TEST")
    assert "example.test" in r.out
    assert r.lines == ["domain example.test added: MX guard internal: "
                       "example.test does not exist in DNS (NXDOMAIN)"], r
    assert r.err_lines == ["umboxctl: warning: example.test is an internal name "
                           "(example.test does not exist in DNS (NXDOMAIN)): "
                           "outside senders cannot reach it"], r
    j = umbox.json("domain", "list")
    assert len(j) == 1
    d = j[0]
    assert d["name"] == "example.test"
    assert d["guard"] == "internal"
    assert d["guard_detail"] == "example.test does not exist in DNS (NXDOMAIN)"
    assert d["forced"] is False
    assert t0 <= d["checked_at"] <= time.time()
    assert t0 <= d["created_at"] <= time.time()
    # stored lowercase, not only printed so
    assert umbox.query("SELECT name FROM domains") == [("example.test",)]

    rows = umbox.ok("domain", "list").table()
    assert [row["DOMAIN"] for row in rows] == ["example.test"]
    assert rows[0]["GUARD"] == d["guard"]
    assert rows[0]["FORCED"] == "no"
    assert rows[0]["CHECKED"] == when(d["checked_at"])
    assert rows[0]["DETAIL"] == d["guard_detail"]


def test_add_is_case_insensitive_duplicate(umbox):
    umbox.ok("domain", "add", "example.test")
    umbox.fail(1, "domain", "add", "EXAMPLE.test")
    umbox.fail(1, "domain", "add", "Example.Test", "--force")
    assert [d["name"] for d in umbox.json("domain", "list")] == ["example.test"]


def test_force_is_recorded(umbox):
    """--force is recorded when it overrode the guard: a foreign MX, or DNS
    that failed; over a name the guard would have claimed it changes nothing."""
    r = umbox.ok("domain", "add", "foreign.guard.test", "--force")
    assert "with --force over the MX guard's verdict foreign" in r.out, r
    r = umbox.ok("domain", "add", "servfail.test", "--force")
    assert "with --force over the MX guard's verdict dns-error" in r.out, r
    umbox.ok("domain", "add", "plain.test")
    umbox.ok("domain", "add", "needless.test", "--force")
    j = {d["name"]: d for d in umbox.json("domain", "list")}
    assert (j["foreign.guard.test"]["forced"], j["foreign.guard.test"]["guard"]) == \
        (True, "foreign")
    assert (j["servfail.test"]["forced"], j["servfail.test"]["guard"]) == (True, "dns-error")
    assert (j["plain.test"]["forced"], j["plain.test"]["guard"]) == (False, "internal")
    assert (j["needless.test"]["forced"], j["needless.test"]["guard"]) == (False, "internal")
    rows = {r["DOMAIN"]: r for r in umbox.ok("domain", "list").table()}
    assert rows["foreign.guard.test"]["FORCED"] == "yes"
    assert rows["foreign.guard.test"]["GUARD"] == "foreign"
    assert rows["servfail.test"]["FORCED"] == "yes"
    assert rows["plain.test"]["FORCED"] == "no"
    assert rows["needless.test"]["FORCED"] == "no"


def test_longest_domain_keeps_the_whole_guard_detail(umbox):
    """253 characters is the longest name DNS can look up; what the guard
    says of it is kept whole."""
    name = ".".join(["d" * 63] * 3 + ["f" * 61])
    umbox.write_config("[dns]\nservers = 127.0.0.1:1\n")
    umbox.ok("domain", "add", name, "--force")
    [d] = umbox.json("domain", "list")
    assert d["name"] == name
    assert d["guard_detail"] == f"{name}: MX lookup failed: no DNS server reachable"


def test_force_before_name(umbox):
    umbox.ok("domain", "add", "--force", "foreign.guard.test")
    d = umbox.json("domain", "list")[0]
    assert (d["name"], d["forced"], d["guard"]) == ("foreign.guard.test", True, "foreign")


def test_refused_without_force(umbox):
    umbox.fail(3, "domain", "add", "foreign.guard.test")
    umbox.fail(1, "domain", "add", "servfail.test")
    assert umbox.json("domain", "list") == []


def test_list_several(umbox):
    names = ["b.test", "a.test", "xn--bcher-kva.test", "sub.c.test"]
    for n in names:
        umbox.ok("domain", "add", n, "--force")
    j = umbox.json("domain", "list")
    assert sorted(d["name"] for d in j) == sorted(names)
    for d in j:
        assert set(d) >= {"name", "guard", "guard_detail", "forced", "checked_at",
                          "created_at"}
        assert d["guard"] == "internal" and d["forced"] is False
    rows = umbox.ok("domain", "list").table()
    assert sorted(r["DOMAIN"] for r in rows) == sorted(names)


def test_del(umbox):
    umbox.ok("domain", "add", "example.test")
    umbox.ok("domain", "add", "other.test")
    umbox.ok("domain", "del", "EXAMPLE.Test")
    assert [d["name"] for d in umbox.json("domain", "list")] == ["other.test"]
    umbox.fail(4, "domain", "del", "example.test")
    # and it can be claimed again
    umbox.ok("domain", "add", "example.test")


@pytest.mark.parametrize("name", ["", "example.test.", "bad name", "a..test"])
def test_del_of_a_name_that_is_no_domain_is_usage(umbox, name):
    """What add and check refuse as no domain name, del refuses the same way."""
    umbox.ok("domain", "add", "example.test")
    r = umbox.fail(2, "domain", "del", name)
    assert "is not a valid domain name" in r.err, r
    assert [d["name"] for d in umbox.json("domain", "list")] == ["example.test"]


def test_del_makes_domain_remote(site):
    assert site.ok("alias", "resolve", "alice@example.test").lines == ["local alice"]
    site.ok("domain", "del", "example.test")
    assert site.ok("alias", "resolve", "alice@example.test").lines == \
        ["remote alice@example.test via mx"]
    site.fail(4, "mail", "list", "alice@example.test")


@pytest.mark.parametrize("name", ["bad domain", "example..test", "exa_mple.test",
                                  ".example.test", "example.test.", "@example.test",
                                  "a@b.test", "", "a" * 64 + ".test", "1.2.3.4", "test.123",
                                  ".".join(["d" * 63] * 3 + ["e" * 62])],
                         ids=lambda n: n if len(n) < 40 else f"{len(n)}-characters")
def test_add_invalid_domain_is_usage_error(umbox, name):
    umbox.fail(2, "domain", "add", name)
    umbox.fail(2, "domain", "add", name, "--force")
    if name:
        umbox.fail(2, "domain", "check", name)
    assert umbox.json("domain", "list") == []
