"""The MX guard of `umboxctl domain add | check` (SPEC §7, §9).

DNS is the session's tests/dns/dnsserver.py (tests/conftest.py writes its
[dns] servers into every installation's config); the guard's cases live
under guard.test there, with servfail.test, nomx.test and nullmx.test.
This server is mail.example.test (not in the zone, so known by name only),
127.0.0.1 and ::1 (loopback always counts), and whatever else the machine's
interfaces have.
"""
import re
import socket
import time

import pytest

ERROR_PREFIX = "umboxctl: "

# Addresses the zone gives to hosts that must NOT be this server.
FOREIGN_ADDRS = ("198.51.100.11", "2001:db8::11", "198.51.100.51", "198.51.100.50", "198.51.100.60",
                 "2001:db8::77", "198.51.100.70", "198.51.100.80", "203.0.113.5")

FOREIGN_DETAIL = ("MX a.foreign.guard.test (2001:db8::11, 198.51.100.11), "
                  "b.foreign.guard.test (no address)")


def is_local_address(addr):
    """Can we bind to it, i.e. is it one of this machine's addresses?"""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module", autouse=True)
def foreign_addresses_are_foreign():
    """The tests' premise: the zone's 'other servers' are not this machine."""
    mine = [a for a in FOREIGN_ADDRS if is_local_address(a)]
    if mine:
        pytest.fail(f"this machine has the test zone's foreign addresses {mine}: "
                    "the MX guard rightly calls them this server's")


def guard_of(umbox, name):
    [d] = [d for d in umbox.json("domain", "list") if d["name"] == name]
    return d


def refusal(name, detail):
    return (f"{ERROR_PREFIX}refusing to claim {name}: its mail goes to another server "
            f"({detail}). If this server claimed {name}, mail for {name}'s users, "
            "including mail that aliases forward to them, would be kept here instead "
            "of reaching them. Use --force to claim it anyway.")


# -- claimed ---------------------------------------------------------------------

CLAIMED = [
    ("byname.guard.test", "MX mail.example.test is this server's host name"),
    ("several.guard.test", "MX mx.several.guard.test has this server's address 127.0.0.1"),
    ("ownaddr.guard.test", "no MX; ownaddr.guard.test's own address 127.0.0.1 is this server"),
    ("loop6.guard.test", "MX mx.loop6.guard.test has this server's address ::1"),
    # the first MX host's lookup fails, but the second one is this server
    ("tempok.guard.test", "MX mx.tempok.guard.test has this server's address 127.0.0.1"),
    # the 25th MX host, as the 21st of its addresses
    ("deep.guard.test", "MX mx.deep.guard.test has this server's address 127.0.0.1"),
]


@pytest.mark.parametrize("name, detail", CLAIMED)
def test_add_claimed(umbox, name, detail):
    before = int(time.time())
    r = umbox.ok("domain", "add", name)
    after = int(time.time())
    assert r.lines == [f"domain {name} added: MX guard claimed: {detail}"], r
    assert r.err == "", r
    d = guard_of(umbox, name)
    assert (d["guard"], d["guard_detail"], d["forced"]) == ("claimed", detail, False)
    assert before <= d["checked_at"] <= after
    assert before <= d["created_at"] <= after


@pytest.mark.parametrize("name, detail", CLAIMED)
def test_check_claimed(umbox, name, detail):
    r = umbox.run("domain", "check", name)
    assert r.rc == 0, r
    assert r.lines == [f"{name}: claimed: {detail}"], r
    assert r.err == "", r


def test_host_name_match_is_what_claims(umbox):
    """byname.guard.test's MX is mail.example.test, which has no address:
    under another host name this server no longer recognises it."""
    umbox.hostname = "other-host.example.test"
    umbox.write_config()
    r = umbox.fail(3, "domain", "add", "byname.guard.test")
    assert r.err_lines == [refusal("byname.guard.test", "MX mail.example.test (no address)")], r
    assert umbox.json("domain", "list") == []


def test_host_name_matches_case_insensitively(umbox):
    umbox.hostname = "MAIL.Example.TEST"
    umbox.write_config()
    r = umbox.ok("domain", "add", "byname.guard.test")
    assert "MX guard claimed" in r.out and "mail.example.test" in r.out.lower(), r


