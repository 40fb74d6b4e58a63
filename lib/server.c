/*
 * server.c - startup, accepting under caps, signals and shutdown, the
 * same for both daemons.
 */
#include "server.h"

#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "completion.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "password.h"
#include "spawn.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define SERVER_FD_RESERVE	32	/* store, listeners, workers, logs: when /proc cannot tell */
#define SERVER_FD_SPARE		8	/* beyond what is open at startup */
#define SERVER_FD_PER_LOOP	9	/* a loop's epoll, eventfds, store connection, workers */
#define SERVER_ACCEPT_RETRY_MS	1000	/* after running out of descriptors */
#define SERVER_STOP_GRACE	30	/* seconds for in-flight work at SIGTERM */

/*
 * Refuse a connection with one line, without a session.  On an
 * implicit-TLS port nothing may come before the handshake (RFC 8314 §3):
 * a line in clear would reach the client as a TLS error, "wrong version
 * number", rather than as a busy server.  It is only closed.
 */
static void
server_refuse(evutil_socket_t fd, const struct server_port *port, const char *line)
{
	if (!port->implicit_tls) {
		ssize_t r = send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);

		(void)r;
	}
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

/* A socket on its way from the acceptor to the loop that will serve it. */
struct server_handoff {
	struct completion_item item;
	struct server_loop *loop;
	unsigned port;
	evutil_socket_t fd;
	struct sockaddr_storage sa;
	struct ip_entry *ip;
};

static void
server_open_on(struct server_loop *loop, unsigned port, evutil_socket_t fd,
    const struct sockaddr *sa, struct ip_entry *ip)
{
	if (loop->stopping) {
		server_conn_drop(loop, fd, &ip);
		return;
	}
	loop->srv->def->open(loop, port, fd, sa, ip);
}

static void
server_on_handoff(struct completion_item *item)
{
	struct server_handoff *h = COMPLETION_OWNER(item, struct server_handoff, item);

	server_open_on(h->loop, h->port, h->fd, (const struct sockaddr *)&h->sa, h->ip);
	free(h);
}

/*
 * The loop with the fewest sessions given to it, round-robin among equals,
 * so a burst spreads evenly and a loop whose sessions ended takes more.
 */
static struct server_loop *
server_pick_loop(struct server *srv)
{
	struct server_loop *best = NULL;
	unsigned best_load = 0;

	for (unsigned k = 0; k < srv->nloops; k++) {
		struct server_loop *l = &srv->loops[(srv->next_loop + k) % srv->nloops];
		unsigned load = __atomic_load_n(&l->load, __ATOMIC_RELAXED);

		if (best == NULL || load < best_load) {
			best = l;
			best_load = load;
		}
	}
	srv->next_loop = (best->index + 1) % srv->nloops;
	return best;
}

/*
 * On loop 0: the caps are checked here, on one thread, so they are exact
 * however the sessions are spread; the socket then goes to a loop.
 */
