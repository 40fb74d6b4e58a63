"""umboxctl voicemail deposit | list | play | heard, fax deposit, mwi and
[voicemail] mwi_command (SPEC §8, §9).

A deposit validates the file (WAVE: PCM 8/16-bit, u-law, A-law, GSM 6.10;
TIFF: II/MM and its IFD chain), builds a MIME message (multipart/mixed, a
text part saying who called, when and for how long, the file as audio/wav
or image/tiff in base64) and delivers it through the alias pipeline that
SMTP mail takes.  A refused file stores nothing.  The media files come
from tests/media.py (the wave module, hand-made headers, sox).
"""
import email
import email.policy
import email.utils
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import media  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build")))
ERROR_PREFIX = "umboxctl: "

DOMAIN = "example.test"
CALLER = "2125550147"
CALLER_NAME = "Carl Caller"

DEPOSITED = re.compile(r"^voicemail deposited: ([^,\s]+), (\d+) s, (\d+) delivered, (\d+) queued$")
FAX_DEPOSITED = re.compile(r"^fax deposited: ([^,\s]+), (\d+) pages?, (\d+) delivered, (\d+) queued$")
VM_HEADER = ["UID", "CALLER", "DATE", "DURATION", "STATUS"]
VM_JSON_KEYS = {"uid", "caller", "caller_name", "arrived", "duration", "status", "size"}


# -- helpers ------------------------------------------------------------------------------

def run_bytes(site, *args):
    """umboxctl -c CONFIG ARGS with stdout as bytes: (rc, stdout, stderr str)."""
    p = subprocess.run([str(BUILD / "umboxctl"), "-c", str(site.config)] + [str(a) for a in args],
                       capture_output=True, timeout=60, cwd=site.root,
                       env=dict(os.environ, TZ="UTC", LC_ALL="C"))
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def pcm(tmp_path, seconds=3, name="vm.wav", **kw):
    path = tmp_path / name
    return path, media.write_pcm_wav(path, seconds, **kw)


def deposit(site, mailbox, path, caller=CALLER, name=CALLER_NAME, extra=()):
    """A deposit that must succeed; returns (qid, seconds, delivered, queued)."""
    args = ["voicemail", "deposit", mailbox, "--audio", path]
    if caller is not None:
        args += ["--caller", caller]
    if name is not None:
        args += ["--caller-name", name]
    r = site.ok(*args, *extra)
    assert len(r.lines) == 1, r
    m = DEPOSITED.match(r.lines[0])
    assert m, r
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))


def entries(site, mailbox="alice"):
    return site.json("mail", "list", mailbox)


def vm_list(site, mailbox="alice"):
    return site.json("voicemail", "list", mailbox)


def export(site, mailbox, uid):
    rc, out, err = run_bytes(site, "mail", "export", mailbox, uid)
    assert rc == 0, (rc, err)
    return out


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def only_entry(site, mailbox="alice", kind="voicemail"):
    [e] = entries(site, mailbox)
    assert e["kind"] == kind, e
    return e


def mwi(site, mailbox="alice"):
    r = site.ok("mwi", mailbox)
    assert len(r.lines) == 1, r
    m = re.fullmatch(r"new=(\d+) old=(\d+)", r.lines[0])
    assert m, r
    return int(m.group(1)), int(m.group(2))


def store_counts(site):
    """Rows of the tables a deposit writes (read-only)."""
    return {t: site.query(f"SELECT count(*) FROM {t}")[0][0]
            for t in ("messages", "entries", "queue")}


def assert_nothing_stored(site, before):
    assert store_counts(site) == before
    for login in ("admin", "alice", "bob"):
        assert entries(site, login) == [], login
    assert site.json("queue", "list") == []


def mentions_duration(text, seconds):
    """A duration said as m:ss or as a number of seconds."""
    mss = f"{seconds // 60}:{seconds % 60:02d}"
    return mss in text or re.search(rf"\b{seconds}\s*(s\b|sec)", text) is not None


def audio_part(msg):
    parts = [p for p in msg.walk() if p.get_content_type() == "audio/wav"]
    assert len(parts) == 1, [p.get_content_type() for p in msg.walk()]
    return parts[0]


# -- deposit and the listings -------------------------------------------------------------

@pytest.mark.parametrize("mailbox", ["alice", "100", "alice@example.test"])
def test_deposit_by_login_extension_address(site, tmp_path, mailbox):
    path, data = pcm(tmp_path, 3)
    t0 = int(time.time())
    qid, secs, delivered, queued = deposit(site, mailbox, path)
    t1 = int(time.time())
    assert (secs, delivered, queued) == (3, 1, 0)
    assert qid

    e = only_entry(site)
    assert e["kind"] == "voicemail" and e["status"] == "new"
    assert t0 - 5 <= e["arrived"] <= t1 + 5
    assert entries(site, "bob") == [] and entries(site, "admin") == []

    # the table form of mail list says voicemail too
    rows = site.ok("mail", "list", "alice").table()
    assert [r["KIND"] for r in rows] == ["voicemail"]

    # voicemail list, table
    r = site.ok("voicemail", "list", "alice")
    assert r.lines[0].split() == VM_HEADER, r
    [row] = r.table()
    assert row["UID"] == str(e["uid"])
    assert CALLER in row["CALLER"]
    assert row["DURATION"] == "0:03"
    assert row["STATUS"] == "new"
    assert row["DATE"]

    # voicemail list --json
    [v] = vm_list(site)
    assert VM_JSON_KEYS <= set(v), v
    assert str(v["uid"]) == str(e["uid"])
    assert v["caller"] == CALLER and v["caller_name"] == CALLER_NAME
    assert v["duration"] == 3 and v["status"] == "new"
    assert v["size"] == e["size"]
    assert t0 - 5 <= v["arrived"] <= t1 + 5

    # the same mailbox by its other names
    assert vm_list(site, "100") == [v]
    assert vm_list(site, "alice@example.test") == [v]


