"""umboxctl mail list | show | export | del on empty mailboxes (SPEC §9).

Depositing messages needs umbox-smtpd (or voicemail deposit), which later
tests cover; here: the mailbox argument and the empty listing.
"""
import pytest

HEADER = ["UID", "KIND", "STATUS", "SIZE", "ARRIVED", "FROM", "SUBJECT"]


@pytest.mark.parametrize("mailbox", ["alice", "ALICE", "100", "alice@example.test",
                                     "Alice@EXAMPLE.Test", "100@example.test"])
def test_empty_mailbox_list(site, mailbox):
    r = site.ok("mail", "list", mailbox)
    assert len(r.lines) == 1, r
    assert r.lines[0].split() == HEADER
    assert r.table() == []
    r = site.ok("--json", "mail", "list", mailbox)
    assert r.json() == []


@pytest.mark.parametrize("mailbox", ["nobody", "999", "nobody@example.test",
                                     "alice@remote.test", "100@remote.test"])
def test_unknown_mailbox(site, mailbox):
    site.fail(4, "mail", "list", mailbox)
    site.fail(4, "--json", "mail", "list", mailbox)


def test_mailbox_of_deleted_user(site):
    site.ok("user", "del", "alice")
    site.fail(4, "mail", "list", "alice")
    site.fail(4, "mail", "list", "100")


def test_extension_follows_user(site):
    site.ok("user", "set", "alice", "--extension", "200")
    site.ok("mail", "list", "200")
    site.fail(4, "mail", "list", "100")


@pytest.mark.parametrize("verb", ["show", "export", "del"])
def test_unknown_uid(site, verb):
    site.fail(4, "mail", verb, "alice", "1")
    site.fail(4, "mail", verb, "100", "no-such-uid")
    site.fail(4, "mail", verb, "nobody", "1")
