/*
 * fuzz_smtp_reply.c - libFuzzer target for aliases/reply.c.
 *
 * Input: two bytes giving a split position (little endian, taken modulo
 * the stream's length + 1), then the byte stream a server might send.
 * The stream is fed to smtp_reply_parse() three ways: whole, in two pieces
 * cut at that position, and one byte at a time with an empty call between
 * bytes; every piece is a heap copy of exactly its length, so ASan sees
 * any read past the end.  The three must give the same replies ending at
 * the same offsets, then the same error at the same offset or none, and
 * all of it must agree with a reference written differently: cut the
 * stream into lines first, then judge each line whole.
 *
 * Every reply must have the shape reply.h promises; its rendering, into
 * buffers of several sizes, must be printable ASCII, NUL-terminated and
 * a prefix (less "...") of the rendering into a large buffer; and the
 * EHLO parser runs on it and must agree with its own reference, which
 * tokenizes a NUL-terminated copy with strtok_r.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aliases/reply.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_smtp_reply: %s:%d: check failed: %s\n",\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* One reply, or the error that ended the stream. */
struct event {
	enum smtp_reply_result res;
	size_t end;			/* stream offset after it */
	enum smtp_reply_error err;
	int code;
	char enhanced[SMTP_REPLY_ENHANCED_MAX];
	size_t nlines, nkept, textlen;
	int truncated;
	char *text;			/* heap, NUL-terminated */
};

struct events {
	struct event *v;
	size_t n, cap;
};

static struct event *
ev_add(struct events *e)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 8;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
		CHECK(e->v != NULL);
	}
	memset(&e->v[e->n], 0, sizeof(e->v[0]));
	return &e->v[e->n++];
}

static void
ev_free(struct events *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].text);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

static void
ev_same(const struct events *a, const struct events *b)
{
	CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct event *x = &a->v[i], *y = &b->v[i];

		CHECK(x->res == y->res);
		CHECK(x->end == y->end);
		CHECK(x->err == y->err);
		if (x->res != SMTP_REPLY_DONE)
			continue;
		CHECK(x->code == y->code);
		CHECK(strcmp(x->enhanced, y->enhanced) == 0);
		CHECK(x->nlines == y->nlines);
		CHECK(x->nkept == y->nkept);
		CHECK(x->truncated == y->truncated);
		CHECK(x->textlen == y->textlen);
		CHECK(memcmp(x->text, y->text, x->textlen + 1) == 0);
	}
}

/* The EHLO extensions, tokenizing a copy of each line with strtok_r. */
static void
ref_ehlo(const struct smtp_reply *r, struct smtp_ehlo *out)
{
	char *copy = strdup(r->text), *line, *save_line, *tok, *save;
	int first = 1;

	CHECK(copy != NULL);
	memset(out, 0, sizeof(*out));
	/* strtok_r would merge empty lines; walk them by hand. */
	for (line = copy; line != NULL; line = save_line) {
		char *nl = strchr(line, '\n'), *eq;
		unsigned bit = 0;

		if (nl != NULL)
			*nl = '\0';
		save_line = nl != NULL ? nl + 1 : NULL;
		if (first) {
			first = 0;
			continue;
		}
		tok = strtok_r(line, " \t", &save);
		if (tok == NULL)
			continue;
		eq = strchr(tok, '=');
		if (eq != NULL) {
			*eq = '\0';
			if (strcasecmp(tok, "AUTH") != 0)
				continue;
			bit = SMTP_EXT_AUTH;
			out->ext |= bit;
			/* What follows '=' is the first mechanism. */
			tok = eq + 1;
			if (*tok == '\0')
				tok = strtok_r(NULL, " \t", &save);
		} else {
			static const char *const kw[] = {
				"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8",
				"STARTTLS", "CHUNKING", "ENHANCEDSTATUSCODES",
				"DSN", "AUTH",
			};

			for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
				if (strcasecmp(tok, kw[i]) == 0)
					bit = 1u << i;
			if (bit == 0)
				continue;
			out->ext |= bit;
			tok = strtok_r(NULL, " \t", &save);
		}
		if (bit == SMTP_EXT_SIZE) {
			char *end;
			unsigned long long v;

			out->size = 0;
			if (tok != NULL && tok[0] >= '0' && tok[0] <= '9') {
				/* strtoull takes signs and spaces; tok has none. */
				v = strtoull(tok, &end, 10);
				if (*end == '\0' && !(v == ULLONG_MAX &&
				    strcmp(tok + strspn(tok, "0"),
				    "18446744073709551615") != 0))
					out->size = v;
			}
		} else if (bit == SMTP_EXT_AUTH) {
			for (; tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
				if (strcasecmp(tok, "PLAIN") == 0)
					out->auth |= SMTP_AUTH_PLAIN;
				else if (strcasecmp(tok, "LOGIN") == 0)
					out->auth |= SMTP_AUTH_LOGIN;
				else if (strcasecmp(tok, "CRAM-MD5") == 0)
					out->auth |= SMTP_AUTH_CRAM_MD5;
			}
		}
	}
	free(copy);
}

