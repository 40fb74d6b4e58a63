/*
 * test_dsn.c - delivery status notifications (aliases/dsn.c).
 *
 * Every report built here is first checked as bytes (CRLF line ends only,
 * ending in CRLF, no NUL, no line over 998 octets), then parsed back with
 * GMime's own parser, and its parts and fields are looked at one by one.
 * The delivery-status body is split into its blocks of fields by a small
 * reader written here (unfold, then one empty line between blocks), so a
 * stray line end or an injected field shows up as a wrong block.
 */
#include "testutil.h"

#include <pthread.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "aliases/dsn.h"

#define HOST	"mail.example.com"
#define NOW	1700432000
#define ARRIVAL	1700000000

static const char original[] =
    "Received: from client.example.org (client.example.org [192.0.2.7])\r\n"
    "\tby mail.example.com with ESMTPS id 4F2A9C1B\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.net\r\n"
    "Subject: Hello there\r\n"
    "Message-ID: <hello-1@example.com>\r\n"
    "\r\n"
    "Body text, not in the report.\r\n";

/* A report of one failed recipient; tests change what they need. */
static struct dsn_rcpt one_rcpt;
static struct dsn_report report;

static void
reset(void)
{
	memset(&one_rcpt, 0, sizeof(one_rcpt));
	one_rcpt.final_recipient = "bob@example.net";
	one_rcpt.action = DSN_FAILED;
	one_rcpt.remote_mta = "mx1.example.net";
	one_rcpt.smtp_reply = "550 5.1.1 <bob@example.net>: Recipient address rejected: no such user";
	one_rcpt.last_attempt = ARRIVAL + 60;
	memset(&report, 0, sizeof(report));
	report.hostname = HOST;
	report.recipient = "alice@example.com";
	report.qid = "4F2A9C1B";
	report.arrival = ARRIVAL;
	report.now = NOW;
	report.headers = original;
	report.headers_len = sizeof(original) - 1;
	report.rcpts = &one_rcpt;
	report.nrcpts = 1;
}

static int
group_setup(void **state)
{
	g_mime_init();
	return 0;
}

static int
group_teardown(void **state)
{
	g_mime_shutdown();
	dsn_shutdown();
	return 0;
}

static int
setup(void **state)
{
	reset();
	return 0;
}

/* The raw bytes: CRLF only, ending in CRLF, no NUL, lines <= 998. */
static void
check_bytes(const char *b, size_t n)
{
	size_t i, line = 0;

	assert_true(n >= 2);
	assert_int_equal(b[n], '\0');
	assert_int_equal(b[n - 2], '\r');
	assert_int_equal(b[n - 1], '\n');
	assert_null(memchr(b, '\0', n));
	for (i = 0; i < n; i++) {
		if (b[i] == '\r') {
			assert_true(i + 1 < n);
			assert_int_equal(b[i + 1], '\n');
		} else if (b[i] == '\n') {
			assert_true(i > 0);
			assert_int_equal(b[i - 1], '\r');
			line = 0;
			continue;
		}
		line++;
		assert_true(line <= 999);	/* 998 and the CR */
	}
}

/* Build the report, check its bytes; the caller frees it. */
static char *
build(const struct dsn_report *r, size_t *len)
{
	char err[256] = "", *out = (char *)1;

	if (dsn_build(r, &out, len, err, sizeof(err)) != 0)
		fail_msg("dsn_build: %s", err);
	assert_non_null(out);
	check_bytes(out, *len);
	return out;
}

static GMimeMessage *
parse(const char *b, size_t n)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(b, n);
	GMimeParser *p = g_mime_parser_new_with_stream(s);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	g_object_unref(p);
	g_object_unref(s);
	assert_non_null(m);
	return m;
}

/* A parsed report and its parts. */
struct dsn {
	char *raw;
	size_t len;
	GMimeMessage *msg;
	GMimeMultipart *mp;
	int nparts;
	GMimeObject *text, *status, *headers;
};

/* Build, parse and check the structure: multipart/report, its parts. */
static void
dsn_get(struct dsn *d, const struct dsn_report *r)
{
	GMimeObject *top;
	GMimeContentType *ct;

	memset(d, 0, sizeof(*d));
	d->raw = build(r, &d->len);
	d->msg = parse(d->raw, d->len);
	top = g_mime_message_get_mime_part(d->msg);
	assert_non_null(top);
	assert_true(GMIME_IS_MULTIPART(top));
	ct = g_mime_object_get_content_type(top);
	assert_true(g_mime_content_type_is_type(ct, "multipart", "report"));
	assert_string_equal(g_mime_content_type_get_parameter(ct, "report-type"),
	    "delivery-status");
	d->mp = (GMimeMultipart *)top;
	d->nparts = g_mime_multipart_get_count(d->mp);
	assert_true(d->nparts == 2 || d->nparts == 3);
	d->text = g_mime_multipart_get_part(d->mp, 0);
	d->status = g_mime_multipart_get_part(d->mp, 1);
	d->headers = d->nparts == 3 ? g_mime_multipart_get_part(d->mp, 2) : NULL;
	assert_true(g_mime_content_type_is_type(
	    g_mime_object_get_content_type(d->text), "text", "plain"));
	assert_true(g_mime_content_type_is_type(
	    g_mime_object_get_content_type(d->status), "message",
	    "delivery-status"));
	if (d->headers != NULL)
		assert_true(g_mime_content_type_is_type(
		    g_mime_object_get_content_type(d->headers), "text",
		    "rfc822-headers"));
}

static void
dsn_free(struct dsn *d)
{
	g_object_unref(d->msg);
	free(d->raw);
}

/* A leaf part's content, transfer encoding undone; NUL-terminated. */
static char *
content(GMimeObject *o, size_t *lenp)
{
	GMimeDataWrapper *w;
	GMimeStream *s;
	GByteArray *b;
	char *r;

	assert_true(GMIME_IS_PART(o));
	w = g_mime_part_get_content((GMimePart *)o);
	assert_non_null(w);
	s = g_mime_stream_mem_new();
	assert_true(g_mime_data_wrapper_write_to_stream(w, s) >= 0);
	b = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)s);
	r = malloc(b->len + 1);
	assert_non_null(r);
	memcpy(r, b->data, b->len);
	r[b->len] = '\0';
	if (lenp != NULL)
		*lenp = b->len;
	g_object_unref(s);
	return r;
}

