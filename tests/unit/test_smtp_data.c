/*
 * test_smtp_data.c - the DATA/BDAT content stream: end of data, smuggling,
 * dot-unstuffing, line-end normalisation, NUL, size limit, hop counting,
 * BDAT chunks, and the same results for every way of slicing the input.
 *
 * Every slice is copied into a heap buffer of exactly its length before it
 * is fed, so AddressSanitizer reports any read past in + len.  Results are
 * also compared with a reference model below, written as a whole-buffer
 * function with lookahead (no streaming state), so that a mistake the two
 * share is unlikely.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/data.h"

#define S(lit)	(lit), (sizeof(lit) - 1)	/* a literal with its length */

struct out {
	char *buf;
	size_t len, cap;
	unsigned calls;
};

struct result {
	struct out out;
	size_t consumed;
	int done;
	unsigned flags;
	unsigned received;
	uint64_t size;
};

static void
sink(void *ctx, const char *b, size_t n)
{
	struct out *o = ctx;

	assert_true(n > 0);
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2 + 64;
		o->buf = realloc(o->buf, o->cap);
		assert_non_null(o->buf);
	}
	memcpy(o->buf + o->len, b, n);
	o->len += n;
	o->calls++;
}

static void
result_free(struct result *r)
{
	free(r->out.buf);
	memset(r, 0, sizeof(*r));
}

/* Feed n bytes as one slice, from an exact heap copy; returns the count. */
static size_t
feed_exact(struct smtp_data *d, const char *s, size_t n)
{
	char *b;
	size_t r;

	if (n == 0)
		return smtp_data_feed(d, "", 0);
	b = malloc(n);
	assert_non_null(b);
	memcpy(b, s, n);
	r = smtp_data_feed(d, b, n);
	free(b);
	return r;
}

/*
 * Feed in[0..n) cut at the ncuts positions of cuts (ascending), as a session
 * would: stop at the end of DATA, leaving the rest for the next command.
 * finish: call smtp_data_finish at the end (BDAT LAST).
 */
static void
run_cuts(const char *in, size_t n, int bdat, uint64_t max, int finish,
    const size_t *cuts, size_t ncuts, struct result *r)
{
	struct smtp_data d;
	size_t from = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d, bdat, max, sink, &r->out);
	for (size_t i = 0; i <= ncuts && !d.done; i++) {
		size_t to = i < ncuts ? cuts[i] : n, got;

		assert_true(to >= from && to <= n);
		got = feed_exact(&d, in + from, to - from);
		assert_true(got <= to - from);
		r->consumed += got;
		if (got < to - from)
			assert_true(d.done);
		from = to;
	}
	if (finish)
		smtp_data_finish(&d);
	r->done = d.done;
	r->flags = d.flags;
	r->received = d.received;
	r->size = d.size;
}

static void
run_whole(const char *in, size_t n, int bdat, uint64_t max, int finish,
    struct result *r)
{
	run_cuts(in, n, bdat, max, finish, NULL, 0, r);
}

/* ---- the reference model ---- */

