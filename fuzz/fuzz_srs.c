/*
 * fuzz_srs.c - libFuzzer target for aliases/srs.c.
 *
 * The input is used twice, with a fixed secret and time:
 *   - as a local part at one of our domains, for srs_reverse(), from a heap
 *     copy of exactly its length so ASan sees any read past the end;
 *   - up to its first NUL, as a sender for srs_forward().
 * Every result must be NUL-terminated, within its buffer and SRS_ADDR_MAX,
 * "" on a refusal, and the same in a buffer of exactly its size (one byte
 * less: SRS_NO_SPACE).  What forward makes, reverse must take back, to the
 * sender for SRS0 and to the SRS0 address at the first domain for SRS1,
 * also once lowercased, and made again from it (the second hop) it must
 * lead to the same place.  An SRS0 address expires 22 days on; an SRS1
 * address does not.  The time is day 1020 of a 1024-day cycle, so 22 days
 * on wraps.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aliases/srs.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_srs: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#define SECRET		"fuzz-secret"
#define SECRET2		"another secret"
#define DAY		INT64_C(86400)
#define NOW		((INT64_C(1024) * 20 - 4) * DAY + 12345)
#define LATER		(NOW + 22 * DAY)
#define ALIAS		"fw.example"
#define ALIAS2		"second.example"
#define BUFSZ		(SRS_ADDR_MAX + 1)

static int
is_status(enum srs_status s)
{
	return s >= SRS_OK && s <= SRS_CRYPTO;
}

/* A result buffer after a call: terminated, "" unless OK, within limits. */
static void
check_out(enum srs_status st, const char *out, size_t outlen)
{
	size_t n;

	CHECK(is_status(st));
	CHECK(st != SRS_CRYPTO);
	CHECK(srs_status_str(st) != NULL);
	if (outlen == 0)
		return;
	CHECK(memchr(out, '\0', outlen) != NULL);
	n = strlen(out);
	if (st != SRS_OK) {
		CHECK(n == 0);
		return;
	}
	CHECK(n > 0 && n <= SRS_ADDR_MAX && n < outlen);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		CHECK(c > 0x20 && c != 0x7f && c != '"' && c != '\\');
	}
	/* Exactly one '@', with something on either side. */
	CHECK(strchr(out, '@') != NULL && strchr(out, '@') == strrchr(out, '@'));
	CHECK(out[0] != '@' && out[n - 1] != '@');
}

static enum srs_status
rev(const char *secret, const char *local, size_t n, int64_t now,
    char *out, size_t outlen)
{
	char *copy = malloc(n > 0 ? n : 1);
	enum srs_status st;

	CHECK(copy != NULL);
	if (n > 0)
		memcpy(copy, local, n);
	st = srs_reverse(secret, strlen(secret), copy, n, now, out, outlen);
	free(copy);
	check_out(st, out, outlen);
	return st;
}

static enum srs_status
fwd(const char *secret, const char *sender, const char *alias, int64_t now,
    char *out, size_t outlen)
{
	enum srs_status st;

	st = srs_forward(secret, strlen(secret), sender, alias, now, out,
	    outlen);
	check_out(st, out, outlen);
	return st;
}

