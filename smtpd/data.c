/*
 * data.c - the DATA and BDAT content stream.
 *
 * The input is one byte stream cut into slices anywhere; the parser keeps
 * just enough state between slices (a held CR, a held "." or "." CR at a
 * line start) that every way of cutting the same stream gives the same
 * output, the same flags and the same end.
 *
 * One rule decides where lines start, for end-of-data detection and for
 * dot-unstuffing alike: a line starts at the start of DATA and right after
 * a real CRLF of the input, and nowhere else.  A bare CR or bare LF is
 * written out as CRLF, but only after that decision has been made, so it
 * neither ends DATA nor makes the following "." special
 * (CVE-2023-51764/5/6).  In particular "\n.\r\n", "\r.\r\n" and
 * "\r\n\0.\r\n" are content, and ".\r\r\n" at a line start is a dropped
 * dot, a bare CR and a CRLF.  A "." at a line start that is not the
 * terminator is dropped whatever follows it (RFC 5321 §4.5.2).
 *
 * The stored text has CRLF line ends only, so the hop counter reads the
 * output, not the input: a header line is a line of the output, and the
 * header section ends at the first empty output line.  That is the view of
 * everyone who reads the stored message later, which is the view a loop
 * check must share.
 *
 * Output is handed to the sink straight out of the input slice in runs as
 * long as possible; a run breaks only where the output differs from the
 * input (a dropped dot, a bare line end, a CR held at the end of a slice)
 * or at the size limit.  The scan for the next CR, LF or NUL looks at eight
 * octets at a time.
 */
#include "data.h"

#include <limits.h>
#include <string.h>

enum data_state {
	DS_LINE_START = 0,	/* after a real CRLF, or at the start of DATA */
	DS_TEXT,		/* inside a line */
	DS_CR,			/* the slice ended in a CR, not yet written */
	DS_DOT,			/* DATA: "." at a line start, dropped */
	DS_DOT_CR,		/* DATA: "." CR at a line start; LF would end */
	DS_DONE,		/* DATA: the terminator was consumed */
};

enum header_state {
	HS_LINE_START = 0,	/* at the start of an output line */
	HS_NAME,		/* hdr_match octets of "received" matched */
	HS_COLON,		/* the whole name matched; WSP may precede ':' */
	HS_SKIP,		/* rest of a line that is not a Received field */
};

static const char crlf[2] = { '\r', '\n' };

#define ONES	0x0101010101010101ULL
#define HIGHS	0x8080808080808080ULL

/* Nonzero when one of the eight octets of v is zero. */
static inline uint64_t
has_zero(uint64_t v)
{
	return (v - ONES) & ~v & HIGHS;
}

/*
 * The first CR, LF or NUL in [p, end), or end.  Whole words are loaded
 * only while eight octets remain, so nothing at or past end is read.
 */
static inline const char *
scan_special(const char *p, const char *end)
{
	while (end - p >= 8) {
		uint64_t v;

		memcpy(&v, p, sizeof(v));
		if (has_zero(v) | has_zero(v ^ (ONES * '\r')) |
		    has_zero(v ^ (ONES * '\n')))
			break;
		p += 8;
	}
	while (p < end && *p != '\r' && *p != '\n' && *p != '\0')
		p++;
	return p;
}

/*
 * Follow the header section of the output and count its Received fields:
 * a line that starts with "Received" (any case), optional blanks (the
 * obsolete syntax of RFC 5322 §4.5) and ':'.  Continuation lines start
 * with a blank and so never match.  The output has CRLF line ends only, so
 * a CR at a line start is the empty line that ends the header section.
 */
static void
header_scan(struct smtp_data *d, const char *buf, size_t len)
{
	static const char name[] = "received";
	const char *p = buf, *end = buf + len, *nl;
	unsigned char c;

	while (p < end) {
		c = (unsigned char)*p;
		switch (d->header_state) {
		case HS_LINE_START:
			if (c == '\r') {
				d->in_header = 0;
				return;
			}
			d->hdr_match = 0;
			d->header_state = HS_NAME;
			/* FALLTHROUGH */
		case HS_NAME:
			/* name is all letters: c | 0x20 folds only A-Z. */
			if ((c | 0x20) == (unsigned char)name[d->hdr_match]) {
				if (++d->hdr_match == sizeof(name) - 1)
					d->header_state = HS_COLON;
				p++;
			} else
				d->header_state = HS_SKIP;
			break;
		case HS_COLON:
			if (c == ' ' || c == '\t') {
				p++;
				break;
			}
			if (c == ':') {
				if (d->received < UINT_MAX)
					d->received++;
				p++;
			}
			d->header_state = HS_SKIP;
			break;
		case HS_SKIP:
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				return;
			p = nl + 1;
			d->header_state = HS_LINE_START;
			break;
		}
	}
}

