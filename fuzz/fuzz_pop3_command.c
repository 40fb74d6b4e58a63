/*
 * fuzz_pop3_command.c - libFuzzer target for pop3d/parse.c.
 *
 * The input is one command line without its CRLF.  It goes through
 * pop3_parse_command() from a heap copy of exactly the input, and the
 * result is checked for the shape the session relies on (pointers inside
 * the line, limits kept, no argument holding a space except PASS's, verb
 * names never NULL) and against a reference written differently: judge the
 * whole line first, then cut it at spaces and compare words with
 * strcasecmp.  Every argument, rest and the raw line then go through
 * pop3_parse_number() with several ranges, checked against a strtoull()
 * reference.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pop3d/parse.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_pop3_command: %s:%d: check failed: %s\n",\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* A NUL-terminated heap copy, for the reference checks only. */
static char *
cstr(const char *s, size_t n)
{
	char *c = malloc(n + 1);

	CHECK(c != NULL);
	if (n > 0)
		memcpy(c, s, n);
	c[n] = '\0';
	return c;
}

/* What the reference expects of one line. */
struct ref {
	enum pop3_parse_status st;
	enum pop3_verb verb;
	size_t nargs;
	size_t off[POP3_ARGS_MAX], len[POP3_ARGS_MAX];
	size_t rest_off, rest_len;
};

static void
reference(const char *l, size_t n, struct ref *r)
{
	char *c, *sp;
	size_t klen, nsp, i, start, end;
	int blank = 1;

	memset(r, 0, sizeof(*r));
	r->verb = POP3_CMD_UNKNOWN;
	if (n > POP3_LINE_MAX - 2) {
		r->st = POP3_PARSE_TOO_LONG;
		return;
	}
	for (i = 0; i < n; i++) {
		if (l[i] == '\r' || l[i] == '\n' || l[i] == '\0') {
			r->st = POP3_PARSE_BAD_CHAR;
			return;
		}
		if (l[i] != ' ')
			blank = 0;
	}
	if (blank) {
		r->st = POP3_PARSE_EMPTY;
		return;
	}

	/* No NUL inside now, so C string functions see the whole line. */
	c = cstr(l, n);
	sp = strchr(c, ' ');
	klen = sp != NULL ? (size_t)(sp - c) : n;
	r->rest_off = sp != NULL ? klen + 1 : n;
	r->rest_len = n - r->rest_off;
	if (sp != NULL)
		*sp = '\0';
	for (int v = 1; v < POP3_CMD__COUNT; v++)
		if (strcasecmp(c, pop3_verb_name((enum pop3_verb)v)) == 0)
			r->verb = (enum pop3_verb)v;
	free(c);
	r->st = POP3_PARSE_OK;

	if (r->verb == POP3_CMD_UNKNOWN || sp == NULL)
		return;
	if (r->verb == POP3_CMD_PASS) {
		if (r->rest_len > 0) {
			r->nargs = 1;
			r->off[0] = r->rest_off;
			r->len[0] = r->rest_len;
		}
		return;
	}
	/* Spaces at the end of the line are no argument. */
	end = n;
	while (end > r->rest_off && l[end - 1] == ' ')
		end--;
	if (end == r->rest_off)
		return;
	/* Words of rest: spaces + 1 of them, all non-empty, at most two. */
	nsp = 0;
	for (i = r->rest_off; i < end; i++)
		if (l[i] == ' ')
			nsp++;
	if (nsp + 1 > POP3_ARGS_MAX) {
		r->st = POP3_PARSE_TOO_MANY_ARGS;
		return;
	}
	start = r->rest_off;
	for (i = r->rest_off; i <= end; i++) {
		if (i < end && l[i] != ' ')
			continue;
		if (i == start) {
			r->st = POP3_PARSE_TOO_MANY_ARGS;
			r->nargs = 0;
			return;
		}
		r->off[r->nargs] = start;
		r->len[r->nargs] = i - start;
		r->nargs++;
		start = i + 1;
	}
}

