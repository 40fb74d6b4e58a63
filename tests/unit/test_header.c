/*
 * test_header.c - unit tests for lib/header.c: header_get (folding, names,
 * first match, control characters, truncation) and header_block_len.
 *
 * Every input is copied into a heap buffer of exactly its length, and the
 * output into one of exactly outlen bytes, so AddressSanitizer reports a
 * read past len or a write past outlen.  The message tests feed every
 * prefix of a message, byte by byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/header.h"

#define OUT_MAX	512

/* A heap copy of exactly n bytes (one byte, unread, when n is 0). */
static char *
dup_exact(const char *s, size_t n)
{
	char *b = malloc(n ? n : 1);

	assert_non_null(b);
	if (n > 0)
		memcpy(b, s, n);
	return b;
}

/*
 * header_get on an exact copy of buf[0..len) with an exact heap output
 * of outlen bytes; the value is copied to got (at most OUT_MAX bytes).
 */
static int
get_n(const char *buf, size_t len, const char *name, size_t outlen, char *got)
{
	char *b = dup_exact(buf, len);
	char *out = malloc(outlen ? outlen : 1);
	int r;

	assert_non_null(out);
	assert_true(outlen <= OUT_MAX);
	memset(out, 'Z', outlen ? outlen : 1);
	r = header_get(b, len, name, out, outlen);
	if (outlen > 0) {
		assert_non_null(memchr(out, '\0', outlen));
		strcpy(got, out);
	} else {
		assert_int_equal(out[0], 'Z');	/* nothing written */
		got[0] = '\0';
	}
	free(out);
	free(b);
	return r;
}

static int
get(const char *buf, const char *name, char *got)
{
	return get_n(buf, strlen(buf), name, OUT_MAX, got);
}

static size_t
block_len(const char *buf, size_t len)
{
	char *b = dup_exact(buf, len);
	size_t n = header_block_len(b, len);

	free(b);
	return n;
}

#define assert_header(buf, name, want) do {				\
	char got_[OUT_MAX];						\
	assert_int_equal(get(buf, name, got_), 1);			\
	assert_string_equal(got_, want);				\
} while (0)

#define assert_no_header(buf, name) do {				\
	char got_[OUT_MAX];						\
	assert_int_equal(get(buf, name, got_), 0);			\
	assert_string_equal(got_, "");					\
} while (0)

static const char msg_crlf[] =
    "Return-Path: <a@example.test>\r\n"
    "From: Alice Example <alice@example.test>\r\n"
    "Subject: Quarterly numbers\r\n"
    " and the\r\n"
    "\tforecast\r\n"
    "To: bob@example.test\r\n"
    "\r\n"
    "Subject: not a header\r\n";

static void
test_simple_fields(void **state)
{
	assert_header(msg_crlf, "From", "Alice Example <alice@example.test>");
	assert_header(msg_crlf, "To", "bob@example.test");
	assert_header(msg_crlf, "Return-Path", "<a@example.test>");
	assert_no_header(msg_crlf, "Date");
	assert_no_header(msg_crlf, "Cc");
}

static void
test_folding(void **state)
{
	assert_header(msg_crlf, "Subject", "Quarterly numbers and the forecast");
	/* LF-only lines fold the same. */
	assert_header("Subject: one\n two\n\tthree\nTo: x\n\n", "Subject", "one two three");
	/* A continuation line of only blanks adds nothing. */
	assert_header("Subject: a\r\n \r\n\t \r\n b\r\n\r\n", "Subject", "a b");
	/* The value may start on the continuation line. */
	assert_header("Subject:\r\n Hello\r\n\r\n", "Subject", "Hello");
	/* A folded other field does not run into the one after it. */
	assert_header("X-A: 1\r\n 2\r\nSubject: s\r\n 3\r\nX-B: 4\r\n", "Subject", "s 3");
	assert_header("X-A: 1\r\n 2\r\nSubject: s\r\n 3\r\nX-B: 4\r\n", "X-A", "1 2");
}

static void
test_name_case_insensitive(void **state)
{
	assert_header(msg_crlf, "subject", "Quarterly numbers and the forecast");
	assert_header(msg_crlf, "FROM", "Alice Example <alice@example.test>");
	assert_header("sUbJeCt: mixed\r\n", "SubJect", "mixed");
	/* The value keeps its case. */
	assert_header("subject: MiXeD\r\n", "Subject", "MiXeD");
}

