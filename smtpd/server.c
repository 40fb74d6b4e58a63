/*
 * server.c - accepting connections, limits in total and per client
 * address, and shutdown.
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
	struct ip_entry *ip;

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
	ip = ip_table_get(&srv->ips, sa, 1);
	if (ip->conns >= cfg->smtpd.max_connections_per_ip) {
		log_warn("connection refused: %u sessions from one address"
		    " (max_connections_per_ip %u)", ip->conns, cfg->smtpd.max_connections_per_ip);
		ip->conns++;	/* ip_table_put undoes it */
		ip_table_put(&srv->ips, &ip);
		smtp_refuse(fd, "421 4.7.0 Too many connections from your address\r\n");
		return;
	}
	ip->conns++;
	s = smtp_session_new(srv, fd, sa, lc->kind, ip);
	if (s == NULL) {
		ip_table_put(&srv->ips, &ip);
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
	ip_table_put(&srv->ips, &s->ip);
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
