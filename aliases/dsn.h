/*
 * dsn.h - delivery status notifications (RFC 3464): the report that goes
 * back to a message's envelope sender when some of its recipients failed,
 * or are still being retried.
 *
 * One call builds one whole message:
 *
 *	From: Mail Delivery System <MAILER-DAEMON@hostname>
 *	To: <the original envelope sender>
 *	Subject: Undelivered Mail Returned to Sender
 *	Date:, Message-ID: <qid.time.random@hostname>,
 *	Auto-Submitted: auto-replied (RFC 3834), MIME-Version: 1.0
 *	Content-Type: multipart/report; report-type=delivery-status
 *
 *	1. text/plain (us-ascii, or utf-8 when a server's reply or an address
 *	   needs it): what failed and why, in plain words;
 *	2. message/delivery-status: the per-message fields
 *	   (Original-Envelope-Id when given, Reporting-MTA, Arrival-Date),
 *	   then one block per recipient (Original-Recipient when given,
 *	   Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
 *	   Last-Attempt-Date, Will-Retry-Until), in RFC 3464's order, blocks
 *	   separated by one empty line;
 *	3. text/rfc822-headers: the original message's header block, when
 *	   there is one.
 *
 * GMime 3 builds the MIME structure (parts, top-level headers, boundary,
 * transfer encodings); the bodies of parts 2 and 3 are text made here.
 * The DSN's own envelope sender is the null path <>: that is the
 * caller's to set.
 *
 * Every value from outside (replies, addresses, host names, the original
 * headers) is hostile, and nothing in it can start a header line or a
 * field of its own:
 *   - In the delivery-status fields, octets outside 0x20..0x7e become a
 *     space (controls: CR, LF, NUL, TAB...) or '?' (each UTF-8 character,
 *     or stray 8-bit octet); leading and trailing spaces go.  Addresses
 *     that are not ASCII are written as RFC 6533 "utf-8;" addresses with
 *     \x{HEX} escapes instead.  A diagnostic is cut to DSN_DIAG_MAX
 *     octets, an address or host to DSN_ADDR_MAX, ending in "..." when
 *     cut.  Long fields are folded at their own spaces, never inside a
 *     word, so unfolding gives the value back exactly.
 *   - In the text, controls become spaces and bytes that are not UTF-8
 *     become U+FFFD.
 *   - The original header block ends at its first empty line and is cut
 *     to DSN_HEADERS_MAX octets at a line boundary (before a field's
 *     continuation lines when it can).  CR not before LF, NUL and other
 *     controls but TAB become '?'; 8-bit octets are kept as they are, in
 *     an 8bit part (quoted-printable when a line is too long for 8bit).
 *   - The To: address is the envelope sender with controls made spaces;
 *     one that is not ASCII stays UTF-8 (RFC 6532): the report goes out
 *     with SMTPUTF8 then anyway.
 *
 * The output has CRLF line ends only and ends in CRLF, as the store
 * requires, and no line is longer than 998 octets.  Parts 1 and 2 are
 * 7-bit (part 1 quoted-printable or base64 when it holds UTF-8); only
 * 8-bit octets in the original headers make it an 8-bit message (send it
 * with BODY=8BITMIME).
 *
 * GMime is initialised once per process, on the first call, from any
 * thread; dsn_build() may run on several threads at once.
 */
#ifndef UMBOX_ALIASES_DSN_H
#define UMBOX_ALIASES_DSN_H

#include <stddef.h>
#include <stdint.h>

#define DSN_DIAG_MAX	950		/* octets of one diagnostic (reply or reason) */
#define DSN_ADDR_MAX	512		/* octets of one address or host name */
#define DSN_HEADERS_MAX	(64 * 1024)	/* octets of the original header block */
#define DSN_RCPTS_MAX	1000		/* recipients in one report */

enum dsn_action {
	DSN_FAILED = 0,		/* given up: Action: failed, Status 5.x.y */
	DSN_DELAYED,		/* still trying: Action: delayed, Status 4.x.y */
};

