"""umboxctl alias add | list | show | del | add-member | del-member | resolve.

SPEC §4 (local recipients: alias, then login, then extension; postmaster
always resolves; relay tricks never relay), §6 (recursive, de-duplicated,
loop-safe expansion; Allworx semantics), §9 (`alias resolve` output).
"""
import pytest


def resolve(umbox, address):
    """The targets of `alias resolve`, checked against its --json form."""
    r = umbox.ok("alias", "resolve", address)
    j = umbox.json("alias", "resolve", address)
    assert isinstance(j, list)
    text = []
    for t in j:
        if t["type"] == "local":
            text.append(f"local {t['login']}")
        else:
            assert t["type"] == "remote", t
            text.append(f"remote {t['address']} via mx")
    assert r.lines == text, (r, j)
    return r.lines


def locals_of(umbox, address):
    lines = resolve(umbox, address)
    assert all(l.startswith("local ") for l in lines), lines
    return [l.split(" ", 1)[1] for l in lines]


# -- add / list / show / del / members -----------------------------------------

def test_empty_list(umbox):
    assert umbox.ok("alias", "list").lines == ["ALIAS  MEMBERS"]
    assert umbox.json("alias", "list") == []


def test_round_trip(site):
    r = site.ok("alias", "add", "Sales", "alice", "BOB", "Partner@Remote.TEST", "100")
    assert "sales" in r.out
    j = site.json("alias", "show", "sales")
    assert j["name"] == "sales"
    # bare names lowercased, an address's domain lowercased (its local part kept)
    assert sorted(j["members"]) == sorted(["alice", "bob", "Partner@remote.test", "100"])

    r = site.ok("alias", "show", "SALES")
    assert r.lines[0].split() == ["alias:", "sales"]
    shown = [l.split()[-1] for l in r.lines[1:]]
    assert r.lines[1].startswith("members:")
    assert sorted(shown) == sorted(j["members"])

    lst = site.json("alias", "list")
    assert lst == [j]
    rows = site.ok("alias", "list").table()
    assert [row["ALIAS"] for row in rows] == ["sales"]
    assert sorted(rows[0]["MEMBERS"].split(", ")) == sorted(j["members"])

    site.ok("alias", "add-member", "sales", "admin", "other@remote.test")
    assert set(site.json("alias", "show", "sales")["members"]) == \
        {"alice", "bob", "Partner@remote.test", "100", "admin", "other@remote.test"}

    site.ok("alias", "del-member", "sales", "BOB", "100")
    assert set(site.json("alias", "show", "sales")["members"]) == \
        {"alice", "Partner@remote.test", "admin", "other@remote.test"}

    site.ok("alias", "del", "Sales")
    site.fail(4, "alias", "show", "sales")
    assert site.json("alias", "list") == []
    site.fail(4, "alias", "resolve", "sales")


def test_list_several(site):
    site.ok("alias", "add", "sales", "alice")
    site.ok("alias", "add", "support", "bob", "alice")
    site.ok("alias", "add", "4000", "sales")
    j = {a["name"]: sorted(a["members"]) for a in site.json("alias", "list")}
    assert j == {"sales": ["alice"], "support": ["alice", "bob"], "4000": ["sales"]}
    rows = {r["ALIAS"]: sorted(r["MEMBERS"].split(", ")) for r in
            site.ok("alias", "list").table()}
    assert rows == j


def test_add_member_twice_keeps_one(site):
    site.ok("alias", "add", "sales", "alice")
    r = site.ok("alias", "add-member", "sales", "alice")
    assert r.out == "alias sales unchanged: already a member\n", r
    r = site.ok("alias", "add-member", "sales", "ALICE")
    assert r.out == "alias sales unchanged: already a member\n", r
    assert site.json("alias", "show", "sales")["members"] == ["alice"]
    r = site.ok("alias", "add-member", "sales", "alice", "bob")
    assert r.out == "alias sales changed\n", r
    assert site.json("alias", "show", "sales")["members"] == ["alice", "bob"]


