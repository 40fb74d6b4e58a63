/*
 * sasl.c - SASL PLAIN (RFC 4616) and LOGIN responses, and strict base64
 * (RFC 4648 §4) on top of OpenSSL's block coder.
 *
 * EVP_DecodeBlock() is lax in ways a protocol parser must not be: it skips
 * leading and trailing whitespace, counts padding as zero octets in its
 * result, and accepts any bits in the unused part of the last group.  So
 * every input is checked here first, in full, and only proven-canonical
 * base64 reaches OpenSSL: a length that is a multiple of 4, only the
 * alphabet, '=' only as one or two final padding octets, and zero unused
 * bits before the padding.  With that, decoding is one-to-one:
 * encode(decode(x)) == x for every accepted x but the lone "=".
 *
 * Decoded credentials are passwords: every temporary buffer is wiped with
 * explicit_bzero() on every path out, and a failed decode leaves the
 * caller's output zeroed rather than half written.
 */
#include "lib/sasl.h"

#include <limits.h>
#include <string.h>

#include <openssl/evp.h>
#include <stdio.h>

/* The 6-bit value of a base64 alphabet character, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Check that in[0..len) is canonical padded base64 and return the number
 * of octets it decodes to, or -1.  Does not handle the lone "=".
 */
static long
b64_check(const unsigned char *in, size_t len)
{
	size_t pad = 0, i;
	int v;

	if (len % 4 != 0)
		return -1;
	if (len == 0)
		return 0;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (b64_value(in[i]) < 0)
			return -1;
	/*
	 * The last character before the padding carries bits past the end
	 * of the data: 4 of them with "==", 2 with "=".  They must be zero,
	 * or two different strings would decode to the same octets.
	 */
	if (pad > 0) {
		v = b64_value(in[len - pad - 1]);
		if ((pad == 2 && (v & 0x0f) != 0) ||
		    (pad == 1 && (v & 0x03) != 0))
			return -1;
	}
	return (long)(len / 4 * 3 - pad);
}

/*
 * Strict base64 decode; see sasl.h.  The buffer needs room only for the
 * decoded octets (at most 3 * (len / 4)): the last group, the one that may
 * be padded, is decoded into a local and only its real octets are copied.
 */
long
sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	const unsigned char *u = (const unsigned char *)in;
	unsigned char last[3];
	long n;
	size_t head;
	int r;

	if (len == 1 && u[0] == '=')
		return 0;		/* RFC 4954 §4: empty initial response */
	if (len > INT_MAX)
		return -1;
	/* At most two octets of padding: too long whatever it holds. */
	if (len / 4 * 3 > outlen && len / 4 * 3 - outlen > 2)
		return -1;
	if ((n = b64_check(u, len)) < 0)
		return -1;
	if ((size_t)n > outlen)
		return -1;
	if (n == 0)
		return 0;

	head = len - 4;
	if (head > 0) {
		r = EVP_DecodeBlock(out, u, (int)head);
		if (r < 0 || (size_t)r != head / 4 * 3) {
			explicit_bzero(out, outlen);
			return -1;
		}
	}
	r = EVP_DecodeBlock(last, u + head, 4);
	if (r != 3) {
		explicit_bzero(last, sizeof(last));
		explicit_bzero(out, outlen);
		return -1;
	}
	memcpy(out + head / 4 * 3, last, (size_t)n - head / 4 * 3);
	explicit_bzero(last, sizeof(last));
	return n;
}

/*
 * Encode len octets as padded base64 and NUL-terminate.  Returns the
 * length written, or 0 with out set to "" (when outlen allows) if out is
 * too small or the input too large for OpenSSL's int interface.
 */
size_t
sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	size_t need;
	int r;

	if (outlen > 0)
		out[0] = '\0';
	if (len > (size_t)INT_MAX / 4 * 3)
		return 0;
	need = (len + 2) / 3 * 4 + 1;
	if (outlen < need)
		return 0;
	if (len == 0)
		return 0;
	r = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	if (r < 0 || (size_t)r != need - 1) {
		out[0] = '\0';
		return 0;
	}
	return (size_t)r;
}

/* Is f[0..n) a usable field: at most SASL_FIELD_MAX octets, no CR or LF? */
static int
field_ok(const unsigned char *f, size_t n)
{
	if (n > SASL_FIELD_MAX)
		return 0;
	return memchr(f, '\r', n) == NULL && memchr(f, '\n', n) == NULL;
}

/*
 * The longest decoded PLAIN message that can be valid: three full fields
 * and their two separators.  Anything longer is refused before decoding.
 */
#define PLAIN_MAX	(3 * SASL_FIELD_MAX + 2)

/*
 * Decode a PLAIN response: authzid NUL authcid NUL password, with exactly
 * two NULs.  The authzid may be empty; the others may not.  On failure
 * *out is zeroed.  Returns 0 or -1.
 */
