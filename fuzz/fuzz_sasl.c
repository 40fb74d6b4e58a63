/*
 * fuzz_sasl.c - libFuzzer target for lib/sasl.c.
 *
 * The input is a base64 response as a client would send it.  It goes
 * through the strict decoder, which must agree with a reference decoder
 * written here (decode leniently bit by bit, then judge by re-encoding:
 * only canonical base64 may pass), and whose output must encode back to
 * exactly the input.  The input is also taken as raw octets to encode and
 * decode again.  PLAIN and LOGIN results are checked for the limits
 * promised in sasl.h and rebuilt into the input they came from; failures
 * must leave their output zeroed.  Every call reads from, and writes to,
 * heap buffers of exactly the size allowed, so ASan sees any overrun.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sasl.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_sasl: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void *
xmalloc_exact(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);

	CHECK(p != NULL);
	return p;
}

/* Reference encoder; returns a malloc'd NUL-terminated string. */
static char *
ref_encode(const unsigned char *d, size_t n, size_t *outlen)
{
	char *out = xmalloc_exact((n + 2) / 3 * 4 + 1), *w = out;
	unsigned long acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | d[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			*w++ = alphabet[acc >> bits & 63];
		}
	}
	if (bits > 0)
		*w++ = alphabet[acc << (6 - bits) & 63];
	while ((w - out) % 4 != 0)
		*w++ = '=';
	*w = '\0';
	*outlen = (size_t)(w - out);
	return out;
}

/*
 * Reference decoder: lenient about the unused bits, strict about the
 * alphabet and where '=' may be.  Returns the decoded length or -1; the
 * caller judges canonical form by re-encoding.
 */
static long
ref_decode(const unsigned char *s, size_t n, unsigned char *out)
{
	unsigned long acc = 0;
	int bits = 0;
	size_t pad = 0, o = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *q;

		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || s[i] == '\0' ||
		    (q = strchr(alphabet, s[i])) == NULL)
			return -1;
		acc = acc << 6 | (unsigned long)(q - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (pad > 2)
		return -1;
	return (long)o;
}

static void
check_b64(const uint8_t *data, size_t size)
{
	size_t cap = size / 4 * 3;
	char *in = xmalloc_exact(size);
	unsigned char *out = xmalloc_exact(cap), *ref = xmalloc_exact(cap);
	long r, rr;
	int canonical = 0;

	memcpy(in, data, size);
	r = sasl_b64_decode(in, size, out, cap);

	rr = ref_decode(data, size, ref);
	if (rr >= 0) {
		size_t elen;
		char *e = ref_encode(ref, (size_t)rr, &elen);

		canonical = elen == size && memcmp(e, data, size) == 0;
		free(e);
	}
	if (size == 1 && data[0] == '=') {
		CHECK(r == 0);
	} else if (canonical) {
		CHECK(r == rr);
		CHECK(memcmp(out, ref, (size_t)r) == 0);
	} else
		CHECK(r == -1);

	/* Decoding succeeded: encoding gives back the canonical input. */
	if (r >= 0) {
		size_t need = ((size_t)r + 2) / 3 * 4 + 1, elen;
		char *enc = xmalloc_exact(need);

		elen = sasl_b64_encode(out, (size_t)r, enc, need);
		CHECK(enc[elen] == '\0');
		if (size == 1 && data[0] == '=')
			CHECK(elen == 0);
		else {
			CHECK(elen == size);
			CHECK(memcmp(enc, data, size) == 0);
		}
		/* One octet less room is refused. */
		CHECK(sasl_b64_encode(out, (size_t)r, enc, need - 1) == 0);
		free(enc);
		/* An output buffer of exactly the decoded size is enough. */
		{
			unsigned char *tight = xmalloc_exact((size_t)r);

			CHECK(sasl_b64_decode(in, size, tight, (size_t)r) == r);
			CHECK(memcmp(tight, out, (size_t)r) == 0);
			if (r > 0)
				CHECK(sasl_b64_decode(in, size, tight,
				    (size_t)r - 1) == -1);
			free(tight);
		}
	}
	free(ref);
	free(out);
	free(in);
}

