"""umboxctl mail speak MAILBOX UID [--out FILE] (SPEC §8): an email read
aloud as a telephone-ready WAVE file, 8 kHz mono 16-bit PCM.

Messages go into alice's mailbox with tests/tools/store-put (no daemon
needed); the files are checked with Python's wave module and with sox.
"""
import os
import pathlib
import shutil
import subprocess
import wave

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("UMBOX_BUILD", str(REPO / "build")))


def binary(name):
    path = BUILD / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is not built (run make, or set UMBOX_BUILD)")
    return path

PLAIN = (
    "From: Bob Smith <bob@example.org>\r\n"
    "To: alice@example.test\r\n"
    "Subject: Lunch tomorrow\r\n"
    "Date: Tue, 1 Dec 2020 15:05:00 +0000\r\n"
    "\r\n"
    "{body}\r\n"
)

HTML = (
    "From: Newsletter <news@example.org>\r\n"
    "Subject: News\r\n"
    "Date: Tue, 1 Dec 2020 15:05:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><head><style>p {{ color: red }}</style></head><body>\r\n"
    "<p>{body}</p><script>alert(1)</script></body></html>\r\n"
)


def put(site, message, login="alice", kind="email"):
    """Deliver message (str) to login's mailbox; returns its UID."""
    p = subprocess.run([str(binary("tests/tools/store-put")), str(site.config), login, kind],
                       input=message.encode(), capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode().strip()


def run_bytes(site, *args):
    """umboxctl with stdout as bytes."""
    cmd = [str(binary("umboxctl")), "-c", str(site.config)] + [str(a) for a in args]
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    return subprocess.run(cmd, capture_output=True, timeout=60, env=env, cwd=site.root)


def wav_info(path):
    """(rate, channels, sample width, seconds) of a WAVE file."""
    with wave.open(str(path), "rb") as w:
        assert w.getcomptype() == "NONE"
        return (w.getframerate(), w.getnchannels(), w.getsampwidth(),
                w.getnframes() / w.getframerate())


def speak(site, uid, name="x.wav"):
    out = site.root / name
    site.ok("mail", "speak", "alice", uid, "--out", out)
    rate, channels, width, seconds = wav_info(out)
    assert (rate, channels, width) == (8000, 1, 2)
    return out, seconds


def test_plain_message(site):
    uid = put(site, PLAIN.format(body="Shall we meet for lunch at noon tomorrow?"))
    out, seconds = speak(site, uid)
    # "Message from Bob Smith, subject ..., received ... End of message."
    assert 5 < seconds < 30
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    # Nothing left beside it.
    assert sorted(p.name for p in site.root.iterdir() if p.name.startswith("x.wav")) == ["x.wav"]


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_sox_reads_it(site):
    uid = put(site, PLAIN.format(body="Hello."))
    out, seconds = speak(site, uid)
    info = subprocess.run(["sox", "--info", str(out)], capture_output=True, text=True,
                          check=True).stdout
    assert "Channels       : 1" in info
    assert "Sample Rate    : 8000" in info
    assert "Precision      : 16-bit" in info
    assert "Signed Integer PCM" in info
    # Speech, not silence: the peak is well above the floor.
    stat = subprocess.run(["sox", str(out), "-n", "stat"], capture_output=True, text=True,
                          check=True).stderr
    peak = float(next(l.split(":")[1] for l in stat.splitlines()
                      if l.startswith("Maximum amplitude")))
    assert peak > 0.1


def test_longer_body_longer_audio(site):
    short = put(site, PLAIN.format(body="Yes."))
    long = put(site, PLAIN.format(body=" ".join(["The quarterly figures are ready for review."] * 8)))
    _, s1 = speak(site, short, "short.wav")
    _, s2 = speak(site, long, "long.wav")
    assert s2 > s1 + 10


def test_length_is_capped(site):
    """A huge body is cut to a few minutes of speech."""
    uid = put(site, PLAIN.format(body="word " * 100000))
    _, seconds = speak(site, uid)
    assert 60 < seconds < 600


def test_stdout_same_bytes(site):
    uid = put(site, PLAIN.format(body="Same either way."))
    out, _ = speak(site, uid)
    p = run_bytes(site, "mail", "speak", "alice", uid)
    assert p.returncode == 0, p.stderr
    assert p.stdout == out.read_bytes()
    assert p.stdout[:4] == b"RIFF" and p.stdout[8:12] == b"WAVE"
    # By extension too, and with --out=FILE.
    p = run_bytes(site, "mail", "speak", "100", uid, f"--out={site.root / 'y.wav'}")
    assert p.returncode == 0 and p.stdout == b""
    assert (site.root / "y.wav").read_bytes() == out.read_bytes()


def test_out_replaces_file(site):
    uid = put(site, PLAIN.format(body="Replace it."))
    target = site.root / "x.wav"
    target.write_bytes(b"old contents " * 100000)
    out, _ = speak(site, uid)
    assert out.read_bytes()[:4] == b"RIFF"


def test_html_only(site):
    uid = put(site, HTML.format(body="Fish &amp; chips for everyone on Friday, "
                                     "in the canteen at one o&#39;clock."))
    _, seconds = speak(site, uid)
    assert seconds > 6


def test_unknown(site):
    site.fail(4, "mail", "speak", "alice", "no-such-uid", "--out", site.root / "x.wav")
    site.fail(4, "mail", "speak", "nobody", "1", "--out", site.root / "x.wav")
    assert not (site.root / "x.wav").exists()


def test_usage(site):
    uid = put(site, PLAIN.format(body="Hi."))
    site.fail(2, "mail", "speak", "alice")
    site.fail(2, "mail", "speak", "alice", uid, "extra")
    site.fail(2, "mail", "speak", "alice", uid, "--out")
    site.fail(2, "mail", "speak", "alice", uid, "--loud")


def test_voicemail_is_played_not_spoken(site):
    uid = put(site, PLAIN.format(body="A voicemail."), kind="voicemail")
    r = site.fail(1, "mail", "speak", "alice", uid, "--out", site.root / "x.wav")
    assert "voicemail play" in r.err
    assert not (site.root / "x.wav").exists()


def test_unwritable_out(site):
    uid = put(site, PLAIN.format(body="Hi."))
    site.fail(1, "mail", "speak", "alice", uid, "--out", site.root / "no-dir" / "x.wav")


def test_speech_voice(site):
    uid = put(site, PLAIN.format(body="Guten Tag."))
    site.write_config("[voicemail]\nspeech_voice = de\n")
    speak(site, uid)
    site.write_config("[voicemail]\nspeech_voice = xx-none\n")
    r = site.fail(1, "mail", "speak", "alice", uid, "--out", site.root / "z.wav")
    assert "xx-none" in r.err
    assert not (site.root / "z.wav").exists()
