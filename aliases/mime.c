/*
 * mime.c - GMime 3 for the messages umbox writes itself.
 */
#include "aliases/mime.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static int gmime_up;

static void
gmime_init_once(void)
{
	g_mime_init();
	gmime_up = 1;
}

void
mime_init(void)
{
	pthread_once(&gmime_once, gmime_init_once);
}

void
mime_shutdown(void)
{
	if (gmime_up) {
		g_mime_shutdown();
		gmime_up = 0;
	}
}

char *
mime_message_id(const char *tag, int64_t now, const char *host)
{
	static uint64_t counter;
	uint64_t rnd;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		rnd = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) << 40 ^
		    (uint64_t)getpid() << 20 ^ (uint64_t)ts.tv_nsec ^
		    (uint64_t)ts.tv_sec << 30;
	}
	return g_strdup_printf("<%s.%" PRId64 ".%016" PRIx64 "@%s>", tag, now, rnd, host);
}

/* Ends in CRLF; every CR followed by LF and every LF preceded by CR. */
static int
crlf_only(const unsigned char *p, size_t len)
{
	if (len < 2 || p[len - 2] != '\r' || p[len - 1] != '\n')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n'))
			return 0;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return 0;
	}
	return 1;
}

int
mime_write(GMimeObject *obj, char **out, size_t *outlen, char *err, size_t errlen)
{
	GMimeFormatOptions *fo = g_mime_format_options_new();
	GMimeStream *stream = g_mime_stream_mem_new();
	GByteArray *bytes;
	int ret = -1;

	*out = NULL;
	*outlen = 0;
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	if (g_mime_object_write_to_stream(obj, fo, stream) < 0) {
		snprintf(err, errlen, "cannot write the message");
		goto done;
	}
	bytes = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)stream);
	if (!crlf_only(bytes->data, bytes->len)) {
		/* GMime wrote a bare line end: never store that. */
		snprintf(err, errlen, "the message has a bare CR or LF");
		goto done;
	}
	*out = xmalloc(bytes->len + 1);
	memcpy(*out, bytes->data, bytes->len);
	(*out)[bytes->len] = '\0';
	*outlen = bytes->len;
	ret = 0;
done:
	g_object_unref(stream);
	g_mime_format_options_free(fo);
	return ret;
}

/* ---- 8-bit to 7-bit (RFC 6152 §3) ---- */

/* Whether a stream from its start holds valid UTF-8 (read a slice at a time). */
static int
stream_is_utf8(GMimeStream *s)
{
	char buf[16 * 1024 + 4];
	size_t carry = 0;
	ssize_t n;

	if (g_mime_stream_reset(s) != 0)
		return 0;
	/* A bounded stream says -1 at its end: the end is eos. */
	while (!g_mime_stream_eos(s)) {
		const gchar *end;
		size_t len;

		if ((n = g_mime_stream_read(s, buf + carry, sizeof(buf) - 4 - carry)) <= 0)
			return 0;
		len = carry + (size_t)n;

		if (!g_utf8_validate(buf, (gssize)len, &end)) {
			/* Only a character cut at the slice's end may wait for the next. */
			carry = len - (size_t)(end - buf);
			if (carry > 3 || g_utf8_get_char_validated(end, (gssize)carry) != (gunichar)-2)
				return 0;
			memmove(buf, end, carry);
		} else
			carry = 0;
	}
	return carry == 0;
}

/* A leaf part: re-encoded when it is 8-bit in an identity encoding. */
static int
part_to_7bit(GMimePart *part)
{
	GMimeObject *o = GMIME_OBJECT(part);
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeContentEncoding enc;

	if (w == NULL)
		return 0;
	switch (g_mime_part_get_content_encoding(part)) {
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
	case GMIME_CONTENT_ENCODING_UUENCODE:
		return 0;
	default:
		break;
	}
	enc = g_mime_part_get_best_content_encoding(part, GMIME_ENCODING_CONSTRAINT_7BIT);
	if (enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE && enc != GMIME_CONTENT_ENCODING_BASE64)
		return 0;
	/* Text stays readable as quoted-printable (RFC 1652 §3 (2)). */
	if (g_mime_content_type_is_type(g_mime_object_get_content_type(o), "text", "*"))
		enc = GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
	/* Text without a Content-Type would otherwise claim us-ascii. */
	if (g_mime_object_get_header(o, "Content-Type") == NULL)
		g_mime_object_set_header(o, "Content-Type",
		    stream_is_utf8(g_mime_data_wrapper_get_stream(w)) ?
		    "text/plain; charset=utf-8" : "text/plain; charset=unknown-8bit", NULL);
	g_mime_part_set_content_encoding(part, enc);
	return 1;
}

/* Every part under o; how many were re-encoded. */
static int
object_to_7bit(GMimeObject *o)
{
	int changed = 0;

	if (GMIME_IS_MULTIPART_SIGNED(o) || GMIME_IS_MULTIPART_ENCRYPTED(o))
		return 0;	/* re-encoding would break them */
	if (GMIME_IS_MESSAGE_PARTIAL(o))
		return 0;	/* RFC 2046 §5.2.2: 7bit only; its fragments would not rejoin */
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);

		for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
			changed += object_to_7bit(g_mime_multipart_get_part(mp, i));
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		const char *cte = g_mime_object_get_header(o, "Content-Transfer-Encoding");

		if (inner && g_mime_message_get_mime_part(inner))
			changed += object_to_7bit(g_mime_message_get_mime_part(inner));
		/* RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary. */
		if (changed && cte)
			g_mime_object_set_header(o, "Content-Transfer-Encoding", "7bit", NULL);
	} else if (GMIME_IS_PART(o))
		changed += part_to_7bit(GMIME_PART(o));
	return changed;
}

