"""Fixtures for the umboxctl tests (the generic ones are in tests/conftest.py)."""
import pytest

DOMAIN = "example.test"


@pytest.fixture
def site(umbox):
    """An installation with one local domain and three users:
    admin (the configured postmaster), alice (extension 100), bob (101).

    The domain is added with --force so that the setup does not depend on
    DNS once the MX guard checks it (SPEC §7); test_umboxctl_domain.py
    covers a plain `domain add`.
    """
    umbox.ok("domain", "add", DOMAIN, "--force")
    umbox.ok("user", "add", "admin")
    umbox.ok("user", "add", "alice", "--extension", "100", "--name", "Alice Example")
    umbox.ok("user", "add", "bob", "--extension", "101")
    return umbox
