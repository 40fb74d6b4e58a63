"""Message waiting from the daemons (SPEC §8): [voicemail] mwi_command runs,
without a shell, with the mailbox, new and old counts, when POP3 QUIT
deletes or first retrieves a voicemail and when umbox-smtpd delivers a
voicemail forwarded from another appliance; never when only email moves."""
import io
import os
import pathlib
import time
import wave

import pytest

from pop3d_util import DOMAIN


def wav_bytes(seconds=1, rate=8000):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x01" * int(seconds * rate))
    return buf.getvalue()


@pytest.fixture
def mwi(tmp_path, pop3_factory):
    log = tmp_path / "mwi.log"
    script = tmp_path / "mwi.sh"
    script.write_text('#!/bin/sh\necho "$@" >> "%s"\n' % log)
    script.chmod(0o755)
    env = pop3_factory(sections={"voicemail": {"mwi_command": str(script)}})
    env.mwi_log = log
    return env


def calls(env):
    try:
        return env.mwi_log.read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_calls(env, n, timeout=10):
    deadline = time.monotonic() + timeout
    while len(calls(env)) < n:
        assert time.monotonic() < deadline, (calls(env), env.smtpd.log()[-2000:])
        time.sleep(0.05)
    return calls(env)


def deposit(env, tmp_path, login="alice", name="vm.wav"):
    f = tmp_path / name
    f.write_bytes(wav_bytes())
    env.ctl("voicemail", "deposit", login, "--audio", str(f), "--caller", "5550100")


def test_pop3_retrieve_then_delete_of_a_voicemail(mwi, tmp_path):
    deposit(mwi, tmp_path)
    assert wait_calls(mwi, 1) == ["alice 1 0"]
    p = mwi.poplib()
    p.retr(1)
    p.quit()
    assert wait_calls(mwi, 2)[1] == "alice 0 1"
    p = mwi.poplib()
    p.dele(1)
    p.quit()
    assert wait_calls(mwi, 3)[2] == "alice 0 0"


def test_email_alone_does_not_notify(mwi, tmp_path):
    mwi.deliver("alice", "Subject: hello\r\n\r\njust mail\r\n")
    p = mwi.poplib()
    p.retr(1)
    p.dele(1)
    p.quit()
    time.sleep(0.5)
    assert calls(mwi) == []


def test_a_dropped_pop3_session_changes_nothing(mwi, tmp_path):
    deposit(mwi, tmp_path)
    wait_calls(mwi, 1)
    p = mwi.poplib()
    p.dele(1)
    p.sock.close()          # no QUIT: nothing is deleted
    time.sleep(0.5)
    assert calls(mwi) == ["alice 1 0"]


