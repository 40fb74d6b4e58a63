/*
 * test_smtp_parse.c - unit tests for smtpd/parse.c: command lines, MAIL and
 * RCPT arguments, ESMTP parameters, numbers, BDAT and HELO arguments.
 *
 * Every input is copied into a heap buffer of exactly its length before it
 * is parsed, so AddressSanitizer reports any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/parse.h"

/* A heap copy of exactly n bytes (NULL when n is 0). */
static char *
dup_exact(const char *s, size_t n)
{
	char *b;

	if (n == 0)
		return NULL;
	b = malloc(n);
	assert_non_null(b);
	memcpy(b, s, n);
	return b;
}

/*
 * Parse n bytes of s as a command line from an exact heap copy.  The verb
 * goes to *verb and the argument, checked to lie inside the line, to arg
 * as a C string.
 */
static enum smtp_parse_status
cmd_n(const char *s, size_t n, enum smtp_verb *verb, char *arg)
{
	static const char empty[1];
	char *b = dup_exact(s, n);
	const char *base = b != NULL ? b : empty;
	struct smtp_command c;
	enum smtp_parse_status st;

	memset(&c, 0xa5, sizeof(c));
	st = smtp_parse_command(base, n, &c);
	assert_non_null(c.arg);
	assert_true(c.arg >= base && c.arg <= base + n);
	assert_true(c.arglen <= (size_t)(base + n - c.arg));
	if (c.arglen > 0) {
		assert_true(c.arg[0] != ' ' || c.verb == SMTP_CMD_UNKNOWN);
		assert_true(c.arg[c.arglen - 1] != ' ');
	}
	if (st != SMTP_PARSE_OK) {
		assert_int_equal(c.verb, SMTP_CMD_UNKNOWN);
		assert_int_equal(c.arglen, 0);
	}
	*verb = c.verb;
	if (arg != NULL) {
		memcpy(arg, c.arg, c.arglen);
		arg[c.arglen] = '\0';
	}
	free(b);
	return st;
}

static enum smtp_parse_status
cmd(const char *s, enum smtp_verb *verb, char *arg)
{
	return cmd_n(s, strlen(s), verb, arg);
}

/* Expect line s to parse as OK with this verb and argument. */
#define CMD_OK(s, v, a) do {						\
	enum smtp_verb v_;						\
	char a_[SMTP_LINE_MAX];						\
	assert_int_equal(cmd((s), &v_, a_), SMTP_PARSE_OK);		\
	assert_int_equal(v_, (v));					\
	assert_string_equal(a_, (a));					\
} while (0)

#define CMD_ST(s, st) do {						\
	enum smtp_verb v_;						\
	assert_int_equal(cmd((s), &v_, NULL), (st));			\
} while (0)

/*
 * Parse a MAIL/RCPT argument from an exact heap copy.  The result is
 * checked for shape (parameters inside the argument) and, on failure, for
 * being left untouched; parameter pointers are then rebased onto s so they
 * stay valid after the copy is freed.
 */
static enum smtp_args_status
args_n(const char *s, size_t n, const char *prefix, int nodom, int utf8,
    struct smtp_path_args *out, enum addr_error *ae)
{
	static const char empty[1];
	char *b = dup_exact(s, n);
	const char *base = b != NULL ? b : empty;
	struct smtp_path_args a, sentinel;
	enum smtp_args_status st;
	size_t i;

	memset(&a, 0xa5, sizeof(a));
	memcpy(&sentinel, &a, sizeof(a));
	st = smtp_parse_path_args(base, n, prefix, nodom, utf8, &a, ae);
	if (st != SMTP_ARGS_OK) {
		assert_memory_equal(&a, &sentinel, sizeof(a));
		free(b);
		return st;
	}
	assert_true(a.nparams <= SMTP_PARAMS_MAX);
	assert_ptr_equal(a.path.domain,
	    a.path.mailbox + (a.path.domain - a.path.mailbox));
	assert_true(a.path.domain >= a.path.mailbox &&
	    a.path.domain <= a.path.mailbox + strlen(a.path.mailbox));
	for (i = 0; i < a.nparams; i++) {
		struct smtp_param *p = &a.params[i];

		assert_true(p->keylen > 0);
		assert_true(p->key >= base && p->key + p->keylen <= base + n);
		p->key = s + (p->key - base);
		if (p->value != NULL) {
			assert_true(p->valuelen > 0);
			assert_ptr_equal(p->value, base + (p->key - s) +
			    p->keylen + 1);
			assert_true(p->value + p->valuelen <= base + n);
			p->value = s + (p->value - base);
		} else
			assert_int_equal(p->valuelen, 0);
	}
	*out = a;
	out->path.domain = out->path.mailbox + (a.path.domain - a.path.mailbox);
	free(b);
	return st;
}

static enum smtp_args_status
args(const char *s, const char *prefix, int nodom, int utf8,
    struct smtp_path_args *out, enum addr_error *ae)
{
	return args_n(s, strlen(s), prefix, nodom, utf8, out, ae);
}

