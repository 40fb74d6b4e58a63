/*
 * header.c - header field lookup for listings (mail list, mail show).
 */
#include "header.h"

#include <string.h>
#include <strings.h>

/* Offset just past the end of the line starting at i (past its LF), or len. */
static size_t
line_end(const char *buf, size_t len, size_t i)
{
	const char *nl = memchr(buf + i, '\n', len - i);

	return nl ? (size_t)(nl - buf) + 1 : len;
}

static int
line_is_empty(const char *buf, size_t i, size_t end)
{
	return end - i == 0 || (end - i == 1 && buf[i] == '\n') ||
	    (end - i == 2 && buf[i] == '\r' && buf[i + 1] == '\n');
}

size_t
header_block_len(const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t e = line_end(buf, len, i);

		if (line_is_empty(buf, i, e))
			return e;
		i = e;
	}
	return len;
}

int
header_get(const char *buf, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), i = 0, o = 0;
	int found = 0;

	if (outlen == 0)
		return 0;
	out[0] = '\0';
	while (i < len) {
		size_t e = line_end(buf, len, i);

		if (line_is_empty(buf, i, e))
			break;
		if (!found) {
			if (e - i > nlen && buf[i + nlen] == ':' &&
			    strncasecmp(buf + i, name, nlen) == 0) {
				found = 1;
				i += nlen + 1;
			} else {
				i = e;
				continue;
			}
		} else if (buf[i] != ' ' && buf[i] != '\t')
			break;	/* the next field: no more continuation lines */
		/* Copy this (continuation) line, unfolded: controls become one space. */
		for (; i < e; i++) {
			unsigned char c = (unsigned char)buf[i];

			if (c < 0x20 || c == 0x7f)
				c = ' ';
			if (c == ' ' && (o == 0 || out[o - 1] == ' '))
				continue;
			if (o + 1 >= outlen)
				break;
			out[o++] = (char)c;
		}
		i = e;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return found;
}