static void
test_first_match_wins(void **state)
{
	assert_header("Subject: first\r\nSubject: second\r\n", "Subject", "first");
	assert_header("subject: first\r\n folded\r\nSUBJECT: second\r\n"
	    " more\r\n\r\n", "Subject", "first folded");
	/* An empty first one still wins. */
	assert_header("Subject:\r\nSubject: second\r\n", "Subject", "");
}

static void
test_prefix_names(void **state)
{
	static const char m[] = "Subject-Line: long\r\nSub: short\r\n"
	    "Subject: right\r\nSubjects: plural\r\n";

	assert_header(m, "Subject", "right");
	assert_header(m, "Sub", "short");
	assert_header(m, "Subject-Line", "long");
	assert_header(m, "Subjects", "plural");
	assert_no_header(m, "Subj");
	assert_no_header(m, "S");
	assert_no_header(m, "Subject-Lines");
	assert_no_header(m, "Subject-Line: long");
	/* A name without its colon is not that field. */
	assert_no_header("Subject\r\nFrom: a\r\n", "Subject");
	assert_no_header("Subject", "Subject");
}

static void
test_continuations_and_body_never_match(void **state)
{
	/* A field name inside a continuation line, or in the body. */
	assert_no_header("X-A: 1\r\n Subject: no\r\n\tSubject: no\r\n\r\n"
	    "Subject: body\r\n", "Subject");
	assert_no_header("X-A: 1\n\nSubject: body\n", "Subject");
	/* A continuation line before any field belongs to nothing. */
	assert_no_header(" Subject: no\r\n", "Subject");
	assert_header(" Subject: no\r\nSubject: yes\r\n", "Subject", "yes");
	/* An empty line first: no header at all. */
	assert_no_header("\r\nSubject: body\r\n", "Subject");
	assert_no_header("\nSubject: body\n", "Subject");
}

static void
test_controls_become_spaces(void **state)
{
	char got[OUT_MAX];

	assert_header("Subject: a\tb\x01" "c\x1f" "d\x7f" "e\r\n", "Subject", "a b c d e");
	/* Runs of blanks and controls are one space; none at either end. */
	assert_header("Subject: \t a \x1b\x1b  b \t \r\n", "Subject", "a b");
	assert_header("Subject:\t\t\r\n", "Subject", "");
	/* A bare CR does not end a line: it becomes a space. */
	assert_header("Subject: a\rFrom: b\r\n", "Subject", "a From: b");
	assert_header("Subject: a\r\r\n\r\n", "Subject", "a");
	/* Bytes above 0x7f (UTF-8, Latin-1) are kept as they are. */
	assert_header("Subject: Gr\xc3\xbc\xc3\x9f" "e \xa0x\r\n", "Subject",
	    "Gr\xc3\xbc\xc3\x9f" "e \xa0x");
	/* NUL is a control character: it neither ends the value nor the block. */
	{
		static const char m[] = "Subject: a\0b\r\nFrom: c\0\r\n\r\n";

		assert_int_equal(get_n(m, sizeof(m) - 1, "Subject", OUT_MAX, got), 1);
		assert_string_equal(got, "a b");
		assert_int_equal(get_n(m, sizeof(m) - 1, "From", OUT_MAX, got), 1);
		assert_string_equal(got, "c");
		assert_int_equal(block_len(m, sizeof(m) - 1), sizeof(m) - 1);
	}
	/* A NUL in the name part means another name. */
	{
		static const char m[] = "Sub\0ect: a\r\n";

		assert_int_equal(get_n(m, sizeof(m) - 1, "Subject", OUT_MAX, got), 0);
		assert_int_equal(get_n(m, sizeof(m) - 1, "Sub", OUT_MAX, got), 0);
	}
}