def appliance_voicemail(env, tmp_path, filler=0):
    """What another appliance sends: a voicemail message as umboxctl builds
    it (deposited for bob, taken back out), after filler bytes of other
    header fields, as relays add them."""
    deposit(env, tmp_path, login="bob")
    wait_calls(env, 1)
    raw = env.export("bob", env.uids("bob")[0])
    body = raw.split(b"\r\n\r\n", 1)
    headers = [b"X-Relay-Note-%d: %s" % (i, b"x" * 60) for i in range(filler // 80)]
    headers += [h for h in body[0].split(b"\r\n")
                if not h.lower().startswith((b"return-path:", b"delivered-to:"))]
    return b"\r\n".join(headers) + b"\r\n\r\n" + body[1]


@pytest.mark.parametrize("filler", [0, 64 * 1024], ids=["plain", "after-64k-of-header"])
def test_forwarded_voicemail_over_smtp_counts(mwi, tmp_path, filler):
    mwi.deliver("alice", appliance_voicemail(mwi, tmp_path, filler))
    assert wait_calls(mwi, 2)[1] == "alice 1 0"
    [e] = mwi.mailbox("alice")
    assert e["kind"] == "voicemail"
    out = mwi.ctl("voicemail", "play", "alice", e["uid"]).stdout
    assert out == wav_bytes()


def test_voicemail_over_smtp_from_an_untrusted_client_is_email(tmp_path, pop3_factory):
    """Only a client that may relay (authenticated or in trusted_networks)
    passes a voicemail on: from anyone else X-Umbox-Kind is not believed,
    the message is email and no lamp is lit."""
    log = tmp_path / "mwi.log"
    script = tmp_path / "mwi.sh"
    script.write_text('#!/bin/sh\necho "$@" >> "%s"\n' % log)
    script.chmod(0o755)
    env = pop3_factory(smtpd_extra={"trusted_networks": ""},
                       sections={"voicemail": {"mwi_command": str(script)}})
    env.mwi_log = log
    env.deliver("alice", appliance_voicemail(env, tmp_path))
    [e] = env.mailbox("alice")
    assert e["kind"] == "email"
    time.sleep(0.5)
    assert calls(env) == ["bob 1 0"]


def test_voicemail_held_for_a_full_mailbox_counts_when_delivered(mwi, tmp_path):
    """The copy that waited in the queue for room changes the counts when
    umbox-smtpd's queue delivers it, and notifies then."""
    mwi.ctl("user", "set", "alice", "--quota", "1K")
    # An alias named like the user: her voicemail goes to her and to bob.
    mwi.ctl("alias", "add", "alice", "alice", "bob")
    deposit(mwi, tmp_path, login="alice")
    assert wait_calls(mwi, 1) == ["bob 1 0"]
    assert mwi.mailbox("alice") == []
    mwi.ctl("user", "set", "alice", "--quota", "0")
    # The runner looks for room every second, or is woken (PostgreSQL).
    assert wait_calls(mwi, 2)[1] == "alice 1 0"
    [e] = mwi.mailbox("alice")
    assert e["kind"] == "voicemail"


def test_failing_command_is_logged_and_harmless(tmp_path, pop3_factory):
    env = pop3_factory(sections={"voicemail": {"mwi_command": "/nonexistent/mwi"}})
    f = tmp_path / "vm.wav"
    f.write_bytes(wav_bytes())
    env.ctl("voicemail", "deposit", "alice", "--audio", str(f))
    p = env.poplib()
    p.retr(1)
    p.quit()
    deadline = time.monotonic() + 5
    while "/nonexistent/mwi" not in env.pop3d.log():
        assert time.monotonic() < deadline, env.pop3d.log()[-2000:]
        time.sleep(0.05)
    # and the daemon still serves
    p = env.poplib()
    assert p.stat()[0] == 1
    p.quit()


def test_daemon_stops_while_the_command_still_runs(tmp_path, pop3_factory):
    """A SIGTERM does not wait for a slow mwi_command: the daemon stops at
    once and cleanly (under the sanitizers: nothing of the child's watch
    leaks), and the command still runs to its end."""
    log = tmp_path / "slow.log"
    script = tmp_path / "slow.sh"
    script.write_text('#!/bin/sh\necho "$@" >> "%s.start"\nsleep 3\necho "$@" >> "%s"\n'
                      % (log, log))
    script.chmod(0o755)
    env = pop3_factory(sections={"voicemail": {"mwi_command": str(script)}})
    deposit(env, tmp_path)
    started = pathlib.Path(f"{log}.start")
    deadline = time.monotonic() + 10
    while not started.exists():                  # umboxctl's call, at the deposit
        assert time.monotonic() < deadline, env.logs()[-3000:]
        time.sleep(0.05)
    p = env.poplib()
    p.dele(1)
    p.quit()
    while len(started.read_text().splitlines()) < 2:     # umbox-pop3d's, at QUIT
        assert time.monotonic() < deadline, env.logs()[-3000:]
        time.sleep(0.05)
    t0 = time.monotonic()
    assert env.stop() == []
    assert time.monotonic() - t0 < 2.5
    assert "left to finish" in env.pop3d.log()
    deadline = time.monotonic() + 10
    while "alice 0 0" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, env.logs()[-3000:]
        time.sleep(0.1)
