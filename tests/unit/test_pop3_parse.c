/*
 * test_pop3_parse.c - unit tests for pop3d/parse.c: command lines,
 * keywords, arguments, PASS and AUTH, limits, message numbers.
 *
 * Every input is copied into a heap buffer of exactly its length before it
 * is parsed, so AddressSanitizer reports any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3d/parse.h"

/* A heap copy of exactly n bytes; malloc(0) when n is 0. */
static char *
dup_exact(const char *s, size_t n)
{
	char *b = malloc(n);

	if (n == 0 && b == NULL)
		b = malloc(1);
	assert_non_null(b);
	if (n > 0)
		memcpy(b, s, n);
	return b;
}

/* A parse result with its pieces copied out as C strings. */
struct res {
	enum pop3_parse_status st;
	enum pop3_verb verb;
	size_t nargs;
	char args[POP3_ARGS_MAX][POP3_LINE_MAX];
	char rest[POP3_LINE_MAX];
	size_t rest_off;	/* rest.p - line */
};

static void
copy_arg(char *dst, const struct pop3_arg *a)
{
	assert_true(a->len < POP3_LINE_MAX);
	memcpy(dst, a->p, a->len);
	dst[a->len] = '\0';
}

/*
 * Check the shape of a result for line base[0..n): every pointer inside
 * the line, arguments in order and free of spaces (but PASS), rest always
 * set.  Lines longer than the limit are not copied out.
 */
static void
check_shape(const char *base, size_t n, enum pop3_parse_status st,
    const struct pop3_command *c)
{
	const char *end = base + n;

	assert_non_null(pop3_verb_name(c->verb));
	assert_true(c->nargs <= POP3_ARGS_MAX);
	assert_non_null(c->rest.p);
	assert_true(c->rest.p >= base && c->rest.p <= end);
	assert_true(c->rest.len <= (size_t)(end - c->rest.p));
	for (size_t i = 0; i < c->nargs; i++) {
		const struct pop3_arg *a = &c->args[i];

		assert_true(a->p >= base && a->p <= end);
		assert_true(a->len <= (size_t)(end - a->p));
		assert_true(a->len > 0);
		if (c->verb != POP3_CMD_PASS)
			assert_null(memchr(a->p, ' ', a->len));
	}
	if (st != POP3_PARSE_OK && st != POP3_PARSE_TOO_MANY_ARGS) {
		assert_int_equal(c->verb, POP3_CMD_UNKNOWN);
		assert_ptr_equal(c->rest.p, base);
		assert_int_equal(c->rest.len, 0);
	}
	if (st != POP3_PARSE_OK)
		assert_int_equal(c->nargs, 0);
	if (st == POP3_PARSE_TOO_MANY_ARGS)
		assert_int_not_equal(c->verb, POP3_CMD_UNKNOWN);
	if (st == POP3_PARSE_OK || st == POP3_PARSE_TOO_MANY_ARGS) {
		/* rest runs to the end, after the keyword and one space. */
		assert_ptr_equal(c->rest.p + c->rest.len, end);
		assert_true(c->rest.p == end || c->rest.p == base ||
		    c->rest.p[-1] == ' ');
	}
	if (st == POP3_PARSE_OK && c->verb == POP3_CMD_PASS) {
		assert_int_equal(c->nargs, c->rest.len > 0);
		if (c->nargs == 1) {
			assert_ptr_equal(c->args[0].p, c->rest.p);
			assert_int_equal(c->args[0].len, c->rest.len);
		}
	} else if (st == POP3_PARSE_OK && c->verb != POP3_CMD_UNKNOWN &&
	    c->nargs > 0) {
		/* The arguments tile rest, one space apart, then only spaces. */
		const char *after = c->args[c->nargs - 1].p + c->args[c->nargs - 1].len;

		assert_ptr_equal(c->args[0].p, c->rest.p);
		for (size_t i = 1; i < c->nargs; i++) {
			assert_ptr_equal(c->args[i].p,
			    c->args[i - 1].p + c->args[i - 1].len + 1);
			assert_int_equal(c->args[i].p[-1], ' ');
		}
		for (; after < end; after++)
			assert_int_equal(*after, ' ');
	} else if (st == POP3_PARSE_OK && c->verb != POP3_CMD_UNKNOWN) {
		for (size_t i = 0; i < c->rest.len; i++)
			assert_int_equal(c->rest.p[i], ' ');
	}
	if (st == POP3_PARSE_OK && c->verb == POP3_CMD_UNKNOWN)
		assert_int_equal(c->nargs, 0);
}

