/*
 * srs.c - the Sender Rewriting Scheme codec.
 *
 * Addresses are cut into pieces (pointer and length into the caller's
 * bytes), each piece judged as it is taken, from the left, against an
 * explicit end; the result is written only once its whole length is known
 * to fit.  The formats, and the choices beyond them, are in srs.h.
 */
#include "aliases/srs.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SRS_STAMP_LEN	2
#define SRS_DAY_SECONDS	86400
#define SRS_STAMP_SLOTS	1024	/* 32 * 32: two base32 characters */
#define SRS_PIECES_MAX	10

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* A run of bytes in an input, or a constant. */
struct piece {
	const char *p;
	size_t n;
};

static unsigned char
to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static int
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
is_separator(unsigned char c)
{
	return c == '=' || c == '+' || c == '-';
}

/* An octet a local part may hold unquoted: atext, '.', or UTF-8. */
static int
is_local_octet(unsigned char c)
{
	return c >= 0x80 || is_alnum(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* An octet of a domain name: letters, digits, '-', '.', '_', or UTF-8. */
static int
is_domain_octet(unsigned char c)
{
	return c >= 0x80 || is_alnum(c) || c == '-' || c == '.' || c == '_';
}

static int
valid_local(struct piece s)
{
	if (s.n == 0)
		return 0;
	for (size_t i = 0; i < s.n; i++)
		if (!is_local_octet((unsigned char)s.p[i]))
			return 0;
	return 1;
}

static int
valid_domain(struct piece s)
{
	if (s.n == 0)
		return 0;
	for (size_t i = 0; i < s.n; i++)
		if (!is_domain_octet((unsigned char)s.p[i]))
			return 0;
	return 1;
}

/* Whether s starts with the tag "SRS<digit>", any case, and a separator. */
static int
has_tag(const char *s, size_t n, char digit)
{
	return n >= 5 && to_lower((unsigned char)s[0]) == 's' &&
	    to_lower((unsigned char)s[1]) == 'r' &&
	    to_lower((unsigned char)s[2]) == 's' && s[3] == digit &&
	    is_separator((unsigned char)s[4]);
}

int
srs_is_srs(const char *local, size_t len)
{
	return has_tag(local, len, '0') || has_tag(local, len, '1');
}

const char *
srs_status_str(enum srs_status s)
{
	switch (s) {
	case SRS_OK:
		return "ok";
	case SRS_NOT_SRS:
		return "not an SRS address";
	case SRS_BAD_SYNTAX:
		return "malformed SRS address";
	case SRS_BAD_HASH:
		return "bad signature";
	case SRS_EXPIRED:
		return "expired";
	case SRS_TOO_LONG:
		return "address too long";
	case SRS_NO_SPACE:
		return "buffer too small";
	case SRS_NO_SECRET:
		return "no SRS secret";
	case SRS_CRYPTO:
		return "HMAC failed";
	}
	return "unknown status";
}

/*
 * Take the piece from *pos up to the next '=' before end, and step past
 * the '='.  Returns 0 when there is no '=' left.
 */
static int
take_field(const char **pos, const char *end, struct piece *out)
{
	const char *eq = memchr(*pos, '=', (size_t)(end - *pos));

	if (eq == NULL)
		return 0;
	out->p = *pos;
	out->n = (size_t)(eq - *pos);
	*pos = eq + 1;
	return 1;
}

/*
 * The hash of the pieces: HMAC-SHA1 keyed with the secret over the pieces
 * one after the other, ASCII-lowercased, then the first SRS_HASH_LEN
 * characters of its base64 (which need only the MAC's first three bytes).
 * The pieces come from an address of at most SRS_ADDR_MAX octets; when
 * they do not fit, neither would the address made with them.
 */
static enum srs_status
srs_hash(const char *secret, size_t secretlen, const struct piece *v,
    size_t nv, char hash[SRS_HASH_LEN])
{
	unsigned char data[SRS_ADDR_MAX], mac[EVP_MAX_MD_SIZE], b64[5];
	size_t len = 0, maclen = 0;

	for (size_t i = 0; i < nv; i++) {
		if (v[i].n > sizeof(data) - len)
			return SRS_TOO_LONG;
		for (size_t j = 0; j < v[i].n; j++)
			data[len++] = to_lower((unsigned char)v[i].p[j]);
	}
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, secret, secretlen,
	    data, len, mac, sizeof(mac), &maclen) == NULL || maclen < 3)
		return SRS_CRYPTO;
	if (EVP_EncodeBlock(b64, mac, 3) != SRS_HASH_LEN)
		return SRS_CRYPTO;
	memcpy(hash, b64, SRS_HASH_LEN);
	return SRS_OK;
}

/*
 * Check a hash from an address against the pieces, without case and in
 * constant time.
 */
