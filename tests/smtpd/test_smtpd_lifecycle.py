"""The daemon's life: a kill -9 loses nothing acknowledged, SIGTERM exits 0
with sessions open, -n checks the config (SPEC §2, §3, §4)."""
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest

import backend
from disk_util import grow, small_disk
from smtpd_util import DOMAIN, Raw, binary, free_port, headers


def send_until_stopped(d, sig, after=1.5, workers=8):
    """8 threads on persistent sessions send numbered messages to alice;
    after `after` seconds the daemon gets sig.  Returns (acked seqs, rc)."""
    acked = []             # sequence numbers that got 250 after DATA
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def sender(worker):
        n = 0
        try:
            s = smtplib.SMTP("127.0.0.1", d.mx, timeout=10)
            s.ehlo("sender%d.outside.test" % worker)
        except (OSError, smtplib.SMTPException) as e:
            errors.append(e)
            return
        try:
            while not stop.is_set():
                seq = f"{worker}-{n}"
                n += 1
                msg = (f"From: w{worker}@outside.test\r\nSubject: seq {seq}\r\n"
                       f"X-Seq: {seq}\r\n\r\nmessage {seq}\r\n")
                try:
                    s.mail(f"w{worker}@outside.test")
                    s.rcpt(f"alice@{DOMAIN}")
                    code, _ = s.data(msg)
                except (OSError, smtplib.SMTPException):
                    return          # the server went away under us
                if code == 250:
                    with lock:
                        acked.append(seq)
        finally:
            try:
                s.close()
            except OSError:
                pass

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(after)
    t0 = time.monotonic()
    rc = d.stop(sig, timeout=10)
    elapsed = time.monotonic() - t0
    stop.set()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    with lock:
        acked_now = list(acked)
    assert len(acked_now) > 0, f"no message was acknowledged in {after} s"
    return acked_now, rc, elapsed


