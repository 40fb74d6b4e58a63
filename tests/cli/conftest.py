"""Fixtures for the umboxctl tests (the generic ones are in tests/conftest.py)."""
import pytest

DOMAIN = "example.test"


@pytest.fixture(scope="session")
def site_template(umbox_template_factory):
    """Built once: one local domain and three users, admin (the configured
    postmaster), alice (extension 100, name "Alice Example"), bob (101).

    The domain is added with --force, as a site whose DNS is not ready
    would; with the tests' DNS server it does not exist, so the MX guard
    finds it internal and nothing is forced (test_umboxctl_guard.py covers
    the guard).
    """
    t = umbox_template_factory("site-template")
    t.ok("domain", "add", DOMAIN, "--force")
    t.ok("user", "add", "admin")
    t.ok("user", "add", "alice", "--extension", "100", "--name", "Alice Example")
    t.ok("user", "add", "bob", "--extension", "101")
    return t


@pytest.fixture
def site(umbox, site_template):
    """The test's own installation (own temp dir, own config, own store),
    starting from a copy of site_template's store."""
    umbox.clone_data_from(site_template)
    return umbox
