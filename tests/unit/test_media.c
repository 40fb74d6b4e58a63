/*
 * test_media.c - unit tests for lib/wav.c and lib/tiff.c: WAVE headers
 * and TIFF page chains.
 *
 * The files are built here in memory, field by field.  Every parse goes
 * through a heap copy of exactly the bytes offered, so AddressSanitizer
 * reports any read past the end; every cut of a valid file must be
 * refused, with a message.
 */
#include "tests/unit/testutil.h"

#include "lib/media.h"

/* A growing byte buffer and its writers. */
struct buf {
	unsigned char *d;
	size_t n, cap;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->d = realloc(b->d, b->cap);
		assert_non_null(b->d);
	}
	if (n > 0)
		memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void
put_zeros(struct buf *b, size_t n)
{
	unsigned char z[256] = { 0 };

	while (n > 0) {
		size_t k = n < sizeof(z) ? n : sizeof(z);

		put(b, z, k);
		n -= k;
	}
}

static void
put8(struct buf *b, unsigned v)
{
	unsigned char c = (unsigned char)v;

	put(b, &c, 1);
}

static void
put16(struct buf *b, int big, unsigned v)
{
	unsigned char c[2] = { (unsigned char)v, (unsigned char)(v >> 8) };

	if (big) {
		c[0] = (unsigned char)(v >> 8);
		c[1] = (unsigned char)v;
	}
	put(b, c, 2);
}

static void
put32(struct buf *b, int big, uint32_t v)
{
	if (big) {
		put16(b, 1, v >> 16);
		put16(b, 1, v & 0xffff);
	} else {
		put16(b, 0, v & 0xffff);
		put16(b, 0, v >> 16);
	}
}

static void
set32(struct buf *b, size_t at, int big, uint32_t v)
{
	struct buf t = { 0 };

	put32(&t, big, v);
	memcpy(b->d + at, t.d, 4);
	free(t.d);
}

static void
set16(struct buf *b, size_t at, int big, unsigned v)
{
	struct buf t = { 0 };

	put16(&t, big, v);
	memcpy(b->d + at, t.d, 2);
	free(t.d);
}

static void
buf_free(struct buf *b)
{
	free(b->d);
	memset(b, 0, sizeof(*b));
}

/* --- WAVE --- */

/* "RIFF" ???? "WAVE"; riff_close() fills in the size. */
static void
riff_open(struct buf *b)
{
	put(b, "RIFF", 4);
	put32(b, 0, 0);
	put(b, "WAVE", 4);
}

static void
riff_close(struct buf *b)
{
	set32(b, 4, 0, (uint32_t)(b->n - 8));
}

/* A chunk with n bytes of body (zeros when body is NULL), padded. */
static void
chunk(struct buf *b, const char *id, const void *body, size_t n)
{
	put(b, id, 4);
	put32(b, 0, (uint32_t)n);
	if (body != NULL)
		put(b, body, n);
	else
		put_zeros(b, n);
	if (n & 1)
		put8(b, 0);
}

static void
fmt_chunk(struct buf *b, unsigned format, unsigned channels, unsigned rate,
    unsigned bits, unsigned align)
{
	struct buf f = { 0 };

	put16(&f, 0, format);
	put16(&f, 0, channels);
	put32(&f, 0, rate);
	put32(&f, 0, format == WAV_FORMAT_GSM610 ? rate * 65 / 320 :
	    rate * align);
	put16(&f, 0, align);
	put16(&f, 0, bits);
	if (format == WAV_FORMAT_GSM610) {
		put16(&f, 0, 2);	/* cbSize */
		put16(&f, 0, WAV_GSM_BLOCK_SAMPLES);
	}
	chunk(b, "fmt ", f.d, f.n);
	buf_free(&f);
}

static void
fact_chunk(struct buf *b, uint32_t samples)
{
	struct buf f = { 0 };

	put32(&f, 0, samples);
	chunk(b, "fact", f.d, f.n);
	buf_free(&f);
}

/* A whole simple file: fmt then data_len bytes of data. */
static void
wav_simple(struct buf *b, unsigned format, unsigned channels, unsigned rate,
    unsigned bits, unsigned align, size_t data_len)
{
	riff_open(b);
	fmt_chunk(b, format, channels, rate, bits, align);
	chunk(b, "data", NULL, data_len);
	riff_close(b);
}

/* Parse a heap copy of exactly n bytes of p; err must be terminated. */
static int
wav_try(const void *p, size_t n, const struct media_limits *lim,
    struct wav_info *w, char *err, size_t errlen)
{
	unsigned char *copy = malloc(n > 0 ? n : 1);
	int rc;

