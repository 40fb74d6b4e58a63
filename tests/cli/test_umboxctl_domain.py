"""umboxctl domain add | list | del (SPEC §7, §9)."""
import pytest


def test_empty_list(umbox):
    r = umbox.ok("domain", "list")
    assert r.lines == ["DOMAIN  GUARD  FORCED  CHECKED"]
    assert umbox.json("domain", "list") == []


def test_add_lowercases_and_lists(umbox):
    r = umbox.ok("domain", "add", "Example.TEST")
    assert "example.test" in r.out
    j = umbox.json("domain", "list")
    assert len(j) == 1
    d = j[0]
    assert d["name"] == "example.test"
    assert isinstance(d["guard"], str) and d["guard"]
    assert d["forced"] is False
    # stored lowercase, not only printed so
    assert umbox.query("SELECT name FROM domains") == [("example.test",)]

    rows = umbox.ok("domain", "list").table()
    assert [row["DOMAIN"] for row in rows] == ["example.test"]
    assert rows[0]["GUARD"] == d["guard"]
    assert rows[0]["FORCED"] == "no"


def test_add_is_case_insensitive_duplicate(umbox):
    umbox.ok("domain", "add", "example.test")
    umbox.fail(1, "domain", "add", "EXAMPLE.test")
    umbox.fail(1, "domain", "add", "Example.Test", "--force")
    assert [d["name"] for d in umbox.json("domain", "list")] == ["example.test"]


def test_force_is_recorded(umbox):
    umbox.ok("domain", "add", "forced.test", "--force")
    umbox.ok("domain", "add", "plain.test")
    j = {d["name"]: d for d in umbox.json("domain", "list")}
    assert j["forced.test"]["forced"] is True
    assert j["plain.test"]["forced"] is False
    rows = {r["DOMAIN"]: r for r in umbox.ok("domain", "list").table()}
    assert rows["forced.test"]["FORCED"] == "yes"
    assert rows["plain.test"]["FORCED"] == "no"


def test_force_before_name(umbox):
    umbox.ok("domain", "add", "--force", "forced.test")
    assert umbox.json("domain", "list")[0]["forced"] is True


def test_list_several(umbox):
    names = ["b.test", "a.test", "xn--bcher-kva.test", "sub.c.test"]
    for n in names:
        umbox.ok("domain", "add", n, "--force")
    j = umbox.json("domain", "list")
    assert sorted(d["name"] for d in j) == sorted(names)
    for d in j:
        assert set(d) >= {"name", "guard", "forced"}
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


def test_del_makes_domain_remote(site):
    assert site.ok("alias", "resolve", "alice@example.test").lines == ["local alice"]
    site.ok("domain", "del", "example.test")
    assert site.ok("alias", "resolve", "alice@example.test").lines == \
        ["remote alice@example.test via mx"]
    site.fail(4, "mail", "list", "alice@example.test")


@pytest.mark.parametrize("name", ["bad domain", "example..test", "exa_mple.test",
                                  ".example.test", "example.test.", "@example.test",
                                  "a@b.test", ""])
def test_add_invalid_domain_is_usage_error(umbox, name):
    umbox.fail(2, "domain", "add", name)
    umbox.fail(2, "domain", "add", name, "--force")
    assert umbox.json("domain", "list") == []
