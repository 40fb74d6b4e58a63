"""Voicemail and fax over POP3 (SPEC §5, §8): deposited with umboxctl into
the store the running umbox-pop3d serves, they are ordinary MIME messages
to a POP client (audio/wav, image/tiff); RETR counts as heard, a DELE
committed by QUIT deletes the voicemail everywhere, `mail del` takes it out
of the next POP3 session, and fetchmail delivers a playable attachment."""
import email
import email.policy
import json
import mailbox
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

from pop3d_util import PASSWORD, joined, message

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import media  # noqa: E402

CALLER = "2125550147"
CALLER_NAME = "Carl Caller"


def deposit(env, mailbox_, path, caller=CALLER, name=CALLER_NAME):
    p = env.ctl("voicemail", "deposit", mailbox_, "--audio", path,
                "--caller", caller, "--caller-name", name)
    out = p.stdout.decode()
    assert re.match(r"^voicemail deposited: [^,\s]+, \d+ s, 1 delivered, 0 queued\n?$", out), out
    return out


def fax(env, mailbox_, path, caller=CALLER):
    p = env.ctl("fax", "deposit", mailbox_, "--tiff", path, "--caller", caller)
    assert p.stdout.decode().startswith("fax deposited: "), p.stdout
    return p


def vm_list(env, login="alice"):
    return json.loads(env.ctl("--json", "voicemail", "list", login).stdout)


