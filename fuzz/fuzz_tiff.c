/*
 * fuzz_tiff.c - libFuzzer target for lib/tiff.c.
 *
 * Input: one byte choosing the page limit (0: the default, else that
 * many pages), then the file, parsed from a heap copy of exactly its
 * length so ASan sees any read past the end.  The reader returns 0 or
 * -1; the message is NUL-terminated printable ASCII, empty on success
 * and not otherwise, and cut (never overrun) in a small buffer; a
 * refusal leaves the result zeroed; a success counts 1..limit pages.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/media.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_tiff: %s:%d: check failed: %s\n",	\
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
	struct tiff_info t, t2;
	static const struct tiff_info zero;
	char err[MEDIA_ERR_MAX], small[6];
	unsigned char *copy;
	unsigned max;
	size_t n;
	int rc;

	if (size < 1)
		return 0;
	lim.max_pages = data[0];
	max = data[0] != 0 ? data[0] : MEDIA_MAX_PAGES_DEFAULT;
	n = size - 1;
	copy = malloc(n > 0 ? n : 1);
	CHECK(copy != NULL);
	if (n > 0)
		memcpy(copy, data + 1, n);

	memset(err, 'x', sizeof(err));
	memset(&t, 0xa5, sizeof(t));
	rc = tiff_parse(copy, n, &lim, &t, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	check_err(err, sizeof(err));
	if (rc == -1) {
		CHECK(err[0] != '\0');
		CHECK(memcmp(&t, &zero, sizeof(t)) == 0);
	} else {
		CHECK(err[0] == '\0');
		CHECK(t.pages >= 1 && t.pages <= max);
		/* Each page's IFD is at least 18 bytes, after the header. */
		CHECK(n >= 8 + 18);
	}

	memset(small, 'x', sizeof(small));
	CHECK(tiff_parse(copy, n, &lim, &t2, small, sizeof(small)) == rc);
	check_err(small, sizeof(small));
	CHECK(strncmp(small, err, sizeof(small) - 1) == 0);
	CHECK(memcmp(&t, &t2, sizeof(t)) == 0);
	CHECK(tiff_parse(copy, n, &lim, &t2, NULL, 0) == rc);
	free(copy);
	return 0;
}