	assert_non_null(copy);
	if (n > 0)
		memcpy(copy, p, n);
	memset(err, 'x', errlen);
	rc = wav_parse(copy, n, lim, w, err, errlen);
	free(copy);
	assert_true(rc == 0 || rc == -1);
	if (errlen > 0) {
		assert_non_null(memchr(err, '\0', errlen));
		assert_true(rc == 0 ? err[0] == '\0' : err[0] != '\0');
	}
	return rc;
}

static void
wav_ok(const struct buf *b, const struct media_limits *lim,
    struct wav_info *w)
{
	char err[MEDIA_ERR_MAX];

	if (wav_try(b->d, b->n, lim, w, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
}

static void
wav_refused(const struct buf *b, const struct media_limits *lim,
    const char *msg)
{
	struct wav_info w;
	char err[MEDIA_ERR_MAX];

	assert_int_equal(wav_try(b->d, b->n, lim, &w, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
	assert_int_equal(w.samples, 0);
	assert_int_equal(w.rate, 0);
}

/* Every proper prefix of b is refused. */
static void
wav_every_cut(const struct buf *b)
{
	struct wav_info w;
	char err[MEDIA_ERR_MAX];

	for (size_t n = 0; n < b->n; n++) {
		if (wav_try(b->d, n, NULL, &w, err, sizeof(err)) != -1)
			fail_msg("a cut at %zu of %zu was accepted", n, b->n);
	}
	assert_int_equal(wav_try(b->d, b->n, NULL, &w, err, sizeof(err)), 0);
}

static void
test_wav_pcm(void **state)
{
	struct buf b = { 0 };
	struct wav_info w;

	wav_simple(&b, WAV_FORMAT_PCM, 2, 44100, 16, 4, 44100 * 4);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.format, WAV_FORMAT_PCM);
	assert_int_equal(w.channels, 2);
	assert_int_equal(w.rate, 44100);
	assert_int_equal(w.bits, 16);
	assert_int_equal(w.block_align, 4);
	assert_int_equal(w.data_len, 44100 * 4);
	assert_int_equal(w.samples, 44100);
	assert_int_equal(w.seconds, 1);
	assert_int_equal(w.millis, 1000);
	buf_free(&b);

	/* 8-bit mono; a partial frame at the end does not count. */
	wav_simple(&b, WAV_FORMAT_PCM, 1, 11025, 8, 1, 5000);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.samples, 5000);
	assert_int_equal(w.millis, 454);	/* 453.51 */
	assert_int_equal(w.seconds, 0);
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_PCM, 2, 8000, 16, 4, 8003);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.samples, 2000);
	assert_int_equal(w.millis, 250);
	buf_free(&b);
}

/* Durations round half up: 3.5 s is 4, 3.499 s is 3. */
static void
test_wav_laws_rounding(void **state)
{
	struct buf b = { 0 };
	struct wav_info w;

	wav_simple(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 1, 28000);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.format, WAV_FORMAT_MULAW);
	assert_int_equal(w.samples, 28000);
	assert_int_equal(w.millis, 3500);
	assert_int_equal(w.seconds, 4);
	buf_free(&b);

	wav_simple(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 1, 27992);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.millis, 3499);
	assert_int_equal(w.seconds, 3);
	buf_free(&b);

	/* 0.0625 ms rounds to 0 ms; 4 samples at 8 kHz are 0.5 ms: 1. */
	wav_simple(&b, WAV_FORMAT_ALAW, 2, 8000, 8, 2, 8);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.format, WAV_FORMAT_ALAW);
	assert_int_equal(w.samples, 4);
	assert_int_equal(w.millis, 1);
	assert_int_equal(w.seconds, 0);
	buf_free(&b);

	/* No data at all is a valid, empty recording. */
	wav_simple(&b, WAV_FORMAT_ALAW, 1, 8000, 8, 1, 0);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.samples, 0);
	assert_int_equal(w.millis, 0);
	buf_free(&b);
}