/* Shape, rendering and EHLO for one reply. */
static void
check_reply(const struct smtp_reply *r)
{
	static const size_t sizes[] = { 1, 2, 4, 5, 9, 16, 80,
	    SMTP_REPLY_RENDER_MAX };
	const size_t bigsz = 5 * SMTP_REPLY_TEXT_MAX + 64;
	char *big = malloc(bigsz);
	struct smtp_ehlo e, re;
	size_t i, biglen;

	CHECK(big != NULL);
	CHECK(r->code >= 200 && r->code <= 559 && r->code / 10 % 10 <= 5);
	CHECK(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	CHECK(r->nkept >= 1 && r->nkept <= r->nlines);
	CHECK(r->truncated == (r->nkept < r->nlines));
	CHECK(r->textlen < SMTP_REPLY_TEXT_MAX);
	CHECK(strlen(r->text) == r->textlen);
	for (i = 0; i < r->textlen; i++) {
		unsigned char c = (unsigned char)r->text[i];

		CHECK((c >= 0x20 && c != 0x7f) || c == '\t' || c == '\n');
	}
	{
		size_t lines = 1;

		for (i = 0; i < r->textlen; i++)
			lines += r->text[i] == '\n';
		CHECK(lines == r->nkept);
	}
	CHECK(memchr(r->enhanced, '\0', sizeof(r->enhanced)) != NULL);
	if (r->enhanced[0] != '\0') {
		const char *s = r->enhanced;
		size_t a, b;

		CHECK(s[0] - '0' == r->code / 100 && s[0] != '3');
		CHECK(s[1] == '.');
		a = strspn(s + 2, "0123456789");
		CHECK(a >= 1 && a <= 3 && s[2 + a] == '.');
		b = strspn(s + 3 + a, "0123456789");
		CHECK(b >= 1 && b <= 3 && s[3 + a + b] == '\0');
	}

	/* Rendering: escaped, bounded, and every size a prefix of the whole. */
	smtp_reply_render(r, big, bigsz);
	biglen = strlen(big);
	CHECK(biglen < bigsz - 4);	/* never cut in so large a buffer */
	for (i = 0; i < biglen; i++)
		CHECK(big[i] >= 0x20 && big[i] <= 0x7e);
	CHECK(biglen >= 3 && big[0] == '0' + r->code / 100);
	if (r->truncated)
		CHECK(biglen >= 4 && strcmp(big + biglen - 4, " ...") == 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *d = malloc(sizes[i]);
		size_t dl;

		CHECK(d != NULL);
		CHECK(smtp_reply_render(r, d, sizes[i]) == d);
		dl = strlen(d);
		CHECK(dl < sizes[i]);
		/*
		 * Cut, it ends in "..." (log_escape keeps room for it, so a
		 * cut line may be longer than the whole); what precedes is a
		 * prefix of the whole.  Below 4 bytes there is no room.
		 */
		if (strcmp(d, big) != 0) {
			if (sizes[i] < 4)
				CHECK(dl == 0);
			else {
				CHECK(dl >= 3 && strcmp(d + dl - 3, "...") == 0);
				dl -= 3;
			}
			CHECK(dl < biglen);
			CHECK(memcmp(d, big, dl) == 0);
		}
		free(d);
	}
	free(big);

	/* EHLO. */
	memset(&e, 0xa5, sizeof(e));
	if (smtp_ehlo_parse(r, &e) != 0) {
		CHECK(r->code != 250);
		CHECK(e.ext == 0 && e.auth == 0 && e.size == 0);
		return;
	}
	CHECK(r->code == 250);
	CHECK((e.ext & ~0x1ffu) == 0 && (e.auth & ~7u) == 0);
	CHECK(e.auth == 0 || (e.ext & SMTP_EXT_AUTH));
	CHECK(e.size == 0 || (e.ext & SMTP_EXT_SIZE));
	ref_ehlo(r, &re);
	CHECK(e.ext == re.ext);
	CHECK(e.auth == re.auth);
	CHECK(e.size == re.size);
}

/*
 * Feed s[0..n) in pieces cut at cut[0..ncut) (non-decreasing, from 0 to
 * n), recording the replies and the error.
 */
static void
feed(const char *s, size_t n, const size_t *cut, size_t ncut,
    struct events *out)
{
	struct smtp_reply_parser *p = malloc(sizeof(*p));

	CHECK(p != NULL);
	smtp_reply_parser_init(p);
	for (size_t k = 0; k + 1 < ncut; k++) {
		size_t off = cut[k], clen = cut[k + 1] - cut[k], pos = 0;
		char *b = malloc(clen != 0 ? clen : 1);

		CHECK(b != NULL && cut[k + 1] <= n);
		if (clen > 0)
			memcpy(b, s + off, clen);
		for (;;) {
			size_t used = (size_t)-1;
			enum smtp_reply_result res =
			    smtp_reply_parse(p, b + pos, clen - pos, &used);
			struct event *e;

			CHECK(used <= clen - pos);
			if (res == SMTP_REPLY_MORE) {
				CHECK(used == clen - pos);
				CHECK(p->error == SMTP_REPLY_ERR_NONE);
				break;
			}
			CHECK(res == SMTP_REPLY_DONE || res == SMTP_REPLY_ERROR);
			CHECK(used > 0);
			e = ev_add(out);
			e->res = res;
			e->end = off + pos + used;
			e->err = p->error;
			if (res == SMTP_REPLY_ERROR) {
				CHECK(p->error != SMTP_REPLY_ERR_NONE);
				CHECK(smtp_reply_strerror(p->error) != NULL);
				used = 1;
				CHECK(smtp_reply_parse(p, b, clen, &used) ==
				    SMTP_REPLY_ERROR && used == 0);
				free(b);
				free(p);
				return;
			}
			CHECK(p->error == SMTP_REPLY_ERR_NONE);
			e->code = p->reply.code;
			memcpy(e->enhanced, p->reply.enhanced,
			    sizeof(e->enhanced));
			e->nlines = p->reply.nlines;
			e->nkept = p->reply.nkept;
			e->truncated = p->reply.truncated;
			e->textlen = p->reply.textlen;
			e->text = strdup(p->reply.text);
			CHECK(e->text != NULL);
			pos += used;
			if (pos == clen)
				break;
		}
		free(b);
	}
	free(p);
}

/* --- The reference: lines first, then judge each whole. --- */

struct ref {
	struct events ev;
	int code;
	size_t nlines, nkept;
	int truncated;
	char enhanced[SMTP_REPLY_ENHANCED_MAX];
	char *text;		/* unbounded while a reply is built */
	size_t textlen;
};

/* The enhanced code at the start of t (NUL-terminated), or 0. */
static size_t
ref_enhanced(const char *t, int code)
{
	size_t a, b;
	char cls = (char)('0' + code / 100);

	if (strchr("245", cls) == NULL || t[0] != cls || t[1] != '.')
		return 0;
	a = strspn(t + 2, "0123456789");
	if (a < 1 || a > 3 || t[2 + a] != '.')
		return 0;
	b = strspn(t + 3 + a, "0123456789");
	if (b < 1 || b > 3)
		return 0;
	if (t[3 + a + b] != '\0' && t[3 + a + b] != ' ')
		return 0;
	return 3 + a + b;
}

/* Add a complete, valid line l[0..len) to the reply being built. */
static void
ref_line(struct ref *r, const char *l, size_t len)
{
	char *t = malloc(len + 1), *tp;
	size_t elen, tl;

	CHECK(t != NULL);
	if (r->nlines == 0)
		r->code = atoi((char[]){ l[0], l[1], l[2], '\0' });
	r->nlines++;
	tl = len > 4 ? len - 4 : 0;
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)l[4 + i];

		t[i] = (char)(c == '\t' || (c >= 0x20 && c != 0x7f) ? c : '?');
	}
	t[tl] = '\0';
	tp = t;
	elen = ref_enhanced(t, r->code);
	if (elen > 0 && r->enhanced[0] == '\0')
		snprintf(r->enhanced, sizeof(r->enhanced), "%.*s", (int)elen, t);
	if (elen > 0 && strncmp(t, r->enhanced, elen) == 0 &&
	    r->enhanced[elen] == '\0') {
		tp += elen;
		if (*tp == ' ')
			tp++;
	}
	if (!r->truncated && r->textlen + (r->nkept ? 1 : 0) + strlen(tp) <=
	    SMTP_REPLY_TEXT_MAX - 1) {
		if (r->nkept)
			r->text[r->textlen++] = '\n';
		strcpy(r->text + r->textlen, tp);
		r->textlen += strlen(tp);
		r->nkept++;
	} else
		r->truncated = 1;
	free(t);
}