def test_host_names_own_address_counts(umbox):
    """hostaddr.guard.test's MX host has 198.51.100.70, which is not on any
    interface; it is this server when the configured host name resolves to it."""
    r = umbox.run("domain", "check", "hostaddr.guard.test")
    assert r.rc == 3, r
    assert r.lines == ["hostaddr.guard.test: foreign: MX mx.hostaddr.guard.test (198.51.100.70)"]

    umbox.hostname = "host.guard.test"          # A 198.51.100.70 in the zone
    umbox.write_config()
    r = umbox.ok("domain", "add", "hostaddr.guard.test")
    assert r.lines == ["domain hostaddr.guard.test added: MX guard claimed: "
                       "MX mx.hostaddr.guard.test has this server's address 198.51.100.70"], r
    assert guard_of(umbox, "hostaddr.guard.test")["guard"] == "claimed"


@pytest.mark.parametrize("public, verdict", [
    ("", "foreign"),
    ("203.0.113.0/28", "claimed"),
    ("203.0.113.5", "claimed"),
    ("2001:db8:1::/48, 203.0.113.4/30", "claimed"),
    ("203.0.113.16/28", "foreign"),
    ("203.0.113.6, 198.51.100.0/24", "foreign"),
])
def test_public_addresses(umbox, public, verdict):
    umbox.write_config(f"public_addresses = {public}" if public else "")
    r = umbox.run("domain", "add", "public.guard.test")
    if verdict == "claimed":
        assert r.rc == 0, r
        assert r.lines == ["domain public.guard.test added: MX guard claimed: "
                           "MX mx.public.guard.test has this server's address 203.0.113.5"], r
        assert guard_of(umbox, "public.guard.test")["guard"] == "claimed"
    else:
        assert r.rc == 3, r
        assert r.err_lines == [refusal("public.guard.test", "MX mx.public.guard.test (203.0.113.5)")]
        assert umbox.json("domain", "list") == []


# -- internal -------------------------------------------------------------------

INTERNAL = [
    ("nomx.test", "nomx.test has no MX and no address record"),
    ("example.test", "example.test does not exist in DNS (NXDOMAIN)"),
    ("no-such-name.guard.test", "no-such-name.guard.test does not exist in DNS (NXDOMAIN)"),
]


@pytest.mark.parametrize("name, detail", INTERNAL)
def test_add_internal_warns(umbox, name, detail):
    r = umbox.ok("domain", "add", name)
    assert r.lines == [f"domain {name} added: MX guard internal: {detail}"], r
    assert r.err_lines == [f"{ERROR_PREFIX}warning: {name} is an internal name ({detail}): "
                           "outside senders cannot reach it"], r
    d = guard_of(umbox, name)
    assert (d["guard"], d["guard_detail"], d["forced"]) == ("internal", detail, False)


@pytest.mark.parametrize("name, detail", INTERNAL)
def test_check_internal(umbox, name, detail):
    r = umbox.run("domain", "check", name)
    assert r.rc == 0, r
    assert r.lines == [f"{name}: internal: {detail}"], r


# -- foreign --------------------------------------------------------------------

FOREIGN = [
    ("foreign.guard.test", FOREIGN_DETAIL),
    ("elsewhere.guard.test", "no MX; mail goes to elsewhere.guard.test's own address: "
                             "elsewhere.guard.test (198.51.100.60)"),
    ("nullmx.test", "null MX: nullmx.test accepts no mail (RFC 7505)"),
    ("dotmx.guard.test", "unusable MX: dotmx.guard.test's MX records name no valid host"),
    ("v6.guard.test", "MX mx.v6.guard.test (2001:db8::77)"),
]


@pytest.mark.parametrize("name, detail", FOREIGN)
def test_add_foreign_is_refused(umbox, name, detail):
    umbox.ok("domain", "add", "nomx.test")
    before = umbox.snapshot()
    r = umbox.fail(3, "domain", "add", name)
    if name in ("nullmx.test", "dotmx.guard.test"):
        assert r.err_lines == [
            f"{ERROR_PREFIX}refusing to claim {name}: its DNS sends its mail nowhere "
            f"({detail}), so senders never bring its mail here. Point its MX at this "
            "server first, or use --force to claim it anyway."], r
    else:
        assert r.err_lines == [refusal(name, detail)], r
    assert umbox.snapshot() == before
    assert [d["name"] for d in umbox.json("domain", "list")] == ["nomx.test"]


