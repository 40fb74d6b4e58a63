/*
 * cidr.c - parse address blocks and match addresses against them.
 *
 * Blocks are kept masked (host bits clear) and addresses are compared bit
 * by bit over the prefix only, so a match never depends on how the block
 * was written.  IPv4-mapped IPv6 is folded into IPv4 on both sides; see
 * cidr.h.
 */
#include "cidr.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"
#include "value.h"

static const unsigned char v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Clear the bits of addr (len bytes) beyond prefix. */
static void
cidr_mask(unsigned char *addr, size_t len, unsigned prefix)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (prefix >= 8) {
			prefix -= 8;
			continue;
		}
		addr[i] &= (unsigned char)(0xff00 >> prefix);
		prefix = 0;
	}
}

/* Do the first prefix bits of a and b agree?  Both hold prefix bits. */
static int
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, bytes) != 0)
		return 0;
	if (bits == 0)
		return 1;
	mask = (unsigned char)(0xff00 >> bits);
	return (a[bytes] & mask) == (b[bytes] & mask);
}

/*
 * Copy an address into out (16 bytes) in the form blocks are kept in:
 * a mapped IPv6 address becomes its IPv4 address.  Returns the family to
 * compare as, or 0 for a family that is neither IPv4 nor IPv6.
 */
static int
normalise(int family, const void *addr, unsigned char out[16])
{
	memset(out, 0, 16);
	switch (family) {
	case AF_INET:
		memcpy(out, addr, 4);
		return AF_INET;
	case AF_INET6:
		if (memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
			memcpy(out, (const unsigned char *)addr + 12, 4);
			return AF_INET;
		}
		memcpy(out, addr, 16);
		return AF_INET6;
	default:
		return 0;
	}
}

int
cidr_parse(const char *s, struct cidr *out, char *why, size_t whylen)
{
	struct cidr c;
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned maxp;
	uint64_t v;

	memset(&c, 0, sizeof(c));
	if (alen >= sizeof(addr)) {
		snprintf(why, whylen, "\"%s\" is not an IP address", s);
		return -1;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if ((c.family = value_ip_literal(addr, c.addr)) == 0) {
		snprintf(why, whylen, "\"%s\" is not an IP address or CIDR", s);
		return -1;
	}
	maxp = c.family == AF_INET ? 32 : 128;
	c.prefix = maxp;
	if (slash != NULL) {
		if (parse_uint(slash + 1, maxp, &v) != 0) {
			snprintf(why, whylen, "\"%s\" has a prefix length "
			    "outside 0..%u", s, maxp);
			return -1;
		}
		c.prefix = (unsigned)v;
	}
	/* ::ffff:a.b.c.d/96 and longer mean an IPv4 block. */
	if (c.family == AF_INET6 && c.prefix >= 96 &&
	    memcmp(c.addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.prefix -= 96;
	}
	cidr_mask(c.addr, sizeof(c.addr), c.prefix);
	*out = c;
	return 0;
}

/* value_list_foreach() callback: parse one block and append it. */
static int
list_item(const char *item, void *argp, char *why, size_t whylen)
{
	struct cidr_list *list = argp;
	struct cidr c;

	if (cidr_parse(item, &c, why, whylen) != 0)
		return -1;
	list->v = xreallocarray(list->v, list->n + 1, sizeof(*list->v));
	list->v[list->n++] = c;
	return 0;
}

/* Parse into a new array and swap it in only when every item is good. */
int
cidr_list_parse(const char *s, struct cidr_list *out, char *why,
    size_t whylen)
{
	struct cidr_list l = { NULL, 0 };

	if (value_list_foreach(s, list_item, &l, why, whylen) != 0) {
		free(l.v);
		return -1;
	}
	cidr_list_clear(out);
	*out = l;
	return 0;
}

void
cidr_list_clear(struct cidr_list *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Compare an address already normalise()d against one block. */
static int
contains_normalised(const struct cidr *c, int family, const unsigned char *a)
{
	if (c->family != family)
		return 0;
	if (c->prefix > (family == AF_INET ? 32U : 128U))
		return 0;
	return prefix_equal(a, c->addr, c->prefix);
}

int
cidr_contains(const struct cidr *c, int family, const void *addr)
{
	unsigned char a[16];

	if (c == NULL || addr == NULL ||
	    (family = normalise(family, addr, a)) == 0)
		return 0;
	return contains_normalised(c, family, a);
}

int
cidr_match_addr(const struct cidr_list *l, int family, const void *addr)
{
	unsigned char a[16];
	size_t i;

	if (l == NULL || addr == NULL ||
	    (family = normalise(family, addr, a)) == 0)
		return 0;
	for (i = 0; i < l->n; i++)
		if (contains_normalised(&l->v[i], family, a))
			return 1;
	return 0;
}

/*
 * Nothing is read through sa directly: the family and the address are
 * copied out first, so a sockaddr in a buffer with no particular
 * alignment (a packed message, a byte array) is read correctly.
 */
int
cidr_match_sockaddr(const struct cidr_list *l, const struct sockaddr *sa)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	sa_family_t family;

	if (l == NULL || sa == NULL)
		return 0;
	memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family),
	    sizeof(family));
	switch (family) {
	case AF_INET:
		memcpy(&sin, sa, sizeof(sin));
		return cidr_match_addr(l, AF_INET, &sin.sin_addr);
	case AF_INET6:
		memcpy(&sin6, sa, sizeof(sin6));
		return cidr_match_addr(l, AF_INET6, &sin6.sin6_addr);
	default:
		return 0;
	}
}
