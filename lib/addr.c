/*
 * addr.c - RFC 5321 path and mailbox parsing.
 *
 * One forward pass over (buf, len).  Every scanner works on a struct scan
 * holding the next unread octet and the end of the input; each one checks
 * p < end before it looks at *p, so nothing past buf + len is ever read and
 * no NUL terminator is needed.  Nothing is written to the caller's struct
 * addr until the whole input has been proven valid, so a failed parse leaves
 * no half-built address behind that could be used by mistake.
 *
 * Length limits (RFC 5321 §4.5.3.1) are counted in octets as written on the
 * wire: a quoted local part is stored verbatim, quotes and backslashes
 * included, so the stored local part is never longer than the one checked.
 * The path limit counts the angle brackets even when the client left them
 * out, so one address is accepted or refused the same way either way.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define ADDR_LABEL_MAX	63	/* RFC 1035 §2.3.4 */

struct scan {
	const unsigned char *p;		/* next unread octet */
	const unsigned char *end;	/* one past the last octet; never read */
	int allow_utf8;
	unsigned flags;			/* ADDR_F_* seen so far */
};

static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_letdig(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

static int
is_hexdig(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* atext of RFC 5322 §3.2.3, ASCII only. */
static int
is_atext(unsigned char c)
{
	if (is_letdig(c))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '/': case '=': case '?':
	case '^': case '_': case '`': case '{': case '|': case '}':
	case '~':
		return 1;
	default:
		return 0;
	}
}

/* Characters that let a local part name another host (RFC 5321 §3.6.1). */
static int
is_relay_char(unsigned char c)
{
	return c == '%' || c == '!' || c == '@';
}

/*
 * The length of the well-formed UTF-8 sequence at p (2 to 4), or 0 if the
 * octets there are not one: a stray continuation byte, an overlong form, a
 * surrogate, a code point above U+10FFFF or a sequence cut short by end.
 * Follows the table of RFC 3629 §4 so that no octet string has two readings.
 */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;		/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;		/* above U+10FFFF */
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Accept one non-ASCII character at s->p, which the caller has seen is
 * >= 0x80.  Returns its length, or 0 if UTF-8 is not allowed here or the
 * octets are not valid UTF-8; both are syntax errors for the caller.
 */
static size_t
scan_utf8_char(struct scan *s)
{
	size_t n;

	if (!s->allow_utf8)
		return 0;
	n = utf8_len(s->p, s->end);
	if (n != 0)
		s->flags |= ADDR_F_UTF8;
	return n;
}

/*
 * Dot-string = Atom *("." Atom), Atom = 1*atext (RFC 5321 §4.1.2), with
 * UTF8-non-ascii added to atext under SMTPUTF8 (RFC 6531 §3.3).  Stops at
 * the first octet that cannot continue it and leaves s->p there.  '%' and
 * '!' are legal atext but mark the address as a relay attempt.
 */
/* The longest local part that may start at p: see ADDR_SRS_LOCAL_MAX. */
static size_t
local_max(const unsigned char *p, const unsigned char *end)
{
	if (end - p >= 5 && (p[0] | 0x20) == 's' && (p[1] | 0x20) == 'r' &&
	    (p[2] | 0x20) == 's' && (p[3] == '0' || p[3] == '1') &&
	    (p[4] == '=' || p[4] == '+' || p[4] == '-'))
		return ADDR_SRS_LOCAL_MAX;
	return ADDR_LOCAL_MAX;
}

static enum addr_error
scan_dot_string(struct scan *s)
{
	const unsigned char *start = s->p;
	size_t max = local_max(s->p, s->end);
	int need_atom = 1;	/* at the start and after every dot */
	size_t n;

	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '.') {
			if (need_atom)
				return ADDR_ERR_SYNTAX;
			need_atom = 1;
			n = 1;
		} else if (c < 0x80 && is_atext(c)) {
			if (is_relay_char(c))
				s->flags |= ADDR_F_RELAY_CHARS;
			need_atom = 0;
			n = 1;
		} else if (c >= 0x80) {
			if ((n = scan_utf8_char(s)) == 0)
				return ADDR_ERR_SYNTAX;
			need_atom = 0;
		} else
			break;
		if ((size_t)(s->p - start) + n > max)
			return ADDR_ERR_LOCAL_TOO_LONG;
		s->p += n;
	}
	if (need_atom)		/* empty, or ends with a dot */
		return ADDR_ERR_SYNTAX;
	return ADDR_OK;
}