static void
test_wav_gsm(void **state)
{
	struct buf b = { 0 };
	struct wav_info w;

	/* 50 blocks of 65 bytes, 320 samples each: 2 s at 8 kHz. */
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_GSM610, 1, 8000, 0, 65);
	fact_chunk(&b, 16000);
	chunk(&b, "data", NULL, 50 * 65);
	riff_close(&b);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.format, WAV_FORMAT_GSM610);
	assert_int_equal(w.block_align, 65);
	assert_int_equal(w.samples, 16000);
	assert_int_equal(w.seconds, 2);
	assert_int_equal(w.millis, 2000);
	wav_every_cut(&b);
	buf_free(&b);

	/* The fact count wins over the blocks: the last block half used. */
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_GSM610, 1, 8000, 0, 65);
	fact_chunk(&b, 16000 - 160);
	chunk(&b, "data", NULL, 50 * 65);
	riff_close(&b);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.samples, 15840);
	assert_int_equal(w.millis, 1980);
	buf_free(&b);

	/* Without fact: 320 per whole block, a partial block not counted. */
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_GSM610, 1, 8000, 0, 65);
	chunk(&b, "data", NULL, 50 * 65 + 33);
	riff_close(&b);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.samples, 16000);
	assert_int_equal(w.seconds, 2);
	buf_free(&b);

	/* A fact count may use the partial block, not more. */
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_GSM610, 1, 8000, 0, 65);
	fact_chunk(&b, 51 * 320);
	chunk(&b, "data", NULL, 50 * 65 + 33);
	riff_close(&b);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.samples, 16320);
	buf_free(&b);
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_GSM610, 1, 8000, 0, 65);
	fact_chunk(&b, 16001);
	chunk(&b, "data", NULL, 50 * 65);
	riff_close(&b);
	wav_refused(&b, NULL,
	    "fact chunk says 16001 samples but the data holds at most 16000");
	buf_free(&b);

	wav_simple(&b, WAV_FORMAT_GSM610, 2, 8000, 0, 65, 650);
	wav_refused(&b, NULL, "GSM 6.10 with 2 channels is not supported");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_GSM610, 1, 8000, 0, 33, 660);
	wav_refused(&b, NULL, "GSM 6.10 block align 33, expected 65");
	buf_free(&b);

	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_GSM610, 1, 8000, 0, 65);
	chunk(&b, "fact", NULL, 3);
	chunk(&b, "data", NULL, 650);
	riff_close(&b);
	wav_refused(&b, NULL, "fact chunk is 3 bytes, fewer than 4");
	buf_free(&b);

	/* PCM has no use for a fact chunk, whole or not. */
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 16, 2);
	chunk(&b, "fact", NULL, 3);
	chunk(&b, "data", NULL, 16000);
	riff_close(&b);
	{
		struct wav_info pw;

		wav_ok(&b, NULL, &pw);
		assert_int_equal(pw.samples, 8000);
		assert_int_equal(pw.seconds, 1);
	}
	buf_free(&b);
}

/*
 * Chunks in any order, unknown ones skipped, odd ones padded: every
 * arrangement reads the same.
 */
static void
test_wav_chunk_order(void **state)
{
	static const char odd[] = "INFOISFT\x05\0\0\0abcde";	/* 17 bytes */
	struct buf b = { 0 };
	struct wav_info w;

	for (int order = 0; order < 4; order++) {
		riff_open(&b);
		switch (order) {
		case 0:
			fmt_chunk(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 1);
			chunk(&b, "LIST", odd, 17);
			chunk(&b, "data", NULL, 8000);
			break;
		case 1:
			chunk(&b, "data", NULL, 8000);
			chunk(&b, "LIST", odd, 17);
			fmt_chunk(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 1);
			break;
		case 2:
			chunk(&b, "LIST", odd, 17);
			chunk(&b, "data", NULL, 8000);
			chunk(&b, "junk", NULL, 1);
			fmt_chunk(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 1);
			break;
		case 3:
			fmt_chunk(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 1);
			chunk(&b, "data", NULL, 8000);
			chunk(&b, "LIST", odd, 17);
			break;
		}
		riff_close(&b);
		assert_int_equal(b.n % 2, 0);
		wav_ok(&b, NULL, &w);
		assert_int_equal(w.format, WAV_FORMAT_MULAW);
		assert_int_equal(w.samples, 8000);
		assert_int_equal(w.seconds, 1);
		wav_every_cut(&b);
		buf_free(&b);
	}

	/* The pad byte of an odd data chunk is counted as a pad, not data. */
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1);
	chunk(&b, "data", NULL, 7999);
	chunk(&b, "LIST", odd, 17);
	riff_close(&b);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.data_len, 7999);
	buf_free(&b);
}

