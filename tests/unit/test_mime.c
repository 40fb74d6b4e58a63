/*
 * test_mime.c - aliases/mime.c: a message made 7-bit for a server without
 * 8BITMIME (RFC 6152 §3).  Each case converts a message from a file and
 * reads the result back with GMime: the 8-bit parts decode to what they
 * were, what may not change did not, and the left-over flag is right.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aliases/mime.h"
#include "lib/util.h"

struct converted {
	char *text;		/* the output, NUL-terminated */
	size_t len;
	int eightbit;
	GMimeMessage *m;	/* the output parsed */
};

static int
file_with(const char *data, size_t len)
{
	int fd = memfd_create("mime", 0);

	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, data, len), 0);
	return fd;
}

static void
convert(const char *msg, struct converted *c)
{
	int in = file_with(msg, strlen(msg)), out = file_with("stale", 5);
	uint64_t len = 0;
	char err[256];
	GMimeStream *s;
	GMimeParser *p;

	assert_int_equal(mime_to_7bit(in, out, &len, &c->eightbit, err, sizeof(err)), 0);
	c->len = (size_t)len;
	c->text = calloc(1, c->len + 1);
	assert_int_equal(pread(out, c->text, c->len, 0), (ssize_t)c->len);
	assert_int_equal(lseek(out, 0, SEEK_END), (off_t)c->len);	/* nothing stale after it */
	close(in);
	close(out);
	s = g_mime_stream_mem_new_with_buffer(c->text, c->len);
	p = g_mime_parser_new_with_stream(s);
	c->m = g_mime_parser_construct_message(p, NULL);
	assert_non_null(c->m);
	g_object_unref(p);
	g_object_unref(s);
}

static void
converted_free(struct converted *c)
{
	g_object_unref(c->m);
	free(c->text);
}

/* A leaf part's content, decoded, with CRLF line ends as stored. */
static char *
decoded(GMimeObject *o)
{
	GMimeStream *s = g_mime_stream_mem_new();
	GByteArray *b;
	char *text;

	assert_true(GMIME_IS_PART(o));
	g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(o)), s);
	b = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
	text = strndup((const char *)b->data, b->len);
	g_object_unref(s);
	return text;
}

static void
assert_crlf_only(const struct converted *c)
{
	for (size_t i = 0; i < c->len; i++)
		if (c->text[i] == '\n')
			assert_true(i > 0 && c->text[i - 1] == '\r');
}

