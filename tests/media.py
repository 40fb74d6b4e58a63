"""Media files for the voicemail and fax tests (SPEC §8): WAVE files made
with Python's wave module, by hand (for the lies a parser must catch) and
with sox (u-law, A-law, GSM 6.10); TIFF files written by hand with struct
(a header and a chain of IFDs, one per page, each with a tiny bilevel strip).

Only the standard library; sox is used when it is installed (Debian's sox
package), and the tests that need it skip with a reason when it is not.
"""
import random
import shutil
import struct
import subprocess
import wave

import pytest

# WAVE format tags (the fmt chunk's wFormatTag).
PCM = 0x0001
IEEE_FLOAT = 0x0003
ALAW = 0x0006
MULAW = 0x0007
GSM610 = 0x0031


def noise(n, seed=1):
    """n reproducible bytes that use every byte value (base64 must keep them)."""
    return random.Random(seed).randbytes(n)


def write_pcm_wav(path, seconds, rate=8000, channels=1, sampwidth=2, seed=1):
    """A PCM WAV of exactly seconds * rate sample frames, made with the
    wave module; returns its bytes."""
    frames = int(round(seconds * rate))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sampwidth)
        w.setframerate(rate)
        w.writeframes(noise(frames * channels * sampwidth, seed))
    return path.read_bytes()


def chunk(cid, body):
    """A RIFF chunk: id, little-endian size, body, pad byte when odd."""
    assert len(cid) == 4
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def wav_bytes(fmt_tag=PCM, channels=1, rate=8000, bits=16, data=b"", block_align=None,
              fact=None, data_len=None, riff_len=None, extra_chunks=()):
    """A WAVE file by hand.  data_len / riff_len override the sizes the
    headers claim (to make files that lie); fact adds a fact chunk with that
    sample count."""
    if block_align is None:
        block_align = channels * max(bits, 8) // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block_align, block_align, bits)
    body = b"WAVE" + chunk(b"fmt ", fmt)
    if fact is not None:
        body += chunk(b"fact", struct.pack("<I", fact))
    for c in extra_chunks:
        body += c
    d = chunk(b"data", data)
    if data_len is not None:
        d = b"data" + struct.pack("<I", data_len) + d[8:]
    body += d
    size = len(body) if riff_len is None else riff_len
    return b"RIFF" + struct.pack("<I", size) + body


def have_sox():
    return shutil.which("sox") is not None


def need_sox():
    if not have_sox():
        pytest.skip("sox is not installed (apt-get install sox)")


def sox_wav(path, encoding, seconds, rate=8000, channels=1, freq=440):
    """A WAV made by sox: encoding is a sox -e name (u-law, a-law,
    gsm-full-rate, signed-integer ...); skips the test, with sox's own
    words, when this sox cannot write it.  Returns the file's bytes."""
    need_sox()
    args = ["sox", "-n", "-r", str(rate), "-c", str(channels), "-e", encoding]
    if encoding in ("u-law", "a-law"):
        args += ["-b", "8"]
    args += ["-t", "wav", str(path), "synth", str(seconds), "sine", str(freq)]
    p = subprocess.run(args, capture_output=True, timeout=60)
    if p.returncode != 0 or not path.exists() or path.stat().st_size == 0:
        pytest.skip(f"this sox cannot write {encoding} in WAV: "
                    f"{p.stderr.decode(errors='replace').strip()}")
    return path.read_bytes()


def sox_info(path):
    """sox --info of a file, as {rate, channels, seconds, encoding}."""
    need_sox()

    def q(flag):
        p = subprocess.run(["sox", "--info", flag, str(path)], capture_output=True, timeout=60)
        assert p.returncode == 0, (flag, p.stderr)
        return p.stdout.decode().strip()

    return {"rate": int(float(q("-r"))), "channels": int(q("-c")),
            "seconds": float(q("-D")), "encoding": q("-e")}


# -- TIFF -----------------------------------------------------------------------

SHORT, LONG = 3, 4


def tiff_bytes(pages, order="II", width=8, length=8):
    """A minimal, valid multi-page bilevel TIFF: the 8-byte header, then for
    each page an IFD (ImageWidth, ImageLength, Compression=none,
    Photometric, StripOffsets, RowsPerStrip, StripByteCounts; entries sorted
    by tag; next-IFD offset chaining to the next page, 0 at the last) and
    its strip of uncompressed 1-bit rows."""
    assert order in ("II", "MM") and pages >= 1
    e = "<" if order == "II" else ">"
    row = (width + 7) // 8
    strip_len = row * length
    n_entries = 7
    ifd_len = 2 + 12 * n_entries + 4
    out = bytearray(order.encode() + struct.pack(e + "HI", 42, 8))
    for p in range(pages):
        ifd_off = len(out)
        strip_off = ifd_off + ifd_len
        next_off = strip_off + strip_len if p + 1 < pages else 0
        if next_off & 1:            # word-align IFDs, as writers do
            next_off += 1

        def entry(tag, typ, value):
            head = struct.pack(e + "HHI", tag, typ, 1)
            if typ == SHORT:
                return head + struct.pack(e + "H", value) + b"\0\0"
            return head + struct.pack(e + "I", value)

        out += struct.pack(e + "H", n_entries)
        out += entry(256, SHORT, width)
        out += entry(257, SHORT, length)
        out += entry(259, SHORT, 1)             # no compression
        out += entry(262, SHORT, 0)             # WhiteIsZero
        out += entry(273, LONG, strip_off)
        out += entry(278, SHORT, length)
        out += entry(279, LONG, strip_len)
        out += struct.pack(e + "I", next_off)
        out += bytes((p * 37 + i) & 0xFF for i in range(strip_len))
        if next_off and len(out) < next_off:
            out += b"\0" * (next_off - len(out))
    return bytes(out)


def tiff_ifd_past_end():
    """Header fine, first IFD offset far beyond the end of the file."""
    return b"II*\0" + struct.pack("<I", 100000) + b"\0" * 32


def tiff_bad_magic():
    return b"XX*\0" + struct.pack("<I", 8) + tiff_bytes(1)[8:]


def tiff_chain_cut():
    """Three pages, the file cut inside the third IFD: the chain's last
    link points past what is there."""
    t = tiff_bytes(3)
    e = "<"
    # offset of the third IFD: follow the chain
    off = struct.unpack(e + "I", t[4:8])[0]
    for _ in range(2):
        n = struct.unpack(e + "H", t[off:off + 2])[0]
        off = struct.unpack(e + "I", t[off + 2 + 12 * n:off + 6 + 12 * n])[0]
    return t[:off + 10]
