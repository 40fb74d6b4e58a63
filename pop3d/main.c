/*
 * umbox-pop3d - POP3 on 110 (STLS) and 995 (implicit TLS) over the
 * unified inbox.  One process, an event loop per core ([general]
 * threads); store writes go to the writer thread, password checks to
 * worker threads.
 *
 *   umbox-pop3d [-c FILE] [-f] [-n]
 */
#include "pop3d/pop3d.h"

#include <stdio.h>
#include <unistd.h>

#include "lib/log.h"

static int
unlock_old(struct store *s, void *arg)
{
	int status = store_pop3_unlock_prefix(s, arg);

	if (status != STORE_OK)
		log_warn("cannot clear old mailbox locks: %s", store_errmsg(s));
	return status;
}

/* The store, and the mailbox locks an earlier pop3d of this node left. */
static int
pop3d_start(struct server *srv)
{
	struct pop3_server *d = (struct pop3_server *)srv;
	const char *host = store_owner_name(srv->cfg);

	if (store_daemon_open(srv) != 0)
		return -1;
	pthread_mutex_init(&d->stale_mu, NULL);
	snprintf(d->owner_prefix, sizeof(d->owner_prefix), "%s:", host);
	store_daemon_startup(srv, "clear old mailbox locks", unlock_old, d->owner_prefix);
	snprintf(d->owner_prefix, sizeof(d->owner_prefix), "%s:%ld:", host, (long)getpid());
	return 0;
}

int
main(int argc, char **argv)
{
	static struct umbox_config cfg;
	static struct pop3_server pop3d;
	struct server_def def = {
		.name = "umbox-pop3d",
		.id_prefix = "P",
		.nports = 2,
		/* A session holds its socket; mailboxes are read through the loop's store readers. */
		.fd_cost = 100,
		.max_conns = &cfg.pop3d.max_connections,
		.max_conns_per_ip = &cfg.pop3d.max_connections_per_ip,
		.refuse_busy = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
		.refuse_ip = "-ERR [SYS/TEMP] Too many connections from your address\r\n",
		.open = pop3_session_open,
		.prepare = store_daemon_check,
		.start = pop3d_start,
		.finish = store_daemon_close,
	};

	/* The config is loaded by server_init; the ports and caps point into it. */
	def.ports[POP3_PORT_PLAIN] = (struct server_port){ "pop3", &cfg.pop3d.listen, 0, 0 };
	def.ports[POP3_PORT_TLS] = (struct server_port){ "pop3s", &cfg.pop3d.pop3s, 1, 0 };
	server_init(&pop3d.srv, &def, &cfg, argc, argv);
	return server_run(&pop3d.srv);
}
