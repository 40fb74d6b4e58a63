/*
 * fuzz_addr.c - libFuzzer target for lib/addr.c.
 *
 * The first input byte picks the options of the main call (bit 0:
 * allow_no_domain, bit 1: allow_utf8); the rest is the path.  Beyond "does
 * not crash", every result is checked for the shape the rest of umbox relies
 * on, and the entry points are checked against each other: looser options
 * never refuse what stricter ones accept, brackets never change a result,
 * and a canonical mailbox parses back to itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_addr: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* Parse from a heap copy of exactly n bytes, so ASan sees any over-read. */
static enum addr_error
path_exact(const uint8_t *s, size_t n, int nodom, int utf8, struct addr *a)
{
	char *b = malloc(n);
	enum addr_error e;

	CHECK(b != NULL || n == 0);
	if (n != 0)
		memcpy(b, s, n);
	e = addr_parse_path(b, n, nodom, utf8, a);
	free(b);
	return e;
}

/*
 * Reference checks, written differently from lib/addr.c on purpose (decode
 * then judge; split then judge) so a shared mistake is unlikely.
 */

/* Is s[0..n) well-formed UTF-8: shortest form, no surrogates, <= U+10FFFF? */
static int
ref_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned long cp;
		size_t len, k;

		if (s[i] < 0x80) {
			i++;
			continue;
		} else if ((s[i] & 0xe0) == 0xc0) {
			len = 2;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			len = 3;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			len = 4;
			cp = s[i] & 0x07;
		} else
			return 0;
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000))
			return 0;
		if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += len;
	}
	return 1;
}

static int
ref_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80;
}

/* Split on dots; each label 1-63 octets, LDH, no hyphen at either end. */
static int
ref_domain(const char *d, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > ADDR_DOMAIN_MAX)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		size_t len;

		if (i < n && d[i] != '.')
			continue;
		len = i - start;
		if (len < 1 || len > 63)
			return 0;
		if (d[start] == '-' || d[i - 1] == '-')
			return 0;
		for (size_t k = start; k < i; k++)
			if (!ref_letdig((unsigned char)d[k]) && d[k] != '-')
				return 0;
		start = i + 1;
	}
	return 1;
}

/* A dot-atom or a quoted-string, as RFC 5321 §4.1.2 has them. */
static int
ref_local(const char *l, size_t n)
{
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";

	if (n >= 2 && l[0] == '"') {
		size_t i = 1;

		while (i < n - 1) {
			unsigned char c = (unsigned char)l[i];

			if (c == '\\') {
				if (i + 1 >= n - 1)
					return 0;
				c = (unsigned char)l[i + 1];
				if (c < 0x20 || c > 0x7e)
					return 0;
				i += 2;
			} else if (c == '"' || c < 0x20 || c == 0x7f)
				return 0;
			else
				i++;
		}
		return i == n - 1 && l[n - 1] == '"';
	}
	if (n == 0 || l[0] == '.' || l[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)l[i];

		if (c == '.') {
			if (l[i + 1] == '.')
				return 0;
		} else if (!ref_letdig(c) &&
		    (c == 0 || strchr(specials, c) == NULL))
			return 0;
	}
	return 1;
}

static int
has_relay_char(const char *s, size_t n)
{
	return memchr(s, '%', n) != NULL || memchr(s, '!', n) != NULL ||
	    memchr(s, '@', n) != NULL;
}

/*
 * What every successful result must look like.  The local part is kept as
 * written (quotes and escapes included), so it is never longer than the
 * 64 octets the parser counted: no quoted form can expand it.
 */