/*
 * Write len octets of output: count them, follow the header section, and
 * hand to the sink what still fits under max_size.  The size keeps counting
 * past the limit, so it always says how big the message really was.
 */
static void
emit(struct smtp_data *d, const char *buf, size_t len)
{
	uint64_t room;

	if (len == 0)
		return;
	if (d->in_header)
		header_scan(d, buf, len);
	if (d->max_size == 0)
		room = len;
	else if (d->size >= d->max_size)
		room = 0;
	else {
		room = d->max_size - d->size;
		if (room > len)
			room = len;
	}
	if (__builtin_add_overflow(d->size, (uint64_t)len, &d->size))
		d->size = UINT64_MAX;
	if (room < len)
		d->flags |= SMTP_DATA_F_TOO_BIG;
	if (room > 0 && d->sink != NULL)
		d->sink(d->ctx, buf, (size_t)room);
}

/* A bare CR or bare LF of the input, written as CRLF. */
static void
emit_bare_eol(struct smtp_data *d)
{
	d->flags |= SMTP_DATA_F_BARE_EOL;
	emit(d, crlf, sizeof(crlf));
}

void
smtp_data_init(struct smtp_data *d, int bdat, uint64_t max_size,
    smtp_data_sink *sink, void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->bdat = bdat != 0;
	d->state = DS_LINE_START;
	d->header_state = HS_LINE_START;
	d->in_header = 1;
	d->max_size = max_size;
	d->sink = sink;
	d->ctx = ctx;
}

/*
 * The main loop.  run marks the start of input octets that are output
 * unchanged and not yet written; they are flushed whenever the output is
 * about to differ from the input, and at the end of the slice.  Octets
 * held across slices (a CR, a "." or "." CR at a line start) are never
 * part of a run: the next slice decides what they become.
 */
size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len)
{
	const char *p, *end, *run;

	if (len == 0 || d->state == DS_DONE)
		return 0;
	p = run = in;
	end = in + len;
	while (p < end) {
		switch (d->state) {
		case DS_CR:
			/* Only ever at the start of a slice: run == p. */
			if (*p == '\n') {
				emit(d, crlf, sizeof(crlf));
				run = ++p;
				d->state = DS_LINE_START;
			} else {
				emit_bare_eol(d);
				d->state = DS_TEXT;
			}
			break;
		case DS_DOT:
			/* The dot is gone; run == p. */
			if (*p == '\r') {
				run = ++p;
				d->state = DS_DOT_CR;
			} else
				d->state = DS_TEXT;
			break;
		case DS_DOT_CR:
			/* run == p */
			if (*p == '\n') {
				d->state = DS_DONE;
				d->done = 1;
				return (size_t)(p + 1 - in);
			}
			emit_bare_eol(d);
			d->state = DS_TEXT;
			break;
		case DS_LINE_START:
			if (*p == '.' && !d->bdat) {
				emit(d, run, (size_t)(p - run));
				run = ++p;
				d->state = DS_DOT;
				break;
			}
			d->state = DS_TEXT;
			/* FALLTHROUGH */
		case DS_TEXT:
			p = scan_special(p, end);
			if (p == end)
				break;
			if (*p == '\0') {
				d->flags |= SMTP_DATA_F_NUL;
				p++;
			} else if (*p == '\n') {
				emit(d, run, (size_t)(p - run));
				emit_bare_eol(d);
				run = ++p;
			} else if (end - p == 1) {
				/* A CR ends the slice: hold it. */
				emit(d, run, (size_t)(p - run));
				run = ++p;
				d->state = DS_CR;
			} else if (p[1] == '\n') {
				p += 2;
				d->state = DS_LINE_START;
			} else {
				emit(d, run, (size_t)(p - run));
				emit_bare_eol(d);
				run = ++p;
			}
			break;
		case DS_DONE:
		default:
			/* Not reached: DS_DONE returns above. */
			return (size_t)(p - in);
		}
	}
	emit(d, run, (size_t)(p - run));
	return len;
}

/*
 * The stream has ended (BDAT LAST): a held CR can no longer be followed by
 * its LF, so it is a bare CR.  A held dot stays dropped.
 */
void
smtp_data_finish(struct smtp_data *d)
{
	switch (d->state) {
	case DS_CR:
	case DS_DOT_CR:
		emit_bare_eol(d);
		d->state = DS_TEXT;
		break;
	case DS_DOT:
		d->state = DS_TEXT;
		break;
	default:
		break;
	}
}