/* The text part, its wrapped lines joined again with single spaces. */
static char *
text_unwrapped(const struct dsn *d)
{
	char *t = content(d->text, NULL), *o = t;
	const char *p = t;

	while (*p != '\0') {
		if (p[0] == '\r' && p[1] == '\n' && strncmp(p + 2, "    ", 4) == 0 &&
		    p[6] != ' ') {
			*o++ = ' ';
			p += 6;
		} else
			*o++ = *p++;
	}
	*o = '\0';
	return t;
}

/* --- The delivery-status body, read as RFC 3464 blocks of fields. --- */

#define BLOCKS_MAX	8
#define FIELDS_MAX	16

struct field {
	char *name, *value;	/* value unfolded (CRLFs taken out), untrimmed */
};

struct block {
	size_t n;
	struct field f[FIELDS_MAX];
};

struct blocks {
	size_t n;
	struct block b[BLOCKS_MAX];
};

/*
 * Split s into blocks at empty lines; in a block every line is a field
 * "Name: value" or a continuation (starting with a space or TAB).  The
 * last line must end in CRLF; no empty block.
 */
static void
read_blocks(const char *s, struct blocks *out)
{
	struct block *cur = NULL;

	memset(out, 0, sizeof(*out));
	while (*s != '\0') {
		const char *e = strstr(s, "\r\n");
		size_t n;

		assert_non_null(e);
		n = (size_t)(e - s);
		if (n == 0) {
			assert_non_null(cur);	/* no empty block */
			cur = NULL;
		} else if (s[0] == ' ' || s[0] == '\t') {
			struct field *f;
			size_t old;

			assert_non_null(cur);
			f = &cur->f[cur->n - 1];
			old = strlen(f->value);
			f->value = realloc(f->value, old + n + 1);
			memcpy(f->value + old, s, n);
			f->value[old + n] = '\0';
		} else {
			const char *colon = memchr(s, ':', n);
			struct field *f;

			assert_non_null(colon);
			if (cur == NULL) {
				assert_true(out->n < BLOCKS_MAX);
				cur = &out->b[out->n++];
			}
			assert_true(cur->n < FIELDS_MAX);
			f = &cur->f[cur->n++];
			f->name = strndup(s, (size_t)(colon - s));
			f->value = strndup(colon + 1, n - (size_t)(colon + 1 - s));
			if (f->value[0] == ' ')
				memmove(f->value, f->value + 1, strlen(f->value));
		}
		s = e + 2;
	}
}

static void
blocks_free(struct blocks *bl)
{
	for (size_t i = 0; i < bl->n; i++)
		for (size_t j = 0; j < bl->b[i].n; j++) {
			free(bl->b[i].f[j].name);
			free(bl->b[i].f[j].value);
		}
}

static void
dsn_blocks(const struct dsn *d, struct blocks *bl)
{
	char *s = content(d->status, NULL);

	read_blocks(s, bl);
	free(s);
}

/* The value of the one field name in b, or NULL; fails on two. */
static const char *
field(const struct block *b, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < b->n; i++)
		if (strcasecmp(b->f[i].name, name) == 0) {
			assert_null(v);
			v = b->f[i].value;
		}
	return v;
}

/* Every field of b is one of names (NULL-terminated); each value printable ASCII. */
static void
fields_only(const struct block *b, const char *const *names)
{
	for (size_t i = 0; i < b->n; i++) {
		size_t k;

		for (k = 0; names[k] != NULL; k++)
			if (strcmp(b->f[i].name, names[k]) == 0)
				break;
		if (names[k] == NULL)
			fail_msg("unexpected field %s", b->f[i].name);
		for (const char *p = b->f[i].value; *p != '\0'; p++)
			assert_true(*p >= 0x20 && *p < 0x7f);
	}
}

static const char *const per_message[] = {
	"Original-Envelope-Id", "Reporting-MTA", "Arrival-Date", NULL,
};
static const char *const per_rcpt[] = {
	"Original-Recipient", "Final-Recipient", "Action", "Status",
	"Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date",
	"Will-Retry-Until", NULL,
};

static int64_t
date_of(const char *s)
{
	GDateTime *d = g_mime_utils_header_decode_date(s);
	int64_t t;

	assert_non_null(d);
	t = g_date_time_to_unix(d);
	g_date_time_unref(d);
	return t;
}

/* --- Tests. --- */