def test_foreign_refusal_names_hosts_and_addresses(umbox):
    """The message an administrator reads, phrase by phrase."""
    r = umbox.fail(3, "domain", "add", "Foreign.Guard.Test")
    [line] = r.err_lines
    for phrase in ("refusing to claim foreign.guard.test", "another server",
                   "a.foreign.guard.test", "198.51.100.11", "2001:db8::11",
                   "b.foreign.guard.test (no address)", "aliases forward",
                   "would be kept here instead of reaching them", "--force"):
        assert phrase in line, (phrase, line)


@pytest.mark.parametrize("name, detail", FOREIGN)
def test_check_foreign(umbox, name, detail):
    r = umbox.run("domain", "check", name)
    assert r.rc == 3, r
    assert r.lines == [f"{name}: foreign: {detail}"], r
    assert not umbox.store_exists() or umbox.json("domain", "list") == []


# -- dns-error ------------------------------------------------------------------

def test_servfail_is_refused(umbox):
    r = umbox.fail(1, "domain", "add", "servfail.test")
    [line] = r.err_lines
    assert line.startswith(f"{ERROR_PREFIX}cannot check servfail.test's MX: "), r
    assert "SERVFAIL" in line, r
    assert line.endswith("Try again when DNS answers, or use --force to claim it unchecked."), r
    assert umbox.json("domain", "list") == []

    r = umbox.run("domain", "check", "servfail.test")
    assert r.rc == 1, r
    assert re.fullmatch(r"servfail\.test: dns-error: .*SERVFAIL.*", r.out.strip()), r


def test_mx_host_lookup_failure_is_dns_error(umbox):
    """tempfail.guard.test: MX 10 servfail.test (its address lookup fails),
    MX 20 elsewhere: the failed one might have been this server."""
    r = umbox.fail(1, "domain", "add", "tempfail.guard.test")
    assert r.err_lines[0].startswith(f"{ERROR_PREFIX}cannot check tempfail.guard.test's MX: ")
    r = umbox.run("domain", "check", "tempfail.guard.test")
    assert r.rc == 1, r
    assert r.out.startswith("tempfail.guard.test: dns-error: "), r
    assert umbox.json("domain", "list") == []


def test_unreachable_dns_server_fails_fast(umbox):
    umbox.write_config("[dns]\nservers = 127.0.0.1:9")
    t0 = time.monotonic()
    r = umbox.fail(1, "domain", "add", "example.test")
    assert time.monotonic() - t0 < 5, r
    assert r.err_lines[0].startswith(f"{ERROR_PREFIX}cannot check example.test's MX: "), r
    assert "--force" in r.err, r
    assert umbox.json("domain", "list") == []

    r = umbox.ok("domain", "add", "example.test", "--force")
    assert r.out.startswith("domain example.test added with --force over the MX guard's "
                            "verdict dns-error: "), r
    d = guard_of(umbox, "example.test")
    assert (d["guard"], d["forced"]) == ("dns-error", True)
    assert d["guard_detail"] and d["guard_detail"] in r.out


# -- --force --------------------------------------------------------------------

def test_force_over_foreign_is_recorded(umbox):
    t0 = int(time.time())
    r = umbox.ok("domain", "add", "foreign.guard.test", "--force")
    assert r.lines == ["domain foreign.guard.test added with --force over the MX guard's "
                       f"verdict foreign: {FOREIGN_DETAIL}"], r
    d = guard_of(umbox, "foreign.guard.test")
    assert (d["guard"], d["guard_detail"], d["forced"]) == ("foreign", FOREIGN_DETAIL, True)
    assert d["checked_at"] >= t0

    [row] = umbox.ok("domain", "list").table()
    assert row == {"DOMAIN": "foreign.guard.test", "GUARD": "foreign", "FORCED": "yes",
                   "CHECKED": time.strftime("%Y-%m-%d %H:%M", time.localtime(d["checked_at"])),
                   "DETAIL": FOREIGN_DETAIL}


def test_force_over_dns_error_is_recorded(umbox):
    r = umbox.ok("domain", "add", "--force", "servfail.test")
    assert r.out.startswith("domain servfail.test added with --force over the MX guard's "
                            "verdict dns-error: "), r
    d = guard_of(umbox, "servfail.test")
    assert (d["guard"], d["forced"]) == ("dns-error", True)
    assert "SERVFAIL" in d["guard_detail"]


