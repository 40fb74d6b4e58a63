/*
 * iptable.c - a small chained hash table keyed by client: an IPv4 address
 * or an IPv6 /64 (see iptable.h for why).
 */
#include "iptable.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define IP_FAILURE_MEMORY	900	/* seconds a failure counts against a client */

/*
 * The client that sa belongs to: IPv4 as IPv4-mapped IPv6, which an
 * IPv4-mapped peer already is; any other IPv6 address cut to its /64.
 * A /64 key never equals a mapped one: its last 8 bytes are zero, a mapped
 * key's never are.
 */
static void
ip_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		memcpy(key, a, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
	} else {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static unsigned
ip_hash(const unsigned char key[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % IPTABLE_BUCKETS;
}

void
ip_table_init(struct ip_table *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
}

static struct ip_entry *
ip_find(struct ip_table *t, const struct sockaddr *sa, int create)
{
	unsigned char key[16];
	struct ip_entry *e;
	unsigned h;

	ip_key(sa, key);
	h = ip_hash(key);
	for (e = t->b[h]; e; e = e->next)
		if (memcmp(e->key, key, 16) == 0)
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	memcpy(e->key, key, 16);
	e->next = t->b[h];
	t->b[h] = e;
	return e;
}

/* The entry goes when nothing about it is left to remember. */
static void
ip_forget(struct ip_table *t, struct ip_entry *e)
{
	struct ip_entry **pp;

	if (e->conns > 0 ||
	    (e->auth_failures > 0 && time(NULL) - e->last_failure < IP_FAILURE_MEMORY))
		return;
	for (pp = &t->b[ip_hash(e->key)]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
}

struct ip_entry *
ip_table_get(struct ip_table *t, const struct sockaddr *sa, int create)
{
	struct ip_entry *e;

	pthread_mutex_lock(&t->lock);
	e = ip_find(t, sa, create);
	pthread_mutex_unlock(&t->lock);
	return e;
}

struct ip_entry *
ip_table_acquire(struct ip_table *t, const struct sockaddr *sa, unsigned max, unsigned *conns)
{
	struct ip_entry *e;

	pthread_mutex_lock(&t->lock);
	e = ip_find(t, sa, 1);
	*conns = e->conns;
	if (e->conns >= max) {
		ip_forget(t, e);
		e = NULL;
	} else
		e->conns++;
	pthread_mutex_unlock(&t->lock);
	return e;
}

void
ip_table_put(struct ip_table *t, struct ip_entry **ep)
{
	struct ip_entry *e = *ep;

	*ep = NULL;
	if (e == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	if (e->conns > 0)
		e->conns--;
	ip_forget(t, e);
	pthread_mutex_unlock(&t->lock);
}

void
ip_table_clear(struct ip_table *t)
{
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < IPTABLE_BUCKETS; i++)
		while (t->b[i]) {
			struct ip_entry *e = t->b[i];
			t->b[i] = e->next;
			free(e);
		}
	pthread_mutex_unlock(&t->lock);
}

void
ip_table_sweep(struct ip_table *t)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < IPTABLE_BUCKETS; i++) {
		struct ip_entry **pp = &t->b[i];

		while (*pp) {
			struct ip_entry *e = *pp;

			if (e->conns == 0 && now - e->last_failure >= IP_FAILURE_MEMORY) {
				*pp = e->next;
				free(e);
			} else
				pp = &e->next;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned
ip_auth_failed(struct ip_table *t, struct ip_entry *e)
{
	unsigned delay = 2000;

	if (e == NULL)
		return delay;
	pthread_mutex_lock(&t->lock);
	if (time(NULL) - e->last_failure > IP_FAILURE_MEMORY)
		e->auth_failures = 0;
	for (unsigned i = 0; i < e->auth_failures && delay < 30000; i++)
		delay *= 2;
	if (delay > 30000)
		delay = 30000;
	e->auth_failures++;
	e->last_failure = time(NULL);
	pthread_mutex_unlock(&t->lock);
	return delay;
}
