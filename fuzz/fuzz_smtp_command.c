/*
 * fuzz_smtp_command.c - libFuzzer target for smtpd/parse.c.
 *
 * The first input byte is options: bits 0 and 1 are allow_no_domain and
 * allow_utf8 for the MAIL/RCPT argument call that gets the deepest checks
 * (the other three combinations run too, to check that looser options
 * never refuse or change what stricter ones accept); bit 2 picks "TO:"
 * over "FROM:" for a pass of the raw line through the argument parsers.
 * The rest is one command line.  It goes through smtp_parse_command(), its
 * argument through every argument parser, and each result is checked
 * against a reference written differently (split first, then judge) and
 * for the shape the session relies on: pointers inside the input, limits
 * kept.  Every parse reads from a heap copy of exactly the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpd/parse.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_smtp_command: %s:%d: check failed: %s\n",\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

static const char *const http_methods[] = {
	"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT",
};

/* A NUL-terminated heap copy, for the reference checks only. */
static char *
cstr(const char *s, size_t n)
{
	char *c = malloc(n + 1);

	CHECK(c != NULL);
	memcpy(c, s, n);
	c[n] = '\0';
	return c;
}

/* Reference for smtp_parse_command's status. */
static enum smtp_parse_status
ref_status(const char *l, size_t n)
{
	size_t i;
	int blank = 1;

	if (n > SMTP_LINE_MAX - 2)
		return SMTP_PARSE_TOO_LONG;
	for (i = 0; i < n; i++)
		if (l[i] == '\r' || l[i] == '\n' || l[i] == '\0')
			return SMTP_PARSE_BAD_CHAR;
	for (i = 0; i < n; i++)
		if (l[i] != ' ')
			blank = 0;
	return blank ? SMTP_PARSE_EMPTY : SMTP_PARSE_OK;
}

/*
 * Reference for the verb: the text before the first space, compared with
 * every verb name through strcasecmp.  HTTP methods need a non-space after
 * the run of spaces that follows them.
 */
static enum smtp_verb
ref_verb(const char *l, size_t n)
{
	char *c = cstr(l, n), *sp = strchr(c, ' ');
	enum smtp_verb v = SMTP_CMD_UNKNOWN;
	int more = 0;

	if (sp != NULL) {
		*sp = '\0';
		for (char *q = sp + 1; *q != '\0'; q++)
			if (*q != ' ')
				more = 1;
	}
	for (int i = 1; i < SMTP_CMD__COUNT; i++)
		if (i != SMTP_CMD_HTTP &&
		    strcasecmp(c, smtp_verb_name((enum smtp_verb)i)) == 0)
			v = (enum smtp_verb)i;
	if (v == SMTP_CMD_UNKNOWN && more)
		for (size_t i = 0; i < sizeof(http_methods) /
		    sizeof(http_methods[0]); i++)
			if (strcasecmp(c, http_methods[i]) == 0)
				v = SMTP_CMD_HTTP;
	free(c);
	return v;
}

static int
ref_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

/* The shape of a successful MAIL/RCPT result. */
static void
check_args(const struct smtp_path_args *a, const char *arg, size_t len)
{
	const char *nul = memchr(a->path.mailbox, '\0', sizeof(a->path.mailbox));
	const char *prev_end = arg;

	CHECK(nul != NULL);
	CHECK(a->path.domain >= a->path.mailbox && a->path.domain <= nul);
	CHECK(a->nparams <= SMTP_PARAMS_MAX);
	for (size_t i = 0; i < a->nparams; i++) {
		const struct smtp_param *p = &a->params[i];
		const char *pend;

		/* In order, inside the argument, separated by a space. */
		CHECK(p->key > prev_end && p->key[-1] == ' ');
		CHECK(p->keylen >= 1);
		CHECK(ref_alnum((unsigned char)p->key[0]));
		for (size_t k = 0; k < p->keylen; k++)
			CHECK(ref_alnum((unsigned char)p->key[k]) ||
			    p->key[k] == '-');
		pend = p->key + p->keylen;
		if (p->value != NULL) {
			CHECK(p->value == pend + 1 && *pend == '=');
			CHECK(p->valuelen >= 1);
			for (size_t k = 0; k < p->valuelen; k++) {
				unsigned char c = (unsigned char)p->value[k];

				CHECK(c >= 33 && c <= 126 && c != '=');
			}
			pend = p->value + p->valuelen;
		} else
			CHECK(p->valuelen == 0);
		CHECK(pend <= arg + len);
		CHECK(pend == arg + len || *pend == ' ');
		for (size_t j = 0; j < i; j++)
			CHECK(p->keylen != a->params[j].keylen ||
			    strncasecmp(p->key, a->params[j].key,
			    p->keylen) != 0);
		prev_end = pend;
	}
	/* Only spaces after the last parameter. */
	for (const char *q = prev_end; q < arg + len && a->nparams > 0; q++)
		CHECK(*q == ' ');
}

