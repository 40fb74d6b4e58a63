/*
 * test_addr.c - unit tests for the RFC 5321 path and mailbox parser.
 *
 * Every input is copied into a heap buffer of exactly its length before it
 * is parsed, so AddressSanitizer reports any read past buf + len.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"

enum mode {
	PATH,		/* addr_parse_path() */
	MAILBOX,	/* addr_parse_mailbox() */
};

/*
 * Parse n bytes of s with the given entry point, from a malloc'd copy of
 * exactly n bytes with no terminator.
 */
static enum addr_error
parse_exact(enum mode m, const char *s, size_t n, int nodom, int utf8,
    struct addr *a)
{
	static char empty;
	char *b = malloc(n);
	enum addr_error e;

	if (n != 0)
		assert_non_null(b);
	if (n != 0)
		memcpy(b, s, n);
	if (m == PATH)
		e = addr_parse_path(b != NULL ? b : &empty, n, nodom, utf8, a);
	else
		e = addr_parse_mailbox(b != NULL ? b : &empty, n, utf8, a);
	free(b);
	return e;
}

/*
 * The shape every successful result must have, whatever the input: a
 * terminated mailbox within its array, local_len and domain consistent with
 * it and with the flags, no control octets.
 */
static void
check_shape(const struct addr *a, const char *file, int line)
{
	const char *nul = memchr(a->mailbox, '\0', sizeof(a->mailbox));
	size_t mlen;

	_assert_true(nul != NULL, "mailbox terminated", file, line);
	mlen = (size_t)(nul - a->mailbox);
	_assert_true(mlen <= ADDR_PATH_MAX - 2, "mailbox <= 254", file, line);
	_assert_true(a->local_len <= ADDR_LOCAL_MAX ||
	    (a->local_len <= ADDR_SRS_LOCAL_MAX && strncasecmp(a->mailbox, "srs", 3) == 0),
	    "local_len <= 64, or an SRS address's", file, line);
	_assert_true(a->local_len <= mlen, "local_len <= strlen", file, line);
	for (size_t i = 0; i < mlen; i++)
		_assert_true((unsigned char)a->mailbox[i] >= 0x20 &&
		    a->mailbox[i] != 0x7f, "no control octets", file, line);
	if (a->flags & (ADDR_F_NULL | ADDR_F_NO_DOMAIN)) {
		_assert_true(a->domain == a->mailbox + a->local_len,
		    "domain at the terminator", file, line);
		_assert_true(mlen == a->local_len, "no domain part", file,
		    line);
	} else {
		_assert_true(a->mailbox[a->local_len] == '@', "'@' at local_len",
		    file, line);
		_assert_true(a->domain == a->mailbox + a->local_len + 1,
		    "domain after '@'", file, line);
		_assert_true(*a->domain != '\0', "domain not empty", file,
		    line);
	}
}

static void
check_ok(const char *file, int line, enum mode m, const char *s, size_t n,
    int nodom, int utf8, const char *mailbox, unsigned flags)
{
	struct addr a;
	enum addr_error e;

	memset(&a, 0xa5, sizeof(a));
	e = parse_exact(m, s, n, nodom, utf8, &a);
	if (e != ADDR_OK)
		print_error("input \"%.*s\": %s\n", (int)n, s,
		    addr_strerror(e));
	_assert_int_equal(e, ADDR_OK, file, line);
	_assert_string_equal(a.mailbox, mailbox, file, line);
	_assert_int_equal(a.flags, flags, file, line);
	check_shape(&a, file, line);
}

static void
check_err(const char *file, int line, enum mode m, const char *s, size_t n,
    int nodom, int utf8, enum addr_error want)
{
	struct addr a;
	enum addr_error e;

	e = parse_exact(m, s, n, nodom, utf8, &a);
	if (e != want)
		print_error("input \"%.*s\": got \"%s\", want \"%s\"\n",
		    (int)n, s, addr_strerror(e), addr_strerror(want));
	_assert_int_equal(e, want, file, line);
}

/* Strict path parsing: no bare local part, no UTF-8. */
#define OK(s, mbox, fl) \
	check_ok(__FILE__, __LINE__, PATH, s, strlen(s), 0, 0, mbox, fl)
#define ERR(s, e) \
	check_err(__FILE__, __LINE__, PATH, s, strlen(s), 0, 0, e)
/* Path parsing with explicit options. */
#define OK_OPT(s, nodom, utf8, mbox, fl) \
	check_ok(__FILE__, __LINE__, PATH, s, strlen(s), nodom, utf8, mbox, fl)
#define ERR_OPT(s, nodom, utf8, e) \
	check_err(__FILE__, __LINE__, PATH, s, strlen(s), nodom, utf8, e)
/* Explicit lengths, for inputs holding NUL. */
#define ERR_N(s, n, e) \
	check_err(__FILE__, __LINE__, PATH, s, n, 0, 0, e)
/* addr_parse_mailbox(). */
#define MOK(s, utf8, mbox, fl) \
	check_ok(__FILE__, __LINE__, MAILBOX, s, strlen(s), 0, utf8, mbox, fl)
#define MERR(s, utf8, e) \
	check_err(__FILE__, __LINE__, MAILBOX, s, strlen(s), 0, utf8, e)

/* A valid domain of exactly n octets (n >= 1): labels of 'a'..'z' and dots. */
static void
make_domain(char *buf, size_t n)
{
	size_t left = n, i = 0;

	while (left > 0) {
		size_t label = left < 63 ? left : 63;

		/* Never leave a lone dot with nothing after it. */
		if (label < left && left - label < 2)
			label = left - 2;
		for (size_t k = 0; k < label; k++, i++)
			buf[i] = (char)('a' + (i % 26));
		left -= label;
		if (left > 0) {
			buf[i++] = '.';
			left--;
		}
	}
	buf[i] = '\0';
}

/* n copies of c, terminated. */
static void
fill(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
}

static int
valid_domain(const char *s)
{
	size_t n = strlen(s);
	char *b = malloc(n ? n : 1);
	int r;

	assert_non_null(b);
	memcpy(b, s, n);
	r = addr_valid_domain(b, n);
	free(b);
	return r;
}

