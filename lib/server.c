/*
 * server.c - startup, accepting under caps, signals and shutdown, the
 * same for both daemons.
 */
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "conn.h"
#include "log.h"
#include "password.h"
#include "tls.h"
#include "worker.h"

#define SERVER_FD_RESERVE	32	/* store, listeners, workers, logs: when /proc cannot tell */
#define SERVER_FD_SPARE		8	/* beyond what is open at startup */
#define SERVER_ACCEPT_RETRY_MS	1000	/* after running out of descriptors */
#define SERVER_STOP_GRACE	30	/* seconds for in-flight work at SIGTERM */

/* Refuse a connection with one line, without a session. */
static void
server_refuse(evutil_socket_t fd, const char *line)
{
	ssize_t r = send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)r;
	close(fd);
}

/* A refusal is logged, but a flood of them only once a second. */
static void
server_log_refusal(struct server *srv, const char *why)
{
	time_t now = time(NULL);

	srv->refused++;
	if (now == srv->refused_logged)
		return;
	log_warn("connection refused: %s (%u refused since the last report)", why,
	    srv->refused);
	srv->refused = 0;
	srv->refused_logged = now;
}

static void
server_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int socklen, void *arg)
{
	struct server_port_ctx *pc = arg;
	struct server *srv = pc->srv;
	const struct server_def *def = srv->def;
	struct ip_entry *ip;
	char why[128];

	if (srv->stopping) {
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	if (srv->nconns >= srv->max_conns) {
		snprintf(why, sizeof(why), "%u sessions (max_connections %u, descriptors for %lu)",
		    srv->nconns, *def->max_conns, srv->max_conns);
		server_log_refusal(srv, why);
		server_refuse(fd, def->refuse_busy);
		return;
	}
	ip = ip_table_get(&srv->ips, sa, 1);
	if (ip->conns >= *def->max_conns_per_ip) {
		snprintf(why, sizeof(why), "%u sessions from one address or IPv6 /64"
		    " (max_connections_per_ip %u)", ip->conns, *def->max_conns_per_ip);
		server_log_refusal(srv, why);
		ip->conns++;	/* ip_table_put undoes it */
		ip_table_put(&srv->ips, &ip);
		server_refuse(fd, def->refuse_busy == def->refuse_ip ? def->refuse_busy :
		    def->refuse_ip);
		return;
	}
	ip->conns++;
	def->open(srv, pc->port, fd, sa, ip);
}

static void
server_accept_resume(struct server *srv)
{
	if (!srv->accept_paused || srv->stopping)
		return;
	srv->accept_paused = 0;
	evtimer_del(srv->accept_timer);
	for (unsigned i = 0; i < srv->def->nports; i++)
		listen_enable(&srv->listeners[i], 1);
}

static void
server_on_accept_timer(evutil_socket_t fd, short what, void *arg)
{
	server_accept_resume(arg);
}

/*
 * accept() failed with something other than "try again": out of file
 * descriptors or kernel memory.  Retrying at once would spin, so the
 * listeners pause until a session ends or a second has passed.
 */
static void
server_accept_error(struct evconnlistener *l, void *arg)
{
	struct server_port_ctx *pc = arg;
	struct server *srv = pc->srv;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { SERVER_ACCEPT_RETRY_MS / 1000, 0 };

	if (!srv->accept_paused)
		server_log_refusal(srv, strerror(err));
	srv->accept_paused = 1;
	for (unsigned i = 0; i < srv->def->nports; i++)
		listen_enable(&srv->listeners[i], 0);
	evtimer_add(srv->accept_timer, &tv);
}

void
server_conn_add(struct server *srv, struct conn *c)
{
	c->prev = NULL;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
}

void
server_conn_gone(struct server *srv, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	ip_table_put(&srv->ips, &c->ip);
	server_accept_resume(srv);
	if (srv->stopping && srv->nconns == 0)
		event_base_loopexit(srv->base, NULL);
}

/*
 * SIGTERM: stop accepting; each session either answers and closes or
 * finishes what it has in flight first.  The loop ends when the last
 * session is gone, or after a grace period.
 */
static void
server_stop(struct server *srv)
{
	struct timeval grace = { SERVER_STOP_GRACE, 0 };
	struct conn *c, *next;

	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_info("stopping: %u sessions open", srv->nconns);
	for (unsigned i = 0; i < srv->def->nports; i++)
		listen_free(&srv->listeners[i]);
	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (!c->closing && !c->freeing)
			c->ops->shutdown(c);
	}
	if (srv->nconns == 0)
		event_base_loopexit(srv->base, NULL);
	else
		event_base_loopexit(srv->base, &grace);
}

static void
server_on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	log_info("signal %d: stopping", (int)sig);
	server_stop(arg);
}

static void
server_on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	tls_sighup(&srv->tls, srv->cfg);
}

