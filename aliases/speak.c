/*
 * speak.c - read an email aloud for the phone: the words with GMime and
 * libxml2, the voice with libespeak-ng, the telephone rate by our own
 * polyphase resampler.
 *
 * GMime does all of MIME: the part tree, quoted-printable and base64,
 * charsets, RFC 2047 words in From and Subject, the Date field.  HTML is
 * parsed by libxml2's forgiving HTML parser and the tree walked here,
 * without recursion, to keep the text a listener would read.  What is
 * trimmed (quoted replies, signatures) is decided on the resulting lines,
 * so plain and HTML mail are trimmed alike.
 *
 * espeak-ng keeps global state and is not thread-safe: one mutex covers
 * its start, the voice choice and the synthesis.  It speaks at its own
 * rate (22050 Hz); telephony wants 8000 Hz, so the samples go through a
 * windowed-sinc low-pass evaluated at the output instants.
 */
#include "aliases/speak.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include "aliases/mime.h"
#include "lib/util.h"

#define SCAN_MAX	(256 * 1024)	/* body bytes looked at, before trimming */
#define HTML_MAX	(1024 * 1024)	/* HTML bytes handed to the parser */
#define PART_DEPTH_MAX	32		/* multipart nesting walked */
#define VOICE_NAME_MAX	40
#define SINC_ZEROS	16		/* low-pass zero crossings on each side */

static void
set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- one-time library set-up ---- */

static pthread_once_t libs_once = PTHREAD_ONCE_INIT;

/*
 * libxml2 wants one initialisation per process before threads use it,
 * GMime too (mime.c, shared with the messages umbox writes); both stay up
 * until exit (their tables are reachable from globals, so leak checkers
 * do not count them).
 */
static void
libs_init_once(void)
{
	mime_init();
	xmlInitParser();
}

/* ---- text helpers ---- */

static int
is_space_cp(gunichar c)
{
	return c == 0xa0 || c == 0x2028 || c == 0x2029 || g_unichar_isspace(c);
}

/* Control characters (C0, DEL, C1) and the invisible ones that only steer layout. */
static int
is_junk_cp(gunichar c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x200b || c == 0xfeff ||
	    c == 0x200c || c == 0x200d || c == 0xad;
}

/*
 * Append s (any bytes) to g as one line of words: invalid UTF-8 repaired,
 * control characters and whitespace runs made single spaces, trimmed, at
 * most max characters (cut at a space when there is one in the last
 * third, else mid-word).  Returns the number of characters appended.
 */
static size_t
append_field(GString *g, const char *s, size_t max)
{
	char *valid = g_utf8_make_valid(s, -1);
	size_t start = g->len, count = 0, last_space = 0, count_at_space = 0;
	int pending_space = 0;

	for (const char *p = valid; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (is_space_cp(c) || is_junk_cp(c)) {
			pending_space = count > 0;
			continue;
		}
		if (pending_space) {
			if (count + 1 >= max)
				break;
			last_space = g->len;
			count_at_space = count;
			g_string_append_c(g, ' ');
			count++;
			pending_space = 0;
		}
		if (count >= max) {
			if (last_space > start && count_at_space * 3 >= max * 2) {
				g_string_truncate(g, last_space);
				count = count_at_space;
			}
			break;
		}
		g_string_append_unichar(g, c);
		count++;
	}
	g_free(valid);
	return count;
}

/* ---- the date, as a person says it ---- */

static const char *const weekdays[] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};
static const char *const months[] = {
	"January", "February", "March", "April", "May", "June", "July", "August",
	"September", "October", "November", "December",
};

/*
 * "Tuesday, December 1 at 3:05 PM" in the local time zone, else the Date
 * field as written (cleaned), else nothing (0 returned).
 */