def check_stored(d, acked, max_unacked):
    """After a restart: every acked message is in alice's mailbox exactly
    once, nothing is half there, and at most max_unacked are stored without
    their 250 having reached the client."""
    entries = d.mailbox("alice")
    seqs = []
    for e in entries:
        m = re.fullmatch(r"seq (\d+-\d+)", e["subject"])
        assert m, e
        seqs.append(m.group(1))
    assert len(seqs) == len(set(seqs)), "a message was stored twice"
    missing = set(acked) - set(seqs)
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:5]}"
    assert len(seqs) - len(acked) <= max_unacked
    # Exporting every message would be slow: check the last one of each
    # sender (the ones in flight at the signal) and a sample of the rest.
    last = {}
    for e, seq in zip(entries, seqs):
        w, n = map(int, seq.split("-"))
        if n >= last.get(w, (-1, None))[0]:
            last[w] = (n, e)
    sample = [e for _, e in last.values()] + entries[:: max(1, len(entries) // 10)]
    for e in sample:
        msg = d.export("alice", e["uid"])
        [seq] = headers(msg, "X-Seq")
        assert e["subject"] == f"seq {seq}"
        assert msg.endswith(f"message {seq}\r\n".encode())     # never half a message


def test_sigkill_loses_nothing_acknowledged(smtpd):
    d = smtpd
    acked, rc, _ = send_until_stopped(d, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    d.start()
    # At most the ones in flight at the kill were stored without their 250.
    check_stored(d, acked, max_unacked=8)
    # And the restarted daemon works.
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=10) as s:
        s.sendmail("x@outside.test", [f"bob@{DOMAIN}"], "Subject: after restart\r\n\r\nx\r\n")
    assert [e["subject"] for e in d.mailbox("bob")] == ["after restart"]


def test_sigterm_under_load_exits_0_and_keeps_what_it_acked(smtpd):
    d = smtpd
    acked, rc, elapsed = send_until_stopped(d, signal.SIGTERM, after=1.0)
    assert rc == 0, d.log()
    assert elapsed < 5
    d.start()
    # In-flight commits finish and are answered before the daemon exits.
    check_stored(d, acked, max_unacked=0)


def test_sigterm_with_sessions_open_exits_0(smtpd):
    d = smtpd
    idle = Raw(d.mx)
    mid = Raw(d.submission)
    data = Raw(d.mx)
    try:
        assert idle.cmd("EHLO a.outside.test").code == 250
        assert mid.cmd("EHLO b.outside.test").code == 250
        assert data.cmd("EHLO c.outside.test").code == 250
        assert data.cmd("MAIL FROM:<c@outside.test>").code == 250
        assert data.cmd(f"RCPT TO:<alice@{DOMAIN}>").code == 250
        assert data.cmd("DATA").code == 354
        data.send(b"Subject: half")           # in the middle of a message
        t0 = time.monotonic()
        rc = d.stop(signal.SIGTERM, timeout=10)
        assert rc == 0, d.log()
        assert time.monotonic() - t0 < 5
    finally:
        for c in (idle, mid, data):
            c.close()
    # No half message was stored, and the listening ports are closed.
    d.start()
    assert d.mailbox("alice") == []


@pytest.mark.skipif(backend.PG, reason="the messages are stored on the database server")
def test_disk_full_refuses_for_now_and_keeps_what_it_acked(smtpd_factory, tmp_path):
    """The data directory on a 2 MiB file system: messages are taken until
    it is full, then each is refused with 452 4.3.1 (a large one too, which
    fails in its spool file rather than in the store) and the session goes on;
    every message acknowledged is stored whole and once, the store checks
    clean, and once there is room again the next message is taken."""
    d = smtpd_factory(start=False)
    with small_disk(d.data_dir, "2m", tmp_path / "template-data"):
        try:
            d.start()
            body = "".join(f"line {i:05d} of a message that fills the disk\r\n"
                           for i in range(800))
            acked, refused = [], 0
            with smtplib.SMTP("127.0.0.1", d.mx, timeout=30) as s:
                for n in range(200):
                    try:
                        s.sendmail("filler@outside.test", [f"alice@{DOMAIN}"],
                                   f"Subject: seq {n}\r\n\r\n{body}")
                        acked.append(n)
                    except smtplib.SMTPDataError as e:
                        assert e.smtp_code == 452 and e.smtp_error.startswith(b"4.3.1"), e
                        refused += 1
                        if refused == 5:
                            break
                assert refused == 5 and len(acked) > 5, (acked, refused)
                # A message too large for memory goes to a spool file first:
                # that write fails too, and is said the same way.
                with pytest.raises(smtplib.SMTPDataError) as e:
                    s.sendmail("filler@outside.test", [f"alice@{DOMAIN}"],
                               "Subject: large\r\n\r\n" + body * 40)
                assert e.value.smtp_code == 452 and e.value.smtp_error.startswith(b"4.3.1"), \
                    e.value
                s.noop()    # the session goes on
                grow(d.data_dir, "64m")
                s.sendmail("filler@outside.test", [f"alice@{DOMAIN}"],
                           f"Subject: seq after\r\n\r\n{body}")
            # Refused by the store's reserve, or by SQLite's commit.
            assert re.search(r"store: (commit: database or disk is full|\d+ KiB free for"
                             r" the store; new mail needs)", d.log()), d.log()[-3000:]
            subjects = [e["subject"] for e in d.mailbox("alice")]
            assert subjects == [f"seq {n}" for n in acked] + ["seq after"], subjects
            for m in d.messages("alice"):
                assert m.endswith(body.encode()), m[-200:]
            d.ctl("store", "check")
        finally:
            d.stop()


def test_sighup_reloads_the_certificate(smtpd, tmp_path):
    d = smtpd

    def peer_cn(port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="mail.example.test") as tls:
                der = tls.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der)
        p = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem,
                           capture_output=True, text=True, check=True)
        return p.stdout.strip()

    assert "mail.example.test" in peer_cn(d.smtps)
    new = tmp_path / "new"
    new.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=renewed.example.test", "-keyout", str(new / "key.pem"),
                    "-out", str(new / "cert.pem"), "-days", "2"],
                   check=True, capture_output=True, timeout=60)
    # Replace the files the config names (as certbot/snakeoil renewals do).
    (d.root / "key.pem").write_bytes((new / "key.pem").read_bytes())
    (d.root / "cert.pem").write_bytes((new / "cert.pem").read_bytes())
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "renewed.example.test" not in peer_cn(d.smtps) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "renewed.example.test" in peer_cn(d.smtps)
    assert d.running
    # STARTTLS on 587 uses it too.
    with smtplib.SMTP("127.0.0.1", d.submission, timeout=10) as s:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        pem = ssl.DER_cert_to_PEM_cert(s.sock.getpeercert(binary_form=True))
    assert pem == ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(
        (new / "cert.pem").read_text()))