static int
num(const char *s, uint64_t *v)
{
	char *b = dup_exact(s, strlen(s));
	int r = smtp_parse_number(b, strlen(s), v);

	free(b);
	return r;
}

static int
bdat(const char *s, uint64_t *size, int *last)
{
	char *b = dup_exact(s, strlen(s));
	int r = smtp_parse_bdat(b, strlen(s), size, last);

	free(b);
	return r;
}

static int
helo_n(const char *s, size_t n)
{
	char *b = dup_exact(s, n);
	int r = smtp_parse_helo(b, n);

	free(b);
	return r;
}

static int
helo(const char *s)
{
	return helo_n(s, strlen(s));
}

/* Does parameter key have this value (NULL: present without a value)? */
static void
check_param(const struct smtp_path_args *a, const char *key, const char *val)
{
	const struct smtp_param *p = smtp_param_find(a, key);

	assert_non_null(p);
	if (val == NULL) {
		assert_null(p->value);
		return;
	}
	assert_non_null(p->value);
	assert_int_equal(p->valuelen, strlen(val));
	assert_memory_equal(p->value, val, p->valuelen);
}

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_CMD_HELO }, { "EHLO", SMTP_CMD_EHLO },
	{ "MAIL", SMTP_CMD_MAIL }, { "RCPT", SMTP_CMD_RCPT },
	{ "DATA", SMTP_CMD_DATA }, { "BDAT", SMTP_CMD_BDAT },
	{ "RSET", SMTP_CMD_RSET }, { "NOOP", SMTP_CMD_NOOP },
	{ "QUIT", SMTP_CMD_QUIT }, { "VRFY", SMTP_CMD_VRFY },
	{ "EXPN", SMTP_CMD_EXPN }, { "HELP", SMTP_CMD_HELP },
	{ "STARTTLS", SMTP_CMD_STARTTLS }, { "AUTH", SMTP_CMD_AUTH },
};

/* Each verb alone, with an argument, in upper, lower and mixed case. */
static void
test_every_verb(void **state)
{
	char line[64], arg[SMTP_LINE_MAX];
	enum smtp_verb v;

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		for (int form = 0; form < 3; form++) {
			size_t n = strlen(verbs[i].name);

			for (size_t k = 0; k < n; k++) {
				char c = verbs[i].name[k];

				if (form == 1 || (form == 2 && k % 2 == 1))
					c = (char)(c - 'A' + 'a');
				line[k] = c;
			}
			line[n] = '\0';
			assert_int_equal(cmd(line, &v, arg), SMTP_PARSE_OK);
			assert_int_equal(v, verbs[i].verb);
			assert_string_equal(arg, "");

			strcat(line, " some arg");
			assert_int_equal(cmd(line, &v, arg), SMTP_PARSE_OK);
			assert_int_equal(v, verbs[i].verb);
			assert_string_equal(arg, "some arg");

			strcat(line, "   ");
			assert_int_equal(cmd(line, &v, arg), SMTP_PARSE_OK);
			assert_int_equal(v, verbs[i].verb);
			assert_string_equal(arg, "some arg");
		}
		assert_string_equal(smtp_verb_name(verbs[i].verb),
		    verbs[i].name);
	}
}

static void
test_arguments(void **state)
{
	CMD_OK("MAIL FROM:<a@example.com>", SMTP_CMD_MAIL,
	    "FROM:<a@example.com>");
	CMD_OK("MAIL   FROM:<a@example.com> SIZE=10  ", SMTP_CMD_MAIL,
	    "FROM:<a@example.com> SIZE=10");
	CMD_OK("RCPT TO:<b@example.com>", SMTP_CMD_RCPT, "TO:<b@example.com>");
	CMD_OK("EHLO mail.example.com", SMTP_CMD_EHLO, "mail.example.com");
	CMD_OK("AUTH PLAIN AGFsaWNlAHNlY3JldA==", SMTP_CMD_AUTH,
	    "PLAIN AGFsaWNlAHNlY3JldA==");
	CMD_OK("BDAT 100 LAST", SMTP_CMD_BDAT, "100 LAST");
	/* DATA with an argument is DATA; the session refuses the argument. */
	CMD_OK("DATA x", SMTP_CMD_DATA, "x");
	CMD_OK("QUIT ", SMTP_CMD_QUIT, "");
	CMD_OK("NOOP a\tb", SMTP_CMD_NOOP, "a\tb");
	CMD_OK("HELP\xc3\xa9", SMTP_CMD_UNKNOWN, "HELP\xc3\xa9");
}

