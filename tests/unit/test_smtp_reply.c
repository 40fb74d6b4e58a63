/*
 * test_smtp_reply.c - unit tests for aliases/reply.c: SMTP replies from a
 * remote server, their one-line rendering, and EHLO extensions.
 *
 * Every input goes through run_all(): fed whole, one byte at a time (with
 * an empty call between bytes), and split in two at every position (at a
 * sample of positions for the very long ones); every way must give the
 * same replies, ending at the same offsets, and the same error at the same
 * offset.  Each piece is a heap copy of exactly its length, so
 * AddressSanitizer reports any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases/reply.h"

#define S(lit)	lit, sizeof(lit) - 1
#define EVENTS_MAX	8

/* What one way of feeding saw: replies, then perhaps an error. */
struct event {
	enum smtp_reply_result res;	/* DONE or ERROR */
	size_t end;			/* offset after the bytes taken */
	enum smtp_reply_error err;
	struct smtp_reply reply;	/* DONE */
};

struct run {
	size_t nev;
	struct event ev[EVENTS_MAX];
};

/* A heap copy of exactly n bytes; malloc(1) when n is 0. */
static char *
dup_exact(const char *s, size_t n)
{
	char *b = malloc(n > 0 ? n : 1);

	assert_non_null(b);
	if (n > 0)
		memcpy(b, s, n);
	return b;
}

/* The shape every parsed reply has, whatever the input. */
static void
check_reply(const struct smtp_reply *r)
{
	size_t i;

	assert_true(r->code >= 200 && r->code <= 559);
	assert_true(r->code / 10 % 10 <= 5);
	assert_true(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	assert_true(r->nkept >= 1 && r->nkept <= r->nlines);
	assert_int_equal(r->truncated, r->nkept < r->nlines);
	assert_true(r->textlen < SMTP_REPLY_TEXT_MAX);
	assert_int_equal(strlen(r->text), r->textlen);
	for (i = 0; i < r->textlen; i++) {
		unsigned char c = (unsigned char)r->text[i];

		assert_true(c >= 0x20 || c == '\t' || c == '\n');
		assert_true(c != 0x7f);
	}
	assert_true(strlen(r->enhanced) < SMTP_REPLY_ENHANCED_MAX);
	if (r->enhanced[0] != '\0')
		assert_int_equal(r->enhanced[0] - '0', r->code / 100);
}

/*
 * Feed s[0..n) in the pieces cut[0..ncut) delimits, recording each reply
 * and the error, if any.
 */
static void
feed(const char *s, size_t n, const size_t *cut, size_t ncut, struct run *out)
{
	struct smtp_reply_parser *p = malloc(sizeof(*p));
	size_t k;

	assert_non_null(p);
	smtp_reply_parser_init(p);
	out->nev = 0;
	for (k = 0; k + 1 < ncut; k++) {
		size_t off = cut[k], clen = cut[k + 1] - cut[k], pos = 0;
		char *b = dup_exact(s + off, clen);

		assert_true(cut[k + 1] <= n);
		for (;;) {
			size_t used = 99999;
			enum smtp_reply_result res =
			    smtp_reply_parse(p, b + pos, clen - pos, &used);
			struct event *e;

			assert_true(used <= clen - pos);
			if (res == SMTP_REPLY_MORE) {
				assert_int_equal(used, clen - pos);
				assert_int_equal(p->error, SMTP_REPLY_ERR_NONE);
				break;
			}
			assert_true(res == SMTP_REPLY_DONE ||
			    res == SMTP_REPLY_ERROR);
			assert_true(used > 0);
			assert_true(out->nev < EVENTS_MAX);
			e = &out->ev[out->nev++];
			e->res = res;
			e->end = off + pos + used;
			e->err = p->error;
			if (res == SMTP_REPLY_ERROR) {
				assert_int_not_equal(p->error,
				    SMTP_REPLY_ERR_NONE);
				/* Sticky. */
				used = 99999;
				assert_int_equal(smtp_reply_parse(p, b, clen,
				    &used), SMTP_REPLY_ERROR);
				assert_int_equal(used, 0);
				free(b);
				free(p);
				return;
			}
			assert_int_equal(p->error, SMTP_REPLY_ERR_NONE);
			check_reply(&p->reply);
			e->reply = p->reply;
			pos += used;
			if (pos == clen)
				break;
		}
		free(b);
	}
	free(p);
}

static void
assert_same(const struct run *a, const struct run *b, size_t how)
{
	size_t i;

	if (a->nev != b->nev)
		fail_msg("feeding %zu: %zu events, not %zu", how, b->nev,
		    a->nev);
	for (i = 0; i < a->nev; i++) {
		const struct event *x = &a->ev[i], *y = &b->ev[i];

		assert_int_equal(x->res, y->res);
		assert_int_equal(x->end, y->end);
		assert_int_equal(x->err, y->err);
		if (x->res != SMTP_REPLY_DONE)
			continue;
		assert_int_equal(x->reply.code, y->reply.code);
		assert_string_equal(x->reply.enhanced, y->reply.enhanced);
		assert_int_equal(x->reply.nlines, y->reply.nlines);
		assert_int_equal(x->reply.nkept, y->reply.nkept);
		assert_int_equal(x->reply.truncated, y->reply.truncated);
		assert_int_equal(x->reply.textlen, y->reply.textlen);
		assert_memory_equal(x->reply.text, y->reply.text,
		    x->reply.textlen + 1);
	}
}

/*
 * Feed s every way (see the top of the file), check they agree, and
 * return what feeding it whole gave; the caller frees it.
 */
static struct run *
run_all(const char *s, size_t n)
{
	struct run *whole = malloc(sizeof(*whole));
	struct run *other = malloc(sizeof(*other));
	size_t *cut = malloc((2 * n + 3) * sizeof(*cut));
	size_t i, k, stride;

	assert_non_null(whole);
	assert_non_null(other);
	assert_non_null(cut);

	cut[0] = 0;
	cut[1] = n;
	feed(s, n, cut, 2, whole);

	/* One byte at a time, with an empty piece between bytes. */
	for (i = 0, k = 0; i <= n; i++) {
		cut[k++] = i;
		cut[k++] = i;
	}
	feed(s, n, cut, k, other);
	assert_same(whole, other, 0);

	stride = n <= 8192 ? 1 : n / 997;
	for (i = 0; i <= n; i += stride) {
		cut[0] = 0;
		cut[1] = i;
		cut[2] = n;
		feed(s, n, cut, 3, other);
		assert_same(whole, other, i + 1);
	}
	free(other);
	free(cut);
	return whole;
}

/* s must be exactly one reply, all of it taken. */
static void
one_reply_n(const char *s, size_t n, struct smtp_reply *out)
{
	struct run *r = run_all(s, n);

	if (r->nev != 1 || r->ev[0].res != SMTP_REPLY_DONE)
		fail_msg("\"%.*s\": not one reply (%zu events, error %s)",
		    (int)n, s, r->nev, r->nev > 0 ?
		    smtp_reply_strerror(r->ev[r->nev - 1].err) : "none");
	assert_int_equal(r->ev[0].end, n);
	*out = r->ev[0].reply;
	free(r);
}

/* s must fail with err, found at byte offset at - 1 (at bytes taken). */
static void
error_at_n(const char *s, size_t n, enum smtp_reply_error err, size_t at)
{
	struct run *r = run_all(s, n);
	const struct event *e;

	if (r->nev == 0 || r->ev[r->nev - 1].res != SMTP_REPLY_ERROR)
		fail_msg("\"%.*s\": no error", (int)n, s);
	e = &r->ev[r->nev - 1];
	if (e->err != err)
		fail_msg("\"%.*s\": %s, not %s", (int)n, s,
		    smtp_reply_strerror(e->err), smtp_reply_strerror(err));
	assert_int_equal(e->end, at);
	free(r);
}

/* s must give no reply and no error: it waits for more. */
static void
incomplete_n(const char *s, size_t n)
{
	struct run *r = run_all(s, n);

	assert_int_equal(r->nev, 0);
	free(r);
}

#define ONE(lit, r)		one_reply_n(S(lit), (r))
#define ERROR_AT(lit, e, at)	error_at_n(S(lit), (e), (at))
#define INCOMPLETE(lit)		incomplete_n(S(lit))

/* Expect a single reply with this code, enhanced code, text and lines. */
#define REPLY(lit, c, enh, txt, lines) do {				\
	struct smtp_reply r_;						\
	ONE(lit, &r_);							\
	assert_int_equal(r_.code, (c));					\
	assert_string_equal(r_.enhanced, (enh));			\
	assert_string_equal(r_.text, (txt));				\
	assert_int_equal(r_.nlines, (lines));				\
	assert_int_equal(r_.nkept, (lines));				\
	assert_int_equal(r_.truncated, 0);				\
} while (0)