def assert_names_file_line_key(err, conf, lineno, key):
    """Some stderr line names the file, the line (":N" or "line N") and the key."""
    for line in err.splitlines():
        if str(conf) in line and key in line and re.search(rf"(:|line ){lineno}\b", line):
            return
    raise AssertionError(f"no line naming {conf}, line {lineno} and {key}:\n{err}")


def run_check(conf):
    return subprocess.run([str(binary("umbox-smtpd")), "-n", "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)


def test_config_check_good(smtpd_factory):
    d = smtpd_factory(start=False, max_recipients=5, trusted_networks="10.0.0.0/8")
    p = run_check(d.config)
    assert p.returncode == 0, p
    # -n does not start a server.
    try:
        Raw(d.submission, timeout=1).close()
        listening = True
    except OSError:
        listening = False
    assert not listening


def test_config_check_bad_key_names_file_line_key(smtpd_factory):
    d = smtpd_factory(start=False)
    lines = d.config.read_text().splitlines()
    i = lines.index("[smtpd]")
    lines.insert(i + 1, "max_recipient = 5")          # misspelt key
    d.config.write_text("\n".join(lines) + "\n")
    p = run_check(d.config)
    assert p.returncode == 1, p
    assert_names_file_line_key(p.stderr, d.config, i + 2, "max_recipient")


def test_config_check_bad_value_names_file_line_key(smtpd_factory):
    d = smtpd_factory(start=False, max_message_size="lots")
    p = run_check(d.config)
    assert p.returncode == 1, p
    lineno = d.config.read_text().splitlines().index("max_message_size = lots") + 1
    assert_names_file_line_key(p.stderr, d.config, lineno, "max_message_size")


@pytest.mark.skipif(os.geteuid() != 0, reason="the user is switched to only as root")
def test_config_check_finds_a_user_that_does_not_exist(smtpd_factory):
    """-n said "valid" for [general] user = a name with no account, and the
    start then failed: the check now fails the same way."""
    d = smtpd_factory(start=False)
    d.config.write_text(d.config.read_text().replace("user =\n", "user = nosuchuserhere\n", 1))
    p = run_check(d.config)
    assert p.returncode == 1, p
    assert "[general] user nosuchuserhere does not exist" in p.stderr, p


def test_config_check_and_start_do_not_hang_on_a_fifo_for_a_certificate(smtpd_factory,
                                                                         tmp_path):
    """A FIFO named as the certificate (or key) is refused at once: reading
    it would wait for a writer forever."""
    os.mkfifo(tmp_path / "fifo.pem")
    d = smtpd_factory(start=False)
    d.config.write_text(re.sub(r"(?m)^key = .*$", f"key = {tmp_path}/fifo.pem",
                               d.config.read_text()))
    p = run_check(d.config)
    assert p.returncode == 1 and "fifo.pem: not a regular file" in p.stderr, p


@pytest.mark.parametrize("smtps", [True, False], ids=["smtps", "starttls-only"])
def test_config_check_loads_the_certificate(smtpd_factory, tmp_path, smtps):
    """-n said "valid" for a certificate that does not load, and the start
    then failed when an implicit-TLS port needs it: -n now fails the same
    way, and without such a port it warns (STARTTLS would be off)."""
    d = smtpd_factory(start=False)
    text = re.sub(r"(?m)^certificate = .*$", f"certificate = {tmp_path}/nonexistent.pem",
                  d.config.read_text())
    if not smtps:
        text = re.sub(r"(?m)^smtps = .*$", "smtps =", text)
    d.config.write_text(text)
    p = run_check(d.config)
    assert "nonexistent.pem" in p.stderr, p
    if smtps:
        assert p.returncode == 1 and "needed for implicit TLS" in p.stderr, p
        start = subprocess.run([str(binary("umbox-smtpd")), "-f", "-c", str(d.config)],
                               capture_output=True, text=True, timeout=30)
        assert start.returncode == 1, start
    else:
        assert p.returncode == 0 and "warning:" in p.stderr and "is valid" in p.stdout, p


@pytest.mark.parametrize("what,why", [("nonexistent", "No such file"),
                                      ("a-directory", "not a file")])
def test_config_check_warns_of_an_mwi_command_that_cannot_run(smtpd_factory, tmp_path,
                                                              what, why):
    (tmp_path / "a-directory").mkdir()
    d = smtpd_factory(start=False, **{"voicemail.mwi_command": str(tmp_path / what)})
    p = run_check(d.config)
    assert p.returncode == 0, p
    assert "warning: [voicemail] mwi_command" in p.stderr and why in p.stderr, p


def test_more_loops_than_descriptors_allow_is_a_clear_start_error(smtpd_factory):
    """threads = 256 under a limit of 64 descriptors: exit 1 with a message
    naming threads and the limit, not an abort halfway through."""
    d = smtpd_factory(start=False, **{"general.threads": "256"})
    p = subprocess.run(["prlimit", "--nofile=64:64", "--", str(binary("umbox-smtpd")), "-f",
                        "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p
    assert "256 event loops ([general] threads" in p.stderr and "limit is 64" in p.stderr, \
        p.stderr


def test_config_check_lists_100_errors_however_long(smtpd_factory):
    """umbox.conf(5): at most 100 errors are listed, then a count of the
    others, even when each line is long (an unknown key lists the known
    ones)."""
    d = smtpd_factory(start=False)
    lines = d.config.read_text().splitlines()
    i = lines.index("[smtpd]")
    lines[i + 1:i + 1] = [f"colour{n} = x" for n in range(150)]
    d.config.write_text("\n".join(lines) + "\n")
    p = run_check(d.config)
    assert p.returncode == 1, p
    listed = [l for l in p.stderr.splitlines() if "unknown key" in l]
    assert len(listed) == 100, p.stderr[-500:]
    assert "(50 more errors not shown)" in p.stderr, p.stderr[-500:]


def test_a_second_smtpd_on_the_same_store_is_refused(smtpd_factory, tmp_path):
    """A second umbox-smtpd on the store (other ports) would take the first
    one's queue claims for its own earlier process's: it does not start."""
    if backend.PG:
        pytest.skip("on PostgreSQL the node's name is held (test above)")
    d = smtpd_factory()
    conf = tmp_path / "second.conf"
    conf.write_text(re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{free_port()}",
                           d.config.read_text()))
    p = subprocess.run([str(binary("umbox-smtpd")), "-f", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p
    assert f"another umbox-smtpd (pid {d.proc.pid})" in p.stderr, p.stderr
    assert d.running


def test_postgresql_node_name_held_elsewhere_is_refused_until_stale(smtpd_factory):
    """[store] node_id names one node: while a daemon on another machine
    beats under the same name, this one refuses to start and says who holds
    it; once that heartbeat is more than 30 s old the name is free, and the
    daemon takes it and serves."""
    db = backend.new_database()
    d = smtpd_factory(start=False, **{"store.backend": "postgresql",
                                      "store.dsn": backend.dsn(db), "store.node_id": "n1"})
    d.ctl("domain", "add", DOMAIN, "--force")       # the schema, and a domain
    d.ctl("user", "add", "admin")
    backend.execute(db, "INSERT INTO nodes (id, instance, started, heartbeat)"
                        " VALUES ('n1/smtpd', 'elsewhere 42', umbox_now(), umbox_now())")
    p = subprocess.run([str(binary("umbox-smtpd")), "-f", "-c", str(d.config)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p
    assert "n1/smtpd is in use by elsewhere 42" in p.stderr and "node_id" in p.stderr, p

    backend.execute(db, "UPDATE nodes SET heartbeat = heartbeat - 31")
    d.start()
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=10) as s:
        s.sendmail("someone@outside.test", [f"postmaster@{DOMAIN}"],
                   "Subject: on PostgreSQL\r\n\r\nhello\r\n")
    assert len(d.mailbox("admin")) == 1
    holder = backend.query_db(db, "SELECT instance FROM nodes WHERE id = 'n1/smtpd'")
    assert holder and holder[0][0] != "elsewhere 42", holder


def test_postgresql_connection_limit_is_named_with_what_to_do(smtpd_factory):
    """A daemon holds two connections per event loop (a reader and a
    writer) and one that listens: 9 with 4 loops.  Under a
    CONNECTION LIMIT too low for its loops it does not start, and says what
    to turn; with one short it serves, says once (not every second) that it
    cannot hear of directory changes and looks for them meanwhile, sees a
    new user, and says so when a connection is free again."""
    db = backend.new_database()
    role = f"{db}_r"                     # not a superuser: those have no limit
    backend.execute(db, f"CREATE ROLE {role} LOGIN; ALTER DATABASE {db} OWNER TO {role}")
    d = smtpd_factory(start=False, **{"store.backend": "postgresql",
                                      "store.dsn": f"{backend.dsn(db)} user={role}",
                                      "general.threads": "4"})
    d.ctl("domain", "add", DOMAIN, "--force")
    d.ctl("user", "add", "admin")
    backend.execute(db, f"ALTER ROLE {role} CONNECTION LIMIT 3")
    p = subprocess.run([str(binary("umbox-smtpd")), "-f", "-c", str(d.config)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p
    assert "too many connections" in p.stderr, p.stderr
    assert "two connections per event loop and one more" in p.stderr, p.stderr
    assert "CONNECTION LIMIT" in p.stderr and "[general] threads" in p.stderr, p.stderr

    backend.execute(db, f"ALTER ROLE {role} CONNECTION LIMIT 8")   # no room to listen
    d.start()
    time.sleep(3)
    assert d.log().count("hear of directory changes") == 1, d.log()
    # A user added as the superuser, which no role limit holds back: raising
    # the limit for umboxctl would let the listening connection take the slot.
    admin = d.root / "admin.conf"
    admin.write_text(d.config.read_text().replace(f" user={role}", ""))
    p = subprocess.run([str(binary("umboxctl")), "-c", str(admin), "user", "add", "carol"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p
    deadline = time.monotonic() + 10
    while True:
        with smtplib.SMTP("127.0.0.1", d.mx, timeout=10) as s:
            s.ehlo()
            s.mail("someone@outside.test")
            code, _ = s.rcpt(f"carol@{DOMAIN}")
            if code == 250 or time.monotonic() > deadline:
                break
        time.sleep(0.2)
    assert code == 250, "a user added meanwhile is never seen"
    assert d.log().count("hear of directory changes") == 1, d.log()

    backend.execute(db, f"ALTER ROLE {role} CONNECTION LIMIT 9")
    deadline = time.monotonic() + 10
    while "hearing of directory changes again" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "hearing of directory changes again" in d.log(), d.log()
    backend.execute(db, f"ALTER ROLE {role} CONNECTION LIMIT 10")   # umboxctl's own
    with smtplib.SMTP("127.0.0.1", d.mx, timeout=10) as s:
        s.sendmail("someone@outside.test", [f"carol@{DOMAIN}"],
                   "Subject: nine connections\r\n\r\nhello\r\n")
    assert len(d.mailbox("carol")) == 1