/*
 * Deeper checks on one result: smtp_param_find returns each parameter
 * under its own name in any case, and the argument rebuilt in canonical
 * form ("PREFIX<mailbox> KEY=VALUE ...") parses back to the same result.
 */
static void
check_deep(const struct smtp_path_args *a, const char *prefix, int opts)
{
	const unsigned form = ADDR_F_NO_BRACKETS | ADDR_F_SOURCE_ROUTE;
	struct smtp_path_args b;
	enum addr_error ae;
	size_t cap = strlen(prefix) + sizeof(a->path.mailbox) + 2, n;
	char *buf, *w;

	for (size_t i = 0; i < a->nparams; i++) {
		char *k = cstr(a->params[i].key, a->params[i].keylen);

		CHECK(smtp_param_find(a, k) == &a->params[i]);
		for (char *q = k; *q != '\0'; q++)
			if (*q >= 'a' && *q <= 'z')
				*q = (char)(*q - 'a' + 'A');
		CHECK(smtp_param_find(a, k) == &a->params[i]);
		free(k);
		cap += 2 + a->params[i].keylen + a->params[i].valuelen;
	}
	CHECK(smtp_param_find(a, "") == NULL);

	buf = malloc(cap);
	CHECK(buf != NULL);
	w = buf;
	w += sprintf(w, "%s<%s>", prefix, a->path.mailbox);
	for (size_t i = 0; i < a->nparams; i++) {
		*w++ = ' ';
		memcpy(w, a->params[i].key, a->params[i].keylen);
		w += a->params[i].keylen;
		if (a->params[i].value != NULL) {
			*w++ = '=';
			memcpy(w, a->params[i].value, a->params[i].valuelen);
			w += a->params[i].valuelen;
		}
	}
	n = (size_t)(w - buf);
	CHECK(n <= cap);
	CHECK(smtp_parse_path_args(buf, n, prefix, opts & 1, opts >> 1, &b,
	    &ae) == SMTP_ARGS_OK);
	CHECK(strcmp(a->path.mailbox, b.path.mailbox) == 0);
	CHECK((a->path.flags & ~form) == b.path.flags);
	CHECK(a->nparams == b.nparams);
	for (size_t i = 0; i < a->nparams; i++) {
		CHECK(a->params[i].keylen == b.params[i].keylen);
		CHECK(memcmp(a->params[i].key, b.params[i].key,
		    a->params[i].keylen) == 0);
		CHECK((a->params[i].value == NULL) ==
		    (b.params[i].value == NULL));
		CHECK(a->params[i].valuelen == b.params[i].valuelen);
		CHECK(a->params[i].valuelen == 0 ||
		    memcmp(a->params[i].value, b.params[i].value,
		    a->params[i].valuelen) == 0);
	}
	free(buf);
}

static void
check_path_args(const char *arg, size_t len, const char *prefix, int opts)
{
	struct smtp_path_args r[4];
	enum smtp_args_status st[4];
	enum addr_error ae;

	for (int o = 0; o < 4; o++) {
		memset(&r[o], 0xa5, sizeof(r[o]));
		st[o] = smtp_parse_path_args(arg, len, prefix, o & 1, o >> 1,
		    &r[o], &ae);
		CHECK((st[o] == SMTP_ARGS_BAD_PATH ||
		    st[o] == SMTP_ARGS_PATH_TOO_LONG) == (ae != ADDR_OK));
		CHECK(st[o] != SMTP_ARGS_PATH_TOO_LONG ||
		    ae == ADDR_ERR_PATH_TOO_LONG);
		if (st[o] == SMTP_ARGS_OK)
			check_args(&r[o], arg, len);
		if (st[o] == SMTP_ARGS_OK && o == opts)
			check_deep(&r[o], prefix, opts);
	}
	/* Looser options accept what stricter ones do, the same way. */
	for (int o = 0; o < 4; o++)
		for (int p = 0; p < 4; p++)
			if ((o & p) == o && st[o] == SMTP_ARGS_OK) {
				CHECK(st[p] == SMTP_ARGS_OK);
				CHECK(strcmp(r[o].path.mailbox,
				    r[p].path.mailbox) == 0);
				CHECK(r[o].path.flags == r[p].path.flags);
				CHECK(r[o].nparams == r[p].nparams);
			}
}

