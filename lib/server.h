/*
 * server.h - what umbox-smtpd and umbox-pop3d share as daemons: startup
 * (config, TLS, listeners, the store and its writer, privilege drop),
 * accepting connections under caps, signals, and shutdown.
 *
 * A daemon describes its ports and how to open a session on an accepted
 * socket; the server accepts, applies the caps (in total, per client
 * address, and by the file descriptors each session may need), pauses
 * accepting while descriptors run out, and calls the daemon only for
 * connections it may take.
 */
#ifndef UMBOX_SERVER_H
#define UMBOX_SERVER_H

#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include <event2/util.h>
#include <openssl/ssl.h>

#include "config.h"
#include "daemon.h"
#include "iptable.h"
#include "listen.h"

struct conn;
struct event;
struct event_base;
struct store;
struct store_writer;
struct worker_pool;

#define SERVER_PORTS_MAX	4

struct server;

struct server_port {
	const char *name;			/* for logs: "mx", "pop3s" */
	const struct config_endpoints *eps;
	int implicit_tls;			/* TLS from the first byte */
};

struct server_def {
	const char *name;			/* program name */
	const char *id_prefix;			/* session ids: "" or "P" */
	struct server_port ports[SERVER_PORTS_MAX];
	unsigned nports;
	const unsigned *max_conns;		/* into the config, loaded by server_init */
	const unsigned *max_conns_per_ip;
	unsigned fds_per_conn;			/* socket, spool file, store reader ... */
	const char *refuse_busy;		/* one line, CRLF included */
	const char *refuse_ip;
	/*
	 * Open a session on an accepted socket that passed the caps: set it
	 * up with conn_open(), or close fd and put ip back.
	 */
	void (*open)(struct server *srv, unsigned port, evutil_socket_t fd,
	    const struct sockaddr *sa, struct ip_entry *ip);
	/* Before detaching (errors still reach the terminal); 0 or -1. */
	int (*prepare)(struct server *srv);
	/* After dropping privileges, before the loop runs; 0 or -1. */
	int (*start)(struct server *srv);
	/* After the loop: in-flight work finishes here. */
	void (*finish)(struct server *srv);
};

struct server {
	const struct server_def *def;
	struct umbox_config *cfg;
	struct daemon_opts opts;
	struct event_base *base;
	struct store *store;		/* reads on the loop thread (set by start) */
	struct store_writer *writer;	/* group commits (set by start) */
	struct worker_pool *workers;	/* password checks */
	SSL_CTX *tls;			/* NULL while no certificate loads */
	struct listeners listeners[SERVER_PORTS_MAX];
	struct server_port_ctx {
		struct server *srv;
		unsigned port;
	} pctx[SERVER_PORTS_MAX];
	struct event *sigterm, *sigint, *sighup, *sweep;
	struct event *accept_timer;	/* resume accepting after EMFILE */
	struct conn *conns;
	unsigned nconns;
	unsigned long max_conns;	/* the config's cap, lowered to fit the fds */
	struct ip_table ips;
	uint64_t next_id;
	int accept_paused;
	time_t refused_logged;		/* refusals are logged once a second at most */
	unsigned refused;
	int stopping;
	char dummy_hash[256];		/* checked for unknown users: same cost */
};

/*
 * Everything before the loop: options and config (exits on errors), the
 * event loop, TLS, listeners, the store (created if missing), detaching,
 * dropping privileges, the writer thread, workers and signals.  Exits
 * with a message when something cannot be set up.
 */
void server_init(struct server *srv, const struct server_def *def, struct umbox_config *cfg,
    int argc, char **argv);
/* Run the loop until SIGTERM, then release everything. */
int server_run(struct server *srv);

/* For conn.c: a connection is linked in, and gone. */
void server_conn_add(struct server *srv, struct conn *c);
void server_conn_gone(struct server *srv, struct conn *c);

#endif