static int
ref_line_start(const char *in, size_t i)
{
	return i == 0 || (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n');
}

static void
ref_put(struct out *o, const char *s, size_t n)
{
	if (n > 0)
		sink(o, s, n);
}

/* Does the output line s[0..n) start a Received field? */
static int
ref_is_received(const char *s, size_t n)
{
	size_t i;

	if (n < 8 || strncasecmp(s, "received", 8) != 0)
		return 0;
	for (i = 8; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	return i < n && s[i] == ':';
}

static void
reference(const char *in, size_t n, int bdat, uint64_t max, int finish,
    struct result *r)
{
	struct out full = { 0 };
	size_t end = n, i, emitted;

	memset(r, 0, sizeof(*r));
	r->consumed = n;
	if (!bdat)
		for (i = 0; i + 3 <= n; i++)
			if (ref_line_start(in, i) && memcmp(in + i, ".\r\n", 3) == 0) {
				end = i;
				r->consumed = i + 3;
				r->done = 1;
				break;
			}
	for (i = 0; i < end; i++) {
		char c = in[i];

		if (!bdat && ref_line_start(in, i) && c == '.')
			continue;
		if (c == '\r' && i + 1 < end && in[i + 1] == '\n') {
			ref_put(&full, "\r\n", 2);
			i++;
		} else if (c == '\r' || c == '\n') {
			/* A CR at the very end is held unless the stream ends. */
			if (c == '\r' && i + 1 == end && !finish)
				break;
			ref_put(&full, "\r\n", 2);
			r->flags |= SMTP_DATA_F_BARE_EOL;
		} else {
			if (c == '\0')
				r->flags |= SMTP_DATA_F_NUL;
			ref_put(&full, &c, 1);
		}
	}
	/* Hops: output lines up to the first empty one. */
	for (i = 0; i < full.len;) {
		const char *nl = memchr(full.buf + i, '\n', full.len - i);
		size_t ll = nl ? (size_t)(nl - (full.buf + i)) : full.len - i;

		if (ll > 0 && full.buf[i + ll - 1] == '\r')
			ll--;
		if (nl != NULL && ll == 0)
			break;
		if (ref_is_received(full.buf + i, ll))
			r->received++;
		if (nl == NULL)
			break;
		i = (size_t)(nl - full.buf) + 1;
	}
	r->size = full.len;
	emitted = full.len;
	if (max != 0 && full.len > max) {
		emitted = max;
		r->flags |= SMTP_DATA_F_TOO_BIG;
	}
	ref_put(&r->out, full.buf, emitted);
	free(full.buf);
}

/* ---- comparison helpers ---- */

static void
show(const char *what, const char *s, size_t n)
{
	print_message("%s (%zu): \"", what, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			print_message("\\r");
		else if (c == '\n')
			print_message("\\n");
		else if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			print_message("\\x%02x", c);
		else
			print_message("%c", c);
	}
	print_message("\"\n");
}

static void
assert_same_result(const struct result *a, const struct result *b,
    const char *in, size_t n, const char *how, const char *file, int line)
{
	if (a->out.len == b->out.len &&
	    (a->out.len == 0 || memcmp(a->out.buf, b->out.buf, a->out.len) == 0) &&
	    a->consumed == b->consumed && a->done == b->done &&
	    a->flags == b->flags && a->received == b->received &&
	    a->size == b->size)
		return;
	print_message("mismatch: %s\n", how);
	show("input", in, n);
	show("expected output", b->out.buf, b->out.len);
	show("got output", a->out.buf, a->out.len);
	print_message("expected consumed=%zu done=%d flags=%#x received=%u "
	    "size=%llu\n", b->consumed, b->done, b->flags, b->received,
	    (unsigned long long)b->size);
	print_message("got      consumed=%zu done=%d flags=%#x received=%u "
	    "size=%llu\n", a->consumed, a->done, a->flags, a->received,
	    (unsigned long long)a->size);
	_fail(file, line);
}

#define assert_same(a, b, in, n, how) \
	assert_same_result((a), (b), (in), (n), (how), __FILE__, __LINE__)

/* Feed whole in DATA mode and check output, consumed, done and flags. */
static void
check_data(const char *in, size_t n, const char *want, size_t wantlen,
    size_t consumed, int done, unsigned flags, const char *file, int line)
{
	struct result r, ref;

	run_whole(in, n, 0, 0, 0, &r);
	if (r.out.len != wantlen ||
	    (wantlen > 0 && memcmp(r.out.buf, want, wantlen) != 0) ||
	    r.consumed != consumed || r.done != done || r.flags != flags ||
	    r.size != wantlen) {
		show("input", in, n);
		show("expected", want, wantlen);
		show("got", r.out.buf, r.out.len);
		print_message("consumed %zu/%zu done %d/%d flags %#x/%#x\n",
		    r.consumed, consumed, r.done, done, r.flags, flags);
		_fail(file, line);
	}
	reference(in, n, 0, 0, 0, &ref);
	assert_same_result(&r, &ref, in, n, "reference", file, line);
	result_free(&r);
	result_free(&ref);
}

#define CHECK_DATA(in, want, consumed, done, flags) \
	check_data(S(in), S(want), (consumed), (done), (flags), __FILE__, __LINE__)

/* ---- tests ---- */

static void
test_empty_message(void **state)
{
	(void)state;
	CHECK_DATA(".\r\n", "", 3, 1, 0);
	CHECK_DATA(".\r\nQUIT\r\n", "", 3, 1, 0);
	/* Only a line of "." alone: CRLF ".." CRLF is a line of one dot. */
	CHECK_DATA("..\r\n.\r\n", ".\r\n", 7, 1, 0);
	/* Nothing yet. */
	CHECK_DATA("", "", 0, 0, 0);
	CHECK_DATA(".", "", 1, 0, 0);
	CHECK_DATA(".\r", "", 2, 0, 0);
}

static void
test_ordinary_message(void **state)
{
	(void)state;
	CHECK_DATA("Subject: hi\r\n\r\nHello\r\n.\r\n",
	    "Subject: hi\r\n\r\nHello\r\n", 25, 1, 0);
	/* The bytes after the terminator belong to the next command. */
	CHECK_DATA("a\r\n.\r\nMAIL FROM:<a@b>\r\n", "a\r\n", 6, 1, 0);
	/* An unterminated message consumes everything and is not done. */
	CHECK_DATA("a\r\nb\r\n", "a\r\nb\r\n", 6, 0, 0);
	/* The dot of the terminator must be alone on its line. */
	CHECK_DATA("a\r\n. \r\nb\r\n.\r\n", "a\r\n \r\nb\r\n", 13, 1, 0);
	CHECK_DATA("a.\r\n.\r\n", "a.\r\n", 7, 1, 0);
}

static void
test_after_done(void **state)
{
	struct smtp_data d;
	struct out o = { 0 };

	(void)state;
	smtp_data_init(&d, 0, 0, sink, &o);
	assert_int_equal(smtp_data_feed(&d, S("x\r\n.\r\nRSET\r\n")), 6);
	assert_true(d.done);
	assert_int_equal(smtp_data_feed(&d, S("more\r\n")), 0);
	assert_int_equal(smtp_data_feed(&d, S(".\r\n")), 0);
	smtp_data_finish(&d);
	assert_int_equal(o.len, 3);
	assert_memory_equal(o.buf, "x\r\n", 3);
	assert_int_equal(d.size, 3);
	free(o.buf);
}

static void
test_unstuffing(void **state)
{
	(void)state;
	CHECK_DATA("..foo\r\n.\r\n", ".foo\r\n", 10, 1, 0);
	CHECK_DATA(".foo\r\n.\r\n", "foo\r\n", 9, 1, 0);
	CHECK_DATA("a\r\n...\r\n.\r\n", "a\r\n..\r\n", 11, 1, 0);
	CHECK_DATA("a\r\n..\r\n.\r\n", "a\r\n.\r\n", 10, 1, 0);
	/* Not at a line start: left alone. */
	CHECK_DATA("a.b\r\n a\r\n.\r\n", "a.b\r\n a\r\n", 12, 1, 0);
	/* Only the first dot goes. */
	CHECK_DATA("....\r\n.\r\n", "...\r\n", 9, 1, 0);
	/* A line start is only after a real CRLF. */
	CHECK_DATA("a\n..b\r\n.\r\n", "a\r\n..b\r\n", 10, 1,
	    SMTP_DATA_F_BARE_EOL);
	CHECK_DATA("a\r..b\r\n.\r\n", "a\r\n..b\r\n", 10, 1,
	    SMTP_DATA_F_BARE_EOL);
	/* A line-start dot before a bare line end is still dropped. */
	CHECK_DATA("a\r\n.\nb\r\n.\r\n", "a\r\n\r\nb\r\n", 11, 1,
	    SMTP_DATA_F_BARE_EOL);
}

/* Append s[0..n) to buf at *len. */
static void
append(char *buf, size_t *len, const char *s, size_t n)
{
	memcpy(buf + *len, s, n);
	*len += n;
}

/* ---- SMTP smuggling (CVE-2023-51764/5/6) ---- */

struct smuggle {
	const char *seq;
	size_t seqlen;
	const char *out;	/* what seq becomes in the stored message */
	size_t outlen;
	unsigned flags;
};

static const struct smuggle smuggles[] = {
	{ S("\n.\n"), S("\r\n.\r\n"), SMTP_DATA_F_BARE_EOL },
	{ S("\r.\r"), S("\r\n.\r\n"), SMTP_DATA_F_BARE_EOL },
	{ S("\r.\n"), S("\r\n.\r\n"), SMTP_DATA_F_BARE_EOL },
	{ S("\n.\r"), S("\r\n.\r\n"), SMTP_DATA_F_BARE_EOL },
	{ S("\n.\r\n"), S("\r\n.\r\n"), SMTP_DATA_F_BARE_EOL },
	{ S("\r\n.\n"), S("\r\n\r\n"), SMTP_DATA_F_BARE_EOL },
	{ S("\r.\r\n"), S("\r\n.\r\n"), SMTP_DATA_F_BARE_EOL },
	{ S("\r\n.\r"), S("\r\n\r\n"), SMTP_DATA_F_BARE_EOL },
	{ S("\r\n\0.\r\n"), S("\r\n\0.\r\n"), SMTP_DATA_F_NUL },
	{ S("\r\n.\r\r\n"), S("\r\n\r\n\r\n"), SMTP_DATA_F_BARE_EOL },
};

#define SMUGGLE_HEAD	"Subject: test\r\n\r\nmessage text"
#define SMUGGLE_TAIL	"MAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nsmuggled\r\n"
#define SMUGGLE_END	"\r\n.\r\n"
#define SMUGGLE_NEXT	"QUIT\r\n"

/*
 * Build head + seq + smuggled commands + CRLF "." CRLF + the next command.
 * The whole up to the final terminator must be one message, done only at
 * its last octet, however it is sliced.
 */
static void
check_smuggle(const struct smuggle *sm)
{
	char in[256], want[256];
	size_t n = 0, wn = 0, msglen;
	struct smtp_data d;
	struct out o = { 0 };
	struct result whole, ref;

	append(in, &n, S(SMUGGLE_HEAD));
	append(in, &n, sm->seq, sm->seqlen);
	append(in, &n, S(SMUGGLE_TAIL));
	append(in, &n, S(SMUGGLE_END));
	msglen = n;
	append(in, &n, S(SMUGGLE_NEXT));
	append(want, &wn, S(SMUGGLE_HEAD));
	append(want, &wn, sm->out, sm->outlen);
	append(want, &wn, S(SMUGGLE_TAIL));
	append(want, &wn, "\r\n", 2);

	/* Whole. */
	run_whole(in, n, 0, 0, 0, &whole);
	if (whole.out.len != wn || memcmp(whole.out.buf, want, wn) != 0) {
		show("input", in, n);
		show("expected", want, wn);
		show("got", whole.out.buf, whole.out.len);
		fail();
	}
	assert_true(whole.done);
	assert_int_equal(whole.consumed, msglen);
	assert_int_equal(whole.flags, sm->flags);
	assert_int_equal(whole.size, wn);
	reference(in, n, 0, 0, 0, &ref);
	assert_same(&whole, &ref, in, n, "reference");

	/* Byte by byte: done exactly at the last octet of the terminator. */
	smtp_data_init(&d, 0, 0, sink, &o);
	for (size_t i = 0; i < n; i++) {
		size_t got = feed_exact(&d, in + i, 1);

		if (i < msglen) {
			assert_int_equal(got, 1);
			assert_int_equal(d.done, i == msglen - 1);
		} else {
			assert_int_equal(got, 0);
			assert_true(d.done);
		}
	}
	assert_int_equal(o.len, wn);
	assert_memory_equal(o.buf, want, wn);

	/* Every split point. */
	for (size_t k = 0; k <= n; k++) {
		struct result r;

		run_cuts(in, n, 0, 0, 0, &k, 1, &r);
		assert_same(&r, &whole, in, n, "one split");
		result_free(&r);
	}
	free(o.buf);
	result_free(&whole);
	result_free(&ref);
}

#define SMUGGLE_TEST(i) \
	static void test_smuggle_##i(void **state) \
	{ (void)state; check_smuggle(&smuggles[i]); }
SMUGGLE_TEST(0)		/* \n.\n */
SMUGGLE_TEST(1)		/* \r.\r */
SMUGGLE_TEST(2)		/* \r.\n */
SMUGGLE_TEST(3)		/* \n.\r */
SMUGGLE_TEST(4)		/* \n.\r\n */
SMUGGLE_TEST(5)		/* \r\n.\n */
SMUGGLE_TEST(6)		/* \r.\r\n */
SMUGGLE_TEST(7)		/* \r\n.\r */
SMUGGLE_TEST(8)		/* \r\n\0.\r\n */
SMUGGLE_TEST(9)		/* \r\n.\r\r\n */

/* The table is complete: one test per sequence. */
static void
test_smuggle_table(void **state)
{
	(void)state;
	assert_int_equal(sizeof(smuggles) / sizeof(smuggles[0]), 10);
}

/* ---- line ends ---- */

static void
test_bare_lf(void **state)
{
	(void)state;
	CHECK_DATA("a\nb\r\n.\r\n", "a\r\nb\r\n", 8, 1, SMTP_DATA_F_BARE_EOL);
	CHECK_DATA("\n\n\r\n.\r\n", "\r\n\r\n\r\n", 7, 1,
	    SMTP_DATA_F_BARE_EOL);
	/* A bare LF never ends data. */
	CHECK_DATA("a\n.\r\n", "a\r\n.\r\n", 5, 0, SMTP_DATA_F_BARE_EOL);
	CHECK_DATA("a\n.\n", "a\r\n.\r\n", 4, 0, SMTP_DATA_F_BARE_EOL);
	/* Clean text has no flags. */
	CHECK_DATA("a\r\nb\r\n.\r\n", "a\r\nb\r\n", 9, 1, 0);
}

static void
test_bare_cr(void **state)
{
	(void)state;
	CHECK_DATA("a\rb\r\n.\r\n", "a\r\nb\r\n", 8, 1, SMTP_DATA_F_BARE_EOL);
	/* CR CR LF is a bare CR and a CRLF. */
	CHECK_DATA("a\r\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n", 10, 1,
	    SMTP_DATA_F_BARE_EOL);
	CHECK_DATA("a\r\r\r\n.\r\n", "a\r\n\r\n\r\n", 8, 1,
	    SMTP_DATA_F_BARE_EOL);
	/* LF CR: a bare LF, then a CR that the next LF makes real. */
	CHECK_DATA("a\n\r\n.\r\n", "a\r\n\r\n", 7, 1, SMTP_DATA_F_BARE_EOL);
	/* A CR at the end of the input is held back, not written. */
	CHECK_DATA("a\r", "a", 2, 0, 0);
	CHECK_DATA("a\r\r", "a\r\n", 3, 0, SMTP_DATA_F_BARE_EOL);
}

/* Feed the slices of a NULL-terminated list one after another. */
static void
feed_list(struct smtp_data *d, const char *const *slices, size_t *consumed)
{
	*consumed = 0;
	for (; *slices != NULL && !d->done; slices++)
		*consumed += feed_exact(d, *slices, strlen(*slices));
}

static void
check_slices(const char *const *slices, int bdat, int finish,
    const char *want, size_t consumed, int done, unsigned flags)
{
	struct smtp_data d;
	struct out o = { 0 };
	size_t got;

	smtp_data_init(&d, bdat, 0, sink, &o);
	feed_list(&d, slices, &got);
	if (finish)
		smtp_data_finish(&d);
	if (o.len != strlen(want) ||
	    (o.len > 0 && memcmp(o.buf, want, o.len) != 0)) {
		show("expected", want, strlen(want));
		show("got", o.buf, o.len);
		fail();
	}
	assert_int_equal(got, consumed);
	assert_int_equal(d.done, done);
	assert_int_equal(d.flags, flags);
	assert_int_equal(d.size, o.len);
	free(o.buf);
}

static void
test_cr_at_slice_end(void **state)
{
	(void)state;
	check_slices((const char *[]){ "abc\r", "\n.\r\n", NULL }, 0, 0,
	    "abc\r\n", 8, 1, 0);
	check_slices((const char *[]){ "abc\r", "x\r\n.\r\n", NULL }, 0, 0,
	    "abc\r\nx\r\n", 10, 1, SMTP_DATA_F_BARE_EOL);
	check_slices((const char *[]){ "abc\r", "\r", "\n", ".\r\n", NULL },
	    0, 0, "abc\r\n\r\n", 9, 1, SMTP_DATA_F_BARE_EOL);
	/* The held CR was real: the next line starts, and "." ends. */
	check_slices((const char *[]){ "a\r", "\n", ".", "\r", "\n", "x",
	    NULL }, 0, 0, "a\r\n", 6, 1, 0);
	/* "." CR held, then not LF: a dropped dot and a bare CR. */
	check_slices((const char *[]){ "a\r\n.\r", "x\r\n.\r\n", NULL }, 0,
	    0, "a\r\n\r\nx\r\n", 11, 1, SMTP_DATA_F_BARE_EOL);
	check_slices((const char *[]){ "a\r\n.\r", "\r", "\n.\r\n", NULL },
	    0, 0, "a\r\n\r\n\r\n", 10, 1, SMTP_DATA_F_BARE_EOL);
	/* A held dot followed by another dot. */
	check_slices((const char *[]){ "a\r\n.", ".\r\n.\r\n", NULL }, 0, 0,
	    "a\r\n.\r\n", 10, 1, 0);
	/* Nothing held is written until decided. */
	check_slices((const char *[]){ "a\r\n.\r", NULL }, 0, 0, "a\r\n", 5,
	    0, 0);
	/* Empty slices change nothing. */
	check_slices((const char *[]){ "", "a\r", "", "\n", "", ".\r\n", NULL },
	    0, 0, "a\r\n", 6, 1, 0);
}

static void
test_nul(void **state)
{
	(void)state;
	{
		static const char in[] = "a\0b\r\n\0\r\n.\r\n";
		static const char want[] = "a\0b\r\n\0\r\n";

		check_data(in, sizeof(in) - 1, want, sizeof(want) - 1,
		    sizeof(in) - 1, 1, SMTP_DATA_F_NUL, __FILE__, __LINE__);
	}
	/* A NUL at a line start does not make the dot a line-start dot. */
	{
		static const char in[] = "\0.\r\n.\r\n";
		static const char want[] = "\0.\r\n";

		check_data(in, sizeof(in) - 1, want, sizeof(want) - 1,
		    sizeof(in) - 1, 1, SMTP_DATA_F_NUL, __FILE__, __LINE__);
	}
}

/* ---- size ---- */

static void
test_size_limit(void **state)
{
	/* Output: "0123456789\r\n" * 10 = 120 octets. */
	char in[200];
	size_t n = 0, msg;
	struct result r, ref;

	(void)state;
	for (int i = 0; i < 10; i++) {
		memcpy(in + n, "0123456789\r\n", 12);
		n += 12;
	}
	memcpy(in + n, ".\r\nNOOP\r\n", 9);
	msg = n + 3;
	n += 9;

	/* Exactly at the limit. */
	run_whole(in, n, 0, 120, 0, &r);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.size, 120);
	assert_int_equal(r.out.len, 120);
	assert_true(r.done);
	assert_int_equal(r.consumed, msg);
	result_free(&r);

	/* One over: stop writing at the limit, keep reading to the end. */
	run_whole(in, n, 0, 119, 0, &r);
	assert_int_equal(r.flags, SMTP_DATA_F_TOO_BIG);
	assert_int_equal(r.size, 120);
	assert_int_equal(r.out.len, 119);
	assert_memory_equal(r.out.buf, in, 119);
	assert_true(r.done);
	assert_int_equal(r.consumed, msg);
	reference(in, n, 0, 119, 0, &ref);
	assert_same(&r, &ref, in, n, "reference");
	result_free(&r);
	result_free(&ref);

	/* Sticky, byte by byte, and a bare LF past the limit is still seen. */
	{
		struct smtp_data d;
		struct out o = { 0 };

		smtp_data_init(&d, 0, 5, sink, &o);
		for (const char *p = "abcdef\r\nxy\nz\0\r\n.\r\n"; !d.done; p++) {
			assert_int_equal(smtp_data_feed(&d, p, 1), 1);
			if (d.size > 5)
				assert_true(d.flags & SMTP_DATA_F_TOO_BIG);
			else
				assert_false(d.flags & SMTP_DATA_F_TOO_BIG);
		}
		assert_int_equal(o.len, 5);
		assert_memory_equal(o.buf, "abcde", 5);
		assert_int_equal(d.size, 16);
		assert_int_equal(d.flags, SMTP_DATA_F_TOO_BIG |
		    SMTP_DATA_F_BARE_EOL | SMTP_DATA_F_NUL);
		free(o.buf);
	}

	/* No limit. */
	run_whole(in, n, 0, 0, 0, &r);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.out.len, 120);
	result_free(&r);

	/* The size counts output, after unstuffing and normalisation. */
	CHECK_DATA("..\n\r\n.\r\n", ".\r\n\r\n", 8, 1, SMTP_DATA_F_BARE_EOL);
}