/* The verb ends at a space or the end of the line and nowhere else. */
static void
test_verb_boundaries(void **state)
{
	CMD_OK("MAILX", SMTP_CMD_UNKNOWN, "MAILX");
	CMD_OK("MAILX FROM:<a@b.c>", SMTP_CMD_UNKNOWN, "MAILX FROM:<a@b.c>");
	CMD_OK("MAI", SMTP_CMD_UNKNOWN, "MAI");
	CMD_OK("MAIL\tFROM:<a@b.c>", SMTP_CMD_UNKNOWN, "MAIL\tFROM:<a@b.c>");
	CMD_OK("QUIT\t", SMTP_CMD_UNKNOWN, "QUIT\t");
	CMD_OK("STARTTLSX", SMTP_CMD_UNKNOWN, "STARTTLSX");
	CMD_OK("START", SMTP_CMD_UNKNOWN, "START");
	CMD_OK("MAIL:FROM", SMTP_CMD_UNKNOWN, "MAIL:FROM");
	CMD_OK("XYZZY plugh", SMTP_CMD_UNKNOWN, "XYZZY plugh");
	CMD_OK("x", SMTP_CMD_UNKNOWN, "x");
	/* A space before the verb: not a command we know. */
	CMD_OK(" QUIT", SMTP_CMD_UNKNOWN, " QUIT");
	CMD_OK("  MAIL FROM:<a@b.c>  ", SMTP_CMD_UNKNOWN, "  MAIL FROM:<a@b.c>");
	CMD_OK("\tQUIT", SMTP_CMD_UNKNOWN, "\tQUIT");
}

static void
test_empty(void **state)
{
	CMD_ST("", SMTP_PARSE_EMPTY);
	CMD_ST(" ", SMTP_PARSE_EMPTY);
	CMD_ST("     ", SMTP_PARSE_EMPTY);
	/* A tab is not a space: the line is an unknown command. */
	CMD_OK("\t", SMTP_CMD_UNKNOWN, "\t");
}

static void
test_http(void **state)
{
	static const char *const http[] = {
		"GET / HTTP/1.1", "get / HTTP/1.0", "POST /cgi-bin/x HTTP/1.1",
		"HEAD / HTTP/1.1", "PUT /x HTTP/1.1", "DELETE /x HTTP/1.1",
		"OPTIONS * HTTP/1.1", "CONNECT mail.example.com:25 HTTP/1.1",
		"Connect x", "GET  /",
	};
	static const char *const not_http[] = {
		"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT",
		"GET ", "GETX /", "GE /", "CONNECTX host", "GET\t/",
	};
	enum smtp_verb v;

	for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++) {
		assert_int_equal(cmd(http[i], &v, NULL), SMTP_PARSE_OK);
		assert_int_equal(v, SMTP_CMD_HTTP);
	}
	for (size_t i = 0; i < sizeof(not_http) / sizeof(not_http[0]); i++) {
		assert_int_equal(cmd(not_http[i], &v, NULL), SMTP_PARSE_OK);
		assert_int_equal(v, SMTP_CMD_UNKNOWN);
	}
	CMD_OK("GET / HTTP/1.1", SMTP_CMD_HTTP, "/ HTTP/1.1");
	/* Close neighbours of HEAD stay SMTP. */
	CMD_OK("HELO x", SMTP_CMD_HELO, "x");
	CMD_OK("HELP x", SMTP_CMD_HELP, "x");
	assert_string_equal(smtp_verb_name(SMTP_CMD_HTTP), "HTTP");
}

/* CR, LF and NUL anywhere make the whole line bad; nothing is split. */
static void
test_bad_chars(void **state)
{
	static const char *const lines[] = {
		"MAIL FROM:<a@example.com>", "QUIT", "EHLO x", "X",
	};
	static const char bad[] = { '\r', '\n', '\0' };
	char buf[64];
	enum smtp_verb v;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t n = strlen(lines[i]);

		for (size_t b = 0; b < sizeof(bad); b++) {
			/* Replace each position in turn, then insert. */
			for (size_t k = 0; k < n; k++) {
				memcpy(buf, lines[i], n);
				buf[k] = bad[b];
				assert_int_equal(cmd_n(buf, n, &v, NULL),
				    SMTP_PARSE_BAD_CHAR);
			}
			for (size_t k = 0; k <= n; k++) {
				memcpy(buf, lines[i], k);
				buf[k] = bad[b];
				memcpy(buf + k + 1, lines[i] + k, n - k);
				assert_int_equal(cmd_n(buf, n + 1, &v, NULL),
				    SMTP_PARSE_BAD_CHAR);
			}
		}
	}
	CMD_ST("RSET\rQUIT", SMTP_PARSE_BAD_CHAR);
	CMD_ST("RSET\nQUIT", SMTP_PARSE_BAD_CHAR);
	CMD_ST("\r", SMTP_PARSE_BAD_CHAR);
	CMD_ST("\n", SMTP_PARSE_BAD_CHAR);
	CMD_ST("\r\n", SMTP_PARSE_BAD_CHAR);
	CMD_ST("QUIT\r", SMTP_PARSE_BAD_CHAR);
	CMD_ST("   \n", SMTP_PARSE_BAD_CHAR);
	CMD_ST("MAIL FROM:<a@b.c>\nRCPT TO:<x@y.z>", SMTP_PARSE_BAD_CHAR);
	assert_int_equal(cmd_n("\0", 1, &v, NULL), SMTP_PARSE_BAD_CHAR);
	assert_int_equal(cmd_n("QUIT\0", 5, &v, NULL), SMTP_PARSE_BAD_CHAR);
}

