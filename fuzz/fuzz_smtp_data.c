/*
 * fuzz_smtp_data.c - libFuzzer target for smtpd/data.c.
 *
 * The first input byte picks the run: bit 0 BDAT (else DATA), bits 1-3 a
 * max_size, bits 4-7 how the rest of the input is cut into slices (each
 * slice fed from a heap copy of exactly its length, so ASan sees any
 * over-read).  The sliced run is compared with the same input fed whole,
 * and with a run without a size limit; the unlimited output is checked for
 * the shape the store relies on (CRLF line ends only) and against a
 * reference model that works on the whole buffer with lookahead.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpd/data.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_smtp_data: %s:%d: check failed: %s\n", \
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

struct buf {
	unsigned char *p;
	size_t len, cap;
};

struct run {
	struct buf out;
	size_t consumed;
	int done;
	unsigned flags, received;
	uint64_t size;
};

static void
buf_add(struct buf *b, const void *s, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		CHECK(b->p != NULL);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
sink(void *ctx, const char *s, size_t n)
{
	CHECK(n > 0);
	buf_add(ctx, s, n);
}

/* The next slice length for a cut pattern; never 0 for a non-empty rest. */
static size_t
next_cut(unsigned pattern, uint32_t *rng, size_t left)
{
	static const size_t fixed[] = { 1, 2, 3, 4, 5, 7, 8, 9, 16, 17 };
	size_t k;

	if (pattern == 0)
		return left;
	if (pattern <= 10)
		k = fixed[pattern - 1];
	else {
		/* xorshift32: lengths 0..(1 << (pattern - 9)) - 1, 0 allowed */
		*rng ^= *rng << 13;
		*rng ^= *rng >> 17;
		*rng ^= *rng << 5;
		k = *rng % ((size_t)1 << (pattern - 9));
	}
	return k < left ? k : left;
}

static void
feed_run(const unsigned char *in, size_t n, int bdat, uint64_t max,
    unsigned pattern, struct run *r)
{
	struct smtp_data d;
	uint32_t rng = 0x2545f491u ^ (uint32_t)n;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d, bdat, max, sink, &r->out);
	while (off < n && !d.done) {
		size_t k = next_cut(pattern, &rng, n - off), got;
		char *s = malloc(k ? k : 1);

		CHECK(s != NULL);
		memcpy(s, in + off, k);
		got = smtp_data_feed(&d, s, k);
		free(s);
		CHECK(got <= k);
		CHECK(got == k || d.done);
		r->consumed += got;
		off += k;
	}
	if (bdat)
		smtp_data_finish(&d);
	CHECK(smtp_data_feed(&d, "", 0) == 0);
	r->done = d.done;
	r->flags = d.flags;
	r->received = d.received;
	r->size = d.size;
}

static int
same_run(const struct run *a, const struct run *b)
{
	return a->out.len == b->out.len &&
	    (a->out.len == 0 || memcmp(a->out.p, b->out.p, a->out.len) == 0) &&
	    a->consumed == b->consumed && a->done == b->done &&
	    a->flags == b->flags && a->received == b->received &&
	    a->size == b->size;
}

/*
 * Reference: where does DATA end, and what is written?  A line starts at 0
 * and after each real CRLF of the input.
 */