static enum srs_status
srs_hash_check(const char *secret, size_t secretlen, struct piece given,
    const struct piece *v, size_t nv)
{
	char want[SRS_HASH_LEN], got[SRS_HASH_LEN];
	enum srs_status st;

	if (given.n != SRS_HASH_LEN)
		return SRS_BAD_SYNTAX;
	st = srs_hash(secret, secretlen, v, nv, want);
	if (st != SRS_OK)
		return st;
	for (size_t i = 0; i < SRS_HASH_LEN; i++) {
		want[i] = (char)to_lower((unsigned char)want[i]);
		got[i] = (char)to_lower((unsigned char)given.p[i]);
	}
	return CRYPTO_memcmp(want, got, SRS_HASH_LEN) == 0 ? SRS_OK :
	    SRS_BAD_HASH;
}

/* The day of now, modulo the 1024 a timestamp can tell apart. */
static unsigned
srs_day(int64_t now)
{
	int64_t day = now / SRS_DAY_SECONDS;

	if (now % SRS_DAY_SECONDS < 0)	/* round down before 1970 too */
		day--;
	day %= SRS_STAMP_SLOTS;
	if (day < 0)
		day += SRS_STAMP_SLOTS;
	return (unsigned)day;
}

static void
stamp_make(int64_t now, char stamp[SRS_STAMP_LEN])
{
	unsigned day = srs_day(now);

	stamp[0] = srs_base32[(day >> 5) & 31];
	stamp[1] = srs_base32[day & 31];
}

/*
 * The day a timestamp names, or -1 when it is not two base32 characters
 * (in either case).
 */
static int
stamp_parse(struct piece s)
{
	int day = 0;

	if (s.n != SRS_STAMP_LEN)
		return -1;
	for (size_t i = 0; i < SRS_STAMP_LEN; i++) {
		unsigned char c = (unsigned char)s.p[i];
		const char *hit;

		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		hit = c != '\0' ? strchr(srs_base32, c) : NULL;
		if (hit == NULL)
			return -1;
		day = day * 32 + (int)(hit - srs_base32);
	}
	return day;
}

/*
 * Whether a timestamp for day is good at now: at most SRS_MAX_AGE_DAYS
 * old or SRS_FUTURE_DAYS ahead, modulo 1024 (so a stamp from day 1023 is
 * one day old on day 0 of the next cycle).
 */
static int
stamp_fresh(int day, int64_t now)
{
	unsigned age = (srs_day(now) + SRS_STAMP_SLOTS - (unsigned)day) %
	    SRS_STAMP_SLOTS;

	return age <= SRS_MAX_AGE_DAYS ||
	    SRS_STAMP_SLOTS - age <= SRS_FUTURE_DAYS;
}

/*
 * Write the pieces one after the other into out, NUL-terminated, when
 * they make at most SRS_ADDR_MAX octets and fit in outlen; else leave
 * out as it is ("" from the caller).
 */
static enum srs_status
emit(char *out, size_t outlen, const struct piece *v, size_t nv)
{
	size_t len = 0;

	for (size_t i = 0; i < nv; i++) {
		if (v[i].n > SRS_ADDR_MAX - len)
			return SRS_TOO_LONG;
		len += v[i].n;
	}
	if (len >= outlen)
		return SRS_NO_SPACE;
	len = 0;
	for (size_t i = 0; i < nv; i++) {
		memcpy(out + len, v[i].p, v[i].n);
		len += v[i].n;
	}
	out[len] = '\0';
	return SRS_OK;
}

#define LIT(s)	((struct piece){ (s), sizeof(s) - 1 })

/*
 * A sender that is already SRS1: "SRS1" sep hash '=' first '=' rest, with
 * rest a separator and more.  The hash is another's and is not checked.
 */
static int
parse_srs1_sender(struct piece local, struct piece *first, struct piece *rest)
{
	const char *pos = local.p + 5, *end = local.p + local.n;
	struct piece hash;

	if (!take_field(&pos, end, &hash) || hash.n == 0 ||
	    !take_field(&pos, end, first) || !valid_domain(*first))
		return 0;
	rest->p = pos;
	rest->n = (size_t)(end - pos);
	return rest->n >= 2 && is_separator((unsigned char)rest->p[0]);
}