/* The raw input encoded and decoded again is itself. */
static void
check_round_trip(const uint8_t *data, size_t size)
{
	size_t need = (size + 2) / 3 * 4 + 1, elen, rlen;
	char *enc = xmalloc_exact(need), *ref;
	unsigned char *back = xmalloc_exact(size);

	elen = sasl_b64_encode(data, size, enc, need);
	CHECK(elen == need - 1 && enc[elen] == '\0');
	ref = ref_encode(data, size, &rlen);
	CHECK(rlen == elen && strcmp(ref, enc) == 0);
	CHECK(sasl_b64_decode(enc, elen, back, size) == (long)size);
	CHECK(memcmp(back, data, size) == 0);
	free(ref);
	free(back);
	free(enc);
}

static int
field_ok(const char *f, size_t arrlen, int may_be_empty)
{
	const char *nul = memchr(f, '\0', arrlen);
	size_t n;

	if (nul == NULL)
		return 0;
	n = (size_t)(nul - f);
	if (n > SASL_FIELD_MAX || (n == 0 && !may_be_empty))
		return 0;
	return memchr(f, '\r', n) == NULL && memchr(f, '\n', n) == NULL;
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

static void
check_plain(const uint8_t *data, size_t size)
{
	char *in = xmalloc_exact(size);
	struct sasl_plain *p = xmalloc_exact(sizeof(*p));
	int r;

	memcpy(in, data, size);
	memset(p, 0xa5, sizeof(*p));
	r = sasl_plain_decode(in, size, p);
	if (r != 0) {
		CHECK(r == -1);
		CHECK(all_zero(p, sizeof(*p)));
	} else {
		size_t a, c, w, rlen;
		unsigned char raw[3 * SASL_FIELD_MAX + 2];
		char *e;

		CHECK(field_ok(p->authzid, sizeof(p->authzid), 1));
		CHECK(field_ok(p->authcid, sizeof(p->authcid), 0));
		CHECK(field_ok(p->password, sizeof(p->password), 0));
		a = strlen(p->authzid);
		c = strlen(p->authcid);
		w = strlen(p->password);
		memcpy(raw, p->authzid, a);
		raw[a] = '\0';
		memcpy(raw + a + 1, p->authcid, c);
		raw[a + 1 + c] = '\0';
		memcpy(raw + a + c + 2, p->password, w);
		e = ref_encode(raw, a + c + w + 2, &rlen);
		CHECK(rlen == size && memcmp(e, data, size) == 0);
		free(e);
	}
	free(p);
	free(in);
}

static void
check_login(const uint8_t *data, size_t size)
{
	char *in = xmalloc_exact(size);
	char *out = xmalloc_exact(SASL_FIELD_MAX + 1);
	int r;

	memcpy(in, data, size);
	memset(out, 0xa5, SASL_FIELD_MAX + 1);
	r = sasl_login_decode(in, size, out, SASL_FIELD_MAX + 1);
	if (r != 0) {
		CHECK(r == -1);
		CHECK(all_zero(out, SASL_FIELD_MAX + 1));
	} else {
		size_t n, rlen;
		char *e, *tight;

		CHECK(field_ok(out, SASL_FIELD_MAX + 1, 0));
		n = strlen(out);
		e = ref_encode((const unsigned char *)out, n, &rlen);
		CHECK(rlen == size && memcmp(e, data, size) == 0);
		free(e);
		/* Exactly n + 1 octets of room suffice; n do not. */
		tight = xmalloc_exact(n + 1);
		CHECK(sasl_login_decode(in, size, tight, n + 1) == 0);
		CHECK(strcmp(tight, out) == 0);
		CHECK(sasl_login_decode(in, size, tight, n) == -1);
		free(tight);
	}
	free(out);
	free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_b64(data, size);
	check_round_trip(data, size);
	check_plain(data, size);
	check_login(data, size);
	return 0;
}
