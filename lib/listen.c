/*
 * listen.c - bind the configured endpoints.  Runs at startup, before the
 * event loop, so the name lookups may block.
 */
#include "listen.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/util.h>

#include "config.h"
#include "log.h"
#include "util.h"

/*
 * As deep a queue of connections waiting for accept() as the kernel
 * allows (net.core.somaxconn; the kernel caps listen()'s backlog at it):
 * a burst of clients is greeted late rather than refused.
 */
static int
listen_backlog(void)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	int n = 0;

	if (f != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n >= 1024 ? n : 1024;
}

static int
listen_one(struct event_base *base, const struct config_endpoint *ep, evconnlistener_cb cb,
    void *arg, struct listeners *out, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char port[8];
	int rc, bound = 0;

	snprintf(port, sizeof(port), "%u", ep->port);
	rc = getaddrinfo(ep->host[0] ? ep->host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s:%u: %s", ep->host, ep->port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct evconnlistener *l;
		int fd, one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			if (ai->ai_family == AF_INET6 && (errno == EAFNOSUPPORT ||
			    errno == EPROTONOSUPPORT)) {
				log_warn("listen [%s]:%u: no IPv6 on this host; skipped",
				    ep->host, ep->port);
				bound = 1;
				continue;
			}
			snprintf(err, errlen, "listen %s:%u: %s", ep->host, ep->port,
			    strerror(errno));
			freeaddrinfo(res);
			return -1;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    listen(fd, listen_backlog()) != 0) {
			int e = errno;

			close(fd);
			if (ai->ai_family == AF_INET6 && e == EADDRNOTAVAIL) {
				log_warn("listen [%s]:%u: no IPv6 address here; skipped",
				    ep->host, ep->port);
				bound = 1;
				continue;
			}
			snprintf(err, errlen, "listen %s%s%s:%u: %s",
			    ai->ai_family == AF_INET6 ? "[" : "", ep->host,
			    ai->ai_family == AF_INET6 ? "]" : "", ep->port, strerror(e));
			freeaddrinfo(res);
			return -1;
		}
		l = evconnlistener_new(base, cb, arg, LEV_OPT_CLOSE_ON_FREE |
		    LEV_OPT_CLOSE_ON_EXEC, 0, fd);	/* 0: keep our listen() backlog */
		if (l == NULL)
			fatal("evconnlistener_new failed");
		out->v = xreallocarray(out->v, out->n + 1, sizeof(*out->v));
		out->v[out->n++] = l;
		bound = 1;
	}
	freeaddrinfo(res);
	if (!bound) {
		snprintf(err, errlen, "listen %s:%u: no usable address", ep->host, ep->port);
		return -1;
	}
	return 0;
}

int
listen_endpoints(struct event_base *base, const struct config_endpoints *eps,
    evconnlistener_cb cb, void *arg, struct listeners *out, char *err, size_t errlen)
{
	for (size_t i = 0; i < eps->n; i++)
		if (listen_one(base, &eps->v[i], cb, arg, out, err, errlen) != 0)
			return -1;
	return 0;
}

int
listen_peer(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	int loopback = 0;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	snprintf(buf, len, "[%s]:%u", host, port);
	return loopback;
}

void
listen_enable(struct listeners *l, int on)
{
	for (size_t i = 0; i < l->n; i++) {
		if (on)
			evconnlistener_enable(l->v[i]);
		else
			evconnlistener_disable(l->v[i]);
	}
}

void
listen_free(struct listeners *l)
{
	for (size_t i = 0; i < l->n; i++)
		evconnlistener_free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