/* Parse n bytes of s from an exact heap copy into *r. */
static void
parse_n(const char *s, size_t n, struct res *r)
{
	char *b = dup_exact(s, n);
	struct pop3_command c;

	memset(&c, 0xa5, sizeof(c));
	memset(r, 0, sizeof(*r));
	r->st = pop3_parse_command(b, n, &c);
	check_shape(b, n, r->st, &c);
	r->verb = c.verb;
	r->nargs = c.nargs;
	for (size_t i = 0; i < c.nargs; i++)
		copy_arg(r->args[i], &c.args[i]);
	copy_arg(r->rest, &c.rest);
	r->rest_off = (size_t)(c.rest.p - b);
	free(b);
}

static void
parse(const char *s, struct res *r)
{
	parse_n(s, strlen(s), r);
}

/* Expect s to give this status, verb, argument count, arguments and rest. */
static void
expect(const char *s, enum pop3_parse_status st, enum pop3_verb verb,
    size_t nargs, const char *a0, const char *a1, const char *rest)
{
	struct res r;

	parse(s, &r);
	if (r.st != st || r.verb != verb || r.nargs != nargs)
		fail_msg("\"%s\": got status %d verb %d nargs %zu, want %d %d %zu",
		    s, r.st, r.verb, r.nargs, st, verb, nargs);
	if (nargs > 0)
		assert_string_equal(r.args[0], a0);
	if (nargs > 1)
		assert_string_equal(r.args[1], a1);
	assert_string_equal(r.rest, rest);
}

#define OK0(s, v)		expect(s, POP3_PARSE_OK, v, 0, NULL, NULL, "")
#define OK1(s, v, a)		expect(s, POP3_PARSE_OK, v, 1, a, NULL, a)
#define OK2(s, v, a, b, r)	expect(s, POP3_PARSE_OK, v, 2, a, b, r)

static void
expect_status(const char *s, size_t n, enum pop3_parse_status st)
{
	struct res r;

	parse_n(s, n, &r);
	if (r.st != st)
		fail_msg("\"%.*s\" (%zu octets): got status %d, want %d",
		    (int)(n > 60 ? 60 : n), s, n, r.st, st);
}

static const enum pop3_verb all_verbs[] = {
	POP3_CMD_USER, POP3_CMD_PASS, POP3_CMD_STAT, POP3_CMD_LIST,
	POP3_CMD_RETR, POP3_CMD_DELE, POP3_CMD_NOOP, POP3_CMD_RSET,
	POP3_CMD_QUIT, POP3_CMD_TOP, POP3_CMD_UIDL, POP3_CMD_CAPA,
	POP3_CMD_STLS, POP3_CMD_AUTH, POP3_CMD_APOP,
};
#define NVERBS	(sizeof(all_verbs) / sizeof(all_verbs[0]))

/* Every keyword in upper, lower and two mixed cases, alone and with args. */
static void
test_every_keyword(void **state)
{
	assert_int_equal(NVERBS, POP3_CMD__COUNT - 1);
	for (size_t i = 0; i < NVERBS; i++) {
		const char *name = pop3_verb_name(all_verbs[i]);
		size_t n = strlen(name);
		char forms[4][8], line[64];

		assert_true(n == 3 || n == 4);
		for (size_t k = 0; k < n; k++) {
			char up = name[k], lo = (char)(name[k] - 'A' + 'a');

			forms[0][k] = up;
			forms[1][k] = lo;
			forms[2][k] = (k & 1) ? lo : up;
			forms[3][k] = (k & 1) ? up : lo;
		}
		for (int f = 0; f < 4; f++) {
			forms[f][n] = '\0';
			OK0(forms[f], all_verbs[i]);
			snprintf(line, sizeof(line), "%s 1", forms[f]);
			OK1(line, all_verbs[i], "1");
			snprintf(line, sizeof(line), "%s x y", forms[f]);
			if (all_verbs[i] == POP3_CMD_PASS)
				OK1(line, all_verbs[i], "x y");
			else
				OK2(line, all_verbs[i], "x", "y", "x y");
		}
	}
}

