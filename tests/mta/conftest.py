"""Fixtures for the outbound SMTP client's tests (helpers in mta_util)."""
import subprocess

import pytest


@pytest.fixture(scope="session")
def cert(tmp_path_factory):
    """A self-signed certificate for sink.test (and 127.0.0.1)."""
    d = tmp_path_factory.mktemp("sinktls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=sink.test",
         "-addext", "subjectAltName=DNS:sink.test", "-keyout", str(d / "key.pem"),
         "-out", str(d / "cert.pem"), "-days", "2"],
        check=True, capture_output=True, timeout=60)
    return d