static void
test_ordinary(void **state)
{
	struct addr a;

	OK("<user@example.com>", "user@example.com", 0);
	OK("<first.last@sub.example.org>", "first.last@sub.example.org", 0);
	OK("<a@b>", "a@b", 0);
	OK("<user+tag@example.com>", "user+tag@example.com", 0);
	OK("<#$&'*+-/=?^_`{|}~@example.com>",
	    "#$&'*+-/=?^_`{|}~@example.com", 0);
	OK("<0@0.0>", "0@0.0", 0);
	OK("<user@localhost>", "user@localhost", 0);
	OK("<u@123.example>", "u@123.example", 0);
	OK("<u@xn--bcher-kva.example>", "u@xn--bcher-kva.example", 0);

	assert_int_equal(addr_parse_path("<joe@example.com>", 17, 0, 0, &a),
	    ADDR_OK);
	assert_int_equal(a.local_len, 3);
	assert_ptr_equal(a.domain, a.mailbox + 4);
	assert_string_equal(a.domain, "example.com");
}

static void
test_case_folding(void **state)
{
	struct addr a;

	OK("<User@EXAMPLE.Com>", "User@example.com", 0);
	OK("<ABC.Def@MAIL.Example.ORG>", "ABC.Def@mail.example.org", 0);
	OK("<\"Q X\"@EXAMPLE.COM>", "\"Q X\"@example.com", ADDR_F_QUOTED);
	assert_int_equal(addr_parse_path("<X@A.B>", 7, 0, 0, &a), ADDR_OK);
	assert_string_equal(a.domain, "a.b");
	/* Address literals are kept as written. */
	OK("<u@[IPv6:2001:DB8::A]>", "u@[IPv6:2001:DB8::A]",
	    ADDR_F_ADDR_LITERAL);
}

static void
test_null_path(void **state)
{
	struct addr a;

	memset(&a, 0xa5, sizeof(a));
	assert_int_equal(addr_parse_path("<>", 2, 0, 0, &a), ADDR_OK);
	assert_string_equal(a.mailbox, "");
	assert_int_equal(a.flags, ADDR_F_NULL);
	assert_int_equal(a.local_len, 0);
	assert_ptr_equal(a.domain, a.mailbox);
	assert_string_equal(a.domain, "");

	OK("<>", "", ADDR_F_NULL);
	OK_OPT("<>", 1, 1, "", ADDR_F_NULL);
	ERR("", ADDR_ERR_SYNTAX);
	ERR("<", ADDR_ERR_SYNTAX);
	ERR(">", ADDR_ERR_SYNTAX);
	ERR("< >", ADDR_ERR_SYNTAX);
	ERR("<> ", ADDR_ERR_SYNTAX);
	ERR(" <>", ADDR_ERR_SYNTAX);
	ERR("<>>", ADDR_ERR_SYNTAX);
	ERR("<<>>", ADDR_ERR_SYNTAX);
	ERR("<>x", ADDR_ERR_SYNTAX);
	ERR("<\"\">", ADDR_ERR_SYNTAX);
	MERR("<>", 0, ADDR_ERR_SYNTAX);
	MERR("", 0, ADDR_ERR_SYNTAX);
	assert_int_equal(addr_parse_path(NULL, 0, 1, 1, &a), ADDR_ERR_SYNTAX);
}

static void
test_quoted(void **state)
{
	struct addr a;

	OK("<\"john doe\"@example.com>", "\"john doe\"@example.com",
	    ADDR_F_QUOTED);
	assert_int_equal(addr_parse_path("<\"john doe\"@example.com>", 24, 0,
	    0, &a), ADDR_OK);
	assert_int_equal(a.local_len, 10);
	assert_string_equal(a.domain, "example.com");

	OK("<\"a\\\"b\"@example.com>", "\"a\\\"b\"@example.com", ADDR_F_QUOTED);
	OK("<\"a\\\\b\"@example.com>", "\"a\\\\b\"@example.com", ADDR_F_QUOTED);
	OK("<\"\\a\"@example.com>", "\"\\a\"@example.com", ADDR_F_QUOTED);
	OK("<\"\"@example.com>", "\"\"@example.com", ADDR_F_QUOTED);
	OK("<\"a.b..c.\"@example.com>", "\"a.b..c.\"@example.com",
	    ADDR_F_QUOTED);
	OK("<\"(comment) <x> [y] ;:,\"@example.com>",
	    "\"(comment) <x> [y] ;:,\"@example.com", ADDR_F_QUOTED);
	MOK("\"q x\"@Example.com", 0, "\"q x\"@example.com", ADDR_F_QUOTED);
	/* A dot-string in quotes is the same mailbox: kept without them. */
	OK("<\"postmaster\"@example.com>", "postmaster@example.com", 0);
	OK("<\"first.last\"@example.com>", "first.last@example.com", 0);
	OK_OPT("<\"postmaster\">", 1, 0, "postmaster", ADDR_F_NO_DOMAIN);

	ERR("<\"abc@example.com>", ADDR_ERR_SYNTAX);	/* unterminated */
	ERR("<\"abc\\\">", ADDR_ERR_SYNTAX);
	ERR("<\"abc\\", ADDR_ERR_SYNTAX);
	ERR("<\"abc", ADDR_ERR_SYNTAX);
	ERR("<\"", ADDR_ERR_SYNTAX);
	ERR("<\"a\"b@example.com>", ADDR_ERR_SYNTAX);
	ERR("<a\"b\"@example.com>", ADDR_ERR_SYNTAX);
	ERR("<\"a\".b@example.com>", ADDR_ERR_SYNTAX);
	ERR("<\"a\"@>", ADDR_ERR_SYNTAX);
	ERR("<\"a\">", ADDR_ERR_SYNTAX);
	ERR("<\"a\\\tb\"@example.com>", ADDR_ERR_BAD_CHAR);
	ERR("<\"a\rb\"@example.com>", ADDR_ERR_BAD_CHAR);
}