def test_uids_grow_and_list_is_in_order(site, tmp_path):
    p1, _ = pcm(tmp_path, 1, "a.wav")
    p2, _ = pcm(tmp_path, 2, "b.wav", seed=2)
    deposit(site, "alice", p1, caller="1001")
    deposit(site, "alice", p2, caller="1002")
    v = vm_list(site)
    assert [x["caller"] for x in v] == ["1001", "1002"]
    assert [x["duration"] for x in v] == [1, 2]
    assert [str(x["uid"]) for x in v] == [str(e["uid"]) for e in entries(site)]
    assert len({x["uid"] for x in v}) == 2


def test_empty_voicemail_list(site):
    r = site.ok("voicemail", "list", "alice")
    assert r.lines[0].split() == VM_HEADER and r.table() == []
    assert vm_list(site) == []
    assert mwi(site) == (0, 0)


@pytest.mark.parametrize("verb_args", [("list", "nobody"), ("list", "999"),
                                       ("play", "nobody", "1"), ("heard", "nobody", "1")])
def test_unknown_mailbox_is_not_found(site, tmp_path, verb_args):
    site.fail(4, "voicemail", *verb_args)


def test_mwi_unknown_mailbox(site):
    site.fail(4, "mwi", "nobody")


@pytest.mark.parametrize("mailbox", ["nobody", "999", "nobody@example.test"])
def test_deposit_unknown_mailbox(site, tmp_path, mailbox):
    path, _ = pcm(tmp_path, 1)
    before = store_counts(site)
    site.fail(4, "voicemail", "deposit", mailbox, "--audio", path, "--caller", CALLER)
    assert_nothing_stored(site, before)


def test_deposit_without_audio_is_usage(site):
    before = store_counts(site)
    r = site.run("voicemail", "deposit", "alice", "--caller", CALLER)
    assert r.rc == 2, r
    assert r.out == ""
    assert store_counts(site) == before


def test_deposit_missing_file(site, tmp_path):
    before = store_counts(site)
    r = site.run("voicemail", "deposit", "alice", "--audio", tmp_path / "nope.wav")
    assert r.rc in (1, 4), r
    assert any(l.startswith(ERROR_PREFIX) and "nope.wav" in l for l in r.err_lines), r
    assert_nothing_stored(site, before)