def test_a_change_past_the_limits_is_warned_about(site):
    """An alias that grows past 1000 addresses, or nests past 16 levels,
    cannot take mail (the MX answers 451): the change that does it says so."""
    many = [f"m{i}@far.example" for i in range(1000)]
    r = site.run("alias", "add", "huge", *many)
    assert r.rc == 0 and r.err == "", r
    r = site.run("alias", "add-member", "huge", "one.more@far.example")
    assert r.rc == 0 and r.out == "alias huge changed\n", r
    assert "alias huge cannot take mail as it is now" in r.err and "451" in r.err, r
    r = site.run("alias", "del-member", "huge", "one.more@far.example")
    assert r.rc == 0 and r.err == "", r
    # Built from the bottom: the 17th level is the one too deep.
    site.ok("alias", "add", "d17", "alice")
    for i in range(16, 0, -1):
        r = site.run("alias", "add", f"d{i}", f"d{i + 1}")
        assert r.rc == 0, r
        assert ("cannot take mail" in r.err) == (i == 1), (i, r)


def test_del_member_not_a_member(site):
    site.ok("alias", "add", "sales", "alice")
    r = site.run("alias", "del-member", "sales", "bob")
    assert r.rc in (1, 4), r
    assert r.out == ""
    assert r.err.startswith("umboxctl: ")
    assert site.json("alias", "show", "sales")["members"] == ["alice"]


def test_alias_name_may_be_all_digits(site):
    site.ok("alias", "add", "4000", "alice")
    assert locals_of(site, "4000") == ["alice"]


def test_invalid_member_rejected_whole_command(site):
    site.fail(2, "alias", "add", "sales", "alice", "x%y@remote.test")
    site.fail(4, "alias", "show", "sales")
    site.ok("alias", "add", "sales", "alice")
    site.fail(2, "alias", "add-member", "sales", "bob", '"q@x"@remote.test')
    assert site.json("alias", "show", "sales")["members"] == ["alice"]


# -- resolve: users and extensions ---------------------------------------------

def test_resolve_login(site):
    assert resolve(site, "alice") == ["local alice"]
    assert resolve(site, "ALICE") == ["local alice"]


def test_resolve_extension(site):
    assert resolve(site, "101") == ["local bob"]
    assert resolve(site, "101@example.test") == ["local bob"]


@pytest.mark.parametrize("addr", ["alice@example.test", "ALICE@EXAMPLE.TEST",
                                  "Alice@Example.Test", "alice@EXAMPLE.test"])
def test_resolve_login_at_local_domain_any_case(site, addr):
    assert resolve(site, addr) == ["local alice"]


def test_resolve_json_shape(site):
    site.ok("alias", "add", "mixed", "alice", "friend@remote.test")
    j = site.json("alias", "resolve", "mixed")
    assert {"type": "local", "login": "alice"} in [
        {k: v for k, v in t.items() if k in ("type", "login")} for t in j]
    rem = [t for t in j if t["type"] == "remote"]
    assert len(rem) == 1 and rem[0]["address"] == "friend@remote.test"
    assert len(j) == 2


def test_resolve_outside_address_is_remote(site):
    assert resolve(site, "someone@remote.test") == ["remote someone@remote.test via mx"]


def test_resolve_member_address_in_local_domain(site):
    site.ok("alias", "add", "team", "ALICE@Example.Test", "101@example.test")
    assert sorted(locals_of(site, "team")) == ["alice", "bob"]


# -- resolve: expansion --------------------------------------------------------

def test_nested_aliases(site):
    site.ok("user", "add", "carol")
    site.ok("alias", "add", "everyone", "sales", "support")
    site.ok("alias", "add", "sales", "alice", "team-b")
    site.ok("alias", "add", "team-b", "bob")
    site.ok("alias", "add", "support", "carol", "ext@remote.test")
    lines = resolve(site, "everyone@example.test")
    assert sorted(lines) == sorted(["local alice", "local bob", "local carol",
                                    "remote ext@remote.test via mx"])