/* 2046 octets of line content fit (2048 with CRLF); 2047 do not. */
static void
test_length(void **state)
{
	const size_t max = SMTP_LINE_MAX - 2;
	char *line = malloc(max + 2);
	char arg[SMTP_LINE_MAX];
	enum smtp_verb v;

	assert_int_equal(max, 2046);
	assert_non_null(line);
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', max + 2 - 5);

	assert_int_equal(cmd_n(line, max, &v, arg), SMTP_PARSE_OK);
	assert_int_equal(v, SMTP_CMD_NOOP);
	assert_int_equal(strlen(arg), max - 5);
	assert_int_equal(cmd_n(line, max + 1, &v, NULL), SMTP_PARSE_TOO_LONG);
	assert_int_equal(cmd_n(line, max + 2, &v, NULL), SMTP_PARSE_TOO_LONG);

	/* Too long wins over a bad character; within the limit it does not. */
	line[100] = '\n';
	assert_int_equal(cmd_n(line, max + 1, &v, NULL), SMTP_PARSE_TOO_LONG);
	assert_int_equal(cmd_n(line, max, &v, NULL), SMTP_PARSE_BAD_CHAR);

	/* Only spaces: empty at the limit, too long past it. */
	memset(line, ' ', max + 1);
	assert_int_equal(cmd_n(line, max, &v, NULL), SMTP_PARSE_EMPTY);
	assert_int_equal(cmd_n(line, max + 1, &v, NULL), SMTP_PARSE_TOO_LONG);
	free(line);
}

static void
test_verb_name(void **state)
{
	for (int v = 0; v < SMTP_CMD__COUNT; v++) {
		const char *name = smtp_verb_name((enum smtp_verb)v);
		enum smtp_verb back;

		assert_non_null(name);
		assert_true(strlen(name) > 0);
		if (v == SMTP_CMD_UNKNOWN || v == SMTP_CMD_HTTP)
			continue;
		assert_int_equal(cmd(name, &back, NULL), SMTP_PARSE_OK);
		assert_int_equal(back, v);
	}
	assert_string_equal(smtp_verb_name(SMTP_CMD_UNKNOWN), "UNKNOWN");
	assert_string_equal(smtp_verb_name(SMTP_CMD__COUNT), "UNKNOWN");
	assert_string_equal(smtp_verb_name((enum smtp_verb)-1), "UNKNOWN");
	assert_string_equal(smtp_verb_name((enum smtp_verb)1000), "UNKNOWN");
}