/* Lines that could be MIME boundaries ("--" first): each may start a part. */
#define MIME_7BIT_BOUNDARIES_MAX	5000

/*
 * How many lines of the file at fd begin with "--": more than the limit
 * is a message whose parts GMime would hold by the hundred thousand
 * (about 3 KiB each) for a conversion nobody needs.  -1 on a read error.
 */
static long
boundary_lines(int fd)
{
	char buf[64 * 1024];
	uint64_t off = 0;
	int at_start = 1, dash = 0;
	long n = 0;
	ssize_t got;

	while ((got = pread(fd, buf, sizeof(buf), (off_t)off)) > 0) {
		for (ssize_t i = 0; i < got; i++) {
			char c = buf[i];

			if (dash == 1 && c == '-')
				n++;
			dash = c == '-' && (at_start || dash == 1) ? dash + 1 : 0;
			at_start = c == '\n';
		}
		off += (uint64_t)got;
	}
	return got < 0 ? -1 : n;
}

/*
 * The written form read back: its length, whether an octet above 127 is
 * left, and whether every line ends in CRLF (no bare CR or LF).
 */
static int
scan_written(int fd, uint64_t *len, int *eightbit, int *crlf)
{
	char buf[64 * 1024], prev = '\0';
	uint64_t off = 0;
	ssize_t n;

	*eightbit = 0;
	*crlf = 1;
	while ((n = pread(fd, buf, sizeof(buf), (off_t)off)) > 0) {
		if (!*eightbit)
			*eightbit = mem_has_8bit(buf, (size_t)n);
		for (ssize_t i = 0; i < n && *crlf; i++) {
			if ((buf[i] == '\n' && prev != '\r') || (prev == '\r' && buf[i] != '\n'))
				*crlf = 0;
			prev = buf[i];
		}
		off += (uint64_t)n;
	}
	if (prev == '\r')
		*crlf = 0;
	*len = off;
	return n < 0 ? -1 : 0;
}

int
mime_to_7bit(int in_fd, int out_fd, uint64_t *outlen, int *eightbit, char *err, size_t errlen)
{
	GMimeStream *in = NULL, *out = NULL, *filtered = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *m = NULL;
	GMimeFormatOptions *fo = NULL;
	GMimeFilter *crlf = NULL;
	GMimeObject *body;
	long lines;
	int ret = -1, crlf_only;

	mime_init();
	*outlen = 0;
	*eightbit = 0;
	if (lseek(in_fd, 0, SEEK_SET) != 0 || lseek(out_fd, 0, SEEK_SET) != 0 ||
	    ftruncate(out_fd, 0) != 0 || (lines = boundary_lines(in_fd)) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (lines > MIME_7BIT_BOUNDARIES_MAX) {
		snprintf(err, errlen, "it has more than %d lines that may start a part",
		    MIME_7BIT_BOUNDARIES_MAX);
		return 1;
	}
	in = g_mime_stream_fs_new(in_fd);
	g_mime_stream_fs_set_owner(GMIME_STREAM_FS(in), FALSE);
	parser = g_mime_parser_new_with_stream(in);
	if ((m = g_mime_parser_construct_message(parser, NULL)) == NULL) {
		snprintf(err, errlen, "it is not a message GMime can read");
		goto done;
	}
	/* Nothing to re-encode: the message stays exactly as it is. */
	if ((body = g_mime_message_get_mime_part(m)) == NULL || object_to_7bit(body) == 0) {
		snprintf(err, errlen, "none of its 8-bit parts can be re-encoded");
		ret = 1;
		goto done;
	}
	if (g_mime_object_get_header(GMIME_OBJECT(m), "MIME-Version") == NULL)
		g_mime_object_set_header(GMIME_OBJECT(m), "MIME-Version", "1.0", NULL);
	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	out = g_mime_stream_fs_new(out_fd);
	g_mime_stream_fs_set_owner(GMIME_STREAM_FS(out), FALSE);
	/* GMime leaves a preamble's and an epilogue's line ends as parsed: CRLF for all. */
	filtered = g_mime_stream_filter_new(out);
	crlf = g_mime_filter_unix2dos_new(FALSE);
	g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), crlf);
	if (g_mime_object_write_to_stream(GMIME_OBJECT(m), fo, filtered) < 0 ||
	    g_mime_stream_flush(filtered) != 0) {
		snprintf(err, errlen, "writing it: %s", errno ? strerror(errno) : "failed");
		goto done;
	}
	if (scan_written(out_fd, outlen, eightbit, &crlf_only) != 0) {
		snprintf(err, errlen, "reading it back: %s", strerror(errno));
		goto done;
	}
	if (!crlf_only) {
		snprintf(err, errlen, "its 7-bit form would hold a bare CR or LF");
		goto done;
	}
	ret = 0;
done:
	if (fo)
		g_mime_format_options_free(fo);
	if (crlf)
		g_object_unref(crlf);
	if (filtered)
		g_object_unref(filtered);
	if (out)
		g_object_unref(out);
	if (m)
		g_object_unref(m);
	if (parser)
		g_object_unref(parser);
	if (in)
		g_object_unref(in);
	return ret;
}
