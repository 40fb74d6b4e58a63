"""The Debian package, end to end: tests/pkg/run (also "make deb-check")
builds it, checks it with lintian, installs it into a fresh Debian root made
with debootstrap, boots that root with systemd-nspawn so that the units
run under systemd, delivers and fetches a message, upgrades the package
over itself and purges it.

It needs root (debootstrap, chroot, systemd-nspawn) and Debian's package
archive, and takes about a minute; it is skipped when not root or when
UMBOX_PKG_TEST=0.
"""
import os
import pathlib
import subprocess

import pytest

RUN = pathlib.Path(__file__).resolve().parent / "run"


def test_debian_package():
    if os.environ.get("UMBOX_PKG_TEST", "1") == "0":
        pytest.skip("UMBOX_PKG_TEST=0")
    if os.geteuid() != 0:
        pytest.skip("needs root: debootstrap, chroot, network namespaces")
    r = subprocess.run([str(RUN)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=1800)
    failures = [line for line in r.stdout.splitlines()
                if line.startswith(("not ok", "#"))]
    assert r.returncode == 0, "\n".join(failures) or r.stdout[-4000:]