/* ---- hops ---- */

static unsigned
hops(const char *in, size_t n, int bdat)
{
	struct result r, ref;
	unsigned h;

	run_whole(in, n, bdat, 0, 1, &r);
	reference(in, n, bdat, 0, 1, &ref);
	assert_same(&r, &ref, in, n, "reference");
	h = r.received;
	result_free(&r);
	result_free(&ref);
	return h;
}

#define HOPS(lit)	hops(S(lit), 0)

static void
check_many_received(unsigned count)
{
	static const char field[] = "Received: from a.example by b.example;"
	    " Mon, 1 Jan 2024 00:00:00 +0000\r\n";
	size_t fl = sizeof(field) - 1;
	size_t cap = (count + 4) * fl + 64, n = 0;
	char *in = malloc(cap);

	assert_non_null(in);
	memcpy(in + n, "Subject: loop\r\n", 15);
	n += 15;
	for (unsigned i = 0; i < count; i++) {
		memcpy(in + n, field, fl);
		n += fl;
	}
	memcpy(in + n, "\r\nbody\r\n.\r\n", 11);
	n += 11;
	assert_int_equal(hops(in, n, 0), count);
	assert_int_equal(hops(in, n, 1), count);
	/* Byte by byte too. */
	{
		struct smtp_data d;

		smtp_data_init(&d, 0, 0, NULL, NULL);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(smtp_data_feed(&d, in + i, 1), 1);
		assert_true(d.done);
		assert_int_equal(d.received, count);
	}
	free(in);
}