static void
test_one_recipient(void **state)
{
	struct dsn d;
	struct blocks bl;
	InternetAddressList *l;
	InternetAddress *ia;
	GDateTime *date;
	const char *mid;
	char *t;

	dsn_get(&d, &report);
	assert_int_equal(d.nparts, 3);

	/* The message's own header fields. */
	l = g_mime_message_get_from(d.msg);
	assert_int_equal(internet_address_list_length(l), 1);
	ia = internet_address_list_get_address(l, 0);
	assert_string_equal(internet_address_get_name(ia), "Mail Delivery System");
	assert_string_equal(internet_address_mailbox_get_addr(
	    (InternetAddressMailbox *)ia), "MAILER-DAEMON@" HOST);
	l = g_mime_message_get_to(d.msg);
	assert_int_equal(internet_address_list_length(l), 1);
	assert_string_equal(internet_address_mailbox_get_addr(
	    (InternetAddressMailbox *)internet_address_list_get_address(l, 0)),
	    "alice@example.com");
	assert_string_equal(g_mime_message_get_subject(d.msg),
	    "Undelivered Mail Returned to Sender");
	assert_string_equal(g_mime_object_get_header((GMimeObject *)d.msg,
	    "Auto-Submitted"), "auto-replied");
	assert_string_equal(g_mime_object_get_header((GMimeObject *)d.msg,
	    "MIME-Version"), "1.0");
	date = g_mime_message_get_date(d.msg);
	assert_non_null(date);
	assert_int_equal(g_date_time_to_unix(date), NOW);
	mid = g_mime_message_get_message_id(d.msg);
	assert_non_null(mid);
	assert_true(strncmp(mid, "4F2A9C1B.1700432000.", 20) == 0);
	assert_true(strlen(mid) > strlen("@" HOST));
	assert_string_equal(mid + strlen(mid) - strlen("@" HOST), "@" HOST);

	/* The text: us-ascii, says what failed and why. */
	assert_string_equal(g_mime_object_get_content_type_parameter(d.text,
	    "charset"), "us-ascii");
	t = text_unwrapped(&d);
	assert_non_null(strstr(t, "This is the mail system at host " HOST "."));
	assert_non_null(strstr(t, "could not be delivered to one or more recipients"));
	assert_non_null(strstr(t, "<bob@example.net>: the server mx1.example.net "
	    "said: 550 5.1.1 <bob@example.net>: Recipient address rejected: "
	    "no such user"));
	assert_non_null(strstr(t, "Queue ID: 4F2A9C1B"));
	free(t);

	/* The delivery-status fields. */
	dsn_blocks(&d, &bl);
	assert_int_equal(bl.n, 2);
	fields_only(&bl.b[0], per_message);
	fields_only(&bl.b[1], per_rcpt);
	assert_string_equal(field(&bl.b[0], "Reporting-MTA"), "dns; " HOST);
	assert_int_equal(date_of(field(&bl.b[0], "Arrival-Date")), ARRIVAL);
	assert_null(field(&bl.b[0], "Original-Envelope-Id"));
	assert_string_equal(field(&bl.b[1], "Final-Recipient"),
	    "rfc822; bob@example.net");
	assert_null(field(&bl.b[1], "Original-Recipient"));
	assert_string_equal(field(&bl.b[1], "Action"), "failed");
	assert_string_equal(field(&bl.b[1], "Status"), "5.1.1");
	assert_string_equal(field(&bl.b[1], "Remote-MTA"), "dns; mx1.example.net");
	assert_string_equal(field(&bl.b[1], "Diagnostic-Code"),
	    "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: "
	    "no such user");
	assert_int_equal(date_of(field(&bl.b[1], "Last-Attempt-Date")),
	    ARRIVAL + 60);
	assert_null(field(&bl.b[1], "Will-Retry-Until"));
	/* Field order of RFC 3464's grammar. */
	assert_string_equal(bl.b[1].f[0].name, "Final-Recipient");
	assert_string_equal(bl.b[1].f[1].name, "Action");
	assert_string_equal(bl.b[1].f[2].name, "Status");
	blocks_free(&bl);

	/* The original headers, without the body and the empty line. */
	t = content(d.headers, NULL);
	assert_true(strncmp(t, "Received: from client.example.org", 33) == 0);
	assert_non_null(strstr(t, "\r\nSubject: Hello there\r\n"));
	assert_null(strstr(t, "Body text"));
	assert_null(strstr(t, "\r\n\r\n"));
	free(t);
	dsn_free(&d);
}

static void
test_three_recipients(void **state)
{
	struct dsn_rcpt rc[3] = {
		{
			.final_recipient = "bob@example.net",
			.remote_mta = "mx1.example.net",
			.smtp_reply = "550 5.1.1 no such user",
			.last_attempt = ARRIVAL + 10,
		},
		{
			.final_recipient = "carol@example.org",
			.original_recipient = "sales@example.com",
			.remote_mta = "mx.example.org",
			.smtp_reply = "554 no",
		},
		{
			.final_recipient = "dave@nowhere.example",
			.reason = "no such domain",
			.last_attempt = ARRIVAL + 20,
		},
	};
	struct dsn d;
	struct blocks bl;
	char *t;

	report.rcpts = rc;
	report.nrcpts = 3;
	report.envid = "QQ314159";
	dsn_get(&d, &report);
	dsn_blocks(&d, &bl);
	assert_int_equal(bl.n, 4);
	fields_only(&bl.b[0], per_message);
	assert_string_equal(field(&bl.b[0], "Original-Envelope-Id"), "QQ314159");
	assert_string_equal(bl.b[0].f[0].name, "Original-Envelope-Id");
	assert_string_equal(field(&bl.b[0], "Reporting-MTA"), "dns; " HOST);
	for (int i = 1; i <= 3; i++) {
		fields_only(&bl.b[i], per_rcpt);
		assert_string_equal(field(&bl.b[i], "Action"), "failed");
		assert_null(field(&bl.b[i], "Will-Retry-Until"));
	}

	assert_string_equal(field(&bl.b[1], "Final-Recipient"), "rfc822; bob@example.net");
	assert_string_equal(field(&bl.b[1], "Status"), "5.1.1");
	assert_string_equal(field(&bl.b[1], "Remote-MTA"), "dns; mx1.example.net");
	assert_string_equal(field(&bl.b[1], "Diagnostic-Code"), "smtp; 550 5.1.1 no such user");
	assert_int_equal(date_of(field(&bl.b[1], "Last-Attempt-Date")), ARRIVAL + 10);

	assert_string_equal(bl.b[2].f[0].name, "Original-Recipient");
	assert_string_equal(field(&bl.b[2], "Original-Recipient"), "rfc822; sales@example.com");
	assert_string_equal(field(&bl.b[2], "Final-Recipient"), "rfc822; carol@example.org");
	assert_string_equal(field(&bl.b[2], "Status"), "5.0.0");
	assert_string_equal(field(&bl.b[2], "Diagnostic-Code"), "smtp; 554 no");
	assert_null(field(&bl.b[2], "Last-Attempt-Date"));

	assert_string_equal(field(&bl.b[3], "Final-Recipient"), "rfc822; dave@nowhere.example");
	assert_string_equal(field(&bl.b[3], "Status"), "5.0.0");
	assert_null(field(&bl.b[3], "Remote-MTA"));
	assert_string_equal(field(&bl.b[3], "Diagnostic-Code"), "X-Umbox; no such domain");
	blocks_free(&bl);

	t = text_unwrapped(&d);
	assert_non_null(strstr(t, "<bob@example.net>: the server mx1.example.net said: 550 5.1.1 no such user"));
	assert_non_null(strstr(t, "<carol@example.org> (expanded from <sales@example.com>): "
	    "the server mx.example.org said: 554 no"));
	assert_non_null(strstr(t, "<dave@nowhere.example>: no such domain"));
	/* In the recipients' order. */
	assert_true(strstr(t, "<bob@") < strstr(t, "<carol@"));
	assert_true(strstr(t, "<carol@") < strstr(t, "<dave@"));
	free(t);
	dsn_free(&d);
}

