/*
 * dsn.c - delivery status notifications (RFC 3464) with GMime 3.
 *
 * The report is assembled as GMime objects: a GMimeMessage whose part is
 * a multipart/report holding a text part, a message/delivery-status part
 * and a text/rfc822-headers part, written once with CRLF line ends.  The
 * bodies are built here as LF-terminated text and GMime turns every line
 * end into CRLF on the way out.
 *
 * The delivery-status fields are folded here, not by GMime: its header
 * formatter encodes long or odd-looking words as RFC 2047 encoded-words
 * and breaks a long word with a TAB, and either would change a server's
 * reply that the report must carry as it was.  Folding only before the
 * spaces already in a value keeps it exact after unfolding.
 *
 * Hostile values are cleaned before anything is built from them; what
 * each context allows is written down in dsn.h.
 */
#include "aliases/dsn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "aliases/mime.h"
#include "lib/header.h"
#include "lib/util.h"

#define FOLD_AT		78	/* fold delivery-status fields past this column */
#define WRAP_AT		72	/* wrap the text's paragraphs at this column */
#define STATUS_MAX	10	/* "5.999.999" and its NUL */

void
dsn_shutdown(void)
{
	mime_shutdown();
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * The length of the UTF-8 character at s[0..n), or 0 when the octets
 * there are not one (a stray continuation octet, a cut or overlong
 * sequence, a surrogate).
 */
static size_t
utf8_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len, i;
	uint32_t cp;

	if (n == 0)
		return 0;
	if (u[0] < 0x80)
		return 1;
	if (u[0] >= 0xc2 && u[0] <= 0xdf) {
		len = 2;
		cp = u[0] & 0x1f;
	} else if (u[0] >= 0xe0 && u[0] <= 0xef) {
		len = 3;
		cp = u[0] & 0x0f;
	} else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
		len = 4;
		cp = u[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (u[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* The code point of the valid UTF-8 character s[0..len). */
static uint32_t
utf8_cp(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	static const unsigned char lead_mask[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	uint32_t cp = u[0] & lead_mask[len];
	size_t i;

	for (i = 1; i < len; i++)
		cp = cp << 6 | (u[i] & 0x3f);
	return cp;
}

/* Drop trailing spaces from g. */
static void
rtrim(GString *g)
{
	while (g->len > 0 && g->str[g->len - 1] == ' ')
		g_string_truncate(g, g->len - 1);
}

/*
 * s (NUL-terminated, may be NULL) as one delivery-status value: printable
 * ASCII kept, controls become spaces, each UTF-8 character or stray 8-bit
 * octet one '?'; trimmed; cut to cap octets ending in "..." when longer.
 * A new string (empty for NULL).
 */
static GString *
ds_clean(const char *s, size_t cap)
{
	GString *g = g_string_new(NULL);
	size_t n = s != NULL ? strlen(s) : 0, i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80) {
			size_t l = utf8_len(s + i, n - i);

			g_string_append_c(g, '?');
			i += l > 0 ? l : 1;
			continue;
		}
		if (c == ' ' || c < 0x20 || c == 0x7f) {
			if (g->len > 0)
				g_string_append_c(g, ' ');
		} else
			g_string_append_c(g, (char)c);
		i++;
	}
	rtrim(g);
	if (g->len > cap) {
		g_string_truncate(g, cap - 3);
		g_string_append(g, "...");
	}
	return g;
}

/*
 * s as text for people: controls become spaces, what is not UTF-8
 * becomes U+FFFD; trimmed; cut at a character boundary to cap octets,
 * ending in "..." when longer.  A new string (empty for NULL).
 */
static GString *
text_clean(const char *s, size_t cap)
{
	GString *g = g_string_new(NULL);
	size_t n = s != NULL ? strlen(s) : 0, i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t l;

		if (c < 0x20 || c == 0x7f || c == ' ') {
			if (g->len > 0)
				g_string_append_c(g, ' ');
			i++;
		} else if ((l = utf8_len(s + i, n - i)) > 0) {
			g_string_append_len(g, s + i, (gssize)l);
			i += l;
		} else {
			g_string_append(g, "\xef\xbf\xbd");
			i++;
		}
	}
	rtrim(g);
	if (g->len > cap) {
		size_t cut = cap - 3;

		while (cut > 0 && ((unsigned char)g->str[cut] & 0xc0) == 0x80)
			cut--;
		g_string_truncate(g, cut);
		g_string_append(g, "...");
	}
	return g;
}

/* Whether s is NULL or holds nothing but spaces and controls. */
static int
blank(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s > 0x20 && (unsigned char)*s != 0x7f)
			return 0;
	return 1;
}

/* Whether g holds an octet >= 0x80. */
static int
has_8bit(const GString *g)
{
	return mem_has_8bit(g->str, g->len);
}

/*
 * An address as a delivery-status value, "rfc822; addr", or, for an
 * address that is not ASCII, "utf-8; " with RFC 6533 utf-8-addr-xtext:
 * QCHARs as they are, space, '+', '=', '\' and every other character as
 * \x{HEX}, what is not UTF-8 as \x{FFFD}.  Controls become spaces first.
 */
static GString *
ds_addr(const char *s)
{
	GString *t = text_clean(s, DSN_ADDR_MAX), *g;
	size_t i = 0;

	if (!has_8bit(t)) {
		g = g_string_new("rfc822; ");
		g_string_append_len(g, t->str, (gssize)t->len);
		g_string_free(t, TRUE);
		return g;
	}
	g = g_string_new("utf-8; ");
	while (i < t->len) {
		unsigned char c = (unsigned char)t->str[i];
		size_t l = utf8_len(t->str + i, t->len - i), before = g->len;

		if (l == 0)	/* text_clean() leaves none; be safe */
			l = 1;
		if (c > 0x20 && c < 0x7f && c != '+' && c != '=' && c != '\\')
			g_string_append_c(g, (char)c);
		else if (c < 0x80)
			g_string_append_printf(g, "\\x{%02X}", c);
		else
			g_string_append_printf(g, "\\x{%" PRIX32 "}",
			    utf8_cp(t->str + i, l));
		if (g->len > DSN_ADDR_MAX - 3) {
			g_string_truncate(g, before);
			g_string_append(g, "...");
			break;
		}
		i += l;
	}
	g_string_free(t, TRUE);
	return g;
}

/*
 * Append "Name: value" and its LF to g, folded before a run of spaces
 * when the line would pass FOLD_AT.  value is printable ASCII, trimmed
 * (ds_clean()), so each run of spaces has a word after it and no
 * continuation line is blank; a word longer than a line is never broken.
 */
static void
ds_field(GString *g, const char *name, const char *value)
{
	size_t n = strlen(value), i = 0, col;

	g_string_append(g, name);
	g_string_append(g, ": ");
	col = strlen(name) + 2;
	while (i < n) {
		size_t j = i;

		while (j < n && value[j] == ' ')
			j++;
		while (j < n && value[j] != ' ')
			j++;
		if (i > 0 && col + (j - i) > FOLD_AT) {
			g_string_append_c(g, '\n');
			col = 0;
		}
		g_string_append_len(g, value + i, (gssize)(j - i));
		col += j - i;
		i = j;
	}
	g_string_append_c(g, '\n');
}

/*
 * ds_field() with "prefix; " and value cleaned by ds_clean(); nothing
 * when nothing is left of value.
 */
static void
ds_field_typed(GString *g, const char *name, const char *prefix,
    const char *value, size_t cap)
{
	GString *v = ds_clean(value, cap);

	if (v->len > 0) {
		char *s = g_strdup_printf("%s; %s", prefix, v->str);

		ds_field(g, name, s);
		g_free(s);
	}
	g_string_free(v, TRUE);
}

/* An RFC 5322 date for t, in local time.  g_free() it. */
static char *
rfc5322_date(int64_t t)
{
	GDateTime *d = g_date_time_new_from_unix_local(t);
	char *s;

	if (d == NULL)	/* out of GDateTime's range */
		d = g_date_time_new_from_unix_local(0);
	s = g_mime_utils_header_format_date(d);
	g_date_time_unref(d);
	return s;
}

/*
 * Whether s[0..n) is an RFC 3463 code "class.subject.detail", class one
 * of 2, 4, 5 (any of them when cls is 0, else that one) and 1 to 3 digits
 * in subject and detail.
 */
static int
status_ok(const char *s, size_t n, int cls)
{
	size_t i = 1;

	if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    (cls != 0 && s[0] != '0' + cls))
		return 0;
	for (int part = 0; part < 2; part++) {
		size_t start;

		if (i >= n || s[i] != '.')
			return 0;
		start = ++i;
		while (i < n && i - start < 3 && is_digit((unsigned char)s[i]))
			i++;
		if (i == start)
			return 0;
	}
	return i == n;
}