static void
test_single_line(void **state)
{
	REPLY("250 OK\r\n", 250, "", "OK", 1);
	REPLY("220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n", 220, "",
	    "mx.example.com ESMTP Postfix (Debian/GNU)", 1);
	REPLY("250\r\n", 250, "", "", 1);
	REPLY("250 \r\n", 250, "", "", 1);
	REPLY("250  two spaces \r\n", 250, "", " two spaces ", 1);
	REPLY("354 End data with <CR><LF>.<CR><LF>\r\n", 354, "",
	    "End data with <CR><LF>.<CR><LF>", 1);
	REPLY("221 2.0.0 Bye\r\n", 221, "2.0.0", "Bye", 1);
	REPLY("421 4.3.2 Service shutting down\r\n", 421, "4.3.2",
	    "Service shutting down", 1);
	REPLY("200 -\r\n", 200, "", "-", 1);
	REPLY("559 x\r\n", 559, "", "x", 1);
	REPLY("250 a\tb\r\n", 250, "", "a\tb", 1);
}

/* Every three-digit code: 2..5, 0..5, 0..9 parse, nothing else does. */
static void
test_every_code(void **state)
{
	char buf[16];

	for (int c = 0; c < 1000; c++) {
		int ok = c / 100 >= 2 && c / 100 <= 5 && c / 10 % 10 <= 5;
		struct smtp_reply_parser p;
		size_t used;
		enum smtp_reply_result res;
		int n = snprintf(buf, sizeof(buf), "%03d ok\r\n", c);

		smtp_reply_parser_init(&p);
		res = smtp_reply_parse(&p, buf, (size_t)n, &used);
		if (ok) {
			assert_int_equal(res, SMTP_REPLY_DONE);
			assert_int_equal(p.reply.code, c);
			assert_int_equal(used, (size_t)n);
		} else {
			assert_int_equal(res, SMTP_REPLY_ERROR);
			assert_int_equal(p.error, SMTP_REPLY_ERR_BAD_CODE);
			assert_int_equal(used, c / 100 >= 2 && c / 100 <= 5 ?
			    2 : 1);
		}
	}
}

static void
test_multi_line(void **state)
{
	REPLY("250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
	    250, "", "mx.example.com\nPIPELINING\nSIZE 1000", 3);
	REPLY("250-first\r\n250-\r\n250 last\r\n", 250, "",
	    "first\n\nlast", 3);
	REPLY("250-a\r\n250\r\n", 250, "", "a\n", 2);
	REPLY("250-\r\n250 \r\n", 250, "", "\n", 2);
	REPLY("220-mx.example.com ESMTP\r\n220-no UCE\r\n220 ready\r\n", 220,
	    "", "mx.example.com ESMTP\nno UCE\nready", 3);
	/* The enhanced code on every line, as RFC 2034 asks. */
	REPLY("550-5.1.1 The email account that you tried to reach does not"
	    " exist. Please try\r\n"
	    "550-5.1.1 double-checking the recipient's email address for "
	    "typos or\r\n"
	    "550-5.1.1 unnecessary spaces.\r\n"
	    "550 5.1.1 https://support.example/?p=NoSuchUser x1si\r\n",
	    550, "5.1.1",
	    "The email account that you tried to reach does not exist. "
	    "Please try\n"
	    "double-checking the recipient's email address for typos or\n"
	    "unnecessary spaces.\n"
	    "https://support.example/?p=NoSuchUser x1si", 4);
}