static void
test_hops_50_51(void **state)
{
	(void)state;
	check_many_received(50);
	check_many_received(51);
	check_many_received(0);
}

static void
test_hops_forms(void **state)
{
	(void)state;
	assert_int_equal(HOPS("Received: a\r\n\r\n.\r\n"), 1);
	assert_int_equal(HOPS("RECEIVED: a\r\nreceived:b\r\nReCeIvEd:\r\n"
	    "\r\n.\r\n"), 3);
	/* Obsolete syntax: blanks before the colon. */
	assert_int_equal(HOPS("Received : a\r\nReceived\t: b\r\n\r\n.\r\n"), 2);
	/* Other fields. */
	assert_int_equal(HOPS("X-Received: a\r\nReceived-SPF: pass\r\n"
	    "Receive: a\r\nReceived a\r\nReceivedd: a\r\n\r\n.\r\n"), 0);
	/* Continuation lines are not fields. */
	assert_int_equal(HOPS("Received: a\r\n Received: b\r\n\tReceived: c\r\n"
	    "\r\n.\r\n"), 1);
	/* Nothing after the header section counts. */
	assert_int_equal(HOPS("Subject: x\r\n\r\nReceived: a\r\n.\r\n"), 0);
	assert_int_equal(HOPS("\r\nReceived: a\r\n.\r\n"), 0);
	/* A dot-stuffed field is a field once unstuffed. */
	assert_int_equal(HOPS(".Received: a\r\n\r\n.\r\n"), 1);
	/* The header section ends at an empty line of the output. */
	assert_int_equal(HOPS("Received: a\n\nReceived: b\r\n.\r\n"), 1);
	assert_int_equal(HOPS("Received: a\r\r\nReceived: b\r\n.\r\n"), 1);
	/* A bare LF ends a header line in the stored message. */
	assert_int_equal(HOPS("Subject: x\nReceived: b\r\n\r\n.\r\n"), 1);
	/* Not at a line start. */
	assert_int_equal(HOPS("Subject: Received: a\r\n\r\n.\r\n"), 0);
}

