/*
 * listen.h - listening sockets for the daemons' endpoints.
 */
#ifndef UMBOX_LISTEN_H
#define UMBOX_LISTEN_H

#include <stddef.h>

#include <event2/listener.h>

struct config_endpoints;

struct listeners {
	struct evconnlistener **v;
	size_t n;
};

/*
 * Bind every endpoint (IPv6 ones with IPV6_V6ONLY, so 0.0.0.0:25 and
 * [::]:25 can both be listed) and add a listener calling cb with arg.
 * An IPv6 endpoint on a host without IPv6 is skipped with a warning.
 * Returns 0, or -1 with a message naming the endpoint.
 */
int listen_endpoints(struct event_base *base, const struct config_endpoints *eps,
    evconnlistener_cb cb, void *arg, struct listeners *out, char *err, size_t errlen);

void listen_enable(struct listeners *l, int on);

/*
 * A peer address as "[1.2.3.4]:5678" (or "[::1]:5678") into buf, and
 * whether it is loopback (127/8, ::1, or IPv4-mapped 127/8).
 */
struct sockaddr;
int listen_peer(const struct sockaddr *sa, char *buf, size_t len);
void listen_free(struct listeners *l);

#endif