static void
test_pipelined(void **state)
{
	static const char s[] =
	    "250 2.1.0 Ok\r\n"
	    "250 2.1.5 Ok\r\n"
	    "550-5.1.1 <b@example.com>:\r\n550 5.1.1 Recipient rejected\r\n"
	    "354 End data\n"
	    "250 2.0.0 Ok: queued as";
	struct run *r = run_all(S(s));

	assert_int_equal(r->nev, 4);
	assert_int_equal(r->ev[0].end, 14);
	assert_int_equal(r->ev[0].reply.code, 250);
	assert_string_equal(r->ev[0].reply.enhanced, "2.1.0");
	assert_string_equal(r->ev[0].reply.text, "Ok");
	assert_int_equal(r->ev[1].end, 28);
	assert_string_equal(r->ev[1].reply.enhanced, "2.1.5");
	assert_int_equal(r->ev[2].end, 28 + 28 + 30);
	assert_int_equal(r->ev[2].reply.code, 550);
	assert_int_equal(r->ev[2].reply.nlines, 2);
	assert_string_equal(r->ev[2].reply.text,
	    "<b@example.com>:\nRecipient rejected");
	assert_int_equal(r->ev[3].end, 86 + 13);
	assert_int_equal(r->ev[3].reply.code, 354);
	assert_string_equal(r->ev[3].reply.text, "End data");
	free(r);

	/* A bad reply after good ones: the good ones still count. */
	r = run_all(S("250 Ok\r\n250 Ok\r\n2x0 bad\r\n"));
	assert_int_equal(r->nev, 3);
	assert_int_equal(r->ev[0].res, SMTP_REPLY_DONE);
	assert_int_equal(r->ev[1].res, SMTP_REPLY_DONE);
	assert_int_equal(r->ev[2].res, SMTP_REPLY_ERROR);
	assert_int_equal(r->ev[2].err, SMTP_REPLY_ERR_BAD_CODE);
	assert_int_equal(r->ev[2].end, 18);
	free(r);
}

