/*
 * server.c - accepting connections: limits in total and per client
 * address, the per-address table, and shutdown.
 */
#include "smtpd/smtpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

/* IPv4 addresses are kept as IPv4-mapped IPv6, so one table serves both. */
static void
smtp_ip_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static unsigned
smtp_ip_hash(const unsigned char key[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % SMTP_IP_BUCKETS;
}

struct smtp_ip *
smtp_ip_get(struct smtp_server *srv, const struct sockaddr *sa, int create)
{
	unsigned char key[16];
	struct smtp_ip *ip;
	unsigned h;

	smtp_ip_key(sa, key);
	h = smtp_ip_hash(key);
	for (ip = srv->ips[h]; ip; ip = ip->next)
		if (memcmp(ip->addr, key, 16) == 0)
			return ip;
	if (!create)
		return NULL;
	ip = xcalloc(1, sizeof(*ip));
	memcpy(ip->addr, key, 16);
	ip->next = srv->ips[h];
	srv->ips[h] = ip;
	return ip;
}

/*
 * Drop a session's hold on its address entry.  The entry stays while it
 * has connections or remembers recent authentication failures (they make
 * the next failure's delay longer).
 */
void
smtp_ip_put(struct smtp_server *srv, struct smtp_ip **ipp)
{
	struct smtp_ip *ip = *ipp, **pp;

	*ipp = NULL;
	if (ip == NULL)
		return;
	if (ip->conns > 0)
		ip->conns--;
	if (ip->conns > 0 || (ip->auth_failures > 0 && time(NULL) - ip->last_failure < 900))
		return;
	for (pp = &srv->ips[smtp_ip_hash(ip->addr)]; *pp; pp = &(*pp)->next)
		if (*pp == ip) {
			*pp = ip->next;
			free(ip);
			return;
		}
}

/* Refuse a connection with one line, without a session. */
static void
smtp_refuse(evutil_socket_t fd, const char *line)
{
	ssize_t r = send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)r;
	close(fd);
}

void
smtp_server_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int socklen, void *arg)
{
	struct smtp_listener_ctx *lc = arg;
	struct smtp_server *srv = lc->server;
	const struct umbox_config *cfg = srv->cfg;
	struct smtp_session *s;
	struct smtp_ip *ip;

	if (srv->stopping) {
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	if (srv->nsessions >= cfg->smtpd.max_connections || srv->nsessions >= srv->max_sessions) {
		log_warn("connection refused: %u sessions (max_connections %u)", srv->nsessions,
		    cfg->smtpd.max_connections);
		smtp_refuse(fd, "421 4.7.0 Too many connections, try again later\r\n");
		return;
	}
	ip = smtp_ip_get(srv, sa, 1);
	if (ip->conns >= cfg->smtpd.max_connections_per_ip) {
		log_warn("connection refused: %u sessions from one address"
		    " (max_connections_per_ip %u)", ip->conns, cfg->smtpd.max_connections_per_ip);
		ip->conns++;	/* smtp_ip_put undoes it */
		smtp_ip_put(srv, &ip);
		smtp_refuse(fd, "421 4.7.0 Too many connections from your address\r\n");
		return;
	}
	ip->conns++;
	s = smtp_session_new(srv, fd, sa, lc->kind, ip);
	if (s == NULL) {
		smtp_ip_put(srv, &ip);
		return;
	}
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
}

void
smtp_server_session_gone(struct smtp_server *srv, struct smtp_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	smtp_ip_put(srv, &s->ip);
	if (srv->stopping && srv->nsessions == 0)
		event_base_loopexit(srv->base, NULL);
}

/*
 * SIGTERM: stop accepting; sessions waiting for a commit get their answer
 * first; everyone else is told 421 and closed.  The loop ends when the
 * last session is gone (or after a grace period).
 */
void
smtp_server_stop(struct smtp_server *srv)
{
	struct smtp_session *s, *next;
	struct timeval grace = { 30, 0 };

	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_info("stopping: %u sessions open", srv->nsessions);
	for (int i = 0; i < 3; i++)
		listen_free(&srv->listeners[i]);
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		if (s->commit == NULL) {
			smtp_reply(s, "421 4.3.2 %s Service shutting down",
			    srv->cfg->general.hostname);
			smtp_close(s);
		}
	}
	if (srv->nsessions == 0)
		event_base_loopexit(srv->base, NULL);
	else
		event_base_loopexit(srv->base, &grace);
}
