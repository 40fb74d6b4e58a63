/*
 * umbox-smtpd - the ESMTP server: MX on 25, submission on 587, implicit
 * TLS on 465; one process, an event loop per core ([general] threads),
 * a writer thread for the store and worker threads for password checks.
 *
 *   umbox-smtpd [-c FILE] [-f] [-n]
 */
#include "smtpd/smtpd.h"

#include <unistd.h>

#include "aliases/dns.h"
#include "aliases/guard.h"
#include "lib/log.h"

static int
smtpd_start(struct server *srv)
{
	struct smtp_server *d = (struct smtp_server *)srv;
	struct server_loop *l0 = &srv->loops[0];
	char err[512];

	if (store_daemon_open(srv) != 0)
		return -1;
	d->qid_pid = (unsigned)getpid() & 0xffff;	/* after the fork that detached us */
	d->resolvers = xcalloc(srv->nloops, sizeof(*d->resolvers));
	for (unsigned i = 0; i < srv->nloops; i++) {
		d->resolvers[i].store = srv->loops[i].store;
		d->resolvers[i].postmaster = srv->cfg->general.postmaster;
		d->resolvers[i].srs_secret = srv->cfg->queue.srs_secret;
	}
	/* The queue runner and the MX guard live on loop 0. */
	store_daemon_startup(srv, "end old queue claims", queue_release_old_claims, srv->cfg);
	if ((d->dns = dns_new(l0->base, &srv->cfg->dns.servers, err, sizeof(err))) == NULL) {
		log_err("dns: %s", err);
		return -1;
	}
	if ((d->queue = queue_runner_new(l0->base, l0->readers, l0->writer, d->dns, srv->cfg,
	    err, sizeof(err))) == NULL) {
		log_err("queue: %s", err);
		return -1;
	}
	queue_runner_hear(d->queue, srv->directory);
	d->guard = guard_watch_new(l0->base, l0->readers, l0->writer, d->dns, srv->cfg);
	return 0;
}

/*
 * The runner and the guard let go of their work before the writer
 * finishes the last commits; the resolver goes after both.
 */
static void
smtpd_finish(struct server *srv)
{
	struct smtp_server *d = (struct smtp_server *)srv;

	queue_runner_free(&d->queue);
	guard_watch_free(&d->guard);
	dns_free(&d->dns);
	store_daemon_close(srv);
	free(d->resolvers);
}

int
main(int argc, char **argv)
{
	static struct umbox_config cfg;
	static struct smtp_server smtpd;
	struct server_def def = {
		.name = "umbox-smtpd",
		.id_prefix = "",
		.nports = 3,
		/*
		 * A session holds its socket; one with a large message also a
		 * spool file and, in its commit, the file's copy: a third of
		 * the budget is kept for those and for outbound connections.
		 */
		.fd_cost = 150,
		.resolves = 1,
		.max_conns = &cfg.smtpd.max_connections,
		.max_conns_per_ip = &cfg.smtpd.max_connections_per_ip,
		.refuse_busy = "421 4.7.0 Too many connections, try again later\r\n",
		.refuse_ip = "421 4.7.0 Too many connections from your address\r\n",
		.open = smtp_session_open,
		.prepare = store_daemon_check,
		.start = smtpd_start,
		.finish = smtpd_finish,
	};

	/* The config is loaded by server_init; the ports and caps point into it. */
	/* A tenth of the sessions for mail from outside, whatever the other ports see. */
	def.ports[SMTP_PORT_MX] = (struct server_port){ "mx", &cfg.smtpd.listen, 0, 10 };
	def.ports[SMTP_PORT_SUBMISSION] = (struct server_port){ "submission",
	    &cfg.smtpd.submission, 0, 0 };
	def.ports[SMTP_PORT_SMTPS] = (struct server_port){ "smtps", &cfg.smtpd.smtps, 1, 0 };
	server_init(&smtpd.srv, &def, &cfg, argc, argv);
	return server_run(&smtpd.srv);
}
