/*
 * reply.c - SMTP replies from a remote server, and EHLO extensions.
 *
 * The parser is a small state machine fed one octet at a time: it judges
 * the code and separator as their octets arrive, checks the length limit
 * on the partial line, and only at a line's end looks at its text (the
 * enhanced status code) and appends it to the reply.  Nothing is read
 * outside [buf, buf + len), nothing is allocated, there is no I/O.  The
 * choices the RFCs leave open are written down in reply.h.
 */
#include "aliases/reply.h"

#include <string.h>

#include "lib/log.h"

enum {
	S_LINE = 0,	/* in a line, before its line end */
	S_CR,		/* after a CR: only LF may follow */
};

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char
to_upper(unsigned char c)
{
	return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
}

/* Whether s[0..n) is word, ASCII case-insensitively. */
static int
eq_word(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (word[i] == '\0' || to_upper((unsigned char)s[i]) !=
		    (unsigned char)word[i])
			return 0;
	return word[n] == '\0';
}

/* An empty reply, before its first line. */
static void
reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->enhanced[0] = '\0';
	r->nlines = 0;
	r->nkept = 0;
	r->truncated = 0;
	r->textlen = 0;
	r->text[0] = '\0';
}

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	reply_reset(&p->reply);
	p->error = SMTP_REPLY_ERR_NONE;
	p->state = S_LINE;
	p->done = 0;
	p->linelen = 0;
}

const char *
smtp_reply_strerror(enum smtp_reply_error e)
{
	switch (e) {
	case SMTP_REPLY_ERR_NONE:
		return "no error";
	case SMTP_REPLY_ERR_EMPTY_LINE:
		return "empty line in reply";
	case SMTP_REPLY_ERR_BAD_CODE:
		return "malformed reply code";
	case SMTP_REPLY_ERR_BAD_SEPARATOR:
		return "malformed separator after reply code";
	case SMTP_REPLY_ERR_CODE_MISMATCH:
		return "reply lines with different codes";
	case SMTP_REPLY_ERR_LINE_TOO_LONG:
		return "reply line too long";
	case SMTP_REPLY_ERR_TOO_MANY_LINES:
		return "too many reply lines";
	case SMTP_REPLY_ERR_BARE_CR:
		return "CR not followed by LF in reply";
	}
	return "unknown error";
}

/*
 * Take one octet of a line, before its line end.  Positions 0-2 must be
 * the code's digits (the same as the first line's once there is one), 3
 * the separator; a '-' there on the last line allowed is already too many
 * lines.  In the text, control octets but TAB become '?'.
 */
static enum smtp_reply_error
line_octet(struct smtp_reply_parser *p, unsigned char c)
{
	const struct smtp_reply *r = &p->reply;
	size_t pos = p->linelen;

	if (pos >= SMTP_REPLY_LINE_MAX - 2)
		return SMTP_REPLY_ERR_LINE_TOO_LONG;
	if (pos < 3) {
		static const char lo[3] = { '2', '0', '0' };
		static const char hi[3] = { '5', '5', '9' };
		int digit;

		if (c < (unsigned char)lo[pos] || c > (unsigned char)hi[pos])
			return SMTP_REPLY_ERR_BAD_CODE;
		digit = pos == 0 ? r->code / 100 :
		    pos == 1 ? r->code / 10 % 10 : r->code % 10;
		if (r->nlines > 0 && c - '0' != digit)
			return SMTP_REPLY_ERR_CODE_MISMATCH;
	} else if (pos == 3) {
		if (c != ' ' && c != '-')
			return SMTP_REPLY_ERR_BAD_SEPARATOR;
		if (c == '-' && r->nlines + 1 >= SMTP_REPLY_LINES_MAX)
			return SMTP_REPLY_ERR_TOO_MANY_LINES;
	} else if ((c < 0x20 && c != '\t') || c == 0x7f)
		c = '?';
	p->line[p->linelen++] = (char)c;
	return SMTP_REPLY_ERR_NONE;
}

/* At the first octet of a line end: is there a line to end? */
static enum smtp_reply_error
line_ending(const struct smtp_reply_parser *p)
{
	if (p->linelen == 0)
		return SMTP_REPLY_ERR_EMPTY_LINE;
	if (p->linelen < 3)
		return SMTP_REPLY_ERR_BAD_CODE;
	return SMTP_REPLY_ERR_NONE;
}

