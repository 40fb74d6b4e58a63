/*
 * test_sasl.c - unit tests for lib/sasl.c: strict base64, SASL PLAIN and
 * LOGIN responses.
 *
 * Inputs are parsed from heap copies of exactly their length, so
 * AddressSanitizer reports any read past the end.  Long inputs are encoded
 * by a small reference encoder here rather than by the code under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sasl.h"

/* A heap copy of exactly n bytes (NULL when n is 0). */
static char *
dup_exact(const void *s, size_t n)
{
	char *b;

	if (n == 0)
		return NULL;
	b = malloc(n);
	assert_non_null(b);
	memcpy(b, s, n);
	return b;
}

/* Reference encoder, RFC 4648 §4, written the obvious way. */
static char *
ref_encode(const void *data, size_t n)
{
	static const char al[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *d = data;
	char *out = malloc((n + 2) / 3 * 4 + 1), *w = out;
	size_t i;

	assert_non_null(out);
	for (i = 0; i + 3 <= n; i += 3) {
		unsigned long v = (unsigned long)d[i] << 16 |
		    (unsigned long)d[i + 1] << 8 | d[i + 2];

		*w++ = al[v >> 18 & 63];
		*w++ = al[v >> 12 & 63];
		*w++ = al[v >> 6 & 63];
		*w++ = al[v & 63];
	}
	if (n - i == 1) {
		*w++ = al[d[i] >> 2];
		*w++ = al[(d[i] & 3) << 4];
		*w++ = '=';
		*w++ = '=';
	} else if (n - i == 2) {
		*w++ = al[d[i] >> 2];
		*w++ = al[(d[i] & 3) << 4 | d[i + 1] >> 4];
		*w++ = al[(d[i + 1] & 15) << 2];
		*w++ = '=';
	}
	*w = '\0';
	return out;
}

/* Decode n bytes of s from an exact copy into a buffer of outlen bytes. */
static long
dec_n(const char *s, size_t n, unsigned char *out, size_t outlen)
{
	char *b = dup_exact(s, n);
	unsigned char *o = outlen != 0 ? malloc(outlen) : NULL;
	long r;

	if (outlen != 0)
		assert_non_null(o);
	r = sasl_b64_decode(b != NULL ? b : "", n, o != NULL ? o : out,
	    outlen);
	if (r > 0 && o != NULL)
		memcpy(out, o, (size_t)r);
	free(o);
	free(b);
	return r;
}

static long
dec(const char *s, unsigned char *out, size_t outlen)
{
	return dec_n(s, strlen(s), out, outlen);
}

static int
plain_n(const char *s, size_t n, struct sasl_plain *p)
{
	char *b = dup_exact(s, n);
	int r = sasl_plain_decode(b != NULL ? b : "", n, p);

	free(b);
	return r;
}

static int
plain(const char *s, struct sasl_plain *p)
{
	return plain_n(s, strlen(s), p);
}

/* PLAIN of raw (authzid NUL authcid NUL password, n bytes), via base64. */
static int
plain_raw(const void *raw, size_t n, struct sasl_plain *p)
{
	char *e = ref_encode(raw, n);
	int r = plain(e, p);

	free(e);
	return r;
}

static int
login_n(const char *s, size_t n, char *out, size_t outlen)
{
	char *b = dup_exact(s, n);
	char *o = outlen != 0 ? malloc(outlen) : NULL;
	int r;

	if (outlen != 0)
		assert_non_null(o);
	r = sasl_login_decode(b != NULL ? b : "", n, o, outlen);
	if (o != NULL) {
		/* Success: a terminated string; failure: all zeros. */
		if (r == 0)
			memcpy(out, o, strlen(o) + 1);
		else
			for (size_t i = 0; i < outlen; i++)
				assert_int_equal(o[i], 0);
	}
	free(o);
	free(b);
	return r;
}

static int
login_raw(const void *raw, size_t n, char *out, size_t outlen)
{
	char *e = ref_encode(raw, n);
	int r = login_n(e, strlen(e), out, outlen);

	free(e);
	return r;
}

static int
all_zero(const void *p, size_t n)
{
	const unsigned char *u = p;

	for (size_t i = 0; i < n; i++)
		if (u[i] != 0)
			return 0;
	return 1;
}

static const struct {
	const char *raw;
	const char *b64;
} rfc4648[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

/* The RFC 4648 §10 vectors both ways, and exact output sizes. */
static void
test_b64_vectors(void **state)
{
	unsigned char out[16];
	char enc[16];

	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t rl = strlen(rfc4648[i].raw);

		memset(out, 0xa5, sizeof(out));
		assert_int_equal(dec(rfc4648[i].b64, out, sizeof(out)),
		    (long)rl);
		assert_memory_equal(out, rfc4648[i].raw, rl);
		/* A buffer of exactly the decoded size is enough. */
		assert_int_equal(dec(rfc4648[i].b64, out, rl), (long)rl);
		assert_memory_equal(out, rfc4648[i].raw, rl);
		if (rl > 0)
			assert_int_equal(dec(rfc4648[i].b64, out, rl - 1), -1);

		assert_int_equal(sasl_b64_encode((const unsigned char *)
		    rfc4648[i].raw, rl, enc, sizeof(enc)),
		    strlen(rfc4648[i].b64));
		assert_string_equal(enc, rfc4648[i].b64);
	}

	/* "=" alone is the empty response of RFC 4954. */
	assert_int_equal(dec("=", out, sizeof(out)), 0);
	assert_int_equal(dec("=", out, 0), 0);

	/* All 256 octet values survive a round trip. */
	{
		unsigned char raw[256], back[256];
		char *e;

		for (int i = 0; i < 256; i++)
			raw[i] = (unsigned char)i;
		e = ref_encode(raw, sizeof(raw));
		assert_int_equal(dec(e, back, sizeof(back)), 256);
		assert_memory_equal(raw, back, sizeof(raw));
		free(e);
	}
}

static void
test_b64_encode_limits(void **state)
{
	char out[9];

	/* "foobar" needs 8 + 1. */
	memset(out, 'x', sizeof(out));
	assert_int_equal(sasl_b64_encode((const unsigned char *)"foobar", 6,
	    out, 9), 8);
	assert_string_equal(out, "Zm9vYmFy");
	memset(out, 'x', sizeof(out));
	assert_int_equal(sasl_b64_encode((const unsigned char *)"foobar", 6,
	    out, 8), 0);
	assert_string_equal(out, "");
	assert_int_equal(sasl_b64_encode((const unsigned char *)"f", 1,
	    out, 4), 0);
	assert_int_equal(sasl_b64_encode((const unsigned char *)"f", 1,
	    out, 5), 4);
	assert_string_equal(out, "Zg==");
	assert_int_equal(sasl_b64_encode((const unsigned char *)"", 0,
	    out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(sasl_b64_encode((const unsigned char *)"", 0,
	    out, 0), 0);
}

static void
test_b64_bad_padding(void **state)
{
	static const char *const bad[] = {
		"Z", "Zg", "Zg=", "Zg===", "Z===", "====", "==", "===",
		"Zm9v=", "Zm9v====", "Zg==Zg==", "Zm=v", "=Zm9", "Zm8=Zm9v",
		"Zg=a", "==Zg", "Zm9vY", "Zm9vYg", "Zm9vYg=", "==",
		/* Non-zero bits after the data: canonical forms only. */
		"Zh==", "Zv==", "Z/==", "Zm9=", "Zm/=",
	};
	unsigned char out[32];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dec(bad[i], out, sizeof(out)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
}

static void
test_b64_alphabet(void **state)
{
	static const char *const bad[] = {
		"Zm9v!A==", "Zm-v", "Zm_v", "Zm9.", "Zm9v\x80\x80\x80\x80",
		"Zm9\xff", "Zm9v%3D", "Zm9*",
	};
	unsigned char out[32];
	char four[4] = { 'Z', 'm', '9', 'v' };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dec(bad[i], out, sizeof(out)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);

	/* Each octet value in each position of a 4-character group. */
	for (int c = 0; c < 256; c++) {
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/';

		for (int pos = 0; pos < 4; pos++) {
			char g[4];
			long r;

			memcpy(g, four, 4);
			g[pos] = (char)c;
			r = dec_n(g, 4, out, sizeof(out));
			if (ok)
				assert_int_equal(r, 3);
			else if (c == '=' && pos == 3)
				assert_true(r == -1 || r == 2);
			else
				assert_int_equal(r, -1);
		}
	}
	/* '+' and '/' decode to 62 and 63. */
	assert_int_equal(dec("+/+/", out, sizeof(out)), 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

/* OpenSSL skips whitespace; we refuse it, wherever it is. */
static void
test_b64_whitespace(void **state)
{
	static const char *const bad[] = {
		" Zm9v", "Zm9v ", "Zm 9v", "Zm9v\r\n", "Zm9v\n", "\tZm9v",
		"Zm9v\t", "Zm9\nv", "Zm9v\r", "    ", "Zm9v    ", "\n",
		" =", "= ",
	};
	unsigned char out[32];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dec(bad[i], out, sizeof(out)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_equal(dec_n("Zm9v\0\0\0\0", 8, out, sizeof(out)), -1);
	assert_int_equal(dec_n("Zm\0v", 4, out, sizeof(out)), -1);
}

static void
test_plain_vectors(void **state)
{
	struct sasl_plain p;

	assert_int_equal(plain("AGFsaWNlAHNlY3JldA==", &p), 0);
	assert_string_equal(p.authzid, "");
	assert_string_equal(p.authcid, "alice");
	assert_string_equal(p.password, "secret");

	/* "admin\0alice\0secret" */
	assert_int_equal(plain("YWRtaW4AYWxpY2UAc2VjcmV0", &p), 0);
	assert_string_equal(p.authzid, "admin");
	assert_string_equal(p.authcid, "alice");
	assert_string_equal(p.password, "secret");

	/* RFC 4616 §4: "\0tim\0tanstaaftanstaaf" */
	assert_int_equal(plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &p), 0);
	assert_string_equal(p.authcid, "tim");
	assert_string_equal(p.password, "tanstaaftanstaaf");

	/* UTF-8 and spaces are fine inside fields. */
	assert_int_equal(plain_raw("\0j\xc3\xb6rg\0pass word", 16, &p), 0);
	assert_string_equal(p.authcid, "j\xc3\xb6rg");
	assert_string_equal(p.password, "pass word");
	/* One-octet fields. */
	assert_int_equal(plain_raw("\0a\0b", 4, &p), 0);
	assert_string_equal(p.authcid, "a");
	assert_string_equal(p.password, "b");
}

static void
test_plain_refusals(void **state)
{
	static const struct {
		const char *raw;
		size_t n;
	} bad[] = {
		{ "", 0 },
		{ "alicesecret", 11 },			/* no NUL */
		{ "alice\0secret", 12 },		/* one NUL */
		{ "\0alice\0sec\0ret", 14 },		/* three NULs */
		{ "\0alice\0secret\0", 14 },
		{ "\0\0alice\0secret", 14 },
		{ "\0alice\0", 7 },			/* empty password */
		{ "\0\0secret", 8 },			/* empty authcid */
		{ "\0\0", 2 },
		{ "\0alice\0sec\rret", 14 },		/* CR, LF in fields */
		{ "\0alice\0secret\n", 14 },
		{ "\0al\nice\0secret", 14 },
		{ "\0\ralice\0secret", 14 },
		{ "ad\rmin\0alice\0secret", 19 },
		{ "admin\n\0alice\0secret", 19 },
	};
	struct sasl_plain p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&p, 0xa5, sizeof(p));
		if (plain_raw(bad[i].raw, bad[i].n, &p) != -1)
			fail_msg("case %zu accepted", i);
		assert_true(all_zero(&p, sizeof(p)));
	}

	/* Bad base64 around a good message. */
	assert_int_equal(plain("=", &p), -1);
	assert_int_equal(plain("", &p), -1);
	assert_int_equal(plain("AGFsaWNlAHNlY3JldA=", &p), -1);
	assert_int_equal(plain("AGFsaWNlAHNlY3JldA", &p), -1);
	assert_int_equal(plain("AGFsaWNlAHNlY3JldA== ", &p), -1);
	assert_int_equal(plain(" AGFsaWNlAHNlY3JldA==", &p), -1);
	assert_int_equal(plain("AGFsaWNlAHNlY3JldA==\r\n", &p), -1);
	assert_int_equal(plain("AGFsaWNl AHNlY3JldA==", &p), -1);
	assert_int_equal(plain("AGFsaWNlAHNlY3JldB==", &p), -1);
	assert_int_equal(plain("AGFsaWNlAHNlY3JldA==AAAA", &p), -1);
	assert_int_equal(plain("AGFsaWNl-HNlY3JldA==", &p), -1);
	assert_true(all_zero(&p, sizeof(p)));
}

/* Each field may hold SASL_FIELD_MAX octets and not one more. */
static void
test_plain_field_limits(void **state)
{
	const size_t max = SASL_FIELD_MAX;
	char raw[3 * (SASL_FIELD_MAX + 1) + 2];
	struct sasl_plain p;

	for (int field = 0; field < 3; field++) {
		for (size_t extra = 0; extra <= 1; extra++) {
			size_t len[3] = { 5, 5, 6 }, n = 0;

			len[field] = max + extra;
			for (int f = 0; f < 3; f++) {
				memset(raw + n, 'a' + f, len[f]);
				n += len[f];
				if (f < 2)
					raw[n++] = '\0';
			}
			memset(&p, 0xa5, sizeof(p));
			if (extra == 0) {
				assert_int_equal(plain_raw(raw, n, &p), 0);
				assert_int_equal(strlen(p.authzid), len[0]);
				assert_int_equal(strlen(p.authcid), len[1]);
				assert_int_equal(strlen(p.password), len[2]);
			} else {
				assert_int_equal(plain_raw(raw, n, &p), -1);
				assert_true(all_zero(&p, sizeof(p)));
			}
		}
	}

	/* All three at the maximum together. */
	{
		size_t n = 0;

		for (int f = 0; f < 3; f++) {
			memset(raw + n, 'x', max);
			n += max;
			if (f < 2)
				raw[n++] = '\0';
		}
		assert_int_equal(plain_raw(raw, n, &p), 0);
		assert_int_equal(strlen(p.password), max);
	}

	/* Far too long: refused before decoding. */
	{
		char *big = malloc(100000);
		char *e;

		assert_non_null(big);
		memset(big, 'y', 100000);
		big[0] = '\0';
		big[10] = '\0';
		e = ref_encode(big, 100000);
		assert_int_equal(plain(e, &p), -1);
		free(e);
		free(big);
	}
}

static void
test_login(void **state)
{
	char out[SASL_FIELD_MAX + 1];
	char raw[SASL_FIELD_MAX + 1];

	assert_int_equal(login_n("YWxpY2U=", 8, out, sizeof(out)), 0);
	assert_string_equal(out, "alice");
	assert_int_equal(login_n("c2VjcmV0", 8, out, sizeof(out)), 0);
	assert_string_equal(out, "secret");

	/* Room for the name and its NUL, and not one octet less. */
	assert_int_equal(login_n("YWxpY2U=", 8, out, 6), 0);
	assert_string_equal(out, "alice");
	assert_int_equal(login_n("YWxpY2U=", 8, out, 5), -1);
	assert_int_equal(login_n("YWxpY2U=", 8, out, 0), -1);

	/* Empty, in both spellings; bad base64. */
	assert_int_equal(login_n("=", 1, out, sizeof(out)), -1);
	assert_int_equal(login_n("", 0, out, sizeof(out)), -1);
	assert_int_equal(login_n("YWxpY2U", 7, out, sizeof(out)), -1);
	assert_int_equal(login_n("YWxpY2U= ", 9, out, sizeof(out)), -1);
	assert_int_equal(login_n("YWxp Y2U=", 9, out, sizeof(out)), -1);
	assert_int_equal(login_n("YWxpY2V=", 8, out, sizeof(out)), -1);

	/* NUL, CR, LF anywhere. */
	assert_int_equal(login_raw("al\0ice", 6, out, sizeof(out)), -1);
	assert_int_equal(login_raw("\0", 1, out, sizeof(out)), -1);
	assert_int_equal(login_raw("alice\0", 6, out, sizeof(out)), -1);
	assert_int_equal(login_raw("alice\r\n", 7, out, sizeof(out)), -1);
	assert_int_equal(login_raw("\nalice", 6, out, sizeof(out)), -1);
	assert_int_equal(login_raw("al\rice", 6, out, sizeof(out)), -1);

	/* SASL_FIELD_MAX octets fit; one more does not. */
	memset(raw, 'z', sizeof(raw));
	assert_int_equal(login_raw(raw, SASL_FIELD_MAX, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), SASL_FIELD_MAX);
	assert_int_equal(login_raw(raw, SASL_FIELD_MAX + 1, out, sizeof(out)),
	    -1);
	/* And with an output buffer that would have had room. */
	{
		char bigout[1024];

		assert_int_equal(login_raw(raw, SASL_FIELD_MAX + 1, bigout,
		    sizeof(bigout)), -1);
	}
}

/*
 * Every prefix of every valid sample, alone in an exact heap buffer,
 * through every decoder; a strict prefix of a padded string is never
 * valid base64 unless it is a whole number of groups.
 */
static void
test_byte_by_byte(void **state)
{
	static const char *const samples[] = {
		"AGFsaWNlAHNlY3JldA==", "YWRtaW4AYWxpY2UAc2VjcmV0",
		"AHRpbQB0YW5zdGFhZnRhbnN0YWFm", "YWxpY2U=", "c2VjcmV0",
		"Zg==", "Zm8=", "=",
	};
	unsigned char out[256];
	char lout[SASL_FIELD_MAX + 1];
	struct sasl_plain p;

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const char *s = samples[i];
		size_t n = strlen(s);

		assert_true(dec(s, out, sizeof(out)) >= 0);
		for (size_t k = 0; k <= n; k++) {
			long r = dec_n(s, k, out, sizeof(out));

			if (k % 4 != 0 && !(k == 1 && s[0] == '='))
				assert_int_equal(r, -1);
			(void)plain_n(s, k, &p);
			(void)login_n(s, k, lout, sizeof(lout));
			(void)dec_n(s + k, n - k, out, sizeof(out));
			(void)plain_n(s + k, n - k, &p);
			(void)login_n(s + k, n - k, lout, sizeof(lout));
		}
	}
}

/* RFC 2195's own example, and what must be refused. */
static void
test_cram_md5_client(void **state)
{
	const char *chal = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
	char out[256];

	(void)state;
	assert_int_equal(sasl_cram_md5_response("tim", "tanstaaftanstaaf", chal, strlen(chal),
	    out, sizeof(out)), 48);
	assert_string_equal(out, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
	/* A challenge that is not base64, an empty one, missing credentials, a short out. */
	assert_int_equal(sasl_cram_md5_response("tim", "x", "!!!!", 4, out, sizeof(out)), 0);
	assert_int_equal(sasl_cram_md5_response("tim", "x", "", 0, out, sizeof(out)), 0);
	assert_int_equal(sasl_cram_md5_response("", "x", chal, strlen(chal), out, sizeof(out)), 0);
	assert_int_equal(sasl_cram_md5_response("tim", "", chal, strlen(chal), out, sizeof(out)), 0);
	assert_int_equal(sasl_cram_md5_response("tim", "x", chal, strlen(chal), out, 10), 0);
	assert_string_equal(out, "");
}

static void
test_plain_client(void **state)
{
	char out[64], big[SASL_CLIENT_FIELD_MAX + 2], wide[SASL_CLIENT_B64_MAX];
	struct sasl_plain p;

	(void)state;
	assert_int_equal(sasl_plain_encode("alice", "secret", out, sizeof(out)), 20);
	assert_string_equal(out, "AGFsaWNlAHNlY3JldA==");
	/* What the server side decodes is what was encoded. */
	assert_int_equal(sasl_plain_decode(out, strlen(out), &p), 0);
	assert_string_equal(p.authcid, "alice");
	assert_string_equal(p.password, "secret");
	assert_int_equal(sasl_plain_encode("", "secret", out, sizeof(out)), 0);
	assert_int_equal(sasl_plain_encode("alice", "", out, sizeof(out)), 0);
	assert_int_equal(sasl_plain_encode("alice", "secret", out, 20), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(sasl_plain_encode(big, "secret", wide, sizeof(wide)), 0);
	assert_int_equal(sasl_plain_encode("alice", big, wide, sizeof(wide)), 0);
	/* A relay's account and password at their longest fit. */
	big[SASL_CLIENT_FIELD_MAX] = '\0';
	assert_int_equal(sasl_plain_encode(big, big, wide, sizeof(wide)), sizeof(wide) - 1);
	assert_int_equal(sasl_plain_encode(big, big, wide, sizeof(wide) - 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_encode_limits),
		cmocka_unit_test(test_b64_bad_padding),
		cmocka_unit_test(test_b64_alphabet),
		cmocka_unit_test(test_b64_whitespace),
		cmocka_unit_test(test_plain_vectors),
		cmocka_unit_test(test_plain_refusals),
		cmocka_unit_test(test_plain_field_limits),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_cram_md5_client),
		cmocka_unit_test(test_plain_client),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