static void
status_is(const struct dsn_rcpt *rc, const char *want)
{
	char st[10];

	memset(st, 'x', sizeof(st));
	assert_ptr_equal(dsn_status(rc, st, sizeof(st)), st);
	assert_string_equal(st, want);
}

static void
test_status(void **state)
{
	static const struct {
		enum dsn_action action;
		const char *status, *reply;
		int expired;
		const char *want;
	} cases[] = {
		{ DSN_FAILED, NULL, "550 5.1.1 no such user", 0, "5.1.1" },
		{ DSN_FAILED, NULL, "554 no", 0, "5.0.0" },
		{ DSN_FAILED, NULL, "550-5.7.1 first line of many", 0, "5.7.1" },
		{ DSN_FAILED, NULL, "550 5.7.1", 0, "5.7.1" },
		{ DSN_FAILED, NULL, "552 5.3.4\r\n", 0, "5.3.4" },
		{ DSN_FAILED, NULL, "553 5.123.456 x", 0, "5.123.456" },
		{ DSN_FAILED, NULL, "550 5.1234.1 x", 0, "5.0.0" },
		{ DSN_FAILED, NULL, "550 5.1.1x", 0, "5.0.0" },
		{ DSN_FAILED, NULL, "550 5.1 x", 0, "5.0.0" },
		{ DSN_FAILED, NULL, "550 4.1.1 wrong class", 0, "5.0.0" },
		{ DSN_FAILED, NULL, "5505.1.1 x", 0, "5.0.0" },
		{ DSN_FAILED, NULL, "550", 0, "5.0.0" },
		{ DSN_FAILED, NULL, "", 0, "5.0.0" },
		{ DSN_FAILED, NULL, NULL, 0, "5.0.0" },
		{ DSN_FAILED, NULL, NULL, 1, "5.4.7" },
		{ DSN_FAILED, NULL, "451 4.3.0 try later", 1, "5.4.7" },
		{ DSN_FAILED, NULL, "421 closing", 0, "5.4.7" },
		{ DSN_FAILED, "5.2.2", NULL, 1, "5.2.2" },
		{ DSN_FAILED, "5.2.2", "550 5.1.1 x", 0, "5.2.2" },
		{ DSN_FAILED, "4.2.2", "550 5.1.1 x", 0, "5.1.1" },
		{ DSN_FAILED, "5.x.1", "554 no", 0, "5.0.0" },
		{ DSN_FAILED, "5.1.1 ", NULL, 0, "5.0.0" },
		{ DSN_DELAYED, NULL, "451 4.3.0 try later", 0, "4.3.0" },
		{ DSN_DELAYED, NULL, "452 busy", 0, "4.0.0" },
		{ DSN_DELAYED, NULL, "550 5.1.1 x", 0, "4.0.0" },
		{ DSN_DELAYED, NULL, NULL, 0, "4.0.0" },
		{ DSN_DELAYED, "4.2.2", NULL, 0, "4.2.2" },
		{ DSN_DELAYED, "5.2.2", NULL, 0, "4.0.0" },
	};
	char small[4];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dsn_rcpt rc = {
			.final_recipient = "x@y", .action = cases[i].action,
			.status = cases[i].status, .smtp_reply = cases[i].reply,
			.expired = cases[i].expired,
		};

		status_is(&rc, cases[i].want);
	}
	/* A short buffer is still terminated. */
	one_rcpt.smtp_reply = "550 5.1.1 x";
	dsn_status(&one_rcpt, small, sizeof(small));
	assert_string_equal(small, "5.1");
}

static void
test_delayed(void **state)
{
	struct dsn d;
	struct blocks bl;
	char *t;

	one_rcpt.action = DSN_DELAYED;
	one_rcpt.smtp_reply = "451 4.7.1 greylisted, come back later";
	one_rcpt.retry_until = ARRIVAL + 5 * 86400;
	dsn_get(&d, &report);
	assert_string_equal(g_mime_message_get_subject(d.msg),
	    "Delayed Mail (still being retried)");
	dsn_blocks(&d, &bl);
	assert_int_equal(bl.n, 2);
	assert_string_equal(field(&bl.b[1], "Action"), "delayed");
	assert_string_equal(field(&bl.b[1], "Status"), "4.7.1");
	assert_int_equal(date_of(field(&bl.b[1], "Will-Retry-Until")),
	    ARRIVAL + 5 * 86400);
	assert_string_equal(bl.b[1].f[bl.b[1].n - 1].name, "Will-Retry-Until");
	blocks_free(&bl);
	t = text_unwrapped(&d);
	assert_non_null(strstr(t, "has not been delivered yet"));
	assert_non_null(strstr(t, "you do not need to send it again"));
	assert_non_null(strstr(t, "451 4.7.1 greylisted, come back later (it will be "
	    "tried again until "));
	assert_null(strstr(t, "could not be delivered"));
	free(t);
	dsn_free(&d);
}