static void
test_relay_tricks(void **state)
{
	const unsigned relay = ADDR_F_RELAY_CHARS;

	OK("<user%other.example@example.com>",
	    "user%other.example@example.com", relay);
	OK("<other.example!user@example.com>",
	    "other.example!user@example.com", relay);
	OK("<%@example.com>", "%@example.com", relay);
	OK("<!@example.com>", "!@example.com", relay);
	OK("<a.b%c!d@example.com>", "a.b%c!d@example.com", relay);
	OK("<\"user@other.example\"@example.com>",
	    "\"user@other.example\"@example.com", ADDR_F_QUOTED | relay);
	OK("<\"user\\@other.example\"@example.com>",
	    "\"user\\@other.example\"@example.com", ADDR_F_QUOTED | relay);
	/* A quoted dot-string is kept without its quotes: still a relay trick. */
	OK("<\"user%other\"@example.com>", "user%other@example.com", relay);
	OK("<\"user!other\"@example.com>", "user!other@example.com", relay);
	OK("<\"a\\%b\"@example.com>", "\"a\\%b\"@example.com",
	    ADDR_F_QUOTED | relay);
	OK_OPT("user%other@example.com", 0, 0, "user%other@example.com",
	    relay | ADDR_F_NO_BRACKETS);
	OK_OPT("<user%other>", 1, 0, "user%other", relay | ADDR_F_NO_DOMAIN);
	MOK("a!b@example.com", 0, "a!b@example.com", relay);

	/* Source routes: checked, dropped, flagged. */
	OK("<@a.example:user@c.example>", "user@c.example",
	    ADDR_F_SOURCE_ROUTE);
	OK("<@a.example,@b.example:user@c.example>", "user@c.example",
	    ADDR_F_SOURCE_ROUTE);
	OK("<@A.EXAMPLE,@b.example,@c:User@C.Example>", "User@c.example",
	    ADDR_F_SOURCE_ROUTE);
	OK("<@a.example:user%d.example@c.example>", "user%d.example@c.example",
	    ADDR_F_SOURCE_ROUTE | relay);
	OK("<@a.example:\"u@d\"@c.example>", "\"u@d\"@c.example",
	    ADDR_F_SOURCE_ROUTE | relay | ADDR_F_QUOTED);
	OK("<@a.example:u@[192.0.2.1]>", "u@[192.0.2.1]",
	    ADDR_F_SOURCE_ROUTE | ADDR_F_ADDR_LITERAL);

	ERR("<@a.example>", ADDR_ERR_SYNTAX);
	ERR("<@a.example:>", ADDR_ERR_SYNTAX);
	ERR("<@a.example:@b.example>", ADDR_ERR_SYNTAX);
	ERR("<@a.example,user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@a.example;user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@a.example,:user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@,@a.example:user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@:user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@a..example:user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@-a.example:user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@[192.0.2.1]:user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@a.example, @b.example:user@c.example>", ADDR_ERR_SYNTAX);
	ERR("<@a.example:user@c.example", ADDR_ERR_SYNTAX);
	ERR("<@a.example", ADDR_ERR_SYNTAX);
	ERR("<@", ADDR_ERR_SYNTAX);
	ERR("<@>", ADDR_ERR_SYNTAX);
	/* A route needs a full mailbox after it, even for postmaster. */
	ERR_OPT("<@a.example:postmaster>", 1, 0, ADDR_ERR_SYNTAX);
	/* Without brackets a route is refused outright. */
	ERR("@a.example:user@c.example", ADDR_ERR_SYNTAX);
	MERR("@a.example:user@c.example", 0, ADDR_ERR_SYNTAX);
	MERR("<@a.example:user@c.example>", 0, ADDR_ERR_SYNTAX);
}

static void
test_local_limits(void **state)
{
	char local[80], in[200], want[200];

	/* Dot-atom: 64 octets pass, 65 do not. */
	fill(local, 'l', 64);
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	snprintf(want, sizeof(want), "%s@example.com", local);
	OK(in, want, 0);
	MOK(want, 0, want, 0);
	fill(local, 'l', 65);
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	ERR(in, ADDR_ERR_LOCAL_TOO_LONG);
	snprintf(in, sizeof(in), "%s@example.com", local);
	MERR(in, 0, ADDR_ERR_LOCAL_TOO_LONG);
	ERR_OPT(in, 0, 0, ADDR_ERR_LOCAL_TOO_LONG);

	/* With dots. */
	fill(local, 'x', 64);
	local[10] = local[20] = local[62] = '.';
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	snprintf(want, sizeof(want), "%s@example.com", local);
	OK(in, want, 0);

	/* Quoted: the 64 octets include the quotes and backslashes. */
	local[0] = '"';
	memset(local + 1, 'q', 62);
	local[63] = '"';
	local[64] = '\0';
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	snprintf(want, sizeof(want), "%.62s@example.com", local + 1);	/* a dot-string */
	OK(in, want, 0);
	local[20] = ' ';
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	snprintf(want, sizeof(want), "%s@example.com", local);
	OK(in, want, ADDR_F_QUOTED);
	local[20] = 'q';
	local[30] = '\\';
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	snprintf(want, sizeof(want), "%s@example.com", local);
	OK(in, want, ADDR_F_QUOTED);
	local[0] = '"';
	memset(local + 1, 'q', 63);
	local[64] = '"';
	local[65] = '\0';
	snprintf(in, sizeof(in), "<%s@example.com>", local);
	ERR(in, ADDR_ERR_LOCAL_TOO_LONG);
	/* An escape pair straddling the limit. */
	local[63] = '\\';
	snprintf(in, sizeof(in), "<%s\"@example.com>", local);
	ERR(in, ADDR_ERR_LOCAL_TOO_LONG);

	/* UTF-8 counts in octets: 32 two-octet characters is 64. */
	in[0] = '<';
	for (int i = 0; i < 32; i++)
		memcpy(in + 1 + 2 * i, "\xc3\xa9", 2);
	strcpy(in + 65, "@example.com>");
	memcpy(want, in + 1, 64);
	strcpy(want + 64, "@example.com");
	OK_OPT(in, 0, 1, want, ADDR_F_UTF8);
	memmove(in + 2, in + 1, strlen(in + 1) + 1);
	in[1] = 'x';
	ERR_OPT(in, 0, 1, ADDR_ERR_LOCAL_TOO_LONG);

	/* A bare local part obeys the same limit. */
	fill(local, 'p', 64);
	snprintf(in, sizeof(in), "<%s>", local);
	OK_OPT(in, 1, 0, local, ADDR_F_NO_DOMAIN);
	fill(local, 'p', 65);
	snprintf(in, sizeof(in), "<%s>", local);
	ERR_OPT(in, 1, 0, ADDR_ERR_LOCAL_TOO_LONG);
}