/*
 * The length of the RFC 3463 enhanced status code at the start of
 * t[0..n) when its class is cls and a space or the end follows it, else 0.
 * class "." 1*3DIGIT "." 1*3DIGIT; class is 2, 4 or 5.
 */
static size_t
enhanced_len(const char *t, size_t n, int cls)
{
	size_t i = 0;
	int part;

	if (cls != 2 && cls != 4 && cls != 5)
		return 0;
	if (n < 5 || t[0] != '0' + cls)
		return 0;
	i = 1;
	for (part = 0; part < 2; part++) {
		size_t start;

		if (i >= n || t[i] != '.')
			return 0;
		start = ++i;
		while (i < n && i - start < 3 && is_digit((unsigned char)t[i]))
			i++;
		if (i == start)
			return 0;
	}
	if (i < n && t[i] != ' ')
		return 0;
	return i;
}

/*
 * A whole line has arrived (its line end seen, line_ending() passed):
 * count it, take the code from the first line, the enhanced code from the
 * first line that has one, and append its text, whole or not at all.
 * Returns 1 when it was the reply's last line.
 */
static int
line_done(struct smtp_reply_parser *p)
{
	struct smtp_reply *r = &p->reply;
	const char *t = p->line + 4;
	size_t n = p->linelen > 4 ? p->linelen - 4 : 0;
	int last = p->linelen == 3 || p->line[3] == ' ';
	size_t elen, need;

	if (r->nlines == 0)
		r->code = (p->line[0] - '0') * 100 + (p->line[1] - '0') * 10 +
		    (p->line[2] - '0');
	r->nlines++;

	elen = enhanced_len(t, n, r->code / 100);
	if (elen > 0 && r->enhanced[0] == '\0') {
		memcpy(r->enhanced, t, elen);
		r->enhanced[elen] = '\0';
	}
	if (elen > 0 && strlen(r->enhanced) == elen &&
	    memcmp(r->enhanced, t, elen) == 0) {
		t += elen;
		n -= elen;
		if (n > 0) {	/* the space after it */
			t++;
			n--;
		}
	}

	need = (r->nkept > 0 ? 1 : 0) + n;
	if (!r->truncated && r->textlen + need < sizeof(r->text)) {
		if (r->nkept > 0)
			r->text[r->textlen++] = '\n';
		memcpy(r->text + r->textlen, t, n);
		r->textlen += n;
		r->text[r->textlen] = '\0';
		r->nkept++;
	} else
		r->truncated = 1;

	p->linelen = 0;
	p->state = S_LINE;
	return last;
}

/*
 * Walk buf one octet at a time; see reply.h for what each result means.
 * On ERROR, *consumed counts the octet that proved the input malformed.
 */
enum smtp_reply_result
smtp_reply_parse(struct smtp_reply_parser *p, const char *buf, size_t len,
    size_t *consumed)
{
	enum smtp_reply_error err;
	size_t i;

	*consumed = 0;
	if (p->error != SMTP_REPLY_ERR_NONE)
		return SMTP_REPLY_ERROR;
	if (p->done) {
		reply_reset(&p->reply);
		p->done = 0;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (p->state == S_CR && c != '\n')
			err = SMTP_REPLY_ERR_BARE_CR;
		else if (p->state == S_CR || c == '\n' || c == '\r') {
			if (p->state != S_CR &&
			    (err = line_ending(p)) != SMTP_REPLY_ERR_NONE)
				goto fail;
			if (c == '\r') {
				p->state = S_CR;
				continue;
			}
			if (line_done(p)) {
				p->done = 1;
				*consumed = i + 1;
				return SMTP_REPLY_DONE;
			}
			continue;
		} else
			err = line_octet(p, c);
		if (err != SMTP_REPLY_ERR_NONE)
			goto fail;
	}
	*consumed = len;
	return SMTP_REPLY_MORE;
fail:
	p->error = err;
	*consumed = i + 1;
	return SMTP_REPLY_ERROR;
}

/*
 * Build the unescaped line (code, enhanced code, the non-empty kept lines
 * joined by single spaces, " ..." when truncated), then escape it.  The
 * text never holds a NUL, so it is walked as a string.
 */