static void
test_hops_split(void **state)
{
	static const char in[] = "Subject: x\r\nReceived: a\r\nrECEIVED\t :b\r\n"
	    " Received: c\r\nReceived: d\r\n\r\nReceived: e\r\n.\r\n";
	size_t n = sizeof(in) - 1;

	(void)state;
	for (size_t i = 0; i <= n; i++)
		for (size_t j = i; j <= n; j++) {
			size_t cuts[2] = { i, j };
			struct result r;

			run_cuts(in, n, 0, 0, 0, cuts, 2, &r);
			assert_int_equal(r.received, 3);
			assert_true(r.done);
			result_free(&r);
		}
}

/* ---- BDAT ---- */

static void
test_bdat(void **state)
{
	(void)state;
	/* No dot handling and no end. */
	check_slices((const char *[]){ "..a\r\n.\r\nb", NULL }, 1, 1,
	    "..a\r\n.\r\nb", 9, 0, 0);
	check_slices((const char *[]){ ".\r\n", NULL }, 1, 1, ".\r\n", 3, 0, 0);
	/* CR at the end of one chunk, LF at the start of the next. */
	check_slices((const char *[]){ "a\r", "\nb\r\n", NULL }, 1, 1,
	    "a\r\nb\r\n", 6, 0, 0);
	check_slices((const char *[]){ "a\r", "b", NULL }, 1, 1, "a\r\nb", 3,
	    0, SMTP_DATA_F_BARE_EOL);
	check_slices((const char *[]){ "a\r", "\r", "\n", NULL }, 1, 1,
	    "a\r\n\r\n", 4, 0, SMTP_DATA_F_BARE_EOL);
	/* The last chunk ends in a CR: finish writes it as a bare CR. */
	check_slices((const char *[]){ "a\r\nb\r", NULL }, 1, 1,
	    "a\r\nb\r\n", 5, 0, SMTP_DATA_F_BARE_EOL);
	check_slices((const char *[]){ "a\r\nb\r", NULL }, 1, 0,
	    "a\r\nb", 5, 0, 0);
	/* Bare LF; no end of data in BDAT. */
	check_slices((const char *[]){ "a\nb\n.\n", NULL }, 1, 1,
	    "a\r\nb\r\n.\r\n", 6, 0, SMTP_DATA_F_BARE_EOL);
	/* Empty chunks and a finish with nothing held. */
	check_slices((const char *[]){ "", "a\r\n", "", NULL }, 1, 1,
	    "a\r\n", 3, 0, 0);
	check_slices((const char *[]){ NULL }, 1, 1, "", 0, 0, 0);
}