static void
server_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int socklen, void *arg)
{
	struct server_port_ctx *pc = arg;
	struct server *srv = pc->srv;
	const struct server_def *def = srv->def;
	struct server_loop *loop;
	struct server_handoff *h;
	struct ip_entry *ip;
	unsigned nconns = __atomic_load_n(&srv->nconns, __ATOMIC_RELAXED), ipconns;
	char why[128];

	if (srv->stopping) {
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	if (nconns + srv->others_reserve[pc->port] >= srv->max_conns) {
		if (srv->others_reserve[pc->port])
			snprintf(why, sizeof(why), "%u sessions (max_connections %u, descriptors"
			    " for %lu, %lu of them kept for other ports)", nconns, *def->max_conns,
			    srv->max_conns, srv->others_reserve[pc->port]);
		else
			snprintf(why, sizeof(why), "%u sessions (max_connections %u, descriptors"
			    " for %lu)", nconns, *def->max_conns, srv->max_conns);
		server_log_refusal(srv, why);
		server_refuse(fd, &def->ports[pc->port], def->refuse_busy);
		return;
	}
	if ((ip = ip_table_acquire(&srv->ips, sa, *def->max_conns_per_ip, &ipconns)) == NULL) {
		snprintf(why, sizeof(why), "%u sessions from one address or IPv6 /64"
		    " (max_connections_per_ip %u)", ipconns, *def->max_conns_per_ip);
		server_log_refusal(srv, why);
		server_refuse(fd, &def->ports[pc->port], def->refuse_ip);
		return;
	}
	__atomic_add_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
	loop = server_pick_loop(srv);
	__atomic_add_fetch(&loop->load, 1, __ATOMIC_RELAXED);
	if (loop->index == 0) {
		server_open_on(loop, pc->port, fd, sa, ip);
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->item.fn = server_on_handoff;
	h->loop = loop;
	h->port = pc->port;
	h->fd = fd;
	memcpy(&h->sa, sa, (size_t)socklen < sizeof(h->sa) ? (size_t)socklen : sizeof(h->sa));
	h->ip = ip;
	completion_post(loop->inbox, &h->item);
}

static void
server_accept_resume(struct server *srv)
{
	if (!__atomic_load_n(&srv->accept_paused, __ATOMIC_RELAXED) || srv->stopping)
		return;
	__atomic_store_n(&srv->accept_paused, 0, __ATOMIC_RELAXED);
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

	if (!__atomic_load_n(&srv->accept_paused, __ATOMIC_RELAXED))
		server_log_refusal(srv, strerror(err));
	__atomic_store_n(&srv->accept_paused, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < srv->def->nports; i++)
		listen_enable(&srv->listeners[i], 0);
	evtimer_add(srv->accept_timer, &tv);
}

void
server_conn_add(struct server_loop *loop, struct conn *c)
{
	c->prev = NULL;
	c->next = loop->conns;
	if (loop->conns)
		loop->conns->prev = c;
	loop->conns = c;
	loop->nconns++;
}

/* Whatever loop a session ended on: its counts go, and loop 0 may accept again. */
static void
server_conn_uncount(struct server_loop *loop, struct ip_entry **ip)
{
	struct server *srv = loop->srv;

	ip_table_put(&srv->ips, ip);
	__atomic_sub_fetch(&loop->load, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&srv->accept_paused, __ATOMIC_RELAXED)) {
		if (loop->index == 0)
			server_accept_resume(srv);
		else
			event_active(srv->accept_resume, 0, 0);
	}
	if (loop->stopping && loop->nconns == 0)
		event_base_loopexit(loop->base, NULL);
}

void
server_conn_gone(struct server_loop *loop, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		loop->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	loop->nconns--;
	server_conn_uncount(loop, &c->ip);
}

void
server_conn_ip_release(struct server_loop *loop, struct conn *c)
{
	ip_table_put(&loop->srv->ips, &c->ip);
}

void
server_conn_drop(struct server_loop *loop, evutil_socket_t fd, struct ip_entry **ip)
{
	close(fd);
	server_conn_uncount(loop, ip);
}

SSL_CTX *
server_tls(struct server *srv)
{
	SSL_CTX *ctx;

	pthread_mutex_lock(&srv->tls_lock);
	if ((ctx = srv->tls) != NULL)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&srv->tls_lock);
	return ctx;
}

int
server_has_tls(struct server *srv)
{
	SSL_CTX *ctx = server_tls(srv);

	SSL_CTX_free(ctx);
	return ctx != NULL;
}

/*
 * SIGTERM, on each loop: each session either answers and closes or
 * finishes what it has in flight first.  The loop ends when its last
 * session is gone, or after a grace period.
 */
static void
server_loop_stop(evutil_socket_t fd, short what, void *arg)
{
	struct server_loop *loop = arg;
	struct timeval grace = { SERVER_STOP_GRACE, 0 };
	struct conn *c, *next;

	if (loop->stopping)
		return;
	loop->stopping = 1;
	for (c = loop->conns; c; c = next) {
		next = c->next;
		if (!c->closing && !c->freeing)
			c->ops->shutdown(c);
	}
	if (loop->nconns == 0)
		event_base_loopexit(loop->base, NULL);
	else
		event_base_loopexit(loop->base, &grace);
}

/* SIGTERM: stop accepting, then every loop stops on its own thread. */
static void
server_stop(struct server *srv)
{
	unsigned open = __atomic_load_n(&srv->nconns, __ATOMIC_RELAXED);

	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_info("stopping: %u sessions open", open);
	for (unsigned i = 0; i < srv->def->nports; i++)
		listen_free(&srv->listeners[i]);
	for (unsigned i = 0; i < srv->nloops; i++)
		event_active(srv->loops[i].stop_ev, 0, 0);
}

static void
server_on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	log_info("signal %d: stopping", (int)sig);
	server_stop(arg);
}

/*
 * SIGHUP: the [tls] section is read again from the configuration file, so
 * a certificate moved to a new path is found; nothing else of the file
 * is taken.  A file with errors keeps the certificate in use; a file the
 * daemon can no longer read (it dropped privileges) leaves the paths it
 * read at start, whose files are loaded again.  A new context is made
 * outside the lock; sessions keep the one they hold.
 */