/* Failed and delayed recipients in one report. */
static void
test_mixed(void **state)
{
	struct dsn_rcpt rc[2] = {
		{ .final_recipient = "late@example.net", .action = DSN_DELAYED,
		  .reason = "mailbox full", .retry_until = NOW + 3600 },
		{ .final_recipient = "gone@example.net", .smtp_reply = "550 5.1.1 gone" },
	};
	struct dsn d;
	struct blocks bl;
	char *t;

	report.rcpts = rc;
	report.nrcpts = 2;
	dsn_get(&d, &report);
	assert_string_equal(g_mime_message_get_subject(d.msg),
	    "Undelivered Mail Returned to Sender");
	dsn_blocks(&d, &bl);
	assert_int_equal(bl.n, 3);
	assert_string_equal(field(&bl.b[1], "Action"), "delayed");
	assert_string_equal(field(&bl.b[1], "Status"), "4.0.0");
	assert_string_equal(field(&bl.b[1], "Diagnostic-Code"), "X-Umbox; mailbox full");
	assert_string_equal(field(&bl.b[2], "Action"), "failed");
	assert_string_equal(field(&bl.b[2], "Status"), "5.1.1");
	blocks_free(&bl);
	t = text_unwrapped(&d);
	/* Failed first, then the delayed ones. */
	assert_non_null(strstr(t, "<gone@example.net>: the remote server said: 550 5.1.1 gone"));
	assert_non_null(strstr(t, "<late@example.net>: mailbox full (it will be tried again until"));
	assert_true(strstr(t, "<gone@") < strstr(t, "<late@"));
	free(t);
	dsn_free(&d);
}

static void
test_expired(void **state)
{
	struct dsn d;
	struct blocks bl;
	char *t;

	one_rcpt.smtp_reply = "451 4.3.0 temporary failure";
	one_rcpt.expired = 1;
	report.lifetime = 5 * 86400;
	dsn_get(&d, &report);
	t = text_unwrapped(&d);
	assert_non_null(strstr(t, "<bob@example.net>: could not be delivered within "
	    "5 days; the last error was: the server mx1.example.net said: "
	    "451 4.3.0 temporary failure"));
	free(t);
	dsn_blocks(&d, &bl);
	assert_string_equal(field(&bl.b[1], "Action"), "failed");
	assert_string_equal(field(&bl.b[1], "Status"), "5.4.7");
	assert_string_equal(field(&bl.b[1], "Diagnostic-Code"),
	    "smtp; 451 4.3.0 temporary failure");
	blocks_free(&bl);
	dsn_free(&d);

	/* Without a lifetime: how long it was queued; a local full mailbox. */
	one_rcpt.smtp_reply = NULL;
	one_rcpt.remote_mta = NULL;
	one_rcpt.reason = "mailbox full";
	one_rcpt.status = "5.2.2";
	report.lifetime = 0;
	report.now = ARRIVAL + 36 * 3600;
	dsn_get(&d, &report);
	t = text_unwrapped(&d);
	assert_non_null(strstr(t, "<bob@example.net>: could not be delivered within "
	    "36 hours; the last error was: mailbox full"));
	free(t);
	dsn_blocks(&d, &bl);
	assert_string_equal(field(&bl.b[1], "Status"), "5.2.2");
	assert_string_equal(field(&bl.b[1], "Diagnostic-Code"), "X-Umbox; mailbox full");
	blocks_free(&bl);
	dsn_free(&d);
}

/* The names of the top-level header fields, in order, "\n"-joined. */
static char *
top_fields(const char *raw)
{
	const char *end = strstr(raw, "\r\n\r\n"), *p = raw;
	GString *g = g_string_new(NULL);

	assert_non_null(end);
	while (p < end + 2) {
		const char *e = strstr(p, "\r\n");

		if (*p != ' ' && *p != '\t') {
			const char *colon = memchr(p, ':', (size_t)(e - p));

			assert_non_null(colon);
			g_string_append_len(g, p, colon - p);
			g_string_append_c(g, '\n');
		}
		p = e + 2;
	}
	return g_string_free(g, FALSE);
}

static void
test_hostile(void **state)
{
	static const char evil_headers[] =
	    "Subject: one\r\nX-A: b\rBcc: cr@evil.example\r\n"
	    "X-Nul: a\0b\r\nX-Ctl: \x1b[31mred\x7f\r\n"
	    "X-Lf: bare\nX-After-Lf: yes\r\n\r\nbody\r\n";
	struct dsn_rcpt rc[1] = { {
		.final_recipient = "bob@example.net\r\nX-Injected: 1",
		.original_recipient = "sales@example.com\nAction: delivered",
		.remote_mta = "mx.example.net\r\n\r\nReporting-MTA: dns; evil",
		.smtp_reply = "550 5.1.1 no\r\nBcc: victim@example.org\r\n\r\n"
		    "Final-Recipient: rfc822; forged@example.org\n\tStatus: 2.0.0\x01\x7f",
		.last_attempt = ARRIVAL,
	} };
	struct dsn d;
	struct blocks bl;
	char *names, *t;
	const char *v;

	report.rcpts = rc;
	report.recipient = "alice@example.com\r\nBcc: victim@example.org";
	report.qid = "Q1\r\nX-Q: 1";
	report.envid = "env\r\nX-Env: 1";
	report.headers = evil_headers;
	report.headers_len = sizeof(evil_headers) - 1;
	dsn_get(&d, &report);

	names = top_fields(d.raw);
	assert_string_equal(names, "Date\nFrom\nSubject\nTo\nMessage-ID\n"
	    "Auto-Submitted\nMIME-Version\nContent-Type\n");
	g_free(names);
	assert_null(g_mime_object_get_header((GMimeObject *)d.msg, "Bcc"));
	assert_null(g_mime_object_get_header((GMimeObject *)d.msg, "X-Q"));
	assert_null(strstr(d.raw, "\r\nBcc:"));
	assert_null(strstr(d.raw, "\r\nX-Injected"));
	assert_null(strstr(d.raw, "\r\nX-Q:"));
	assert_null(strstr(d.raw, "\r\nX-Env:"));
	assert_null(strstr(d.raw, "\r\nAction: delivered"));
	assert_null(strstr(d.raw, "\r\nFinal-Recipient: rfc822; forged"));
	assert_null(strstr(d.raw, "\r\nReporting-MTA: dns; evil"));
	assert_null(strchr(g_mime_message_get_message_id(d.msg), '\r'));
	assert_null(strchr(g_mime_message_get_message_id(d.msg), ' '));

	dsn_blocks(&d, &bl);
	assert_int_equal(bl.n, 2);
	fields_only(&bl.b[0], per_message);
	fields_only(&bl.b[1], per_rcpt);
	assert_int_equal(bl.b[0].n, 3);
	assert_string_equal(field(&bl.b[0], "Reporting-MTA"), "dns; " HOST);
	assert_string_equal(field(&bl.b[0], "Original-Envelope-Id"), "env  X-Env: 1");
	assert_int_equal(bl.b[1].n, 7);
	assert_string_equal(field(&bl.b[1], "Final-Recipient"),
	    "rfc822; bob@example.net  X-Injected: 1");
	assert_string_equal(field(&bl.b[1], "Original-Recipient"),
	    "rfc822; sales@example.com Action: delivered");
	assert_string_equal(field(&bl.b[1], "Action"), "failed");
	assert_string_equal(field(&bl.b[1], "Status"), "5.1.1");
	assert_string_equal(field(&bl.b[1], "Remote-MTA"),
	    "dns; mx.example.net    Reporting-MTA: dns; evil");
	v = field(&bl.b[1], "Diagnostic-Code");
	assert_string_equal(v, "smtp; 550 5.1.1 no  Bcc: victim@example.org    "
	    "Final-Recipient: rfc822; forged@example.org  Status: 2.0.0");
	blocks_free(&bl);

	/* The text: one line per thing, controls gone. */
	t = content(d.text, NULL);
	for (const char *p = t; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		assert_true(c >= 0x20 || (c == '\r' && p[1] == '\n') ||
		    (c == '\n' && p > t && p[-1] == '\r'));
		assert_true(c != 0x7f);
	}
	assert_null(strstr(t, "\r\nBcc:"));
	free(t);

	/* The original headers: bare CR, NUL and controls made harmless. */
	t = content(d.headers, NULL);
	assert_string_equal(t, "Subject: one\r\nX-A: b?Bcc: cr@evil.example\r\n"
	    "X-Nul: a?b\r\nX-Ctl: ?[31mred?\r\nX-Lf: bare\r\nX-After-Lf: yes\r\n");
	free(t);
	dsn_free(&d);
}