static void
test_bdat_size_and_hops(void **state)
{
	struct smtp_data d;
	struct out o = { 0 };

	(void)state;
	smtp_data_init(&d, 1, 30, sink, &o);
	assert_int_equal(smtp_data_feed(&d, S("Received: a\r")), 12);
	assert_int_equal(smtp_data_feed(&d, S("\nRece")), 5);
	assert_int_equal(smtp_data_feed(&d, S("ived: b\n\r\nReceived: c\r\n")),
	    23);
	smtp_data_finish(&d);
	assert_int_equal(d.received, 2);
	assert_int_equal(d.size, 41);
	assert_true(d.flags & SMTP_DATA_F_TOO_BIG);
	assert_true(d.flags & SMTP_DATA_F_BARE_EOL);
	assert_int_equal(o.len, 30);
	assert_memory_equal(o.buf, "Received: a\r\nReceived: b\r\n\r\nRe", 30);
	assert_false(d.done);
	free(o.buf);
}

/* ---- every way of slicing ---- */

struct sample {
	const char *in;
	size_t len;
};

static const struct sample samples[] = {
	{ S("") },
	{ S(".\r\n") },
	{ S(".\r\nQUIT\r\n") },
	{ S("Subject: hi\r\n\r\nHello\r\n.\r\nQUIT\r\n") },
	{ S("..foo\r\n.bar\r\n...\r\n..\r\n.\r\n") },
	{ S("a\n.\nb\r.\rc\r.\nd\n.\re\n.\r\nf\r\n.\ng") },
	{ S("a\r.\r\nb\r\n.\rc\r\n\0.\r\nd\r\n.\r\r\ne\r\n.\r\n") },
	{ S("\r\r\r\n\n\n\r\n\r\r.\r\n.\r\n") },
	{ S(".\r\r\n.\r\n") },
	{ S(".\n.\r\n") },
	{ S("\r\n.\r\n") },
	{ S("\r") },
	{ S(".\r") },
	{ S("a\r\n.") },
	{ S("a\0\0\r\n\0\r\n.\0\r\n.\r\n") },
	{ S("Received: a\r\nreceived :b\r\n Received: c\r\n"
	    "X-Received: d\r\nReceived\n\nReceived: e\r\n.\r\n") },
	{ S("Received: a\rReceived: b\r\r\nReceived: c\r\n\r\n.\r\n") },
	{ S("Subject: x\r\n\r\n.Received: y\r\n..\r\n.\r\nRSET\r\n") },
	{ S("0123456789abcdefghijklmnopqrstuvwxyz0123456789\r\n"
	    "0123456789abcdefghijklmnopqrstuvwxyz\n0123456789\r\n.\r\n") },
	{ S("Subject: test\r\n\r\nmessage text\r\n.\r\r\n"
	    "MAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nsmuggled\r\n"
	    "\r\n.\r\n") },
};