/* One recipient's outcome. */
struct dsn_rcpt {
	const char *final_recipient;	/* the address tried; required */
	const char *original_recipient;	/* as the sender wrote it (the alias), or NULL */
	enum dsn_action action;
	/*
	 * "5.1.1"; NULL (or one that is not an RFC 3463 code of the action's
	 * class): derived, see dsn_status().
	 */
	const char *status;
	const char *remote_mta;		/* host (or address) that answered, or NULL */
	/*
	 * The server's reply, "550 5.1.1 no such user" (a multi-line reply
	 * joined with spaces), or NULL.  Gives "Diagnostic-Code: smtp; ...".
	 */
	const char *smtp_reply;
	/*
	 * Plain words when there was no reply: "no such domain", "mailbox
	 * full", or NULL.  Gives "Diagnostic-Code: X-Umbox; ..." (only when
	 * smtp_reply is NULL).
	 */
	const char *reason;
	/*
	 * Failed because the queue lifetime ran out: smtp_reply or reason is
	 * the last error, and the text says so.
	 */
	int expired;
	int64_t last_attempt;		/* unix time; 0: unknown, no Last-Attempt-Date */
	int64_t retry_until;		/* DSN_DELAYED: Will-Retry-Until; 0: unknown */
};

struct dsn_report {
	const char *hostname;		/* Reporting-MTA and MAILER-DAEMON@hostname; required */
	const char *recipient;		/* the DSN's To:, the original envelope sender; required */
	const char *qid;		/* the original's queue ID (text, Message-ID), or NULL */
	const char *envid;		/* RFC 3461 ENVID: Original-Envelope-Id, or NULL */
	int64_t arrival;		/* when the original arrived; 0: no Arrival-Date */
	int64_t now;			/* Date:; 0: time(NULL) */
	int64_t lifetime;		/* seconds the queue tries, for the text; 0: now - arrival */
	/* The original message (or just its header block), or NULL. */
	const char *headers;
	size_t headers_len;
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;			/* 1..DSN_RCPTS_MAX */
};

/*
 * Build the report.  0 with the message in *out (malloc'd, CRLF line
 * ends, *outlen octets and a NUL after them) or -1 with *out NULL and a
 * message in err, when the report cannot be made: no recipients or more
 * than DSN_RCPTS_MAX, a recipient without an address, no envelope sender
 * to report to, a hostname that is not a host name.  Hostile values
 * never make it fail.
 */
int dsn_build(const struct dsn_report *r, char **out, size_t *outlen,
    char *err, size_t errlen);

/*
 * The Status a recipient gets (RFC 3463), into dst (at least
 * 10 octets, "5.999.999" and its NUL).  rc->status when it is a valid
 * code whose class is the action's (5 for failed, 4 for delayed).
 * Else from smtp_reply: "DDD" then ' ' or '-', then an enhanced code of
 * the reply code's class followed by a space or the end; taken when that
 * class is the action's.  Else: failed after a 5xx reply, 5.0.0; failed
 * after a 4xx reply or when expired, 5.4.7 (delivery time expired);
 * failed otherwise, 5.0.0; delayed, 4.0.0.  Returns dst.
 */
char *dsn_status(const struct dsn_rcpt *rc, char *dst, size_t dstlen);

/*
 * The length of a message's header block: up to and including the empty
 * line that ends it (all of msg[0..len) when there is none), but at most
 * cap octets.  When the block is longer, it is cut at a line end: before
 * the field that would cross cap (with its continuation lines), or, when
 * that is the first field, after its last whole line that fits.  0 when
 * not one line fits.
 */
size_t dsn_header_block(const char *msg, size_t len, size_t cap);

/*
 * Release GMime's global state, for leak checkers at the end of a test
 * or fuzz run.  No dsn_build() after it.  A no-op when GMime was never
 * initialised here.
 */
void dsn_shutdown(void);

#endif