/* Reports are refused only for what the caller got wrong. */
static void
test_refused(void **state)
{
	static const char *const bad_hosts[] = {
		NULL, "", "mail example.com", "mail.example.com\r\nX: 1",
		"m\xc3\xa9il.example.com", "mail@example.com",
	};
	struct dsn_rcpt noaddr = { .final_recipient = " \r\n" };
	char err[128], *out;
	size_t len = 99;

	for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
		reset();
		report.hostname = bad_hosts[i];
		err[0] = '\0';
		out = (char *)1;
		assert_int_equal(dsn_build(&report, &out, &len, err, sizeof(err)), -1);
		assert_null(out);
		assert_int_equal(len, 0);
		assert_true(err[0] != '\0');
	}
	reset();
	report.nrcpts = 0;
	assert_int_equal(dsn_build(&report, &out, &len, err, sizeof(err)), -1);
	assert_null(out);
	reset();
	report.rcpts = NULL;
	assert_int_equal(dsn_build(&report, &out, &len, err, sizeof(err)), -1);
	reset();
	report.nrcpts = DSN_RCPTS_MAX + 1;
	assert_int_equal(dsn_build(&report, &out, &len, err, sizeof(err)), -1);
	reset();
	report.recipient = NULL;
	assert_int_equal(dsn_build(&report, &out, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "sender"));
	reset();
	report.recipient = "";
	assert_int_equal(dsn_build(&report, &out, &len, err, sizeof(err)), -1);
	reset();
	report.rcpts = &noaddr;
	assert_int_equal(dsn_build(&report, &out, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "recipient 0"));
	noaddr.final_recipient = NULL;
	assert_int_equal(dsn_build(&report, &out, &len, err, sizeof(err)), -1);
}

/* Bare LF and bare CR line ends in the original headers: CRLF out. */
static void
test_line_ends(void **state)
{
	static const char lf[] = "Subject: lf only\nX-Two: 2\n\nbody\n";
	static const char cr[] = "Subject: cr\r\rX-Cr: \r\n\r\n";
	static const char nul[] = "Subject: a\0\r\n\0\r\n";
	struct dsn d;
	char *t;

	report.headers = lf;
	report.headers_len = sizeof(lf) - 1;
	dsn_get(&d, &report);
	t = content(d.headers, NULL);
	assert_string_equal(t, "Subject: lf only\r\nX-Two: 2\r\n");
	free(t);
	dsn_free(&d);

	report.headers = cr;
	report.headers_len = sizeof(cr) - 1;
	dsn_get(&d, &report);
	t = content(d.headers, NULL);
	assert_string_equal(t, "Subject: cr??X-Cr: \r\n");
	free(t);
	dsn_free(&d);

	report.headers = nul;
	report.headers_len = sizeof(nul) - 1;
	dsn_get(&d, &report);
	t = content(d.headers, NULL);
	assert_string_equal(t, "Subject: a?\r\n?\r\n");
	free(t);
	dsn_free(&d);

	/* No header block: no third part. */
	report.headers = NULL;
	report.headers_len = 0;
	dsn_get(&d, &report);
	assert_int_equal(d.nparts, 2);
	t = text_unwrapped(&d);
	assert_null(strstr(t, "attached"));
	free(t);
	dsn_free(&d);
	report.headers = "\r\nbody only\r\n";
	report.headers_len = strlen(report.headers);
	dsn_get(&d, &report);
	assert_int_equal(d.nparts, 2);
	dsn_free(&d);
}

