/*
 * wav.c - the header of a RIFF/WAVE file: format, channels, rate and how
 * long it plays.  What is accepted is written down in media.h.
 *
 * One forward walk over the chunks inside the RIFF, with an explicit end;
 * sizes are 32-bit in the file and added in 64 bits here, so no sum can
 * wrap.  The fmt, fact and data chunks are only remembered during the
 * walk and judged after it, since they may come in any order.
 */
#include "lib/media.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RIFF_HEADER	12	/* "RIFF" size "WAVE" */
#define CHUNK_HEADER	8	/* id size */
#define FMT_MIN		16

static uint16_t
le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* "12 bytes", "3 KB", "9 MB", "2 GB": binary units, rounded to nearest. */
static void
human(char *b, size_t n, uint64_t v)
{
	if (v == 1)
		snprintf(b, n, "1 byte");
	else if (v < 1024)
		snprintf(b, n, "%" PRIu64 " bytes", v);
	else if (v < 1024 * 1024)
		snprintf(b, n, "%" PRIu64 " KB", (v + 512) / 1024);
	else if (v < 1024 * 1024 * 1024)
		snprintf(b, n, "%" PRIu64 " MB", (v + 512 * 1024) / (1024 * 1024));
	else
		snprintf(b, n, "%" PRIu64 " GB",
		    (v + 512 * 1024 * 1024) / (1024 * 1024 * 1024));
}

/*
 * "WAVE data chunk says 9 MB but the file has 2 KB".  When both round to
 * the same words, exact byte counts, so the sentence never contradicts
 * itself.
 */
static int
fail_size(char *err, size_t errlen, const char *what, uint64_t claimed,
    uint64_t have)
{
	char c[32], h[32];

	human(c, sizeof(c), claimed);
	human(h, sizeof(h), have);
	if (strcmp(c, h) == 0) {
		snprintf(c, sizeof(c), "%" PRIu64 " bytes", claimed);
		snprintf(h, sizeof(h), "%" PRIu64 " bytes", have);
	}
	return fail(err, errlen, "%s says %s but the file has %s", what, c, h);
}

/* A chunk id for a message: trailing spaces cut, unprintables as '?'. */
static void
chunk_name(char out[5], const unsigned char *id)
{
	size_t n = 4;

	while (n > 0 && id[n - 1] == ' ')
		n--;
	for (size_t i = 0; i < n; i++)
		out[i] = id[i] > 0x20 && id[i] < 0x7f ? (char)id[i] : '?';
	out[n] = '\0';
}

const char *
wav_format_name(unsigned format)
{
	switch (format) {
	case WAV_FORMAT_PCM:	return "PCM";
	case 0x0002:		return "Microsoft ADPCM";
	case 0x0003:		return "IEEE float";
	case WAV_FORMAT_ALAW:	return "A-law";
	case WAV_FORMAT_MULAW:	return "u-law";
	case 0x0011:		return "IMA ADPCM";
	case 0x0022:		return "TrueSpeech";
	case WAV_FORMAT_GSM610:	return "GSM 6.10";
	case 0x0040:		return "G.721 ADPCM";
	case 0x0050:		return "MPEG";
	case 0x0055:		return "MPEG";
	case 0x0064:		return "G.726 ADPCM";
	case 0xfffe:		return "extensible";
	}
	return "unknown";
}

/* Where a chunk's body lies, once the walk has found it. */
struct span {
	const unsigned char *p;
	uint64_t len;
};

/*
 * Check the fmt chunk's fields against what we play, and compute the
 * sample frames.  fact is optional (p NULL).
 */