/*
 * The enhanced code at the start of a reply's text, "DDD" then ' ' or
 * '-' then the code, of the reply code's class and followed by a blank,
 * a line end or the end: its length at reply + 4, or 0.
 */
static size_t
reply_enhanced(const char *reply)
{
	size_t n = 0;

	if (reply == NULL)
		return 0;
	for (int i = 0; i < 3; i++)
		if (!is_digit((unsigned char)reply[i]))
			return 0;
	if (reply[3] != ' ' && reply[3] != '-')
		return 0;
	while (n < STATUS_MAX && reply[4 + n] != '\0' &&
	    strchr(" \t\r\n", reply[4 + n]) == NULL)
		n++;
	if (!status_ok(reply + 4, n, reply[0] - '0'))
		return 0;
	return n;
}

char *
dsn_status(const struct dsn_rcpt *rc, char *dst, size_t dstlen)
{
	int cls = rc->action == DSN_DELAYED ? 4 : 5;
	const char *reply = rc->smtp_reply;
	const char *st;
	size_t n;

	if (dstlen == 0)
		return dst;
	if (rc->status != NULL &&
	    status_ok(rc->status, strlen(rc->status), cls)) {
		snprintf(dst, dstlen, "%s", rc->status);
		return dst;
	}
	if ((n = reply_enhanced(reply)) > 0 && reply[4] == '0' + cls) {
		snprintf(dst, dstlen, "%.*s", (int)n, reply + 4);
		return dst;
	}
	if (cls == 4)
		st = "4.0.0";
	else if (reply != NULL && reply[0] == '5' && is_digit((unsigned char)reply[1]))
		st = "5.0.0";
	else if (rc->expired || (reply != NULL && reply[0] == '4' &&
	    is_digit((unsigned char)reply[1])))
		st = "5.4.7";
	else
		st = "5.0.0";
	snprintf(dst, dstlen, "%s", st);
	return dst;
}

