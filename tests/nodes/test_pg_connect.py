"""How a node reaches its PostgreSQL server ([store] dsn, SPEC §2): host
names are looked up through the [dns] servers, each address in turn; a
server that accepts and never answers is given up after a bounded wait
(connect_timeout, 10 s when the dsn sets none) for the next host.  And a
connection lost with a COMMIT on its way: the message is acknowledged
only if it was stored, and stored once."""
import smtplib
import socket
import subprocess
import time

import pytest

import backend
from pg_proxy import Proxy
from pop3d_util import DOMAIN, PASSWORD, binary, message


def dns_section(port):
    return {"dns": {"servers": f"127.0.0.1:{port}"}}


def test_host_name_is_looked_up_through_the_dns_servers(site, dnsserver_port):
    # pgdb.test is known only to the test's DNS server, first as ::1
    # (nothing listens there), then as 127.0.0.1.
    proxy = Proxy()
    try:
        dsn = f"host=pgdb.test port={proxy.port} user=postgres dbname={site.db}"
        node = site.node("a", sections=dns_section(dnsserver_port), dsn=dsn)
        node.deliver("alice", [message("by name", "reached through pgdb.test\r\n")])
        pop = node.poplib("alice")
        try:
            count, _ = pop.stat()
            assert count == 1
            assert b"reached through pgdb.test" in b"\r\n".join(pop.retr(1)[1])
        finally:
            pop.quit()
        assert proxy.accepted > 0
        status = node.ctl("status").stdout.decode()
        assert f"on pgdb.test:{proxy.port}" in status, status
    finally:
        proxy.close()


def test_host_names_from_the_service_file_and_environment_too(site, dnsserver_port, tmp_path,
                                                              monkeypatch):
    # libpq would look these names up itself, with the system resolver,
    # which knows nothing of pgdb.test.
    proxy = Proxy()
    try:
        services = tmp_path / "pg_service.conf"
        services.write_text("# the site's database\n[other]\nhost=nosuch.test\n"
                            f"[umbox]\nhost=pgdb.test\nport={proxy.port}\nuser=postgres\n"
                            f"dbname={site.db}\n")
        monkeypatch.setenv("PGSERVICEFILE", str(services))
        node = site.node("a", sections=dns_section(dnsserver_port), dsn="service=umbox")
        node.deliver("alice", [message("by service", "reached through the service file\r\n")])
        assert f"on pgdb.test:{proxy.port}" in node.ctl("status").stdout.decode()
        reached = proxy.accepted
        assert reached > 0

        # The dsn's own settings come first: here the service's port is not used.
        dsn = "service=umbox port=1"
        r = site.node("b", sections=dns_section(dnsserver_port), dsn=dsn,
                      start=False).ctl("status", check=False)
        assert r.returncode != 0 and "pgdb.test" in r.stderr.decode(), r.stderr

        # No service: PGHOST and PGPORT, as libpq reads them.
        monkeypatch.delenv("PGSERVICEFILE")
        monkeypatch.setenv("PGHOST", "pgdb.test")
        monkeypatch.setenv("PGPORT", str(proxy.port))
        node = site.node("c", sections=dns_section(dnsserver_port),
                         dsn=f"user=postgres dbname={site.db}", start=False)
        status = node.ctl("status").stdout.decode()
        assert f"on pgdb.test:{proxy.port}" in status, status
        assert proxy.accepted > reached
    finally:
        proxy.close()


def test_unknown_host_name_is_a_clear_error(site, dnsserver_port):
    dsn = f"host=nosuch.test port=5432 user=postgres dbname={site.db}"
    node = site.node("a", sections=dns_section(dnsserver_port), dsn=dsn, start=False)
    r = node.ctl("status", check=False)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "nosuch.test" in err and "not found" in err, err


def test_silent_server_is_given_up_for_the_next_host(site, dnsserver_port):
    silent, live = Proxy(silent=True), Proxy()
    try:
        dsn = (f"host=127.0.0.1,127.0.0.1 port={silent.port},{live.port}"
               f" user=postgres dbname={site.db}")
        node = site.node("a", sections=dns_section(dnsserver_port), dsn=dsn, start=False)
        began = time.monotonic()
        r = node.ctl("status", check=False, timeout=60)
        took = time.monotonic() - began
        assert r.returncode == 0, r.stderr
        assert silent.accepted >= 1 and live.accepted >= 1
        assert f"on 127.0.0.1:{live.port}" in r.stdout.decode()
        assert took < 30, f"{took:.1f} s to give up on a silent server"

        # Alone, the silent server is an error after the same wait, not a hang.
        dsn = f"host=127.0.0.1 port={silent.port} user=postgres dbname={site.db}"
        node = site.node("b", sections=dns_section(dnsserver_port), dsn=dsn, start=False)
        r = node.ctl("status", check=False, timeout=60)
        assert r.returncode != 0
        assert "no answer within 10 s" in r.stderr.decode(), r.stderr
    finally:
        silent.close()
        live.close()