static void
test_unknown(void **state)
{
	static const char *const unknown[] = {
		"USERX", "USE", "US", "U", "X", "XYZZY", "HELO", "EHLO",
		"PAS", "TOPS", "QUITQUIT", "LIST1", "STARTTLS", "AUTHENTICATE",
		"USER\tbob", "QUIT\t", "\tQUIT", "US ER", "\xc3\x9cSER",
		"\xffUSER", "USE\xd2", "GET / HTTP/1.1", "5TAT", "ST@T",
		"QUI7", "APO", "UID", "CAP", "TO",
	};
	struct res r;

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		parse(unknown[i], &r);
		if (r.st != POP3_PARSE_OK || r.verb != POP3_CMD_UNKNOWN)
			fail_msg("\"%s\": status %d verb %d", unknown[i], r.st,
			    r.verb);
		assert_int_equal(r.nargs, 0);
	}
	/* Unknown commands are not split: rest follows the first space. */
	expect("XYZZY a b  c ", POP3_PARSE_OK, POP3_CMD_UNKNOWN, 0, NULL, NULL,
	    "a b  c ");
	expect("XYZZY", POP3_PARSE_OK, POP3_CMD_UNKNOWN, 0, NULL, NULL, "");
	/* A leading space leaves no keyword in first position. */
	expect(" USER bob", POP3_PARSE_OK, POP3_CMD_UNKNOWN, 0, NULL, NULL,
	    "USER bob");
	expect("  QUIT", POP3_PARSE_OK, POP3_CMD_UNKNOWN, 0, NULL, NULL,
	    " QUIT");
}

static void
test_arguments(void **state)
{
	OK1("USER bob", POP3_CMD_USER, "bob");
	OK1("user bob@example.com", POP3_CMD_USER, "bob@example.com");
	OK1("USER 201", POP3_CMD_USER, "201");
	OK0("STAT", POP3_CMD_STAT);
	OK0("LIST", POP3_CMD_LIST);
	OK1("LIST 1", POP3_CMD_LIST, "1");
	OK1("RETR 17", POP3_CMD_RETR, "17");
	OK1("DELE 2", POP3_CMD_DELE, "2");
	OK2("TOP 1 10", POP3_CMD_TOP, "1", "10", "1 10");
	OK2("top 1 0", POP3_CMD_TOP, "1", "0", "1 0");
	OK0("UIDL", POP3_CMD_UIDL);
	OK1("UIDL 3", POP3_CMD_UIDL, "3");
	OK2("APOP mrose c4c9334bac560ecc979e58001b3e22fb", POP3_CMD_APOP,
	    "mrose", "c4c9334bac560ecc979e58001b3e22fb",
	    "mrose c4c9334bac560ecc979e58001b3e22fb");
	OK0("CAPA", POP3_CMD_CAPA);
	OK0("STLS", POP3_CMD_STLS);
	OK0("NOOP", POP3_CMD_NOOP);
	OK0("RSET", POP3_CMD_RSET);
	OK0("QUIT", POP3_CMD_QUIT);
	/* Other octets are left for the commands to judge. */
	OK1("USER b\tob", POP3_CMD_USER, "b\tob");
	OK1("USER \xc3\xa9t\xc3\xa9", POP3_CMD_USER, "\xc3\xa9t\xc3\xa9");
	/* Arguments a command does not take are its business, not ours. */
	OK2("QUIT now please", POP3_CMD_QUIT, "now", "please", "now please");
}

