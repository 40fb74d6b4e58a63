/*
 * parse.h - SMTP command lines, pure functions over bytes.
 *
 * The session cuts lines at CRLF only and hands each line, without its
 * CRLF, to smtp_parse_command().  Nothing here does I/O or allocates.
 */
#ifndef UMBOX_SMTPD_PARSE_H
#define UMBOX_SMTPD_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

#define SMTP_LINE_MAX	2048	/* command line including CRLF (SPEC §4) */
#define SMTP_PARAMS_MAX	16	/* ESMTP parameters on one MAIL/RCPT */

enum smtp_verb {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_HELO, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT, SMTP_CMD_DATA,
	SMTP_CMD_BDAT, SMTP_CMD_RSET, SMTP_CMD_NOOP, SMTP_CMD_QUIT, SMTP_CMD_VRFY,
	SMTP_CMD_EXPN, SMTP_CMD_HELP, SMTP_CMD_STARTTLS, SMTP_CMD_AUTH,
	SMTP_CMD_HTTP,		/* GET, POST, HEAD, PUT, CONNECT...: someone's web client */
	SMTP_CMD__COUNT
};

enum smtp_parse_status {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_BAD_CHAR,	/* CR, LF or NUL inside the line: 500 5.5.2 */
	SMTP_PARSE_TOO_LONG,	/* longer than SMTP_LINE_MAX - 2: 500 5.5.2 */
	SMTP_PARSE_EMPTY,	/* nothing, or only spaces: 500 5.5.2 */
};

struct smtp_command {
	enum smtp_verb verb;
	const char *arg;	/* after the verb and its separating space(s); not NUL-terminated */
	size_t arglen;		/* trailing spaces removed */
};

/*
 * Split a command line (no CRLF) into its verb (case-insensitive) and
 * argument.  An unknown verb is SMTP_PARSE_OK with SMTP_CMD_UNKNOWN.
 */
enum smtp_parse_status smtp_parse_command(const char *line, size_t len,
    struct smtp_command *out);

const char *smtp_verb_name(enum smtp_verb v);

/* An ESMTP parameter "KEYWORD[=VALUE]" (RFC 5321 §4.1.2). */
struct smtp_param {
	const char *key;	/* points into the argument */
	size_t keylen;
	const char *value;	/* NULL when there is no "=" */
	size_t valuelen;
};

struct smtp_path_args {
	struct addr path;		/* parsed with addr_parse_path */
	struct smtp_param params[SMTP_PARAMS_MAX];
	size_t nparams;
};

enum smtp_args_status {
	SMTP_ARGS_OK = 0,
	SMTP_ARGS_SYNTAX,	/* no "FROM:"/"TO:", junk: 501 5.5.4 */
	SMTP_ARGS_BAD_PATH,	/* the address did not parse: 501 5.1.3 (RCPT) / 501 5.1.7 (MAIL) */
	SMTP_ARGS_PATH_TOO_LONG,	/* 501 5.5.4 path too long */
	SMTP_ARGS_BAD_PARAM,	/* malformed parameter: 501 5.5.4 */
	SMTP_ARGS_TOO_MANY_PARAMS,	/* 501 5.5.4 */
};

/*
 * Parse the argument of MAIL ("FROM:<path> params") or RCPT
 * ("TO:<path> params"); prefix is "FROM:" or "TO:" (case-insensitive).
 * Spaces between the colon and the path are tolerated, as most servers do.
 * allow_utf8 passes through to addr_parse_path (SMTPUTF8 given on MAIL).
 * For RCPT, a bare "<postmaster>" is accepted (allow_no_domain).
 * *addr_err receives the address parser's error when BAD_PATH.
 */
enum smtp_args_status smtp_parse_path_args(const char *arg, size_t len,
    const char *prefix, int allow_no_domain, int allow_utf8,
    struct smtp_path_args *out, enum addr_error *addr_err);

/* Find a parameter by keyword (case-insensitive); NULL if absent. */
const struct smtp_param *smtp_param_find(const struct smtp_path_args *a, const char *key);

/*
 * A decimal number that must fit in uint64_t and span the whole value:
 * SIZE=, BDAT chunk sizes.  "99999999999999999999" fails.
 */
int smtp_parse_number(const char *s, size_t len, uint64_t *out);

/*
 * BDAT's argument: "SIZE" or "SIZE LAST" (LAST case-insensitive).
 * Returns 0 on success.
 */
int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, int *last);

/*
 * HELO/EHLO argument: a domain or an address literal, no spaces inside.
 * Returns 0 if acceptable (we are lenient about what name a client gives,
 * but not about characters).
 */
int smtp_parse_helo(const char *arg, size_t len);

#endif
