/*
 * fuzz_dsn.c - libFuzzer target for aliases/dsn.c.
 *
 * Input: one byte of flags, then fields separated by NUL octets, in this
 * order: the SMTP reply, the final recipient, the original recipient, the
 * remote MTA, the envelope sender the report goes to, a reason, the
 * ENVID, the queue ID, a status; everything after the ninth NUL (NULs
 * included) is the original message's header block.  A missing field is
 * NULL.  Flags: bits 0-1 the number of recipients less one (3 at most),
 * bit 2 the first recipient delayed, bit 3 expired, bit 4 the second
 * recipient with a reason instead of a reply, bit 5 no original headers,
 * bit 6 the third recipient delayed, bit 7 the status given.
 *
 * A report must always be built (the recipient and sender get a letter
 * in front, so they are never blank), and then:
 *   - its bytes have CRLF line ends only, end in CRLF and hold no NUL;
 *     no line is longer than 998 octets;
 *   - its top-level header block has exactly the fields a report has,
 *     each once, whatever was smuggled into the values;
 *   - GMime parses it as multipart/report; report-type=delivery-status
 *     with text/plain, message/delivery-status and (only when there were
 *     headers) text/rfc822-headers;
 *   - the delivery-status body is one per-message block and one block per
 *     recipient, separated by single empty lines, every line a known
 *     field or a continuation, all printable ASCII; each recipient's
 *     Status is an RFC 3463 code of its action's class;
 *   - a reply that is printable ASCII, trimmed and short enough comes back
 *     exactly from Diagnostic-Code once unfolded;
 *   - dsn_header_block() stays within its cap and cuts at a line end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "aliases/dsn.h"
#include "lib/header.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_dsn: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#define NFIELDS	9

static const char *const top_names[] = {
	"Date", "From", "Subject", "To", "Message-ID", "Auto-Submitted",
	"MIME-Version", "Content-Type",
};

static const char *const ds_names[] = {
	"Original-Envelope-Id", "Reporting-MTA", "Arrival-Date",
	"Original-Recipient", "Final-Recipient", "Action", "Status",
	"Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date", "Will-Retry-Until",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	g_mime_init();
	return 0;
}

/* A NUL-terminated copy of s[0..n), or NULL when s is. */
static char *
dup_field(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);
	char *d;

	if (s == NULL)
		return NULL;
	d = malloc(pl + n + 1);
	CHECK(d != NULL);
	memcpy(d, prefix, pl);
	memcpy(d + pl, s, n);
	d[pl + n] = '\0';
	return d;
}

static void
check_bytes(const char *b, size_t n)
{
	CHECK(n >= 2 && b[n - 2] == '\r' && b[n - 1] == '\n');
	CHECK(b[n] == '\0');
	CHECK(memchr(b, '\0', n) == NULL);
	for (size_t i = 0, line = 0; i < n; i++) {
		if (b[i] == '\r')
			CHECK(i + 1 < n && b[i + 1] == '\n');
		if (b[i] == '\n') {
			CHECK(i > 0 && b[i - 1] == '\r');
			line = 0;
		} else
			CHECK(++line <= 999);	/* 998 and the CR */
	}
}

/* The top-level header block: the report's own fields, each once. */
static void
check_top(const char *b)
{
	const char *end = strstr(b, "\r\n\r\n"), *p = b;
	int seen[sizeof(top_names) / sizeof(top_names[0])] = { 0 };

	CHECK(end != NULL);
	while (p < end + 2) {
		const char *e = strstr(p, "\r\n"), *colon;
		size_t k;

		CHECK(e != NULL && e > p);
		if (*p == ' ' || *p == '\t') {
			CHECK(p != b);
			p = e + 2;
			continue;
		}
		colon = memchr(p, ':', (size_t)(e - p));
		CHECK(colon != NULL);
		for (k = 0; k < sizeof(top_names) / sizeof(top_names[0]); k++)
			if ((size_t)(colon - p) == strlen(top_names[k]) &&
			    strncmp(p, top_names[k], strlen(top_names[k])) == 0)
				break;
		CHECK(k < sizeof(top_names) / sizeof(top_names[0]));
		CHECK(!seen[k]);
		seen[k] = 1;
		p = e + 2;
	}
	for (size_t k = 0; k < sizeof(top_names) / sizeof(top_names[0]); k++)
		CHECK(seen[k]);
}

/* A leaf part's content, decoded, NUL-terminated. */
static char *
content(GMimeObject *o)
{
	GMimeDataWrapper *w;
	GMimeStream *s;
	GByteArray *ba;
	char *r;

	CHECK(GMIME_IS_PART(o));
	w = g_mime_part_get_content((GMimePart *)o);
	CHECK(w != NULL);
	s = g_mime_stream_mem_new();
	CHECK(g_mime_data_wrapper_write_to_stream(w, s) >= 0);
	ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)s);
	r = malloc(ba->len + 1);
	CHECK(r != NULL);
	memcpy(r, ba->data, ba->len);
	r[ba->len] = '\0';
	g_object_unref(s);
	return r;
}