static void
test_domain_limits(void **state)
{
	char dom[300], in[400], want[400];

	/* Labels: 63 octets pass, 64 do not. */
	fill(dom, 'd', 63);
	snprintf(in, sizeof(in), "<u@%s.example>", dom);
	snprintf(want, sizeof(want), "u@%s.example", dom);
	OK(in, want, 0);
	assert_true(valid_domain(dom));
	fill(dom, 'd', 64);
	snprintf(in, sizeof(in), "<u@%s.example>", dom);
	ERR(in, ADDR_ERR_SYNTAX);
	assert_false(valid_domain(dom));

	/* The domain alone: 255 octets pass, 256 do not. */
	make_domain(dom, 255);
	assert_int_equal(strlen(dom), 255);
	assert_true(valid_domain(dom));
	make_domain(dom, 256);
	assert_int_equal(strlen(dom), 256);
	assert_false(valid_domain(dom));

	/*
	 * In a path a 255-octet domain cannot fit (brackets, '@' and a local
	 * part make 259 > 256), so the path limit refuses it; one octet more
	 * and the domain limit is met first, while scanning.
	 */
	make_domain(dom, 255);
	snprintf(in, sizeof(in), "<u@%s>", dom);
	ERR(in, ADDR_ERR_PATH_TOO_LONG);
	snprintf(in, sizeof(in), "u@%s", dom);
	MERR(in, 0, ADDR_ERR_PATH_TOO_LONG);
	make_domain(dom, 256);
	snprintf(in, sizeof(in), "<u@%s>", dom);
	ERR(in, ADDR_ERR_DOMAIN_TOO_LONG);
	snprintf(in, sizeof(in), "u@%s", dom);
	MERR(in, 0, ADDR_ERR_DOMAIN_TOO_LONG);
	/* A source route's domains have the same limit. */
	snprintf(in, sizeof(in), "<@%s:u@example.com>", dom);
	ERR(in, ADDR_ERR_DOMAIN_TOO_LONG);

	/* The longest domain a path can carry: 256 - "<u@>" = 252. */
	make_domain(dom, 252);
	snprintf(in, sizeof(in), "<u@%s>", dom);
	snprintf(want, sizeof(want), "u@%s", dom);
	OK(in, want, 0);
	MOK(want, 0, want, 0);
}

static void
test_path_limits(void **state)
{
	char local[80], dom[300], in[400], want[400];

	/* "<" + 64 + "@" + 189 + ">" = 256: the most a path may hold. */
	fill(local, 'l', 64);
	make_domain(dom, 189);
	snprintf(in, sizeof(in), "<%s@%s>", local, dom);
	assert_int_equal(strlen(in), 256);
	snprintf(want, sizeof(want), "%s@%s", local, dom);
	OK(in, want, 0);
	OK_OPT(in, 1, 1, want, 0);
	make_domain(dom, 190);
	snprintf(in, sizeof(in), "<%s@%s>", local, dom);
	assert_int_equal(strlen(in), 257);
	ERR(in, ADDR_ERR_PATH_TOO_LONG);
	ERR_OPT(in, 1, 1, ADDR_ERR_PATH_TOO_LONG);

	/* Without brackets the brackets still count: 254 and 255. */
	make_domain(dom, 189);
	snprintf(in, sizeof(in), "%s@%s", local, dom);
	assert_int_equal(strlen(in), 254);
	OK(in, in, ADDR_F_NO_BRACKETS);
	MOK(in, 0, in, 0);
	make_domain(dom, 190);
	snprintf(in, sizeof(in), "%s@%s", local, dom);
	assert_int_equal(strlen(in), 255);
	ERR(in, ADDR_ERR_PATH_TOO_LONG);
	MERR(in, 0, ADDR_ERR_PATH_TOO_LONG);

	/* A source route counts toward the path, though it is dropped. */
	make_domain(dom, 230);
	snprintf(in, sizeof(in), "<@%s,@b.example:u@c.example>", dom);
	assert_int_equal(strlen(in), 256);
	OK(in, "u@c.example", ADDR_F_SOURCE_ROUTE);
	make_domain(dom, 231);
	snprintf(in, sizeof(in), "<@%s,@b.example:u@c.example>", dom);
	assert_int_equal(strlen(in), 257);
	ERR(in, ADDR_ERR_PATH_TOO_LONG);

	/* A long run of route hops is capped by the path limit too. */
	{
		size_t i = 0;

		in[i++] = '<';
		for (int h = 0; h < 60; h++) {
			memcpy(in + i, "@a.b,", 5);
			i += 5;
		}
		in[i - 1] = ':';
		strcpy(in + i, "u@c>");
		ERR(in, ADDR_ERR_PATH_TOO_LONG);
	}
}

/* Put c at every position of a valid path, and around it. */
static void
test_control_chars(void **state)
{
	static const char base[] = "<user@example.com>";
	static const char quoted[] = "<\"us er\"@example.com>";
	static const char ctl[] = { '\r', '\n', '\0', '\t', 0x01, 0x1b, 0x1f,
	    0x7f };
	char in[64];
	struct addr a;

	for (size_t k = 0; k < sizeof(ctl); k++) {
		for (size_t pos = 0; pos <= strlen(base); pos++) {
			size_t n = strlen(base);

			memcpy(in, base, pos);
			in[pos] = ctl[k];
			memcpy(in + pos + 1, base + pos, n - pos);
			ERR_N(in, n + 1, ADDR_ERR_BAD_CHAR);
			check_err(__FILE__, __LINE__, PATH, in, n + 1, 1, 1,
			    ADDR_ERR_BAD_CHAR);
			/* Replacing a character, too. */
			if (pos < n) {
				memcpy(in, base, n);
				in[pos] = ctl[k];
				ERR_N(in, n, ADDR_ERR_BAD_CHAR);
			}
		}
		for (size_t pos = 0; pos <= strlen(quoted); pos++) {
			size_t n = strlen(quoted);

			memcpy(in, quoted, pos);
			in[pos] = ctl[k];
			memcpy(in + pos + 1, quoted + pos, n - pos);
			ERR_N(in, n + 1, ADDR_ERR_BAD_CHAR);
		}
		/* addr_parse_mailbox and addr_valid_domain refuse them too. */
		memcpy(in, "u@exa", 5);
		in[5] = ctl[k];
		memcpy(in + 6, "mple.com", 8);
		check_err(__FILE__, __LINE__, MAILBOX, in, 14, 0, 1,
		    ADDR_ERR_BAD_CHAR);
		assert_false(addr_valid_domain(in + 2, 12));
	}

	/* Classic injections. */
	ERR("<user@example.com>\r\nRCPT TO:<x@y>", ADDR_ERR_BAD_CHAR);
	ERR("<user@example.com\r\n>", ADDR_ERR_BAD_CHAR);
	ERR("<us\ner@example.com>", ADDR_ERR_BAD_CHAR);
	ERR_N("<user@example.com\0.evil>", 24, ADDR_ERR_BAD_CHAR);
	ERR_N("\0", 1, ADDR_ERR_BAD_CHAR);

	/* A control octet wins over every other error, even far away. */
	{
		size_t n = 1000;
		char *big = malloc(n);

		assert_non_null(big);
		memset(big, 'a', n);
		big[n - 1] = '\n';
		assert_int_equal(addr_parse_path(big, n, 1, 1, &a),
		    ADDR_ERR_BAD_CHAR);
		big[n - 1] = 'a';
		assert_int_equal(addr_parse_path(big, n, 1, 1, &a),
		    ADDR_ERR_LOCAL_TOO_LONG);
		free(big);
	}
}

