/*
 * parse.h - POP3 command lines (RFC 1939, 2449, 2595, 5034), pure functions.
 */
#ifndef UMBOX_POP3D_PARSE_H
#define UMBOX_POP3D_PARSE_H

#include <stddef.h>

#define POP3_LINE_MAX	255	/* a command line including CRLF (RFC 2449 §4) */
#define POP3_ARGS_MAX	2

enum pop3_verb {
	POP3_CMD_UNKNOWN = 0,
	POP3_CMD_USER, POP3_CMD_PASS, POP3_CMD_STAT, POP3_CMD_LIST, POP3_CMD_RETR,
	POP3_CMD_DELE, POP3_CMD_NOOP, POP3_CMD_RSET, POP3_CMD_QUIT, POP3_CMD_TOP,
	POP3_CMD_UIDL, POP3_CMD_CAPA, POP3_CMD_STLS, POP3_CMD_AUTH, POP3_CMD_APOP,
	POP3_CMD__COUNT
};

enum pop3_parse_status {
	POP3_PARSE_OK = 0,
	POP3_PARSE_BAD_CHAR,	/* CR, LF or NUL inside the line */
	POP3_PARSE_TOO_LONG,	/* more than POP3_LINE_MAX - 2 octets */
	POP3_PARSE_EMPTY,
	POP3_PARSE_TOO_MANY_ARGS,
};

struct pop3_arg {
	const char *p;		/* points into the line; not NUL-terminated */
	size_t len;
};

struct pop3_command {
	enum pop3_verb verb;
	struct pop3_arg args[POP3_ARGS_MAX];
	size_t nargs;
	/*
	 * Everything after the keyword and one space, as given: PASS takes
	 * it whole, so passwords may contain spaces (as most servers allow).
	 */
	struct pop3_arg rest;
};

/*
 * Parse one line without its CRLF.  The keyword is case-insensitive;
 * arguments are separated by single spaces (RFC 1939 §3); empty arguments
 * (two spaces) are an error except within "rest".  An unknown keyword is
 * POP3_PARSE_OK with POP3_CMD_UNKNOWN.
 */
enum pop3_parse_status pop3_parse_command(const char *line, size_t len,
    struct pop3_command *out);

const char *pop3_verb_name(enum pop3_verb v);

/*
 * A message number (1..max) or, for TOP's line count, any non-negative
 * number (min 0): digits only, no sign, no overflow; leading zeros
 * allowed ("01" is 1).  Returns 0 and sets *out, or -1.
 */
int pop3_parse_number(const char *s, size_t len, unsigned long min, unsigned long max,
    unsigned long *out);

#endif
