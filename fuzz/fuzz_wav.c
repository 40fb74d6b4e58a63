/*
 * fuzz_wav.c - libFuzzer target for lib/wav.c.
 *
 * Input: one byte choosing the duration limit (0: the default, else that
 * many seconds), then the file.  The file is a heap copy of exactly its
 * length, so ASan sees any read past the end.  Whatever the bytes, the
 * reader returns 0 or -1; the message is NUL-terminated printable ASCII,
 * empty on success and not otherwise, and cut (never overrun) in a small
 * buffer; a refusal leaves the result zeroed; a success has the shape
 * media.h promises, its duration agreeing with its samples and rate and
 * within the limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/media.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_wav: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

static void
check_err(const char *err, size_t errlen)
{
	const char *nul = memchr(err, '\0', errlen);

	CHECK(nul != NULL);
	for (const char *p = err; p < nul; p++)
		CHECK(*p >= 0x20 && *p <= 0x7e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct media_limits lim = { 0, 0 };
	struct wav_info w, w2;
	static const struct wav_info zero;
	char err[MEDIA_ERR_MAX], small[6];
	unsigned char *copy;
	unsigned max;
	size_t n;
	int rc;

	if (size < 1)
		return 0;
	lim.max_seconds = data[0];
	max = data[0] != 0 ? data[0] : MEDIA_MAX_SECONDS_DEFAULT;
	n = size - 1;
	copy = malloc(n > 0 ? n : 1);
	CHECK(copy != NULL);
	if (n > 0)
		memcpy(copy, data + 1, n);

	memset(err, 'x', sizeof(err));
	memset(&w, 0xa5, sizeof(w));
	rc = wav_parse(copy, n, &lim, &w, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	check_err(err, sizeof(err));
	if (rc == -1) {
		CHECK(err[0] != '\0');
		CHECK(memcmp(&w, &zero, sizeof(w)) == 0);
	} else {
		CHECK(err[0] == '\0');
		CHECK(w.format == WAV_FORMAT_PCM || w.format == WAV_FORMAT_MULAW ||
		    w.format == WAV_FORMAT_ALAW || w.format == WAV_FORMAT_GSM610);
		CHECK(w.channels >= 1 && w.channels <= WAV_MAX_CHANNELS);
		CHECK(w.rate >= 1 && w.rate <= WAV_MAX_RATE);
		CHECK(w.data_len + 8 <= n);
		if (w.format == WAV_FORMAT_GSM610) {
			CHECK(w.channels == 1);
			CHECK(w.block_align == WAV_GSM_BLOCK_ALIGN);
			CHECK(w.samples <= (w.data_len + 64) / 65 * 320);
		} else {
			CHECK(w.format == WAV_FORMAT_PCM ?
			    w.bits == 8 || w.bits == 16 : w.bits == 8);
			CHECK(w.block_align == w.channels * w.bits / 8);
			CHECK(w.samples == w.data_len / w.block_align);
		}
		CHECK(w.seconds <= max);
		CHECK(w.millis <= (uint64_t)max * 1000);
		CHECK(w.samples <= (uint64_t)max * w.rate);
		CHECK(w.millis == (w.samples * 1000 + w.rate / 2) / w.rate);
		CHECK(w.seconds == (w.samples + w.rate / 2) / w.rate);
	}

	/* Again, into a small buffer: the same answer, the message cut. */
	memset(small, 'x', sizeof(small));
	CHECK(wav_parse(copy, n, &lim, &w2, small, sizeof(small)) == rc);
	check_err(small, sizeof(small));
	CHECK(strncmp(small, err, sizeof(small) - 1) == 0);
	CHECK(memcmp(&w, &w2, sizeof(w)) == 0);
	CHECK(wav_parse(copy, n, &lim, &w2, NULL, 0) == rc);
	free(copy);
	return 0;
}
