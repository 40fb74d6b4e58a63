/*
 * endpoint.h - "host:port" endpoints and comma-separated lists of them:
 * the listeners of both daemons, [dns] servers, and whatever else names a
 * TCP or UDP peer in text (a relay, a test's fake MX).
 *
 *   192.0.2.1:25    mail.example.com:587    [2001:db8::1]:25
 *
 * The host is an IPv4 address, an IPv6 address in brackets, or a domain
 * name (unless ENDPOINT_IP_ONLY); the port is 1..65535 and may be left out
 * when the caller supplies a default, in which case a bare IPv6 address
 * needs no brackets ("::1").  Parsing is pure: no name lookups, no I/O.
 */
#ifndef UMBOX_ENDPOINT_H
#define UMBOX_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

/*
 * One endpoint.  host is stored without brackets; a domain name is
 * lowercased.  (The config_ names are the ones the listeners and daemons
 * have always used for these types.)
 */
struct config_endpoint {
	char host[256];
	uint16_t port;
};

struct config_endpoints {
	struct config_endpoint *v;
	size_t n;
};

/* The host must be a literal IP address, not a name. */
#define ENDPOINT_IP_ONLY	0x1

/* Room endpoint_format() needs: "[" host "]:" port NUL. */
#define ENDPOINT_TEXT_MAX	(sizeof(((struct config_endpoint *)0)->host) + 8)

/*
 * Parse one endpoint.  default_port 0 means a port is required; otherwise
 * it is used when s has none.  Returns 0 and fills *out, or -1 with a
 * message quoting s in why (out is then untouched).
 */
int endpoint_parse(const char *s, uint16_t default_port, unsigned flags,
    struct config_endpoint *out, char *why, size_t whylen);

/*
 * Parse a comma-separated list of endpoints (blanks around items are
 * ignored; an empty string is an empty list).  *out must hold a list or
 * zeroes: on success its old array is freed and replaced, on failure it is
 * left as it was.  Returns 0, or -1 with the first problem in why.
 */
int endpoint_list_parse(const char *s, uint16_t default_port, unsigned flags,
    struct config_endpoints *out, char *why, size_t whylen);

/* Free the array and zero the list. */
void endpoint_list_clear(struct config_endpoints *l);
/* A copy of l (NULL: an empty list) in *out, which holds nothing to free. */
void endpoint_list_copy(struct config_endpoints *out, const struct config_endpoints *l);

/*
 * Write ep as text that endpoint_parse() reads back to the same endpoint:
 * "host:port", or "[host]:port" for an IPv6 address.  Returns buf.
 */
char *endpoint_format(const struct config_endpoint *ep, char *buf, size_t len);

#endif
