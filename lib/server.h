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

#include <pthread.h>
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
struct completion_queue;
struct store;
struct store_heartbeat;
struct store_directory;
struct store_dirview;
struct store_readers;
struct store_writer;
struct worker_pool;

#define SERVER_PORTS_MAX	4

struct server;
struct server_loop;

struct server_port {
	const char *name;			/* for logs: "mx", "pop3s" */
	const struct config_endpoints *eps;
	int implicit_tls;			/* TLS from the first byte */
	/*
	 * Percent of the session cap that only this port may take: the other
	 * ports' clients (a flood of stalled handshakes on smtps, say) stop
	 * short of it, so that this one is still served.
	 */
	unsigned reserve_pct;
};

struct server_def {
	const char *name;			/* program name */
	const char *id_prefix;			/* session ids: "" or "P" */
	struct server_port ports[SERVER_PORTS_MAX];
	unsigned nports;
	const unsigned *max_conns;		/* into the config, loaded by server_init */
	const unsigned *max_conns_per_ip;
	/*
	 * Descriptors budgeted per session, in hundredths: every session
	 * holds its socket; some hold more for a while (a spool file and its
	 * copy in a commit), which the share above 100 is kept for.
	 */
	unsigned fd_cost;
	/* Resolves recipients: keeps the directory in memory on SQLite too. */
	int resolves;
	const char *refuse_busy;		/* one line, CRLF included */
	const char *refuse_ip;
	/*
	 * Open a session on an accepted socket that passed the caps, on the
	 * loop's own thread: set it up with conn_open(), or hand the socket
	 * back with server_conn_drop().
	 */
	void (*open)(struct server_loop *loop, unsigned port, evutil_socket_t fd,
	    const struct sockaddr *sa, struct ip_entry *ip);
	/* Before detaching (errors still reach the terminal); 0 or -1. */
	int (*prepare)(struct server *srv);
	/*
	 * After dropping privileges, once every loop exists (each with its
	 * store, writer and workers), before any runs; 0 or -1.
	 */
	int (*start)(struct server *srv);
	/* After every loop has stopped: in-flight work finishes here. */
	void (*finish)(struct server *srv);
};

/*
 * One event loop and its thread.  Sessions live on the loop that opened
 * them and never leave it: everything they touch on their hot path (the
 * store connection for reads, the writer's answers, the password checks)
 * is the loop's own, so no lock is taken there.  Loop 0 runs on the main
 * thread and also accepts, handles signals and hosts the daemon's own
 * timers (the queue runner, the MX guard).
 */
struct server_loop {
	struct server *srv;
	unsigned index;
	struct event_base *base;
	struct store *store;		/* SQLite: the readers' connection; PostgreSQL: NULL */
	struct store_readers *readers;	/* every read, answered on this loop */
	struct store_dirview *directory;	/* this loop's view of it */
	struct store_writer *writer;	/* group commits, answered on this loop */
	struct worker_pool *workers;	/* password checks, answered on this loop */
	struct completion_queue *inbox;	/* sockets handed over by the acceptor */
	struct conn_deferq *deferq;	/* its connections' work after the running callback */
	struct conn *conns;
	unsigned nconns;
	unsigned load;			/* sessions given to this loop (atomic) */
	int stopping;
	struct event *stop_ev;		/* made active by SIGTERM on loop 0 */
	pthread_t thread;
};

struct server {
	const struct server_def *def;
	struct umbox_config *cfg;
	struct daemon_opts opts;
	struct event_base *base;	/* loop 0's */
	struct server_loop *loops;
	unsigned nloops;
	unsigned next_loop;		/* the acceptor's round-robin start */
	pthread_mutex_t tls_lock;
	SSL_CTX *tls;			/* NULL while no certificate loads; see server_tls() */
	struct listeners listeners[SERVER_PORTS_MAX];
	struct server_port_ctx {
		struct server *srv;
		unsigned port;
	} pctx[SERVER_PORTS_MAX];
	struct event *sigterm, *sigint, *sighup, *sweep;
	struct event *accept_timer;	/* resume accepting after EMFILE */
	struct event *accept_resume;	/* any loop: a session ended while paused */
	unsigned nconns;		/* in all loops (atomic) */
	unsigned long max_conns;	/* the config's cap, lowered to fit the fds */
	unsigned long others_reserve[SERVER_PORTS_MAX];	/* kept for the other ports */
	struct ip_table ips;		/* locked inside: taken on connect and disconnect */
	uint64_t next_id;		/* atomic */
	int accept_paused;		/* atomic */
	time_t refused_logged;		/* refusals are logged once a second at most */
	unsigned refused;
	int stopping;
	char dummy_hash[256];		/* checked for unknown users: same cost */
	struct store_heartbeat *heartbeat;	/* PostgreSQL: this node's name kept alive */
	struct store_directory *directory;	/* the directory in memory */
};

/*
 * Everything before the loops run: options and config (exits on errors),
 * the event loops, TLS, listeners, the store (created if missing),
 * detaching, dropping privileges, the writer thread, workers and
 * signals.  Exits with a message when something cannot be set up.
 */
void server_init(struct server *srv, const struct server_def *def, struct umbox_config *cfg,
    int argc, char **argv);
/* Run every loop until SIGTERM, then release everything. */
int server_run(struct server *srv);

/* Event loops for [general] threads: 0 ("auto") is one per core. */
unsigned server_threads(unsigned configured);

/*
 * The TLS context for a new session or STARTTLS, with a reference of
 * the caller's own (SSL_CTX_free it): SIGHUP may swap it from loop 0 at
 * any time.  NULL while no certificate loads.
 */
SSL_CTX *server_tls(struct server *srv);
int server_has_tls(struct server *srv);

/* For conn.c: a connection is linked into its loop, and gone. */
void server_conn_add(struct server_loop *loop, struct conn *c);
void server_conn_gone(struct server_loop *loop, struct conn *c);
/*
 * The session is over but its socket lingers (conn_close): its address
 * may open another at once, so the per-address count lets it go now.
 */
void server_conn_ip_release(struct server_loop *loop, struct conn *c);
/* A socket handed to def->open that did not become a session: closed, counts undone. */
void server_conn_drop(struct server_loop *loop, evutil_socket_t fd, struct ip_entry **ip);

#endif