@pytest.mark.parametrize("noun,opt", [("voicemail", "--audio"), ("fax", "--tiff")])
def test_deposit_of_a_fifo_is_refused_at_once(site, tmp_path, noun, opt):
    """A named pipe is not waited on (no writer would ever come): refused
    as not a regular file, like a directory."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    before = store_counts(site)
    r = site.fail(1, noun, "deposit", "alice", opt, fifo, timeout=10)
    assert "not a regular file" in r.err, r
    assert_nothing_stored(site, before)


def test_play_to_a_terminal_is_refused(site, tmp_path):
    """Audio is not written to a terminal (status 2); redirected, it is."""
    import pty
    path, data = pcm(tmp_path, 1)
    deposit(site, "alice", path)
    uid = vm_list(site)[0]["uid"]
    master, slave = pty.openpty()
    try:
        p = subprocess.run([str(BUILD / "umboxctl"), "-c", str(site.config), "voicemail", "play",
                            "alice", uid], stdout=slave, stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert p.returncode == 2 and b"terminal" in p.stderr, p
    assert site.ok("voicemail", "play", "alice", uid).out.encode("utf-8", "surrogateescape") != b""


# -- durations of every format -----------------------------------------------------------

def _pcm_case(seconds, rate, channels, width):
    def make(path):
        return media.write_pcm_wav(path, seconds, rate=rate, channels=channels, sampwidth=width)
    return make


def _sox_case(encoding, seconds, rate=8000):
    def make(path):
        return media.sox_wav(path, encoding, seconds, rate=rate)
    return make


FORMATS = {
    "pcm8-mono-8k-3s": (_pcm_case(3, 8000, 1, 1), 3),
    "pcm8-stereo-11k-4s": (_pcm_case(4, 11025, 2, 1), 4),
    "pcm16-mono-8k-3s": (_pcm_case(3, 8000, 1, 2), 3),
    "pcm16-stereo-16k-2s": (_pcm_case(2, 16000, 2, 2), 2),
    "pcm16-mono-8k-12s": (_pcm_case(12, 8000, 1, 2), 12),
    "pcm8-mono-8k-75s": (_pcm_case(75, 8000, 1, 1), 75),
    "ulaw-8k-5s": (_sox_case("u-law", 5), 5),
    "alaw-8k-5s": (_sox_case("a-law", 5), 5),
    "gsm610-8k-5s": (_sox_case("gsm-full-rate", 5), 5),
    "gsm610-8k-7s": (_sox_case("gsm-full-rate", 7), 7),
}


@pytest.mark.parametrize("case", list(FORMATS))
def test_duration_of_each_format(site, tmp_path, case):
    make, seconds = FORMATS[case]
    path = tmp_path / f"{case}.wav"
    data = make(path)
    _, secs, delivered, _ = deposit(site, "alice", path)
    assert secs == seconds and delivered == 1
    e = only_entry(site)
    msg = parse(export(site, "alice", e["uid"]))
    assert msg["X-Umbox-Duration"] == str(seconds)
    assert msg["X-Umbox-Kind"] == "voicemail"
    assert audio_part(msg).get_content() == data
    mss = f"{seconds // 60}:{seconds % 60:02d}"
    assert msg["Subject"] == f"Voicemail from {CALLER_NAME} ({CALLER}), {mss}"
    [v] = vm_list(site)
    assert v["duration"] == seconds
    [row] = site.ok("voicemail", "list", "alice").table()
    assert row["DURATION"] == mss
    # play gives back exactly these bytes
    rc, out, err = run_bytes(site, "voicemail", "play", "alice", e["uid"])
    assert rc == 0, err
    assert out == data


# -- the message -------------------------------------------------------------------------

def test_message_structure(site, tmp_path):
    path, data = pcm(tmp_path, 12)
    before = time.time()
    deposit(site, "alice", path)
    e = only_entry(site)
    raw = export(site, "alice", e["uid"])

    # line discipline of a stored message: CRLF, no line over 998 octets
    assert b"\r\n" in raw
    assert all(len(l) <= 998 for l in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")

    msg = parse(raw)
    assert msg.get_content_type() == "multipart/mixed"
    # SPEC §4: every stored message gets a Received: header, a deposit too.
    [received] = msg.get_all("Received")
    assert re.fullmatch(r"by \S+ \(umbox voicemail deposit\); \w{3}, \d{2} \w{3} \d{4}"
                        r" [\d:]{8} [+-]\d{4}", " ".join(str(received).split())), received
    assert msg["X-Umbox-Kind"] == "voicemail"
    assert msg["X-Umbox-Caller-ID"] == CALLER
    assert msg["X-Umbox-Duration"] == "12"
    assert msg["Subject"] == f"Voicemail from {CALLER_NAME} ({CALLER}), 0:12"
    [frm] = msg["From"].addresses
    assert frm.display_name == CALLER_NAME
    assert frm.addr_spec == f"{CALLER}@{DOMAIN}"
    [to] = msg["To"].addresses
    assert to.addr_spec.lower() == f"alice@{DOMAIN}"
    assert msg["Message-ID"] and re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", msg["Message-ID"].strip())
    date = email.utils.parsedate_to_datetime(str(msg["Date"]))
    assert abs(date.timestamp() - before) < 300
    assert msg["MIME-Version"] == "1.0"

    texts = [p for p in msg.walk() if p.get_content_type() == "text/plain"]
    assert len(texts) == 1
    text = texts[0].get_content()
    assert CALLER in text and CALLER_NAME in text
    assert mentions_duration(text, 12), text

    audio = audio_part(msg)
    assert audio["Content-Transfer-Encoding"].strip().lower() == "base64"
    fname = audio.get_filename()
    assert fname and fname.endswith(".wav") and "/" not in fname, fname
    assert audio.get_content() == data
    # text first, then the audio: what a mail client shows
    top = list(msg.iter_parts())
    assert [p.get_content_type() for p in top] == ["text/plain", "audio/wav"]


def test_unknown_caller(site, tmp_path):
    path, data = pcm(tmp_path, 2)
    deposit(site, "alice", path, caller=None, name=None)
    e = only_entry(site)
    msg = parse(export(site, "alice", e["uid"]))
    [frm] = msg["From"].addresses
    assert frm.display_name == "Unknown caller"
    assert frm.username == "unknown"
    assert audio_part(msg).get_content() == data
    assert "Voicemail from" in msg["Subject"] and msg["Subject"].endswith(", 0:02")
    [v] = vm_list(site)
    assert v["duration"] == 2
    assert (v["caller"], v["caller_name"]) == (None, None), v   # unset: null


def test_caller_without_name(site, tmp_path):
    path, _ = pcm(tmp_path, 2)
    deposit(site, "alice", path, caller="5551234", name=None)
    msg = parse(export(site, "alice", only_entry(site)["uid"]))
    assert msg["X-Umbox-Caller-ID"] == "5551234"
    assert "5551234" in msg["Subject"] and msg["Subject"].endswith(", 0:02")
    [frm] = msg["From"].addresses
    assert frm.addr_spec == f"5551234@{DOMAIN}"
    [v] = vm_list(site)
    assert (v["caller"], v["caller_name"]) == ("5551234", None), v


def test_caller_name_not_ascii(site, tmp_path):
    path, _ = pcm(tmp_path, 1)
    name = "Zoë Müller"
    deposit(site, "alice", path, name=name)
    raw = export(site, "alice", only_entry(site)["uid"])
    msg = parse(raw)
    assert msg["From"].addresses[0].display_name == name
    assert name in str(msg["Subject"])
    [v] = vm_list(site)
    assert v["caller_name"] == name
    # the text part says the name in the charset it declares
    [text] = [p for p in msg.walk() if p.get_content_type() == "text/plain"]
    charset = text.get_content_charset() or "us-ascii"
    body = text.get_payload(decode=True)
    assert name in body.decode(charset, "strict"), (charset, body)
    # and the table shows it as the caller
    [row] = site.ok("voicemail", "list", "alice").table()
    assert name in row["CALLER"]


@pytest.mark.parametrize("given,kept", [
    ("\u65e5" * 43, "\u65e5" * 42),          # 129 octets: cut before the 43rd character
    ("A" + "\u00e9" * 70, "A" + "\u00e9" * 63),
    ("  Carl \t  Caller  ", "Carl Caller"),  # blanks around and within
    (" \t ", None),                           # blank: no name
])
def test_caller_name_is_cut_at_a_character_and_trimmed(site, tmp_path, given, kept):
    """The name keeps at most 128 octets, cut before a character that does
    not fit (it was lost whole as "Unknown caller" when the cut fell inside
    one); blanks around it go, and a blank name is no name."""
    path, _ = pcm(tmp_path, 1)
    deposit(site, "alice", path, name=given)
    [v] = vm_list(site)
    assert v["caller_name"] == kept, v
    if kept is None or len(kept) < 20:  # (Python's parser spaces out long encoded words)
        msg = parse(export(site, "alice", v["uid"]))
        assert msg["From"].addresses[0].display_name == (kept or CALLER)
        assert str(msg["Subject"]).startswith(f"Voicemail from {kept} ({CALLER})" if kept
                                              else f"Voicemail from {CALLER},"), msg["Subject"]


def test_caller_name_that_is_the_number_is_said_once(site, tmp_path):
    path, _ = pcm(tmp_path, 1)
    deposit(site, "alice", path, name=CALLER)
    msg = parse(export(site, "alice", only_entry(site)["uid"]))
    assert str(msg["Subject"]) == f"Voicemail from {CALLER}, 0:01", msg["Subject"]


@pytest.mark.parametrize("opt,value", [
    ("--caller-name", "Mallory\r\nBcc: victim@far.test"),
    ("--caller-name", "Mallory\nBcc: victim@far.test"),
    ("--caller", "555\r\nBcc: victim@far.test"),
])
def test_header_injection_through_caller(site, tmp_path, opt, value):
    """Either refused (and nothing stored) or kept inside its own header:
    never a header of its own."""
    path, _ = pcm(tmp_path, 1)
    before = store_counts(site)
    other = "--caller" if opt == "--caller-name" else "--caller-name"
    r = site.run("voicemail", "deposit", "alice", "--audio", path, opt, value, other,
                 "1234" if other == "--caller" else "Someone")
    if r.rc != 0:
        assert r.rc in (1, 2), r
        assert_nothing_stored(site, before)
        return
    raw = export(site, "alice", only_entry(site)["uid"])
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert b"\r\nBcc:" not in raw and b"\nBcc:" not in raw
    assert site.json("queue", "list") == []


# -- refusals: nothing stored -------------------------------------------------------------

def _bad_wavs(tmp_path):
    good = media.write_pcm_wav(tmp_path / "good.wav", 3)
    return {
        "text": (b"Hello, this is not a recording.\n" * 20, "not a RIFF file"),
        "empty": (b"", "not a RIFF file"),
        "truncated": (good[:len(good) // 2], "but the file has"),
        "data-lies": (media.wav_bytes(bits=8, data=media.noise(8000), data_len=80000),
                      "data chunk says"),
        "riff-not-wave": (b"RIFF" + (100).to_bytes(4, "little") + b"AVI " + b"\0" * 100,
                          "not WAVE"),
        "ieee-float": (media.wav_bytes(fmt_tag=media.IEEE_FLOAT, bits=32,
                                       data=media.noise(32000)), "IEEE float"),
        "no-data-chunk": (b"RIFF" + (4 + 24).to_bytes(4, "little") + b"WAVE" +
                          media.chunk(b"fmt ", (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
                                      + (8000).to_bytes(4, "little") + (16000).to_bytes(4, "little")
                                      + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")),
                          "no data chunk"),
        "longer-than-an-hour": (media.wav_bytes(rate=1, bits=8, data=media.noise(4000)),
                                "limit"),
    }


@pytest.mark.parametrize("case", ["text", "empty", "truncated", "data-lies", "riff-not-wave",
                                  "ieee-float", "no-data-chunk", "longer-than-an-hour"])
def test_bad_wav_is_refused(site, tmp_path, case):
    data, why = _bad_wavs(tmp_path)[case]
    path = tmp_path / f"{case}.wav"
    path.write_bytes(data)
    before = store_counts(site)
    r = site.fail(1, "voicemail", "deposit", "alice", "--audio", path, "--caller", CALLER)
    msg = r.err_after_usage
    assert any(l.startswith(f"{ERROR_PREFIX}{path}: ") for l in msg), r
    assert why in r.err, r
    assert_nothing_stored(site, before)
    assert mwi(site) == (0, 0)


def test_over_quota_is_refused(site, tmp_path):
    site.ok("user", "set", "alice", "--quota", "1K")
    path, data = pcm(tmp_path, 4, rate=1000, sampwidth=1)      # 4000 bytes of audio
    assert len(data) >= 4000
    before = store_counts(site)
    r = site.fail(1, "voicemail", "deposit", "alice", "--audio", path, "--caller", CALLER)
    [line] = r.err_lines
    assert line.startswith("umboxctl: the voicemail does not fit: mailbox alice would exceed"
                           " its quota ("), r
    assert line.endswith("bytes); delete mail from it (umboxctl mail del) or raise the quota"
                         " (umboxctl user set --quota); nothing was stored"), r
    assert_nothing_stored(site, before)
    assert site.json("user", "show", "alice")["used"] == 0
    # room again: the same file goes in
    site.ok("user", "set", "alice", "--quota", "0")
    deposit(site, "alice", path)
    assert len(vm_list(site)) == 1


# -- play, heard, del, mwi ---------------------------------------------------------------

def test_play_heard_del_and_mwi(site, tmp_path):
    p1, d1 = pcm(tmp_path, 3, "one.wav", seed=11)
    p2 = tmp_path / "two.wav"
    d2 = media.write_pcm_wav(p2, 2, rate=16000, channels=2, sampwidth=2, seed=12)
    assert mwi(site) == (0, 0)
    deposit(site, "alice", p1, caller="1001")
    assert mwi(site) == (1, 0)
    assert mwi(site, "100") == (1, 0)
    deposit(site, "100", p2, caller="1002")
    assert mwi(site) == (2, 0)
    u1, u2 = [v["uid"] for v in vm_list(site)]

    for uid, data in ((u1, d1), (u2, d2)):
        rc, out, err = run_bytes(site, "voicemail", "play", "alice", uid)
        assert rc == 0, err
        assert out == data

    # play does not count as heard
    assert [v["status"] for v in vm_list(site)] == ["new", "new"]

    r = site.ok("voicemail", "heard", "alice", u1)
    assert [v["status"] for v in vm_list(site)] == ["heard", "new"]
    rows = site.ok("voicemail", "list", "alice").table()
    assert [row["STATUS"] for row in rows] == ["heard", "new"]
    assert [e["status"] for e in entries(site)] == ["heard", "new"]
    assert mwi(site) == (1, 1)
    # heard again: still heard, same counts
    site.ok("voicemail", "heard", "alice", u1)
    assert mwi(site) == (1, 1)

    site.ok("mail", "del", "alice", u1)
    assert [v["uid"] for v in vm_list(site)] == [u2]
    assert mwi(site) == (1, 0)
    site.fail(4, "voicemail", "play", "alice", u1)
    site.fail(4, "voicemail", "heard", "alice", u1)

    site.ok("mail", "del", "100", u2)
    assert vm_list(site) == []
    assert mwi(site) == (0, 0)
    assert site.json("user", "show", "alice")["used"] == 0


def test_play_and_heard_unknown_uid(site, tmp_path):
    path, _ = pcm(tmp_path, 1)
    deposit(site, "alice", path)
    uid = vm_list(site)[0]["uid"]
    for bad in ("999999", "no-such-uid"):
        site.fail(4, "voicemail", "play", "alice", bad)
        site.fail(4, "voicemail", "heard", "alice", bad)
    # another mailbox's voicemail is not found in bob's
    site.fail(4, "voicemail", "play", "bob", uid)
    site.fail(4, "voicemail", "heard", "bob", uid)
    assert vm_list(site)[0]["status"] == "new"


# -- mwi_command -------------------------------------------------------------------------

# One write per run: helpers of several mailboxes run at once.
MWI_SCRIPT = """#!/bin/sh
tab=$(printf '\\t'); line="$#"
for a in "$@"; do line="$line$tab$a"; done
printf '%s\\n' "$line" >> {log}
exit {code}
"""


def with_mwi(site, tmp_path, code=0, path=None):
    log = tmp_path / "mwi.log"
    if path is None:
        path = tmp_path / "mwi.sh"
        path.write_text(MWI_SCRIPT.format(log=log, code=code))
        path.chmod(0o755)
    site.write_config(f"[voicemail]\nmwi_command = {path}\n")
    return log


def mwi_calls(log, n, timeout=5):
    """The argv lines the script wrote, once there are n (it may run in the
    background of umboxctl)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= n:
            time.sleep(0.2)
            lines = log.read_text().splitlines()
            return [tuple(l.split("\t")) for l in lines]
        assert time.monotonic() < deadline, f"{len(lines)} of {n} mwi calls: {lines}"
        time.sleep(0.05)