static void
test_too_many_args(void **state)
{
	static const struct {
		const char *s;
		enum pop3_verb v;
		const char *rest;
	} lines[] = {
		{ "TOP 1 2 3", POP3_CMD_TOP, "1 2 3" },
		{ "USER a b c", POP3_CMD_USER, "a b c" },
		{ "STAT a b c d", POP3_CMD_STAT, "a b c d" },
		{ "APOP u d extra", POP3_CMD_APOP, "u d extra" },
		{ "list 1 2 3", POP3_CMD_LIST, "1 2 3" },
		{ "AUTH PLAIN dGVzdA== x", POP3_CMD_AUTH, "PLAIN dGVzdA== x" },
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		expect(lines[i].s, POP3_PARSE_TOO_MANY_ARGS, lines[i].v, 0,
		    NULL, NULL, lines[i].rest);
}

/* Two spaces in a row make an empty argument. */
static void
test_empty_args(void **state)
{
	static const struct {
		const char *s;
		enum pop3_verb v;
		const char *rest;
	} lines[] = {
		{ "USER  bob", POP3_CMD_USER, " bob" },
		{ "TOP 1  2", POP3_CMD_TOP, "1  2" },
		{ "TOP  1 2", POP3_CMD_TOP, " 1 2" },
		{ "TOP 1  2 ", POP3_CMD_TOP, "1  2 " },
		{ "AUTH  PLAIN", POP3_CMD_AUTH, " PLAIN" },
		{ "AUTH PLAIN  dGVzdA==", POP3_CMD_AUTH, "PLAIN  dGVzdA==" },
		{ "APOP u  d", POP3_CMD_APOP, "u  d" },
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		expect(lines[i].s, POP3_PARSE_TOO_MANY_ARGS, lines[i].v, 0,
		    NULL, NULL, lines[i].rest);
}

/* Spaces at the end of the line are no argument (rest keeps them). */
static void
test_trailing_spaces(void **state)
{
	expect("STAT ", POP3_PARSE_OK, POP3_CMD_STAT, 0, NULL, NULL, "");
	expect("QUIT ", POP3_PARSE_OK, POP3_CMD_QUIT, 0, NULL, NULL, "");
	expect("LIST  ", POP3_PARSE_OK, POP3_CMD_LIST, 0, NULL, NULL, " ");
	expect("AUTH ", POP3_PARSE_OK, POP3_CMD_AUTH, 0, NULL, NULL, "");
	expect("USER bob ", POP3_PARSE_OK, POP3_CMD_USER, 1, "bob", NULL, "bob ");
	expect("RETR 1   ", POP3_PARSE_OK, POP3_CMD_RETR, 1, "1", NULL, "1   ");
	expect("TOP 1 2 ", POP3_PARSE_OK, POP3_CMD_TOP, 2, "1", "2", "1 2 ");
	expect("AUTH PLAIN ", POP3_PARSE_OK, POP3_CMD_AUTH, 1, "PLAIN", NULL, "PLAIN ");
	expect("TOP 1 2 3 ", POP3_PARSE_TOO_MANY_ARGS, POP3_CMD_TOP, 0, NULL, NULL, "1 2 3 ");
	/* A tab is no space: still part of the word. */
	expect("RETR 1\t", POP3_PARSE_OK, POP3_CMD_RETR, 1, "1\t", NULL, "1\t");
}

/* PASS takes everything after "PASS " and never fails on spaces. */
static void
test_pass(void **state)
{
	OK1("PASS secret", POP3_CMD_PASS, "secret");
	OK1("pass two words", POP3_CMD_PASS, "two words");
	OK1("PASS  leading space", POP3_CMD_PASS, " leading space");
	OK1("PASS trailing ", POP3_CMD_PASS, "trailing ");
	OK1("PASS a  b   c    d", POP3_CMD_PASS, "a  b   c    d");
	OK1("PASS 1 2 3 4 5 6", POP3_CMD_PASS, "1 2 3 4 5 6");
	OK1("PASS  ", POP3_CMD_PASS, " ");
	OK1("PASS \t", POP3_CMD_PASS, "\t");
	OK0("PASS ", POP3_CMD_PASS);
	OK0("PASS", POP3_CMD_PASS);
	OK0("Pass", POP3_CMD_PASS);
	/* The keyword still has to be exactly PASS. */
	expect("PASSWORD x", POP3_PARSE_OK, POP3_CMD_UNKNOWN, 0, NULL, NULL,
	    "x");
	/* But the line limit and the bad octets still apply. */
	expect_status("PASS a\rb", 8, POP3_PARSE_BAD_CHAR);
	expect_status("PASS a\0b", 8, POP3_PARSE_BAD_CHAR);
}

static void
test_auth(void **state)
{
	OK0("AUTH", POP3_CMD_AUTH);
	OK1("AUTH PLAIN", POP3_CMD_AUTH, "PLAIN");
	OK1("auth login", POP3_CMD_AUTH, "login");
	OK2("AUTH PLAIN AGJvYgBzZWNyZXQ=", POP3_CMD_AUTH, "PLAIN",
	    "AGJvYgBzZWNyZXQ=", "PLAIN AGJvYgBzZWNyZXQ=");
	OK2("AUTH PLAIN =", POP3_CMD_AUTH, "PLAIN", "=", "PLAIN =");
	OK2("AUTH LOGIN Ym9i", POP3_CMD_AUTH, "LOGIN", "Ym9i", "LOGIN Ym9i");
}

static void
test_bad_chars(void **state)
{
	static const char bad[] = { '\r', '\n', '\0' };
	static const char *const lines[] = {
		"USER bob", "PASS my secret", "QUIT", "XYZZY", "TOP 1 2", "AUTH PLAIN =",
	};
	char buf[64];

	for (size_t b = 0; b < sizeof(bad); b++) {
		/* Alone, and a bare CRLF. */
		buf[0] = bad[b];
		expect_status(buf, 1, POP3_PARSE_BAD_CHAR);
		for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
			size_t n = strlen(lines[i]);

			/* At every position: start, middle and end. */
			for (size_t at = 0; at <= n; at++) {
				memcpy(buf, lines[i], at);
				buf[at] = bad[b];
				memcpy(buf + at + 1, lines[i] + at, n - at);
				expect_status(buf, n + 1, POP3_PARSE_BAD_CHAR);
				/* Replacing an octet, too. */
				if (at < n) {
					memcpy(buf, lines[i], n);
					buf[at] = bad[b];
					expect_status(buf, n,
					    POP3_PARSE_BAD_CHAR);
				}
			}
		}
	}
	expect_status("\r\n", 2, POP3_PARSE_BAD_CHAR);
	expect_status("QUIT\r\n", 6, POP3_PARSE_BAD_CHAR);
	expect_status("  \r", 3, POP3_PARSE_BAD_CHAR);
}

/* POP3_LINE_MAX - 2 octets is the most a line may hold. */
static void
test_length(void **state)
{
	const size_t max = POP3_LINE_MAX - 2;
	char buf[1024];
	struct res r;

	assert_int_equal(max, 253);
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PASS ", 5);
	parse_n(buf, max, &r);
	assert_int_equal(r.st, POP3_PARSE_OK);
	assert_int_equal(r.verb, POP3_CMD_PASS);
	assert_int_equal(strlen(r.rest), max - 5);
	expect_status(buf, max + 1, POP3_PARSE_TOO_LONG);
	expect_status(buf, sizeof(buf), POP3_PARSE_TOO_LONG);

	memcpy(buf, "USER ", 5);
	expect_status(buf, max, POP3_PARSE_OK);
	expect_status(buf, max + 1, POP3_PARSE_TOO_LONG);

	/* TOP with two long arguments, exactly at the limit. */
	memcpy(buf, "TOP x", 5);
	buf[100] = ' ';
	parse_n(buf, max, &r);
	assert_int_equal(r.st, POP3_PARSE_OK);
	assert_int_equal(r.nargs, 2);
	assert_int_equal(strlen(r.args[0]), 96);
	assert_int_equal(strlen(r.args[1]), max - 101);
	buf[100] = 'x';

	/* Length is checked before characters. */
	buf[10] = '\r';
	expect_status(buf, max, POP3_PARSE_BAD_CHAR);
	expect_status(buf, max + 1, POP3_PARSE_TOO_LONG);
	buf[10] = 'x';
	buf[max] = '\n';
	expect_status(buf, max + 1, POP3_PARSE_TOO_LONG);
	buf[max] = 'x';

	/* Spaces count too: a blank line over the limit is too long. */
	memset(buf, ' ', sizeof(buf));
	expect_status(buf, max, POP3_PARSE_EMPTY);
	expect_status(buf, max + 1, POP3_PARSE_TOO_LONG);

	/* An unknown keyword at the limit is still OK, over it not. */
	memset(buf, 'Z', sizeof(buf));
	expect_status(buf, max, POP3_PARSE_OK);
	expect_status(buf, max + 1, POP3_PARSE_TOO_LONG);
}

static void
test_empty(void **state)
{
	struct pop3_command c;

	expect_status("", 0, POP3_PARSE_EMPTY);
	expect_status(" ", 1, POP3_PARSE_EMPTY);
	expect_status("     ", 5, POP3_PARSE_EMPTY);
	expect_status("\t", 1, POP3_PARSE_OK);
	/* A NULL line of length 0 is empty, and rest is still set. */
	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(pop3_parse_command(NULL, 0, &c), POP3_PARSE_EMPTY);
	assert_int_equal(c.verb, POP3_CMD_UNKNOWN);
	assert_int_equal(c.nargs, 0);
	assert_non_null(c.rest.p);
	assert_int_equal(c.rest.len, 0);
}

static void
test_verb_name(void **state)
{
	assert_string_equal(pop3_verb_name(POP3_CMD_UNKNOWN), "UNKNOWN");
	assert_string_equal(pop3_verb_name(POP3_CMD_TOP), "TOP");
	assert_string_equal(pop3_verb_name(POP3_CMD_APOP), "APOP");
	assert_non_null(pop3_verb_name(POP3_CMD__COUNT));
	assert_non_null(pop3_verb_name((enum pop3_verb)-1));
	assert_non_null(pop3_verb_name((enum pop3_verb)1000));
	/* Every name parses back to its verb, and names are distinct. */
	for (size_t i = 0; i < NVERBS; i++) {
		struct res r;

		parse(pop3_verb_name(all_verbs[i]), &r);
		assert_int_equal(r.st, POP3_PARSE_OK);
		assert_int_equal(r.verb, all_verbs[i]);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(pop3_verb_name(all_verbs[i]),
			    pop3_verb_name(all_verbs[j]));
	}
}

/* pop3_parse_number on an exact heap copy; *out must stay put on failure. */
static int
num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	size_t n = strlen(s);
	char *b = dup_exact(s, n);
	unsigned long v = 4242;
	int r = pop3_parse_number(b, n, min, max, &v);

	free(b);
	assert_true(r == 0 || r == -1);
	if (r != 0)
		assert_int_equal(v, 4242);
	*out = v;
	return r;
}