static void
test_paths(void **state)
{
	struct smtp_path_args a;
	enum addr_error ae;

	assert_int_equal(args("FROM:<a@example.com>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	assert_int_equal(ae, ADDR_OK);
	assert_string_equal(a.path.mailbox, "a@example.com");
	assert_string_equal(a.path.domain, "example.com");
	assert_int_equal(a.path.flags, 0);
	assert_int_equal(a.nparams, 0);

	/* Spaces after the colon, any case of the prefix. */
	assert_int_equal(args("FROM: <a@example.com>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	assert_string_equal(a.path.mailbox, "a@example.com");
	assert_int_equal(args("from:   <a@EXAMPLE.com>", "FROM:", 0, 0, &a,
	    &ae), SMTP_ARGS_OK);
	assert_string_equal(a.path.mailbox, "a@example.com");
	assert_int_equal(args("To:<b@example.com>", "TO:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	assert_string_equal(a.path.mailbox, "b@example.com");
	assert_int_equal(args("TO: <b@example.com>", "to:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);

	/* The null path, with and without a space. */
	assert_int_equal(args("FROM:<>", "FROM:", 0, 0, &a, &ae), SMTP_ARGS_OK);
	assert_int_equal(a.path.flags, ADDR_F_NULL);
	assert_string_equal(a.path.mailbox, "");
	assert_int_equal(args("FROM: <> SIZE=10", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	assert_int_equal(a.path.flags, ADDR_F_NULL);
	check_param(&a, "SIZE", "10");

	/* A bare local part only when allowed (RCPT TO:<postmaster>). */
	assert_int_equal(args("TO:<postmaster>", "TO:", 1, 0, &a, &ae),
	    SMTP_ARGS_OK);
	assert_int_equal(a.path.flags, ADDR_F_NO_DOMAIN);
	assert_string_equal(a.path.mailbox, "postmaster");
	assert_string_equal(a.path.domain, "");
	assert_int_equal(args("TO:<postmaster>", "TO:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(ae, ADDR_ERR_SYNTAX);

	/* Unbracketed: accepted, flagged, and it ends at the first space. */
	assert_int_equal(args("FROM:a@example.com", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	assert_int_equal(a.path.flags, ADDR_F_NO_BRACKETS);
	assert_int_equal(args("FROM:a@example.com SIZE=5", "FROM:", 0, 0, &a,
	    &ae), SMTP_ARGS_OK);
	assert_string_equal(a.path.mailbox, "a@example.com");
	check_param(&a, "SIZE", "5");

	/* A '>' inside a quoted local part does not close the path. */
	assert_int_equal(args("FROM:<\"a> b\"@example.com> SIZE=5", "FROM:",
	    0, 0, &a, &ae), SMTP_ARGS_OK);
	assert_string_equal(a.path.mailbox, "\"a> b\"@example.com");
	assert_true(a.path.flags & ADDR_F_QUOTED);
	assert_int_equal(a.nparams, 1);
	assert_int_equal(args("FROM:<\"a\\\"> b\"@example.com>", "FROM:",
	    0, 0, &a, &ae), SMTP_ARGS_OK);

	/* Flags from the address parser pass through. */
	assert_int_equal(args("TO:<@relay.example:u@example.com>", "TO:", 0, 0,
	    &a, &ae), SMTP_ARGS_OK);
	assert_true(a.path.flags & ADDR_F_SOURCE_ROUTE);
	assert_string_equal(a.path.mailbox, "u@example.com");
	assert_int_equal(args("TO:<a%b@example.com>", "TO:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	assert_true(a.path.flags & ADDR_F_RELAY_CHARS);

	/* UTF-8 only with allow_utf8. */
	assert_int_equal(args("TO:<\xc3\xa9@example.com>", "TO:", 0, 0, &a,
	    &ae), SMTP_ARGS_BAD_PATH);
	assert_int_equal(ae, ADDR_ERR_SYNTAX);
	assert_int_equal(args("TO:<\xc3\xa9@example.com>", "TO:", 0, 1, &a,
	    &ae), SMTP_ARGS_OK);
	assert_true(a.path.flags & ADDR_F_UTF8);

	/* addr_err may be NULL. */
	assert_int_equal(args("FROM:<a@example.com>", "FROM:", 0, 0, &a, NULL),
	    SMTP_ARGS_OK);
	assert_int_equal(args("FROM:<a@>", "FROM:", 0, 0, &a, NULL),
	    SMTP_ARGS_BAD_PATH);
}

static void
test_path_errors(void **state)
{
	struct smtp_path_args a;
	enum addr_error ae;
	char big[600];

	/* No prefix, the wrong one, or a space before the colon. */
	assert_int_equal(args("", "FROM:", 0, 0, &a, &ae), SMTP_ARGS_SYNTAX);
	assert_int_equal(args("FROM", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_SYNTAX);
	assert_int_equal(args("FROM <a@b.c>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_SYNTAX);
	assert_int_equal(args("FROM :<a@b.c>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_SYNTAX);
	assert_int_equal(args("TO:<a@b.c>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_SYNTAX);
	assert_int_equal(args("FROM:<a@b.c>", "TO:", 0, 0, &a, &ae),
	    SMTP_ARGS_SYNTAX);
	assert_int_equal(args("<a@b.c>", "TO:", 0, 0, &a, &ae),
	    SMTP_ARGS_SYNTAX);
	/* A prefix but no path. */
	assert_int_equal(args("FROM:", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_SYNTAX);
	assert_int_equal(args("FROM:    ", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_SYNTAX);
	assert_int_equal(ae, ADDR_OK);

	/* Junk glued to the path belongs to the path, which then fails. */
	assert_int_equal(args("FROM:<a@b.c>x", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(ae, ADDR_ERR_SYNTAX);
	assert_int_equal(args("FROM:<a@b.c>SIZE=1", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(args("FROM:<a@b.c", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(args("FROM:<a@b.c SIZE=1", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(args("FROM:<a b@c.d>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(args("FROM:<<a@b.c>>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(args("FROM:<\"a b@c.d>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(args("FROM:a@b.c>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(args("FROM:<a\x01@b.c>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(ae, ADDR_ERR_BAD_CHAR);
	assert_int_equal(args("FROM:<a\t@b.c>", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_BAD_PATH);
	assert_int_equal(ae, ADDR_ERR_BAD_CHAR);

	/* Component limits are BAD_PATH; the whole path's limit has its own. */
	memcpy(big, "FROM:<", 6);
	memset(big + 6, 'l', 65);
	strcpy(big + 6 + 65, "@example.com>");
	assert_int_equal(args(big, "FROM:", 0, 0, &a, &ae), SMTP_ARGS_BAD_PATH);
	assert_int_equal(ae, ADDR_ERR_LOCAL_TOO_LONG);

	{
		/* 64 + 1 + 4 labels of 47 and dots: 256 + brackets. */
		char *w = big;

		w += sprintf(w, "FROM:<");
		memset(w, 'l', 64);
		w += 64;
		*w++ = '@';
		for (int i = 0; i < 4; i++) {
			memset(w, 'd', 47);
			w += 47;
			*w++ = '.';
		}
		w += sprintf(w, "com> SIZE=1");
		assert_int_equal(args(big, "FROM:", 0, 0, &a, &ae),
		    SMTP_ARGS_PATH_TOO_LONG);
		assert_int_equal(ae, ADDR_ERR_PATH_TOO_LONG);
	}
}

static void
test_params(void **state)
{
	struct smtp_path_args a;
	enum addr_error ae;

	assert_int_equal(args("FROM:<a@b.c> SIZE=123", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	assert_int_equal(a.nparams, 1);
	check_param(&a, "SIZE", "123");
	check_param(&a, "size", "123");
	check_param(&a, "SiZe", "123");
	assert_null(smtp_param_find(&a, "SIZ"));
	assert_null(smtp_param_find(&a, "SIZE2"));
	assert_null(smtp_param_find(&a, "BODY"));
	assert_null(smtp_param_find(NULL, "SIZE"));
	assert_null(smtp_param_find(&a, NULL));

	assert_int_equal(args("FROM:<a@b.c> BODY=8BITMIME", "FROM:", 0, 0, &a,
	    &ae), SMTP_ARGS_OK);
	check_param(&a, "BODY", "8BITMIME");
	assert_int_equal(args("FROM:<a@b.c> SMTPUTF8", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	check_param(&a, "SMTPUTF8", NULL);

	assert_int_equal(args("FROM:<a@b.c> SIZE=123 BODY=8BITMIME SMTPUTF8 "
	    "RET=HDRS ENVID=QQ314159", "FROM:", 0, 0, &a, &ae), SMTP_ARGS_OK);
	assert_int_equal(a.nparams, 5);
	check_param(&a, "SIZE", "123");
	check_param(&a, "BODY", "8BITMIME");
	check_param(&a, "SMTPUTF8", NULL);
	check_param(&a, "RET", "HDRS");
	check_param(&a, "ENVID", "QQ314159");
	assert_memory_equal(a.params[0].key, "SIZE", 4);
	assert_memory_equal(a.params[4].key, "ENVID", 5);

	/* Runs of spaces between and after parameters are tolerated. */
	assert_int_equal(args("FROM:<a@b.c>   SIZE=1    BODY=7BIT   ", "FROM:",
	    0, 0, &a, &ae), SMTP_ARGS_OK);
	assert_int_equal(a.nparams, 2);
	check_param(&a, "BODY", "7BIT");

	/* RFC 3461 values: xtext with '+', ',' and ';'. */
	assert_int_equal(args("TO:<b@c.d> NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;b+40c.d", "TO:", 0, 0, &a, &ae), SMTP_ARGS_OK);
	check_param(&a, "NOTIFY", "SUCCESS,FAILURE");
	check_param(&a, "ORCPT", "rfc822;b+40c.d");

	/* Keys: alnum first, then alnum or '-'. */
	assert_int_equal(args("FROM:<a@b.c> X-FOO=bar 1X=2 A", "FROM:", 0, 0,
	    &a, &ae), SMTP_ARGS_OK);
	check_param(&a, "x-foo", "bar");
	check_param(&a, "1X", "2");
	check_param(&a, "a", NULL);
	/* Value edges: '!' (33), '<' (60), '>' (62), '~' (126). */
	assert_int_equal(args("FROM:<a@b.c> K=!<>~", "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_OK);
	check_param(&a, "K", "!<>~");

	/* The size is a parameter like any other; the number fails later. */
	assert_int_equal(args("FROM:<a@b.c> SIZE=99999999999999999999", "FROM:",
	    0, 0, &a, &ae), SMTP_ARGS_OK);
	{
		const struct smtp_param *p = smtp_param_find(&a, "SIZE");
		uint64_t v = 7;

		assert_non_null(p);
		assert_int_equal(smtp_parse_number(p->value, p->valuelen, &v),
		    -1);
		assert_int_equal(v, 7);
	}
}

static void
test_bad_params(void **state)
{
	static const char *const bad[] = {
		"FROM:<a@b.c> SIZE=1 SIZE=2",		/* duplicate */
		"FROM:<a@b.c> SIZE=1 size=2",		/* duplicate, case */
		"FROM:<a@b.c> SMTPUTF8 SMTPUTF8",
		"FROM:<a@b.c> BODY=7BIT SIZE=1 Body=8BITMIME",
		"FROM:<a@b.c> -SIZE=1",			/* key starts with '-' */
		"FROM:<a@b.c> SI_ZE=1",
		"FROM:<a@b.c> SIZE.X=1",
		"FROM:<a@b.c> SIZE==1",
		"FROM:<a@b.c> SIZE=",			/* empty value */
		"FROM:<a@b.c> SIZE= BODY=7BIT",
		"FROM:<a@b.c> =1",
		"FROM:<a@b.c> SIZE=a=b",
		"FROM:<a@b.c> SIZE=1\x01",
		"FROM:<a@b.c> SIZE=\x7f",
		"FROM:<a@b.c> SIZE=\xc3\xa9",
		"FROM:<a@b.c> \xc3\xa9=1",
		"FROM:<a@b.c> SIZE=1\tBODY=7BIT",
		"FROM:<a@b.c> <x@y.z>",
		"FROM:<a@b.c> \"x\"",
	};
	struct smtp_path_args a;
	enum addr_error ae;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum smtp_args_status st = args(bad[i], "FROM:", 0, 0, &a, &ae);

		if (st != SMTP_ARGS_BAD_PARAM)
			fail_msg("\"%s\": status %d", bad[i], st);
		assert_int_equal(ae, ADDR_OK);
	}
}

/* SMTP_PARAMS_MAX parameters fit; one more is refused. */
static void
test_param_count(void **state)
{
	char line[512];
	char *w;
	struct smtp_path_args a;
	enum addr_error ae;

	w = line + sprintf(line, "FROM:<a@b.c>");
	for (int i = 0; i < SMTP_PARAMS_MAX; i++)
		w += sprintf(w, " P%d=%d", i, i);
	assert_int_equal(args(line, "FROM:", 0, 0, &a, &ae), SMTP_ARGS_OK);
	assert_int_equal(a.nparams, SMTP_PARAMS_MAX);
	check_param(&a, "P0", "0");
	check_param(&a, "P15", "15");

	sprintf(w, " P%d", SMTP_PARAMS_MAX);
	assert_int_equal(args(line, "FROM:", 0, 0, &a, &ae),
	    SMTP_ARGS_TOO_MANY_PARAMS);
	/* Trailing spaces after the sixteenth are not a seventeenth. */
	sprintf(w, "    ");
	assert_int_equal(args(line, "FROM:", 0, 0, &a, &ae), SMTP_ARGS_OK);
}

static void
test_number(void **state)
{
	static const char *const bad[] = {
		"", "+1", "-1", " 1", "1 ", "1a", "0x10", "1.5", "1e3",
		"18446744073709551616", "99999999999999999999",
		"000000000000000000001", "184467440737095516150",
		"\xd9\xa1",
	};
	uint64_t v;

	assert_int_equal(num("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(num("123", &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(num("0010", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(num("00000000000000000000", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(num("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(num("10000000000000000000", &v), 0);
	assert_true(v == 10000000000000000000ULL);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		if (num(bad[i], &v) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(v, 42);
	}
	assert_int_equal(smtp_parse_number("12", 0, &v), -1);
	assert_int_equal(smtp_parse_number("1\0" "2", 3, &v), -1);
}

static void
test_bdat(void **state)
{
	static const char *const bad[] = {
		"", " ", "LAST", " LAST", "123 ", " 123", "123  LAST",
		"123 LAST ", "123 LASTX", "123 LAS", "123 FIRST", "123\tLAST",
		"-1", "+1 LAST", "1 2", "0x10", "123 LAST LAST",
		"99999999999999999999", "99999999999999999999 LAST",
		"18446744073709551616 LAST",
	};
	uint64_t size;
	int last;

	assert_int_equal(bdat("123", &size, &last), 0);
	assert_int_equal(size, 123);
	assert_int_equal(last, 0);
	assert_int_equal(bdat("123 LAST", &size, &last), 0);
	assert_int_equal(size, 123);
	assert_int_equal(last, 1);
	assert_int_equal(bdat("0 LAST", &size, &last), 0);
	assert_int_equal(size, 0);
	assert_int_equal(last, 1);
	assert_int_equal(bdat("0", &size, &last), 0);
	assert_int_equal(size, 0);
	assert_int_equal(last, 0);
	assert_int_equal(bdat("1 last", &size, &last), 0);
	assert_int_equal(last, 1);
	assert_int_equal(bdat("1 LaSt", &size, &last), 0);
	assert_int_equal(bdat("18446744073709551615 LAST", &size, &last), 0);
	assert_true(size == UINT64_MAX);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size = 42;
		last = 7;
		if (bdat(bad[i], &size, &last) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(size, 42);
		assert_int_equal(last, 7);
	}

	/* Through the command parser: trailing spaces are already gone. */
	{
		struct smtp_command c;
		const char *line = "BDAT 512 LAST  ";

		assert_int_equal(smtp_parse_command(line, strlen(line), &c),
		    SMTP_PARSE_OK);
		assert_int_equal(c.verb, SMTP_CMD_BDAT);
		assert_int_equal(smtp_parse_bdat(c.arg, c.arglen, &size, &last),
		    0);
		assert_int_equal(size, 512);
		assert_int_equal(last, 1);
	}
}

static void
test_helo(void **state)
{
	static const char *const good[] = {
		"mail.example.com", "MAIL.EXAMPLE.COM", "localhost", "a",
		"[192.0.2.1]", "[IPv6:2001:db8::1]", "DESKTOP-ABC123",
		"my_host", "-bad-.example.", "[bogus", "192.0.2.1",
		"host.local.", "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
	};
	static const char *const bad[] = {
		"", " ", "a b", "mail.example.com ", " mail.example.com",
		"a\tb", "a\x01", "a\x7f", "a\x1b[0m", "\xc3\xa9xample.com",
		"mail.example.com\r", "x\n",
	};
	char big[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (helo(good[i]) != 0)
			fail_msg("\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (helo(bad[i]) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_equal(helo_n("a\0b", 3), -1);

	memset(big, 'h', sizeof(big));
	assert_int_equal(helo_n(big, 255), 0);
	assert_int_equal(helo_n(big, 256), -1);
	assert_int_equal(helo_n(big, sizeof(big)), -1);
}

/* Command and argument parsers together, as the session uses them. */
static void
test_pipeline(void **state)
{
	const char *line = "mail from: <Alice@Example.COM> size=2048 "
	    "body=8bitmime smtputf8";
	struct smtp_command c;
	struct smtp_path_args a;
	enum addr_error ae;
	const struct smtp_param *p;
	uint64_t v;

	assert_int_equal(smtp_parse_command(line, strlen(line), &c),
	    SMTP_PARSE_OK);
	assert_int_equal(c.verb, SMTP_CMD_MAIL);
	assert_int_equal(smtp_parse_path_args(c.arg, c.arglen, "FROM:", 0, 1,
	    &a, &ae), SMTP_ARGS_OK);
	assert_string_equal(a.path.mailbox, "Alice@example.com");
	assert_int_equal(a.nparams, 3);
	assert_non_null(p = smtp_param_find(&a, "SIZE"));
	assert_int_equal(smtp_parse_number(p->value, p->valuelen, &v), 0);
	assert_int_equal(v, 2048);
	assert_non_null(smtp_param_find(&a, "SMTPUTF8"));
}

/*
 * Every prefix of every valid sample, alone in a heap buffer of exactly its
 * length, through every parser; ASan catches a read one byte too far.  A
 * strict prefix of a bracketed path may not parse; suffixes are fed too,
 * for crashes only.
 */
static const char *const line_samples[] = {
	"MAIL FROM:<alice@example.com> SIZE=123 BODY=8BITMIME",
	"RCPT TO:<\"a> b\"@[192.0.2.1]> NOTIFY=NEVER",
	"RCPT TO:<postmaster>",
	"MAIL FROM:<>",
	"MAIL FROM:bob@example.com SMTPUTF8",
	"EHLO mail.example.com",
	"HELO [IPv6:2001:db8::1]",
	"BDAT 4096 LAST",
	"BDAT 18446744073709551615",
	"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
	"GET / HTTP/1.1",
	"STARTTLS",
	"quit",
};

static void
feed_everything(const char *s, size_t n)
{
	static const char empty[1];
	char *b = dup_exact(s, n);
	const char *base = b != NULL ? b : empty;
	struct smtp_command c;
	struct smtp_path_args a;
	enum addr_error ae;
	uint64_t v;
	int last;

	if (smtp_parse_command(base, n, &c) == SMTP_PARSE_OK) {
		assert_true(c.arg >= base && c.arg + c.arglen <= base + n);
		if (c.verb == SMTP_CMD_MAIL || c.verb == SMTP_CMD_RCPT) {
			for (int o = 0; o < 4; o++)
				(void)smtp_parse_path_args(c.arg, c.arglen,
				    c.verb == SMTP_CMD_MAIL ? "FROM:" : "TO:",
				    o & 1, o >> 1, &a, &ae);
		}
		(void)smtp_parse_bdat(c.arg, c.arglen, &v, &last);
		(void)smtp_parse_helo(c.arg, c.arglen);
		(void)smtp_parse_number(c.arg, c.arglen, &v);
	}
	/* The bare bytes through every argument parser as well. */
	(void)smtp_parse_path_args(base, n, "FROM:", 1, 1, &a, &ae);
	(void)smtp_parse_path_args(base, n, "TO:", 1, 1, &a, &ae);
	(void)smtp_parse_bdat(base, n, &v, &last);
	(void)smtp_parse_helo(base, n);
	(void)smtp_parse_number(base, n, &v);
	free(b);
}

static void
test_byte_by_byte(void **state)
{
	static const char *const bracketed[] = {
		"FROM:<alice@example.com>", "TO:<\"a> b\"@[192.0.2.1]>",
		"TO:<postmaster>", "FROM:<>", "FROM:<@r.example:u@example.com>",
	};
	struct smtp_path_args a;
	enum addr_error ae;

	for (size_t i = 0; i < sizeof(line_samples) / sizeof(line_samples[0]);
	    i++) {
		const char *s = line_samples[i];
		size_t n = strlen(s);
		enum smtp_verb v;

		assert_int_equal(cmd_n(s, n, &v, NULL), SMTP_PARSE_OK);
		assert_int_not_equal(v, SMTP_CMD_UNKNOWN);
		for (size_t k = 0; k <= n; k++) {
			feed_everything(s, k);
			feed_everything(s + k, n - k);
		}
	}

	for (size_t i = 0; i < sizeof(bracketed) / sizeof(bracketed[0]); i++) {
		const char *s = bracketed[i];
		size_t n = strlen(s);
		const char *prefix = s[0] == 'F' ? "FROM:" : "TO:";

		assert_int_equal(args_n(s, n, prefix, 1, 1, &a, &ae),
		    SMTP_ARGS_OK);
		for (size_t k = 0; k < n; k++)
			if (args_n(s, k, prefix, 1, 1, &a, &ae) == SMTP_ARGS_OK)
				fail_msg("prefix %zu of \"%s\" accepted", k, s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_verb),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_verb_boundaries),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_bad_chars),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_verb_name),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_path_errors),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_param_count),
		cmocka_unit_test(test_number),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_byte_by_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