size_t
dsn_header_block(const char *msg, size_t len, size_t cap)
{
	size_t blen, i = 0, field = 0, fit = 0;

	if (msg == NULL || len == 0)
		return 0;
	blen = header_block_len(msg, len);
	if (blen <= cap)
		return blen;
	while (i < blen) {
		const char *nl = memchr(msg + i, '\n', blen - i);
		size_t e = nl != NULL ? (size_t)(nl - msg) + 1 : blen;

		if (e > cap)
			break;
		if (msg[i] != ' ' && msg[i] != '\t')
			field = i;
		fit = e;
		i = e;
	}
	/* i is the first line that does not fit. */
	if (field > 0 && (msg[i] == ' ' || msg[i] == '\t'))
		return field;
	return fit;
}

/*
 * The original header block for text/rfc822-headers, LF line ends: cut
 * by dsn_header_block(), without its empty line; a CR before LF goes,
 * NUL, other CRs and controls but TAB become '?'; 8-bit octets stay.
 */
static GString *
headers_clean(const char *msg, size_t len)
{
	GString *g = g_string_new(NULL);
	size_t n = dsn_header_block(msg, len, DSN_HEADERS_MAX), i = 0;

	while (i < n) {
		const char *nl = memchr(msg + i, '\n', n - i);
		size_t e = nl != NULL ? (size_t)(nl - msg) : n;
		size_t end = e;

		if (end > i && msg[end - 1] == '\r')
			end--;
		if (end == i)
			break;	/* the empty line */
		for (; i < end; i++) {
			unsigned char c = (unsigned char)msg[i];

			g_string_append_c(g, (c < 0x20 && c != '\t') || c == 0x7f ?
			    '?' : (char)c);
		}
		g_string_append_c(g, '\n');
		i = e + 1;
	}
	return g;
}