#define NUM_OK(s, mn, mx, want) do {					\
	unsigned long v_;						\
	assert_int_equal(num((s), (mn), (mx), &v_), 0);			\
	assert_int_equal(v_, (want));					\
} while (0)

#define NUM_BAD(s, mn, mx) do {						\
	unsigned long v_;						\
	if (num((s), (mn), (mx), &v_) != -1)				\
		fail_msg("number \"%s\" in [%lu, %lu] accepted", (s),	\
		    (unsigned long)(mn), (unsigned long)(mx));		\
} while (0)

static void
test_number(void **state)
{
	NUM_OK("0", 0, 10, 0);
	NUM_BAD("0", 1, 10);
	NUM_OK("1", 1, 10, 1);
	NUM_OK("10", 1, 10, 10);
	NUM_BAD("11", 1, 10);
	NUM_OK("5", 5, 5, 5);
	NUM_BAD("4", 5, 5);
	NUM_BAD("6", 5, 5);
	NUM_BAD("1", 2, 1);		/* empty range */
	NUM_BAD("-1", 0, ULONG_MAX);
	NUM_BAD("+1", 0, ULONG_MAX);
	NUM_BAD("1x", 0, ULONG_MAX);
	NUM_BAD("x1", 0, ULONG_MAX);
	NUM_BAD("", 0, ULONG_MAX);
	NUM_BAD(" 1", 0, ULONG_MAX);
	NUM_BAD("1 ", 0, ULONG_MAX);
	NUM_BAD("1 2", 0, ULONG_MAX);
	NUM_OK("007", 0, ULONG_MAX, 7);	/* leading zeros, as Dovecot reads them */
	NUM_OK("00", 0, ULONG_MAX, 0);
	NUM_BAD("00", 1, ULONG_MAX);
	NUM_OK("01", 1, 10, 1);
	NUM_BAD("0x10", 0, ULONG_MAX);
	NUM_BAD("1e3", 0, ULONG_MAX);
	NUM_BAD("1.0", 0, ULONG_MAX);
	NUM_BAD("\xd9\xa1", 0, ULONG_MAX);	/* ARABIC-INDIC DIGIT ONE */
	NUM_OK("1000000", 1, 1000000, 1000000);
	NUM_BAD("1000001", 1, 1000000);
	NUM_BAD("99999999999999999999", 0, ULONG_MAX);
	NUM_BAD("999999999999999999999", 0, ULONG_MAX);
	NUM_OK("000000000000000000001", 0, ULONG_MAX, 1);
	NUM_OK("00000000000000000001", 0, ULONG_MAX, 1);
	if (ULONG_MAX == 18446744073709551615UL) {
		NUM_OK("18446744073709551615", 0, ULONG_MAX, ULONG_MAX);
		NUM_BAD("18446744073709551615", 0, ULONG_MAX - 1);
		NUM_OK("18446744073709551614", 0, ULONG_MAX - 1,
		    ULONG_MAX - 1);
		NUM_BAD("18446744073709551616", 0, ULONG_MAX);
		NUM_BAD("18446744073709551620", 0, ULONG_MAX);
		NUM_BAD("20000000000000000000", 0, ULONG_MAX);
	}
	{
		char buf[32];

		snprintf(buf, sizeof(buf), "%lu", ULONG_MAX);
		NUM_OK(buf, 0, ULONG_MAX, ULONG_MAX);
		snprintf(buf, sizeof(buf), "%lu", (unsigned long)INT_MAX);
		NUM_OK(buf, 1, INT_MAX, INT_MAX);
		snprintf(buf, sizeof(buf), "%lu", (unsigned long)INT_MAX + 1);
		NUM_BAD(buf, 1, INT_MAX);
	}
	/* Only len octets are read: "12" inside "123". */
	{
		char *b = dup_exact("123", 3);
		unsigned long v = 0;

		assert_int_equal(pop3_parse_number(b, 2, 0, 100, &v), 0);
		assert_int_equal(v, 12);
		free(b);
	}
}