static void
ref_error(struct ref *r, enum smtp_reply_error err, size_t end)
{
	struct event *e = ev_add(&r->ev);

	e->res = SMTP_REPLY_ERROR;
	e->err = err;
	e->end = end;
}

static void
reference(const char *s, size_t n, struct ref *r)
{
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	r->text = malloc(SMTP_REPLY_TEXT_MAX);
	CHECK(r->text != NULL);
	r->text[0] = '\0';
	for (;;) {
		size_t j = pos, len, lend;
		const char *l = s + pos;

		while (j < n && s[j] != '\r' && s[j] != '\n')
			j++;
		len = j - pos;
		/* The first four octets, in order. */
		for (size_t i = 0; i < len && i < 4; i++) {
			static const char *const ok[3] = {
				"2345", "012345", "0123456789"
			};
			char c = l[i];

			if (i < 3 && (c == '\0' || strchr(ok[i], c) == NULL)) {
				ref_error(r, SMTP_REPLY_ERR_BAD_CODE, pos + i + 1);
				goto out;
			}
			if (i < 3 && r->nlines > 0 &&
			    c != "0123456789"[i == 0 ? r->code / 100 :
			    i == 1 ? r->code / 10 % 10 : r->code % 10]) {
				ref_error(r, SMTP_REPLY_ERR_CODE_MISMATCH,
				    pos + i + 1);
				goto out;
			}
			if (i == 3 && c != ' ' && c != '-') {
				ref_error(r, SMTP_REPLY_ERR_BAD_SEPARATOR, pos + 4);
				goto out;
			}
			if (i == 3 && c == '-' &&
			    r->nlines == SMTP_REPLY_LINES_MAX - 1) {
				ref_error(r, SMTP_REPLY_ERR_TOO_MANY_LINES,
				    pos + 4);
				goto out;
			}
		}
		if (len > SMTP_REPLY_LINE_MAX - 2) {
			ref_error(r, SMTP_REPLY_ERR_LINE_TOO_LONG,
			    pos + SMTP_REPLY_LINE_MAX - 1);
			goto out;
		}
		if (j == n)
			goto out;	/* waiting for more */
		if (len == 0) {
			ref_error(r, SMTP_REPLY_ERR_EMPTY_LINE, j + 1);
			goto out;
		}
		if (len < 3) {
			ref_error(r, SMTP_REPLY_ERR_BAD_CODE, j + 1);
			goto out;
		}
		if (s[j] == '\r') {
			if (j + 1 == n)
				goto out;
			if (s[j + 1] != '\n') {
				ref_error(r, SMTP_REPLY_ERR_BARE_CR, j + 2);
				goto out;
			}
			lend = j + 2;
		} else
			lend = j + 1;
		ref_line(r, l, len);
		pos = lend;
		if (len == 3 || l[3] == ' ') {
			struct event *e = ev_add(&r->ev);

			e->res = SMTP_REPLY_DONE;
			e->end = pos;
			e->code = r->code;
			memcpy(e->enhanced, r->enhanced, sizeof(e->enhanced));
			e->nlines = r->nlines;
			e->nkept = r->nkept;
			e->truncated = r->truncated;
			e->textlen = r->textlen;
			e->text = strdup(r->text);
			CHECK(e->text != NULL);
			r->code = 0;
			r->nlines = r->nkept = r->textlen = 0;
			r->truncated = 0;
			r->enhanced[0] = '\0';
			r->text[0] = '\0';
		}
	}
out:
	free(r->text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct events whole = { 0 }, split = { 0 }, bytes = { 0 };
	struct ref ref;
	const char *s;
	size_t n, k, *cut, i, nc;

	if (size < 2)
		return 0;
	s = (const char *)data + 2;
	n = size - 2;
	k = ((size_t)data[0] | (size_t)data[1] << 8) % (n + 1);

	cut = malloc((2 * n + 3) * sizeof(*cut));
	CHECK(cut != NULL);
	cut[0] = 0;
	cut[1] = n;
	feed(s, n, cut, 2, &whole);
	cut[0] = 0;
	cut[1] = k;
	cut[2] = n;
	feed(s, n, cut, 3, &split);
	for (i = 0, nc = 0; i <= n; i++) {
		cut[nc++] = i;
		cut[nc++] = i;
	}
	feed(s, n, cut, nc, &bytes);
	free(cut);

	ev_same(&whole, &split);
	ev_same(&whole, &bytes);
	reference(s, n, &ref);
	ev_same(&whole, &ref.ev);

	/* Rendering and EHLO on each reply, rebuilt as the parser made it. */
	for (i = 0; i < whole.n; i++) {
		const struct event *e = &whole.v[i];
		struct smtp_reply *r;

		if (e->res != SMTP_REPLY_DONE)
			continue;
		r = malloc(sizeof(*r));
		CHECK(r != NULL);
		r->code = e->code;
		memcpy(r->enhanced, e->enhanced, sizeof(r->enhanced));
		r->nlines = e->nlines;
		r->nkept = e->nkept;
		r->truncated = e->truncated;
		r->textlen = e->textlen;
		memcpy(r->text, e->text, e->textlen + 1);
		check_reply(r);
		free(r);
	}
	ev_free(&whole);
	ev_free(&split);
	ev_free(&bytes);
	ev_free(&ref.ev);
	return 0;
}