def send(node, text):
    with smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=60) as s:
        s.ehlo()
        assert s.mail(f"bob@{DOMAIN}")[0] == 250
        assert s.rcpt(f"alice@{DOMAIN}")[0] == 250
        return s.data(f"Subject: {text}\r\n\r\n{text}\r\n".encode())


def stored(node, text):
    return sum(text.encode() in body for body in node.messages("alice").values())


@pytest.mark.parametrize("when", ["before", "after"])
def test_connection_lost_with_the_commit(site, when):
    """Cut "before": the server never saw COMMIT, so nothing may be stored
    and the client is told to try again.  Cut "after": the server had the
    whole batch, COMMIT and Sync included, and committed it, but no answer
    came back; the node learns that it committed (the transaction's mark
    is taken) and, from the store, that the delivery was stored (its
    queue ID): the client gets its 250, and the message is there once
    (it used to get a 451, and its retry stored it twice)."""
    proxy = Proxy()
    try:
        dsn = (f"host=127.0.0.1 port={proxy.port} user=postgres dbname={site.db}"
               " sslmode=disable gssencmode=disable")
        node = site.node("a", dsn=dsn)
        assert send(node, "warm up")[0] == 250
        proxy.drop_commit = when
        code, text = send(node, f"cut {when}")
        assert proxy.fired.is_set(), "no COMMIT went through the proxy"
        if when == "before":
            assert 400 <= code < 500, (code, text)
        else:
            assert code == 250, (code, text, node.smtpd.log()[-1500:])
        assert stored(node, f"cut {when}") == (0 if when == "before" else 1)
        # The node goes on, on a new connection.
        assert send(node, "after the cut")[0] == 250
        assert stored(node, "after the cut") == 1
    finally:
        proxy.close()


def test_session_ended_by_the_server_closes_after_its_lock_is_given_back(site):
    """When the server ends a session that holds the mailbox's lock (here
    after 20 bad commands), the connection closes only once the lock's
    release has committed: a client that logs in again as soon as it sees
    the close, on any loop, finds the mailbox free.  The proxy holds each
    COMMIT for a while, as a slow server would."""
    proxy = Proxy()
    try:
        dsn = (f"host=127.0.0.1 port={proxy.port} user=postgres dbname={site.db}"
               " sslmode=disable gssencmode=disable")
        node = site.node("a", dsn=dsn)
        node.deliver("alice", [message("kept", "still here\r\n")])
        with socket.create_connection(("127.0.0.1", node.pop3_port), timeout=30) as c:
            f = c.makefile("rb")
            assert f.readline().startswith(b"+OK")
            for line in (b"USER alice", f"PASS {PASSWORD}".encode()):
                c.sendall(line + b"\r\n")
                assert f.readline().startswith(b"+OK"), line
            for _ in range(19):
                c.sendall(b"NOPE\r\n")
                assert f.readline().startswith(b"-ERR")
            proxy.commit_delay = 1.0
            c.sendall(b"NOPE\r\n")
            last = f.read()             # up to the close
            assert last.startswith(b"-ERR"), last
        assert site.query("SELECT count(*) FROM pop3_locks") == [(0,)]
        proxy.commit_delay = 0.0
        pop = node.poplib("alice")
        try:
            assert pop.stat()[0] == 1
        finally:
            pop.quit()
    finally:
        proxy.close()


def test_server_idle_session_timeout_does_not_close_the_node_connections(site):
    """A managed server may close sessions idle for a while
    (idle_session_timeout, here 1 s on the database).  The node's
    connections are its own for its life, the listening one idle by design:
    they stay open, so nothing is lost and made again every second."""
    backend.execute(site.db, f"ALTER DATABASE {site.db} SET idle_session_timeout = '1s'")
    node = site.node("a")
    time.sleep(4)
    for name in ("smtpd", "pop3d"):
        log = getattr(node, name).log()
        assert "was lost" not in log and "failed tries" not in log, (name, log)
    with smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30) as s:
        s.sendmail(f"bob@{DOMAIN}", [f"alice@{DOMAIN}"], message("idle").encode())
    p = node.poplib()
    assert p.stat()[0] == 1
    p.quit()


def test_read_only_server_is_refused_with_what_to_do(site):
    """A dsn that leads to a server taking no writes (a standby; here
    default_transaction_read_only on the database): neither the daemons nor
    umboxctl can work, and each says why and what to put in the dsn."""
    backend.execute(site.db, f"ALTER DATABASE {site.db} SET default_transaction_read_only = on")
    node = site.node("a", start=False)
    for prog in ("umbox-smtpd", "umbox-pop3d"):
        p = subprocess.run([str(binary(prog)), "-f", "-c", str(node.config)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, (prog, p)
        assert "takes no writes" in p.stderr and "target_session_attrs=read-write" in p.stderr, \
            (prog, p.stderr)
    r = node.ctl("user", "add", "zed", check=False)
    assert r.returncode != 0 and b"takes no writes" in r.stderr, r
