/*
 * tiff.c - the page chain of a TIFF file: how many pages a fax has, and
 * the first page's size.  What is accepted is written down in media.h.
 *
 * Every IFD is checked to lie wholly inside the file before any of it is
 * read.  Loops are found without memory by Floyd's method: a second
 * walker moves one IFD for every two of the first, and when the first
 * lands on the second, the chain has come round.
 */
#include "lib/media.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TIFF_HEADER	8	/* byte order, 42, first IFD offset */
#define IFD_ENTRY	12	/* tag, type, count, value */
#define TAG_WIDTH	256
#define TAG_LENGTH	257
#define TYPE_SHORT	3
#define TYPE_LONG	4

/* The file's byte order. */
struct tiff {
	const unsigned char *b;
	size_t len;
	int big;		/* "MM" */
};

static uint16_t
rd16(const struct tiff *t, uint64_t off)
{
	const unsigned char *p = t->b + off;

	return t->big ? (uint16_t)(p[0] << 8 | p[1]) :
	    (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
rd32(const struct tiff *t, uint64_t off)
{
	const unsigned char *p = t->b + off;

	return t->big ?
	    (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    (uint32_t)p[3] :
	    (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Check the IFD at off (nonzero, from the file) and give the offset of the
 * next in *next.  off is 32-bit and the IFD at most 6 + 12 * 65535 bytes,
 * so the sums below cannot wrap in 64 bits.
 */
static int
ifd_check(const struct tiff *t, uint64_t off, uint32_t *next, char *err,
    size_t errlen)
{
	uint64_t n;

	if (off >= t->len)
		return fail(err, errlen, "TIFF IFD offset past end of file");
	if (off < TIFF_HEADER)
		return fail(err, errlen,
		    "TIFF IFD offset %llu is inside the header",
		    (unsigned long long)off);
	if (t->len - off < 2)
		goto past;
	n = rd16(t, off);
	if (n == 0)
		return fail(err, errlen, "TIFF IFD at offset %llu has no "
		    "entries", (unsigned long long)off);
	if (t->len - off < 2 + n * IFD_ENTRY + 4)
		goto past;
	*next = rd32(t, off + 2 + n * IFD_ENTRY);
	return 0;
past:
	return fail(err, errlen, "TIFF IFD at offset %llu runs past the end "
	    "of the file", (unsigned long long)off);
}

/* ImageWidth and ImageLength of the checked IFD at off, when there. */
static void
ifd_size(const struct tiff *t, uint64_t off, struct tiff_info *out)
{
	unsigned n = rd16(t, off);

	for (unsigned i = 0; i < n; i++) {
		uint64_t e = off + 2 + (uint64_t)i * IFD_ENTRY;
		unsigned tag = rd16(t, e), type = rd16(t, e + 2), v;

		if ((tag != TAG_WIDTH && tag != TAG_LENGTH) ||
		    rd32(t, e + 4) != 1)
			continue;
		if (type == TYPE_SHORT)
			v = rd16(t, e + 8);
		else if (type == TYPE_LONG)
			v = rd32(t, e + 8);
		else
			continue;
		if (tag == TAG_WIDTH)
			out->width = v;
		else
			out->length = v;
	}
}

int
tiff_parse(const void *buf, size_t len, const struct media_limits *lim,
    struct tiff_info *out, char *err, size_t errlen)
{
	struct tiff t = { buf, len, 0 };
	unsigned max_pages = lim != NULL && lim->max_pages != 0 ?
	    lim->max_pages : MEDIA_MAX_PAGES_DEFAULT;
	uint32_t off, slow, next;
	unsigned pages = 0;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	if (len < TIFF_HEADER)
		return fail(err, errlen, "not a TIFF file");
	if (memcmp(t.b, "MM", 2) == 0)
		t.big = 1;
	else if (memcmp(t.b, "II", 2) != 0)
		return fail(err, errlen, "not a TIFF file");
	if (rd16(&t, 2) == 43)
		return fail(err, errlen, "BigTIFF is not supported");
	if (rd16(&t, 2) != 42)
		return fail(err, errlen, "not a TIFF file");

	off = slow = rd32(&t, 4);
	if (off == 0)
		return fail(err, errlen, "TIFF has no pages");
	while (off != 0) {
		if (pages == max_pages) {
			fail(err, errlen, "TIFF has more than %u pages",
			    max_pages);
			goto bad;
		}
		if (ifd_check(&t, off, &next, err, errlen) != 0)
			goto bad;
		if (++pages == 1)
			ifd_size(&t, off, out);
		/* slow is the IFD pages / 2 steps along, checked already. */
		if (pages % 2 == 0 &&
		    ifd_check(&t, slow, &slow, err, errlen) != 0)
			goto bad;
		if (next != 0 && next == slow) {
			fail(err, errlen, "TIFF IFD chain loops");
			goto bad;
		}
		off = next;
	}
	out->pages = pages;
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	return -1;
}