static int
judge(const struct span *fmt, const struct span *fact, uint64_t data_len,
    unsigned max_seconds, struct wav_info *w, char *err, size_t errlen)
{
	const unsigned char *f = fmt->p;
	unsigned want_align;

	w->format = le16(f);
	w->channels = le16(f + 2);
	w->rate = le32(f + 4);
	w->block_align = le16(f + 12);
	w->bits = le16(f + 14);
	w->data_len = data_len;

	switch (w->format) {
	case WAV_FORMAT_PCM:
	case WAV_FORMAT_MULAW:
	case WAV_FORMAT_ALAW:
	case WAV_FORMAT_GSM610:
		break;
	default:
		return fail(err, errlen, "unsupported WAVE format 0x%04x (%s)",
		    w->format, wav_format_name(w->format));
	}
	if (w->channels == 0)
		return fail(err, errlen, "0 channels");
	if (w->channels > WAV_MAX_CHANNELS)
		return fail(err, errlen, "%u channels, at most %u supported",
		    w->channels, WAV_MAX_CHANNELS);
	if (w->rate == 0)
		return fail(err, errlen, "sample rate 0");
	if (w->rate > WAV_MAX_RATE)
		return fail(err, errlen, "sample rate %u is above %u",
		    w->rate, WAV_MAX_RATE);

	if (w->format == WAV_FORMAT_GSM610) {
		uint64_t blocks, most;

		if (w->channels != 1)
			return fail(err, errlen,
			    "GSM 6.10 with %u channels is not supported",
			    w->channels);
		if (w->block_align != WAV_GSM_BLOCK_ALIGN)
			return fail(err, errlen,
			    "GSM 6.10 block align %u, expected %u",
			    w->block_align, WAV_GSM_BLOCK_ALIGN);
		blocks = data_len / WAV_GSM_BLOCK_ALIGN;
		most = (blocks + (data_len % WAV_GSM_BLOCK_ALIGN != 0)) *
		    WAV_GSM_BLOCK_SAMPLES;
		if (fact->p != NULL && fact->len < 4)
			return fail(err, errlen, "fact chunk is %" PRIu64
			    " bytes, fewer than 4", fact->len);
		if (fact->p != NULL) {
			w->samples = le32(fact->p);
			if (w->samples > most)
				return fail(err, errlen,
				    "fact chunk says %" PRIu64 " samples but "
				    "the data holds at most %" PRIu64,
				    w->samples, most);
		} else
			w->samples = blocks * WAV_GSM_BLOCK_SAMPLES;
	} else {
		if (w->format == WAV_FORMAT_PCM) {
			if (w->bits != 8 && w->bits != 16)
				return fail(err, errlen, "PCM with %u bits per "
				    "sample is not supported", w->bits);
		} else if (w->bits != 8)
			return fail(err, errlen, "%s with %u bits per sample "
			    "is not supported", wav_format_name(w->format),
			    w->bits);
		want_align = w->channels * (w->bits / 8);
		if (w->block_align != want_align)
			return fail(err, errlen, "block align %u, expected %u "
			    "for %u channel%s of %u bits", w->block_align,
			    want_align, w->channels, w->channels == 1 ? "" : "s",
			    w->bits);
		w->samples = data_len / want_align;
	}

	/* samples < 2^39 (2^32 bytes, 320 per 65), so these cannot wrap. */
	w->millis = (w->samples * 1000 + w->rate / 2) / w->rate;
	w->seconds = (unsigned)((w->samples + w->rate / 2) / w->rate);
	/* The exact duration against the limit; the message rounds up. */
	if (w->samples > (uint64_t)max_seconds * w->rate) {
		uint64_t ms = (w->samples * 1000 + w->rate - 1) / w->rate;

		return fail(err, errlen, "%" PRIu64 ".%03u seconds is longer "
		    "than the limit of %u seconds", ms / 1000,
		    (unsigned)(ms % 1000), max_seconds);
	}
	return 0;
}

/*
 * Walk the chunks of the RIFF in buf[0..len) and judge what was found.
 * end is where the RIFF ends, never past len.
 */
int
wav_parse(const void *buf, size_t len, const struct media_limits *lim,
    struct wav_info *out, char *err, size_t errlen)
{
	const unsigned char *b = buf;
	struct span fmt = { NULL, 0 }, fact = { NULL, 0 }, data = { NULL, 0 };
	unsigned max_seconds = lim != NULL && lim->max_seconds != 0 ?
	    lim->max_seconds : MEDIA_MAX_SECONDS_DEFAULT;
	uint64_t end, off;
	int rc;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	if (len < 4 || memcmp(b, "RIFF", 4) != 0)
		return fail(err, errlen, "not a RIFF file");
	if (len < RIFF_HEADER)
		return fail(err, errlen, "RIFF file cut short at %zu bytes",
		    len);
	if (memcmp(b + 8, "WAVE", 4) != 0)
		return fail(err, errlen, "RIFF file but not WAVE");
	end = (uint64_t)le32(b + 4) + 8;
	if (end > len)
		return fail_size(err, errlen, "RIFF header", end, len);
	if (end < RIFF_HEADER)
		return fail(err, errlen, "RIFF size %" PRIu64 " is too small "
		    "for WAVE", end - 8);

	for (off = RIFF_HEADER; off < end; ) {
		const unsigned char *id = b + off;
		uint64_t size, body = off + CHUNK_HEADER;
		struct span *slot = NULL;
		char name[5];

		if (end - off < CHUNK_HEADER)
			return fail(err, errlen, "WAVE chunk header at offset "
			    "%" PRIu64 " runs past the end of the RIFF", off);
		size = le32(id + 4);
		chunk_name(name, id);
		if (size > end - body) {
			char what[32];

			snprintf(what, sizeof(what), "WAVE %s chunk", name);
			return fail_size(err, errlen, what, size, end - body);
		}
		if (memcmp(id, "fmt ", 4) == 0)
			slot = &fmt;
		else if (memcmp(id, "data", 4) == 0)
			slot = &data;
		else if (memcmp(id, "fact", 4) == 0)
			slot = &fact;
		if (slot != NULL) {
			if (slot->p != NULL)
				return fail(err, errlen,
				    "more than one %s chunk", name);
			slot->p = b + body;
			slot->len = size;
		}
		/* The pad byte after an odd chunk may be missing at the end. */
		off = body + size + (size & 1);
	}

	if (fmt.p == NULL)
		return fail(err, errlen, "no fmt chunk");
	if (fmt.len < FMT_MIN)
		return fail(err, errlen, "fmt chunk is %" PRIu64 " bytes, "
		    "fewer than %u", fmt.len, FMT_MIN);
	if (data.p == NULL)
		return fail(err, errlen, "no data chunk");
	rc = judge(&fmt, &fact, data.len, max_seconds, out, err, errlen);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}