static int
append_date(GString *g, GMimeMessage *m)
{
	GDateTime *d = g_mime_message_get_date(m);
	const char *raw;
	struct tm tm;
	time_t t;

	if (d != NULL) {
		gint64 u = g_date_time_to_unix(d);

		t = (time_t)u;
		if ((gint64)t == u && localtime_r(&t, &tm) != NULL &&
		    tm.tm_wday >= 0 && tm.tm_wday < 7 && tm.tm_mon >= 0 && tm.tm_mon < 12) {
			int h = tm.tm_hour % 12;

			g_string_append_printf(g, "%s, %s %d at %d:%02d %s", weekdays[tm.tm_wday],
			    months[tm.tm_mon], tm.tm_mday, h == 0 ? 12 : h, tm.tm_min,
			    tm.tm_hour < 12 ? "AM" : "PM");
			return 1;
		}
	}
	raw = g_mime_object_get_header(GMIME_OBJECT(m), "Date");
	if (raw == NULL)
		return 0;
	return append_field(g, raw, SPEAK_FIELD_MAX) > 0;
}

/* The sender's display name, else address; 0 when there is neither. */
static int
append_sender(GString *g, GMimeMessage *m)
{
	InternetAddressList *from = g_mime_message_get_from(m);
	int n = from ? internet_address_list_length(from) : 0;

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(from, i);
		const char *name = internet_address_get_name(ia);

		if (name != NULL && append_field(g, name, SPEAK_FIELD_MAX) > 0)
			return 1;
		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *addr = internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia));

			if (addr != NULL && append_field(g, addr, SPEAK_FIELD_MAX) > 0)
				return 1;
		}
	}
	return 0;
}

/* ---- the body ---- */

/*
 * The first text/SUBTYPE leaf in o's tree, depth first, that is not an
 * attachment.  Messages attached as message/rfc822 are not entered: they
 * are not what this message says.
 */
static GMimeTextPart *
find_text_part(GMimeObject *o, const char *subtype, int depth)
{
	if (o == NULL || depth > PART_DEPTH_MAX)
		return NULL;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);

		for (int i = 0; i < n; i++) {
			GMimeTextPart *t = find_text_part(g_mime_multipart_get_part(mp, i),
			    subtype, depth + 1);

			if (t != NULL)
				return t;
		}
		return NULL;
	}
	if (GMIME_IS_TEXT_PART(o) &&
	    g_mime_content_type_is_type(g_mime_object_get_content_type(o), "text", subtype) &&
	    !g_mime_part_is_attachment(GMIME_PART(o)))
		return GMIME_TEXT_PART(o);
	return NULL;
}

enum html_role { HTML_INLINE, HTML_SKIP, HTML_BLOCK, HTML_BREAK, HTML_CELL, HTML_PRE };

static const struct {
	const char *name;
	enum html_role role;
} html_roles[] = {
	{ "script", HTML_SKIP }, { "style", HTML_SKIP }, { "head", HTML_SKIP },
	{ "title", HTML_SKIP }, { "noscript", HTML_SKIP }, { "template", HTML_SKIP },
	{ "object", HTML_SKIP }, { "iframe", HTML_SKIP }, { "svg", HTML_SKIP },
	{ "select", HTML_SKIP },
	/* A quoted reply in HTML mail is a blockquote (type=cite, gmail_quote). */
	{ "blockquote", HTML_SKIP },
	{ "br", HTML_BREAK },
	{ "td", HTML_CELL }, { "th", HTML_CELL },
	{ "pre", HTML_PRE },
	{ "address", HTML_BLOCK }, { "article", HTML_BLOCK }, { "aside", HTML_BLOCK },
	{ "caption", HTML_BLOCK }, { "center", HTML_BLOCK }, { "dd", HTML_BLOCK },
	{ "div", HTML_BLOCK }, { "dl", HTML_BLOCK }, { "dt", HTML_BLOCK },
	{ "fieldset", HTML_BLOCK }, { "figcaption", HTML_BLOCK }, { "figure", HTML_BLOCK },
	{ "footer", HTML_BLOCK }, { "form", HTML_BLOCK }, { "h1", HTML_BLOCK },
	{ "h2", HTML_BLOCK }, { "h3", HTML_BLOCK }, { "h4", HTML_BLOCK },
	{ "h5", HTML_BLOCK }, { "h6", HTML_BLOCK }, { "header", HTML_BLOCK },
	{ "hr", HTML_BLOCK }, { "li", HTML_BLOCK }, { "main", HTML_BLOCK },
	{ "nav", HTML_BLOCK }, { "ol", HTML_BLOCK }, { "p", HTML_BLOCK },
	{ "section", HTML_BLOCK }, { "table", HTML_BLOCK }, { "tr", HTML_BLOCK },
	{ "ul", HTML_BLOCK },
};