static int
status_ok(const char *s, int cls)
{
	size_t a, b;

	if (s[0] != '0' + cls || s[1] != '.')
		return 0;
	a = strspn(s + 2, "0123456789");
	if (a < 1 || a > 3 || s[2 + a] != '.')
		return 0;
	b = strspn(s + 3 + a, "0123456789");
	return b >= 1 && b <= 3 && s[3 + a + b] == '\0';
}

/*
 * The delivery-status body: blocks and fields as the header says.  When
 * want_diag is not NULL, the first recipient's Diagnostic-Code must be it.
 */
static void
check_status(const char *s, const struct dsn_report *r, const char *want_diag)
{
	size_t nblocks = 0, nfields = 0;
	int nfinal = 0, naction = 0, nstatus = 0;
	char *diag = NULL;
	const char *p = s;
	int in_diag = 0;

	while (*p != '\0') {
		const char *e = strstr(p, "\r\n"), *colon;
		size_t n, k;

		CHECK(e != NULL);
		n = (size_t)(e - p);
		for (size_t i = 0; i < n; i++)
			CHECK(p[i] >= 0x20 && p[i] < 0x7f);
		if (n == 0) {
			CHECK(nfields > 0);	/* no empty block */
			CHECK(nblocks < r->nrcpts);
			if (nblocks > 0)
				CHECK(nfinal == 1 && naction == 1 && nstatus == 1);
			nblocks++;
			nfields = 0;
			nfinal = naction = nstatus = 0;
			in_diag = 0;
			p = e + 2;
			continue;
		}
		if (p[0] == ' ' || p[0] == '\t') {
			CHECK(nfields > 0);
			if (in_diag) {
				size_t old = strlen(diag);

				diag = realloc(diag, old + n + 1);
				CHECK(diag != NULL);
				memcpy(diag + old, p, n);
				diag[old + n] = '\0';
			}
			p = e + 2;
			continue;
		}
		in_diag = 0;
		colon = memchr(p, ':', n);
		CHECK(colon != NULL && colon + 1 < e && colon[1] == ' ');
		for (k = 0; k < sizeof(ds_names) / sizeof(ds_names[0]); k++)
			if ((size_t)(colon - p) == strlen(ds_names[k]) &&
			    strncmp(p, ds_names[k], strlen(ds_names[k])) == 0)
				break;
		CHECK(k < sizeof(ds_names) / sizeof(ds_names[0]));
		/* Per-message fields in the first block, the others after. */
		CHECK((k < 3) == (nblocks == 0));
		nfields++;
		if (strcmp(ds_names[k], "Final-Recipient") == 0)
			nfinal++;
		if (strcmp(ds_names[k], "Action") == 0 ||
		    strcmp(ds_names[k], "Status") == 0) {
			int delayed = r->rcpts[nblocks - 1].action == DSN_DELAYED;
			size_t vl = (size_t)(e - (colon + 2));
			char val[16];

			CHECK(vl < sizeof(val));
			memcpy(val, colon + 2, vl);
			val[vl] = '\0';
			if (ds_names[k][0] == 'A') {
				naction++;
				CHECK(strcmp(val, delayed ? "delayed" : "failed") == 0);
			} else {
				nstatus++;
				CHECK(status_ok(val, delayed ? 4 : 5));
			}
		}
		if (nblocks == 1 && strcmp(ds_names[k], "Diagnostic-Code") == 0) {
			CHECK(diag == NULL);
			diag = strndup(colon + 2, n - (size_t)(colon + 2 - p));
			CHECK(diag != NULL);
			in_diag = 1;
		}
		p = e + 2;
	}
	CHECK(nfields > 0 && nfinal == 1 && naction == 1 && nstatus == 1);
	CHECK(nblocks == r->nrcpts);	/* blank lines: one per recipient */
	if (want_diag != NULL) {
		CHECK(diag != NULL);
		CHECK(strncmp(diag, "smtp; ", 6) == 0);
		CHECK(strcmp(diag + 6, want_diag) == 0);
	}
	free(diag);
}