/* A missing pad at the very end, and bytes after the RIFF, are fine. */
static void
test_wav_tolerated(void **state)
{
	struct buf b = { 0 };
	struct wav_info w;

	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1);
	chunk(&b, "data", NULL, 8001);
	b.n--;		/* the pad */
	riff_close(&b);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.data_len, 8001);
	assert_int_equal(w.seconds, 1);
	buf_free(&b);

	wav_simple(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1, 8000);
	put(&b, "garbage after the RIFF", 22);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.data_len, 8000);
	buf_free(&b);

	/* A longer fmt (WAVEFORMATEX with cbSize) is read the same. */
	riff_open(&b);
	{
		struct buf f = { 0 };

		put16(&f, 0, WAV_FORMAT_PCM);
		put16(&f, 0, 1);
		put32(&f, 0, 16000);
		put32(&f, 0, 32000);
		put16(&f, 0, 2);
		put16(&f, 0, 16);
		put16(&f, 0, 0);
		chunk(&b, "fmt ", f.d, f.n);
		buf_free(&f);
	}
	chunk(&b, "data", NULL, 32000 * 3);
	riff_close(&b);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.rate, 16000);
	assert_int_equal(w.seconds, 3);
	buf_free(&b);
}

/* Every cut of a valid file is refused. */
static void
test_wav_truncated(void **state)
{
	struct buf b = { 0 };

	wav_simple(&b, WAV_FORMAT_PCM, 2, 8000, 16, 4, 400);
	wav_every_cut(&b);
	buf_free(&b);

	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_ALAW, 1, 8000, 8, 1);
	chunk(&b, "data", NULL, 101);
	chunk(&b, "cue ", NULL, 3);
	riff_close(&b);
	wav_every_cut(&b);
	buf_free(&b);
}

static void
test_wav_not_wave(void **state)
{
	struct buf b = { 0 };

	wav_refused(&b, NULL, "not a RIFF file");
	put(&b, "RIF", 3);
	wav_refused(&b, NULL, "not a RIFF file");
	buf_free(&b);
	put(&b, "RIFX\x24\0\0\0WAVE", 12);
	wav_refused(&b, NULL, "not a RIFF file");
	buf_free(&b);
	put(&b, "ID3\x03\0\0\0\0\0\0\0\0\0\0\0\0", 16);
	wav_refused(&b, NULL, "not a RIFF file");
	buf_free(&b);
	put(&b, "RIFF\x04\0\0", 7);
	wav_refused(&b, NULL, "RIFF file cut short at 7 bytes");
	buf_free(&b);
	put(&b, "RIFF\x04\0\0\0AVI ", 12);
	wav_refused(&b, NULL, "RIFF file but not WAVE");
	buf_free(&b);
	put(&b, "RIFF\x02\0\0\0WAVE", 12);
	wav_refused(&b, NULL, "RIFF size 2 is too small for WAVE");
	buf_free(&b);
}

static void
test_wav_chunk_errors(void **state)
{
	struct buf b = { 0 };

	riff_open(&b);
	riff_close(&b);
	wav_refused(&b, NULL, "no fmt chunk");
	buf_free(&b);

	riff_open(&b);
	chunk(&b, "data", NULL, 100);
	riff_close(&b);
	wav_refused(&b, NULL, "no fmt chunk");
	buf_free(&b);

	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1);
	chunk(&b, "LIST", NULL, 10);
	riff_close(&b);
	wav_refused(&b, NULL, "no data chunk");
	buf_free(&b);

	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1);
	chunk(&b, "data", NULL, 10);
	riff_close(&b);
	wav_refused(&b, NULL, "more than one fmt chunk");
	buf_free(&b);

	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1);
	chunk(&b, "data", NULL, 10);
	chunk(&b, "data", NULL, 10);
	riff_close(&b);
	wav_refused(&b, NULL, "more than one data chunk");
	buf_free(&b);

	riff_open(&b);
	chunk(&b, "fmt ", "\x01\0\x01\0\x40\x1f\0\0\x40\x1f\0\0\x01\0", 14);
	chunk(&b, "data", NULL, 10);
	riff_close(&b);
	wav_refused(&b, NULL, "fmt chunk is 14 bytes, fewer than 16");
	buf_free(&b);

	/* A data chunk that claims 9 MB with 2 KB left in the file. */
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1);
	chunk(&b, "data", NULL, 2048);
	riff_close(&b);
	set32(&b, b.n - 2048 - 4, 0, 9 * 1024 * 1024);
	wav_refused(&b, NULL,
	    "WAVE data chunk says 9 MB but the file has 2 KB");
	buf_free(&b);

	/* Sizes that read the same in words are given in bytes. */
	riff_open(&b);
	fmt_chunk(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1);
	chunk(&b, "data", NULL, 2048);
	chunk(&b, "\x01xy ", NULL, 2);
	riff_close(&b);
	set32(&b, b.n - 4 - 2, 0, 3);
	wav_refused(&b, NULL,
	    "WAVE ?xy chunk says 3 bytes but the file has 2 bytes");
	set32(&b, b.n - 2048 - 4 - 10, 0, 2060);
	wav_refused(&b, NULL,
	    "WAVE data chunk says 2060 bytes but the file has 2058 bytes");
	buf_free(&b);

	/* The RIFF claims more than the file: the file was cut. */
	wav_simple(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1, 3 << 20);
	b.n = 1 << 20;
	wav_refused(&b, NULL, "RIFF header says 3 MB but the file has 1 MB");
	/* The whole file's length, as ls shows it. */
	b.n = 60;
	wav_refused(&b, NULL, "RIFF header says 3 MB but the file has 60 bytes");
	buf_free(&b);

	/* A few bytes inside the RIFF that cannot be a chunk header. */
	wav_simple(&b, WAV_FORMAT_PCM, 1, 8000, 8, 1, 10);
	put(&b, "LIS", 3);
	riff_close(&b);
	wav_refused(&b, NULL, "WAVE chunk header at offset 54 runs past the "
	    "end of the RIFF");
	buf_free(&b);
}