static enum html_role
html_role(const xmlNode *n)
{
	if (n->name == NULL)
		return HTML_INLINE;
	for (size_t i = 0; i < sizeof(html_roles) / sizeof(html_roles[0]); i++)
		if (g_ascii_strcasecmp((const char *)n->name, html_roles[i].name) == 0)
			return html_roles[i].role;
	return HTML_INLINE;
}

/* Entering node n: its text, or the break it starts.  1 if its children are read. */
static int
html_enter(const xmlNode *n, GString *g, int *pre)
{
	if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
		for (const char *p = (const char *)n->content; p && *p; p++)
			/* Outside <pre>, a line end in the source is a space. */
			g_string_append_c(g, (*p == '\n' || *p == '\r') && *pre == 0 ? ' ' : *p);
		return 0;
	}
	if (n->type != XML_ELEMENT_NODE)
		return 0;
	switch (html_role(n)) {
	case HTML_SKIP:
		return 0;
	case HTML_BREAK:
		g_string_append_c(g, '\n');
		return 1;
	case HTML_CELL:
		g_string_append_c(g, ' ');
		return 1;
	case HTML_PRE:
		(*pre)++;
		/* fall through */
	case HTML_BLOCK:
		g_string_append(g, "\n\n");
		return 1;
	case HTML_INLINE:
		return 1;
	}
	return 1;
}

static void
html_leave(const xmlNode *n, GString *g, int *pre)
{
	if (n->type != XML_ELEMENT_NODE)
		return;
	switch (html_role(n)) {
	case HTML_PRE:
		(*pre)--;
		/* fall through */
	case HTML_BLOCK:
		g_string_append(g, "\n\n");
		break;
	default:
		break;
	}
}

/*
 * The text of an HTML document (UTF-8): what a browser would show, with
 * blocks as paragraphs and <br> as line ends.  The tree is walked with
 * parent links, not recursion, so any nesting depth is safe.
 */
static void
html_to_text(const char *html, size_t len, GString *g)
{
	htmlDocPtr doc;
	xmlNode *root, *cur;
	int pre = 0;

	if (len > HTML_MAX)
		len = HTML_MAX;
	if (len == 0)
		return;
	doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
	    HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	if (doc == NULL)
		return;
	root = xmlDocGetRootElement(doc);
	cur = root;
	while (cur != NULL) {
		if (html_enter(cur, g, &pre) && cur->children != NULL) {
			cur = cur->children;
			continue;
		}
		if (cur->type == XML_ELEMENT_NODE && html_role(cur) != HTML_SKIP)
			html_leave(cur, g, &pre);
		while (cur != root && cur->next == NULL) {
			cur = cur->parent;
			html_leave(cur, g, &pre);
		}
		if (cur == root)
			break;
		cur = cur->next;
	}
	xmlFreeDoc(doc);
}

