/*
 * password.h - user passwords as yescrypt hashes (libxcrypt).
 *
 * Hashing and verifying are deliberately slow: daemons call these from a
 * worker thread, never from the event loop.
 */
#ifndef UMBOX_PASSWORD_H
#define UMBOX_PASSWORD_H

#include <stddef.h>

#define PASSWORD_HASH_MAX	256

/* Hash pw with a fresh yescrypt salt into out.  0 or -1. */
int password_hash(const char *pw, char *out, size_t outlen);
/* 1 if pw matches hash, 0 if not (or the hash is unusable). Constant-time compare. */
int password_verify(const char *pw, const char *hash);

#endif