/*
 * Quoted-string = DQUOTE *QcontentSMTP DQUOTE (RFC 5321 §4.1.2): qtextSMTP
 * is printable ASCII but '"' and '\', quoted-pairSMTP is '\' and one
 * printable ASCII octet.  s->p is on the opening quote; on success it is
 * just past the closing one.  Any '@', '%' or '!' inside, escaped or not,
 * marks the address as a relay attempt ("user@other"@here).
 */
static enum addr_error
scan_quoted_string(struct scan *s)
{
	const unsigned char *start = s->p;
	size_t n;
	int done = 0;

	s->p++;
	while (!done) {
		unsigned char c;

		if (s->p >= s->end)
			return ADDR_ERR_SYNTAX;		/* unterminated */
		c = *s->p;
		if (c == '"') {
			done = 1;
			n = 1;
		} else if (c == '\\') {
			if (s->end - s->p < 2)
				return ADDR_ERR_SYNTAX;
			c = s->p[1];
			if (c < 0x20 || c > 0x7e)
				return ADDR_ERR_SYNTAX;
			n = 2;
		} else if (c >= 0x20 && c <= 0x7e)
			n = 1;
		else if (c >= 0x80) {
			if ((n = scan_utf8_char(s)) == 0)
				return ADDR_ERR_SYNTAX;
		} else
			return ADDR_ERR_SYNTAX;
		if (is_relay_char(c))
			s->flags |= ADDR_F_RELAY_CHARS;
		if ((size_t)(s->p - start) + n > ADDR_LOCAL_MAX)
			return ADDR_ERR_LOCAL_TOO_LONG;
		s->p += n;
	}
	return ADDR_OK;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 §4.1.2): labels of 1 to 63 octets of letters, digits and
 * hyphens, not starting or ending with a hyphen.  Under SMTPUTF8 a
 * non-ASCII character counts as a letter (U-labels, RFC 6531 §3.3); label
 * lengths are then counted in octets, which is stricter than IDNA.  A
 * trailing dot or an empty label is a syntax error.  Stops at the first
 * octet that cannot continue the domain and leaves s->p there.
 */
static enum addr_error
scan_domain(struct scan *s)
{
	const unsigned char *start = s->p;

	for (;;) {
		const unsigned char *label = s->p;
		unsigned char last = 0;
		size_t n;

		while (s->p < s->end) {
			unsigned char c = *s->p;

			if (c < 0x80 && is_letdig(c))
				n = 1;
			else if (c == '-') {
				if (s->p == label)
					return ADDR_ERR_SYNTAX;
				n = 1;
			} else if (c >= 0x80) {
				if ((n = scan_utf8_char(s)) == 0)
					return ADDR_ERR_SYNTAX;
			} else
				break;
			if ((size_t)(s->p - start) + n > ADDR_DOMAIN_MAX)
				return ADDR_ERR_DOMAIN_TOO_LONG;
			if ((size_t)(s->p - label) + n > ADDR_LABEL_MAX)
				return ADDR_ERR_SYNTAX;
			last = c;
			s->p += n;
		}
		if (s->p == label || last == '-')
			return ADDR_ERR_SYNTAX;
		if (s->p >= s->end || *s->p != '.')
			return ADDR_OK;
		s->p++;
	}
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal ) "]"
 * (RFC 5321 §4.1.3).  The tag "IPv6:" is matched without regard to case, as
 * ABNF strings are; general address literals with other tags are refused.
 * The address itself is checked by inet_pton() on a bounded NUL-terminated
 * copy, after a character filter so only digits, hex letters, ':' and '.'
 * ever reach it.  s->p is on the '['; on success it is just past the ']'.
 */