static void
check_result(const struct addr *a, int nodom, int utf8)
{
	const char *nul = memchr(a->mailbox, '\0', sizeof(a->mailbox));
	size_t mlen, dlen, i;
	int nonascii = 0;

	CHECK(nul != NULL);
	mlen = (size_t)(nul - a->mailbox);
	CHECK(mlen <= ADDR_PATH_MAX);
	CHECK(mlen <= ADDR_PATH_MAX - 2);	/* the brackets always count */
	/* Only an SRS local part may pass 64 octets. */
	CHECK(a->local_len <= ADDR_SRS_LOCAL_MAX);
	CHECK(a->local_len <= ADDR_LOCAL_MAX || (a->local_len >= 5 &&
	    strncasecmp(a->mailbox, "srs", 3) == 0 && (a->mailbox[3] == '0' ||
	    a->mailbox[3] == '1') && strchr("=+-", a->mailbox[4]) != NULL));
	CHECK(a->local_len <= mlen);
	CHECK(a->domain >= a->mailbox && a->domain <= nul);
	for (i = 0; i < mlen; i++) {
		unsigned char c = (unsigned char)a->mailbox[i];

		CHECK(c >= 0x20 && c != 0x7f);
		if (c >= 0x80)
			nonascii = 1;
	}
	CHECK(!!(a->flags & ADDR_F_UTF8) == nonascii);
	CHECK(ref_utf8((const unsigned char *)a->mailbox, mlen));
	CHECK(utf8 || !nonascii);
	CHECK(nodom || !(a->flags & ADDR_F_NO_DOMAIN));
	CHECK(!!(a->flags & ADDR_F_RELAY_CHARS) ==
	    has_relay_char(a->mailbox, a->local_len));
	CHECK(!!(a->flags & ADDR_F_QUOTED) ==
	    (a->local_len > 0 && a->mailbox[0] == '"'));

	if (a->flags & ADDR_F_NULL) {
		CHECK(a->flags == ADDR_F_NULL);
		CHECK(mlen == 0 && a->domain == a->mailbox);
		return;
	}
	CHECK(a->local_len > 0);
	CHECK(ref_local(a->mailbox, a->local_len));
	if (a->flags & ADDR_F_NO_DOMAIN) {
		CHECK(a->domain == a->mailbox + a->local_len);
		CHECK(mlen == a->local_len);
		CHECK(!(a->flags & (ADDR_F_ADDR_LITERAL | ADDR_F_SOURCE_ROUTE)));
		return;
	}
	CHECK(a->mailbox[a->local_len] == '@');
	CHECK(a->domain == a->mailbox + a->local_len + 1);
	dlen = strlen(a->domain);
	CHECK(dlen >= 1 && dlen <= ADDR_DOMAIN_MAX);
	if (a->flags & ADDR_F_ADDR_LITERAL) {
		CHECK(a->domain[0] == '[' && a->domain[dlen - 1] == ']');
		return;
	}
	nonascii = 0;
	for (i = 0; i < dlen; i++) {
		CHECK(!(a->domain[i] >= 'A' && a->domain[i] <= 'Z'));
		if ((unsigned char)a->domain[i] >= 0x80)
			nonascii = 1;
	}
	CHECK(ref_domain(a->domain, dlen));
	if (!nonascii)
		CHECK(addr_valid_domain(a->domain, dlen));
}

static int
same(const struct addr *x, const struct addr *y)
{
	return x->flags == y->flags && x->local_len == y->local_len &&
	    strcmp(x->mailbox, y->mailbox) == 0;
}

/*
 * A canonical mailbox must parse back to itself, as a bare mailbox and as
 * a bracketed path, with the same flags bar those about the original form.
 */