static void
test_utf8(void **state)
{
	/* Off: any octet >= 0x80 is a syntax error. */
	ERR("<j\xc3\xb8rn@example.com>", ADDR_ERR_SYNTAX);
	ERR("<jorn@ex\xc3\xa4mple.com>", ADDR_ERR_SYNTAX);
	ERR("<\"j\xc3\xb8rn\"@example.com>", ADDR_ERR_SYNTAX);
	ERR("<jorn@example.com>\xc3\xa4", ADDR_ERR_SYNTAX);
	ERR("<\xff@example.com>", ADDR_ERR_SYNTAX);
	MERR("j\xc3\xb8rn@example.com", 0, ADDR_ERR_SYNTAX);

	/* On: valid UTF-8 in local part, quoted string and domain. */
	OK_OPT("<j\xc3\xb8rn@example.com>", 0, 1, "j\xc3\xb8rn@example.com",
	    ADDR_F_UTF8);
	OK_OPT("<jorn@Ex\xc3\xa4mple.COM>", 0, 1, "jorn@ex\xc3\xa4mple.com",
	    ADDR_F_UTF8);
	OK_OPT("<\"j\xc3\xb8 rn\"@example.com>", 0, 1,
	    "\"j\xc3\xb8 rn\"@example.com", ADDR_F_UTF8 | ADDR_F_QUOTED);
	OK_OPT("<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9"
	    "\xbf\xe5\x91\x8a>", 0, 1,
	    "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9"
	    "\xbf\xe5\x91\x8a", ADDR_F_UTF8);
	OK_OPT("<\xf0\x9f\x93\xa7@example.com>", 0, 1,
	    "\xf0\x9f\x93\xa7@example.com", ADDR_F_UTF8);
	OK_OPT("<\xf4\x8f\xbf\xbf@example.com>", 0, 1,
	    "\xf4\x8f\xbf\xbf@example.com", ADDR_F_UTF8);
	OK_OPT("<\xc3\xa9>", 1, 1, "\xc3\xa9", ADDR_F_UTF8 | ADDR_F_NO_DOMAIN);
	OK_OPT("u@\xc3\xa9", 0, 1, "u@\xc3\xa9",
	    ADDR_F_UTF8 | ADDR_F_NO_BRACKETS);
	MOK("\xc3\xa9@\xc3\xa9.example", 1, "\xc3\xa9@\xc3\xa9.example",
	    ADDR_F_UTF8);
	/* The flag describes the mailbox, not a dropped source route. */
	OK_OPT("<@\xc3\xa9.example:u@example.com>", 0, 1, "u@example.com",
	    ADDR_F_SOURCE_ROUTE);
	ERR("<@\xc3\xa9.example:u@example.com>", ADDR_ERR_SYNTAX);
	OK_OPT("<@\xc3\xa9.example:\xc3\xa9@example.com>", 0, 1,
	    "\xc3\xa9@example.com", ADDR_F_SOURCE_ROUTE | ADDR_F_UTF8);
	/* ASCII under allow_utf8 does not set the flag. */
	OK_OPT("<user@example.com>", 0, 1, "user@example.com", 0);

	/* On, but not UTF-8. */
	ERR_OPT("<\x80@example.com>", 0, 1, ADDR_ERR_SYNTAX);	/* stray */
	ERR_OPT("<a\xbf@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\xc0\xaf@example.com>", 0, 1, ADDR_ERR_SYNTAX); /* overlong */
	ERR_OPT("<\xc1\xbf@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\xe0\x80\xaf@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\xf0\x80\x80\xaf@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\xed\xa0\x80@example.com>", 0, 1, ADDR_ERR_SYNTAX); /* D800 */
	ERR_OPT("<\xf4\x90\x80\x80@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\xf5\x80\x80\x80@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\xfe@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\xff@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\xc3@example.com>", 0, 1, ADDR_ERR_SYNTAX);	/* cut short */
	ERR_OPT("<\xe2\x82@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<u@example.\xc3>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\"\xc3\"@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<\"\\\xc3\xa9\"@example.com>", 0, 1, ADDR_ERR_SYNTAX);
	/* Cut short at the very end of the buffer: no read past it. */
	ERR_OPT("u@example.\xe2\x82", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("\xf0\x9f\x93", 1, 1, ADDR_ERR_SYNTAX);
	MERR("u@\xf0\x9f", 1, ADDR_ERR_SYNTAX);
	/* No UTF-8 in address literals or as a lone hyphen-start label. */
	ERR_OPT("<u@[\xc3\xa9]>", 0, 1, ADDR_ERR_SYNTAX);
	ERR_OPT("<u@\xc3\xa9-.example>", 0, 1, ADDR_ERR_SYNTAX);
	/* UTF-8 is never a domain for addr_valid_domain. */
	assert_false(valid_domain("ex\xc3\xa4mple.com"));
}

static void
test_address_literals(void **state)
{
	const unsigned lit = ADDR_F_ADDR_LITERAL;

	OK("<u@[192.0.2.1]>", "u@[192.0.2.1]", lit);
	OK("<u@[0.0.0.0]>", "u@[0.0.0.0]", lit);
	OK("<u@[255.255.255.255]>", "u@[255.255.255.255]", lit);
	OK("<u@[IPv6:2001:db8::1]>", "u@[IPv6:2001:db8::1]", lit);
	OK("<u@[ipv6:::1]>", "u@[ipv6:::1]", lit);
	OK("<u@[IPV6:::]>", "u@[IPV6:::]", lit);
	OK("<u@[IPv6:::ffff:192.0.2.1]>", "u@[IPv6:::ffff:192.0.2.1]", lit);
	OK("<u@[IPv6:0000:0000:0000:0000:0000:ffff:192.168.100.228]>",
	    "u@[IPv6:0000:0000:0000:0000:0000:ffff:192.168.100.228]", lit);
	OK("<\"a b\"@[192.0.2.1]>", "\"a b\"@[192.0.2.1]",
	    lit | ADDR_F_QUOTED);
	OK_OPT("u@[192.0.2.1]", 0, 0, "u@[192.0.2.1]",
	    lit | ADDR_F_NO_BRACKETS);
	MOK("u@[192.0.2.1]", 0, "u@[192.0.2.1]", lit);

	ERR("<u@[256.1.1.1]>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3]>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3.4.5]>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3.]>", ADDR_ERR_SYNTAX);
	ERR("<u@[1..2.3]>", ADDR_ERR_SYNTAX);
	ERR("<u@[-1.2.3.4]>", ADDR_ERR_SYNTAX);
	ERR("<u@[]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv6:]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv6:1.2.3.4]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv6:2001:db8::g]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv6:1:2:3:4:5:6:7:8:9]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv6:2001:db8:::1]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv6:fe80::1%eth0]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv6 :::1]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv4:1.2.3.4]>", ADDR_ERR_SYNTAX);
	ERR("<u@[2001:db8::1]>", ADDR_ERR_SYNTAX);	/* tag required */
	ERR("<u@[x-tag:content]>", ADDR_ERR_SYNTAX);	/* general literal */
	ERR("<u@[ 1.2.3.4]>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3.4 ]>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3.4]x>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3.4].com>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3.4]]>", ADDR_ERR_SYNTAX);
	ERR("<u@[[1.2.3.4]>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3.4>", ADDR_ERR_SYNTAX);
	ERR("<u@[1.2.3.4", ADDR_ERR_SYNTAX);
	ERR("<u@[", ADDR_ERR_SYNTAX);
	ERR("<u@x[1.2.3.4]>", ADDR_ERR_SYNTAX);
	ERR("<u@[11111111111111111111111111111111111111111111111111111"
	    "111111111111111111111111]>", ADDR_ERR_SYNTAX);
	ERR("<u@[IPv6:1111:1111:1111:1111:1111:1111:1111:1111:1111:1111"
	    ":1111:1111:1111:1111:1111:1111:1111:1111]>", ADDR_ERR_SYNTAX);
	assert_false(valid_domain("[192.0.2.1]"));
}

static void
test_trailing_dot_and_empty_labels(void **state)
{
	ERR("<u@example.com.>", ADDR_ERR_SYNTAX);
	ERR("<u@.example.com>", ADDR_ERR_SYNTAX);
	ERR("<u@example..com>", ADDR_ERR_SYNTAX);
	ERR("<u@.>", ADDR_ERR_SYNTAX);
	ERR("<u@>", ADDR_ERR_SYNTAX);
	ERR("<u@..>", ADDR_ERR_SYNTAX);
	ERR("u@example.com.", ADDR_ERR_SYNTAX);
	MERR("u@example.com.", 0, ADDR_ERR_SYNTAX);
	MERR("u@", 0, ADDR_ERR_SYNTAX);
	MERR("@example.com", 0, ADDR_ERR_SYNTAX);
	ERR("<@example.com>", ADDR_ERR_SYNTAX);
	ERR("<u@@example.com>", ADDR_ERR_SYNTAX);
	ERR("<u@ex@ample.com>", ADDR_ERR_SYNTAX);

	/* Dots in the local part. */
	ERR("<.u@example.com>", ADDR_ERR_SYNTAX);
	ERR("<u.@example.com>", ADDR_ERR_SYNTAX);
	ERR("<u..v@example.com>", ADDR_ERR_SYNTAX);
	ERR("<.@example.com>", ADDR_ERR_SYNTAX);
	OK("<u.v.w@example.com>", "u.v.w@example.com", 0);

	assert_true(valid_domain("example.com"));
	assert_true(valid_domain("a"));
	assert_false(valid_domain("example.com."));
	assert_false(valid_domain(".example.com"));
	assert_false(valid_domain("example..com"));
	assert_false(valid_domain("."));
	assert_false(valid_domain(""));
	assert_false(addr_valid_domain(NULL, 0));
}

static void
test_hyphens(void **state)
{
	OK("<u@e-x.example>", "u@e-x.example", 0);
	OK("<u@e--x.example>", "u@e--x.example", 0);
	OK("<u@xn--nxasmq6b.example>", "u@xn--nxasmq6b.example", 0);
	OK("<u@a-1.b-2.c>", "u@a-1.b-2.c", 0);
	OK("<u@1-a>", "u@1-a", 0);
	OK("<-u-@example.com>", "-u-@example.com", 0);	/* fine in atext */
	ERR("<u@-ex.example>", ADDR_ERR_SYNTAX);
	ERR("<u@ex-.example>", ADDR_ERR_SYNTAX);
	ERR("<u@ex.-example>", ADDR_ERR_SYNTAX);
	ERR("<u@ex.example->", ADDR_ERR_SYNTAX);
	ERR("<u@->", ADDR_ERR_SYNTAX);
	ERR("<u@-->", ADDR_ERR_SYNTAX);
	ERR("<u@ex_ample.com>", ADDR_ERR_SYNTAX);
	ERR("<u@ex ample.com>", ADDR_ERR_SYNTAX);
	ERR("<u@ex+ample.com>", ADDR_ERR_SYNTAX);
	ERR("<u@*.example.com>", ADDR_ERR_SYNTAX);

	assert_true(valid_domain("e-x.example"));
	assert_true(valid_domain("A-B.C-D"));
	assert_false(valid_domain("-ex.example"));
	assert_false(valid_domain("ex-.example"));
	assert_false(valid_domain("ex.example-"));
	assert_false(valid_domain("-"));
	assert_false(valid_domain("ex_ample.com"));
}

static void
test_garbage_after_path(void **state)
{
	ERR("<u@example.com> ", ADDR_ERR_SYNTAX);
	ERR("<u@example.com>x", ADDR_ERR_SYNTAX);
	ERR("<u@example.com>>", ADDR_ERR_SYNTAX);
	ERR("<u@example.com> SIZE=100", ADDR_ERR_SYNTAX);
	ERR("<u@example.com><v@example.com>", ADDR_ERR_SYNTAX);
	ERR("<u@[192.0.2.1]>x", ADDR_ERR_SYNTAX);
	ERR("<\"q\"@example.com>\"", ADDR_ERR_SYNTAX);
	ERR("<>x", ADDR_ERR_SYNTAX);
	ERR("<> ", ADDR_ERR_SYNTAX);
	ERR("u@example.com x", ADDR_ERR_SYNTAX);
	MERR("u@example.com>", 0, ADDR_ERR_SYNTAX);
	MERR("u@example.com ", 0, ADDR_ERR_SYNTAX);
}

static void
test_unbalanced_brackets(void **state)
{
	ERR("<u@example.com", ADDR_ERR_SYNTAX);
	ERR("u@example.com>", ADDR_ERR_SYNTAX);
	ERR("<<u@example.com>", ADDR_ERR_SYNTAX);
	ERR("<<u@example.com>>", ADDR_ERR_SYNTAX);
	ERR("<u<v@example.com>", ADDR_ERR_SYNTAX);
	ERR("<u@example>.com>", ADDR_ERR_SYNTAX);
	ERR("<u@example.com<", ADDR_ERR_SYNTAX);
	ERR(">u@example.com<", ADDR_ERR_SYNTAX);
	ERR("<u>", ADDR_ERR_SYNTAX);
	ERR_OPT("<u", 1, 0, ADDR_ERR_SYNTAX);
	ERR_OPT("u>", 1, 0, ADDR_ERR_SYNTAX);
	ERR("<\"u>\"@example.com", ADDR_ERR_SYNTAX);
	/* A '>' inside quotes does not close the path. */
	OK("<\"u>\"@example.com>", "\"u>\"@example.com", ADDR_F_QUOTED);
}

static void
test_spaces(void **state)
{
	ERR("< u@example.com>", ADDR_ERR_SYNTAX);
	ERR("<u@example.com >", ADDR_ERR_SYNTAX);
	ERR("<u @example.com>", ADDR_ERR_SYNTAX);
	ERR("<u@ example.com>", ADDR_ERR_SYNTAX);
	ERR(" <u@example.com>", ADDR_ERR_SYNTAX);
	ERR(" u@example.com", ADDR_ERR_SYNTAX);
	ERR("u@example.com ", ADDR_ERR_SYNTAX);
	ERR("u v@example.com", ADDR_ERR_SYNTAX);
	ERR(" ", ADDR_ERR_SYNTAX);
	ERR_OPT("< postmaster>", 1, 0, ADDR_ERR_SYNTAX);
	ERR_OPT("<postmaster >", 1, 0, ADDR_ERR_SYNTAX);
	ERR("<\"u\" @example.com>", ADDR_ERR_SYNTAX);
	ERR("<\"u\"@example.com >", ADDR_ERR_SYNTAX);
}

static void
test_no_brackets(void **state)
{
	struct addr a;

	OK("user@Example.COM", "user@example.com", ADDR_F_NO_BRACKETS);
	OK("\"a b\"@example.com", "\"a b\"@example.com",
	    ADDR_F_NO_BRACKETS | ADDR_F_QUOTED);
	MOK("user@Example.COM", 0, "user@example.com", 0);
	assert_int_equal(addr_parse_path("joe@example.com", 15, 0, 0, &a),
	    ADDR_OK);
	assert_int_equal(a.local_len, 3);
	assert_ptr_equal(a.domain, a.mailbox + 4);
	ERR("user", ADDR_ERR_SYNTAX);
	ERR("@", ADDR_ERR_SYNTAX);
}

static void
test_no_domain(void **state)
{
	struct addr a;

	ERR("<postmaster>", ADDR_ERR_SYNTAX);
	ERR_OPT("<postmaster>", 0, 1, ADDR_ERR_SYNTAX);
	OK_OPT("<postmaster>", 1, 0, "postmaster", ADDR_F_NO_DOMAIN);
	OK_OPT("<PostMaster>", 1, 0, "PostMaster", ADDR_F_NO_DOMAIN);
	OK_OPT("postmaster", 1, 0, "postmaster",
	    ADDR_F_NO_DOMAIN | ADDR_F_NO_BRACKETS);
	OK_OPT("<\"post master\">", 1, 0, "\"post master\"",
	    ADDR_F_NO_DOMAIN | ADDR_F_QUOTED);
	OK_OPT("<a.b>", 1, 0, "a.b", ADDR_F_NO_DOMAIN);
	ERR_OPT("<postmaster@>", 1, 0, ADDR_ERR_SYNTAX);
	ERR_OPT("<postmaster.>", 1, 0, ADDR_ERR_SYNTAX);
	ERR_OPT("<postmaster:>", 1, 0, ADDR_ERR_SYNTAX);
	MERR("postmaster", 0, ADDR_ERR_SYNTAX);
	MERR("postmaster", 1, ADDR_ERR_SYNTAX);

	memset(&a, 0xa5, sizeof(a));
	assert_int_equal(addr_parse_path("<postmaster>", 12, 1, 0, &a),
	    ADDR_OK);
	assert_int_equal(a.local_len, 10);
	assert_ptr_equal(a.domain, a.mailbox + 10);
	assert_string_equal(a.domain, "");
}

static void
test_mailbox(void **state)
{
	MOK("a@b.c", 0, "a@b.c", 0);
	MOK("A@B.C", 0, "A@b.c", 0);
	MOK("\"a@b\"@c.example", 0, "\"a@b\"@c.example",
	    ADDR_F_QUOTED | ADDR_F_RELAY_CHARS);
	MERR("<a@b.c>", 0, ADDR_ERR_SYNTAX);
	MERR("<a@b.c", 0, ADDR_ERR_SYNTAX);
	MERR("a@b.c,d@e.f", 0, ADDR_ERR_SYNTAX);
	MERR("a@b.c d@e.f", 0, ADDR_ERR_SYNTAX);
	MERR("Joe <a@b.c>", 0, ADDR_ERR_SYNTAX);
	MERR("a", 0, ADDR_ERR_SYNTAX);
	MERR("@", 0, ADDR_ERR_SYNTAX);
}

static void
test_strerror(void **state)
{
	static const enum addr_error all[] = { ADDR_OK, ADDR_ERR_SYNTAX,
	    ADDR_ERR_LOCAL_TOO_LONG, ADDR_ERR_DOMAIN_TOO_LONG,
	    ADDR_ERR_PATH_TOO_LONG, ADDR_ERR_BAD_CHAR };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_non_null(addr_strerror(all[i]));
		assert_true(strlen(addr_strerror(all[i])) > 0);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(addr_strerror(all[i]),
			    addr_strerror(all[j]));
	}
	assert_non_null(addr_strerror((enum addr_error)99));
}