static const char *
skip_blanks(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static const char *
rskip_blanks(const char *s, const char *end)
{
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	return end;
}

static int
ends_with(const char *s, const char *end, const char *suffix)
{
	size_t n = strlen(suffix);

	return (size_t)(end - s) >= n && g_ascii_strncasecmp(end - n, suffix, n) == 0;
}

static int
starts_with(const char *s, const char *end, const char *prefix)
{
	size_t n = strlen(prefix);

	return (size_t)(end - s) >= n && g_ascii_strncasecmp(s, prefix, n) == 0;
}

/* The next line after the one ending at eol (its start, end), or 0 at the end. */
static int
next_line(const char *eol, const char *end, const char **ls, const char **le)
{
	if (eol >= end)
		return 0;
	*ls = eol + 1;
	*le = memchr(*ls, '\n', (size_t)(end - *ls));
	if (*le == NULL)
		*le = end;
	return 1;
}

/*
 * 1 if the line [s, e) (blanks trimmed) starts what is not the sender's
 * own words: an attribution "On <date>, <someone> wrote:" (on one line
 * or broken over two), Outlook's "-----Original Message-----", or its
 * line of underscores followed by a "From:" line.
 */
static int
is_reply_start(const char *s, const char *e, const char *eol, const char *end)
{
	const char *ns, *ne;

	if (starts_with(s, e, "On ") && ends_with(s, e, "wrote:"))
		return 1;
	if (starts_with(s, e, "On ") && next_line(eol, end, &ns, &ne)) {
		ne = rskip_blanks(ns, ne);
		if (ends_with(ns, ne, "wrote:") && ne - ns < 200)
			return 1;
	}
	if (starts_with(s, e, "-----") && e - s < 80 && g_strstr_len(s, e - s, "riginal") != NULL)
		return 1;
	if (e - s >= 10 && strspn(s, "_") >= (size_t)(e - s)) {
		while (next_line(eol, end, &ns, &ne)) {
			ns = skip_blanks(ns, ne);
			if (rskip_blanks(ns, ne) > ns)
				return starts_with(ns, ne, "From:");
			eol = ne;
		}
	}
	return 0;
}

/*
 * The body's lines without quoted ones, up to where a reply's quote or
 * the signature starts.
 */
static void
trim_replies(const char *text, size_t len, GString *out)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *s, *e, *raw_e;

		if (eol == NULL)
			eol = end;
		raw_e = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		/* The signature separator is exactly "-- " (RFC 3676 4.3); "--" too, as clients trim. */
		if ((raw_e - p == 3 && memcmp(p, "-- ", 3) == 0) ||
		    (raw_e - p == 2 && memcmp(p, "--", 2) == 0))
			break;
		s = skip_blanks(p, eol);
		e = rskip_blanks(s, eol);
		if (is_reply_start(s, e, eol, end))
			break;
		if (!(s < e && *s == '>')) {
			g_string_append_len(out, p, raw_e - p);
			g_string_append_c(out, '\n');
		}
		p = eol + 1;
	}
}

/*
 * Words from text (valid UTF-8): whitespace runs become one space, an
 * empty line a sentence break, at most SPEAK_BODY_MAX characters cut at a
 * word boundary.  Returns 1 if the text was cut.
 */
static int
append_body(GString *g, const char *text)
{
	size_t count = 0, newlines = 0, last_space = 0;
	int space = 0, cut = 0;
	gunichar prev = 0;

	for (const char *p = text; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c == '\n' || is_space_cp(c) || is_junk_cp(c)) {
			newlines += c == '\n';
			space = 1;
			continue;
		}
		if (space && count > 0) {
			/* An empty line ends a thought: let the voice pause. */
			if (newlines >= 2 && !strchr(".!?:;,", (int)(prev < 0x80 ? prev : 'x'))) {
				g_string_append_c(g, '.');
				count++;
			}
			last_space = g->len;
			g_string_append_c(g, ' ');
			count++;
		}
		space = 0;
		newlines = 0;
		if (count >= SPEAK_BODY_MAX) {
			cut = 1;
			break;
		}
		g_string_append_unichar(g, c);
		prev = c;
		count++;
	}
	if (cut && last_space > 0)
		g_string_truncate(g, last_space);
	return cut;
}