static enum addr_error
scan_address_literal(struct scan *s)
{
	static const char tag[] = "ipv6:";	/* compared lowercased */
	const size_t taglen = sizeof(tag) - 1;
	char text[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	const unsigned char *body;
	size_t blen, i;
	int family = AF_INET;

	s->p++;
	body = s->p;
	while (s->p < s->end && *s->p != ']') {
		if ((size_t)(s->p - body) >= taglen + sizeof(text))
			return ADDR_ERR_SYNTAX;
		s->p++;
	}
	if (s->p >= s->end)
		return ADDR_ERR_SYNTAX;
	blen = (size_t)(s->p - body);
	s->p++;

	if (blen >= taglen) {
		for (i = 0; i < taglen; i++) {
			unsigned char c = body[i];

			if (c >= 'A' && c <= 'Z')
				c = (unsigned char)(c - 'A' + 'a');
			if (c != (unsigned char)tag[i])
				break;
		}
		if (i == taglen) {
			family = AF_INET6;
			body += taglen;
			blen -= taglen;
		}
	}
	if (blen == 0 || blen >= sizeof(text))
		return ADDR_ERR_SYNTAX;
	for (i = 0; i < blen; i++) {
		unsigned char c = body[i];

		if (family == AF_INET ? !(is_digit(c) || c == '.') :
		    !(is_hexdig(c) || c == ':' || c == '.'))
			return ADDR_ERR_SYNTAX;
		text[i] = (char)c;
	}
	text[blen] = '\0';
	if (inet_pton(family, text, bin) != 1)
		return ADDR_ERR_SYNTAX;
	s->flags |= ADDR_F_ADDR_LITERAL;
	return ADDR_OK;
}

/*
 * A-d-l = At-domain *( "," At-domain ) followed by ":" (RFC 5321 §4.1.2).
 * The route is checked, then dropped: RFC 5321 Appendix C says to ignore
 * it, and an address that came with one must never be relayed.  s->p is on
 * the first '@'; on success it is just past the ':'.
 */
static enum addr_error
scan_route(struct scan *s)
{
	enum addr_error e;

	for (;;) {
		if (s->p >= s->end || *s->p != '@')
			return ADDR_ERR_SYNTAX;
		s->p++;
		if ((e = scan_domain(s)) != ADDR_OK)
			return e;
		if (s->p >= s->end)
			return ADDR_ERR_SYNTAX;
		if (*s->p == ':') {
			s->p++;
			s->flags |= ADDR_F_SOURCE_ROUTE;
			return ADDR_OK;
		}
		if (*s->p != ',')
			return ADDR_ERR_SYNTAX;
		s->p++;
	}
}

/*
 * The parser behind both entry points.  as_path selects addr_parse_path()
 * (brackets, the null path and source routes allowed) over
 * addr_parse_mailbox() (a bare local@domain only).
 *
 * Order of checks: a control octet anywhere wins over everything, because
 * CR, LF and NUL must be reported as such wherever they hide; then syntax
 * and component limits in the order the scan meets them; then the length of
 * the whole path once it is known to be well formed.
 */
static enum addr_error
parse(const char *buf, size_t len, int as_path, int allow_no_domain,
    int allow_utf8, struct addr *out)
{
	struct scan s;
	const unsigned char *local, *dom = NULL;
	size_t local_len, dom_len = 0, i;
	int bracketed = 0;
	enum addr_error e;
	char *w;

	if (buf == NULL || len == 0)
		return ADDR_ERR_SYNTAX;
	for (i = 0; i < len; i++)
		if (is_ctl((unsigned char)buf[i]))
			return ADDR_ERR_BAD_CHAR;

	s.p = (const unsigned char *)buf;
	s.end = s.p + len;
	s.allow_utf8 = allow_utf8;
	s.flags = 0;

	if (as_path && *s.p == '<') {
		bracketed = 1;
		s.p++;
		if (s.p < s.end && *s.p == '>') {
			if (s.end - s.p != 1)
				return ADDR_ERR_SYNTAX;
			out->mailbox[0] = '\0';
			out->local_len = 0;
			out->domain = out->mailbox;
			out->flags = ADDR_F_NULL;
			return ADDR_OK;
		}
		if (s.p < s.end && *s.p == '@') {
			if ((e = scan_route(&s)) != ADDR_OK)
				return e;
			/* The route is dropped; UTF8 describes the mailbox. */
			s.flags &= ~ADDR_F_UTF8;
		}
	} else if (as_path)
		s.flags |= ADDR_F_NO_BRACKETS;

	if (s.p >= s.end)
		return ADDR_ERR_SYNTAX;
	local = s.p;
	if (*s.p == '"') {
		unsigned before = s.flags;

		s.flags |= ADDR_F_QUOTED;
		e = scan_quoted_string(&s);
		if (e == ADDR_OK && s.p - local > 2 &&
		    memchr(local + 1, '\\', (size_t)(s.p - local - 2)) == NULL) {
			/*
			 * A quoted string that is a dot-string too ("postmaster")
			 * names the same mailbox as without its quotes (RFC 5321
			 * §4.1.2): kept in that form, and judged as it.
			 */
			struct scan in = { local + 1, s.p - 1, s.allow_utf8, before };

			if (scan_dot_string(&in) == ADDR_OK && in.p == in.end) {
				local++;
				s.flags = in.flags;
				local_len = (size_t)(in.end - local);
				goto local_done;
			}
		}
	} else
		e = scan_dot_string(&s);
	if (e != ADDR_OK)
		return e;
	local_len = (size_t)(s.p - local);
local_done:

	if (s.p < s.end && *s.p == '@') {
		s.p++;
		dom = s.p;
		if (s.p < s.end && *s.p == '[')
			e = scan_address_literal(&s);
		else
			e = scan_domain(&s);
		if (e != ADDR_OK)
			return e;
		dom_len = (size_t)(s.p - dom);
	} else if (allow_no_domain && !(s.flags & ADDR_F_SOURCE_ROUTE))
		s.flags |= ADDR_F_NO_DOMAIN;
	else
		return ADDR_ERR_SYNTAX;

	if (bracketed) {
		if (s.p >= s.end || *s.p != '>')
			return ADDR_ERR_SYNTAX;
		s.p++;
	}
	if (s.p != s.end)
		return ADDR_ERR_SYNTAX;

	/* Count the brackets the client left out; see the top of the file. */
	if (bracketed ? len > ADDR_PATH_MAX : len > ADDR_PATH_MAX - 2)
		return ADDR_ERR_PATH_TOO_LONG;
	/* Implied by the check above; kept so the copy below is safe alone. */
	if (local_len + (dom != NULL ? 1 + dom_len : 0) > ADDR_PATH_MAX)
		return ADDR_ERR_PATH_TOO_LONG;

	w = out->mailbox;
	memcpy(w, local, local_len);
	w += local_len;
	if (dom != NULL) {
		*w++ = '@';
		out->domain = w;
		for (i = 0; i < dom_len; i++) {
			unsigned char c = dom[i];

			if (!(s.flags & ADDR_F_ADDR_LITERAL) &&
			    c >= 'A' && c <= 'Z')
				c = (unsigned char)(c - 'A' + 'a');
			*w++ = (char)c;
		}
	} else
		out->domain = w;
	*w = '\0';
	out->local_len = local_len;
	out->flags = s.flags;
	return ADDR_OK;
}

enum addr_error
addr_parse_path(const char *buf, size_t len, int allow_no_domain,
    int allow_utf8, struct addr *out)
{
	return parse(buf, len, 1, allow_no_domain, allow_utf8, out);
}

enum addr_error
addr_parse_mailbox(const char *buf, size_t len, int allow_utf8,
    struct addr *out)
{
	return parse(buf, len, 0, 0, allow_utf8, out);
}

const char *
addr_strerror(enum addr_error e)
{
	switch (e) {
	case ADDR_OK:
		return "ok";
	case ADDR_ERR_SYNTAX:
		return "syntax error in address";
	case ADDR_ERR_LOCAL_TOO_LONG:
		return "local part too long";
	case ADDR_ERR_DOMAIN_TOO_LONG:
		return "domain too long";
	case ADDR_ERR_PATH_TOO_LONG:
		return "path too long";
	case ADDR_ERR_BAD_CHAR:
		return "control character in address";
	}
	return "unknown address error";
}

/*
 * A whole string that is an ASCII domain name: LDH labels of 1 to 63
 * octets joined by single dots, no trailing dot, at most 255 octets.
 * Address literals and U-labels are not domain names here.
 */
int
addr_valid_domain(const char *s, size_t len)
{
	struct scan sc;

	if (s == NULL || len == 0 || len > ADDR_DOMAIN_MAX)
		return 0;
	sc.p = (const unsigned char *)s;
	sc.end = sc.p + len;
	sc.allow_utf8 = 0;
	sc.flags = 0;
	if (scan_domain(&sc) != ADDR_OK)
		return 0;
	return sc.p == sc.end;
}