/* The parser honours len, not a terminator: bytes after len are ignored. */
static void
test_len_is_the_end(void **state)
{
	struct addr a;

	assert_int_equal(addr_parse_path("<u@example.com>garbage", 15, 0, 0,
	    &a), ADDR_OK);
	assert_string_equal(a.mailbox, "u@example.com");
	assert_int_equal(addr_parse_path("u@example.comX", 13, 0, 0, &a),
	    ADDR_OK);
	assert_string_equal(a.mailbox, "u@example.com");
	assert_int_equal(addr_parse_path("<>\r\n", 2, 0, 0, &a), ADDR_OK);
	assert_int_equal(addr_parse_mailbox("u@e.x\n", 5, 0, &a), ADDR_OK);
	assert_string_equal(a.mailbox, "u@e.x");
	assert_true(addr_valid_domain("example.com.", 11));
	assert_true(addr_valid_domain("a-b", 1));
	assert_false(addr_valid_domain("a-b", 2));
}

struct sample {
	const char *in;
	int nodom;
	int utf8;
	enum mode mode;
};

static const struct sample samples[] = {
	{ "<user@example.com>", 0, 0, PATH },
	{ "<>", 0, 0, PATH },
	{ "<User.Name+tag@Mail.Example.ORG>", 0, 0, PATH },
	{ "<\"quoted \\\" local\"@example.com>", 0, 0, PATH },
	{ "<\"a@b\"@example.com>", 0, 0, PATH },
	{ "<a%b!c@example.com>", 0, 0, PATH },
	{ "<@a.example,@b.example:user@c.example>", 0, 0, PATH },
	{ "<u@[192.0.2.1]>", 0, 0, PATH },
	{ "<u@[IPv6:2001:db8::1]>", 0, 0, PATH },
	{ "<postmaster>", 1, 0, PATH },
	{ "postmaster", 1, 0, PATH },
	{ "user@example.com", 0, 0, PATH },
	{ "<j\xc3\xb8rn@ex\xc3\xa4mple.com>", 0, 1, PATH },
	{ "<\xf0\x9f\x93\xa7@example.com>", 0, 1, PATH },
	{ "user@example.com", 0, 0, MAILBOX },
	{ "\"x y\"@[192.0.2.1]", 0, 0, MAILBOX },
	{ "\xe7\x94\xa8@\xe4\xbe\x8b.example", 0, 1, MAILBOX },
};