static void
test_wav_format_errors(void **state)
{
	struct buf b = { 0 };

	wav_simple(&b, 0x55, 1, 8000, 0, 1, 100);
	wav_refused(&b, NULL, "unsupported WAVE format 0x0055 (MPEG)");
	buf_free(&b);
	wav_simple(&b, 0x1234, 1, 8000, 0, 1, 100);
	wav_refused(&b, NULL, "unsupported WAVE format 0x1234 (unknown)");
	buf_free(&b);
	wav_simple(&b, 0xfffe, 1, 8000, 16, 2, 100);
	wav_refused(&b, NULL, "unsupported WAVE format 0xfffe (extensible)");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_PCM, 1, 8000, 24, 3, 300);
	wav_refused(&b, NULL, "PCM with 24 bits per sample is not supported");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_MULAW, 1, 8000, 16, 2, 300);
	wav_refused(&b, NULL, "u-law with 16 bits per sample is not supported");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_ALAW, 1, 8000, 4, 1, 300);
	wav_refused(&b, NULL, "A-law with 4 bits per sample is not supported");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_PCM, 0, 8000, 16, 2, 300);
	wav_refused(&b, NULL, "0 channels");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_PCM, 3, 8000, 16, 6, 300);
	wav_refused(&b, NULL, "3 channels, at most 2 supported");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_PCM, 1, 0, 16, 2, 300);
	wav_refused(&b, NULL, "sample rate 0");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_PCM, 1, 192001, 16, 2, 300);
	wav_refused(&b, NULL, "sample rate 192001 is above 192000");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_PCM, 2, 8000, 16, 2, 300);
	wav_refused(&b, NULL, "block align 2, expected 4 for 2 channels of "
	    "16 bits");
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 0, 300);
	wav_refused(&b, NULL, "block align 0, expected 1 for 1 channel of "
	    "8 bits");
	buf_free(&b);
}

static void
test_wav_limits(void **state)
{
	struct media_limits lim = { .max_seconds = 2 };
	struct buf b = { 0 };
	struct wav_info w;

	wav_simple(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 1, 16000);
	wav_ok(&b, &lim, &w);
	assert_int_equal(w.seconds, 2);
	buf_free(&b);
	/* 2000.125 ms is over, though it rounds to 2000. */
	wav_simple(&b, WAV_FORMAT_MULAW, 1, 8000, 8, 1, 16001);
	wav_refused(&b, &lim,
	    "2.001 seconds is longer than the limit of 2 seconds");
	buf_free(&b);

	/* No limits, or a limit of 0: an hour. */
	wav_simple(&b, WAV_FORMAT_PCM, 1, 1, 8, 1, 3600);
	wav_ok(&b, NULL, &w);
	assert_int_equal(w.seconds, 3600);
	lim.max_seconds = 0;
	wav_ok(&b, &lim, &w);
	buf_free(&b);
	wav_simple(&b, WAV_FORMAT_PCM, 1, 1, 8, 1, 3601);
	wav_refused(&b, NULL,
	    "3601.000 seconds is longer than the limit of 3600 seconds");
	wav_refused(&b, &lim,
	    "3601.000 seconds is longer than the limit of 3600 seconds");
	buf_free(&b);
}