def mwi(env, login="alice"):
    out = env.ctl("mwi", login).stdout.decode().strip()
    m = re.fullmatch(r"new=(\d+) old=(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def parts_of(msg, ctype):
    return [p for p in msg.walk() if p.get_content_type() == ctype]


def uidl_map(p):
    out = {}
    for l in p.uidl()[1]:
        n, u = l.split(b" ", 1)
        out[u.decode()] = int(n)
    return out


def test_retr_voicemail(env, tmp_path):
    path = tmp_path / "vm.wav"
    data = media.write_pcm_wav(path, 3, rate=8000, channels=1, sampwidth=2)
    deposit(env, "alice", path)
    [v] = vm_list(env)
    stored = env.export("alice", v["uid"])

    p = env.poplib()
    try:
        assert p.stat()[0] == 1
        sizes = {int(n): int(s) for n, s in (l.split() for l in p.list()[1])}
        assert uidl_map(p) == {str(v["uid"]): 1}
        _, lines, _ = p.retr(1)
        got = joined(lines)
        assert len(got) == sizes[1], "LIST size is the exact size RETR sends"
        assert got == stored
        msg = parse(got)
        assert msg.get_content_type() == "multipart/mixed"
        assert msg["X-Umbox-Kind"] == "voicemail"
        assert msg["X-Umbox-Caller-ID"] == CALLER
        assert msg["X-Umbox-Duration"] == "3"
        [audio] = parts_of(msg, "audio/wav")
        assert audio.get_filename().endswith(".wav")
        assert audio.get_content() == data
        [text] = parts_of(msg, "text/plain")
        assert CALLER in text.get_content()
    finally:
        assert p.quit().startswith(b"+OK")

    # RETR then QUIT: retrieved counts as heard
    [v2] = vm_list(env)
    assert v2["uid"] == v["uid"] and v2["status"] == "heard"
    assert mwi(env) == (0, 1)


def test_retr_without_quit_is_not_heard(env, tmp_path):
    path = tmp_path / "vm.wav"
    media.write_pcm_wav(path, 1)
    deposit(env, "alice", path)
    c = env.raw()
    c.login()
    r, got = c.retr(1)
    assert r.startswith("+OK") and got
    c.close()                       # dropped: nothing committed
    time.sleep(0.5)
    assert vm_list(env)[0]["status"] == "new"
    assert mwi(env) == (1, 0)


def test_dele_quit_deletes_voicemail(env, tmp_path):
    path = tmp_path / "vm.wav"
    media.write_pcm_wav(path, 2)
    deposit(env, "alice", path)
    deposit(env, "100", path, caller="1002")
    assert mwi(env) == (2, 0)
    p = env.poplib()
    assert p.stat()[0] == 2
    assert p.dele(1).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")
    assert [v["caller"] for v in vm_list(env)] == ["1002"]
    assert mwi(env) == (1, 0)

    p = env.poplib()
    assert p.dele(1).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")
    assert vm_list(env) == []
    assert env.mailbox("alice") == []
    assert mwi(env) == (0, 0)


def test_dele_rset_keeps_voicemail(env, tmp_path):
    path = tmp_path / "vm.wav"
    media.write_pcm_wav(path, 2)
    deposit(env, "alice", path)
    p = env.poplib()
    assert p.dele(1).startswith(b"+OK")
    assert p.rset().startswith(b"+OK")
    assert p.quit().startswith(b"+OK")
    assert len(vm_list(env)) == 1


def test_mail_del_is_gone_from_the_next_session(env, tmp_path):
    path = tmp_path / "vm.wav"
    media.write_pcm_wav(path, 2)
    deposit(env, "alice", path)
    deposit(env, "alice", path, caller="1002")
    first, second = [v["uid"] for v in vm_list(env)]
    env.ctl("mail", "del", "alice", first)
    p = env.poplib()
    try:
        assert p.stat()[0] == 1
        assert list(uidl_map(p)) == [str(second)]
        msg = parse(joined(p.retr(1)[1]))
        assert msg["X-Umbox-Caller-ID"] == "1002"
    finally:
        p.quit()


def test_deposit_during_a_session_waits_for_the_next(env, tmp_path):
    path = tmp_path / "vm.wav"
    media.write_pcm_wav(path, 2)
    deposit(env, "alice", path)
    p = env.poplib()
    try:
        assert p.stat()[0] == 1
        deposit(env, "alice", path, caller="1002")      # the listing is a snapshot
        assert p.stat()[0] == 1
        assert len(p.list()[1]) == 1
    finally:
        assert p.quit().startswith(b"+OK")
    p = env.poplib()
    try:
        assert p.stat()[0] == 2
    finally:
        p.quit()


def test_unified_inbox(env, tmp_path):
    """An email, a fax and a voicemail in one mailbox: POP3 serves all three;
    voicemail list and mwi see only the voicemail."""
    env.deliver("alice", message("plain email"))
    tif = tmp_path / "f.tif"
    tiff = media.tiff_bytes(2, "MM")
    tif.write_bytes(tiff)
    fax(env, "alice", tif)
    wav = tmp_path / "vm.wav"
    data = media.write_pcm_wav(wav, 3)
    deposit(env, "alice", wav)

    kinds = [e["kind"] for e in env.mailbox("alice")]
    assert kinds == ["email", "fax", "voicemail"]
    [v] = vm_list(env)
    assert str(v["uid"]) == str(env.mailbox("alice")[2]["uid"])
    assert mwi(env) == (1, 0)

    p = env.poplib()
    try:
        assert p.stat()[0] == 3
        msgs = [parse(joined(p.retr(n)[1])) for n in (1, 2, 3)]
    finally:
        assert p.quit().startswith(b"+OK")
    assert msgs[0]["Subject"] == "plain email"
    assert msgs[1]["X-Umbox-Kind"] == "fax" and msgs[1]["X-Umbox-Pages"] == "2"
    assert parts_of(msgs[1], "image/tiff")[0].get_content() == tiff
    assert parts_of(msgs[2], "audio/wav")[0].get_content() == data
    # all three retrieved; only the voicemail counts for mwi
    assert mwi(env) == (0, 1)
    assert [e["kind"] for e in env.mailbox("alice")] == kinds


MDA = """import mailbox, sys
box = mailbox.mbox(sys.argv[1])
box.lock()
try:
    box.add(mailbox.mboxMessage(sys.stdin.buffer.read()))
    box.flush()
finally:
    box.unlock()
    box.close()
"""


def test_fetchmail_into_mbox_and_play_with_sox(env, tmp_path):
    media.need_sox()
    wav = tmp_path / "vm.wav"
    data = media.sox_wav(wav, "u-law", 5, rate=8000)
    deposit(env, "alice", wav)
    env.deliver("alice", message("an email beside it"))

    home = tmp_path / "fetchmail"
    home.mkdir()
    mbox_path = home / "mbox"
    mda = home / "mda.py"
    mda.write_text(MDA)
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"set idfile \"{home}/fetchids\"\n"
        f"poll 127.0.0.1 with proto POP3 port {env.pop3_port} uidl\n"
        f"  user \"alice\" there with password \"{PASSWORD}\" is \"root\" here\n"
        "  sslproto ''\n"
        f"  mda \"/usr/bin/python3 {mda} {mbox_path}\"\n")
    rc.chmod(0o600)
    p = subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "-v"],
                       capture_output=True, timeout=120, cwd=home,
                       env=dict(os.environ, FETCHMAILHOME=str(home), HOME=str(home)))
    log = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, log

    box = mailbox.mbox(str(mbox_path))
    msgs = [parse(m.as_bytes()) for m in box]
    assert len(msgs) == 2, log
    [vm] = [m for m in msgs if m["X-Umbox-Kind"] == "voicemail"]
    [audio] = parts_of(vm, "audio/wav")
    got = audio.get_content()
    assert got == data
    out = tmp_path / audio.get_filename().replace("/", "_")
    out.write_bytes(got)
    info = media.sox_info(out)
    assert info["rate"] == 8000 and info["channels"] == 1
    assert abs(info["seconds"] - 5.0) < 0.01
    assert "law" in info["encoding"].lower()

    # fetchmail deleted what it fetched (no "keep"): gone from the store too
    assert env.mailbox("alice") == []
    assert vm_list(env) == []
    assert mwi(env) == (0, 0)
