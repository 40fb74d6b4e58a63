/*
 * parse.c - POP3 command lines, pure functions over bytes.
 *
 * Every function here takes (pointer, length), reads nothing outside that
 * range, needs no NUL terminator, allocates nothing and does no I/O.  Scans
 * move forward over an explicit end pointer and stop at the first octet
 * they cannot prove valid.  The result is built in a local and copied to
 * the caller once, so *out is always whole.
 *
 * Choices the RFCs leave open, written down here:
 *   - The length limit is checked first, so a line that is both too long
 *     and dirty is POP3_PARSE_TOO_LONG.  Then CR, LF and NUL anywhere are
 *     POP3_PARSE_BAD_CHAR.
 *   - A line that is empty or holds only spaces is POP3_PARSE_EMPTY.
 *   - The keyword is everything before the first space (RFC 1939 §3: 3-4
 *     printable characters, case-insensitive).  It ends at a space or at
 *     the end of the line and nowhere else: "USERX", "USER\tbob" and a line
 *     that starts with a space are POP3_CMD_UNKNOWN with POP3_PARSE_OK.
 *   - Spaces at the end of the line are not an argument ("QUIT ", "RETR
 *     1 "): clients that send them mean nothing by them, and a QUIT
 *     refused for one would drop the session's deletions (Dovecot takes
 *     them too).  rest keeps them.
 *   - Otherwise arguments are separated by exactly one space.  An empty
 *     argument - two spaces in a row ("TOP 1  2") - is
 *     POP3_PARSE_TOO_MANY_ARGS, the same code as a third argument: both
 *     mean "the arguments do not split into at most POP3_ARGS_MAX words",
 *     and the session answers them with the same -ERR.  POP3_PARSE_EMPTY
 *     stays reserved for a line with no command at all, which a session may
 *     treat more gently than a malformed one.
 *   - PASS is never split: its one argument is the whole rest of the line,
 *     spaces included (RFC 1939 §7 allows spaces in the password), so it
 *     never fails on spaces.  args[0] == rest and nargs is 1, or 0 when
 *     nothing follows "PASS ".
 *   - AUTH is split like every other command: args[0] is the mechanism and
 *     args[1] the initial response.  Neither may hold a space (RFC 5034 §4:
 *     the initial response is base64 or "="), so a third word is
 *     POP3_PARSE_TOO_MANY_ARGS rather than something the SASL code has to
 *     reject later; that keeps "no argument holds a space" true for every
 *     command but PASS.
 *   - An unknown keyword is not split either: nargs is 0 and rest is what
 *     follows its first space.
 *   - On POP3_PARSE_TOO_MANY_ARGS the verb is kept, so the session can name
 *     the command in its reply and log, and rest is set, but nargs is 0.
 *     On every other failure verb is POP3_CMD_UNKNOWN, nargs 0 and rest
 *     empty at the start of the line.
 *   - Octets other than CR, LF, NUL and space are not judged here; each
 *     command checks its own arguments (numbers through pop3_parse_number).
 */
#include "pop3d/parse.h"

#include <string.h>

struct verb_entry {
	const char *name;
	size_t len;
	enum pop3_verb verb;
};

#define VERB(n, v)	{ n, sizeof(n) - 1, v }

static const struct verb_entry pop3_verbs[] = {
	VERB("USER", POP3_CMD_USER),
	VERB("PASS", POP3_CMD_PASS),
	VERB("STAT", POP3_CMD_STAT),
	VERB("LIST", POP3_CMD_LIST),
	VERB("RETR", POP3_CMD_RETR),
	VERB("DELE", POP3_CMD_DELE),
	VERB("NOOP", POP3_CMD_NOOP),
	VERB("RSET", POP3_CMD_RSET),
	VERB("QUIT", POP3_CMD_QUIT),
	VERB("TOP", POP3_CMD_TOP),
	VERB("UIDL", POP3_CMD_UIDL),
	VERB("CAPA", POP3_CMD_CAPA),
	VERB("STLS", POP3_CMD_STLS),
	VERB("AUTH", POP3_CMD_AUTH),
	VERB("APOP", POP3_CMD_APOP),
};

#undef VERB

static const char *const verb_names[POP3_CMD__COUNT] = {
	[POP3_CMD_UNKNOWN] = "UNKNOWN",
	[POP3_CMD_USER] = "USER",
	[POP3_CMD_PASS] = "PASS",
	[POP3_CMD_STAT] = "STAT",
	[POP3_CMD_LIST] = "LIST",
	[POP3_CMD_RETR] = "RETR",
	[POP3_CMD_DELE] = "DELE",
	[POP3_CMD_NOOP] = "NOOP",
	[POP3_CMD_RSET] = "RSET",
	[POP3_CMD_QUIT] = "QUIT",
	[POP3_CMD_TOP] = "TOP",
	[POP3_CMD_UIDL] = "UIDL",
	[POP3_CMD_CAPA] = "CAPA",
	[POP3_CMD_STLS] = "STLS",
	[POP3_CMD_AUTH] = "AUTH",
	[POP3_CMD_APOP] = "APOP",
};

