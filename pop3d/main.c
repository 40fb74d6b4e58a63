/*
 * umbox-pop3d - POP3 on 110 (STLS) and 995 (implicit TLS) over the
 * unified inbox.  One process, one libevent loop; store writes go to the
 * writer thread, password checks to worker threads.
 *
 *   umbox-pop3d [-c FILE] [-f] [-n]
 */
#include "pop3d/pop3d.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/password.h"
#include "lib/tls.h"

static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	log_info("signal %d: stopping", (int)sig);
	pop3_server_stop(arg);
}

/* Forget addresses whose failed logins are long past. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	ip_table_sweep(arg);
}

static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct pop3_server *srv = arg;

	tls_sighup(&srv->tls, srv->cfg);
}

int
main(int argc, char **argv)
{
	static struct umbox_config cfg;
	struct pop3_server srv = { .cfg = &cfg };
	struct daemon_opts opts;
	const struct config_endpoints *eps[2];
	char err[1024], *path;

	daemon_start(argc, argv, "umbox-pop3d", &opts, &cfg);
	evthread_use_pthreads();
	if ((srv.base = event_base_new()) == NULL)
		fatal("cannot create the event loop");

	srv.tls = tls_server_ctx_new(&cfg, err, sizeof(err));
	if (srv.tls == NULL) {
		if (cfg.pop3d.pop3s.n > 0) {
			log_err("%s (needed for pop3s)", err);
			return 1;
		}
		log_warn("%s: STLS is off until a certificate loads (SIGHUP)", err);
	}
	eps[POP3_PORT_PLAIN] = &cfg.pop3d.listen;
	eps[POP3_PORT_TLS] = &cfg.pop3d.pop3s;
	for (int i = 0; i < 2; i++) {
		srv.lctx[i].server = &srv;
		srv.lctx[i].kind = (enum pop3_port_kind)i;
		if (listen_endpoints(srv.base, eps[i], pop3_accept, &srv.lctx[i],
		    &srv.listeners[i], err, sizeof(err)) != 0) {
			log_err("%s", err);
			return 1;
		}
	}
	/* A store that cannot be opened is reported here, before detaching. */
	path = config_store_path(&cfg);
	if (store_open(path, STORE_CREATE, &srv.store, err, sizeof(err)) != STORE_OK) {
		log_err("store %s: %s", path, err);
		return 1;
	}
	store_close(&srv.store);
	if (daemon_give_to_user(&cfg, cfg.general.data_dir) != 0 ||
	    daemon_give_to_user(&cfg, path) != 0)
		log_warn("cannot give %s to user %s: %s", path, cfg.general.user, strerror(errno));
	daemon_detach(&opts, srv.base);
	daemon_drop_privileges(&cfg);
	srv.max_sessions = daemon_fd_limit() > 64 ? daemon_fd_limit() - 32 : 32;

	if (store_open(path, STORE_CREATE, &srv.store, err, sizeof(err)) != STORE_OK ||
	    store_writer_new(path, srv.base, &srv.writer, err, sizeof(err)) != STORE_OK) {
		log_err("store %s: %s", path, err);
		return 1;
	}
	free(path);
	/* Locks held by an earlier pop3d on this host died with it. */
	snprintf(srv.owner_prefix, sizeof(srv.owner_prefix), "%s:", cfg.general.hostname);
	if (store_pop3_unlock_prefix(srv.store, srv.owner_prefix) != STORE_OK)
		log_warn("cannot clear old mailbox locks: %s", store_errmsg(srv.store));
	snprintf(srv.owner_prefix, sizeof(srv.owner_prefix), "%s:%ld:", cfg.general.hostname,
	    (long)getpid());
	srv.workers = worker_pool_new(srv.base, 2);
	if (password_hash("umbox-unknown-user", srv.dummy_hash, sizeof(srv.dummy_hash)) != 0)
		fatal("yescrypt is unavailable");

	srv.sigterm = evsignal_new(srv.base, SIGTERM, on_sigterm, &srv);
	srv.sigint = evsignal_new(srv.base, SIGINT, on_sigterm, &srv);
	srv.sighup = evsignal_new(srv.base, SIGHUP, on_sighup, &srv);
	event_add(srv.sigterm, NULL);
	event_add(srv.sigint, NULL);
	event_add(srv.sighup, NULL);
	srv.sweep = event_new(srv.base, -1, EV_PERSIST, on_sweep, &srv.ips);
	event_add(srv.sweep, &(struct timeval){ 300, 0 });

	log_info("umbox-pop3d %s started: %s", UMBOX_VERSION, cfg.general.hostname);
	event_base_dispatch(srv.base);

	store_writer_free(&srv.writer);
	worker_pool_free(&srv.workers);
	for (int i = 0; i < 2; i++)
		listen_free(&srv.listeners[i]);
	event_free(srv.sigterm);
	event_free(srv.sigint);
	event_free(srv.sighup);
	event_free(srv.sweep);
	store_close(&srv.store);
	ip_table_clear(&srv.ips);
	SSL_CTX_free(srv.tls);
	event_base_free(srv.base);
	config_free(&cfg);
	log_info("stopped");
	return 0;
}
