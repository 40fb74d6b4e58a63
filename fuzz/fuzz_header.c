/*
 * fuzz_header.c - libFuzzer target for lib/header.c.
 *
 * Input: one byte choosing the field name (one of a few fixed names, or the
 * name of the input's own first field, so that fields are found often), one
 * byte giving outlen (0-255), then the message.  header_get reads from a
 * heap copy of exactly the message and writes to a heap buffer of exactly
 * outlen bytes, so ASan sees any overrun.  Its result must agree with a
 * reference written differently (cut the block into lines first, then
 * pick the field and its continuation lines, then clean the value word by
 * word), the value must be clean (no control characters, no leading,
 * trailing or double spaces), and the same call on the header block alone
 * must give the same answer.  header_block_len is checked the same way.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/header.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_header: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

static const char *const names[] = {
	"Subject", "From", "subject", "S", "Subject-Line", "X-Umbox-Kind", "To", "",
};
#define NNAMES	(sizeof(names) / sizeof(names[0]))

struct line {
	size_t off, len;	/* len counts the LF, when there is one */
};

/* The lines of buf[0..len): each ends after an LF, the last maybe at len. */
static size_t
ref_lines(const uint8_t *buf, size_t len, struct line *v)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n') {
			v[n].off = start;
			v[n++].len = i + 1 - start;
			start = i + 1;
		}
	if (start < len) {
		v[n].off = start;
		v[n++].len = len - start;
	}
	return n;
}

static int
ref_empty(const uint8_t *buf, const struct line *l)
{
	const uint8_t *p = buf + l->off;

	return (l->len == 1 && p[0] == '\n') || (l->len == 2 && p[0] == '\r' && p[1] == '\n');
}

static size_t
ref_block_len(const uint8_t *buf, size_t len, struct line *v)
{
	size_t n = ref_lines(buf, len, v);

	for (size_t k = 0; k < n; k++)
		if (ref_empty(buf, &v[k]))
			return v[k].off + v[k].len;
	return len;
}

static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Does line l begin "name:" (name compared without case)? */
static int
ref_names(const uint8_t *buf, const struct line *l, const char *name)
{
	size_t nlen = strlen(name);

	if (l->len < nlen + 1 || buf[l->off + nlen] != ':')
		return 0;
	for (size_t i = 0; i < nlen; i++)
		if (ascii_lower(buf[l->off + i]) != ascii_lower((unsigned char)name[i]))
			return 0;
	return 1;
}

static int
is_blank(uint8_t c)
{
	return c < 0x20 || c == 0x7f || c == ' ';
}

/* Append the words of raw[0..n) to out, one space between words. */
static void
ref_words(const uint8_t *raw, size_t n, char *out, size_t *o)
{
	size_t i = 0;

	while (i < n) {
		size_t w;

		while (i < n && is_blank(raw[i]))
			i++;
		for (w = i; w < n && !is_blank(raw[w]); w++)
			;
		if (w > i) {
			if (*o > 0)
				out[(*o)++] = ' ';
			memcpy(out + *o, raw + i, w - i);
			*o += w - i;
		}
		i = w;
	}
}

/*
 * The expected header_get: found or not, and the value (cut to outlen - 1,
 * without a trailing space) in want, which has room for len + 1 bytes.
 */
static int
ref_get(const uint8_t *buf, size_t len, const char *name, size_t outlen,
    struct line *v, char *want)
{
	size_t block = ref_block_len(buf, len, v);
	size_t n = ref_lines(buf, block, v), o = 0, k;

	want[0] = '\0';
	if (outlen == 0)
		return 0;
	for (k = 0; k < n; k++)
		if (!ref_empty(buf, &v[k]) && ref_names(buf, &v[k], name))
			break;
	if (k == n)
		return 0;
	ref_words(buf + v[k].off + strlen(name) + 1, v[k].len - strlen(name) - 1, want, &o);
	for (k++; k < n && (buf[v[k].off] == ' ' || buf[v[k].off] == '\t'); k++)
		ref_words(buf + v[k].off, v[k].len, want, &o);
	if (o > outlen - 1)
		o = outlen - 1;
	while (o > 0 && want[o - 1] == ' ')
		o--;
	want[o] = '\0';
	return 1;
}

/* header_get from an exact copy into an exact output; the value to got. */
static int
get_exact(const uint8_t *buf, size_t len, const char *name, size_t outlen, char *got)
{
	char *b = malloc(len ? len : 1), *out = malloc(outlen ? outlen : 1);
	int r;

	CHECK(b != NULL && out != NULL);
	if (len)
		memcpy(b, buf, len);
	out[0] = 'Z';
	r = header_get(b, len, name, out, outlen);
	if (outlen == 0) {
		CHECK(r == 0);
		CHECK(out[0] == 'Z');
		got[0] = '\0';
	} else {
		CHECK(memchr(out, '\0', outlen) != NULL);
		strcpy(got, out);
	}
	free(out);
	free(b);
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char owned[64], *got, *got2, *want;
	const uint8_t *buf;
	const char *name;
	size_t len, outlen, block, vlen;
	struct line *v;
	int r, w;

	if (size < 2)
		return 0;
	buf = data + 2;
	len = size - 2;
	outlen = data[1];
	if (data[0] < NNAMES * 16) {
		name = names[data[0] % NNAMES];
	} else {
		/* The first line's field name (no NUL: strlen stops there). */
		size_t k = 0;

		while (k < len && k < sizeof(owned) - 1 && buf[k] != ':' && buf[k] != '\n')
			k++;
		memcpy(owned, buf, k);
		owned[k] = '\0';
		name = owned;
	}

	v = malloc((len + 1) * sizeof(*v));
	got = malloc(len + 256);
	got2 = malloc(len + 256);
	want = malloc(len + 256);
	CHECK(v != NULL && got != NULL && got2 != NULL && want != NULL);

	/* header_block_len */
	{
		char *b = malloc(len ? len : 1);

		CHECK(b != NULL);
		if (len)
			memcpy(b, buf, len);
		block = header_block_len(b, len);
		free(b);
	}
	CHECK(block <= len);
	CHECK(block == ref_block_len(buf, len, v));

	/* header_get against the reference */
	r = get_exact(buf, len, name, outlen, got);
	w = ref_get(buf, len, name, outlen, v, want);
	CHECK(r == w);
	CHECK(strcmp(got, want) == 0);

	/* A clean value that fits. */
	vlen = strlen(got);
	CHECK(outlen == 0 || vlen < outlen);
	CHECK(r == 1 || vlen == 0);
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)got[i];

		CHECK(c >= 0x20 && c != 0x7f);
		CHECK(c != ' ' || (i > 0 && i + 1 < vlen && got[i - 1] != ' '));
	}

	/* The header block alone gives the same answer. */
	CHECK(get_exact(buf, block, name, outlen, got2) == r);
	CHECK(strcmp(got, got2) == 0);

	/* A larger buffer gives the same value or one it starts with. */
	if (r == 1) {
		CHECK(get_exact(buf, len, name, 255, got2) == 1);
		CHECK(strncmp(got, got2, vlen) == 0);
	}

	free(want);
	free(got2);
	free(got);
	free(v);
	return 0;
}