static void
test_header_block(void **state)
{
	static const char m[] = "A: 1\r\nB: 2\r\n 2b\r\n\t2c\r\nC: 3\r\n\r\nbody\r\n";
	/* Offsets: A 0..6, B 6..12, " 2b" 12..17, "\t2c" 17..22, C 22..28, blank 28..30. */

	assert_int_equal(dsn_header_block(NULL, 5, 100), 0);
	assert_int_equal(dsn_header_block(m, 0, 100), 0);
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 1000), 30);
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 30), 30);
	/* The empty line does not fit: the fields do. */
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 29), 28);
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 28), 28);
	/* C does not fit: cut before it. */
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 27), 22);
	/* B's continuations do not all fit: cut before B. */
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 21), 6);
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 13), 6);
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 6), 6);
	assert_int_equal(dsn_header_block(m, sizeof(m) - 1, 5), 0);
	/* The first field is longer than cap: its whole lines that fit. */
	assert_int_equal(dsn_header_block(m + 6, sizeof(m) - 7, 14), 11);
	/* No empty line: all of it is the header block. */
	assert_int_equal(dsn_header_block("A: 1\r\nB: 2", 10, 100), 10);
	assert_int_equal(dsn_header_block("A: 1\nB: 2\n\nX", 12, 100), 11);
	assert_int_equal(dsn_header_block("\r\nbody", 6, 100), 2);
}

/* Headers far longer than DSN_HEADERS_MAX are cut at a field. */
static void
test_header_cap(void **state)
{
	GString *h = g_string_new("Subject: Big one\r\n");
	struct dsn d;
	char *t;
	size_t n, cut;
	int i = 0;

	while (h->len < DSN_HEADERS_MAX - 100)
		g_string_append_printf(h, "X-Filler-%05d: %s\r\n", i++,
		    "abcdefghijklmnopqrstuvwxyz0123456789");
	/* A folded field across the cap. */
	g_string_append(h, "X-Folded: first line\r\n");
	for (int k = 0; k < 10; k++)
		g_string_append(h, "\tcontinued line of the folded field\r\n");
	for (int k = 0; k < 1000; k++)
		g_string_append(h, "X-After: more\r\n");
	g_string_append(h, "\r\nbody\r\n");

	cut = dsn_header_block(h->str, h->len, DSN_HEADERS_MAX);
	assert_true(cut <= DSN_HEADERS_MAX);
	assert_true(cut > DSN_HEADERS_MAX - 200);
	assert_memory_equal(h->str + cut - 2, "\r\n", 2);
	assert_memory_equal(h->str + cut, "X-Folded: ", 10);

	report.headers = h->str;
	report.headers_len = h->len;
	dsn_get(&d, &report);
	t = content(d.headers, &n);
	assert_true(n <= DSN_HEADERS_MAX);
	assert_int_equal(n, cut);
	assert_memory_equal(t, h->str, n);
	assert_true(strncmp(t, "Subject: Big one\r\n", 18) == 0);
	assert_null(strstr(t, "X-Folded"));
	assert_null(strstr(t, "X-After"));
	free(t);
	dsn_free(&d);
	g_string_free(h, TRUE);
}

