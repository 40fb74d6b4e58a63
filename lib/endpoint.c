/*
 * endpoint.c - parse and format "host:port" endpoints and lists of them.
 *
 * The grammar is small but has one trap: IPv6 addresses contain colons.
 * With a port, an IPv6 address must be bracketed ("[::1]:25"); anything
 * else with two colons or more is refused rather than guessed at, since
 * "::1:25" is both "::1" port 25 and the address "::1:25".  Without a
 * port (only when the caller has a default), the whole text is the host.
 */
#include "endpoint.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"
#include "value.h"

/*
 * Check the host part (already unbracketed) and normalise it in place:
 * bracketed text must be an IPv6 address; with ENDPOINT_IP_ONLY any
 * literal address will do; otherwise a literal address or a domain name,
 * which is lowercased.  item is the whole text, for messages.
 */
static int
endpoint_host(char *host, int bracketed, unsigned flags, const char *item,
    char *why, size_t whylen)
{
	unsigned char a[16];
	int family = value_ip_literal(host, a);

	if (bracketed) {
		if (family != AF_INET6) {
			snprintf(why, whylen, "\"%s\" is not an IPv6 address "
			    "in brackets", item);
			return -1;
		}
		return 0;
	}
	if (family != 0)
		return 0;
	if (flags & ENDPOINT_IP_ONLY) {
		snprintf(why, whylen, "\"%s\" is not an IP address", host);
		return -1;
	}
	if (!value_is_domain(host)) {
		snprintf(why, whylen, "\"%s\" is neither an IPv4 address nor a "
		    "host name", host);
		return -1;
	}
	str_lower(host);
	return 0;
}

/*
 * Split s into host and port text, check both, and fill *out only when
 * everything is right.  See endpoint.h for the accepted forms.
 */
int
endpoint_parse(const char *s, uint16_t default_port, unsigned flags,
    struct config_endpoint *out, char *why, size_t whylen)
{
	struct config_endpoint ep;
	unsigned char a[16];
	const char *host = s, *port = NULL, *close, *colon;
	size_t hostlen;
	int bracketed = 0;
	uint64_t v;

	memset(&ep, 0, sizeof(ep));
	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL) {
			snprintf(why, whylen, "\"%s\" lacks the closing ']'", s);
			return -1;
		}
		host = s + 1;
		hostlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0') {
			snprintf(why, whylen, "\"%s\" has text after ']'", s);
			return -1;
		}
		bracketed = 1;
	} else if ((colon = strrchr(s, ':')) != NULL &&
	    colon != strchr(s, ':')) {
		/* Two colons or more: an IPv6 address without brackets. */
		if (default_port == 0 || inet_pton(AF_INET6, s, a) != 1) {
			snprintf(why, whylen, "\"%s\": write an IPv6 address in "
			    "brackets, as [2001:db8::1]:25", s);
			return -1;
		}
		hostlen = strlen(s);
	} else if (colon != NULL) {
		hostlen = (size_t)(colon - s);
		port = colon + 1;
	} else
		hostlen = strlen(s);

	if (hostlen == 0) {
		snprintf(why, whylen, "\"%s\" has no host", s);
		return -1;
	}
	if (hostlen >= sizeof(ep.host)) {
		snprintf(why, whylen, "\"%.40s...\" has a host name that is "
		    "too long", s);
		return -1;
	}
	memcpy(ep.host, host, hostlen);
	ep.host[hostlen] = '\0';
	if (endpoint_host(ep.host, bracketed, flags, s, why, whylen) != 0)
		return -1;

	if (port == NULL) {
		if (default_port == 0) {
			snprintf(why, whylen, "\"%s\" has no port", s);
			return -1;
		}
		ep.port = default_port;
	} else if (*port == '\0') {
		snprintf(why, whylen, "\"%s\" has no port", s);
		return -1;
	} else if (parse_uint(port, 65535, &v) != 0 || v == 0) {
		snprintf(why, whylen, "\"%s\" has port \"%s\", not 1..65535",
		    s, port);
		return -1;
	} else
		ep.port = (uint16_t)v;

	*out = ep;
	return 0;
}

struct list_arg {
	struct config_endpoints list;
	uint16_t default_port;
	unsigned flags;
};

/* value_list_foreach() callback: parse one item and append it. */
static int
list_item(const char *item, void *argp, char *why, size_t whylen)
{
	struct list_arg *arg = argp;
	struct config_endpoint ep;

	if (endpoint_parse(item, arg->default_port, arg->flags, &ep, why,
	    whylen) != 0)
		return -1;
	arg->list.v = xreallocarray(arg->list.v, arg->list.n + 1,
	    sizeof(*arg->list.v));
	arg->list.v[arg->list.n++] = ep;
	return 0;
}

/* Parse into a new array and swap it in only when every item is good. */
int
endpoint_list_parse(const char *s, uint16_t default_port, unsigned flags,
    struct config_endpoints *out, char *why, size_t whylen)
{
	struct list_arg arg;

	memset(&arg, 0, sizeof(arg));
	arg.default_port = default_port;
	arg.flags = flags;
	if (value_list_foreach(s, list_item, &arg, why, whylen) != 0) {
		free(arg.list.v);
		return -1;
	}
	endpoint_list_clear(out);
	*out = arg.list;
	return 0;
}

void
endpoint_list_clear(struct config_endpoints *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
endpoint_list_copy(struct config_endpoints *out, const struct config_endpoints *l)
{
	out->n = l ? l->n : 0;
	out->v = NULL;
	if (out->n > 0) {
		out->v = xcalloc(out->n, sizeof(*out->v));
		memcpy(out->v, l->v, out->n * sizeof(*out->v));
	}
}

char *
endpoint_format(const struct config_endpoint *ep, char *buf, size_t len)
{
	if (strchr(ep->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", ep->host, (unsigned)ep->port);
	else
		snprintf(buf, len, "%s:%u", ep->host, (unsigned)ep->port);
	return buf;
}
