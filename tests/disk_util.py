"""A data directory on a small file system of its own, to fill it up."""
import contextlib
import errno
import os
import shutil
import subprocess

import pytest


@contextlib.contextmanager
def small_disk(data_dir, size, scratch):
    """Mount a tmpfs of `size` (as mount -o size= takes it) over data_dir,
    keeping what data_dir held (copied through scratch, a directory that
    does not exist yet); unmounted at the end.  Skips the test where a
    tmpfs cannot be mounted (not root, or a container without the right)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    shutil.copytree(data_dir, scratch)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs",
                        str(data_dir)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        for f in os.listdir(scratch):
            shutil.copy2(os.path.join(scratch, f), os.path.join(data_dir, f))
        yield
    finally:
        subprocess.run(["umount", str(data_dir)], check=True)


def grow(data_dir, size):
    """Give the file system mounted by small_disk more room."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(data_dir)], check=True)


def fill(data_dir):
    """Fill the file system to its last block with a file of its own;
    returns that file's path (unlink it to make room again)."""
    path = os.path.join(data_dir, "filler")
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return path