static unsigned char
to_upper(unsigned char c)
{
	return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
}

/*
 * The verb whose name is exactly word[0..n) in any ASCII case, or
 * POP3_CMD_UNKNOWN.  Names are upper case, so only word is folded.
 */
static enum pop3_verb
lookup(const char *word, size_t n)
{
	size_t i, k;

	for (i = 0; i < sizeof(pop3_verbs) / sizeof(pop3_verbs[0]); i++) {
		if (pop3_verbs[i].len != n)
			continue;
		for (k = 0; k < n; k++)
			if (to_upper((unsigned char)word[k]) !=
			    (unsigned char)pop3_verbs[i].name[k])
				break;
		if (k == n)
			return pop3_verbs[i].verb;
	}
	return POP3_CMD_UNKNOWN;
}

/*
 * Split p[0..end) into words separated by single spaces, into c->args.
 * Returns 0, or -1 for an empty word (p == end included: the caller only
 * gets here after a space, so nothing after it is an empty argument) or
 * more than POP3_ARGS_MAX words.  c->nargs is only set on success.
 */
static int
split_args(const char *p, const char *end, struct pop3_command *c)
{
	size_t n = 0;

	for (;;) {
		const char *word = p;

		while (p < end && *p != ' ')
			p++;
		if (p == word || n == POP3_ARGS_MAX)
			return -1;
		c->args[n].p = word;
		c->args[n].len = (size_t)(p - word);
		n++;
		if (p == end)
			break;
		p++;		/* the one space; a word must follow it */
	}
	c->nargs = n;
	return 0;
}

/*
 * Parse one command line without its CRLF; see the top of the file for
 * the choices made.  *out is always set, whatever the status.  Every
 * pointer in it points into line[0..len] (rest and args may sit at
 * line + len when empty).
 */
enum pop3_parse_status
pop3_parse_command(const char *line, size_t len, struct pop3_command *out)
{
	static const char nothing[1];
	struct pop3_command c;
	const char *p, *end, *word;
	size_t i;
	int spaced;

	if (line == NULL)
		line = nothing;		/* only meaningful with len 0 */
	memset(&c, 0, sizeof(c));
	c.verb = POP3_CMD_UNKNOWN;
	c.rest.p = line;
	c.rest.len = 0;
	for (i = 0; i < POP3_ARGS_MAX; i++) {
		c.args[i].p = line;
		c.args[i].len = 0;
	}
	*out = c;

	if (len > POP3_LINE_MAX - 2)
		return POP3_PARSE_TOO_LONG;
	if (memchr(line, '\r', len) != NULL || memchr(line, '\n', len) != NULL ||
	    memchr(line, '\0', len) != NULL)
		return POP3_PARSE_BAD_CHAR;

	p = line;
	end = line + len;
	while (p < end && *p == ' ')
		p++;
	if (p == end)
		return POP3_PARSE_EMPTY;

	p = line;
	word = p;
	while (p < end && *p != ' ')
		p++;
	c.verb = lookup(word, (size_t)(p - word));
	spaced = p < end;
	if (spaced)
		p++;		/* the one space after the keyword */
	c.rest.p = p;
	c.rest.len = (size_t)(end - p);

	if (c.verb == POP3_CMD_UNKNOWN) {
		*out = c;
		return POP3_PARSE_OK;
	}
	if (c.verb == POP3_CMD_PASS) {
		if (c.rest.len > 0) {
			c.args[0] = c.rest;
			c.nargs = 1;
		}
		*out = c;
		return POP3_PARSE_OK;
	}
	/* The keyword alone, or followed by spaces only: no arguments. */
	while (end > p && end[-1] == ' ')
		end--;
	if (!spaced || p == end) {
		*out = c;
		return POP3_PARSE_OK;
	}
	if (split_args(p, end, &c) != 0) {
		for (i = 0; i < POP3_ARGS_MAX; i++) {
			c.args[i].p = line;
			c.args[i].len = 0;
		}
		c.nargs = 0;
		*out = c;
		return POP3_PARSE_TOO_MANY_ARGS;
	}
	*out = c;
	return POP3_PARSE_OK;
}

/* The upper-case name of a verb, for logs and replies; never NULL. */
const char *
pop3_verb_name(enum pop3_verb v)
{
	if ((unsigned)v >= POP3_CMD__COUNT || verb_names[v] == NULL)
		return "UNKNOWN";
	return verb_names[v];
}

/*
 * A decimal number in [min, max]: digits only, no sign, no overflow of
 * unsigned long.  Leading zeros are read as Dovecot reads them ("01" is
 * 1); the line's own limit bounds how many.  Returns 0 and sets *out, or
 * -1 and leaves *out alone.
 */
int
pop3_parse_number(const char *s, size_t len, unsigned long min,
    unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < '0' || ch > '9')
			return -1;
		if (__builtin_mul_overflow(v, 10UL, &v) ||
		    __builtin_add_overflow(v, (unsigned long)(ch - '0'), &v))
			return -1;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