/*
 * Feed every valid sample a byte at a time: each strict prefix sits alone
 * in a heap buffer of exactly its length, so a parser that looks one byte
 * too far trips ASan.  No prefix may produce the full result; a bracketed
 * prefix may not succeed at all.  Suffixes are fed too, for crashes only.
 */
static void
test_byte_by_byte(void **state)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *sm = &samples[i];
		size_t n = strlen(sm->in);
		struct addr full, a;

		assert_int_equal(parse_exact(sm->mode, sm->in, n, sm->nodom,
		    sm->utf8, &full), ADDR_OK);
		check_shape(&full, __FILE__, __LINE__);

		for (size_t k = 0; k < n; k++) {
			for (int opt = 0; opt < 4; opt++) {
				int nodom = opt & 1, utf8 = (opt >> 1) & 1;
				enum addr_error e;

				memset(&a, 0xa5, sizeof(a));
				e = parse_exact(sm->mode, sm->in, k, nodom,
				    utf8, &a);
				if (e != ADDR_OK)
					continue;
				check_shape(&a, __FILE__, __LINE__);
				if (sm->in[0] == '<')
					fail_msg("prefix %zu of \"%s\" "
					    "accepted", k, sm->in);
				if (strcmp(a.mailbox, full.mailbox) == 0 &&
				    a.flags == full.flags)
					fail_msg("prefix %zu of \"%s\" gave "
					    "the full result", k, sm->in);
			}
		}
		for (size_t k = 1; k <= n; k++)
			for (int opt = 0; opt < 4; opt++)
				(void)parse_exact(sm->mode, sm->in + k, n - k,
				    opt & 1, (opt >> 1) & 1, &a);
	}
}