static const uint64_t maxes[] = { 0, 1, 2, 7, 20 };

static void
check_all_splits(const char *in, size_t n, int pairs)
{
	for (int bdat = 0; bdat <= 1; bdat++)
		for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
			int finish = bdat;
			struct result whole, ref, r;
			size_t *cuts = malloc((n + 2) * sizeof(*cuts));

			assert_non_null(cuts);
			run_whole(in, n, bdat, maxes[m], finish, &whole);
			reference(in, n, bdat, maxes[m], finish, &ref);
			assert_same(&whole, &ref, in, n, "reference");

			/* One cut anywhere. */
			for (size_t i = 0; i <= n; i++) {
				run_cuts(in, n, bdat, maxes[m], finish, &i, 1,
				    &r);
				assert_same(&r, &whole, in, n, "one cut");
				result_free(&r);
			}
			/* Two cuts anywhere. */
			for (size_t i = 0; pairs && i <= n; i++)
				for (size_t j = i; j <= n; j++) {
					cuts[0] = i;
					cuts[1] = j;
					run_cuts(in, n, bdat, maxes[m], finish,
					    cuts, 2, &r);
					assert_same(&r, &whole, in, n,
					    "two cuts");
					result_free(&r);
				}
			/* Byte by byte. */
			for (size_t i = 0; i < n; i++)
				cuts[i] = i + 1;
			run_cuts(in, n, bdat, maxes[m], finish, cuts,
			    n > 0 ? n - 1 : 0, &r);
			assert_same(&r, &whole, in, n, "byte by byte");
			result_free(&r);
			free(cuts);
			result_free(&whole);
			result_free(&ref);
		}
}

