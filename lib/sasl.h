/*
 * sasl.h - SASL PLAIN and LOGIN pieces shared by SMTP AUTH and POP3 AUTH,
 * and base64 through OpenSSL.  Pure functions; no I/O.
 */
#ifndef UMBOX_SASL_H
#define UMBOX_SASL_H

#include <stddef.h>

#define SASL_FIELD_MAX	256	/* authzid, authcid, password: each at most this many bytes */

/*
 * Strict base64 decode (RFC 4648, padding required, no whitespace, no
 * trailing garbage).  "=" alone (an empty initial response, RFC 4954)
 * decodes to zero bytes.  Returns the decoded length, or -1.
 * out must hold at least 3 * (len / 4) bytes.
 */
long sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t outlen);

/* Encode; returns the length written (NUL-terminated). out needs 4 * ceil(len / 3) + 1. */
size_t sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t outlen);

struct sasl_plain {
	char authzid[SASL_FIELD_MAX + 1];
	char authcid[SASL_FIELD_MAX + 1];
	char password[SASL_FIELD_MAX + 1];
};

/*
 * Decode a PLAIN response (base64 of authzid NUL authcid NUL password).
 * Fails (-1) on bad base64, a wrong number of NULs, an empty authcid or
 * password, a field over SASL_FIELD_MAX, or any CR/LF in a field.
 */
int sasl_plain_decode(const char *b64, size_t len, struct sasl_plain *out);

/*
 * Decode one LOGIN step (a base64 user name or password) into out
 * (NUL-terminated).  Same limits and refusals as PLAIN.
 */
int sasl_login_decode(const char *b64, size_t len, char *out, size_t outlen);

/* ---- the client side (outbound AUTH) ---- */

/*
 * A relay's account and password may each be this long (the store's own
 * limits are within it), and PLAIN's initial response of both, in
 * base64, fits SASL_CLIENT_B64_MAX octets with its NUL.
 */
#define SASL_CLIENT_FIELD_MAX	512
#define SASL_CLIENT_B64_MAX	(4 * ((2 * SASL_CLIENT_FIELD_MAX + 2 + 2) / 3) + 1)

/*
 * PLAIN's initial response: base64 of NUL user NUL password (no authzid).
 * Returns the length written, 0 if a field is empty, too long or holds a
 * NUL, or out is too small.
 */
size_t sasl_plain_encode(const char *user, const char *password, char *out, size_t outlen);

/*
 * CRAM-MD5 (RFC 2195): the answer to a base64 challenge, base64 of
 * "user " and the lowercase hex HMAC-MD5 of the challenge keyed with the
 * password.  Returns the length written, or 0 on a bad challenge, an
 * empty or over-long field, or a short out.
 */
size_t sasl_cram_md5_response(const char *user, const char *password, const char *challenge,
    size_t challenge_len, char *out, size_t outlen);

#endif
