/*
 * header.h - read one field from an RFC 5322 header block.
 *
 * A pure function over bytes: finds the first field named name (case
 * insensitive) in the header block at the start of buf, unfolds it, turns
 * control characters into spaces and copies at most outlen - 1 bytes.
 * The header block ends at the first empty line or at len.
 */
#ifndef UMBOX_HEADER_H
#define UMBOX_HEADER_H

#include <stddef.h>

/* 1 if found (out filled), 0 if not (out = ""). */
int header_get(const char *buf, size_t len, const char *name, char *out, size_t outlen);
/* Length of the header block including its terminating empty line, or len. */
size_t header_block_len(const char *buf, size_t len);

#endif
