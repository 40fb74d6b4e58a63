/*
 * parse.c - SMTP command lines, pure functions over bytes.
 *
 * Every function here takes (pointer, length), reads nothing outside that
 * range, needs no NUL terminator, allocates nothing and does no I/O.  Each
 * scan moves forward over an explicit end pointer and gives up at the first
 * octet it cannot prove valid.  Results are built in locals and copied to
 * the caller only once the whole input has been accepted.
 *
 * Choices the RFCs leave open, written down here:
 *   - A line that is empty or holds only spaces is SMTP_PARSE_EMPTY.
 *   - A line that starts with a space before its verb is SMTP_CMD_UNKNOWN:
 *     RFC 5321 §4.1.1 puts the verb first, and guessing at what a client
 *     meant is how commands get smuggled.
 *   - The verb ends at a space or the end of the line, nothing else: "MAILX"
 *     and "QUIT\t" are unknown.  Several spaces after the verb are skipped.
 *   - Only SP separates; HTAB and other control octets are left in the
 *     argument for the per-command checks to refuse.
 *   - The length limit is checked before the characters, so a line that is
 *     both too long and dirty is reported as too long.
 */
#include "smtpd/parse.h"

#include <string.h>

struct verb_entry {
	const char *name;
	size_t len;
	enum smtp_verb verb;
};

#define VERB(n, v)	{ n, sizeof(n) - 1, v }

static const struct verb_entry smtp_verbs[] = {
	VERB("HELO", SMTP_CMD_HELO),
	VERB("EHLO", SMTP_CMD_EHLO),
	VERB("MAIL", SMTP_CMD_MAIL),
	VERB("RCPT", SMTP_CMD_RCPT),
	VERB("DATA", SMTP_CMD_DATA),
	VERB("BDAT", SMTP_CMD_BDAT),
	VERB("RSET", SMTP_CMD_RSET),
	VERB("NOOP", SMTP_CMD_NOOP),
	VERB("QUIT", SMTP_CMD_QUIT),
	VERB("VRFY", SMTP_CMD_VRFY),
	VERB("EXPN", SMTP_CMD_EXPN),
	VERB("HELP", SMTP_CMD_HELP),
	VERB("STARTTLS", SMTP_CMD_STARTTLS),
	VERB("AUTH", SMTP_CMD_AUTH),
};

/*
 * HTTP request methods.  A browser or proxy pointed at the SMTP port sends
 * "GET / HTTP/1.1" and then headers; the session drops such a client at
 * once rather than answering each header line (Postfix does the same).
 * They only count when followed by a space, as in a request line.
 */
static const struct verb_entry http_methods[] = {
	VERB("GET", SMTP_CMD_HTTP),
	VERB("POST", SMTP_CMD_HTTP),
	VERB("HEAD", SMTP_CMD_HTTP),
	VERB("PUT", SMTP_CMD_HTTP),
	VERB("DELETE", SMTP_CMD_HTTP),
	VERB("OPTIONS", SMTP_CMD_HTTP),
	VERB("CONNECT", SMTP_CMD_HTTP),
};

#undef VERB

static const char *const verb_names[SMTP_CMD__COUNT] = {
	[SMTP_CMD_UNKNOWN] = "UNKNOWN",
	[SMTP_CMD_HELO] = "HELO",
	[SMTP_CMD_EHLO] = "EHLO",
	[SMTP_CMD_MAIL] = "MAIL",
	[SMTP_CMD_RCPT] = "RCPT",
	[SMTP_CMD_DATA] = "DATA",
	[SMTP_CMD_BDAT] = "BDAT",
	[SMTP_CMD_RSET] = "RSET",
	[SMTP_CMD_NOOP] = "NOOP",
	[SMTP_CMD_QUIT] = "QUIT",
	[SMTP_CMD_VRFY] = "VRFY",
	[SMTP_CMD_EXPN] = "EXPN",
	[SMTP_CMD_HELP] = "HELP",
	[SMTP_CMD_STARTTLS] = "STARTTLS",
	[SMTP_CMD_AUTH] = "AUTH",
	[SMTP_CMD_HTTP] = "HTTP",
};