int
sasl_plain_decode(const char *b64, size_t len, struct sasl_plain *out)
{
	unsigned char buf[PLAIN_MAX];
	const unsigned char *z, *c, *pw, *nul1, *nul2, *end;
	long n;
	int rc = -1;

	explicit_bzero(out, sizeof(*out));
	n = sasl_b64_decode(b64, len, buf, sizeof(buf));
	if (n < 0)
		goto done;
	end = buf + n;

	z = buf;
	if ((nul1 = memchr(z, '\0', (size_t)(end - z))) == NULL)
		goto done;
	c = nul1 + 1;
	if ((nul2 = memchr(c, '\0', (size_t)(end - c))) == NULL)
		goto done;
	pw = nul2 + 1;
	if (memchr(pw, '\0', (size_t)(end - pw)) != NULL)
		goto done;	/* a third NUL */

	if (nul2 == c || end == pw)
		goto done;	/* empty authcid or password */
	if (!field_ok(z, (size_t)(nul1 - z)) ||
	    !field_ok(c, (size_t)(nul2 - c)) ||
	    !field_ok(pw, (size_t)(end - pw)))
		goto done;

	memcpy(out->authzid, z, (size_t)(nul1 - z));
	memcpy(out->authcid, c, (size_t)(nul2 - c));
	memcpy(out->password, pw, (size_t)(end - pw));
	/* Terminators are already there from the wipe above. */
	rc = 0;
done:
	explicit_bzero(buf, sizeof(buf));
	if (rc != 0)
		explicit_bzero(out, sizeof(*out));
	return rc;
}

/*
 * Decode one LOGIN step (user name or password) into out, NUL-terminated:
 * 1 to SASL_FIELD_MAX octets, no NUL, CR or LF, and room for it in out.
 * On failure out is zeroed (as far as outlen).  Returns 0 or -1.
 */
int
sasl_login_decode(const char *b64, size_t len, char *out, size_t outlen)
{
	unsigned char buf[SASL_FIELD_MAX];
	long n;
	int rc = -1;

	if (outlen > 0)
		explicit_bzero(out, outlen);
	n = sasl_b64_decode(b64, len, buf, sizeof(buf));
	if (n <= 0)
		goto done;
	if (memchr(buf, '\0', (size_t)n) != NULL || !field_ok(buf, (size_t)n))
		goto done;
	if ((size_t)n >= outlen)
		goto done;
	memcpy(out, buf, (size_t)n);
	out[n] = '\0';
	rc = 0;
done:
	explicit_bzero(buf, sizeof(buf));
	if (rc != 0 && outlen > 0)
		explicit_bzero(out, outlen);
	return rc;
}

size_t
sasl_plain_encode(const char *user, const char *password, char *out, size_t outlen)
{
	unsigned char buf[2 * SASL_CLIENT_FIELD_MAX + 2];
	size_t ul = strlen(user), pl = strlen(password), n;

	if (outlen > 0)
		out[0] = '\0';
	if (ul == 0 || pl == 0 || ul > SASL_CLIENT_FIELD_MAX || pl > SASL_CLIENT_FIELD_MAX)
		return 0;
	buf[0] = '\0';
	memcpy(buf + 1, user, ul);
	buf[1 + ul] = '\0';
	memcpy(buf + 2 + ul, password, pl);
	n = sasl_b64_encode(buf, 2 + ul + pl, out, outlen);
	explicit_bzero(buf, sizeof(buf));
	return n;
}

size_t
sasl_cram_md5_response(const char *user, const char *password, const char *challenge,
    size_t challenge_len, char *out, size_t outlen)
{
	unsigned char chal[1024], mac[EVP_MAX_MD_SIZE];
	char answer[SASL_CLIENT_FIELD_MAX + 2 + 2 * 16 + 1];
	size_t maclen = 0, ul = strlen(user), pl = strlen(password), n;
	long cl;

	if (outlen > 0)
		out[0] = '\0';
	if (ul == 0 || pl == 0 || ul > SASL_CLIENT_FIELD_MAX || pl > SASL_CLIENT_FIELD_MAX ||
	    challenge_len > 4 * (sizeof(chal) / 3))
		return 0;
	cl = sasl_b64_decode(challenge, challenge_len, chal, sizeof(chal));
	if (cl <= 0)
		return 0;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "MD5", NULL, password, pl, chal, (size_t)cl, mac,
	    sizeof(mac), &maclen) == NULL || maclen != 16)
		return 0;
	n = (size_t)snprintf(answer, sizeof(answer), "%s ", user);
	for (size_t i = 0; i < maclen; i++)
		n += (size_t)snprintf(answer + n, sizeof(answer) - n, "%02x", mac[i]);
	n = sasl_b64_encode((const unsigned char *)answer, n, out, outlen);
	explicit_bzero(answer, sizeof(answer));
	return n;
}