/* err is cut to errlen and terminated; errlen 0 writes nothing. */
static void
test_wav_err_buffer(void **state)
{
	struct buf b = { 0 };
	struct wav_info w;
	char err[8];

	put(&b, "nothing", 7);
	assert_int_equal(wav_try(b.d, b.n, NULL, &w, err, sizeof(err)), -1);
	assert_string_equal(err, "not a R");
	assert_int_equal(wav_parse(b.d, b.n, NULL, &w, NULL, 0), -1);
	buf_free(&b);
}

static void
test_wav_format_name(void **state)
{
	assert_string_equal(wav_format_name(WAV_FORMAT_PCM), "PCM");
	assert_string_equal(wav_format_name(WAV_FORMAT_MULAW), "u-law");
	assert_string_equal(wav_format_name(WAV_FORMAT_ALAW), "A-law");
	assert_string_equal(wav_format_name(WAV_FORMAT_GSM610), "GSM 6.10");
	assert_string_equal(wav_format_name(0x55), "MPEG");
	assert_string_equal(wav_format_name(0x4242), "unknown");
}

/* --- TIFF --- */

#define FAX_WIDTH	1728
#define FAX_LENGTH	2200

/*
 * A TIFF of pages IFDs laid out one after another from offset 8, each
 * with ImageWidth (SHORT), ImageLength (LONG) and Compression, chained in
 * order, the last pointing to 0.  *ifd (when not NULL) gets each IFD's
 * offset; an IFD is 2 + 3 * 12 + 4 = 42 bytes.
 */
#define IFD_SIZE	42

static void
tiff_build(struct buf *b, int big, unsigned pages, size_t *ifd)
{
	put(b, big ? "MM" : "II", 2);
	put16(b, big, 42);
	put32(b, big, 8);
	for (unsigned i = 0; i < pages; i++) {
		if (ifd != NULL)
			ifd[i] = b->n;
		put16(b, big, 3);
		put16(b, big, 256);			/* ImageWidth */
		put16(b, big, 3);			/* SHORT */
		put32(b, big, 1);
		put16(b, big, FAX_WIDTH + i);
		put16(b, big, 0);
		put16(b, big, 257);			/* ImageLength */
		put16(b, big, 4);			/* LONG */
		put32(b, big, 1);
		put32(b, big, FAX_LENGTH + i);
		put16(b, big, 259);			/* Compression */
		put16(b, big, 3);
		put32(b, big, 1);
		put16(b, big, 3);			/* T.4 */
		put16(b, big, 0);
		put32(b, big, i + 1 < pages ? (uint32_t)(b->n + 4) : 0);
	}
}

/* The next-IFD field of the IFD at off (3 entries). */
#define NEXT_AT(off)	((off) + 2 + 3 * 12)

static int
tiff_try(const void *p, size_t n, const struct media_limits *lim,
    struct tiff_info *t, char *err, size_t errlen)
{
	unsigned char *copy = malloc(n > 0 ? n : 1);
	int rc;

	assert_non_null(copy);
	if (n > 0)
		memcpy(copy, p, n);
	memset(err, 'x', errlen);
	rc = tiff_parse(copy, n, lim, t, err, errlen);
	free(copy);
	assert_true(rc == 0 || rc == -1);
	if (errlen > 0) {
		assert_non_null(memchr(err, '\0', errlen));
		assert_true(rc == 0 ? err[0] == '\0' : err[0] != '\0');
	}
	return rc;
}

static void
tiff_ok(const struct buf *b, const struct media_limits *lim,
    struct tiff_info *t)
{
	char err[MEDIA_ERR_MAX];