/* SRS addresses carry an address inside them: their local parts may be longer. */
static void
test_srs_local_part_may_be_longer(void **state)
{
	char in[400], local[300];
	struct addr a;

	/* 100 octets: an SRS0 local part passes, any other does not */
	memset(local, 'x', 100);
	local[100] = '\0';
	memcpy(local, "SRS0=abcd=XY=", 13);
	snprintf(in, sizeof(in), "<%s@example.test>", local);
	assert_int_equal(addr_parse_path(in, strlen(in), 0, 0, &a), ADDR_OK);
	assert_int_equal(a.local_len, 100);
	memcpy(local, "srs1+", 5);
	snprintf(in, sizeof(in), "<%s@example.test>", local);
	assert_int_equal(addr_parse_path(in, strlen(in), 0, 0, &a), ADDR_OK);
	memcpy(local, "SRS2=", 5);
	snprintf(in, sizeof(in), "<%s@example.test>", local);
	assert_int_equal(addr_parse_path(in, strlen(in), 0, 0, &a), ADDR_ERR_LOCAL_TOO_LONG);
	memcpy(local, "SRS0x", 5);
	snprintf(in, sizeof(in), "<%s@example.test>", local);
	assert_int_equal(addr_parse_path(in, strlen(in), 0, 0, &a), ADDR_ERR_LOCAL_TOO_LONG);
	/* and at most ADDR_SRS_LOCAL_MAX, exactly */
	memset(local, 'y', sizeof(local));
	memcpy(local, "SRS0=", 5);
	local[ADDR_SRS_LOCAL_MAX] = '\0';
	snprintf(in, sizeof(in), "<%s@e.test>", local);
	assert_int_equal(addr_parse_path(in, strlen(in), 0, 0, &a), ADDR_OK);
	local[ADDR_SRS_LOCAL_MAX] = 'y';
	local[ADDR_SRS_LOCAL_MAX + 1] = '\0';
	snprintf(in, sizeof(in), "<%s@e.test>", local);
	assert_int_equal(addr_parse_path(in, strlen(in), 0, 0, &a), ADDR_ERR_LOCAL_TOO_LONG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_srs_local_part_may_be_longer),
		cmocka_unit_test(test_ordinary),
		cmocka_unit_test(test_case_folding),
		cmocka_unit_test(test_null_path),
		cmocka_unit_test(test_quoted),
		cmocka_unit_test(test_relay_tricks),
		cmocka_unit_test(test_local_limits),
		cmocka_unit_test(test_domain_limits),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_control_chars),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_address_literals),
		cmocka_unit_test(test_trailing_dot_and_empty_labels),
		cmocka_unit_test(test_hyphens),
		cmocka_unit_test(test_garbage_after_path),
		cmocka_unit_test(test_unbalanced_brackets),
		cmocka_unit_test(test_spaces),
		cmocka_unit_test(test_no_brackets),
		cmocka_unit_test(test_no_domain),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_len_is_the_end),
		cmocka_unit_test(test_byte_by_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