char *
smtp_reply_render(const struct smtp_reply *r, char *dst, size_t dstlen)
{
	/* "559 " + "5.999.999 " + the text with a space per line + " ..." */
	char raw[4 + SMTP_REPLY_ENHANCED_MAX + 1 + SMTP_REPLY_TEXT_MAX + 4];
	const char *t = r->text, *end = r->text + r->textlen;
	size_t n = 0;

	if (dstlen == 0)
		return dst;
	raw[n++] = (char)('0' + r->code / 100 % 10);
	raw[n++] = (char)('0' + r->code / 10 % 10);
	raw[n++] = (char)('0' + r->code % 10);
	if (r->enhanced[0] != '\0') {
		size_t elen = strlen(r->enhanced);

		raw[n++] = ' ';
		memcpy(raw + n, r->enhanced, elen);
		n += elen;
	}
	while (t < end) {
		const char *nl = memchr(t, '\n', (size_t)(end - t));
		size_t ll = (size_t)((nl != NULL ? nl : end) - t);

		if (ll > 0) {
			raw[n++] = ' ';
			memcpy(raw + n, t, ll);
			n += ll;
		}
		t += ll + (nl != NULL ? 1 : 0);
	}
	if (r->truncated) {
		memcpy(raw + n, " ...", 4);
		n += 4;
	}
	return log_escape(dst, dstlen, raw, n);
}

/* Words of s[0..n), separated by spaces or tabs, one at a time. */
static int
next_word(const char **s, const char *end, const char **w, size_t *wlen)
{
	const char *p = *s;

	while (p < end && is_blank((unsigned char)*p))
		p++;
	if (p == end)
		return 0;
	*w = p;
	while (p < end && !is_blank((unsigned char)*p))
		p++;
	*wlen = (size_t)(p - *w);
	*s = p;
	return 1;
}

/* s[0..n) as a decimal number that fits in 64 bits; -1 if not. */
static int
parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (!is_digit((unsigned char)s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	unsigned bit;
} ehlo_keywords[] = {
	{ "PIPELINING", SMTP_EXT_PIPELINING },
	{ "SIZE", SMTP_EXT_SIZE },
	{ "8BITMIME", SMTP_EXT_8BITMIME },
	{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 },
	{ "STARTTLS", SMTP_EXT_STARTTLS },
	{ "CHUNKING", SMTP_EXT_CHUNKING },
	{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES },
	{ "DSN", SMTP_EXT_DSN },
	{ "AUTH", SMTP_EXT_AUTH },
}, auth_mechs[] = {
	{ "PLAIN", SMTP_AUTH_PLAIN },
	{ "LOGIN", SMTP_AUTH_LOGIN },
	{ "CRAM-MD5", SMTP_AUTH_CRAM_MD5 },
};

/*
 * One EHLO line s[0..end): its keyword ends at a space, a tab or '=' (the
 * last only for "AUTH=", an old form from before RFC 2554 was final).
 */
static void
ehlo_line(struct smtp_ehlo *out, const char *s, const char *end)
{
	const char *kw, *w;
	size_t kwlen, wlen, i;
	unsigned bit = 0;

	while (s < end && is_blank((unsigned char)*s))
		s++;
	kw = s;
	while (s < end && !is_blank((unsigned char)*s) && *s != '=')
		s++;
	kwlen = (size_t)(s - kw);
	for (i = 0; i < sizeof(ehlo_keywords) / sizeof(ehlo_keywords[0]); i++)
		if (eq_word(kw, kwlen, ehlo_keywords[i].name))
			bit = ehlo_keywords[i].bit;
	if (bit == 0)
		return;
	if (s < end && *s == '=') {
		if (bit != SMTP_EXT_AUTH)
			return;
		s++;
	}
	out->ext |= bit;

	if (bit == SMTP_EXT_SIZE) {
		uint64_t v;

		out->size = 0;
		if (next_word(&s, end, &w, &wlen) && parse_u64(w, wlen, &v) == 0)
			out->size = v;
	} else if (bit == SMTP_EXT_AUTH) {
		while (next_word(&s, end, &w, &wlen))
			for (i = 0; i < sizeof(auth_mechs) /
			    sizeof(auth_mechs[0]); i++)
				if (eq_word(w, wlen, auth_mechs[i].name))
					out->auth |= auth_mechs[i].bit;
	}
}

/* The kept lines after the first, one by one; see reply.h. */
int
smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out)
{
	const char *p = r->text, *end = r->text + r->textlen, *nl;

	memset(out, 0, sizeof(*out));
	if (r->code != 250)
		return -1;
	nl = memchr(p, '\n', (size_t)(end - p));
	while (nl != NULL) {
		p = nl + 1;
		nl = memchr(p, '\n', (size_t)(end - p));
		ehlo_line(out, p, nl != NULL ? nl : end);
	}
	return 0;
}
