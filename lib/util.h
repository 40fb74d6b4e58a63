/*
 * util.h - allocation wrappers and small helpers shared by every part.
 *
 * Allocation failure is not a condition umbox tries to survive: every
 * allocation goes through these wrappers, which abort with a message.
 */
#ifndef UMBOX_UTIL_H
#define UMBOX_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define UMBOX_VERSION "0.1.0"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds of CLOCK_MONOTONIC: for deadlines and ages, never dates. */
int64_t monotonic_ms(void);

/* free(*p) and set *p to NULL. */
void xfree(void *pp);

/* Abort on a broken invariant; never used for bad input. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A growable array of owned strings. */
struct strlist {
	char **v;
	size_t n;
};
void strlist_add(struct strlist *l, const char *s);
void strlist_clear(struct strlist *l);
int strlist_contains_nocase(const struct strlist *l, const char *s);

/* ASCII-only case folding, locale independent. */
void str_lower(char *s);

/* Whether any of the len octets at p is above 127 (not 7-bit). */
int mem_has_8bit(const void *p, size_t len);

/* Write all of buf (retrying short writes and EINTR): 0, or -1 with errno set. */
int write_all(int fd, const void *buf, size_t len);
/* A read-write file in dir, unlinked from the start (a spool); -1 with errno. */
int spool_file_open(const char *dir);
/* mkdir -p: path and its missing parents, each made with mode; 0 or -1 (errno). */
int mkdir_p(const char *path, unsigned mode);

/*
 * Parse an unsigned decimal number that must span the whole string.
 * Rejects signs, spaces, empty input and overflow past max.
 */
int parse_uint(const char *s, uint64_t max, uint64_t *out);

#endif
