/*
 * value.c - parsers and checks for scalar values: sizes, durations,
 * counts, names, literal addresses and comma-separated lists.
 *
 * Everything here is strict and locale-free: ASCII digits only, no signs,
 * no blanks inside a value, every overflow caught.  What the caller does
 * with a refused value, and how it words the message, is its business;
 * the parsers only say what is wrong with it.
 */
#include "value.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define DAY	(24U * 3600U)

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Split s into a run of decimal digits and what follows.  Returns NULL and
 * fills *v and *rest (the first byte after the digits), or the reason:
 * "is not a number" when s does not start with a digit, "is too large" on
 * overflow.
 */
static const char *
parse_digits(const char *s, uint64_t *v, const char **rest)
{
	uint64_t n = 0;
	const char *p;

	for (p = s; is_digit((unsigned char)*p); p++) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return "is too large";
	}
	if (p == s)
		return "is not a number";
	*v = n;
	*rest = p;
	return NULL;
}

const char *
value_parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *why, *rest;
	uint64_t v;

	if ((why = parse_digits(s, &v, &rest)) != NULL)
		return why;
	if (*rest != '\0')
		return "is not a number";
	if (v < min || v > max)
		return "is out of range";
	*out = v;
	return NULL;
}

/*
 * A size: decimal bytes with an optional K, M or G suffix (either case,
 * powers of 1024).  Signs, fractions, blanks and other suffixes are
 * refused.
 */
const char *
value_parse_size(const char *s, uint64_t *out)
{
	const char *why, *rest;
	uint64_t v, mult = 1;

	if ((why = parse_digits(s, &v, &rest)) != NULL)
		return *s == '\0' ? "is empty" : why;
	switch (*rest) {
	case '\0':
		break;
	case 'K': case 'k':
		mult = 1024;
		break;
	case 'M': case 'm':
		mult = 1024 * 1024;
		break;
	case 'G': case 'g':
		mult = 1024 * 1024 * 1024;
		break;
	case '.': case ',':
		return "is not a whole number (use a smaller unit: 1536K, not 1.5M)";
	default:
		return "has an unknown unit (use K, M or G)";
	}
	if (*rest != '\0' && rest[1] != '\0')
		return "has an unknown unit (use K, M or G)";
	if (__builtin_mul_overflow(v, mult, &v))
		return "is too large";
	*out = v;
	return NULL;
}

/*
 * A duration: a number with s, m, h or d, at most UINT_MAX seconds.  A
 * bare number is taken as seconds: it is what every administrator means
 * by "timeout = 30", and refusing it would only annoy.
 */
const char *
value_parse_duration(const char *s, unsigned *out)
{
	const char *why, *rest;
	uint64_t v, mult = 1;

	if ((why = parse_digits(s, &v, &rest)) != NULL)
		return *s == '\0' ? "is empty" : why;
	switch (*rest) {
	case '\0': case 's': case 'S':
		break;
	case 'm': case 'M':
		mult = 60;
		break;
	case 'h': case 'H':
		mult = 3600;
		break;
	case 'd': case 'D':
		mult = DAY;
		break;
	case '.': case ',':
		return "is not a whole number (use a smaller unit: 90m, not 1.5h)";
	default:
		return "has an unknown unit (use s, m, h or d)";
	}
	if (*rest != '\0' && rest[1] != '\0')
		return "has an unknown unit (use s, m, h or d)";
	if (__builtin_mul_overflow(v, mult, &v) || v > UINT_MAX)
		return "is too large";
	*out = (unsigned)v;
	return NULL;
}

/*
 * Is s a syntactically valid domain name: LDH labels of 1..63 octets,
 * no label starting or ending with '-', at most 253 octets, no trailing
 * dot, and a last label that is not all digits (so "192.0.2.1" is not
 * mistaken for a name, RFC 3696 §2).
 */
int
value_is_domain(const char *s)
{
	size_t len = strlen(s), label = 0;
	int all_digits = 1;
	const char *p;

	if (len == 0 || len > 253)
		return 0;
	for (p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return 0;
			if (*p == '\0')
				break;
			label = 0;
			all_digits = 1;
			continue;
		}
		if (!is_alnum((unsigned char)*p) && *p != '-')
			return 0;
		if (*p == '-' && label == 0)
			return 0;
		if (!is_digit((unsigned char)*p))
			all_digits = 0;
		label++;
	}
	return !all_digits;
}

/*
 * Does every byte of s belong to the letters and digits plus extra, and is
 * its length within [min, max]?
 */
static int
name_of(const char *s, const char *extra, size_t min, size_t max)
{
	size_t i, n = strlen(s);

	if (n < min || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) &&
		    strchr(extra, s[i]) == NULL)
			return 0;
	return 1;
}

/*
 * A user name getpwnam() could know: letters, digits, '.', '_', '-', at
 * most 32, not starting with '-' (it would read as an option).  Empty is
 * valid: it means "do not change user".
 */
int
value_is_user(const char *s)
{
	return s[0] != '-' && name_of(s, "._-", 0, 32);
}

/* An umbox login: 1..64 of a-z, 0-9, '.', '_', '-'; no capitals. */
int
value_is_login(const char *s)
{
	const char *p;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			return 0;
	return name_of(s, "._-", 1, 64);
}

/*
 * A node name for [store] node_id: 1..64 letters, digits, '.', '_', '-'.
 * It names this node in a shared database (locks, queue claims), so it is
 * kept to what every host name and every log line can carry.
 */
int
value_is_node_id(const char *s)
{
	return name_of(s, "._-", 1, 64);
}

/*
 * An espeak-ng voice name ("en", "en-us", "en+f3"): 1..40 letters,
 * digits, '-', '_', '+'.  Neither '/' nor '.', so it never reads as a path.
 */
int
value_is_voice(const char *s)
{
	return name_of(s, "-_+", 1, 40);
}

int
value_ip_literal(const char *s, unsigned char addr[16])
{
	if (inet_pton(AF_INET, s, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, addr) == 1)
		return AF_INET6;
	return 0;
}

int
value_list_foreach(const char *list, value_item_fn fn, void *arg,
    char *why, size_t whylen)
{
	char item[VALUE_ITEM_MAX + 1];
	const char *p = list, *end;
	size_t n;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		end = strchr(p, ',');
		n = end ? (size_t)(end - p) : strlen(p);
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0) {
			snprintf(why, whylen, "\"%s\" has an empty entry", list);
			return -1;
		}
		if (n >= sizeof(item)) {
			snprintf(why, whylen, "\"%.40s...\" is too long", p);
			return -1;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (fn(item, arg, why, whylen) != 0)
			return -1;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}