static void
server_on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	SSL_CTX *ctx = server_tls(srv), *old;
	struct umbox_config fresh;
	const struct umbox_config *use = srv->cfg;
	char err[1024];

	memset(&fresh, 0, sizeof(fresh));
	if (srv->cfg->path != NULL) {
		if (config_load(&fresh, srv->cfg->path, 0, err, sizeof(err)) == 0)
			use = &fresh;
		else if (fresh.path != NULL) {
			err[strcspn(err, "\n")] = '\0';
			log_warn("SIGHUP: keeping the old TLS certificate: the configuration"
			    " has errors: %s", err);
			config_free(&fresh);
			SSL_CTX_free(ctx);
			return;
		} else
			log_warn("SIGHUP: %s; loading the certificate and key named at start",
			    err);
	}
	tls_sighup(&ctx, use);
	config_free(&fresh);
	pthread_mutex_lock(&srv->tls_lock);
	old = srv->tls;
	srv->tls = ctx;
	pthread_mutex_unlock(&srv->tls_lock);
	SSL_CTX_free(old);
}

static void
server_on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	server_accept_resume(arg);
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
 * How many sessions the descriptors allow: each costs def->fd_cost
 * hundredths of one (its socket and a share of the transient ones),
 * beside what the daemon holds already (listeners, the store, the loops)
 * and a few to spare.
 */
static unsigned long
server_fd_cap(const struct server_def *def)
{
	unsigned long limit = daemon_fd_limit(), cost = def->fd_cost ? def->fd_cost : 100;
	long used = server_fds_open();
	unsigned long reserve = used < 0 ? SERVER_FD_RESERVE : (unsigned long)used + SERVER_FD_SPARE;

	if (limit <= reserve + 1)
		return 1;
	return (unsigned long)((unsigned long long)(limit - reserve) * 100 / cost);
}

unsigned
server_threads(unsigned configured)
{
	cpu_set_t set;
	long n;

	if (configured > 0)
		return configured;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* Where the daemon listens, in one line; none at all is worth a warning. */
static void
server_log_listeners(struct server *srv)
{
	char line[1024] = "", peer[80];
	size_t used = 0, n = 0;

	for (unsigned i = 0; i < srv->def->nports; i++)
		for (size_t k = 0; k < srv->listeners[i].n; k++) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);
			evutil_socket_t fd = evconnlistener_get_fd(srv->listeners[i].v[k]);

			if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
				continue;
			listen_peer((struct sockaddr *)&ss, peer, sizeof(peer));
			if (used < sizeof(line))
				used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s %s",
				    n ? ", " : "", srv->def->ports[i].name, peer);
			n++;
		}
	if (n == 0)
		log_warn("no listener: every listener key is empty (or was skipped); nothing"
		    " can connect");
	else
		log_info("listening: %s", line);
}

/* After the switch of user: a [tls] file that SIGHUP could not read again. */
static void
server_warn_unreadable(const char *path, const char *what, const char *user)
{
	if (access(path, R_OK) == 0 || errno == ENOENT)
		return;
	log_warn("[tls] %s %s is not readable by user %s (%s): SIGHUP cannot load a renewed"
	    " one; make it readable by that user (for example group ssl-cert, mode 0640)",
	    what, path, user, strerror(errno));
}

/*
 * Room for the loops [general] threads asks for within the descriptor
 * limit (its hard value: daemon_drop_privileges raises the soft one to
 * it): too many loops for the limit is a start-up error that says what
 * to change, not a failure halfway through.
 */
static void
server_check_fd_room(struct server *srv)
{
	unsigned n = server_threads(srv->cfg->general.threads);
	struct rlimit rl;
	unsigned long limit;
	long used = server_fds_open();
	unsigned long need = (used < 0 ? SERVER_FD_RESERVE : (unsigned long)used) +
	    (unsigned long)n * SERVER_FD_PER_LOOP;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY)
		return;
	limit = (unsigned long)rl.rlim_max;
	if (limit >= need)
		return;
	log_err("%u event loops ([general] threads = %s) need about %lu descriptors and the"
	    " limit is %lu: lower threads or raise the limit (ulimit -n, LimitNOFILE=)", n,
	    srv->cfg->general.threads ? "as many" : "auto, one per core", need, limit);
	exit(1);
}

/*
 * The loops: loop 0 is the one the listeners were bound on (it runs on
 * the main thread); each gets an inbox for the acceptor's sockets, an
 * event SIGTERM makes active, and its own password workers.
 */
static void
server_loops_new(struct server *srv)
{
	unsigned n = server_threads(srv->cfg->general.threads);

	srv->nloops = n;
	srv->loops = xcalloc(n, sizeof(*srv->loops));
	for (unsigned i = 0; i < n; i++) {
		struct server_loop *l = &srv->loops[i];

		l->srv = srv;
		l->index = i;
		l->base = i == 0 ? srv->base : event_base_new();
		if (l->base == NULL || (l->inbox = completion_queue_new(l->base)) == NULL) {
			log_err("cannot create event loop %u of %u: %s; lower [general] threads"
			    " or raise the descriptor limit (%lu)", i + 1, n, strerror(errno),
			    daemon_fd_limit());
			exit(1);
		}
		l->stop_ev = event_new(l->base, -1, 0, server_loop_stop, l);
		l->deferq = conn_deferq_new(l->base);
		l->workers = worker_pool_new(l->base, n > 1 ? 1 : 2);
	}
}