/* "5 days", "1 hour", "90 seconds": the largest unit that gives >= 2. */
static void
append_duration(GString *g, int64_t secs)
{
	static const struct {
		int64_t len;
		const char *name;
	} units[] = {
		{ 86400, "day" }, { 3600, "hour" }, { 60, "minute" }, { 1, "second" },
	};
	size_t k;

	if (secs < 0)
		secs = 0;
	for (k = 0; k + 1 < ARRAY_SIZE(units); k++)
		if (secs % units[k].len == 0 ? secs >= units[k].len :
		    secs >= 2 * units[k].len)
			break;
	secs /= units[k].len;
	g_string_append_printf(g, "%" PRId64 " %s%s", secs, units[k].name,
	    secs == 1 ? "" : "s");
}

/*
 * Append para to g wrapped at WRAP_AT columns at its spaces, lines after
 * the first indented by indent spaces, and a LF.  A word longer than a
 * line stays whole.  Columns count UTF-8 characters.
 */
static void
text_wrap(GString *g, const char *para, size_t indent)
{
	const char *p = para;
	size_t col = 0;
	int first = 1;

	for (;;) {
		const char *w;
		size_t wlen, wcols = 0;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		w = p;
		while (*p != '\0' && *p != ' ')
			p++;
		wlen = (size_t)(p - w);
		for (size_t i = 0; i < wlen; i++)
			wcols += ((unsigned char)w[i] & 0xc0) != 0x80;
		if (!first && col + 1 + wcols > WRAP_AT) {
			g_string_append_c(g, '\n');
			for (size_t i = 0; i < indent; i++)
				g_string_append_c(g, ' ');
			col = indent;
		} else if (!first) {
			g_string_append_c(g, ' ');
			col++;
		}
		g_string_append_len(g, w, (gssize)wlen);
		col += wcols;
		first = 0;
	}
	g_string_append_c(g, '\n');
}

/* The cause of one recipient's trouble, in words, into g. */
static void
append_cause(GString *g, const struct dsn_rcpt *rc)
{
	GString *v;

	if (!blank(rc->smtp_reply)) {
		v = text_clean(rc->remote_mta, DSN_ADDR_MAX);
		if (v->len > 0)
			g_string_append_printf(g, "the server %s said: ", v->str);
		else
			g_string_append(g, "the remote server said: ");
		g_string_free(v, TRUE);
		v = text_clean(rc->smtp_reply, DSN_DIAG_MAX);
		g_string_append(g, v->str);
	} else {
		v = text_clean(rc->reason, DSN_DIAG_MAX);
		g_string_append(g, v->len > 0 ? v->str :
		    rc->action == DSN_DELAYED ? "not delivered yet" :
		    "delivery failed");
	}
	g_string_free(v, TRUE);
}

/*
 * One recipient's paragraph of the text, into g; life is how long the
 * queue tried, or 0 when unknown.
 */
