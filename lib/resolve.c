/*
 * resolve.c - c-ares for code written to wait.  resolve_host() drives
 * one channel with coro_poll() until the answer or the caller's deadline,
 * whichever comes first: on a worker's thread that is poll(), in a
 * coroutine a wait on its loop.
 */
#include "lib/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/coro.h"
#include "lib/endpoint.h"
#include "lib/util.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_status;

static void
library_init(void)
{
	init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

int
resolve_init(char *err, size_t errlen)
{
	pthread_once(&once, library_init);
	if (init_status == ARES_SUCCESS)
		return 0;
	snprintf(err, errlen, "c-ares: %s", ares_strerror(init_status));
	return -1;
}

int
resolve_servers(ares_channel ch, const struct config_endpoints *servers, char *err,
    size_t errlen)
{
	struct ares_addr_port_node *v;
	int rc;

	if (servers == NULL || servers->n == 0)
		return 0;
	v = xcalloc(servers->n, sizeof(*v));
	for (size_t i = 0; i < servers->n; i++) {
		const struct config_endpoint *ep = &servers->v[i];

		if (inet_pton(AF_INET, ep->host, &v[i].addr.addr4) == 1)
			v[i].family = AF_INET;
		else if (inet_pton(AF_INET6, ep->host, &v[i].addr.addr6) == 1)
			v[i].family = AF_INET6;
		else {
			snprintf(err, errlen, "dns server \"%s\" is not an IP address", ep->host);
			free(v);
			return -1;
		}
		v[i].udp_port = v[i].tcp_port = ep->port ? ep->port : 53;
		v[i].next = i + 1 < servers->n ? &v[i + 1] : NULL;
	}
	rc = ares_set_servers_ports(ch, v);
	free(v);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "dns servers: %s", ares_strerror(rc));
		return -1;
	}
	return 0;
}

struct lookup {
	int done;
	int status;
	char **v;
	int n;
};

/* Every address of the answer, whatever the status says of the other family. */
static void
lookup_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct lookup *lk = arg;

	(void)timeouts;
	lk->done = 1;
	lk->status = status;
	if (ai == NULL)
		return;
	for (struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next) {
		char text[INET6_ADDRSTRLEN];
		const void *a;

		if (n->ai_family == AF_INET)
			a = &((const struct sockaddr_in *)(const void *)n->ai_addr)->sin_addr;
		else if (n->ai_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)(const void *)n->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(n->ai_family, a, text, sizeof(text)) == NULL)
			continue;
		lk->v = xreallocarray(lk->v, (size_t)lk->n + 1, sizeof(*lk->v));
		lk->v[lk->n++] = xstrdup(text);
	}
	ares_freeaddrinfo(ai);
}

/* Run ch until lk is answered or deadline (ms) passes: then cancel it. */
static void
lookup_wait(ares_channel ch, struct lookup *lk, int64_t deadline)
{
	while (!lk->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval max, tv, *tvp;
		int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM), n = 0, rc;
		int64_t left = deadline - monotonic_ms();

		if (left <= 0) {
			ares_cancel(ch);	/* answers lk with ARES_ECANCELLED */
			break;
		}
		/* c-ares's own ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit. */
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = (short)(((unsigned)bits >> i & 1u ? POLLIN : 0) |
			    ((unsigned)bits >> (i + ARES_GETSOCK_MAXNUM) & 1u ? POLLOUT : 0));

			if (ev)
				pfd[n++] = (struct pollfd){ .fd = socks[i], .events = ev };
		}
		max.tv_sec = left / 1000;
		max.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(ch, &max, &tv);
		rc = coro_poll(pfd, (nfds_t)n, (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000));
		if (rc < 0 && errno != EINTR)
			break;
		if (rc <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);	/* timeouts */
			continue;
		}
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				ares_process_fd(ch,
				    pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd :
				    ARES_SOCKET_BAD,
				    pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
	}
}

int
resolve_host(const struct config_endpoints *servers, const char *name,
    unsigned timeout_ms, char ***out, char *err, size_t errlen)
{
	struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC };
	struct ares_options ao = { .timeout = 1000, .tries = 3 };
	struct lookup lk = { 0 };
	ares_channel ch;
	int rc;

	*out = NULL;
	if (resolve_init(err, errlen) != 0)
		return -1;
	/* Names are looked up as they are: no search domains. */
	rc = ares_init_options(&ch, &ao, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	if (resolve_servers(ch, servers, err, errlen) != 0) {
		ares_destroy(ch);
		return -1;
	}
	ares_getaddrinfo(ch, name, NULL, &hints, lookup_done, &lk);
	lookup_wait(ch, &lk, monotonic_ms() + timeout_ms);
	ares_destroy(ch);
	if (lk.n > 0) {
		*out = lk.v;
		return lk.n;
	}
	if (!lk.done || lk.status == ARES_ECANCELLED)
		snprintf(err, errlen, "looking up %s: no answer within %u ms", name, timeout_ms);
	else
		snprintf(err, errlen, "looking up %s: %s", name,
		    lk.status == ARES_SUCCESS ? "no address" : ares_strerror(lk.status));
	return -1;
}

void
resolve_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