/* Each call after DONE starts a new reply: nothing carries over. */
static void
test_reuse(void **state)
{
	struct smtp_reply_parser p;
	size_t used;

	smtp_reply_parser_init(&p);
	assert_int_equal(smtp_reply_parse(&p, S("550-5.1.1 a\r\n550 b\r\n250"),
	    &used), SMTP_REPLY_DONE);
	assert_int_equal(used, 20);
	assert_string_equal(p.reply.enhanced, "5.1.1");
	assert_int_equal(smtp_reply_parse(&p, "250", 3, &used),
	    SMTP_REPLY_MORE);
	assert_int_equal(used, 3);
	assert_int_equal(p.reply.code, 0);
	assert_int_equal(p.reply.nlines, 0);
	assert_int_equal(smtp_reply_parse(&p, S(" c\r\n"), &used),
	    SMTP_REPLY_DONE);
	assert_int_equal(p.reply.code, 250);
	assert_string_equal(p.reply.enhanced, "");
	assert_string_equal(p.reply.text, "c");
	assert_int_equal(p.reply.nlines, 1);

	/* An empty call after DONE clears the reply. */
	assert_int_equal(smtp_reply_parse(&p, "", 0, &used), SMTP_REPLY_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(p.reply.code, 0);

	/* An error sticks until init. */
	assert_int_equal(smtp_reply_parse(&p, S("999"), &used),
	    SMTP_REPLY_ERROR);
	assert_int_equal(used, 1);
	assert_int_equal(smtp_reply_parse(&p, S("250 ok\r\n"), &used),
	    SMTP_REPLY_ERROR);
	assert_int_equal(used, 0);
	assert_int_equal(smtp_reply_parse(&p, "", 0, &used), SMTP_REPLY_ERROR);
	smtp_reply_parser_init(&p);
	assert_int_equal(p.error, SMTP_REPLY_ERR_NONE);
	assert_int_equal(smtp_reply_parse(&p, S("250 ok\r\n"), &used),
	    SMTP_REPLY_DONE);
	assert_string_equal(p.reply.text, "ok");
}

static void
test_code_mismatch(void **state)
{
	ERROR_AT("250-a\r\n251 b\r\n", SMTP_REPLY_ERR_CODE_MISMATCH, 10);
	ERROR_AT("250-a\r\n240 b\r\n", SMTP_REPLY_ERR_CODE_MISMATCH, 9);
	ERROR_AT("250-a\r\n550 b\r\n", SMTP_REPLY_ERR_CODE_MISMATCH, 8);
	ERROR_AT("250-a\r\n250-b\r\n550 c\r\n", SMTP_REPLY_ERR_CODE_MISMATCH,
	    15);
	/* A bad digit is a bad code first, a mismatch second. */
	ERROR_AT("250-a\r\n2x0 b\r\n", SMTP_REPLY_ERR_BAD_CODE, 9);
	ERROR_AT("250-a\r\n650 b\r\n", SMTP_REPLY_ERR_BAD_CODE, 8);
	/* The same code on every line is fine, of course. */
	REPLY("451-a\r\n451-b\r\n451 c\r\n", 451, "", "a\nb\nc", 3);
}

static void
test_bad_code(void **state)
{
	ERROR_AT("150 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("650 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("050 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("260 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 2);
	ERROR_AT("290 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 2);
	ERROR_AT("2a0 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 2);
	ERROR_AT("25x x\r\n", SMTP_REPLY_ERR_BAD_CODE, 3);
	ERROR_AT("25: x\r\n", SMTP_REPLY_ERR_BAD_CODE, 3);
	ERROR_AT(" 250 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("-250 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("\t250 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("\0" "250 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("2\0" "50 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 2);
	ERROR_AT("\xb2" "50 x\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("OK\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	ERROR_AT("HTTP/1.1 400 Bad Request\r\n", SMTP_REPLY_ERR_BAD_CODE, 1);
	/* Too short: found at the line end. */
	ERROR_AT("25\r\n", SMTP_REPLY_ERR_BAD_CODE, 3);
	ERROR_AT("2\r\n", SMTP_REPLY_ERR_BAD_CODE, 2);
	ERROR_AT("25\n", SMTP_REPLY_ERR_BAD_CODE, 3);
	ERROR_AT("250-a\r\n25\r\n", SMTP_REPLY_ERR_BAD_CODE, 10);
	INCOMPLETE("25");
	INCOMPLETE("250");
}

static void
test_bad_separator(void **state)
{
	ERROR_AT("250x\r\n", SMTP_REPLY_ERR_BAD_SEPARATOR, 4);
	ERROR_AT("250\tOK\r\n", SMTP_REPLY_ERR_BAD_SEPARATOR, 4);
	ERROR_AT("2500 OK\r\n", SMTP_REPLY_ERR_BAD_SEPARATOR, 4);
	ERROR_AT("250_OK\r\n", SMTP_REPLY_ERR_BAD_SEPARATOR, 4);
	ERROR_AT("250=OK\r\n", SMTP_REPLY_ERR_BAD_SEPARATOR, 4);
	ERROR_AT("250\0OK\r\n", SMTP_REPLY_ERR_BAD_SEPARATOR, 4);
	ERROR_AT("250-a\r\n250+b\r\n", SMTP_REPLY_ERR_BAD_SEPARATOR, 11);
	ERROR_AT("250-a\r\n250a\r\n", SMTP_REPLY_ERR_BAD_SEPARATOR, 11);
	INCOMPLETE("250-");
	INCOMPLETE("250-a\r\n250");
}

/* A line of exactly n octets before its line end, then CRLF. */
static char *
long_line(size_t n, const char *code_sep, size_t *len)
{
	char *s = malloc(n + 2);

	assert_non_null(s);
	memcpy(s, code_sep, 4);
	memset(s + 4, 'a', n - 4);
	memcpy(s + n, "\r\n", 2);
	*len = n + 2;
	return s;
}

static void
test_line_length(void **state)
{
	const size_t max = SMTP_REPLY_LINE_MAX - 2;
	struct smtp_reply r;
	char *s, *two;
	size_t n;

	s = long_line(max, "250 ", &n);
	one_reply_n(s, n, &r);
	assert_int_equal(r.textlen, max - 4);
	/* Also with a bare LF. */
	s[n - 2] = '\n';
	one_reply_n(s, n - 1, &r);
	assert_int_equal(r.textlen, max - 4);
	free(s);

	/* One more is refused at that octet, before any line end. */
	s = long_line(max + 1, "250 ", &n);
	error_at_n(s, n, SMTP_REPLY_ERR_LINE_TOO_LONG, max + 1);
	error_at_n(s, max + 1, SMTP_REPLY_ERR_LINE_TOO_LONG, max + 1);
	incomplete_n(s, max);
	free(s);

	/* The limit is per line: a longest continuation, then a longest last. */
	s = long_line(max, "250-", &n);
	two = malloc(2 * n);
	assert_non_null(two);
	memcpy(two, s, n);
	memcpy(two + n, s, n);
	two[n + 3] = ' ';
	one_reply_n(two, 2 * n, &r);
	assert_int_equal(r.nlines, 2);
	assert_int_equal(r.textlen, 2 * (max - 4) + 1);
	/* And the second one a byte too long. */
	two[2 * n - 2] = 'a';
	error_at_n(two, 2 * n, SMTP_REPLY_ERR_LINE_TOO_LONG, n + max + 1);
	free(two);
	free(s);
}

/*
 * n lines "250-lD" (8 octets: D a digit), the last "250 end" or, when
 * not finish, a continuation too.
 */
static char *
many_lines(size_t n, int finish, size_t *len)
{
	char *s = malloc(n * 16 + 1);
	size_t o = 0, i;

	assert_non_null(s);
	for (i = 1; i <= n; i++) {
		if (i == n && finish)
			o += (size_t)sprintf(s + o, "250 end\r\n");
		else
			o += (size_t)sprintf(s + o, "250-l%zu\r\n", i % 10);
	}
	*len = o;
	return s;
}

static void
test_line_count(void **state)
{
	struct smtp_reply r;
	char *s;
	size_t n, i;

	s = many_lines(SMTP_REPLY_LINES_MAX, 1, &n);
	one_reply_n(s, n, &r);
	assert_int_equal(r.nlines, SMTP_REPLY_LINES_MAX);
	assert_int_equal(r.nkept, SMTP_REPLY_LINES_MAX);
	free(s);

	/* The last line allowed may not say more will come. */
	s = many_lines(SMTP_REPLY_LINES_MAX, 0, &n);
	error_at_n(s, n, SMTP_REPLY_ERR_TOO_MANY_LINES,
	    (SMTP_REPLY_LINES_MAX - 1) * 8 + 4);
	free(s);
	s = many_lines(SMTP_REPLY_LINES_MAX + 1, 1, &n);
	error_at_n(s, n, SMTP_REPLY_ERR_TOO_MANY_LINES,
	    (SMTP_REPLY_LINES_MAX - 1) * 8 + 4);
	/* Up to there it is only waiting. */
	incomplete_n(s, (SMTP_REPLY_LINES_MAX - 1) * 8 + 3);
	free(s);

	/* The count starts again with each reply. */
	s = malloc(3 * SMTP_REPLY_LINES_MAX * 16);
	assert_non_null(s);
	n = 0;
	for (i = 0; i < 3; i++) {
		size_t k;
		char *one = many_lines(SMTP_REPLY_LINES_MAX, 1, &k);

		memcpy(s + n, one, k);
		n += k;
		free(one);
	}
	{
		struct run *run = run_all(s, n);

		assert_int_equal(run->nev, 3);
		for (i = 0; i < 3; i++) {
			assert_int_equal(run->ev[i].res, SMTP_REPLY_DONE);
			assert_int_equal(run->ev[i].reply.nlines,
			    SMTP_REPLY_LINES_MAX);
		}
		free(run);
	}
	free(s);
}

static void
test_control_bytes(void **state)
{
	/* Replaced with '?'; TAB kept; 8-bit kept raw. */
	REPLY("250 a\0b\x01\x1b[31m\x7f\tc\xc3\xa9\r\n", 250, "",
	    "a?b??[31m?\tc\xc3\xa9", 1);
	REPLY("550 \0\0\0\r\n", 550, "", "???", 1);
	REPLY("250-\x08\x0b\x0c\r\n250 \x1f\x7f\x80\xff\r\n", 250, "",
	    "???\n??\x80\xff", 2);
	/* A NUL does not end the text early. */
	REPLY("550 5.1.1 a\0b\r\n", 550, "5.1.1", "a?b", 1);
	/* Nor does a control byte hide an enhanced code or make one. */
	REPLY("550 5.1.1\0b\r\n", 550, "", "5.1.1?b", 1);
}

static void
test_line_ends(void **state)
{
	/* A bare LF ends a line, as a CRLF does. */
	REPLY("250 a\n", 250, "", "a", 1);
	REPLY("250-a\n250 b\r\n", 250, "", "a\nb", 2);
	REPLY("250-a\r\n250 b\n", 250, "", "a\nb", 2);
	REPLY("250\n", 250, "", "", 1);
	/* A CR must be followed by LF. */
	ERROR_AT("250 a\rb\r\n", SMTP_REPLY_ERR_BARE_CR, 7);
	ERROR_AT("250 a\r\r\n", SMTP_REPLY_ERR_BARE_CR, 7);
	ERROR_AT("250 a\r 250 b\r\n", SMTP_REPLY_ERR_BARE_CR, 7);
	ERROR_AT("250\r250 b\r\n", SMTP_REPLY_ERR_BARE_CR, 5);
	ERROR_AT("250-a\r\n250 b\rc", SMTP_REPLY_ERR_BARE_CR, 14);
	INCOMPLETE("250 a\r");
	INCOMPLETE("250-a\r\n250 b\r");
	/* Empty lines. */
	ERROR_AT("\r\n", SMTP_REPLY_ERR_EMPTY_LINE, 1);
	ERROR_AT("\n", SMTP_REPLY_ERR_EMPTY_LINE, 1);
	ERROR_AT("\r", SMTP_REPLY_ERR_EMPTY_LINE, 1);
	ERROR_AT("250-a\r\n\r\n250 b\r\n", SMTP_REPLY_ERR_EMPTY_LINE, 8);
	ERROR_AT("250 a\r\n\r\n", SMTP_REPLY_ERR_EMPTY_LINE, 8);
	ERROR_AT("250-a\n\n", SMTP_REPLY_ERR_EMPTY_LINE, 7);
	INCOMPLETE("");
}

static void
test_enhanced(void **state)
{
	REPLY("550 5.1.1 <x@y>: user unknown\r\n", 550, "5.1.1",
	    "<x@y>: user unknown", 1);
	REPLY("250 2.0.0\r\n", 250, "2.0.0", "", 1);
	REPLY("250 2.0.0 \r\n", 250, "2.0.0", "", 1);
	REPLY("550 5.1.1  two\r\n", 550, "5.1.1", " two", 1);
	REPLY("550 5.100.999 x\r\n", 550, "5.100.999", "x", 1);
	REPLY("452 4.2.2 Mailbox full\r\n", 452, "4.2.2", "Mailbox full", 1);
	REPLY("250 2.000.000 x\r\n", 250, "2.000.000", "x", 1);
	/* Absent. */
	REPLY("550 user unknown\r\n", 550, "", "user unknown", 1);
	REPLY("550\r\n", 550, "", "", 1);
	/* Its class must be the code's first digit; 3 is no class. */
	REPLY("550 4.1.1 x\r\n", 550, "", "4.1.1 x", 1);
	REPLY("250 5.0.0 x\r\n", 250, "", "5.0.0 x", 1);
	REPLY("354 3.0.0 go ahead\r\n", 354, "", "3.0.0 go ahead", 1);
	REPLY("450 2.0.0 x\r\n", 450, "", "2.0.0 x", 1);
	/* Malformed ones stay in the text. */
	REPLY("550 5.1 x\r\n", 550, "", "5.1 x", 1);
	REPLY("550 5.1. x\r\n", 550, "", "5.1. x", 1);
	REPLY("550 5..1 x\r\n", 550, "", "5..1 x", 1);
	REPLY("550 5.1.1234 x\r\n", 550, "", "5.1.1234 x", 1);
	REPLY("550 5.1234.1 x\r\n", 550, "", "5.1234.1 x", 1);
	REPLY("550 5.1.1x\r\n", 550, "", "5.1.1x", 1);
	REPLY("550 5.1.1.\r\n", 550, "", "5.1.1.", 1);
	REPLY("550 5.1.1:\r\n", 550, "", "5.1.1:", 1);
	REPLY("550 5.1.1\tx\r\n", 550, "", "5.1.1\tx", 1);
	REPLY("550 5.a.1 x\r\n", 550, "", "5.a.1 x", 1);
	REPLY("550 .5.1.1 x\r\n", 550, "", ".5.1.1 x", 1);
	REPLY("550 55.1.1 x\r\n", 550, "", "55.1.1 x", 1);
	REPLY("550 5.1.-1 x\r\n", 550, "", "5.1.-1 x", 1);
	REPLY("550 x 5.1.1\r\n", 550, "", "x 5.1.1", 1);
	REPLY("550 5\r\n", 550, "", "5", 1);
	REPLY("550 5.1.\r\n", 550, "", "5.1.", 1);
	/* Several lines: the first one that has one gives it. */
	REPLY("451-4.3.0 a\r\n451 4.3.0 b\r\n", 451, "4.3.0", "a\nb", 2);
	REPLY("550-first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n", 550,
	    "5.7.1", "first\nsecond\nthird", 3);
	REPLY("550-5.1.1 a\r\n550 5.7.1 b\r\n", 550, "5.1.1", "a\n5.7.1 b",
	    2);
	REPLY("550-5.1.1 a\r\n550-b\r\n550 5.1.1\r\n", 550, "5.1.1",
	    "a\nb\n", 3);
	REPLY("550-4.1.1 a\r\n550 5.1.1 b\r\n", 550, "5.1.1",
	    "4.1.1 a\nb", 2);
}

/* Three lines: text lengths a, b, c. */
static char *
three_lines(size_t a, size_t b, size_t c, size_t *len)
{
	size_t lens[3] = { a, b, c }, o = 0, i;
	char *s = malloc(a + b + c + 3 * 6);

	assert_non_null(s);
	for (i = 0; i < 3; i++) {
		memcpy(s + o, i < 2 ? "250-" : "250 ", 4);
		o += 4;
		memset(s + o, (int)('a' + i), lens[i]);
		o += lens[i];
		memcpy(s + o, "\r\n", 2);
		o += 2;
	}
	*len = o;
	return s;
}

/* Only whole lines are kept; what does not fit is counted, not cut. */
static void
test_text_truncation(void **state)
{
	const size_t longest = SMTP_REPLY_LINE_MAX - 2 - 4;
	struct smtp_reply r;
	char out[SMTP_REPLY_RENDER_MAX];
	size_t n, room;
	char *s;

	/* Two longest lines fit, a third does not. */
	s = three_lines(longest, longest, longest, &n);
	one_reply_n(s, n, &r);
	assert_int_equal(r.nlines, 3);
	assert_int_equal(r.nkept, 2);
	assert_int_equal(r.truncated, 1);
	assert_int_equal(r.textlen, 2 * longest + 1);
	assert_int_equal(r.text[longest], '\n');
	assert_int_equal(r.text[2 * longest], 'b');
	smtp_reply_render(&r, out, sizeof(out));
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out + strlen(out) - 3, "...");
	free(s);

	/* Exactly full: text and NUL fill the buffer. */
	room = SMTP_REPLY_TEXT_MAX - 1 - (2 * longest + 1) - 1;
	s = three_lines(longest, longest, room, &n);
	one_reply_n(s, n, &r);
	assert_int_equal(r.nkept, 3);
	assert_int_equal(r.truncated, 0);
	assert_int_equal(r.textlen, SMTP_REPLY_TEXT_MAX - 1);
	free(s);

	/* One octet more, and the third line is left out. */
	s = three_lines(longest, longest, room + 1, &n);
	one_reply_n(s, n, &r);
	assert_int_equal(r.nkept, 2);
	assert_int_equal(r.truncated, 1);
	free(s);

	/* Once a line is left out, so are the shorter ones after it. */
	{
		static const char tail[] = "250-x\r\n250 y\r\n";
		char *more;

		s = three_lines(longest, longest, longest, &n);
		more = malloc(n + sizeof(tail));
		assert_non_null(more);
		memcpy(more, s, n);
		memcpy(more + n - (longest + 6), "250-", 4);
		memcpy(more + n, tail, sizeof(tail) - 1);
		one_reply_n(more, n + sizeof(tail) - 1, &r);
		assert_int_equal(r.nlines, 5);
		assert_int_equal(r.nkept, 2);
		free(more);
		free(s);
	}
}

/* Render the reply lit into a buffer of dstlen. */
static char *
render(const char *lit, size_t n, char *dst, size_t dstlen)
{
	struct smtp_reply r;

	one_reply_n(lit, n, &r);
	return smtp_reply_render(&r, dst, dstlen);
}

#define RENDER(lit, want) do {						\
	char b_[SMTP_REPLY_RENDER_MAX];					\
	assert_string_equal(render(S(lit), b_, sizeof(b_)), (want));	\
} while (0)

static void
test_render(void **state)
{
	char b[64];
	struct smtp_reply r;

	RENDER("550 5.1.1 <x@y>: user unknown\r\n",
	    "550 5.1.1 <x@y>: user unknown");
	RENDER("250\r\n", "250");
	RENDER("250 \r\n", "250");
	RENDER("250 2.0.0\r\n", "250 2.0.0");
	RENDER("250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
	    "250 mx.example.com PIPELINING 8BITMIME");
	RENDER("250-a\r\n250-\r\n250 b\r\n", "250 a b");
	RENDER("550-5.1.1 a\r\n550 5.7.1 b\r\n", "550 5.1.1 a 5.7.1 b");
	RENDER("451-4.3.0 Try\r\n451 4.3.0 later\r\n", "451 4.3.0 Try later");
	/* Escaping: quotes, backslashes, tabs, replaced controls, UTF-8. */
	RENDER("550 a\"b\\c\td\x1b\xc3\xa9\r\n",
	    "550 a\\\"b\\\\c\\x09d?\\xc3\\xa9");
	RENDER("550 x\" status=sent y=\"\r\n",
	    "550 x\\\" status=sent y=\\\"");
	RENDER("550 \0\r\n", "550 ?");

	/* Cut to the buffer, with "..." to say so. */
	one_reply_n(S("550 5.1.1 The email account that you tried to reach "
	    "does not exist\r\n"), &r);
	smtp_reply_render(&r, b, sizeof(b));
	assert_true(strlen(b) < sizeof(b));
	assert_true(strlen(b) >= sizeof(b) - 8);
	assert_memory_equal(b, "550 5.1.1 The email", 19);
	assert_string_equal(b + strlen(b) - 3, "...");
	smtp_reply_render(&r, b, 1);
	assert_string_equal(b, "");
	smtp_reply_render(&r, b, 4);
	assert_string_equal(b, "...");
	memset(b, 'z', sizeof(b));
	smtp_reply_render(&r, b, 0);
	assert_int_equal(b[0], 'z');
	/*
	 * An escape is never cut in half: less a final "...", what is left
	 * is the whole rendering up to the end of some escape.
	 */
	one_reply_n(S("550 \xff\xff\xff\xff\xff\xff\r\n"), &r);
	for (size_t len = 1; len <= 40; len++) {
		static const char full[] =
		    "550 \\xff\\xff\\xff\\xff\\xff\\xff";
		char *d = malloc(len);
		size_t dl;

		assert_non_null(d);
		smtp_reply_render(&r, d, len);
		dl = strlen(d);
		assert_true(dl < len);
		if (len < 4)
			assert_int_equal(dl, 0);
		else if (dl < sizeof(full) - 1) {
			assert_true(dl >= 3);
			assert_string_equal(d + dl - 3, "...");
			dl -= 3;
		}
		assert_memory_equal(d, full, dl);
		assert_true(dl <= 3 || (dl - 4) % 4 == 0);
		free(d);
	}
}

/* A 250 EHLO reply from the lines given after the greeting. */
static void
ehlo(const char *lines, struct smtp_ehlo *out)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "250-mx.example.com Hello\r\n%s",
	    lines);
	struct smtp_reply r;

	assert_true(n > 0 && (size_t)n < sizeof(buf));
	one_reply_n(buf, (size_t)n, &r);
	assert_int_equal(smtp_ehlo_parse(&r, out), 0);
}

static void
test_ehlo(void **state)
{
	struct smtp_ehlo e;
	struct smtp_reply r;

	ehlo("250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
	    "250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n", &e);
	assert_int_equal(e.ext, SMTP_EXT_PIPELINING | SMTP_EXT_SIZE |
	    SMTP_EXT_STARTTLS | SMTP_EXT_ENHANCEDSTATUSCODES |
	    SMTP_EXT_8BITMIME | SMTP_EXT_DSN | SMTP_EXT_SMTPUTF8 |
	    SMTP_EXT_CHUNKING);
	assert_int_equal(e.size, 10240000);
	assert_int_equal(e.auth, 0);

	/* Any case; tabs and extra spaces between words. */
	ehlo("250-pipelining\r\n250-Size\t 42\r\n250-StartTLS\r\n"
	    "250 auth  plain\tLogin cram-md5\r\n", &e);
	assert_int_equal(e.ext, SMTP_EXT_PIPELINING | SMTP_EXT_SIZE |
	    SMTP_EXT_STARTTLS | SMTP_EXT_AUTH);
	assert_int_equal(e.size, 42);
	assert_int_equal(e.auth, SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN |
	    SMTP_AUTH_CRAM_MD5);

	/* Only the greeting: nothing offered. */
	one_reply_n(S("250 mx.example.com PIPELINING STARTTLS\r\n"), &r);
	assert_int_equal(smtp_ehlo_parse(&r, &e), 0);
	assert_int_equal(e.ext, 0);

	/* Unknown keywords, and near misses, are ignored. */
	ehlo("250-PIPELININGX\r\n250-X-PIPELINING\r\n250-STARTTLS2\r\n"
	    "250-8BIT\r\n250-XCLIENT NAME ADDR\r\n250-ETRN\r\n250-DSN=1\r\n"
	    "250-SIZE=100\r\n250-STARTTLS=YES\r\n250-\r\n250 \r\n", &e);
	assert_int_equal(e.ext, 0);
	assert_int_equal(e.size, 0);
	/* Parameters after a known keyword do not matter. */
	ehlo("250-STARTTLS now\r\n250 DSN x y\r\n", &e);
	assert_int_equal(e.ext, SMTP_EXT_STARTTLS | SMTP_EXT_DSN);
	/* Leading blanks before a keyword are skipped. */
	ehlo("250-  CHUNKING\r\n250 \tDSN\r\n", &e);
	assert_int_equal(e.ext, SMTP_EXT_CHUNKING | SMTP_EXT_DSN);
	/* The same enhanced code on every line is left out of the text. */
	one_reply_n(S("250-2.0.0 mx.example.com\r\n250-2.0.0 PIPELINING\r\n"
	    "250 2.0.0 DSN\r\n"), &r);
	assert_int_equal(smtp_ehlo_parse(&r, &e), 0);
	assert_int_equal(e.ext, SMTP_EXT_PIPELINING | SMTP_EXT_DSN);

	/* Not 250: nothing, and -1. */
	one_reply_n(S("502-5.5.1 no\r\n502 PIPELINING\r\n"), &r);
	memset(&e, 0xa5, sizeof(e));
	assert_int_equal(smtp_ehlo_parse(&r, &e), -1);
	assert_int_equal(e.ext, 0);
	assert_int_equal(e.auth, 0);
	assert_int_equal(e.size, 0);
	one_reply_n(S("220-x\r\n220 PIPELINING\r\n"), &r);
	assert_int_equal(smtp_ehlo_parse(&r, &e), -1);
	one_reply_n(S("251-x\r\n251 PIPELINING\r\n"), &r);
	assert_int_equal(smtp_ehlo_parse(&r, &e), -1);
}

static void
test_ehlo_size(void **state)
{
	static const struct {
		const char *line;
		uint64_t size;
	} cases[] = {
		{ "250 SIZE\r\n", 0 },
		{ "250 SIZE 0\r\n", 0 },
		{ "250 SIZE 1\r\n", 1 },
		{ "250 SIZE 35882577\r\n", 35882577 },
		{ "250 SIZE 0035882577\r\n", 35882577 },
		{ "250 SIZE 18446744073709551615\r\n", UINT64_MAX },
		{ "250 SIZE 18446744073709551616\r\n", 0 },
		{ "250 SIZE 18446744073709551620\r\n", 0 },
		{ "250 SIZE 99999999999999999999999\r\n", 0 },
		{ "250 SIZE -1\r\n", 0 },
		{ "250 SIZE +1\r\n", 0 },
		{ "250 SIZE 12x\r\n", 0 },
		{ "250 SIZE x12\r\n", 0 },
		{ "250 SIZE 1.5\r\n", 0 },
		{ "250 SIZE 100 200\r\n", 100 },
		{ "250 SIZE  \t7 \r\n", 7 },
		{ "250-SIZE 100\r\n250 SIZE 200\r\n", 200 },
		{ "250-SIZE 100\r\n250 SIZE\r\n", 0 },
	};
	struct smtp_ehlo e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ehlo(cases[i].line, &e);
		assert_int_equal(e.ext, SMTP_EXT_SIZE);
		if (e.size != cases[i].size)
			fail_msg("%s: size %ju, not %ju", cases[i].line,
			    (uintmax_t)e.size, (uintmax_t)cases[i].size);
	}
}

static void
test_ehlo_auth(void **state)
{
	static const struct {
		const char *lines;
		unsigned auth;
	} cases[] = {
		{ "250 AUTH\r\n", 0 },
		{ "250 AUTH PLAIN\r\n", SMTP_AUTH_PLAIN },
		{ "250 AUTH LOGIN PLAIN\r\n", SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN },
		{ "250 AUTH CRAM-MD5\r\n", SMTP_AUTH_CRAM_MD5 },
		{ "250 AUTH GSSAPI XOAUTH2 SCRAM-SHA-256 NTLM\r\n", 0 },
		{ "250 AUTH GSSAPI PLAIN XOAUTH2\r\n", SMTP_AUTH_PLAIN },
		{ "250 AUTH PLAINX LOGIN2 CRAM-MD5X CRAM-MD XPLAIN\r\n", 0 },
		{ "250 AUTH PLAIN,LOGIN\r\n", 0 },
		{ "250 AUTH=LOGIN PLAIN\r\n", SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN },
		{ "250 AUTH=\r\n", 0 },
		{ "250 auth=cram-md5\r\n", SMTP_AUTH_CRAM_MD5 },
		{ "250-AUTH PLAIN\r\n250 AUTH=LOGIN\r\n",
		    SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN },
		{ "250-AUTH=PLAIN\r\n250 AUTH CRAM-MD5 LOGIN\r\n",
		    SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN | SMTP_AUTH_CRAM_MD5 },
		{ "250 AUTH plain PLAIN Plain\r\n", SMTP_AUTH_PLAIN },
	};
	struct smtp_ehlo e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ehlo(cases[i].lines, &e);
		assert_int_equal(e.ext, SMTP_EXT_AUTH);
		if (e.auth != cases[i].auth)
			fail_msg("%s: auth %#x, not %#x", cases[i].lines,
			    e.auth, cases[i].auth);
	}
	/* "AUTHX=PLAIN" and "AUTH-PLAIN" are other keywords. */
	ehlo("250-AUTHX=PLAIN\r\n250 AUTH-PLAIN\r\n", &e);
	assert_int_equal(e.ext, 0);
	assert_int_equal(e.auth, 0);
}

/* The EHLO lines that did not fit are not guessed at. */
static void
test_ehlo_truncated(void **state)
{
	const size_t longest = SMTP_REPLY_LINE_MAX - 2 - 4;
	static const char tail[] = "250-PIPELINING\r\n250 STARTTLS\r\n";
	struct smtp_reply r;
	struct smtp_ehlo e;
	size_t n;
	/* The third line fills the text up; the next two are left out. */
	char *s = three_lines(longest, longest, 9, &n), *t;

	t = malloc(n + sizeof(tail));
	assert_non_null(t);
	memcpy(t, s, n);
	memcpy(t + n - 15, "250-", 4);
	memcpy(t + n, tail, sizeof(tail) - 1);
	one_reply_n(t, n + sizeof(tail) - 1, &r);
	assert_int_equal(r.nlines, 5);
	assert_int_equal(r.nkept, 3);
	assert_int_equal(smtp_ehlo_parse(&r, &e), 0);
	assert_int_equal(e.ext, 0);
	free(t);
	free(s);
}

static void
test_strerror(void **state)
{
	for (int e = SMTP_REPLY_ERR_NONE; e <= SMTP_REPLY_ERR_BARE_CR; e++)
		assert_non_null(smtp_reply_strerror((enum smtp_reply_error)e));
	assert_non_null(smtp_reply_strerror((enum smtp_reply_error)99));
	assert_string_equal(smtp_reply_strerror(SMTP_REPLY_ERR_CODE_MISMATCH),
	    "reply lines with different codes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_every_code),
		cmocka_unit_test(test_multi_line),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_code_mismatch),
		cmocka_unit_test(test_bad_code),
		cmocka_unit_test(test_bad_separator),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_line_count),
		cmocka_unit_test(test_control_bytes),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_enhanced),
		cmocka_unit_test(test_text_truncation),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_ehlo),
		cmocka_unit_test(test_ehlo_size),
		cmocka_unit_test(test_ehlo_auth),
		cmocka_unit_test(test_ehlo_truncated),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
