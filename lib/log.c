/*
 * log.c - stderr or syslog, one line per event.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int log_foreground = 1;
static int log_plain;		/* a command's stderr: no time stamp */
static int log_debug_on;
static int log_max = LOG_DEBUG;	/* less urgent than this is dropped */
static const char *log_ident = "umbox";

void
log_init(const char *ident, int foreground)
{
	log_ident = ident;
	log_foreground = foreground;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_debug(int on)
{
	log_debug_on = on;
}

void
log_set_max(int prio)
{
	log_max = prio;
}

void
log_set_plain(int on)
{
	log_plain = on;
}

static const char *
log_level_name(int prio)
{
	switch (prio) {
	case LOG_DEBUG:		return "debug";
	case LOG_INFO:		return "info";
	case LOG_NOTICE:	return "notice";
	case LOG_WARNING:	return "warning";
	default:		return "error";
	}
}

/*
 * One line however the text came: a line break and the blanks around it
 * (libpq's messages run over several indented lines) become one space,
 * and the text ends with no blank.
 */
void
log_one_line(char *text)
{
	char *o = text;

	for (const char *i = text; *i; i++) {
		if (*i != '\n' && *i != '\r') {
			*o++ = *i;
			continue;
		}
		while (o > text && (o[-1] == ' ' || o[-1] == '\t'))
			o--;
		while (i[1] == '\n' || i[1] == '\r' || i[1] == ' ' || i[1] == '\t')
			i++;
		if (o > text && i[1] != '\0')
			*o++ = ' ';
	}
	*o = '\0';
}

void
log_msg(int prio, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if ((prio == LOG_DEBUG && !log_debug_on) || prio > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_one_line(line);

	if (log_foreground && log_plain) {
		if (prio <= LOG_ERR)
			fprintf(stderr, "%s: %s\n", log_ident, line);
		else
			fprintf(stderr, "%s: %s: %s\n", log_ident, log_level_name(prio), line);
	} else if (log_foreground) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp,
		    ts.tv_nsec / 1000000, log_ident, log_level_name(prio), line);
	} else
		syslog(prio, "%s", line);
}

char *
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	for (i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];
		size_t need = (c == '\\' || c == '"') ? 2 :
		    (c < 0x20 || c > 0x7e) ? 4 : 1;

		if (o + need + 4 > dstlen)	/* room for "..." and NUL */
			break;
		if (need == 2) {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (need == 4) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else
			dst[o++] = (char)c;
	}
	if (i < srclen && dstlen >= 4) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o < dstlen ? o : dstlen - 1] = '\0';
	return dst;
}