static void
check_number(const char *s, size_t n)
{
	uint64_t v = 12345;
	int r = smtp_parse_number(s, n, &v);
	int digits = n >= 1 && n <= 20;

	for (size_t i = 0; i < n && digits; i++)
		if (s[i] < '0' || s[i] > '9')
			digits = 0;
	if (!digits) {
		CHECK(r == -1 && v == 12345);
		return;
	}
	/* 20 digits overflow exactly when they compare above UINT64_MAX. */
	{
		char *c = cstr(s, n);
		const char *m = "18446744073709551615", *q = c;

		while (*q == '0' && q[1] != '\0')
			q++;
		if (strlen(q) > 20 || (strlen(q) == 20 && strcmp(q, m) > 0)) {
			CHECK(r == -1 && v == 12345);
		} else {
			CHECK(r == 0);
			CHECK(v == strtoull(c, NULL, 10));
		}
		free(c);
	}
}

static void
check_bdat(const char *s, size_t n)
{
	uint64_t size = 1, nv;
	int last = 7, r = smtp_parse_bdat(s, n, &size, &last);
	const char *sp = memchr(s, ' ', n);
	size_t nlen = sp != NULL ? (size_t)(sp - s) : n;
	int ok = smtp_parse_number(s, nlen, &nv) == 0;

	if (sp != NULL)
		ok = ok && n - nlen == 5 && strncasecmp(sp, " last", 5) == 0;
	if (!ok) {
		CHECK(r == -1 && size == 1 && last == 7);
		return;
	}
	CHECK(r == 0 && size == nv && last == (sp != NULL));
}

static void
check_helo(const char *s, size_t n)
{
	int ok = n >= 1 && n <= 255;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			ok = 0;
	CHECK((smtp_parse_helo(s, n) == 0) == ok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command c;
	enum smtp_parse_status st;
	enum smtp_verb rv;
	char *line;
	size_t n;
	int opts;

	if (size < 1)
		return 0;
	opts = data[0] & 3;
	n = size - 1;
	/* An exact heap copy, so ASan sees any read past the end. */
	line = malloc(n != 0 ? n : 1);
	CHECK(line != NULL);
	memcpy(line, data + 1, n);

	memset(&c, 0xa5, sizeof(c));
	st = smtp_parse_command(line, n, &c);
	CHECK(st == ref_status(line, n));
	CHECK(c.arg >= line && c.arg <= line + n);
	CHECK(c.arglen <= (size_t)(line + n - c.arg));
	CHECK(c.arglen == 0 || c.arg[c.arglen - 1] != ' ');
	CHECK(smtp_verb_name(c.verb) != NULL);
	if (st != SMTP_PARSE_OK) {
		CHECK(c.verb == SMTP_CMD_UNKNOWN && c.arglen == 0);
		goto out;
	}
	rv = ref_verb(line, n);
	CHECK(c.verb == rv);
	if (c.verb != SMTP_CMD_UNKNOWN) {
		/* The argument is what follows the verb and its spaces. */
		const char *sp = memchr(line, ' ', n);

		CHECK(c.arglen == 0 || (sp != NULL && c.arg > sp &&
		    c.arg[-1] == ' ' && c.arg[0] != ' '));
		for (const char *q = c.arg + c.arglen; q < line + n; q++)
			CHECK(*q == ' ');
	} else
		CHECK(c.arg == line);

	if (c.verb == SMTP_CMD_MAIL)
		check_path_args(c.arg, c.arglen, "FROM:", opts);
	else if (c.verb == SMTP_CMD_RCPT)
		check_path_args(c.arg, c.arglen, "TO:", opts);
	check_bdat(c.arg, c.arglen);
	check_helo(c.arg, c.arglen);
	check_number(c.arg, c.arglen);
out:
	/* The raw line through the argument parsers too. */
	if (n <= SMTP_LINE_MAX) {
		check_path_args(line, n, (data[0] & 4) ? "TO:" : "FROM:", opts);
		check_bdat(line, n);
		check_helo(line, n);
		check_number(line, n);
	}
	free(line);
	return 0;
}