static void
check_round_trip(const struct addr *a, int utf8)
{
	const unsigned form = ADDR_F_NO_BRACKETS | ADDR_F_SOURCE_ROUTE;
	size_t mlen = strlen(a->mailbox);
	uint8_t wrapped[ADDR_PATH_MAX + 3];
	struct addr b;

	if (a->flags & (ADDR_F_NULL | ADDR_F_NO_DOMAIN))
		return;
	CHECK(addr_parse_mailbox(a->mailbox, mlen, utf8, &b) == ADDR_OK);
	CHECK(strcmp(a->mailbox, b.mailbox) == 0);
	CHECK(b.flags == (a->flags & ~form));
	CHECK(b.local_len == a->local_len);

	wrapped[0] = '<';
	memcpy(wrapped + 1, a->mailbox, mlen);
	wrapped[mlen + 1] = '>';
	CHECK(path_exact(wrapped, mlen + 2, 0, utf8, &b) == ADDR_OK);
	CHECK(strcmp(a->mailbox, b.mailbox) == 0);
	CHECK(b.flags == (a->flags & ~form));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr r[2][2], a, b;
	enum addr_error e[2][2], me;
	int nodom, utf8, bad = 0;
	const uint8_t *in;
	size_t n;

	if (size < 1)
		return 0;
	nodom = data[0] & 1;
	utf8 = (data[0] >> 1) & 1;
	in = data + 1;
	n = size - 1;

	/* Every option combination; the first byte's one is checked deepest. */
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++) {
			memset(&r[i][j], 0xa5, sizeof(r[i][j]));
			e[i][j] = path_exact(in, n, i, j, &r[i][j]);
			CHECK(addr_strerror(e[i][j]) != NULL);
			if (e[i][j] == ADDR_OK)
				check_result(&r[i][j], i, j);
			/* The null path is "<>" and nothing else. */
			if (e[i][j] == ADDR_OK &&
			    (r[i][j].flags & ADDR_F_NULL))
				CHECK(n == 2 && in[0] == '<' && in[1] == '>');
			if (e[i][j] == ADDR_ERR_BAD_CHAR)
				bad++;
		}
	if (e[nodom][utf8] == ADDR_OK)
		check_round_trip(&r[nodom][utf8], utf8);

	/* A control octet is refused whatever the options. */
	CHECK(bad == 0 || bad == 4);

	/* Looser options never refuse or change what stricter ones accept. */
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			for (int k = i; k < 2; k++)
				for (int l = j; l < 2; l++)
					if (e[i][j] == ADDR_OK) {
						CHECK(e[k][l] == ADDR_OK);
						CHECK(same(&r[i][j], &r[k][l]));
					}

	/* Brackets change nothing but the flag saying they were missing. */
	if (e[nodom][utf8] == ADDR_OK &&
	    (r[nodom][utf8].flags & ADDR_F_NO_BRACKETS)) {
		uint8_t *w = malloc(n + 2);

		CHECK(w != NULL);
		w[0] = '<';
		memcpy(w + 1, in, n);
		w[n + 1] = '>';
		CHECK(path_exact(w, n + 2, nodom, utf8, &a) == ADDR_OK);
		CHECK(strcmp(a.mailbox, r[nodom][utf8].mailbox) == 0);
		CHECK(a.flags ==
		    (r[nodom][utf8].flags & ~ADDR_F_NO_BRACKETS));
		free(w);
	}

	/* addr_parse_mailbox is the unbracketed path without a bare local part. */
	{
		char *m = malloc(n);

		CHECK(m != NULL || n == 0);
		if (n != 0)
			memcpy(m, in, n);
		me = addr_parse_mailbox(m, n, utf8, &b);
		free(m);
	}
	CHECK(addr_strerror(me) != NULL);
	if (n == 0 || in[0] != '<')
		CHECK(me == e[0][utf8]);
	else
		CHECK(me == ADDR_ERR_SYNTAX || me == ADDR_ERR_BAD_CHAR);
	if (me == ADDR_OK) {
		check_result(&b, 0, utf8);
		CHECK(strcmp(b.mailbox, r[0][utf8].mailbox) == 0);
		CHECK(r[0][utf8].flags == (b.flags | ADDR_F_NO_BRACKETS));
	}

	/* A valid domain works as the domain of a mailbox that fits. */
	{
		char *d = malloc(n);
		int valid;

		CHECK(d != NULL || n == 0);
		if (n != 0)
			memcpy(d, in, n);
		valid = addr_valid_domain(d, n);
		free(d);
		CHECK(!valid || (n >= 1 && n <= ADDR_DOMAIN_MAX));
		/* Agrees with the reference on ASCII input. */
		{
			int ascii = 1;

			for (size_t i = 0; i < n; i++)
				if (in[i] >= 0x80)
					ascii = 0;
			if (ascii)
				CHECK(valid == ref_domain((const char *)in, n));
		}
		if (valid && n + 2 <= ADDR_PATH_MAX - 2) {
			uint8_t mb[ADDR_PATH_MAX];

			mb[0] = 'x';
			mb[1] = '@';
			memcpy(mb + 2, in, n);
			CHECK(addr_parse_mailbox((const char *)mb, n + 2, 0,
			    &b) == ADDR_OK);
			CHECK(b.flags == 0);
			CHECK(strlen(b.domain) == n);
			for (size_t i = 0; i < n; i++) {
				uint8_t c = in[i];

				if (c >= 'A' && c <= 'Z')
					c = (uint8_t)(c - 'A' + 'a');
				CHECK((uint8_t)b.domain[i] == c);
			}
		}
	}
	return 0;
}