/* 8-bit octets in the original headers pass through, readable. */
static void
test_8bit_headers(void **state)
{
	static const char utf8[] = "Subject: Gr\xc3\xbc\xc3\x9f""e aus K\xc3\xb6ln\r\n"
	    "From: J\xc3\xb6rg <j@example.de>\r\n\r\n";
	static const char latin1[] = "Subject: Gr\xfc\xdf""e\r\n\r\n";
	GString *longline = g_string_new("Subject: x\r\nX-Long: ");
	struct dsn d;
	char *t;
	size_t n;

	report.headers = utf8;
	report.headers_len = sizeof(utf8) - 1;
	dsn_get(&d, &report);
	assert_int_equal(g_mime_part_get_content_encoding((GMimePart *)d.headers),
	    GMIME_CONTENT_ENCODING_8BIT);
	assert_string_equal(g_mime_object_get_content_type_parameter(d.headers,
	    "charset"), "utf-8");
	t = content(d.headers, NULL);
	assert_string_equal(t, "Subject: Gr\xc3\xbc\xc3\x9f""e aus K\xc3\xb6ln\r\n"
	    "From: J\xc3\xb6rg <j@example.de>\r\n");
	free(t);
	/* As it is in the raw bytes, not encoded. */
	assert_non_null(memmem(d.raw, d.len, "Subject: Gr\xc3\xbc\xc3\x9f""e aus K", 18));
	/* The rest of the message is still 7-bit. */
	for (const char *p = d.raw; p < strstr(d.raw, "text/rfc822-headers"); p++)
		assert_true((unsigned char)*p < 0x80);
	dsn_free(&d);

	report.headers = latin1;
	report.headers_len = sizeof(latin1) - 1;
	dsn_get(&d, &report);
	assert_int_equal(g_mime_part_get_content_encoding((GMimePart *)d.headers),
	    GMIME_CONTENT_ENCODING_8BIT);
	assert_null(g_mime_object_get_content_type_parameter(d.headers, "charset"));
	t = content(d.headers, NULL);
	assert_string_equal(t, "Subject: Gr\xfc\xdf""e\r\n");
	free(t);
	dsn_free(&d);

	/* A line too long for 8bit: quoted-printable, the same once decoded. */
	while (longline->len < 2000)
		g_string_append(longline, "\xc3\xa9t\xc3\xa9");
	g_string_append(longline, "\r\n\r\n");
	report.headers = longline->str;
	report.headers_len = longline->len;
	dsn_get(&d, &report);
	assert_int_equal(g_mime_part_get_content_encoding((GMimePart *)d.headers),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	t = content(d.headers, &n);
	assert_int_equal(n, longline->len - 2);
	assert_memory_equal(t, longline->str, n);
	free(t);
	dsn_free(&d);
	g_string_free(longline, TRUE);
}

/* UTF-8 in a reply and an address: readable text, ASCII fields. */
static void
test_utf8(void **state)
{
	struct dsn d;
	struct blocks bl;
	char *t;

	one_rcpt.final_recipient = "j\xc3\xb6rg+tag@b\xc3\xbc""ro.example";
	one_rcpt.original_recipient = "a=b\\c@example.de";
	one_rcpt.smtp_reply = "550 5.1.1 Empf\xc3\xa4nger unbekannt \xff!";
	report.recipient = "\xc3\xa9lise@example.fr";
	dsn_get(&d, &report);
	assert_string_equal(g_mime_object_get_content_type_parameter(d.text,
	    "charset"), "utf-8");
	t = text_unwrapped(&d);
	assert_non_null(strstr(t, "<j\xc3\xb6rg+tag@b\xc3\xbc""ro.example> (expanded from "
	    "<a=b\\c@example.de>): the server mx1.example.net said: 550 5.1.1 "
	    "Empf\xc3\xa4nger unbekannt \xef\xbf\xbd!"));
	free(t);
	dsn_blocks(&d, &bl);
	assert_string_equal(field(&bl.b[1], "Final-Recipient"),
	    "utf-8; j\\x{F6}rg\\x{2B}tag@b\\x{FC}ro.example");
	assert_string_equal(field(&bl.b[1], "Original-Recipient"),
	    "rfc822; a=b\\c@example.de");
	assert_string_equal(field(&bl.b[1], "Diagnostic-Code"),
	    "smtp; 550 5.1.1 Empf?nger unbekannt ?!");
	blocks_free(&bl);
	assert_non_null(memmem(d.raw, d.len, "To: \xc3\xa9lise@example.fr\r\n", 23));
	dsn_free(&d);
}

/* Long values: capped, folded at spaces, exact after unfolding. */
static void
test_long_values(void **state)
{
	GString *reply = g_string_new("550 5.7.1"), *word = g_string_new("554 ");
	struct dsn d;
	struct blocks bl;
	const char *v;
	char *t;

	for (int i = 0; reply->len < 5000; i++)
		g_string_append_printf(reply, " word%d", i);
	one_rcpt.smtp_reply = reply->str;
	dsn_get(&d, &report);
	dsn_blocks(&d, &bl);
	v = field(&bl.b[1], "Diagnostic-Code");
	assert_int_equal(strlen(v), strlen("smtp; ") + DSN_DIAG_MAX);
	assert_string_equal(v + strlen(v) - 3, "...");
	assert_memory_equal(v, "smtp; ", 6);
	assert_memory_equal(v + 6, reply->str, DSN_DIAG_MAX - 3);
	blocks_free(&bl);
	/* Folded: no line of the part is over 78 columns. */
	t = content(d.status, NULL);
	for (char *p = t, *e; (e = strstr(p, "\r\n")) != NULL; p = e + 2)
		assert_true(e - p <= 78);
	free(t);
	dsn_free(&d);

	/* One word longer than a line: kept whole, and a spaces run kept. */
	while (word->len < 900)
		g_string_append_c(word, 'w');
	g_string_append(word, "   tail");
	one_rcpt.smtp_reply = word->str;
	dsn_get(&d, &report);
	dsn_blocks(&d, &bl);
	v = field(&bl.b[1], "Diagnostic-Code");
	assert_memory_equal(v, "smtp; ", 6);
	assert_string_equal(v + 6, word->str);
	assert_string_equal(field(&bl.b[1], "Status"), "5.0.0");
	blocks_free(&bl);
	dsn_free(&d);
	g_string_free(reply, TRUE);
	g_string_free(word, TRUE);
}

static void
test_message_id_unique(void **state)
{
	struct dsn a, b;

	dsn_get(&a, &report);
	dsn_get(&b, &report);
	assert_string_not_equal(g_mime_message_get_message_id(a.msg),
	    g_mime_message_get_message_id(b.msg));
	dsn_free(&a);
	dsn_free(&b);
	report.qid = NULL;
	dsn_get(&a, &report);
	assert_true(strncmp(g_mime_message_get_message_id(a.msg),
	    "dsn.1700432000.", 15) == 0);
	dsn_free(&a);
}

/* Many recipients; dsn_build from several threads at once. */
static void *
build_thread(void *arg)
{
	struct dsn_report r = *(const struct dsn_report *)arg;
	char err[128], *out;
	size_t len;

	for (int i = 0; i < 20; i++) {
		if (dsn_build(&r, &out, &len, err, sizeof(err)) != 0)
			return (void *)1;
		free(out);
	}
	return NULL;
}

static void
test_many(void **state)
{
	struct dsn_rcpt *rc = calloc(DSN_RCPTS_MAX, sizeof(*rc));
	char (*addr)[32] = calloc(DSN_RCPTS_MAX, sizeof(*addr));
	pthread_t th[4];
	struct dsn d;
	char *t;
	size_t count = 0;

	assert_non_null(rc);
	assert_non_null(addr);
	for (size_t i = 0; i < DSN_RCPTS_MAX; i++) {
		snprintf(addr[i], sizeof(addr[i]), "user%zu@example.net", i);
		rc[i].final_recipient = addr[i];
		rc[i].smtp_reply = "550 5.1.1 no";
	}
	report.rcpts = rc;
	report.nrcpts = DSN_RCPTS_MAX;
	dsn_get(&d, &report);
	t = content(d.status, NULL);
	for (const char *p = t; (p = strstr(p, "Final-Recipient: ")) != NULL; p++)
		count++;
	assert_int_equal(count, DSN_RCPTS_MAX);
	free(t);
	dsn_free(&d);

	report.nrcpts = 3;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, build_thread, &report), 0);
	for (int i = 0; i < 4; i++) {
		void *res;

		assert_int_equal(pthread_join(th[i], &res), 0);
		assert_null(res);
	}
	free(rc);
	free(addr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_one_recipient, setup),
		cmocka_unit_test_setup(test_three_recipients, setup),
		cmocka_unit_test_setup(test_status, setup),
		cmocka_unit_test_setup(test_delayed, setup),
		cmocka_unit_test_setup(test_mixed, setup),
		cmocka_unit_test_setup(test_expired, setup),
		cmocka_unit_test_setup(test_hostile, setup),
		cmocka_unit_test_setup(test_refused, setup),
		cmocka_unit_test_setup(test_line_ends, setup),
		cmocka_unit_test_setup(test_header_block, setup),
		cmocka_unit_test_setup(test_header_cap, setup),
		cmocka_unit_test_setup(test_8bit_headers, setup),
		cmocka_unit_test_setup(test_utf8, setup),
		cmocka_unit_test_setup(test_long_values, setup),
		cmocka_unit_test_setup(test_message_id_unique, setup),
		cmocka_unit_test_setup(test_many, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
