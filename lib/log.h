/*
 * log.h - one log format for every program.
 *
 * Lines carry the session or queue id first, then key=value fields:
 *     "3f2a9c: from=<a@b> size=1234 nrcpt=2"
 * In the foreground (-f) they go to stderr with a timestamp, otherwise to
 * syslog, facility mail.  Client-supplied text goes through log_escape().
 */
#ifndef UMBOX_LOG_H
#define UMBOX_LOG_H

#include <stddef.h>
#include <syslog.h>

void log_init(const char *ident, int foreground);
void log_set_debug(int on);
/* Drop messages less urgent than prio (umboxctl: LOG_WARNING). */
void log_set_max(int prio);
/* Lines as a command prints them ("IDENT: warning: ..."), without a time stamp. */
void log_set_plain(int on);

void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* text's line breaks, with the blanks around them, made one space each (in place). */
void log_one_line(char *text);
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)

/*
 * Copy src (srclen bytes, may hold anything) into dst as printable ASCII:
 * '\\' and '"' are backslash-escaped, other bytes outside 0x20..0x7e become
 * \xHH.  Output is truncated to fit dstlen (always NUL terminated, dstlen > 0)
 * and ends in "..." when cut.  Returns dst, so it can sit in a printf call.
 */
char *log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);

#endif