/* The body text of m in UTF-8 (g_free), or NULL when it has none to read. */
static char *
body_text(GMimeMessage *m)
{
	GMimeObject *top = g_mime_message_get_mime_part(m);
	GMimeTextPart *t;
	char *raw, *valid;
	GString *g;
	size_t len;
	int html = 0;

	if ((t = find_text_part(top, "plain", 0)) == NULL) {
		if ((t = find_text_part(top, "html", 0)) == NULL)
			return NULL;
		html = 1;
	}
	if ((raw = g_mime_text_part_get_text(t)) == NULL)
		return NULL;
	len = strlen(raw);
	if (html) {
		GString *h = g_string_new(NULL);

		html_to_text(raw, len, h);
		g_free(raw);
		len = h->len;
		raw = g_string_free(h, FALSE);
	}
	if (len > SCAN_MAX)
		len = SCAN_MAX;
	/* A charset GMime could not convert leaves raw bytes: repair them. */
	valid = g_utf8_make_valid(raw, (gssize)len);
	g_free(raw);
	g = g_string_new(NULL);
	trim_replies(valid, strlen(valid), g);
	g_free(valid);
	return g_string_free(g, FALSE);
}

int
speak_text_of_message(const char *msg, size_t len, char **out, char *err, size_t errlen)
{
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *m;
	GString *g;
	char *body;
	size_t before;

	*out = NULL;
	if (msg == NULL || len == 0) {
		set_err(err, errlen, "the message is empty");
		return -1;
	}
	pthread_once(&libs_once, libs_init_once);
	stream = g_mime_stream_mem_new_with_buffer(msg, len);
	parser = g_mime_parser_new_with_stream(stream);
	g_object_unref(stream);
	m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	if (m == NULL) {
		set_err(err, errlen, "the message could not be parsed");
		return -1;
	}

	g = g_string_new("Message from ");
	if (!append_sender(g, m))
		g_string_append(g, "an unknown sender");
	before = g->len;
	g_string_append(g, ", subject ");
	if (g_mime_message_get_subject(m) == NULL ||
	    append_field(g, g_mime_message_get_subject(m), SPEAK_FIELD_MAX) == 0) {
		g_string_truncate(g, before);
		g_string_append(g, ", no subject");
	}
	before = g->len;
	g_string_append(g, ", received ");
	if (!append_date(g, m))
		g_string_truncate(g, before);
	g_string_append(g, ". ");

	body = body_text(m);
	before = g->len;
	if (body != NULL && append_body(g, body)) {
		g_string_append(g, " ... The message is longer; the rest is not read.");
	} else if (g->len == before) {
		g_string_append(g, "The message has no text.");
	} else if (!strchr(".!?", g->str[g->len - 1])) {
		g_string_append_c(g, '.');
	}
	g_string_append(g, " End of message.");
	g_free(body);
	g_object_unref(m);

	*out = xstrdup(g->str);
	g_string_free(g, TRUE);
	return 0;
}

/* ---- resampling ---- */

