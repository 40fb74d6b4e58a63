/*
 * value.h - parsers and checks for the scalar values umbox reads from its
 * configuration and its command line: sizes, durations, counts, domain
 * names, user names, logins, node and voice names, literal IP addresses,
 * and comma-separated lists of any of these.
 *
 * All of them are pure functions over NUL-terminated text: no I/O, no
 * allocation, no locale.  The value_parse_* functions return NULL on
 * success or a static reason phrase ("is not a number", "is too large")
 * that reads after the quoted value: "\"12X\" has an unknown unit".
 */
#ifndef UMBOX_VALUE_H
#define UMBOX_VALUE_H

#include <stddef.h>
#include <stdint.h>

/* Longest item value_list_foreach() hands on, not counting the NUL. */
#define VALUE_ITEM_MAX	511

/* Decimal digits only, the whole string, within [min, max]. */
const char *value_parse_count(const char *s, uint64_t min, uint64_t max,
    uint64_t *out);

/* Bytes with an optional K, M or G suffix (powers of 1024): "35M". */
const char *value_parse_size(const char *s, uint64_t *out);

/* Seconds, or a number with s, m, h or d: "30s", "1h", "5d". */
const char *value_parse_duration(const char *s, unsigned *out);

/* Each of these answers 1 (valid) or 0. */
int value_is_domain(const char *s);	/* LDH labels, not all-numeric */
int value_is_user(const char *s);	/* a system user name, or "" */
int value_is_login(const char *s);	/* an umbox login: a-z 0-9 . _ - */
int value_is_node_id(const char *s);	/* letters, digits, . _ - */
int value_is_voice(const char *s);	/* an espeak-ng voice name */

/*
 * Is s a literal IPv4 or IPv6 address?  Returns AF_INET or AF_INET6 and
 * fills addr (4 or 16 bytes, network order), or returns 0.
 */
int value_ip_literal(const char *s, unsigned char addr[16]);

/* The callback of value_list_foreach(): 0, or -1 with a message in why. */
typedef int (*value_item_fn)(const char *item, void *arg, char *why,
    size_t whylen);

/*
 * Call fn on each item of a comma-separated list, trimmed of blanks.  An
 * empty or blank list has no items; an empty item ("a,,b", a trailing
 * comma) or one longer than VALUE_ITEM_MAX is an error.  Stops at the
 * first error and returns -1 with the reason in why; else 0.
 */
int value_list_foreach(const char *list, value_item_fn fn, void *arg,
    char *why, size_t whylen);

#endif