@pytest.mark.parametrize("name, verdict", [("byname.guard.test", "claimed"),
                                           ("nomx.test", "internal"),
                                           ("not-there.test", "internal")])
def test_force_over_nothing_is_not_forced(umbox, name, verdict):
    r = umbox.ok("domain", "add", name, "--force")
    assert r.lines[0].startswith(f"domain {name} added: MX guard {verdict}: "), r
    assert "with --force" not in r.out
    d = guard_of(umbox, name)
    assert (d["guard"], d["forced"]) == (verdict, False)
    assert umbox.ok("domain", "list").table()[0]["FORCED"] == "no"


# -- an existing domain ---------------------------------------------------------

def test_existing_domain_fails_before_asking_dns(umbox):
    umbox.ok("domain", "add", "byname.guard.test")
    before = umbox.snapshot()
    # Now DNS is a socket that never answers: a lookup would show up there
    # (and take seconds to time out).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        hole.setblocking(False)
        umbox.write_config(f"[dns]\nservers = 127.0.0.1:{hole.getsockname()[1]}")
        for args in (("BYNAME.guard.test",), ("byname.guard.test", "--force")):
            t0 = time.monotonic()
            r = umbox.fail(1, "domain", "add", *args)
            assert time.monotonic() - t0 < 1.5, r
            assert "already exists" in r.err, r
        with pytest.raises(BlockingIOError):
            hole.recvfrom(4096)
    assert umbox.snapshot() == before


# -- domain check ---------------------------------------------------------------

def test_check_changes_nothing(umbox):
    # Added while DNS was unreachable: recorded as forced over dns-error.
    umbox.write_config("[dns]\nservers = 127.0.0.1:9")
    umbox.ok("domain", "add", "byname.guard.test", "--force")
    umbox.write_config()
    listed = umbox.json("domain", "list")
    before = umbox.snapshot()
    time.sleep(1.05)        # a new checked_at would differ
    r = umbox.ok("domain", "check", "byname.guard.test")
    assert r.lines == ["byname.guard.test: claimed: "
                       "MX mail.example.test is this server's host name"], r
    r = umbox.run("domain", "check")
    assert r.rc == 0 and r.lines == ["byname.guard.test: claimed: "
                                     "MX mail.example.test is this server's host name"], r
    assert umbox.json("domain", "check")[0]["guard"] == "claimed"
    assert umbox.json("domain", "list") == listed
    assert listed[0]["guard"] == "dns-error" and listed[0]["forced"] is True
    assert umbox.snapshot() == before


def test_check_of_a_name_not_added_creates_nothing(umbox):
    assert umbox.run("domain", "check", "foreign.guard.test").rc == 3
    assert umbox.run("domain", "check", "byname.guard.test").rc == 0
    assert not umbox.store_exists()
    umbox.ok("domain", "add", "nomx.test")
    before = umbox.snapshot()
    assert umbox.run("domain", "check", "foreign.guard.test").rc == 3
    assert umbox.run("domain", "check", "byname.guard.test").rc == 0
    assert umbox.snapshot() == before


def test_check_all_with_mixed_verdicts(umbox):
    for name in ("byname.guard.test", "nomx.test", "foreign.guard.test", "servfail.test"):
        umbox.ok("domain", "add", name, "--force")
    r = umbox.run("domain", "check")
    assert r.rc == 3, r
    got = {}
    for line in r.lines:
        name, verdict, detail = line.split(": ", 2)
        got[name] = (verdict, detail)
    assert got.keys() == {"byname.guard.test", "nomx.test", "foreign.guard.test",
                          "servfail.test"}, r
    assert got["byname.guard.test"] == ("claimed", "MX mail.example.test is this server's host name")
    assert got["nomx.test"] == ("internal", "nomx.test has no MX and no address record")
    assert got["foreign.guard.test"] == ("foreign", FOREIGN_DETAIL)
    assert got["servfail.test"][0] == "dns-error" and "SERVFAIL" in got["servfail.test"][1]

    r = umbox.run("--json", "domain", "check")
    assert r.rc == 3, r
    j = {d["name"]: d for d in r.json()}
    assert {n: d["guard"] for n, d in j.items()} == {
        "byname.guard.test": "claimed", "nomx.test": "internal",
        "foreign.guard.test": "foreign", "servfail.test": "dns-error"}
    assert j["foreign.guard.test"]["guard_detail"] == FOREIGN_DETAIL
    assert all(set(d) == {"name", "guard", "guard_detail"} for d in j.values())

    # The worst verdict decides: foreign (3) over dns-error (1) over fine (0).
    umbox.ok("domain", "del", "foreign.guard.test")
    assert umbox.run("domain", "check").rc == 1
    umbox.ok("domain", "del", "servfail.test")
    r = umbox.run("domain", "check")
    assert r.rc == 0 and len(r.lines) == 2, r