static void
text_rcpt(GString *g, const struct dsn_rcpt *rc, int64_t life)
{
	GString *p = g_string_new(NULL);
	GString *fin = text_clean(rc->final_recipient, DSN_ADDR_MAX);
	GString *orig = text_clean(rc->original_recipient, DSN_ADDR_MAX);

	g_string_append_printf(p, "<%s>", fin->str);
	if (orig->len > 0 && strcmp(orig->str, fin->str) != 0)
		g_string_append_printf(p, " (expanded from <%s>)", orig->str);
	g_string_append(p, ": ");
	if (rc->action == DSN_FAILED && rc->expired) {
		if (life > 0) {
			g_string_append(p, "could not be delivered within ");
			append_duration(p, life);
		} else
			g_string_append(p, "could not be delivered in time");
		g_string_append(p, "; the last error was: ");
	}
	append_cause(p, rc);
	if (rc->action == DSN_DELAYED && rc->retry_until > 0) {
		char *d = rfc5322_date(rc->retry_until);

		g_string_append_printf(p, " (it will be tried again until %s)", d);
		g_free(d);
	}
	text_wrap(g, p->str, 4);
	g_string_free(p, TRUE);
	g_string_free(fin, TRUE);
	g_string_free(orig, TRUE);
}

/*
 * The text/plain body, LF line ends.  qid is cleaned, life as for
 * text_rcpt(), have_headers whether part 3 is there.
 */
static GString *
text_body(const struct dsn_report *r, const char *qid, int64_t life,
    int have_headers)
{
	GString *g = g_string_new(NULL);
	size_t nfailed = 0, ndelayed = 0, i;

	for (i = 0; i < r->nrcpts; i++) {
		if (r->rcpts[i].action == DSN_DELAYED)
			ndelayed++;
		else
			nfailed++;
	}
	g_string_append_printf(g, "This is the mail system at host %s.\n\n",
	    r->hostname);
	if (nfailed > 0) {
		GString *p = g_string_new(
		    "Your message could not be delivered to one or more "
		    "recipients. The reasons are below");
		g_string_append(p, have_headers ?
		    "; the headers of your message are attached." : ".");
		if (ndelayed > 0)
			g_string_append(p, " Delivery to some other recipients "
			    "is delayed; they are listed after these.");
		text_wrap(g, p->str, 0);
		g_string_free(p, TRUE);
		for (i = 0; i < r->nrcpts; i++) {
			if (r->rcpts[i].action == DSN_DELAYED)
				continue;
			g_string_append_c(g, '\n');
			text_rcpt(g, &r->rcpts[i], life);
		}
	}
	if (ndelayed > 0) {
		if (nfailed > 0)
			g_string_append_c(g, '\n');
		text_wrap(g, "Your message has not been delivered yet to the "
		    "following recipients. The mail system will keep trying; "
		    "you do not need to send it again.", 0);
		for (i = 0; i < r->nrcpts; i++) {
			if (r->rcpts[i].action != DSN_DELAYED)
				continue;
			g_string_append_c(g, '\n');
			text_rcpt(g, &r->rcpts[i], life);
		}
	}
	g_string_append_c(g, '\n');
	if (qid[0] != '\0')
		g_string_append_printf(g, "Queue ID: %s\n", qid);
	if (r->arrival > 0) {
		char *d = rfc5322_date(r->arrival);

		g_string_append_printf(g, "Arrival date: %s\n", d);
		g_free(d);
	}
	return g;
}