/* Reference for pop3_parse_number, through strtoull. */
static int
ref_number(const char *s, size_t n, unsigned long min, unsigned long max,
    unsigned long *out)
{
	unsigned long long v;
	char *c, *endp;

	if (n < 1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	c = cstr(s, n);
	errno = 0;
	v = strtoull(c, &endp, 10);
	CHECK(*endp == '\0');
	free(c);
	if (errno == ERANGE || v > ULONG_MAX)
		return -1;
	if ((unsigned long)v < min || (unsigned long)v > max)
		return -1;
	*out = (unsigned long)v;
	return 0;
}

static void
check_number(const char *s, size_t n)
{
	static const unsigned long ranges[][2] = {
		{ 0, ULONG_MAX }, { 1, ULONG_MAX }, { 0, 0 }, { 1, 1 },
		{ 1, 9999 }, { 10, 100 }, { 2, 1 }, { ULONG_MAX, ULONG_MAX },
		{ ULONG_MAX - 1, ULONG_MAX }, { 0, INT_MAX },
	};

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		unsigned long got = 777, want = 777;
		int r = pop3_parse_number(s, n, ranges[i][0], ranges[i][1],
		    &got);
		int w = ref_number(s, n, ranges[i][0], ranges[i][1], &want);

		CHECK(r == 0 || r == -1);
		CHECK(r == w);
		CHECK(got == want);
		if (r == 0)
			CHECK(got >= ranges[i][0] && got <= ranges[i][1]);
	}
}

static void
check_arg_inside(const struct pop3_arg *a, const char *line, size_t n)
{
	CHECK(a->p != NULL);
	CHECK(a->p >= line && a->p <= line + n);
	CHECK(a->len <= (size_t)(line + n - a->p));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_command c;
	enum pop3_parse_status st;
	struct ref r;
	char *line;

	/* An exact heap copy, so ASan sees any read past the end. */
	line = calloc(1, size != 0 ? size : 1);
	CHECK(line != NULL);
	if (size > 0)
		memcpy(line, data, size);

	memset(&c, 0xa5, sizeof(c));
	st = pop3_parse_command(line, size, &c);
	reference(line, size, &r);

	/* Shape. */
	CHECK(pop3_verb_name(c.verb) != NULL);
	CHECK((unsigned)c.verb < POP3_CMD__COUNT);
	CHECK(c.nargs <= POP3_ARGS_MAX);
	check_arg_inside(&c.rest, line, size);
	for (size_t i = 0; i < c.nargs; i++) {
		check_arg_inside(&c.args[i], line, size);
		CHECK(c.args[i].len > 0);
		if (c.verb != POP3_CMD_PASS)
			CHECK(memchr(c.args[i].p, ' ', c.args[i].len) == NULL);
	}
	if (st == POP3_PARSE_OK || st == POP3_PARSE_TOO_MANY_ARGS)
		CHECK(c.rest.p + c.rest.len == line + size);

	/* Against the reference. */
	CHECK(st == r.st);
	CHECK(c.verb == r.verb);
	CHECK(c.nargs == r.nargs);
	if (st == POP3_PARSE_OK || st == POP3_PARSE_TOO_MANY_ARGS) {
		CHECK(c.rest.p == line + r.rest_off);
		CHECK(c.rest.len == r.rest_len);
	} else {
		CHECK(c.rest.p == line && c.rest.len == 0);
	}
	for (size_t i = 0; i < c.nargs; i++) {
		CHECK(c.args[i].p == line + r.off[i]);
		CHECK(c.args[i].len == r.len[i]);
	}

	/* Numbers: each argument, rest and the raw line. */
	for (size_t i = 0; i < c.nargs; i++)
		check_number(c.args[i].p, c.args[i].len);
	check_number(c.rest.p, c.rest.len);
	check_number(line, size);

	/* Names for every value, including ones out of range. */
	for (int v = -2; v < POP3_CMD__COUNT + 2; v++)
		CHECK(pop3_verb_name((enum pop3_verb)v) != NULL);

	free(line);
	return 0;
}