/* Forget addresses whose failed logins are long past. */
static void
server_on_sweep(evutil_socket_t fd, short what, void *arg)
{
	ip_table_sweep(arg);
}

/* Descriptors open now, or -1 if /proc cannot tell. */
static long
server_fds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = -1;	/* the directory's own descriptor */

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * How many sessions the descriptors allow: each may hold def->fds_per_conn
 * at once (its socket, a spool file, a store reader), beside what the
 * daemon holds already (listeners, the store, threads) and a few to spare.
 */
static unsigned long
server_fd_cap(const struct server_def *def)
{
	unsigned long limit = daemon_fd_limit(), per = def->fds_per_conn ? def->fds_per_conn : 1;
	long used = server_fds_open();
	unsigned long reserve = used < 0 ? SERVER_FD_RESERVE : (unsigned long)used + SERVER_FD_SPARE;

	if (limit <= reserve + per)
		return 1;
	return (limit - reserve) / per;
}

void
server_init(struct server *srv, const struct server_def *def, struct umbox_config *cfg,
    int argc, char **argv)
{
	char err[1024];
	int have_tls_port = 0;

	memset(srv, 0, sizeof(*srv));
	srv->def = def;
	srv->cfg = cfg;
	daemon_start(argc, argv, def->name, &srv->opts, cfg);
	evthread_use_pthreads();
	if ((srv->base = event_base_new()) == NULL)
		fatal("cannot create the event loop");

	/* As root: bind and load keys first, then drop to [general] user. */
	for (unsigned i = 0; i < def->nports; i++)
		if (def->ports[i].implicit_tls && def->ports[i].eps->n > 0)
			have_tls_port = 1;
	srv->tls = tls_server_ctx_new(cfg, err, sizeof(err));
	if (srv->tls == NULL) {
		if (have_tls_port) {
			log_err("%s (needed for implicit TLS)", err);
			exit(1);
		}
		log_warn("%s: STARTTLS/STLS is off until a certificate loads (SIGHUP)", err);
	}
	for (unsigned i = 0; i < def->nports; i++) {
		srv->pctx[i].srv = srv;
		srv->pctx[i].port = i;
		if (listen_endpoints(srv->base, def->ports[i].eps, server_accept, &srv->pctx[i],
		    &srv->listeners[i], err, sizeof(err)) != 0) {
			log_err("%s", err);
			exit(1);
		}
		for (size_t k = 0; k < srv->listeners[i].n; k++)
			evconnlistener_set_error_cb(srv->listeners[i].v[k], server_accept_error);
	}
	/* What cannot be set up is reported here, before detaching. */
	if (def->prepare && def->prepare(srv) != 0)
		exit(1);
	daemon_detach(&srv->opts, srv->base);
	daemon_drop_privileges(cfg);
	if (def->start && def->start(srv) != 0)
		exit(1);
	srv->workers = worker_pool_new(srv->base, 2);
	if (password_hash("umbox-unknown-user", srv->dummy_hash, sizeof(srv->dummy_hash)) != 0)
		fatal("yescrypt is unavailable");

	srv->sigterm = evsignal_new(srv->base, SIGTERM, server_on_sigterm, srv);
	srv->sigint = evsignal_new(srv->base, SIGINT, server_on_sigterm, srv);
	srv->sighup = evsignal_new(srv->base, SIGHUP, server_on_sighup, srv);
	event_add(srv->sigterm, NULL);
	event_add(srv->sigint, NULL);
	event_add(srv->sighup, NULL);
	srv->sweep = event_new(srv->base, -1, EV_PERSIST, server_on_sweep, &srv->ips);
	event_add(srv->sweep, &(struct timeval){ 300, 0 });
	srv->accept_timer = evtimer_new(srv->base, server_on_accept_timer, srv);

	/* Everything the daemon itself holds is open now. */
	srv->max_conns = server_fd_cap(def);
	if (srv->max_conns > *def->max_conns)
		srv->max_conns = *def->max_conns;
	else
		log_warn("descriptors (limit %lu) allow only %lu sessions of %u",
		    daemon_fd_limit(), srv->max_conns, *def->max_conns);
}

int
server_run(struct server *srv)
{
	log_info("%s %s started: %s", srv->def->name, UMBOX_VERSION, srv->cfg->general.hostname);
	event_base_dispatch(srv->base);

	/* In-flight commits finish (and are answered) before the writer stops. */
	if (srv->def->finish)
		srv->def->finish(srv);
	worker_pool_free(&srv->workers);
	for (unsigned i = 0; i < srv->def->nports; i++)
		listen_free(&srv->listeners[i]);
	event_free(srv->sigterm);
	event_free(srv->sigint);
	event_free(srv->sighup);
	event_free(srv->sweep);
	event_free(srv->accept_timer);
	ip_table_clear(&srv->ips);
	SSL_CTX_free(srv->tls);
	event_base_free(srv->base);
	config_free(srv->cfg);
	log_info("stopped");
	return 0;
}
