/*
 * iptable.h - per client state for the daemons: open connections and
 * recent authentication failures (which lengthen the next failure's
 * delay), for max_connections_per_ip and the login delays.
 *
 * A "client" is an IPv4 address, or an IPv6 /64.  One host on one IPv6
 * network (a /64, the smallest a site is given) can take any address in
 * it, so per address caps would not hold it back; per /64 they do.  IPv4
 * and IPv4-mapped IPv6 (::ffff:a.b.c.d, a dual-stack socket's IPv4 peer)
 * are the same client, keyed by the whole IPv4 address.  The price: the
 * hosts of one IPv6 LAN share the caps, as hosts behind one IPv4 NAT do.
 */
#ifndef UMBOX_IPTABLE_H
#define UMBOX_IPTABLE_H

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#define IPTABLE_BUCKETS	1024

struct ip_entry {
	/* IPv4 as ::ffff:a.b.c.d; IPv6 with its last 64 bits zero. */
	unsigned char key[16];
	unsigned conns;
	unsigned auth_failures;
	time_t last_failure;
	struct ip_entry *next;
};

/*
 * One table may serve several event loops: every call takes its lock,
 * and an entry stays put while a connection holds it.
 */
struct ip_table {
	pthread_mutex_t lock;
	struct ip_entry *b[IPTABLE_BUCKETS];
};

void ip_table_init(struct ip_table *t);

/* The entry for sa's client; created (with conns 0) if create is set. */
struct ip_entry *ip_table_get(struct ip_table *t, const struct sockaddr *sa, int create);
/*
 * A new connection from sa's client, unless it already has max: the
 * entry with its count raised, or NULL.  *conns says how many it had.
 */
struct ip_entry *ip_table_acquire(struct ip_table *t, const struct sockaddr *sa, unsigned max,
    unsigned *conns);
/* One connection fewer; the entry goes when nothing about it is left to remember. */
void ip_table_put(struct ip_table *t, struct ip_entry **e);
void ip_table_clear(struct ip_table *t);
/* Drop entries with no connections whose failures are old: call every few minutes. */
void ip_table_sweep(struct ip_table *t);

/*
 * A failed login from this client: returns how long to wait before
 * answering, in milliseconds: 2 s doubling with each failure in the last
 * 15 minutes, at most 30 s.  e may be NULL (2 s).
 */
unsigned ip_auth_failed(struct ip_table *t, struct ip_entry *e);

#endif