static void
test_multipart(void **state)
{
	static const char msg[] =
	    "From: a@example.com\r\n"
	    "Subject: hello\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	    "\r\n"
	    "This is a multi-part message in MIME format.\r\n"
	    "\r\n"
	    "--XX\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f" "e\r\n"
	    ".a line with a dot\r\n"
	    "--XX\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "AAECAw==\r\n"
	    "--XX\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "only ascii here\r\n"
	    "--XX--\r\n"
	    "epilogue one\r\n"
	    "epilogue two\r\n"
	    "\r\n";
	struct converted c;
	GMimeMultipart *mp;
	char *text;

	(void)state;
	convert(msg, &c);
	assert_int_equal(c.eightbit, 0);
	assert_int_equal(mem_has_8bit(c.text, c.len), 0);
	assert_crlf_only(&c);
	mp = GMIME_MULTIPART(g_mime_message_get_mime_part(c.m));
	assert_int_equal(g_mime_multipart_get_count(mp), 3);
	assert_int_equal(g_mime_part_get_content_encoding(GMIME_PART(g_mime_multipart_get_part(mp, 0))),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	text = decoded(g_mime_multipart_get_part(mp, 0));
	assert_string_equal(text, "sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f" "e\r\n.a line with a dot");
	free(text);
	/* Parts already 7-bit are as they were. */
	assert_non_null(strstr(c.text, "Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n"));
	assert_non_null(strstr(c.text, "Content-Type: text/plain\r\n\r\nonly ascii here\r\n"));
	assert_non_null(strstr(c.text, "Subject: hello\r\n"));
	converted_free(&c);
}

/* An 8-bit header field cannot be converted here: it is left and said. */
static void
test_8bit_header_is_left(void **state)
{
	struct converted c;

	(void)state;
	convert("Subject: gr\xc3\xbc\xc3\x9f" "e\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
	    "\r\n\xc3\xa9t\xc3\xa9\r\n", &c);
	assert_int_equal(c.eightbit, 1);
	assert_non_null(strstr(c.text, "Subject: gr\xc3\xbc\xc3\x9f" "e\r\n"));
	assert_non_null(strstr(c.text, "=C3=A9t=C3=A9"));
	converted_free(&c);
}

/* Without MIME: labelled with what it is, and MIME-Version added. */
static void
test_not_mime(void **state)
{
	char *msg, *text;
	struct converted c;
	size_t fill = 16 * 1024 - 1;

	(void)state;
	convert("From: a@example.com\r\nSubject: hi\r\n\r\nna\xc3\xafve\r\n", &c);
	assert_int_equal(c.eightbit, 0);
	assert_non_null(strstr(c.text, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(c.text, "charset=utf-8"));
	text = decoded(g_mime_message_get_mime_part(c.m));
	assert_string_equal(text, "na\xc3\xafve\r\n");
	free(text);
	converted_free(&c);

	convert("Subject: hi\r\n\r\nna\xefve\r\n", &c);		/* Latin-1 */
	assert_int_equal(c.eightbit, 0);
	assert_non_null(strstr(c.text, "charset=unknown-8bit"));
	converted_free(&c);

	/* A UTF-8 character across the checker's 16 KiB slices is still UTF-8. */
	msg = malloc(fill + 64);
	strcpy(msg, "Subject: long\r\n\r\n");
	memset(msg + strlen(msg), 'a', fill);
	strcpy(msg + strlen("Subject: long\r\n\r\n") + fill, "\xc3\xa9\r\n");
	convert(msg, &c);
	assert_non_null(strstr(c.text, "charset=utf-8"));
	converted_free(&c);
	free(msg);
}

/* Nothing to re-encode: 1, nothing written, and the message goes as it is. */
static void
assert_left_as_is(const char *msg)
{
	int in = file_with(msg, strlen(msg)), out = file_with("", 0);
	uint64_t len = 7;
	int eightbit = 0;
	char err[256];

	assert_int_equal(mime_to_7bit(in, out, &len, &eightbit, err, sizeof(err)), 1);
	assert_int_equal(lseek(out, 0, SEEK_END), 0);
	close(in);
	close(out);
}

/*
 * A signed part is not touched (re-encoding would break the signature),
 * nor is a message whose only 8-bit octets are in its header fields.
 */
static void
test_left_as_is(void **state)
{
	(void)state;
	assert_left_as_is(
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/signed; boundary=\"S\";"
	    " protocol=\"application/pgp-signature\"; micalg=pgp-sha256\r\n"
	    "\r\n"
	    "--S\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "sign\xc3\xa9\r\n"
	    "--S\r\n"
	    "Content-Type: application/pgp-signature\r\n"
	    "\r\n"
	    "SIG\r\n"
	    "--S--\r\n");
	assert_left_as_is("Subject: gr\xc3\xbc\xc3\x9f" "e\r\n\r\nascii only\r\n");
	/* A fragment of a message/partial may only be 7bit: it is not re-encoded. */
	assert_left_as_is("MIME-Version: 1.0\r\n"
	    "Content-Type: message/partial; id=\"x@y\"; number=1; total=2\r\n"
	    "\r\n"
	    "Subject: frag\r\n\r\nfr\xc3\xa4g\r\n");
}

/* Hundreds of thousands of parts would cost GMime gigabytes: not converted. */
static void
test_too_many_parts(void **state)
{
	static const char part[] = "--B\r\n\r\n\xfc\r\n";
	size_t n = 6000, hl = strlen("Content-Type: multipart/mixed; boundary=B\r\n\r\n");
	char *msg = malloc(hl + n * strlen(part) + 8), err[256];
	int in, out, eightbit = 0;
	uint64_t len = 0;

	(void)state;
	strcpy(msg, "Content-Type: multipart/mixed; boundary=B\r\n\r\n");
	for (size_t i = 0; i < n; i++)
		strcat(msg + hl + (i ? (i - 1) * strlen(part) : 0), part);
	strcat(msg, "--B--\r\n");
	in = file_with(msg, strlen(msg));
	out = file_with("", 0);
	assert_int_equal(mime_to_7bit(in, out, &len, &eightbit, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "more than 5000 lines"));
	assert_int_equal(lseek(out, 0, SEEK_END), 0);
	close(in);
	close(out);
	free(msg);
}

/* A forwarded message's 8-bit part is converted inside it. */
static void
test_message_rfc822(void **state)
{
	static const char msg[] =
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"O\"\r\n"
	    "\r\n"
	    "--O\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "Subject: inner\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "inn\xc3\xa9r\r\n"
	    "--O--\r\n";
	struct converted c;

	(void)state;
	convert(msg, &c);
	assert_int_equal(c.eightbit, 0);
	assert_non_null(strstr(c.text, "inn=C3=A9r"));
	assert_non_null(strstr(c.text,
	    "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n"));
	converted_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_8bit_header_is_left),
		cmocka_unit_test(test_not_mime),
		cmocka_unit_test(test_left_as_is),
		cmocka_unit_test(test_too_many_parts),
		cmocka_unit_test(test_message_rfc822),
	};
	int ret;

	mime_init();
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	mime_shutdown();
	return ret;
}
