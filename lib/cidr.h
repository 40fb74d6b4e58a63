/*
 * cidr.h - IPv4 and IPv6 address blocks ("192.0.2.0/24", "2001:db8::/32"),
 * lists of them, and the question "is this address inside one of them?".
 *
 * Used for [smtpd] trusted_networks, and by anything else that must place
 * a peer or a resolved address (the MX guard) in a set of networks.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack socket reports for
 * an IPv4 peer) is IPv4 throughout: a mapped block of /96 or longer is
 * stored as the IPv4 block it means, and a mapped address is matched
 * against the IPv4 blocks.  So "0.0.0.0/0" covers every IPv4 peer however
 * it arrives, and "::/0" covers IPv6 peers only.
 */
#ifndef UMBOX_CIDR_H
#define UMBOX_CIDR_H

#include <stddef.h>

struct sockaddr;

struct cidr {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* network order, host bits clear */
	unsigned prefix;		/* 0..32 or 0..128 */
};

struct cidr_list {
	struct cidr *v;
	size_t n;
};

/*
 * Parse one block: "address/prefix", or a bare address for one host (/32,
 * /128).  Bits beyond the prefix are cleared, so "10.1.2.3/8" is
 * 10.0.0.0/8.  No blanks.  Returns 0 and fills *out, or -1 with a message
 * quoting s in why (out is then untouched).
 */
int cidr_parse(const char *s, struct cidr *out, char *why, size_t whylen);

/*
 * Parse a comma-separated list of blocks (blanks around items ignored; an
 * empty string is an empty list).  *out must hold a list or zeroes: on
 * success its old array is freed and replaced, on failure it is left as
 * it was.  Returns 0, or -1 with the first problem in why.
 */
int cidr_list_parse(const char *s, struct cidr_list *out, char *why,
    size_t whylen);

/* Free the array and zero the list. */
void cidr_list_clear(struct cidr_list *l);

/*
 * Is the address inside block c?  addr holds 4 bytes for AF_INET and 16
 * for AF_INET6, in network order; a mapped IPv6 address is taken as IPv4.
 * Any other family, or a block whose prefix is too long, never matches.
 */
int cidr_contains(const struct cidr *c, int family, const void *addr);

/* Is the address (as for cidr_contains) inside one of the blocks? */
int cidr_match_addr(const struct cidr_list *l, int family, const void *addr);

/*
 * Is the address of sa (AF_INET or AF_INET6; the port is ignored) inside
 * one of the blocks?  Other families and NULL never match.
 */
int cidr_match_sockaddr(const struct cidr_list *l, const struct sockaddr *sa);

#endif