enum srs_status
srs_forward(const char *secret, size_t secretlen, const char *sender,
    const char *alias_domain, int64_t now, char *out, size_t outlen)
{
	struct piece local, domain, alias, first, rest, v[SRS_PIECES_MAX];
	char hash[SRS_HASH_LEN], stamp[SRS_STAMP_LEN];
	const char *at;
	size_t slen;
	enum srs_status st;

	if (outlen > 0)
		out[0] = '\0';
	if (secret == NULL || secretlen == 0)
		return SRS_NO_SECRET;
	slen = strnlen(sender, SRS_ADDR_MAX + 1);
	alias.p = alias_domain;
	alias.n = strnlen(alias_domain, SRS_ADDR_MAX + 1);
	if (slen > SRS_ADDR_MAX || alias.n > SRS_ADDR_MAX)
		return SRS_TOO_LONG;
	at = memrchr(sender, '@', slen);
	if (at == NULL)
		return SRS_BAD_SYNTAX;
	local.p = sender;
	local.n = (size_t)(at - sender);
	domain.p = at + 1;
	domain.n = slen - local.n - 1;
	if (!valid_local(local) || !valid_domain(domain) ||
	    !valid_domain(alias))
		return SRS_BAD_SYNTAX;

	if (has_tag(local.p, local.n, '0') || has_tag(local.p, local.n, '1')) {
		if (local.p[3] == '1') {
			if (!parse_srs1_sender(local, &first, &rest))
				return SRS_BAD_SYNTAX;
		} else {
			/* Our SRS1 carries the sender's separator in rest. */
			first = domain;
			rest.p = local.p + 4;
			rest.n = local.n - 4;
			if (rest.n < 2)
				return SRS_BAD_SYNTAX;
		}
		v[0] = first;
		v[1] = rest;
		st = srs_hash(secret, secretlen, v, 2, hash);
		if (st != SRS_OK)
			return st;
		v[0] = LIT("SRS1=");
		v[1] = (struct piece){ hash, SRS_HASH_LEN };
		v[2] = LIT("=");
		v[3] = first;
		v[4] = LIT("=");
		v[5] = rest;
		v[6] = LIT("@");
		v[7] = alias;
		return emit(out, outlen, v, 8);
	}

	stamp_make(now, stamp);
	v[0] = (struct piece){ stamp, SRS_STAMP_LEN };
	v[1] = domain;
	v[2] = local;
	st = srs_hash(secret, secretlen, v, 3, hash);
	if (st != SRS_OK)
		return st;
	v[0] = LIT("SRS0=");
	v[1] = (struct piece){ hash, SRS_HASH_LEN };
	v[2] = LIT("=");
	v[3] = (struct piece){ stamp, SRS_STAMP_LEN };
	v[4] = LIT("=");
	v[5] = domain;
	v[6] = LIT("=");
	v[7] = local;
	v[8] = LIT("@");
	v[9] = alias;
	return emit(out, outlen, v, 10);
}

enum srs_status
srs_reverse(const char *secret, size_t secretlen, const char *local,
    size_t locallen, int64_t now, char *out, size_t outlen)
{
	const char *pos, *end;
	struct piece hash, stamp, domain, rest, v[SRS_PIECES_MAX];
	enum srs_status st;
	int day;

	if (outlen > 0)
		out[0] = '\0';
	if (!srs_is_srs(local, locallen))
		return SRS_NOT_SRS;
	if (locallen > SRS_ADDR_MAX)
		return SRS_TOO_LONG;
	if (secret == NULL || secretlen == 0)
		return SRS_NO_SECRET;
	if (!valid_local((struct piece){ local, locallen }))
		return SRS_BAD_SYNTAX;
	pos = local + 5;
	end = local + locallen;

	if (local[3] == '1') {
		/* SRS1 sep hash '=' first '=' rest: back to SRS0 at first. */
		if (!take_field(&pos, end, &hash) ||
		    !take_field(&pos, end, &domain) || !valid_domain(domain))
			return SRS_BAD_SYNTAX;
		rest.p = pos;
		rest.n = (size_t)(end - pos);
		if (rest.n < 2 || !is_separator((unsigned char)rest.p[0]))
			return SRS_BAD_SYNTAX;
		v[0] = domain;
		v[1] = rest;
		st = srs_hash_check(secret, secretlen, hash, v, 2);
		if (st != SRS_OK)
			return st;
		v[0] = LIT("SRS0");
		v[1] = rest;
		v[2] = LIT("@");
		v[3] = domain;
		return emit(out, outlen, v, 4);
	}

	/* SRS0 sep hash '=' stamp '=' domain '=' local. */
	if (!take_field(&pos, end, &hash) || !take_field(&pos, end, &stamp) ||
	    !take_field(&pos, end, &domain) || !valid_domain(domain))
		return SRS_BAD_SYNTAX;
	rest.p = pos;
	rest.n = (size_t)(end - pos);
	day = stamp_parse(stamp);
	if (rest.n == 0 || day < 0)
		return SRS_BAD_SYNTAX;
	v[0] = stamp;
	v[1] = domain;
	v[2] = rest;
	st = srs_hash_check(secret, secretlen, hash, v, 3);
	if (st != SRS_OK)
		return st;
	if (!stamp_fresh(day, now))
		return SRS_EXPIRED;
	v[0] = rest;
	v[1] = LIT("@");
	v[2] = domain;
	return emit(out, outlen, v, 3);
}