def test_mwi_command_argv(site, tmp_path):
    log = with_mwi(site, tmp_path)
    p1, _ = pcm(tmp_path, 1, "a.wav")
    p2, _ = pcm(tmp_path, 2, "b.wav", seed=3)
    deposit(site, "100", p1)
    assert mwi_calls(log, 1) == [("3", "alice", "1", "0")]
    deposit(site, "alice@example.test", p2)
    assert mwi_calls(log, 2)[1:] == [("3", "alice", "2", "0")]
    u1, u2 = [v["uid"] for v in vm_list(site)]
    site.ok("voicemail", "heard", "alice", u1)
    assert mwi_calls(log, 3)[2:] == [("3", "alice", "1", "1")]
    site.ok("mail", "del", "alice", u1)
    assert mwi_calls(log, 4)[3:] == [("3", "alice", "1", "0")]
    site.ok("mail", "del", "alice", u2)
    assert mwi_calls(log, 5)[4:] == [("3", "alice", "0", "0")]


def test_mwi_command_that_cannot_start_is_a_umboxctl_warning(site, tmp_path):
    """The deposit succeeds; the trouble is said as umboxctl says warnings
    ("umboxctl: warning: ..."), not as a daemon's time-stamped log line."""
    with_mwi(site, tmp_path, path=tmp_path / "missing-mwi")
    path, _ = pcm(tmp_path, 1)
    r = site.ok("voicemail", "deposit", "alice", "--audio", path, "--caller", CALLER)
    warn = [l for l in r.err.splitlines() if "missing-mwi" in l]
    assert warn and all(l.startswith("umboxctl: warning: ") for l in warn), r.err