/* The message/delivery-status body, LF line ends. */
static GString *
status_body(const struct dsn_report *r)
{
	GString *g = g_string_new(NULL);
	size_t i;
	char *s;

	if (!blank(r->envid)) {
		GString *v = ds_clean(r->envid, DSN_ADDR_MAX);

		ds_field(g, "Original-Envelope-Id", v->str);
		g_string_free(v, TRUE);
	}
	ds_field_typed(g, "Reporting-MTA", "dns", r->hostname, DSN_ADDR_MAX);
	if (r->arrival > 0) {
		s = rfc5322_date(r->arrival);
		ds_field(g, "Arrival-Date", s);
		g_free(s);
	}
	for (i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		char status[STATUS_MAX];
		GString *v;

		g_string_append_c(g, '\n');
		if (!blank(rc->original_recipient)) {
			v = ds_addr(rc->original_recipient);
			ds_field(g, "Original-Recipient", v->str);
			g_string_free(v, TRUE);
		}
		v = ds_addr(rc->final_recipient);
		ds_field(g, "Final-Recipient", v->str);
		g_string_free(v, TRUE);
		ds_field(g, "Action", rc->action == DSN_DELAYED ? "delayed" :
		    "failed");
		ds_field(g, "Status", dsn_status(rc, status, sizeof(status)));
		ds_field_typed(g, "Remote-MTA", "dns", rc->remote_mta,
		    DSN_ADDR_MAX);
		if (!blank(rc->smtp_reply))
			ds_field_typed(g, "Diagnostic-Code", "smtp",
			    rc->smtp_reply, DSN_DIAG_MAX);
		else
			ds_field_typed(g, "Diagnostic-Code", "X-Umbox",
			    rc->reason, DSN_DIAG_MAX);
		if (rc->last_attempt > 0) {
			s = rfc5322_date(rc->last_attempt);
			ds_field(g, "Last-Attempt-Date", s);
			g_free(s);
		}
		if (rc->action == DSN_DELAYED && rc->retry_until > 0) {
			s = rfc5322_date(rc->retry_until);
			ds_field(g, "Will-Retry-Until", s);
			g_free(s);
		}
	}
	return g;
}

/*
 * Give part body (LF line ends) as its content, with the best transfer
 * encoding GMime finds for it under constraint.
 */
static GMimePart *
leaf_part(GMimePart *part, const GString *body,
    GMimeEncodingConstraint constraint)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(body->str, body->len);
	GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	GMimeContentEncoding enc;

	g_mime_part_set_content(part, w);
	g_object_unref(w);
	g_object_unref(s);
	/* GMime's "nothing needed" is 7bit; 8-bit text must say 8bit. */
	enc = g_mime_part_get_best_content_encoding(part, constraint);
	if (enc == GMIME_CONTENT_ENCODING_DEFAULT && has_8bit(body))
		enc = GMIME_CONTENT_ENCODING_8BIT;
	g_mime_part_set_content_encoding(part, enc);
	return part;
}

/* A host name: 1..253 octets of letters, digits, '-', '.', '_'. */
static int
hostname_ok(const char *h)
{
	size_t n = h != NULL ? strlen(h) : 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    is_digit(c) || c == '-' || c == '.' || c == '_'))
			return 0;
	}
	return 1;
}