static void
test_truncation(void **state)
{
	static const char m[] = "Subject: Hello world\r\n again\r\n\r\n";
	char got[OUT_MAX];

	assert_int_equal(get_n(m, strlen(m), "Subject", 6, got), 1);
	assert_string_equal(got, "Hello");
	/* Cut just after a space: the space goes. */
	assert_int_equal(get_n(m, strlen(m), "Subject", 7, got), 1);
	assert_string_equal(got, "Hello");
	assert_int_equal(get_n(m, strlen(m), "Subject", 8, got), 1);
	assert_string_equal(got, "Hello w");
	/* Exactly fits, one short, across the fold. */
	assert_int_equal(get_n(m, strlen(m), "Subject", 18, got), 1);
	assert_string_equal(got, "Hello world again");
	assert_int_equal(get_n(m, strlen(m), "Subject", 17, got), 1);
	assert_string_equal(got, "Hello world agai");
	assert_int_equal(get_n(m, strlen(m), "Subject", 13, got), 1);
	assert_string_equal(got, "Hello world");
	/* outlen 1: room for the terminator only, found all the same. */
	assert_int_equal(get_n(m, strlen(m), "Subject", 1, got), 1);
	assert_string_equal(got, "");
	assert_int_equal(get_n(m, strlen(m), "From", 1, got), 0);
	assert_string_equal(got, "");
	/* outlen 0: nothing can be written, and nothing is. */
	assert_int_equal(get_n(m, strlen(m), "Subject", 0, got), 0);
	/* A long value into a small buffer. */
	{
		char big[4096];

		memcpy(big, "Subject: ", 9);
		memset(big + 9, 'x', sizeof(big) - 9 - 3);
		memcpy(big + sizeof(big) - 3, "\r\n", 3);
		for (size_t n = 1; n <= 300; n++) {
			assert_int_equal(get_n(big, strlen(big), "Subject", n, got), 1);
			assert_int_equal(strlen(got), n - 1);
		}
	}
}

static void
test_no_empty_line(void **state)
{
	static const char m[] = "From: a\r\nSubject: b";

	assert_header(m, "Subject", "b");
	assert_header(m, "From", "a");
	assert_int_equal(block_len(m, strlen(m)), strlen(m));
	assert_header("Subject: b\r\n", "Subject", "b");
	assert_int_equal(block_len("Subject: b\r\n", 12), 12);
	assert_header("Subject: b\r\n folded", "Subject", "b folded");
	/* A last line of a lone CR is not an empty line. */
	assert_int_equal(block_len("Subject: b\r\n\r", 13), 13);
}

static void
test_block_len(void **state)
{
	static const char lf[] = "From: a\nSubject: b\n\nbody\n\n";

	assert_int_equal(block_len(msg_crlf, strlen(msg_crlf)),
	    strstr(msg_crlf, "\r\n\r\n") + 4 - msg_crlf);
	assert_int_equal(block_len(lf, strlen(lf)), strstr(lf, "\n\n") + 2 - lf);
	assert_int_equal(block_len("\r\nbody", 6), 2);
	assert_int_equal(block_len("\nbody", 5), 1);
	/* A blank (not empty) line is a continuation, not the end. */
	assert_int_equal(block_len("A: 1\r\n \r\nB: 2\r\n\r\nx", 18), 17);
	/* Mixed endings: an LF-only empty line after CRLF lines ends it. */
	assert_int_equal(block_len("A: 1\r\n\nB: 2\r\n", 13), 7);
	/* Within the block, header_get sees the same as on the whole message. */
	assert_header("A: 1\r\n\r\nSubject: body\r\n", "A", "1");
}

static void
test_empty_input(void **state)
{
	static const char m[] = "Subject: x\r\n";
	char got[OUT_MAX];

	/* len 0, with a buffer of nothing and with one holding a field. */
	assert_int_equal(get_n("", 0, "Subject", OUT_MAX, got), 0);
	assert_string_equal(got, "");
	assert_int_equal(block_len("", 0), 0);
	assert_int_equal(get_n(m, 0, "Subject", OUT_MAX, got), 0);
	assert_string_equal(got, "");
	assert_int_equal(block_len(m, 0), 0);
	assert_int_equal(get_n(m, 0, "Subject", 1, got), 0);
	/* An empty value is found, and empty. */
	assert_header("Subject:\r\n\r\n", "Subject", "");
	assert_header("Subject:", "Subject", "");
	assert_header("Subject:   \r\n", "Subject", "");
}

/*
 * The reference for a value: controls to spaces, runs of spaces to one,
 * none at either end, then cut to outlen - 1 bytes and trailing spaces
 * dropped.
 */