def test_check_all_with_no_domains(umbox):
    r = umbox.ok("domain", "check")
    assert r.lines == ["no domains to check"]
    assert umbox.json("domain", "check") == []


def test_check_json_one(umbox):
    r = umbox.run("--json", "domain", "check", "v6.guard.test")
    assert r.rc == 3, r
    assert r.json() == [{"name": "v6.guard.test", "guard": "foreign",
                         "guard_detail": "MX mx.v6.guard.test (2001:db8::77)"}]


def test_check_unreachable_dns(umbox):
    umbox.write_config("[dns]\nservers = 127.0.0.1:9")
    t0 = time.monotonic()
    r = umbox.run("domain", "check", "byname.guard.test")
    assert time.monotonic() - t0 < 5
    assert r.rc == 1, r
    assert r.out.startswith("byname.guard.test: dns-error: "), r


@pytest.mark.parametrize("args", [("check", "a.test", "b.test"), ("check", "bad name"),
                                  ("check", "example..test")])
def test_check_usage(umbox, args):
    umbox.fail(2, "domain", *args)


# -- list and status ------------------------------------------------------------

def test_list_columns(umbox):
    umbox.ok("domain", "add", "foreign.guard.test", "--force")
    umbox.ok("domain", "add", "byname.guard.test")
    umbox.ok("domain", "add", "nomx.test")
    r = umbox.ok("domain", "list")
    assert r.lines[0].split() == ["DOMAIN", "GUARD", "FORCED", "CHECKED", "DETAIL"]
    rows = {row["DOMAIN"]: row for row in r.table()}
    j = {d["name"]: d for d in umbox.json("domain", "list")}
    assert rows.keys() == j.keys() == {"foreign.guard.test", "byname.guard.test", "nomx.test"}
    for name, row in rows.items():
        d = j[name]
        assert row["GUARD"] == d["guard"]
        assert row["FORCED"] == ("yes" if d["forced"] else "no")
        assert row["CHECKED"] == time.strftime("%Y-%m-%d %H:%M", time.localtime(d["checked_at"]))
        assert row["DETAIL"] == d["guard_detail"]
        assert set(d) == {"name", "guard", "guard_detail", "forced", "checked_at",
                          "created_at"}
    assert rows["byname.guard.test"]["GUARD"] == "claimed"
    assert rows["nomx.test"]["GUARD"] == "internal"
    assert rows["foreign.guard.test"]["FORCED"] == "yes"


def test_status_shows_verdicts_and_warns_of_foreign(umbox):
    umbox.ok("domain", "add", "foreign.guard.test", "--force")
    umbox.ok("domain", "add", "byname.guard.test")
    umbox.ok("domain", "add", "nomx.test")
    j = {d["name"]: d for d in umbox.json("domain", "list")}
    when = {n: time.strftime("%Y-%m-%d %H:%M", time.localtime(d["checked_at"]))
            for n, d in j.items()}

    r = umbox.ok("status")
    lines = r.lines
    assert (f"domain foreign.guard.test: MX guard foreign (forced), checked "
            f"{when['foreign.guard.test']}: {FOREIGN_DETAIL}") in lines, r
    assert (f"domain byname.guard.test: MX guard claimed, checked "
            f"{when['byname.guard.test']}: MX mail.example.test is this server's host name") \
        in lines, r
    assert (f"domain nomx.test: MX guard internal, checked {when['nomx.test']}: "
            "nomx.test has no MX and no address record") in lines, r

    warnings = [i for i, l in enumerate(lines)
                if l.startswith("WARNING:") and "mail goes to another server" in l]
    assert len(warnings) == 1, r
    block = "\n".join(lines[warnings[0]:])
    assert lines[warnings[0]].startswith(
        f"WARNING: foreign.guard.test's mail goes to another server ({FOREIGN_DETAIL})"), r
    assert "keeps it here" in block and "alias members at foreign.guard.test" in block, r
    assert "umboxctl domain del foreign.guard.test" in block, r
    assert "byname.guard.test" not in block and "nomx.test" not in block, r

    s = umbox.json("status")
    g = {d["name"]: d for d in s["domain_guard"]}
    assert g.keys() == j.keys()
    for name, d in g.items():
        assert set(d) == {"name", "guard", "guard_detail", "forced", "checked_at", "foreign"}
        assert (d["guard"], d["guard_detail"], d["forced"], d["checked_at"]) == \
            (j[name]["guard"], j[name]["guard_detail"], j[name]["forced"], j[name]["checked_at"])
        assert d["foreign"] is (name == "foreign.guard.test")