static unsigned
gcd(unsigned a, unsigned b)
{
	while (b != 0) {
		unsigned t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static double
sinc(double x)
{
	return x == 0.0 ? 1.0 : sin(M_PI * x) / (M_PI * x);
}

/*
 * Output sample k sits at input position k * down / up.  With up phases
 * the fractional part of that position takes only up values, so the
 * filter is tabulated once per phase: coef[p][j] weighs input sample
 * (integer position + j - half + 1) for phase p.  Each phase is
 * normalised to a gain of exactly 1 at DC.
 */
long
speak_resample(const int16_t *in, size_t n, unsigned rate_in, unsigned rate_out, int16_t **out)
{
	unsigned g, up, down, half, taps;
	double cutoff;	/* of the low-pass, as a fraction of rate_in / 2 */
	double *coef;
	uint64_t nout;
	int16_t *o;

	*out = NULL;
	if (rate_in == 0 || rate_out == 0)
		return -1;
	g = gcd(rate_in, rate_out);
	up = rate_out / g;
	down = rate_in / g;
	if (up > SPEAK_RESAMPLE_PHASES || down > SPEAK_RESAMPLE_PHASES)
		return -1;
	if (n == 0)
		return 0;
	if (n > (size_t)1 << 40)
		return -1;
	nout = ((uint64_t)n * up + down - 1) / down;
	if (nout > LONG_MAX)
		return -1;

	cutoff = 0.85 * (rate_out < rate_in ? (double)rate_out / rate_in : 1.0);
	half = (unsigned)ceil(SINC_ZEROS / cutoff);
	taps = 2 * half;
	coef = xreallocarray(NULL, (size_t)up * taps, sizeof(*coef));
	for (unsigned p = 0; p < up; p++) {
		double frac = (double)p / up, sum = 0;
		double *c = coef + (size_t)p * taps;

		for (unsigned j = 0; j < taps; j++) {
			double tau = (double)j - (half - 1) - frac;	/* in input samples */
			double w = 0.42 + 0.5 * cos(M_PI * tau / half) +
			    0.08 * cos(2 * M_PI * tau / half);	/* Blackman */

			c[j] = fabs(tau) >= half ? 0 : cutoff * sinc(cutoff * tau) * w;
			sum += c[j];
		}
		for (unsigned j = 0; j < taps; j++)
			c[j] /= sum;
	}

	o = xreallocarray(NULL, (size_t)nout, sizeof(*o));
	for (uint64_t k = 0; k < nout; k++) {
		uint64_t pos = k * down;
		int64_t base = (int64_t)(pos / up) - (int64_t)(half - 1);
		const double *c = coef + (size_t)(pos % up) * taps;
		unsigned j0 = 0, j1 = taps;
		double acc = 0;

		if (base < 0)
			j0 = (unsigned)-base;
		if (base + (int64_t)taps > (int64_t)n)
			j1 = (unsigned)((int64_t)n - base);
		for (unsigned j = j0; j < j1; j++)
			acc += c[j] * in[base + j];
		acc = nearbyint(acc);
		o[k] = acc > INT16_MAX ? INT16_MAX : acc < INT16_MIN ? INT16_MIN : (int16_t)acc;
	}
	free(coef);
	*out = o;
	return (long)nout;
}

/* ---- espeak-ng ---- */

static pthread_mutex_t espeak_lock = PTHREAD_MUTEX_INITIALIZER;
static int espeak_up;		/* under espeak_lock */
static int espeak_ended;	/* speak_shutdown() ran: no restart */
static int espeak_rate;

/* Where the synthesis callback puts samples; set under espeak_lock. */
static struct pcm {
	int16_t *s;
	size_t n, cap, max;
} *synth_into;

static int
synth_cb(short *wav, int numsamples, espeak_EVENT *events)
{
	struct pcm *p = synth_into;

	if (wav == NULL || numsamples <= 0 || p == NULL)
		return 0;
	for (int i = 0; i < numsamples; i++) {
		if (p->n >= p->max)
			return 1;	/* long enough: stop synthesis */
		if (p->n == p->cap) {
			p->cap = p->cap ? 2 * p->cap : 65536;
			p->s = xreallocarray(p->s, p->cap, sizeof(*p->s));
		}
		p->s[p->n++] = wav[i];
	}
	return 0;
}

static void
espeak_err(espeak_ng_STATUS st, const char *what, char *err, size_t errlen)
{
	char msg[160];

	espeak_ng_GetStatusCodeMessage(st, msg, sizeof(msg));
	set_err(err, errlen, "%s: %s", what, msg);
}

/* Start espeak-ng for synchronous synthesis, once.  Under espeak_lock. */
static int
espeak_start(char *err, size_t errlen)
{
	espeak_ng_ERROR_CONTEXT ctx = NULL;
	espeak_ng_STATUS st;

	if (espeak_up)
		return 0;
	if (espeak_ended) {
		set_err(err, errlen, "speech synthesis was shut down");
		return -1;
	}
	espeak_ng_InitializePath(NULL);
	if ((st = espeak_ng_Initialize(&ctx)) != ENS_OK) {
		espeak_ng_ClearErrorContext(&ctx);
		espeak_err(st, "cannot start espeak-ng (is espeak-ng-data installed?)", err, errlen);
		return -1;
	}
	if ((st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, NULL)) != ENS_OK) {
		espeak_ng_Terminate();
		espeak_err(st, "cannot start espeak-ng's output", err, errlen);
		return -1;
	}
	espeak_rate = espeak_ng_GetSampleRate();
	if (espeak_rate <= 0) {
		espeak_ng_Terminate();
		set_err(err, errlen, "espeak-ng reports a sample rate of %d", espeak_rate);
		return -1;
	}
	espeak_SetSynthCallback(synth_cb);
	espeak_up = 1;
	return 0;
}

void
speak_shutdown(void)
{
	pthread_mutex_lock(&espeak_lock);
	if (espeak_up) {
		espeak_ng_Terminate();
		espeak_up = 0;
		espeak_ended = 1;
	}
	pthread_mutex_unlock(&espeak_lock);
}

/* A voice name as espeak-ng spells them: letters, digits, '-', '_', '+'. */
static int
voice_ok(const char *v)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0 || n > VOICE_NAME_MAX)
		return 0;
	return strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+") == n;
}

