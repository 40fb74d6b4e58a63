"""What a running daemon holds, read from /proc (Linux): its sessions."""
import os
import time


def connected_sockets(pid, ports):
    """How many connected TCP sockets process pid holds on these local
    ports (its sessions)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            f = open(table)
        except OSError:
            continue
        with f:
            next(f)
            for line in f:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port in ports and fields[3] != "0A" and fields[9] in inodes:
                    n += 1
    return n


def wait_sessions(pid, ports, n, timeout=5):
    """Wait until the daemon holds exactly n sessions on ports.  A session
    the client ended (a start-up probe's, one a test hung up) still counts
    until the daemon has read the end: its socket shows that."""
    deadline = time.monotonic() + timeout
    while (held := connected_sockets(pid, ports)) != n:
        assert time.monotonic() < deadline, f"the daemon holds {held} sessions, not {n}"
        time.sleep(0.01)
    time.sleep(0.05)        # the counts go with the socket, on the session's loop