def test_deduplication(site):
    site.ok("alias", "add", "sales", "alice", "bob", "100", "alice@example.test")
    site.ok("alias", "add", "all", "sales", "alice", "bob", "x@remote.test")
    site.ok("alias", "add-member", "sales", "x@remote.test")
    lines = resolve(site, "all")
    assert sorted(lines) == ["local alice", "local bob", "remote x@remote.test via mx"]


def test_loop_terminates_with_users_reached(site):
    site.ok("alias", "add", "a", "b", "alice")
    site.ok("alias", "add", "b", "a", "bob")
    assert sorted(locals_of(site, "a")) == ["alice", "bob"]
    assert sorted(locals_of(site, "b")) == ["alice", "bob"]


def test_self_loop_without_user(site):
    site.ok("alias", "add", "a", "a", "alice")
    assert locals_of(site, "a") == ["alice"]


def test_three_way_loop(site):
    site.ok("user", "add", "carol")
    site.ok("alias", "add", "x", "y", "alice")
    site.ok("alias", "add", "y", "z", "bob")
    site.ok("alias", "add", "z", "x", "carol")
    for name in ("x", "y", "z"):
        assert sorted(locals_of(site, name)) == ["alice", "bob", "carol"]


def test_loop_reaching_no_one_says_so(site):
    site.ok("alias", "add", "l1", "l2")
    site.ok("alias", "add", "l2", "l1")
    r = site.fail(4, "alias", "resolve", "l1")
    assert "loop" in r.err, r
    r = site.fail(4, "alias", "resolve", "nobody")
    assert "loop" not in r.err, r


def test_alias_named_like_user_takes_its_mail(site):
    site.ok("alias", "add", "bob", "alice")
    assert locals_of(site, "bob") == ["alice"]
    assert locals_of(site, "bob@example.test") == ["alice"]


def test_alias_listing_own_login_keeps_a_copy(site):
    site.ok("alias", "add", "bob", "bob", "alice")
    assert sorted(locals_of(site, "bob")) == ["alice", "bob"]
    assert sorted(locals_of(site, "BOB@Example.Test")) == ["alice", "bob"]


def test_alias_shadowing_user_reached_through_other_alias(site):
    site.ok("alias", "add", "bob", "alice")
    site.ok("alias", "add", "team", "bob")
    assert locals_of(site, "team") == ["alice"]


def test_diamond_through_alias_shadowing_user(site):
    site.ok("user", "add", "shared")
    site.ok("alias", "add", "shared", "alice")
    site.ok("alias", "add", "t1", "shared")
    site.ok("alias", "add", "t2", "shared")
    site.ok("alias", "add", "team", "t1", "t2")
    assert locals_of(site, "shared") == ["alice"]     # the alias takes the user's mail
    assert locals_of(site, "team") == ["alice"]


def test_diamond_without_shadowing(site):
    site.ok("alias", "add", "shared", "alice", "bob")
    site.ok("alias", "add", "t1", "shared")
    site.ok("alias", "add", "t2", "shared", "alice")
    site.ok("alias", "add", "team", "t1", "t2")
    assert sorted(locals_of(site, "team")) == ["alice", "bob"]


def test_dangling_member_warns_but_resolves(site):
    site.ok("alias", "add", "sales", "ghost", "alice")
    r = site.ok("alias", "resolve", "sales")
    assert r.lines == ["local alice"]
    assert "ghost" in r.err
    assert all(l.startswith("umboxctl: ") for l in r.err_lines), r


def test_alias_with_only_dangling_members_is_not_found(site):
    site.ok("alias", "add", "sales", "ghost")
    site.fail(4, "alias", "resolve", "sales")


def test_deep_chain_within_limit(site):
    prev = "alice"
    for i in range(10):
        site.ok("alias", "add", f"c{i}", prev)
        prev = f"c{i}"
    assert locals_of(site, "c9") == ["alice"]


def chain(umbox, n, target="alice"):
    """n aliases, l{n-1} -> ... -> l0 -> target; returns the outermost name."""
    prev = target
    for i in range(n):
        umbox.ok("alias", "add", f"l{i}", prev)
        prev = f"l{i}"
    return prev


def test_chain_of_16_resolves(site):
    assert locals_of(site, chain(site, 16)) == ["alice"]