static void
ref_value(const char *raw, size_t n, size_t outlen, char *out)
{
	size_t o = 0;
	int pending = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c < 0x20 || c == 0x7f || c == ' ') {
			pending = o > 0;
			continue;
		}
		if (pending)
			out[o++] = ' ';
		pending = 0;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (outlen > 0 && o > outlen - 1)
		out[outlen - 1] = '\0';
	o = strlen(out);
	while (o > 0 && out[o - 1] == ' ')
		out[--o] = '\0';
}

/*
 * Every prefix of m, byte by byte: the field name of field is found once
 * its colon is in, with the value cut where the prefix ends; the block
 * ends at the prefix's end until its empty line is all in.
 */
static void
check_prefixes(const char *m, size_t len, const char *name, const char *field_at,
    const char *field_end)
{
	size_t block = block_len(m, len);
	size_t vstart = (size_t)(field_at - m) + strlen(name) + 1;
	size_t vend = (size_t)(field_end - m);
	static const size_t outlens[] = { 1, 2, 5, 16, OUT_MAX };

	for (size_t n = 0; n <= len; n++) {
		assert_int_equal(block_len(m, n), n < block ? n : block);
		for (size_t k = 0; k < sizeof(outlens) / sizeof(outlens[0]); k++) {
			char got[OUT_MAX], want[OUT_MAX];
			int r = get_n(m, n, name, outlens[k], got);

			if (n < vstart) {
				assert_int_equal(r, 0);
				assert_string_equal(got, "");
				continue;
			}
			assert_int_equal(r, 1);
			ref_value(m + vstart, (n < vend ? n : vend) - vstart, outlens[k], want);
			assert_string_equal(got, want);
		}
	}
}

static void
test_every_prefix_crlf(void **state)
{
	const char *subj = strstr(msg_crlf, "Subject:");
	const char *to = strstr(msg_crlf, "To:");
	const char *end = strstr(msg_crlf, "\r\n\r\n") + 2;

	check_prefixes(msg_crlf, strlen(msg_crlf), "Subject", subj, to);
	check_prefixes(msg_crlf, strlen(msg_crlf), "subject", subj, to);
	check_prefixes(msg_crlf, strlen(msg_crlf), "From", strstr(msg_crlf, "From:"), subj);
	check_prefixes(msg_crlf, strlen(msg_crlf), "To", to, end);
	check_prefixes(msg_crlf, strlen(msg_crlf), "Return-Path", msg_crlf,
	    strstr(msg_crlf, "From:"));
}

static void
test_every_prefix_lf(void **state)
{
	static const char m[] =
	    "X-Umbox-Kind: voicemail\n"
	    "Subject: Voicemail from\n"
	    "  +1 555 0100\t(3 s)\n"
	    "X-Umbox-Duration: 3\n"
	    "\n"
	    "Subject: body\n";
	const char *subj = strstr(m, "Subject:");
	const char *dur = strstr(m, "X-Umbox-Duration:");

	check_prefixes(m, strlen(m), "Subject", subj, dur);
	check_prefixes(m, strlen(m), "X-Umbox-Kind", m, subj);
	check_prefixes(m, strlen(m), "x-umbox-duration", dur, strstr(m, "\n\n") + 1);
}

/* Fields that never come: nothing found at any prefix. */
static void
test_every_prefix_missing(void **state)
{
	char got[OUT_MAX];

	for (size_t n = 0; n <= strlen(msg_crlf); n++) {
		assert_int_equal(get_n(msg_crlf, n, "Date", OUT_MAX, got), 0);
		assert_int_equal(get_n(msg_crlf, n, "Sub", OUT_MAX, got), 0);
		assert_int_equal(get_n(msg_crlf, n, "Subject:", OUT_MAX, got), 0);
		assert_string_equal(got, "");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_fields),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_name_case_insensitive),
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_prefix_names),
		cmocka_unit_test(test_continuations_and_body_never_match),
		cmocka_unit_test(test_controls_become_spaces),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_no_empty_line),
		cmocka_unit_test(test_block_len),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_every_prefix_crlf),
		cmocka_unit_test(test_every_prefix_lf),
		cmocka_unit_test(test_every_prefix_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