/* qid with all but letters and digits left out, at most 64 of them. */
static void
clean_qid(const char *qid, char *dst, size_t dstlen)
{
	size_t o = 0;

	for (; qid != NULL && *qid != '\0' && o + 1 < dstlen; qid++) {
		unsigned char c = (unsigned char)*qid;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
}

/*
 * Check the report, clean what goes into the headers, build the three
 * parts and the message around them, and write it with CRLF line ends.
 */
int
dsn_build(const struct dsn_report *r, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	GMimeMessage *msg;
	GMimeMultipart *mp;
	GMimeTextPart *text;
	GMimePart *part;
	GDateTime *date;
	GString *body, *hdrs, *to;
	char qid[65], *from, *mid;
	int64_t now, life;
	size_t i;
	int ret = -1;

	*out = NULL;
	*outlen = 0;
	if (!hostname_ok(r->hostname)) {
		snprintf(err, errlen, "dsn: not a host name");
		return -1;
	}
	if (r->rcpts == NULL || r->nrcpts == 0 || r->nrcpts > DSN_RCPTS_MAX) {
		snprintf(err, errlen, "dsn: %zu recipients, not 1 to %d",
		    r->rcpts == NULL ? (size_t)0 : r->nrcpts, DSN_RCPTS_MAX);
		return -1;
	}
	for (i = 0; i < r->nrcpts; i++) {
		if (blank(r->rcpts[i].final_recipient)) {
			snprintf(err, errlen, "dsn: recipient %zu has no address", i);
			return -1;
		}
	}
	if (blank(r->recipient)) {
		snprintf(err, errlen, "dsn: no envelope sender to report to");
		return -1;
	}

	mime_init();
	clean_qid(r->qid, qid, sizeof(qid));
	now = r->now != 0 ? r->now : (int64_t)time(NULL);
	life = r->lifetime;
	if (life <= 0 && r->arrival > 0 && now > r->arrival)
		life = now - r->arrival;
	hdrs = headers_clean(r->headers, r->headers_len);
	body = text_body(r, qid, life, hdrs->len > 0);

	msg = g_mime_message_new(TRUE);
	from = g_strdup_printf("MAILER-DAEMON@%s", r->hostname);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM,
	    "Mail Delivery System", from);
	g_free(from);
	to = text_clean(r->recipient, DSN_ADDR_MAX);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, to->str);
	g_string_free(to, TRUE);
	{
		int all_delayed = 1;

		for (i = 0; i < r->nrcpts; i++)
			if (r->rcpts[i].action != DSN_DELAYED)
				all_delayed = 0;
		g_mime_message_set_subject(msg, all_delayed ?
		    "Delayed Mail (still being retried)" :
		    "Undelivered Mail Returned to Sender", NULL);
	}
	date = g_date_time_new_from_unix_local(now);
	if (date == NULL)
		date = g_date_time_new_now_local();
	g_mime_message_set_date(msg, date);
	g_date_time_unref(date);
	/* Set by name so that it is spelled as in RFC 5322. */
	mid = mime_message_id(qid[0] != '\0' ? qid : "dsn", now, r->hostname);
	g_mime_object_set_header((GMimeObject *)msg, "Message-ID", mid, NULL);
	g_free(mid);
	g_mime_object_set_header((GMimeObject *)msg, "Auto-Submitted",
	    "auto-replied", NULL);

	mp = g_mime_multipart_new_with_subtype("report");
	g_mime_object_set_content_type_parameter((GMimeObject *)mp,
	    "report-type", "delivery-status");

	text = g_mime_text_part_new_with_subtype("plain");
	leaf_part((GMimePart *)text, body, GMIME_ENCODING_CONSTRAINT_7BIT);
	g_mime_text_part_set_charset(text, has_8bit(body) ? "utf-8" : "us-ascii");
	g_mime_multipart_add(mp, (GMimeObject *)text);
	g_object_unref(text);
	g_string_free(body, TRUE);

	body = status_body(r);
	part = g_mime_part_new_with_type("message", "delivery-status");
	leaf_part(part, body, GMIME_ENCODING_CONSTRAINT_7BIT);
	g_mime_multipart_add(mp, (GMimeObject *)part);
	g_object_unref(part);
	g_string_free(body, TRUE);

	if (hdrs->len > 0) {
		part = g_mime_part_new_with_type("text", "rfc822-headers");
		leaf_part(part, hdrs, GMIME_ENCODING_CONSTRAINT_8BIT);
		/* RFC 6532 headers are UTF-8; say so when they are. */
		if (has_8bit(hdrs) && g_utf8_validate(hdrs->str,
		    (gssize)hdrs->len, NULL))
			g_mime_object_set_content_type_parameter(
			    (GMimeObject *)part, "charset", "utf-8");
		g_mime_multipart_add(mp, (GMimeObject *)part);
		g_object_unref(part);
	}
	g_string_free(hdrs, TRUE);

	g_mime_message_set_mime_part(msg, (GMimeObject *)mp);
	g_object_unref(mp);

	if (mime_write((GMimeObject *)msg, out, outlen, err, errlen) == 0)
		ret = 0;
	g_object_unref(msg);
	return ret;
}