	if (tiff_try(b->d, b->n, lim, t, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
}

static void
tiff_refused(const struct buf *b, const struct media_limits *lim,
    const char *msg)
{
	struct tiff_info t;
	char err[MEDIA_ERR_MAX];

	assert_int_equal(tiff_try(b->d, b->n, lim, &t, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
	assert_int_equal(t.pages, 0);
	assert_int_equal(t.width, 0);
}

static void
test_tiff_pages(void **state)
{
	struct buf b = { 0 };
	struct tiff_info t;

	for (int big = 0; big <= 1; big++) {
		tiff_build(&b, big, 1, NULL);
		tiff_ok(&b, NULL, &t);
		assert_int_equal(t.pages, 1);
		assert_int_equal(t.width, FAX_WIDTH);
		assert_int_equal(t.length, FAX_LENGTH);
		buf_free(&b);

		tiff_build(&b, big, 3, NULL);
		tiff_ok(&b, NULL, &t);
		assert_int_equal(t.pages, 3);
		assert_int_equal(t.width, FAX_WIDTH);	/* the first page's */
		assert_int_equal(t.length, FAX_LENGTH);
		/* Bytes after the last IFD (strip data) change nothing. */
		put_zeros(&b, 100);
		tiff_ok(&b, NULL, &t);
		assert_int_equal(t.pages, 3);
		buf_free(&b);
	}
}

/* IFDs out of order: the chain goes 8 -> last -> middle. */
static void
test_tiff_order(void **state)
{
	struct buf b = { 0 };
	struct tiff_info t;
	size_t ifd[3];

	tiff_build(&b, 1, 3, ifd);
	set32(&b, NEXT_AT(ifd[0]), 1, (uint32_t)ifd[2]);
	set32(&b, NEXT_AT(ifd[2]), 1, (uint32_t)ifd[1]);
	set32(&b, NEXT_AT(ifd[1]), 1, 0);
	tiff_ok(&b, NULL, &t);
	assert_int_equal(t.pages, 3);
	buf_free(&b);

	/* The first IFD at the end, as many writers put it. */
	put(&b, "II", 2);
	put16(&b, 0, 42);
	put32(&b, 0, 8 + 10);
	put_zeros(&b, 10);
	put16(&b, 0, 1);
	put16(&b, 0, 256);
	put16(&b, 0, 4);	/* LONG */
	put32(&b, 0, 1);
	put32(&b, 0, 70000);
	put32(&b, 0, 0);
	tiff_ok(&b, NULL, &t);
	assert_int_equal(t.pages, 1);
	assert_int_equal(t.width, 70000);
	assert_int_equal(t.length, 0);		/* absent */
	/* A width of another type, or count 2, is left out. */
	set16(&b, 18 + 4, 0, 5);		/* RATIONAL */
	tiff_ok(&b, NULL, &t);
	assert_int_equal(t.width, 0);
	set16(&b, 18 + 4, 0, 4);
	set32(&b, 18 + 6, 0, 2);
	tiff_ok(&b, NULL, &t);
	assert_int_equal(t.width, 0);
	buf_free(&b);
}

static void
test_tiff_loops(void **state)
{
	struct buf b = { 0 };
	size_t ifd[6];

	for (int big = 0; big <= 1; big++) {
		/* An IFD pointing to itself. */
		tiff_build(&b, big, 1, ifd);
		set32(&b, NEXT_AT(ifd[0]), big, (uint32_t)ifd[0]);
		tiff_refused(&b, NULL, "TIFF IFD chain loops");
		buf_free(&b);

		/* Back to the first, and back into the middle. */
		for (unsigned to = 0; to < 6; to++) {
			tiff_build(&b, big, 6, ifd);
			set32(&b, NEXT_AT(ifd[5]), big, (uint32_t)ifd[to]);
			tiff_refused(&b, NULL, "TIFF IFD chain loops");
			buf_free(&b);
		}
	}
}

static void
test_tiff_page_cap(void **state)
{
	struct media_limits lim = { .max_pages = 4 };
	struct buf b = { 0 };
	struct tiff_info t;
	size_t ifd[1001];

	tiff_build(&b, 0, 4, NULL);
	tiff_ok(&b, &lim, &t);
	assert_int_equal(t.pages, 4);
	buf_free(&b);
	tiff_build(&b, 0, 5, NULL);
	tiff_refused(&b, &lim, "TIFF has more than 4 pages");
	buf_free(&b);

	/* The default is 1000. */
	tiff_build(&b, 1, 1000, NULL);
	tiff_ok(&b, NULL, &t);
	assert_int_equal(t.pages, 1000);
	buf_free(&b);
	tiff_build(&b, 1, 1001, ifd);
	tiff_refused(&b, NULL, "TIFF has more than 1000 pages");
	/* A loop longer than half the cap may be refused as too long. */
	set32(&b, NEXT_AT(ifd[999]), 1, (uint32_t)ifd[0]);
	tiff_refused(&b, NULL, "TIFF has more than 1000 pages");
	set32(&b, NEXT_AT(ifd[199]), 1, (uint32_t)ifd[0]);
	tiff_refused(&b, NULL, "TIFF IFD chain loops");
	buf_free(&b);
}

static void
test_tiff_errors(void **state)
{
	struct buf b = { 0 };
	char msg[MEDIA_ERR_MAX];
	size_t ifd[3];

	tiff_refused(&b, NULL, "not a TIFF file");
	put(&b, "II*\0\x08\0\0", 7);
	tiff_refused(&b, NULL, "not a TIFF file");
	buf_free(&b);
	put(&b, "IM*\0\x08\0\0\0", 8);
	tiff_refused(&b, NULL, "not a TIFF file");
	buf_free(&b);
	put(&b, "MM\0\x2a\x08\0\0\0", 8);	/* big-endian 42 read little */
	b.d[0] = b.d[1] = 'I';
	tiff_refused(&b, NULL, "not a TIFF file");
	buf_free(&b);
	put(&b, "II+\0\x08\0\0\0", 8);
	tiff_refused(&b, NULL, "BigTIFF is not supported");
	buf_free(&b);

	tiff_build(&b, 0, 1, NULL);
	set32(&b, 4, 0, 0);
	tiff_refused(&b, NULL, "TIFF has no pages");
	set32(&b, 4, 0, (uint32_t)b.n);
	tiff_refused(&b, NULL, "TIFF IFD offset past end of file");
	set32(&b, 4, 0, 0xffffffff);
	tiff_refused(&b, NULL, "TIFF IFD offset past end of file");
	set32(&b, 4, 0, 4);
	tiff_refused(&b, NULL, "TIFF IFD offset 4 is inside the header");
	buf_free(&b);

	/* The next offset past the end, on the last page. */
	tiff_build(&b, 1, 3, ifd);
	set32(&b, NEXT_AT(ifd[2]), 1, (uint32_t)b.n + 100);
	tiff_refused(&b, NULL, "TIFF IFD offset past end of file");
	/* Into the last 1 byte: not even a count fits. */
	set32(&b, NEXT_AT(ifd[2]), 1, (uint32_t)b.n - 1);
	snprintf(msg, sizeof(msg), "TIFF IFD at offset %zu runs past the end "
	    "of the file", b.n - 1);
	tiff_refused(&b, NULL, msg);
	buf_free(&b);

	/* An entry count running past the end. */
	tiff_build(&b, 0, 2, ifd);
	set16(&b, ifd[1], 0, 4);
	snprintf(msg, sizeof(msg), "TIFF IFD at offset %zu runs past the end "
	    "of the file", ifd[1]);
	tiff_refused(&b, NULL, msg);
	set16(&b, ifd[1], 0, 0xffff);
	tiff_refused(&b, NULL, msg);
	set16(&b, ifd[0], 0, 0xffff);
	tiff_refused(&b, NULL,
	    "TIFF IFD at offset 8 runs past the end of the file");
	set16(&b, ifd[0], 0, 0);
	tiff_refused(&b, NULL, "TIFF IFD at offset 8 has no entries");
	buf_free(&b);
}

/* Every cut of a valid file is refused: its IFDs end it. */
static void
test_tiff_truncated(void **state)
{
	struct buf b = { 0 };
	struct tiff_info t;
	char err[MEDIA_ERR_MAX];

	for (int big = 0; big <= 1; big++) {
		for (unsigned pages = 1; pages <= 3; pages += 2) {
			tiff_build(&b, big, pages, NULL);
			for (size_t n = 0; n < b.n; n++)
				if (tiff_try(b.d, n, NULL, &t, err,
				    sizeof(err)) != -1)
					fail_msg("a cut at %zu of %zu was "
					    "accepted", n, b.n);
			tiff_ok(&b, NULL, &t);
			assert_int_equal(t.pages, pages);
			buf_free(&b);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wav_pcm),
		cmocka_unit_test(test_wav_laws_rounding),
		cmocka_unit_test(test_wav_gsm),
		cmocka_unit_test(test_wav_chunk_order),
		cmocka_unit_test(test_wav_tolerated),
		cmocka_unit_test(test_wav_truncated),
		cmocka_unit_test(test_wav_not_wave),
		cmocka_unit_test(test_wav_chunk_errors),
		cmocka_unit_test(test_wav_format_errors),
		cmocka_unit_test(test_wav_limits),
		cmocka_unit_test(test_wav_err_buffer),
		cmocka_unit_test(test_wav_format_name),
		cmocka_unit_test(test_tiff_pages),
		cmocka_unit_test(test_tiff_order),
		cmocka_unit_test(test_tiff_loops),
		cmocka_unit_test(test_tiff_page_cap),
		cmocka_unit_test(test_tiff_errors),
		cmocka_unit_test(test_tiff_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
