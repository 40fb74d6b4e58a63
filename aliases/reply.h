/*
 * reply.h - SMTP replies from a remote server (RFC 5321 §4.2), and the
 * extensions an EHLO reply offers.  Pure functions over bytes: no I/O, no
 * allocation.
 *
 * Every byte a server sends is hostile input (OpenSMTPD CVE-2020-8794), so
 * the outbound client reads replies through this one parser and nothing
 * else.  It is incremental: hand it whatever the socket gave, it takes
 * what it needs and says how far it got.
 *
 *	struct smtp_reply_parser p;
 *	smtp_reply_parser_init(&p);
 *	...on every read:
 *	while (len > 0) {
 *		switch (smtp_reply_parse(&p, buf, len, &used)) {
 *		case SMTP_REPLY_MORE:	return;		// used == len
 *		case SMTP_REPLY_DONE:	handle(&p.reply); buf += used; len -= used; break;
 *		case SMTP_REPLY_ERROR:	drop the connection; log smtp_reply_strerror(p.error)
 *		}
 *	}
 *
 * What is accepted, and what the RFC leaves to us:
 *   - A reply is lines "DDD-text", then one "DDD text" or "DDD" alone.  A
 *     "DDD " with nothing after the space is taken as "DDD".  Every line
 *     carries the first line's code.  Digits: 2..5, 0..5, 0..9.  Anything
 *     else after the digits (a tab, a fourth digit) is an error.
 *   - Lines end at CRLF, or at a bare LF: many servers and appliances send
 *     those, Postfix and OpenSMTPD accept them, and only we interpret the
 *     bytes, so there is no second reader to disagree with (the smuggling
 *     attacks need two).  A CR not followed by LF is an error, and so is an
 *     empty line.
 *   - A line holds at most SMTP_REPLY_LINE_MAX - 2 octets before its line
 *     end (RFC 5321 §4.5.3.1.5 says 512 with CRLF; we are lenient up to
 *     2048, as for the commands we accept).  The limit is checked as bytes
 *     arrive, not once a line is complete.  A reply has at most
 *     SMTP_REPLY_LINES_MAX lines.
 *   - In the text, TAB and octets 0x20..0x7e are kept; octets >= 0x80 are
 *     kept raw (SMTPUTF8 servers send UTF-8); NUL, the other C0 controls and
 *     DEL are replaced with '?'.  Replacing, as Postfix does, rather than
 *     refusing, so that one stray byte in a banner does not make a whole
 *     destination undeliverable; the stored text never holds a NUL, CR or
 *     LF of the server's, only the '\n' that joins lines.
 *   - Errors are found at the first byte that proves the input malformed,
 *     so where a reply fails does not depend on how it was split into reads.
 *
 * After the reply to STARTTLS, bytes left over (used < len, or more already
 * buffered) must make the caller drop the connection: they were sent before
 * the handshake and must not be read as if they came through TLS
 * (CVE-2011-0411).
 */
#ifndef UMBOX_ALIASES_REPLY_H
#define UMBOX_ALIASES_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_LINE_MAX	2048	/* one line, its CRLF included */
#define SMTP_REPLY_LINES_MAX	100	/* lines in one reply */
#define SMTP_REPLY_TEXT_MAX	4096	/* joined text kept, NUL included */
#define SMTP_REPLY_ENHANCED_MAX	10	/* "5.999.999" and its NUL */
#define SMTP_REPLY_RENDER_MAX	512	/* a good size for smtp_reply_render() */

enum smtp_reply_result {
	SMTP_REPLY_MORE = 0,	/* every byte offered was taken; send more */
	SMTP_REPLY_DONE,	/* a whole reply is in p->reply */
	SMTP_REPLY_ERROR,	/* malformed: drop the connection; see p->error */
};

enum smtp_reply_error {
	SMTP_REPLY_ERR_NONE = 0,
	SMTP_REPLY_ERR_EMPTY_LINE,	/* a line end with nothing before it */
	SMTP_REPLY_ERR_BAD_CODE,	/* not three digits 2-5, 0-5, 0-9 */
	SMTP_REPLY_ERR_BAD_SEPARATOR,	/* neither ' ', '-' nor the line end after the code */
	SMTP_REPLY_ERR_CODE_MISMATCH,	/* a line's code differs from the first line's */
	SMTP_REPLY_ERR_LINE_TOO_LONG,	/* more than SMTP_REPLY_LINE_MAX - 2 octets */
	SMTP_REPLY_ERR_TOO_MANY_LINES,	/* more than SMTP_REPLY_LINES_MAX lines */
	SMTP_REPLY_ERR_BARE_CR,		/* CR followed by anything but LF */
};

/*
 * One parsed reply.  text holds the lines' texts (what follows each line's
 * code and separator, and its enhanced status code when that is the
 * reply's) joined with '\n' and NUL-terminated.  Only whole lines are kept:
 * when the next line's text would not fit in SMTP_REPLY_TEXT_MAX,
 * truncated is set and that line and all later ones are left out, so a
 * cut can never turn "STARTTLSX" into "STARTTLS".
 *
 * The enhanced status code (RFC 3463 "class.subject.detail", 1 to 3 digits
 * each) is recognized at the start of a line's text when its class equals
 * the code's first digit (so never on 3xx) and it is followed by a space
 * or the line end.  The first line that has one gives the reply's
 * enhanced; from then on a line that starts with that same code has it
 * (and one space after it) left out of its text; a different code stays
 * in the text.
 */