/* A result fits exactly its size, and not one byte less. */
static void
check_sizes(int forward, const char *secret, const char *in, size_t n,
    const char *alias, const char *want)
{
	size_t len = strlen(want);
	char *b = malloc(len + 1);
	enum srs_status st;

	CHECK(b != NULL);
	memset(b, 'x', len + 1);
	st = forward ? fwd(secret, in, alias, NOW, b, len + 1) :
	    rev(secret, in, n, NOW, b, len + 1);
	CHECK(st == SRS_OK && strcmp(b, want) == 0);
	memset(b, 'x', len + 1);
	st = forward ? fwd(secret, in, alias, NOW, b, len) :
	    rev(secret, in, n, NOW, b, len);
	CHECK(st == SRS_NO_SPACE && b[0] == '\0');
	free(b);
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Whether s[0..n) starts with "SRSd" (any case) and a separator. */
static int
tagged(const char *s, size_t n, char d)
{
	return n >= 5 && strncasecmp(s, "SRS", 3) == 0 && s[3] == d &&
	    strchr("=+-", s[4]) != NULL && s[4] != '\0';
}

/*
 * Where the address forward made from sender must lead back to: the
 * sender itself, or for an SRS sender the SRS0 address at the first
 * domain, found here with strchr on a copy.
 */
static char *
expected_back(const char *sender)
{
	size_t n = strlen(sender);
	char *r = malloc(n + 8), *copy, *first, *rest, *at;

	CHECK(r != NULL);
	if (tagged(sender, n, '1')) {
		copy = strdup(sender);
		CHECK(copy != NULL);
		at = strrchr(copy, '@');
		CHECK(at != NULL);
		*at = '\0';
		first = strchr(copy + 5, '=');
		CHECK(first != NULL);
		*first++ = '\0';
		rest = strchr(first, '=');
		CHECK(rest != NULL);
		*rest++ = '\0';
		snprintf(r, n + 8, "SRS0%s@%s", rest, first);
		free(copy);
	} else if (tagged(sender, n, '0'))
		snprintf(r, n + 8, "SRS0%s", sender + 4);
	else
		memcpy(r, sender, n + 1);
	return r;
}

static void
check_reverse(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char out[BUFSZ], later[BUFSZ];
	enum srs_status st;

	st = rev(SECRET, s, size, NOW, out, sizeof(out));
	CHECK((st == SRS_NOT_SRS) == !srs_is_srs(s, size));
	CHECK(st != SRS_NO_SPACE);
	CHECK(st != SRS_TOO_LONG || size > SRS_ADDR_MAX);
	/* Without a secret, nothing is SRS_OK. */
	CHECK(rev("", s, size, NOW, later, sizeof(later)) ==
	    (st == SRS_NOT_SRS ? SRS_NOT_SRS : st == SRS_TOO_LONG ?
	    SRS_TOO_LONG : SRS_NO_SECRET));
	if (st != SRS_OK)
		return;
	CHECK(strlen(out) <= size);
	check_sizes(0, SECRET, s, size, NULL, out);
	/* SRS0 expires; SRS1, with no stamp of its own, does not. */
	st = rev(SECRET, s, size, LATER, later, sizeof(later));
	if (s[3] == '0')
		CHECK(st == SRS_EXPIRED);
	else {
		CHECK(st == SRS_OK && strcmp(out, later) == 0);
		CHECK(strncmp(out, "SRS0", 4) == 0);
	}
}

static void
check_forward(const uint8_t *data, size_t size)
{
	char *sender = malloc(size + 1), *want, *local;
	char out[BUFSZ], back[BUFSZ], out2[BUFSZ];
	size_t n, ln;
	enum srs_status st;

	CHECK(sender != NULL);
	memcpy(sender, data, size);
	sender[size] = '\0';
	n = strlen(sender);

	st = fwd(SECRET, sender, ALIAS, NOW, out, sizeof(out));
	CHECK(fwd("", sender, ALIAS, NOW, back, sizeof(back)) ==
	    SRS_NO_SECRET);
	CHECK(st != SRS_NO_SPACE && st != SRS_NOT_SRS && st != SRS_EXPIRED);
	if (st != SRS_OK) {
		free(sender);
		return;
	}
	CHECK(n > 0 && strchr(sender, '@') != NULL);
	check_sizes(1, SECRET, sender, n, ALIAS, out);

	ln = strlen(out) - strlen("@" ALIAS);
	CHECK(strcmp(out + ln, "@" ALIAS) == 0);
	CHECK(srs_is_srs(out, ln));
	CHECK(strncmp(out, "SRS0=", 5) == 0 || strncmp(out, "SRS1=", 5) == 0);

	/* The round trip, also lowercased. */
	want = expected_back(sender);
	CHECK(rev(SECRET, out, ln, NOW, back, sizeof(back)) == SRS_OK);
	CHECK(strcmp(back, want) == 0);
	local = strndup(out, ln);
	CHECK(local != NULL);
	lower(local);
	CHECK(rev(SECRET, local, ln, NOW, back, sizeof(back)) == SRS_OK);
	CHECK(strcasecmp(back, want) == 0);
	free(local);
	st = rev(SECRET, out, ln, LATER, back, sizeof(back));
	CHECK(st == (out[3] == '0' ? SRS_EXPIRED : SRS_OK));

	/* The second hop leads where the first did. */
	st = fwd(SECRET2, out, ALIAS2, NOW, out2, sizeof(out2));
	if (st == SRS_OK) {
		ln = strlen(out2) - strlen("@" ALIAS2);
		CHECK(strncmp(out2, "SRS1=", 5) == 0);
		CHECK(rev(SECRET2, out2, ln, NOW, back, sizeof(back)) ==
		    SRS_OK);
		CHECK(strcmp(back, out[3] == '0' ? out : want) == 0);
	} else
		CHECK(st == SRS_TOO_LONG);
	free(want);
	free(sender);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_reverse(data, size);
	check_forward(data, size);
	return 0;
}
