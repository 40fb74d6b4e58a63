/*
 * mime.c - GMime 3 for the messages umbox writes itself.
 */
#include "aliases/mime.h"

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