static const char *const line_samples[] = {
	"USER bob@example.com", "PASS correct horse  battery staple ",
	"STAT", "LIST 1", "RETR 12", "DELE 3", "NOOP", "RSET", "QUIT",
	"TOP 1 10", "UIDL 4", "CAPA", "STLS", "AUTH PLAIN AGJvYgBzZWNyZXQ=",
	"APOP mrose c4c9334bac560ecc979e58001b3e22fb", "XYZZY a  b",
	"TOP 1 2 3", "USER  bob",
};

/*
 * The result of a parse of s[0..n) from an exact buffer must match the one
 * from s itself with the same length: nothing past n may matter.
 */
static void
same_result(const char *s, size_t n)
{
	struct pop3_command a, b;
	enum pop3_parse_status sa, sb;
	char *buf = dup_exact(s, n);

	memset(&a, 0xa5, sizeof(a));
	memset(&b, 0x5a, sizeof(b));
	sa = pop3_parse_command(buf, n, &a);
	sb = pop3_parse_command(s, n, &b);
	check_shape(buf, n, sa, &a);
	check_shape(s, n, sb, &b);
	assert_int_equal(sa, sb);
	assert_int_equal(a.verb, b.verb);
	assert_int_equal(a.nargs, b.nargs);
	assert_int_equal(a.rest.p - buf, b.rest.p - s);
	assert_int_equal(a.rest.len, b.rest.len);
	for (size_t i = 0; i < a.nargs; i++) {
		assert_int_equal(a.args[i].p - buf, b.args[i].p - s);
		assert_int_equal(a.args[i].len, b.args[i].len);
	}
	/* Each argument through the number parser, too. */
	for (size_t i = 0; i < a.nargs; i++) {
		unsigned long v;

		(void)pop3_parse_number(a.args[i].p, a.args[i].len, 0,
		    ULONG_MAX, &v);
	}
	free(buf);
}

