/*
 * addr.h - RFC 5321 mailbox and path parsing, a pure function over bytes.
 *
 * addr_parse_path() takes the text between "MAIL FROM:" / "RCPT TO:" and
 * the first ESMTP parameter, i.e. "<local@domain>", "<>", or an unbracketed
 * address (accepted leniently, as most MTAs do, but flagged).  It never
 * reads past buf + len, needs no NUL terminator, allocates nothing and does
 * no I/O.
 */
#ifndef UMBOX_ADDR_H
#define UMBOX_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX	64	/* RFC 5321 §4.5.3.1.1 */
/*
 * An unquoted local part that starts "SRS0" or "SRS1" and a separator
 * (= + -, any case) may be longer: an SRS address carries another
 * address inside it, and bounces to it must be received (RFC 5321
 * §4.5.3.1 lets a server accept more than the minimum).
 */
#define ADDR_SRS_LOCAL_MAX	192
#define ADDR_DOMAIN_MAX	255	/* §4.5.3.1.2 */
#define ADDR_PATH_MAX	256	/* §4.5.3.1.3, including the brackets */

/* Flags describing what was seen; the parse can still succeed. */
#define ADDR_F_NULL		0x01	/* "<>" */
#define ADDR_F_NO_BRACKETS	0x02	/* address given without < > */
#define ADDR_F_SOURCE_ROUTE	0x04	/* "<@a,@b:user@c>": route dropped, never relay */
#define ADDR_F_QUOTED		0x08	/* local part was a quoted-string */
#define ADDR_F_RELAY_CHARS	0x10	/* local part holds '%', '!' or a quoted '@': never relay */
#define ADDR_F_ADDR_LITERAL	0x20	/* domain is [1.2.3.4] or [IPv6:...] */
#define ADDR_F_UTF8		0x40	/* non-ASCII octets (SMTPUTF8 needed) */
#define ADDR_F_NO_DOMAIN	0x80	/* bare local part, e.g. "postmaster" */

enum addr_error {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,	/* malformed */
	ADDR_ERR_LOCAL_TOO_LONG,
	ADDR_ERR_DOMAIN_TOO_LONG,
	ADDR_ERR_PATH_TOO_LONG,
	ADDR_ERR_BAD_CHAR,	/* CR, LF, NUL or another control character */
};

struct addr {
	/*
	 * The mailbox in canonical form, NUL terminated: "local@domain",
	 * with quoting kept for a quoted local part, the domain lowercased
	 * (an address literal kept as written); "" for the null path; just
	 * "local" with ADDR_F_NO_DOMAIN.
	 */
	char mailbox[ADDR_PATH_MAX + 1];
	size_t local_len;	/* bytes of mailbox[] that are the local part */
	const char *domain;	/* points into mailbox[] after '@', or "" */
	unsigned flags;
};

/*
 * Parse a path.  allow_no_domain permits a bare local part (RCPT TO:<postmaster>).
 * allow_utf8 permits UTF-8 in the local part and domain (SMTPUTF8).
 * Returns ADDR_OK and fills *out, or an error code (*out is then undefined).
 */
enum addr_error addr_parse_path(const char *buf, size_t len, int allow_no_domain,
    int allow_utf8, struct addr *out);

/* Parse a whole mailbox "local@domain" (no brackets), e.g. an alias member or CLI argument. */
enum addr_error addr_parse_mailbox(const char *buf, size_t len, int allow_utf8,
    struct addr *out);

/* A human-readable reason for an error code. */
const char *addr_strerror(enum addr_error e);

/* Is s a syntactically valid domain name (LDH labels, dots, <= 255)? */
int addr_valid_domain(const char *s, size_t len);

#endif