static void
test_exhaustive_splits(void **state)
{
	(void)state;
	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++)
		check_all_splits(samples[s].in, samples[s].len, 1);
	for (size_t s = 0; s < sizeof(smuggles) / sizeof(smuggles[0]); s++) {
		char in[256];
		size_t n = 0;

		append(in, &n, S("text"));
		append(in, &n, smuggles[s].seq, smuggles[s].seqlen);
		append(in, &n, S("DATA\r\nx\r\n.\r\nQUIT\r\n"));
		check_all_splits(in, n, 1);
	}
}

/* A small deterministic generator (xorshift64*). */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/*
 * Random inputs built from the tokens that matter, checked against the
 * reference whole and against random slicings.
 */
static void
test_random_against_reference(void **state)
{
	static const struct sample tokens[] = {
		{ S("\r") }, { S("\n") }, { S(".") }, { S("\0") }, { S("a") },
		{ S("\r\n") }, { S(".\r\n") }, { S("\r\n.\r\n") }, { S("..") },
		{ S("Received:") }, { S("rECEIVED \t:") }, { S(" ") },
		{ S("\t") }, { S("x: y") }, { S("\r\n\r\n") }, { S("Received") },
		{ S("\r\n.") }, { S(".\r") },
	};
	const size_t ntok = sizeof(tokens) / sizeof(tokens[0]);
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		char in[256];
		size_t n = 0, want = rnd(&seed) % 40;
		int bdat = (int)(rnd(&seed) & 1);
		uint64_t max = maxes[rnd(&seed) % 5];
		struct result whole, ref, r;
		size_t cuts[8], nc = 0;

		while (want-- > 0) {
			const struct sample *t = &tokens[rnd(&seed) % ntok];

			memcpy(in + n, t->in, t->len);
			n += t->len;
		}
		run_whole(in, n, bdat, max, bdat, &whole);
		reference(in, n, bdat, max, bdat, &ref);
		assert_same(&whole, &ref, in, n, "reference, random");
		nc = (size_t)(rnd(&seed) % 8);
		for (size_t i = 0; i < nc; i++)
			cuts[i] = n > 0 ? (size_t)(rnd(&seed) % (n + 1)) : 0;
		for (size_t i = 1; i < nc; i++)	/* insertion sort */
			for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
				size_t t = cuts[j];

				cuts[j] = cuts[j - 1];
				cuts[j - 1] = t;
			}
		run_cuts(in, n, bdat, max, bdat, cuts, nc, &r);
		assert_same(&r, &whole, in, n, "random cuts");
		result_free(&r);
		result_free(&whole);
		result_free(&ref);
	}
}

/* ---- batching ---- */

static void
test_batching(void **state)
{
	size_t n = 64 * 1024, lines = 0;
	char *in = malloc(n + 3);
	struct result r;

	(void)state;
	assert_non_null(in);
	for (size_t i = 0; i < n; i++) {
		if (i % 72 == 70)
			in[i] = '\r';
		else if (i % 72 == 71) {
			in[i] = '\n';
			lines++;
		} else
			in[i] = (char)('a' + i % 26);
	}
	in[n - 2] = '\r';
	in[n - 1] = '\n';
	memcpy(in + n, ".\r\n", 3);
	run_whole(in, n + 3, 0, 0, 0, &r);
	assert_true(r.done);
	assert_int_equal(r.out.len, n);
	assert_memory_equal(r.out.buf, in, n);
	/* Plain CRLF text goes to the sink in one piece. */
	assert_int_equal(r.out.calls, 1);
	assert_true(lines > 100);
	result_free(&r);

	/* Dot-stuffed lines cost one break each, not one call per octet. */
	for (size_t i = 0; i + 72 <= n; i += 72)
		in[i] = '.';
	run_whole(in, n + 3, 0, 0, 0, &r);
	assert_true(r.done);
	assert_true(r.out.calls <= n / 72 + 2);
	result_free(&r);
	free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_ordinary_message),
		cmocka_unit_test(test_after_done),
		cmocka_unit_test(test_unstuffing),
		cmocka_unit_test(test_smuggle_table),
		cmocka_unit_test(test_smuggle_0),
		cmocka_unit_test(test_smuggle_1),
		cmocka_unit_test(test_smuggle_2),
		cmocka_unit_test(test_smuggle_3),
		cmocka_unit_test(test_smuggle_4),
		cmocka_unit_test(test_smuggle_5),
		cmocka_unit_test(test_smuggle_6),
		cmocka_unit_test(test_smuggle_7),
		cmocka_unit_test(test_smuggle_8),
		cmocka_unit_test(test_smuggle_9),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_bare_cr),
		cmocka_unit_test(test_cr_at_slice_end),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_hops_50_51),
		cmocka_unit_test(test_hops_forms),
		cmocka_unit_test(test_hops_split),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_bdat_size_and_hops),
		cmocka_unit_test(test_exhaustive_splits),
		cmocka_unit_test(test_random_against_reference),
		cmocka_unit_test(test_batching),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