/* Every prefix and suffix of every sample, each from an exact buffer. */
static void
test_byte_by_byte(void **state)
{
	for (size_t i = 0; i < sizeof(line_samples) / sizeof(line_samples[0]);
	    i++) {
		const char *s = line_samples[i];
		size_t n = strlen(s);

		for (size_t k = 0; k <= n; k++) {
			same_result(s, k);
			same_result(s + k, n - k);
		}
	}
	/* A keyword grows into itself one octet at a time. */
	{
		struct res r;

		parse_n("QUIT", 3, &r);
		assert_int_equal(r.verb, POP3_CMD_UNKNOWN);
		parse_n("QUIT", 4, &r);
		assert_int_equal(r.verb, POP3_CMD_QUIT);
		parse_n("TOP 1", 3, &r);
		assert_int_equal(r.verb, POP3_CMD_TOP);
		parse_n("TOP 1", 4, &r);		/* "TOP ": a trailing space */
		assert_int_equal(r.st, POP3_PARSE_OK);
		assert_int_equal(r.nargs, 0);
		parse_n("TOP 1", 5, &r);
		assert_int_equal(r.st, POP3_PARSE_OK);
		assert_int_equal(r.nargs, 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_keyword),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_too_many_args),
		cmocka_unit_test(test_empty_args),
		cmocka_unit_test(test_trailing_spaces),
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_bad_chars),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_verb_name),
		cmocka_unit_test(test_number),
		cmocka_unit_test(test_byte_by_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