static void
server_loops_free(struct server *srv)
{
	for (unsigned i = 0; i < srv->nloops; i++) {
		struct server_loop *l = &srv->loops[i];

		worker_pool_free(&l->workers);
		completion_queue_free(&l->inbox);	/* sockets still on their way are closed */
		event_free(l->stop_ev);
		conn_deferq_free(&l->deferq);
		spawn_forget(l->base);
		if (i > 0)
			event_base_free(l->base);
	}
	free(srv->loops);
	srv->loops = NULL;
}

void
server_init(struct server *srv, const struct server_def *def, struct umbox_config *cfg,
    int argc, char **argv)
{
	char err[1024];
	int have_tls_port = 0, was_root;

	memset(srv, 0, sizeof(*srv));
	srv->def = def;
	srv->cfg = cfg;
	pthread_mutex_init(&srv->tls_lock, NULL);
	ip_table_init(&srv->ips);
	daemon_start(argc, argv, def->name, &srv->opts, cfg);
	evthread_use_pthreads();
	if ((srv->base = event_base_new()) == NULL)
		fatal("cannot create the event loop");

	/* As root: bind and load keys first, then drop to [general] user. */
	for (unsigned i = 0; i < def->nports; i++)
		if (def->ports[i].implicit_tls && def->ports[i].eps->n > 0)
			have_tls_port = 1;
	srv->tls = tls_server_ctx_new(cfg, err, sizeof(err));
	if (srv->opts.check_only)
		daemon_check_done(cfg, srv->tls ? NULL : err, have_tls_port);
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
	server_check_fd_room(srv);
	daemon_detach(&srv->opts, srv->base);
	server_log_listeners(srv);
	was_root = geteuid() == 0;
	daemon_drop_privileges(cfg);
	if (was_root && geteuid() != 0) {
		server_warn_unreadable(cfg->tls.certificate, "certificate", cfg->general.user);
		server_warn_unreadable(cfg->tls.key, "key", cfg->general.user);
	}
	server_loops_new(srv);
	if (def->start && def->start(srv) != 0)
		exit(1);
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
	srv->accept_resume = event_new(srv->base, -1, 0, server_on_accept_resume, srv);

	/* Everything the daemon itself holds is open now. */
	srv->max_conns = server_fd_cap(def);
	if (srv->max_conns > *def->max_conns)
		srv->max_conns = *def->max_conns;
	else
		log_warn("descriptors (limit %lu) allow only %lu sessions of %u",
		    daemon_fd_limit(), srv->max_conns, *def->max_conns);
	for (unsigned i = 0; i < def->nports; i++)
		for (unsigned k = 0; k < def->nports; k++)
			if (k != i && def->ports[k].eps && def->ports[k].eps->n > 0)
				srv->others_reserve[i] += srv->max_conns * def->ports[k].reserve_pct / 100;
}

static void *
server_loop_main(void *arg)
{
	struct server_loop *l = arg;

	event_base_dispatch(l->base);
	return NULL;
}

int
server_run(struct server *srv)
{
	sigset_t block, old;

	log_info("%s %s started: %s, %u event loop%s", srv->def->name, UMBOX_VERSION,
	    srv->cfg->general.hostname, srv->nloops, srv->nloops == 1 ? "" : "s");
	/* Signals are for loop 0, on this thread. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (unsigned i = 1; i < srv->nloops; i++) {
		char name[16];

		if (pthread_create(&srv->loops[i].thread, NULL, server_loop_main,
		    &srv->loops[i]) != 0)
			fatal("cannot start event loop %u", i);
		/* As top -H and ps -L show it; loop 0 is the main thread. */
		snprintf(name, sizeof(name), "loop %u", i);
		pthread_setname_np(srv->loops[i].thread, name);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	event_base_dispatch(srv->base);
	for (unsigned i = 1; i < srv->nloops; i++)
		pthread_join(srv->loops[i].thread, NULL);

	/* In-flight commits finish (and are answered) before the writer stops. */
	if (srv->def->finish)
		srv->def->finish(srv);
	server_loops_free(srv);
	for (unsigned i = 0; i < srv->def->nports; i++)
		listen_free(&srv->listeners[i]);
	event_free(srv->sigterm);
	event_free(srv->sigint);
	event_free(srv->sighup);
	event_free(srv->sweep);
	event_free(srv->accept_timer);
	event_free(srv->accept_resume);
	ip_table_clear(&srv->ips);
	SSL_CTX_free(srv->tls);
	event_base_free(srv->base);
	config_free(srv->cfg);
	log_info("stopped");
	return 0;
}