/* A reply whose Diagnostic-Code must be itself: printable, trimmed, short. */
static int
plain_reply(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DSN_DIAG_MAX || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

static void
check_header_block(const char *h, size_t n, size_t cap)
{
	size_t got = dsn_header_block(h, n, cap), blen = header_block_len(h, n);

	CHECK(got <= cap && got <= blen);
	if (blen <= cap)
		CHECK(got == blen);
	else
		CHECK(got == 0 || h[got - 1] == '\n');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f[NFIELDS + 1] = { NULL };
	size_t fl[NFIELDS + 1] = { 0 };
	char *v[NFIELDS] = { NULL }, *out, err[256];
	struct dsn_rcpt rc[3];
	struct dsn_report r;
	const char *s = (const char *)data + 1, *end = (const char *)data + size;
	unsigned flags;
	size_t nf = 0, len, i;
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *msg;
	GMimeObject *top;
	GMimeContentType *ct;
	int nparts;
	char *body;

	if (size < 1)
		return 0;
	flags = data[0];
	/* Nine NUL-separated fields, then the headers with any NULs. */
	while (s <= end && nf <= NFIELDS) {
		const char *z = nf < NFIELDS ? memchr(s, '\0', (size_t)(end - s)) : NULL;

		f[nf] = s;
		fl[nf] = (size_t)((z != NULL ? z : end) - s);
		nf++;
		if (z == NULL)
			break;
		s = z + 1;
	}
	for (i = 0; i < NFIELDS; i++)
		v[i] = dup_field(f[i], fl[i], i == 1 ? "r" : i == 4 ? "s" : "");

	memset(rc, 0, sizeof(rc));
	for (i = 0; i < 3; i++) {
		rc[i].final_recipient = v[1] != NULL ? v[1] : "r@example.net";
		rc[i].original_recipient = v[2];
		rc[i].remote_mta = v[3];
		rc[i].smtp_reply = v[0];
		rc[i].reason = v[5];
		rc[i].status = (flags & 0x80) ? v[8] : NULL;
		rc[i].last_attempt = 1700000000 + (int64_t)i;
		rc[i].retry_until = 1700400000;
	}
	rc[0].action = (flags & 0x04) ? DSN_DELAYED : DSN_FAILED;
	rc[0].expired = (flags & 0x08) != 0;
	if (flags & 0x10)
		rc[1].smtp_reply = NULL;
	rc[2].action = (flags & 0x40) ? DSN_DELAYED : DSN_FAILED;

	memset(&r, 0, sizeof(r));
	r.hostname = "mail.example.com";
	r.recipient = v[4] != NULL ? v[4] : "s@example.org";
	r.qid = v[7];
	r.envid = v[6];
	r.arrival = 1699990000;
	r.now = 1700432000;
	r.lifetime = (flags & 0x08) ? 5 * 86400 : 0;
	if (!(flags & 0x20) && f[NFIELDS] != NULL) {
		r.headers = f[NFIELDS];
		r.headers_len = fl[NFIELDS];
	}
	r.rcpts = rc;
	r.nrcpts = (flags & 3) + 1 > 3 ? 3 : (flags & 3) + 1;

	err[0] = '\0';
	if (dsn_build(&r, &out, &len, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_dsn: dsn_build: %s\n", err);
		abort();
	}
	check_bytes(out, len);
	check_top(out);

	stream = g_mime_stream_mem_new_with_buffer(out, len);
	parser = g_mime_parser_new_with_stream(stream);
	msg = g_mime_parser_construct_message(parser, NULL);
	CHECK(msg != NULL);
	top = g_mime_message_get_mime_part(msg);
	CHECK(top != NULL && GMIME_IS_MULTIPART(top));
	ct = g_mime_object_get_content_type(top);
	CHECK(g_mime_content_type_is_type(ct, "multipart", "report"));
	CHECK(strcmp(g_mime_content_type_get_parameter(ct, "report-type"),
	    "delivery-status") == 0);
	nparts = g_mime_multipart_get_count((GMimeMultipart *)top);
	CHECK(nparts == 2 || (nparts == 3 && r.headers != NULL));
	CHECK(g_mime_content_type_is_type(g_mime_object_get_content_type(
	    g_mime_multipart_get_part((GMimeMultipart *)top, 0)), "text", "plain"));
	CHECK(g_mime_content_type_is_type(g_mime_object_get_content_type(
	    g_mime_multipart_get_part((GMimeMultipart *)top, 1)), "message",
	    "delivery-status"));
	if (nparts == 3)
		CHECK(g_mime_content_type_is_type(g_mime_object_get_content_type(
		    g_mime_multipart_get_part((GMimeMultipart *)top, 2)), "text",
		    "rfc822-headers"));
	body = content(g_mime_multipart_get_part((GMimeMultipart *)top, 1));
	check_status(body, &r, v[0] != NULL && plain_reply(v[0]) ? v[0] : NULL);
	free(body);
	g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(stream);
	free(out);

	if (r.headers != NULL) {
		check_header_block(r.headers, r.headers_len, DSN_HEADERS_MAX);
		check_header_block(r.headers, r.headers_len, r.headers_len / 2);
		check_header_block(r.headers, r.headers_len, flags);
	}
	for (i = 0; i < NFIELDS; i++)
		free(v[i]);
	return 0;
}
