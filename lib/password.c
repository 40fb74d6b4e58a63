/*
 * password.c - yescrypt through crypt_gensalt_rn() and crypt_r().
 */
#include "password.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int
password_hash(const char *pw, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	int r = -1;

	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return -1;
	if (crypt_r(pw, salt, cd) != NULL && cd->output[0] != '*' &&
	    strlen(cd->output) < outlen) {
		strcpy(out, cd->output);
		r = 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return r;
}

int
password_verify(const char *pw, const char *hash)
{
	struct crypt_data *cd;
	size_t n;
	int ok = 0;

	if (hash == NULL || hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return 0;
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return 0;
	if (crypt_r(pw, hash, cd) != NULL && cd->output[0] != '*') {
		n = strlen(hash);
		ok = strlen(cd->output) == n && CRYPTO_memcmp(cd->output, hash, n) == 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}
