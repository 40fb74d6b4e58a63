/*
 * iptable.h - per client address state for the daemons: open connections
 * and recent authentication failures (which lengthen the next failure's
 * delay).  IPv4 addresses are kept as IPv4-mapped IPv6.
 */
#ifndef UMBOX_IPTABLE_H
#define UMBOX_IPTABLE_H

#include <sys/socket.h>
#include <time.h>

#define IPTABLE_BUCKETS	1024

struct ip_entry {
	unsigned char addr[16];
	unsigned conns;
	unsigned auth_failures;
	time_t last_failure;
	struct ip_entry *next;
};

struct ip_table {
	struct ip_entry *b[IPTABLE_BUCKETS];
};

/* The entry for sa's address; created (with conns 0) if create is set. */
struct ip_entry *ip_table_get(struct ip_table *t, const struct sockaddr *sa, int create);
/* One connection fewer; the entry goes when nothing about it is left to remember. */
void ip_table_put(struct ip_table *t, struct ip_entry **e);
void ip_table_clear(struct ip_table *t);
/* Drop entries with no connections whose failures are old: call every few minutes. */
void ip_table_sweep(struct ip_table *t);

/*
 * A failed login from this address: returns how long to wait before
 * answering, 2 s doubling with each failure in the last 15 minutes, at
 * most 30 s.  e may be NULL (2 s).
 */
unsigned ip_auth_failed(struct ip_entry *e);

#endif