static unsigned char
to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ASCII case-insensitive comparison of two runs of n octets. */
static int
eq_nocase(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (to_lower((unsigned char)a[i]) != to_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* The table entry whose name is exactly word[0..n), or NULL. */
static const struct verb_entry *
lookup(const struct verb_entry *t, size_t count, const char *word, size_t n)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (t[i].len == n && eq_nocase(t[i].name, word, n))
			return &t[i];
	return NULL;
}

/*
 * Split a command line into verb and argument; see the top of the file for
 * the choices made.  *out is always set: on anything but SMTP_PARSE_OK it
 * holds SMTP_CMD_UNKNOWN and an empty argument at the start of the line.
 * The argument is the rest of the line after the verb and the spaces that
 * follow it, less trailing spaces; it points into line.
 */
enum smtp_parse_status
smtp_parse_command(const char *line, size_t len, struct smtp_command *out)
{
	const char *p, *end, *word;
	const struct verb_entry *e;
	size_t wlen;

	out->verb = SMTP_CMD_UNKNOWN;
	out->arg = line;
	out->arglen = 0;

	if (len > SMTP_LINE_MAX - 2)
		return SMTP_PARSE_TOO_LONG;
	if (len == 0)
		return SMTP_PARSE_EMPTY;
	if (memchr(line, '\r', len) != NULL || memchr(line, '\n', len) != NULL ||
	    memchr(line, '\0', len) != NULL)
		return SMTP_PARSE_BAD_CHAR;

	p = line;
	end = line + len;
	while (end > p && end[-1] == ' ')
		end--;
	if (end == p)
		return SMTP_PARSE_EMPTY;

	/* A leading space: no verb in first position, so unknown. */
	if (*p == ' ') {
		out->arg = p;
		out->arglen = (size_t)(end - p);
		return SMTP_PARSE_OK;
	}

	word = p;
	while (p < end && *p != ' ')
		p++;
	wlen = (size_t)(p - word);

	e = lookup(smtp_verbs, sizeof(smtp_verbs) / sizeof(smtp_verbs[0]),
	    word, wlen);
	/* The request line of HTTP always has a space after the method. */
	if (e == NULL && p < end)
		e = lookup(http_methods,
		    sizeof(http_methods) / sizeof(http_methods[0]), word, wlen);

	while (p < end && *p == ' ')
		p++;
	if (e == NULL) {
		/* Keep the whole line as the argument, for logging. */
		out->arg = word;
		out->arglen = (size_t)(end - word);
		return SMTP_PARSE_OK;
	}
	out->verb = e->verb;
	out->arg = p;
	out->arglen = (size_t)(end - p);
	return SMTP_PARSE_OK;
}

/* The upper-case name of a verb, for logs; never NULL. */
const char *
smtp_verb_name(enum smtp_verb v)
{
	if ((unsigned)v >= SMTP_CMD__COUNT || verb_names[v] == NULL)
		return "UNKNOWN";
	return verb_names[v];
}

/*
 * Where the path that starts at p ends.  A bracketed path ends at the first
 * space after its closing '>'; a '>' inside a quoted local part does not
 * close it ("<\"a> b\"@example.com>").  Anything between the '>' and that
 * space stays in the path, so addr_parse_path() refuses it instead of it
 * turning into a parameter.  Without a closing '>' the path runs to the end
 * and fails to parse.  An unbracketed path ends at the first space.
 */
static const char *
path_end(const char *p, const char *end)
{
	int quoted = 0;

	if (p < end && *p == '<') {
		for (p++; p < end; p++) {
			if (quoted) {
				if (*p == '\\' && end - p >= 2)
					p++;
				else if (*p == '"')
					quoted = 0;
			} else if (*p == '"')
				quoted = 1;
			else if (*p == '>')
				break;
		}
		if (p >= end)
			return end;
	}
	while (p < end && *p != ' ')
		p++;
	return p;
}

/* esmtp-value octets: %d33-60 / %d62-126 (RFC 5321 §4.1.2). */
static int
is_value_char(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '=';
}

/*
 * One "KEYWORD[=VALUE]" at *pp, ending at a space or end.  esmtp-keyword =
 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); the value is 1 or more value
 * octets.  Advances *pp past it.  Returns 0, or -1 if malformed.
 */
static int
scan_param(const char **pp, const char *end, struct smtp_param *prm)
{
	const char *p = *pp;

	if (p >= end || !is_alnum((unsigned char)*p))
		return -1;
	prm->key = p;
	while (p < end && (is_alnum((unsigned char)*p) || *p == '-'))
		p++;
	prm->keylen = (size_t)(p - prm->key);
	prm->value = NULL;
	prm->valuelen = 0;
	if (p < end && *p == '=') {
		p++;
		prm->value = p;
		while (p < end && is_value_char((unsigned char)*p))
			p++;
		prm->valuelen = (size_t)(p - prm->value);
		if (prm->valuelen == 0)
			return -1;
	}
	if (p < end && *p != ' ')
		return -1;
	*pp = p;
	return 0;
}

/*
 * Parse "FROM:<path> params" or "TO:<path> params"; see parse.h.  Order of
 * checks: the prefix, a path that is present, the path itself, then each
 * parameter from left to right (a malformed one, the seventeenth, or a
 * repeated keyword stops the scan).  Runs of spaces between parameters and
 * at the end are tolerated.  *out is written only on success.
 */
enum smtp_args_status
smtp_parse_path_args(const char *arg, size_t len, const char *prefix,
    int allow_no_domain, int allow_utf8, struct smtp_path_args *out,
    enum addr_error *addr_err)
{
	struct smtp_path_args a;
	const char *p, *end, *pend;
	size_t plen = strlen(prefix), i;
	enum addr_error e;

	if (addr_err != NULL)
		*addr_err = ADDR_OK;
	if (len < plen || !eq_nocase(arg, prefix, plen))
		return SMTP_ARGS_SYNTAX;
	p = arg + plen;
	end = arg + len;
	while (p < end && *p == ' ')
		p++;
	if (p >= end)
		return SMTP_ARGS_SYNTAX;	/* "MAIL FROM:" and no path */

	pend = path_end(p, end);
	memset(&a, 0, sizeof(a));
	e = addr_parse_path(p, (size_t)(pend - p), allow_no_domain, allow_utf8,
	    &a.path);
	if (e != ADDR_OK) {
		if (addr_err != NULL)
			*addr_err = e;
		return e == ADDR_ERR_PATH_TOO_LONG ? SMTP_ARGS_PATH_TOO_LONG :
		    SMTP_ARGS_BAD_PATH;
	}

	p = pend;
	for (;;) {
		struct smtp_param prm;

		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		if (a.nparams == SMTP_PARAMS_MAX)
			return SMTP_ARGS_TOO_MANY_PARAMS;
		if (scan_param(&p, end, &prm) != 0)
			return SMTP_ARGS_BAD_PARAM;
		for (i = 0; i < a.nparams; i++)
			if (a.params[i].keylen == prm.keylen &&
			    eq_nocase(a.params[i].key, prm.key, prm.keylen))
				return SMTP_ARGS_BAD_PARAM;
		a.params[a.nparams++] = prm;
	}

	/* a.path.domain points into a.path.mailbox; move it along. */
	*out = a;
	out->path.domain = out->path.mailbox +
	    (a.path.domain - a.path.mailbox);
	return SMTP_ARGS_OK;
}

/* Find a parameter by keyword (case-insensitive); NULL if absent. */
const struct smtp_param *
smtp_param_find(const struct smtp_path_args *a, const char *key)
{
	size_t klen, i;

	if (a == NULL || key == NULL)
		return NULL;
	klen = strlen(key);
	for (i = 0; i < a->nparams && i < SMTP_PARAMS_MAX; i++)
		if (a->params[i].keylen == klen &&
		    eq_nocase(a->params[i].key, key, klen))
			return &a->params[i];
	return NULL;
}

/*
 * 1 to 20 decimal digits and nothing else, checked for uint64_t overflow.
 * Leading zeros are allowed.  Returns 0 and sets *out, or -1 (*out kept).
 */
int
smtp_parse_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_digit(c))
			return -1;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(c - '0'), &v))
			return -1;
	}
	*out = v;
	return 0;
}