def test_status_without_foreign_has_no_warning(umbox):
    umbox.ok("domain", "add", "byname.guard.test")
    umbox.ok("domain", "add", "servfail.test", "--force")
    r = umbox.ok("status")
    assert "mail goes to another server" not in r.out, r
    assert re.search(r"^domain servfail\.test: MX guard dns-error \(forced\), checked "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d: .*SERVFAIL", r.out, re.M), r
    assert all(d["foreign"] is False for d in umbox.json("status")["domain_guard"])


class UdpOnlyZone:
    """many.udp.test has 40 MX records (too large for UDP: truncated, and
    TCP to this server is refused); ours.udp.test points at 127.0.0.1."""

    def resolve(self, request, handler):
        from dnslib import A, MX, QTYPE, RCODE, RR
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = request.q.qtype
        if name == "many.udp.test." and qtype == QTYPE.MX:
            for i in range(40):
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(f"mx{i:02d}.far-away-host.udp.test.", i)))
        elif name == "ours.udp.test." and qtype == QTYPE.MX:
            reply.add_answer(RR(name, QTYPE.MX, rdata=MX("mx.ours.udp.test.", 10)))
        elif name == "mx.ours.udp.test." and qtype == QTYPE.A:
            reply.add_answer(RR(name, QTYPE.A, rdata=A("127.0.0.1")))
        elif name.endswith("far-away-host.udp.test.") and qtype == QTYPE.A:
            reply.add_answer(RR(name, QTYPE.A, rdata=A("198.51.100.90")))
        elif qtype not in (QTYPE.A, QTYPE.AAAA, QTYPE.MX):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def test_a_lookup_that_needs_tcp_fails_only_its_own_domain(umbox):
    """A server that answers over UDP only: the domain whose answer needs
    TCP cannot be checked, and the others checked with it still get their
    own verdict (c-ares fails every query in flight to a server whose TCP
    connection fails)."""
    from dnslib.server import DNSServer
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    udp = DNSServer(UdpOnlyZone(), port=port, address="127.0.0.1")
    udp.start_thread()
    try:
        umbox.write_config(f"[dns]\nservers = 127.0.0.1:{port}\n")
        umbox.ok("domain", "add", "ours.udp.test")
        umbox.run("domain", "add", "many.udp.test", "--force")
        for _ in range(3):
            r = umbox.run("domain", "check")
            verdicts = dict(re.findall(r"^(\S+): (\S+):", r.out, re.M))
            assert verdicts == {"ours.udp.test": "claimed", "many.udp.test": "dns-error"}, r
    finally:
        udp.stop()


def test_null_mx_is_said_as_such_in_status(umbox):
    umbox.ok("domain", "add", "nullmx.test", "--force")
    r = umbox.ok("status")
    warnings = [l for l in r.lines if l.startswith("WARNING:") and "SRS" not in l]
    assert warnings == ["WARNING: nullmx.test's DNS sends its mail nowhere "
                        "(null MX: nullmx.test accepts no mail (RFC 7505))."], r
    assert "umboxctl domain del nullmx.test" in r.out, r


def test_null_mx_does_not_need_this_servers_own_name(umbox):
    """A null MX names no host, so a host name that cannot be looked up
    (servfail.test) changes nothing: foreign, not dns-error."""
    umbox.hostname = "servfail.test"
    umbox.write_config()
    r = umbox.run("domain", "check", "nullmx.test")
    assert r.rc == 3 and r.lines == [
        "nullmx.test: foreign: null MX: nullmx.test accepts no mail (RFC 7505)"], r