struct smtp_reply {
	int code;			/* 200..559 */
	char enhanced[SMTP_REPLY_ENHANCED_MAX];	/* "5.1.1", or "" */
	size_t nlines;			/* lines received, 1..SMTP_REPLY_LINES_MAX */
	size_t nkept;			/* leading lines whose text is in text */
	int truncated;			/* nkept < nlines */
	size_t textlen;			/* strlen(text) */
	char text[SMTP_REPLY_TEXT_MAX];
};

/* The parser's own; the caller only reads reply and error. */
struct smtp_reply_parser {
	struct smtp_reply reply;	/* valid after DONE, until the next call */
	enum smtp_reply_error error;	/* set with ERROR */
	int state;
	int done;			/* the last call returned DONE */
	size_t linelen;
	char line[SMTP_REPLY_LINE_MAX];	/* the current line, without its end */
};

/* Ready for the first byte of a reply; also clears a sticky error. */
void smtp_reply_parser_init(struct smtp_reply_parser *p);

/*
 * Parse bytes buf[0..len).  *consumed is how many were taken:
 *   MORE	all of them (len); the reply goes on in the next call.
 *   DONE	up to and including the LF that ended the reply; the rest
 *		belongs to the next reply (pipelining).  p->reply holds the
 *		reply until the next call, which starts a new one.
 *   ERROR	up to and including the byte that proved the input malformed.
 *		The error is sticky: later calls return ERROR and take nothing
 *		until smtp_reply_parser_init().
 * len may be 0 (MORE, or ERROR when sticky); buf needs no NUL terminator.
 */
enum smtp_reply_result smtp_reply_parse(struct smtp_reply_parser *p,
    const char *buf, size_t len, size_t *consumed);

/* What an error means, for logs; never NULL. */
const char *smtp_reply_strerror(enum smtp_reply_error e);

/*
 * One line for logs, the queue's last error and DSNs:
 *     550 5.1.1 <x@y>: user unknown
 * The code, the enhanced code when there is one, then the text with its
 * lines joined by spaces and " ..." after it when it was truncated.  Then
 * escaped as log_escape() does: '\\' and '"' get a backslash, other octets
 * outside 0x20..0x7e (TAB and UTF-8 included) become \xHH, so a server
 * can neither forge a log field nor slip control bytes into a terminal.
 * Cut to fit dstlen (ending in "..." when cut) and always NUL-terminated
 * when dstlen > 0; room for the "..." is always kept, so a line comes out
 * whole only when dstlen exceeds its escaped length by 4.  Returns dst.
 */
char *smtp_reply_render(const struct smtp_reply *r, char *dst, size_t dstlen);

/* Service extensions an EHLO reply offers (smtp_ehlo.ext). */
#define SMTP_EXT_PIPELINING		0x001u	/* RFC 2920 */
#define SMTP_EXT_SIZE			0x002u	/* RFC 1870 */
#define SMTP_EXT_8BITMIME		0x004u	/* RFC 6152 */
#define SMTP_EXT_SMTPUTF8		0x008u	/* RFC 6531 */
#define SMTP_EXT_STARTTLS		0x010u	/* RFC 3207 */
#define SMTP_EXT_CHUNKING		0x020u	/* RFC 3030 */
#define SMTP_EXT_ENHANCEDSTATUSCODES	0x040u	/* RFC 2034 */
#define SMTP_EXT_DSN			0x080u	/* RFC 3461 */
#define SMTP_EXT_AUTH			0x100u	/* RFC 4954 */

/* SASL mechanisms offered with AUTH (smtp_ehlo.auth). */
#define SMTP_AUTH_PLAIN		0x1u
#define SMTP_AUTH_LOGIN		0x2u
#define SMTP_AUTH_CRAM_MD5	0x4u

struct smtp_ehlo {
	unsigned ext;		/* SMTP_EXT_* */
	unsigned auth;		/* SMTP_AUTH_*; unknown mechanisms are left out */
	uint64_t size;		/* SIZE's limit in octets; 0: none known */
};

/*
 * The extensions of a 250 reply to EHLO.  The first line is the server's
 * name and greeting and is skipped; every later kept line is "KEYWORD
 * params", keywords and mechanisms compared without case, separated by
 * spaces or tabs; unknown keywords and mechanisms are ignored.  The old
 * "AUTH=PLAIN LOGIN" form counts as AUTH, and its mechanisms with those of
 * "AUTH ..." lines.  SIZE with no number, 0 (RFC 1870: no fixed limit),
 * a number beyond 2^64 - 1 or anything not a number gives size 0, so the
 * client does not check sizes itself and the server refuses what it must;
 * the SIZE bit says the keyword was there.  A later SIZE line overrides an
 * earlier one.  Returns 0, or -1 (and *out zeroed) when the code is not 250.
 */
int smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out);

#endif