/*
 * "SIZE" or "SIZE LAST" (RFC 3030 §2): one space exactly, LAST in any case.
 * Returns 0 and sets *size and *last, or -1 and leaves them alone.
 */
int
smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, int *last)
{
	static const char kw[] = " LAST";
	const size_t kwlen = sizeof(kw) - 1;
	const char *sp;
	size_t nlen;
	uint64_t v;
	int l = 0;

	if (len == 0)
		return -1;
	sp = memchr(arg, ' ', len);
	nlen = sp != NULL ? (size_t)(sp - arg) : len;
	if (sp != NULL) {
		if (len - nlen != kwlen || !eq_nocase(sp, kw, kwlen))
			return -1;
		l = 1;
	}
	if (smtp_parse_number(arg, nlen, &v) != 0)
		return -1;
	*size = v;
	*last = l;
	return 0;
}

/*
 * The HELO/EHLO name: 1 to 255 octets of printable ASCII, no space.  The
 * name is not checked against the domain or address-literal grammar: many
 * clients (phones, printers, Windows hosts) send a bare or malformed host
 * name, and refusing them gains nothing.  What is refused is what could
 * corrupt a Received: header or a log line: control octets, spaces,
 * non-ASCII and overlong names.  Returns 0 if acceptable, -1 if not.
 */
int
smtp_parse_helo(const char *arg, size_t len)
{
	size_t i;

	if (len == 0 || len > ADDR_DOMAIN_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)arg[i];

		if (c <= ' ' || c >= 0x7f)
			return -1;
	}
	return 0;
}