static void
put16(unsigned char *p, unsigned v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
}

static void
put32(unsigned char *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

/* A RIFF/WAVE file of 16-bit mono PCM samples at rate. */
static unsigned char *
wav_build(const int16_t *s, size_t n, unsigned rate, size_t *len)
{
	uint32_t data = (uint32_t)(n * 2);
	unsigned char *w = xmalloc(SPEAK_WAV_HEADER + (size_t)data);

	memcpy(w, "RIFF", 4);
	put32(w + 4, 36 + data);
	memcpy(w + 8, "WAVEfmt ", 8);
	put32(w + 16, 16);
	put16(w + 20, 1);		/* PCM */
	put16(w + 22, 1);		/* mono */
	put32(w + 24, rate);
	put32(w + 28, rate * 2);	/* bytes per second */
	put16(w + 32, 2);		/* block align */
	put16(w + 34, 16);		/* bits per sample */
	memcpy(w + 36, "data", 4);
	put32(w + 40, data);
	for (size_t i = 0; i < n; i++)
		put16(w + SPEAK_WAV_HEADER + 2 * i, (uint16_t)s[i]);
	*len = SPEAK_WAV_HEADER + (size_t)data;
	return w;
}

int
speak_wav(const char *text, const char *voice, unsigned char **wav, size_t *wavlen,
    char *err, size_t errlen)
{
	struct pcm pcm = { 0 };
	espeak_ng_STATUS st;
	int16_t *tel = NULL;
	long ntel;
	int rate;

	*wav = NULL;
	*wavlen = 0;
	if (!voice_ok(voice)) {
		set_err(err, errlen, "\"%s\" is not a speech voice name", voice ? voice : "");
		return -1;
	}
	pthread_mutex_lock(&espeak_lock);
	if (espeak_start(err, errlen) != 0) {
		pthread_mutex_unlock(&espeak_lock);
		return -1;
	}
	if ((st = espeak_ng_SetVoiceByName(voice)) != ENS_OK) {
		pthread_mutex_unlock(&espeak_lock);
		if (st == ENS_VOICE_NOT_FOUND)
			set_err(err, errlen, "espeak-ng has no voice \"%s\" (see espeak-ng --voices)",
			    voice);
		else
			espeak_err(st, "cannot choose the voice", err, errlen);
		return -1;
	}
	rate = espeak_rate;
	pcm.max = (size_t)rate * SPEAK_MAX_SECONDS;
	synth_into = &pcm;
	st = espeak_ng_Synthesize(text, strlen(text) + 1, 0, POS_CHARACTER, 0,
	    espeakCHARS_UTF8, NULL, NULL);
	synth_into = NULL;
	pthread_mutex_unlock(&espeak_lock);
	/* A callback that stopped synthesis at the length cap is not a failure. */
	if (st != ENS_OK && st != ENS_SPEECH_STOPPED) {
		free(pcm.s);
		espeak_err(st, "speech synthesis failed", err, errlen);
		return -1;
	}
	ntel = speak_resample(pcm.s, pcm.n, (unsigned)rate, SPEAK_RATE, &tel);
	free(pcm.s);
	if (ntel < 0) {
		set_err(err, errlen, "cannot resample speech from %d Hz", rate);
		return -1;
	}
	*wav = wav_build(tel, (size_t)ntel, SPEAK_RATE, wavlen);
	free(tel);
	return 0;
}