def test_chain_of_17_fails(site):
    r = site.run("alias", "resolve", chain(site, 17))
    assert r.rc == 1, r
    assert r.out == ""


def test_chain_deeper_than_16_fails_cleanly(site):
    prev = "alice"
    for i in range(20):
        site.ok("alias", "add", f"c{i:02d}", prev)
        prev = f"c{i:02d}"
    r = site.run("alias", "resolve", "c19")
    assert r.rc not in (0, 2, 4), r          # a failure, not "usage" or "unknown"
    assert 0 < r.rc < 128, r                 # and not a signal
    assert r.out == ""
    assert r.err_lines and r.err_lines[-1].startswith("umboxctl: "), r
    # the JSON form fails the same way
    r = site.run("--json", "alias", "resolve", "c19@example.test")
    assert r.rc not in (0, 2, 4) and 0 < r.rc < 128, r
    assert r.out == ""


# -- resolve: precedence ---------------------------------------------------------

def test_alias_before_login(site):
    site.ok("alias", "add", "alice", "bob")
    assert locals_of(site, "alice") == ["bob"]


def test_alias_before_extension(site):
    site.ok("alias", "add", "100", "bob")
    assert locals_of(site, "100") == ["bob"]
    assert locals_of(site, "100@example.test") == ["bob"]


def test_login_and_extension_each_resolve(site):
    # A login is never all digits and an extension always is, so a login
    # and an extension can never be spelled the same.
    site.fail(2, "user", "add", "101")
    assert locals_of(site, "bob") == ["bob"]
    assert locals_of(site, "101") == ["bob"]


def test_alias_member_extension(site):
    site.ok("alias", "add", "front-desk", "100", "101")
    assert sorted(locals_of(site, "front-desk")) == ["alice", "bob"]


# -- resolve: postmaster ---------------------------------------------------------

@pytest.mark.parametrize("addr", ["postmaster", "Postmaster", "postmaster@example.test",
                                  "POSTMASTER@EXAMPLE.TEST"])
def test_postmaster_is_configured_login(site, addr):
    assert locals_of(site, addr) == ["admin"]


@pytest.mark.parametrize("addr", ["postmaster", "postmaster@Example.Test"])
def test_postmaster_alias_wins(site, addr):
    site.ok("alias", "add", "postmaster", "alice", "bob")
    assert sorted(locals_of(site, addr)) == ["alice", "bob"]


def test_postmaster_user_wins(site):
    site.ok("user", "add", "postmaster")
    assert locals_of(site, "postmaster@example.test") == ["postmaster"]


def test_postmaster_follows_config(site):
    site.postmaster = "bob"
    site.write_config()
    assert locals_of(site, "postmaster") == ["bob"]


def test_postmaster_login_missing_fails_cleanly(site):
    site.ok("user", "del", "admin")
    r = site.run("alias", "resolve", "postmaster")
    assert r.rc != 0 and r.rc < 128, r
    assert r.out == ""
    assert r.err_lines and r.err_lines[-1].startswith("umboxctl: "), r


def test_postmaster_elsewhere_is_remote(site):
    assert resolve(site, "postmaster@remote.test") == ["remote postmaster@remote.test via mx"]


# -- resolve: relay tricks --------------------------------------------------------

@pytest.mark.parametrize("addr", [
    "a%b@example.test",
    "alice%remote.test@example.test",
    "someone%remote.test@EXAMPLE.TEST",
    '"a@b"@example.test',
    '"alice@remote.test"@example.test',
    "remote.test!alice@example.test",
])
def test_relay_tricks_never_remote(site, addr):
    site.ok("alias", "add", "a", "alice")
    r = site.run("alias", "resolve", addr)
    assert "remote" not in r.out, r
    assert r.rc == 4, r
    assert r.out == ""
    assert r.err.startswith("umboxctl: ")


@pytest.mark.parametrize("addr", ["@remote.test:alice@example.test", "alice@remote.test@example.test"])
def test_source_routes_and_junk_never_remote(site, addr):
    r = site.run("alias", "resolve", addr)
    assert r.rc in (2, 4), r
    assert r.out == ""