def test_mwi_command_for_each_mailbox_of_an_alias(site, tmp_path):
    log = with_mwi(site, tmp_path)
    site.ok("alias", "add", "alice", "alice", "bob")
    path, _ = pcm(tmp_path, 1)
    deposit(site, "alice", path)
    calls = mwi_calls(log, 2)
    assert sorted(calls) == [("3", "alice", "1", "0"), ("3", "bob", "1", "0")]


def test_mwi_command_output_is_not_umboxctls_and_its_children_go_with_it(site, tmp_path):
    """The helper's stdout goes to umboxctl's stderr (a script reading
    umboxctl's output never sees it, nor waits for what the helper left
    running), its stdin is /dev/null, and at the 5 s limit it is killed
    with what it started."""
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "noisy.sh"
    script.write_text("#!/bin/sh\necho noise from mwi\nread x && echo read-stdin\n"
                      f"sleep 60 &\necho $! > {pidfile}\nwait\n")
    script.chmod(0o755)
    with_mwi(site, tmp_path, path=script)
    path, _ = pcm(tmp_path, 1)
    cmd = [str(BUILD / "umboxctl"), "-c", str(site.config), "voicemail", "deposit", "alice",
           "--audio", str(path)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, input=b"typed by the admin\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    took = time.monotonic() - t0
    assert p.returncode == 0, p
    assert p.stdout.decode().startswith("voicemail deposited:"), p
    assert b"noise from mwi" not in p.stdout and b"noise from mwi" in p.stderr, p
    assert b"read-stdin" not in p.stdout + p.stderr, p
    assert b"killed" in p.stderr and took < 15, (took, p)
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and \
            "Z" not in open(f"/proc/{child}/stat").read().split(")")[1].split()[0]:
        assert time.monotonic() < deadline, "the helper's child outlived the kill"
        time.sleep(0.05)


def test_mwi_commands_of_an_alias_are_waited_for_together(site, tmp_path):
    """Two mailboxes, a helper that hangs: one 5 s wait, not one per mailbox."""
    script = tmp_path / "hang.sh"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(0o755)
    with_mwi(site, tmp_path, path=script)
    site.ok("alias", "add", "alice", "alice", "bob")
    path, _ = pcm(tmp_path, 1)
    t0 = time.monotonic()
    r = site.run("voicemail", "deposit", "alice", "--audio", path, timeout=30)
    took = time.monotonic() - t0
    assert r.rc == 0, r
    assert r.err.count("killed") == 2, r
    assert 4.5 <= took < 8, took


def test_mwi_command_not_run_without_a_change(site, tmp_path):
    """A refused deposit changes no counts: the script is not run."""
    log = with_mwi(site, tmp_path)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    site.fail(1, "voicemail", "deposit", "alice", "--audio", bad)
    time.sleep(0.5)
    assert not log.exists() or log.read_text() == ""


@pytest.mark.parametrize("how", ["exit-1", "missing"])
def test_failing_mwi_command_is_not_fatal(site, tmp_path, how):
    if how == "exit-1":
        log = with_mwi(site, tmp_path, code=1)
    else:
        log = with_mwi(site, tmp_path, path=tmp_path / "no" / "such" / "mwi-script")
    path, data = pcm(tmp_path, 2)
    r = site.run("voicemail", "deposit", "alice", "--audio", path, "--caller", CALLER)
    assert r.rc == 0, r
    assert DEPOSITED.match(r.lines[0]), r
    if how == "exit-1":
        assert mwi_calls(log, 1) == [("3", "alice", "1", "0")]
    [v] = vm_list(site)
    assert v["status"] == "new"
    r = site.run("voicemail", "heard", "alice", v["uid"])
    assert r.rc == 0, r
    assert vm_list(site)[0]["status"] == "heard"
    r = site.run("mail", "del", "alice", v["uid"])
    assert r.rc == 0, r
    assert vm_list(site) == []
    assert mwi(site) == (0, 0)


def test_file_over_64_mb_is_refused_unread(site, tmp_path):
    big = tmp_path / "big.wav"
    with open(big, "wb") as f:          # sparse: nothing is written
        f.truncate(64 * 1024 * 1024 + 1)
    r = site.fail(1, "voicemail", "deposit", "alice", "--audio", big)
    assert "64 MB" in r.err, r
    assert vm_list(site) == []


@pytest.mark.parametrize("digits,ok", [(64, True), (65, False)])
def test_caller_id_length_limit(site, tmp_path, digits, ok):
    path, _ = pcm(tmp_path, 1)
    args = ("voicemail", "deposit", "alice", "--audio", path, "--caller", "1" * digits)
    if ok:
        site.ok(*args)
        assert vm_list(site)[0]["caller"] == "1" * digits
    else:
        r = site.fail(2, *args)
        assert "--caller has 65 characters; a phone number has at most 64" in r.err, r
        assert vm_list(site) == []


def test_caller_id_that_is_no_number_is_shown_on_one_line(site, tmp_path):
    path, _ = pcm(tmp_path, 1)
    r = site.fail(2, "voicemail", "deposit", "alice", "--audio", path, "--caller",
                  "555\nBcc: x@far.test")
    assert r.err_lines == ["umboxctl: --caller 555\\x0aBcc: x@far.test is not a phone number"
                           " (digits, +, *, #; a + only first)"], r


@pytest.mark.parametrize("caller,ok", [("+44 20 7946 0000", True), ("*67", True), ("#", True),
                                       ("+", False), ("++1", False), ("1+2", False)])
def test_caller_id_plus_only_in_front(site, tmp_path, caller, ok):
    path, _ = pcm(tmp_path, 1)
    args = ("voicemail", "deposit", "alice", "--audio", path, "--caller", caller)
    if ok:
        site.ok(*args)
        assert vm_list(site)[0]["caller"] == caller.replace(" ", "")
    else:
        site.fail(2, *args)
        assert vm_list(site) == []


def test_caller_name_in_another_encoding_is_kept(site, tmp_path):
    """A name that is not UTF-8 (a PBX's Latin-1) keeps its readable part."""
    path, _ = pcm(tmp_path, 1)
    site.ok("voicemail", "deposit", "alice", "--audio", path, "--caller", "100",
            "--caller-name", os.fsdecode(b"Jos\xe9 Garc\xeda"))
    assert vm_list(site)[0]["caller_name"] == "Jos\ufffd Garc\ufffda"


def test_hanging_mwi_command_is_killed(site, tmp_path):
    """A program that never ends is killed after 5 s; the deposit stands."""
    script = tmp_path / "hang.sh"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(0o755)
    with_mwi(site, tmp_path, path=script)
    path, _ = pcm(tmp_path, 1)
    t0 = time.monotonic()
    r = site.run("voicemail", "deposit", "alice", "--audio", path, timeout=30)
    took = time.monotonic() - t0
    assert r.rc == 0, r
    assert 4.5 <= took < 15, took
    assert "killed" in r.err, r
    assert len(vm_list(site)) == 1


# -- fax ---------------------------------------------------------------------------------

@pytest.mark.parametrize("pages,order", [(1, "II"), (3, "II"), (3, "MM")])
def test_fax_deposit(site, tmp_path, pages, order):
    tiff = media.tiff_bytes(pages, order)
    path = tmp_path / "fax.tif"
    path.write_bytes(tiff)
    r = site.ok("fax", "deposit", "alice", "--tiff", path, "--caller", CALLER)
    assert len(r.lines) == 1, r
    m = FAX_DEPOSITED.match(r.lines[0])
    assert m, r
    assert int(m.group(2)) == pages and int(m.group(3)) == 1 and int(m.group(4)) == 0
    if pages == 1:
        assert ", 1 page," in r.lines[0], r

    e = only_entry(site, kind="fax")
    assert e["status"] == "new"
    msg = parse(export(site, "alice", e["uid"]))
    assert msg.get_content_type() == "multipart/mixed"
    assert msg["X-Umbox-Kind"] == "fax"
    assert "(umbox fax deposit);" in " ".join(str(msg["Received"]).split())
    assert msg["X-Umbox-Pages"] == str(pages)
    assert msg["Subject"] == f"Fax from {CALLER}, {pages} page{'s' if pages != 1 else ''}"
    parts = [p for p in msg.walk() if p.get_content_type() == "image/tiff"]
    assert len(parts) == 1
    assert parts[0]["Content-Transfer-Encoding"].strip().lower() == "base64"
    fname = parts[0].get_filename()
    assert fname and fname.lower().endswith((".tif", ".tiff")), fname
    assert parts[0].get_content() == tiff

    # not a voicemail: not listed, not counted, not playable
    assert vm_list(site) == []
    assert mwi(site) == (0, 0)
    site.fail(4, "voicemail", "play", "alice", e["uid"])
    site.ok("mail", "del", "alice", e["uid"])
    assert entries(site) == []


def test_fax_and_voicemail_side_by_side(site, tmp_path):
    tif = tmp_path / "f.tif"
    tif.write_bytes(media.tiff_bytes(2))
    site.ok("fax", "deposit", "100", "--tiff", tif, "--caller", "999")
    path, _ = pcm(tmp_path, 3)
    deposit(site, "alice", path)
    assert [e["kind"] for e in entries(site)] == ["fax", "voicemail"]
    rows = site.ok("mail", "list", "alice").table()
    assert [r["KIND"] for r in rows] == ["fax", "voicemail"]
    [v] = vm_list(site)
    assert str(v["uid"]) == str(entries(site)[1]["uid"])
    assert mwi(site) == (1, 0)


@pytest.mark.parametrize("case,why", [
    ("bad-magic", "not a TIFF"),
    ("ifd-past-end", "past end"),
    ("chain-cut", "past the end"),
    ("empty", "not a TIFF"),
    ("a-wav", "not a TIFF"),
])
def test_bad_tiff_is_refused(site, tmp_path, case, why):
    data = {"bad-magic": media.tiff_bad_magic(),
            "ifd-past-end": media.tiff_ifd_past_end(),
            "chain-cut": media.tiff_chain_cut(),
            "empty": b"",
            "a-wav": media.wav_bytes(data=media.noise(1600))}[case]
    path = tmp_path / f"{case}.tif"
    path.write_bytes(data)
    before = store_counts(site)
    r = site.fail(1, "fax", "deposit", "alice", "--tiff", path, "--caller", CALLER)
    assert any(l.startswith(f"{ERROR_PREFIX}{path}: ") for l in r.err_after_usage), r
    assert why in r.err, r
    assert_nothing_stored(site, before)


def test_fax_unknown_mailbox_and_usage(site, tmp_path):
    tif = tmp_path / "f.tif"
    tif.write_bytes(media.tiff_bytes(1))
    before = store_counts(site)
    site.fail(4, "fax", "deposit", "nobody", "--tiff", tif)
    r = site.run("fax", "deposit", "alice")
    assert r.rc == 2, r
    assert_nothing_stored(site, before)


# -- aliases -----------------------------------------------------------------------------

def test_alias_named_like_login_keeps_a_copy(site, tmp_path):
    site.ok("alias", "add", "alice", "alice", "bob")
    path, data = pcm(tmp_path, 3)
    _, _, delivered, queued = deposit(site, "alice", path)
    assert (delivered, queued) == (2, 0)
    for login in ("alice", "bob"):
        e = only_entry(site, login)
        [v] = vm_list(site, login)
        assert v["duration"] == 3 and v["caller"] == CALLER
        assert audio_part(parse(export(site, login, e["uid"]))).get_content() == data
        assert mwi(site, login) == (1, 0)
    # heard in one mailbox is not heard in the other
    site.ok("voicemail", "heard", "alice", vm_list(site, "alice")[0]["uid"])
    assert mwi(site, "alice") == (0, 1) and mwi(site, "bob") == (1, 0)


def test_alias_named_like_login_without_copy(site, tmp_path):
    site.ok("alias", "add", "alice", "bob")
    path, _ = pcm(tmp_path, 2)
    _, _, delivered, queued = deposit(site, "alice", path)
    assert (delivered, queued) == (1, 0)
    assert entries(site, "alice") == []
    assert [v["duration"] for v in vm_list(site, "bob")] == [2]


def test_alias_named_like_extension(site, tmp_path):
    site.ok("alias", "add", "100", "bob")
    path, data = pcm(tmp_path, 3)
    _, _, delivered, queued = deposit(site, "100", path)
    assert (delivered, queued) == (1, 0)
    assert entries(site, "alice") == []
    e = only_entry(site, "bob")
    assert audio_part(parse(export(site, "bob", e["uid"]))).get_content() == data
    assert mwi(site, "bob") == (1, 0) and mwi(site, "alice") == (0, 0)


def test_alias_with_outside_member_queues(site, tmp_path):
    """The outside member's copy waits in the queue (no queue runner here:
    tests/smtpd/test_smtpd_voicemail.py sees it leave)."""
    site.ok("alias", "add", "alice", "alice", "friend@far.test")
    path, _ = pcm(tmp_path, 2)
    _, _, delivered, queued = deposit(site, "alice", path)
    assert (delivered, queued) == (1, 1)
    assert len(vm_list(site)) == 1
    rows = site.json("queue", "list")
    assert [r["recipient"] for r in rows] == ["friend@far.test"]


def test_deposit_speaks_for_a_domain_whose_mx_is_here(site, tmp_path):
    """The deposit's sender and addresses are at a domain of ours: one
    added over the guard's "foreign" verdict (amx.test, whose address is
    another server's, sorting first) is another organisation's, and
    bounces to postmaster@ there would never come back.  A MAILBOX that
    names a domain keeps it."""
    site.ok("domain", "add", "amx.test", "--force")
    assert [d["guard"] for d in site.json("domain", "list")] == ["foreign", "internal"]
    site.ok("alias", "add", "alice", "alice", "friend@far.test")
    path, _ = pcm(tmp_path, 2)
    deposit(site, "alice", path)
    [row] = site.json("queue", "list")
    assert row["sender"] == f"postmaster@{DOMAIN}", row
    msg = parse(export(site, "alice", only_entry(site, "alice")["uid"]))
    assert msg["From"].endswith(f"@{DOMAIN}>") and msg["To"].endswith(f"alice@{DOMAIN}>")
    assert msg["Return-Path"] == f"<postmaster@{DOMAIN}>"
    site.ok("queue", "del", str(row["id"]))
    deposit(site, "alice@amx.test", path)
    [row] = site.json("queue", "list")
    assert row["sender"] == "postmaster@amx.test", row


def test_alias_member_over_quota_is_deferred(site, tmp_path):
    """SPEC §4/§6: accepted when one target can take it; the full mailbox's
    copy waits in the queue (and the summary says so)."""
    site.ok("alias", "add", "alice", "alice", "bob")
    site.ok("user", "set", "alice", "--quota", "1K")
    path, data = pcm(tmp_path, 4, rate=1000, sampwidth=1)
    _, _, delivered, queued = deposit(site, "alice", path)
    assert entries(site, "alice") == []
    assert [v["duration"] for v in vm_list(site, "bob")] == [4]
    rows = site.json("queue", "list")
    assert [r["recipient"] for r in rows] == [f"alice@{DOMAIN}"], rows
    assert (delivered, queued) == (1, 1)