static int
starts_line(const unsigned char *in, size_t i)
{
	return i == 0 || (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n');
}

static void
reference(const unsigned char *in, size_t n, int bdat, struct run *r)
{
	size_t end = n, i;

	memset(r, 0, sizeof(*r));
	r->consumed = n;
	for (i = 0; !bdat && i + 3 <= n; i++)
		if (starts_line(in, i) && in[i] == '.' && in[i + 1] == '\r' &&
		    in[i + 2] == '\n') {
			end = i;
			r->consumed = i + 3;
			r->done = 1;
			break;
		}
	for (i = 0; i < end; i++) {
		unsigned char c = in[i];
		int real_crlf = c == '\r' && i + 1 < end && in[i + 1] == '\n';

		if (!bdat && c == '.' && starts_line(in, i))
			continue;
		if (real_crlf) {
			buf_add(&r->out, "\r\n", 2);
			i++;
			continue;
		}
		if (c == '\r' || c == '\n') {
			/* DATA not ended: a last CR is still undecided. */
			if (c == '\r' && i + 1 == n && !bdat)
				break;
			buf_add(&r->out, "\r\n", 2);
			r->flags |= SMTP_DATA_F_BARE_EOL;
			continue;
		}
		if (c == '\0')
			r->flags |= SMTP_DATA_F_NUL;
		buf_add(&r->out, &c, 1);
	}
	r->size = r->out.len;
	/* Received fields: output lines up to the first empty one. */
	for (i = 0; i < r->out.len;) {
		const unsigned char *l = r->out.p + i;
		size_t left = r->out.len - i, j = 8;

		if (l[0] == '\r')
			break;
		if (left >= 9 && strncasecmp((const char *)l, "received", 8) == 0) {
			while (j < left && (l[j] == ' ' || l[j] == '\t'))
				j++;
			if (j < left && l[j] == ':')
				r->received++;
		}
		l = memchr(l, '\n', left);
		if (l == NULL)
			break;
		i = (size_t)(l - r->out.p) + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t maxes[8] = { 0, 1, 2, 3, 10, 64, 300, 4096 };
	struct run whole, sliced, unlimited, ref;
	const unsigned char *in;
	size_t n;
	int bdat;
	uint64_t max;
	unsigned pattern;

	if (size < 1)
		return 0;
	bdat = data[0] & 1;
	max = maxes[(data[0] >> 1) & 7];
	pattern = data[0] >> 4;
	in = data + 1;
	n = size - 1;

	feed_run(in, n, bdat, max, 0, &whole);
	feed_run(in, n, bdat, max, pattern, &sliced);
	feed_run(in, n, bdat, 0, pattern == 0 ? 1 : 0, &unlimited);

	/* Slicing changes nothing. */
	CHECK(same_run(&sliced, &whole));

	/* The limit changes only what reaches the sink, and the flag. */
	CHECK(unlimited.size == unlimited.out.len);
	CHECK(!(unlimited.flags & SMTP_DATA_F_TOO_BIG));
	CHECK(whole.size == unlimited.size);
	CHECK(whole.consumed == unlimited.consumed);
	CHECK(whole.done == unlimited.done);
	CHECK(whole.received == unlimited.received);
	CHECK((whole.flags & ~(unsigned)SMTP_DATA_F_TOO_BIG) == unlimited.flags);
	if (whole.flags & SMTP_DATA_F_TOO_BIG) {
		CHECK(max != 0 && whole.size > max);
		CHECK(whole.out.len == max);
		CHECK(memcmp(whole.out.p, unlimited.out.p, max) == 0);
	} else {
		CHECK(max == 0 || whole.size <= max);
		CHECK(whole.size == whole.out.len);
		CHECK(same_run(&whole, &unlimited));
	}

	/* CRLF line ends only: every LF after a CR, every CR before an LF. */
	for (size_t i = 0; i < unlimited.out.len; i++) {
		if (unlimited.out.p[i] == '\n')
			CHECK(i > 0 && unlimited.out.p[i - 1] == '\r');
		if (unlimited.out.p[i] == '\r')
			CHECK(i + 1 < unlimited.out.len &&
			    unlimited.out.p[i + 1] == '\n');
	}
	CHECK(!!(unlimited.flags & SMTP_DATA_F_NUL) ==
	    (unlimited.out.len > 0 &&
	    memchr(unlimited.out.p, '\0', unlimited.out.len) != NULL));

	/* Where it ended. */
	if (bdat) {
		CHECK(!whole.done);
		CHECK(whole.consumed == n);
	} else if (whole.done) {
		size_t c = whole.consumed;

		CHECK(c >= 3 && memcmp(in + c - 3, ".\r\n", 3) == 0);
		CHECK(c == 3 || (c >= 5 && memcmp(in + c - 5, "\r\n", 2) == 0));
	} else
		CHECK(whole.consumed == n);

	/* And exactly what the reference says. */
	reference(in, n, bdat, &ref);
	CHECK(same_run(&unlimited, &ref));

	free(whole.out.p);
	free(sliced.out.p);
	free(unlimited.out.p);
	free(ref.out.p);
	return 0;
}
