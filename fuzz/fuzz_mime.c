/*
 * fuzz_mime.c - libFuzzer target for the 7-bit conversion of a message
 * for a server without 8BITMIME (aliases/mime.c): any message anyone
 * sent, as the queue holds it.
 *
 * Input: any bytes, as a message in a file.  The conversion fails with a
 * message (nothing GMime takes for a message), finds nothing to convert
 * and writes nothing, or writes exactly the length it reports and says
 * whether an octet above 127 is left exactly as the output shows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aliases/mime.h"
#include "lib/util.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_mime: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* Convert in into a new file (-1: it did not); its length and left-over flag, checked. */
static int
convert(int in, uint64_t *len, int *eightbit)
{
	int out = memfd_create("out", 0);
	char err[256], *buf;

	CHECK(out >= 0);
	err[0] = '\0';
	switch (mime_to_7bit(in, out, len, eightbit, err, sizeof(err))) {
	case 0:
		break;
	case 1:
		CHECK(lseek(out, 0, SEEK_END) == 0);
		close(out);
		return -1;
	default:
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		close(out);
		return -1;
	}
	CHECK(lseek(out, 0, SEEK_END) == (off_t)*len);
	buf = malloc(*len ? *len : 1);
	CHECK(pread(out, buf, *len, 0) == (ssize_t)*len);
	CHECK(mem_has_8bit(buf, *len) == *eightbit);
	free(buf);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int in = memfd_create("in", 0), out;
	uint64_t len;
	int eightbit;

	CHECK(in >= 0);
	CHECK(write_all(in, data, size) == 0);
	if ((out = convert(in, &len, &eightbit)) >= 0)
		close(out);
	close(in);
	return 0;
}
