/*
 * pop3d.h - umbox-pop3d's server and session state, shared by its files:
 *   main.c      startup, listeners, signals
 *   session.c   accepting, reading lines, replies, states, timeouts, STLS
 *   commands.c  one function per POP3 command, the command table
 *   mailbox.c   login completion (lock, snapshot), RETR/TOP streaming, QUIT
 */
#ifndef UMBOX_POP3D_H
#define UMBOX_POP3D_H

#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "aliases/login.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/iptable.h"
#include "lib/listen.h"
#include "lib/worker.h"
#include "pop3d/parse.h"
#include "store/store.h"

#define POP3_BAD_COMMANDS_MAX	10
#define POP3_AUTH_FAILURES_MAX	3
#define POP3_IDLE_TIMEOUT	600	/* RFC 1939 §3: at least 10 minutes */
#define POP3_LOCK_LEASE		1800	/* renewed while the session is active */
#define POP3_OUT_HIGH		(256 * 1024)	/* stop streaming above this */
#define POP3_OUT_LOW		(64 * 1024)	/* and go on below this */
#define POP3_SLICE		(32 * 1024)	/* bytes read from the store per step */

enum pop3_port_kind { POP3_PORT_PLAIN, POP3_PORT_TLS };

struct pop3_listener_ctx {
	struct pop3_server *server;
	enum pop3_port_kind kind;
};

struct pop3_server {
	struct event_base *base;
	struct umbox_config *cfg;
	struct store *store;
	struct store_writer *writer;
	struct worker_pool *workers;
	SSL_CTX *tls;
	struct pop3_listener_ctx lctx[2];
	struct listeners listeners[2];
	struct event *sigterm, *sigint, *sighup, *sweep;
	struct pop3_session *sessions;
	unsigned nsessions;
	unsigned long max_sessions;
	struct ip_table ips;
	uint64_t next_session_id;
	char owner_prefix[300];		/* "hostname:pid:" for lock owners */
	char dummy_hash[256];
	int stopping;
};

enum pop3_state {
	POP3_S_AUTHORIZATION,
	POP3_S_SASL,		/* reading a SASL response line */
	POP3_S_TRANSACTION,
	POP3_S_BUSY,		/* password check, lock, delay, commit */
	POP3_S_CLOSING,
};

/* One mailbox entry as listed at login. */
struct pop3_msg {
	struct store_entry e;
	int deleted;
	int retrieved;
};

/* A RETR or TOP being streamed out. */
struct pop3_stream {
	struct pop3_msg *m;
	struct store_reader *r;
	uint64_t offset;
	int line_start;		/* the next byte begins a line (dot-stuffing) */
	int top;		/* TOP: stop after the header and `lines` body lines */
	int in_body;
	unsigned long lines;
	int prev_cr;		/* for finding the empty line after the header */
	int empty_line;		/* the current line has been empty so far */
	int last_lf;		/* the last byte sent was LF */
};

struct pop3_session {
	struct conn c;			/* first: conn callbacks cast back */
	struct pop3_server *server;
	struct pop3_session *prev, *next;
	char id[24];
	char peer_str[64];
	struct ip_entry *ip;
	int loopback;
	int tls;
	enum pop3_state state;
	enum pop3_state resume_state;
	unsigned bad_commands;
	unsigned auth_failures;
	int skip_line;
	int tls_just_started;
	char last_cmd[8];

	char *user_name;		/* from USER, or the SASL LOGIN step */
	int sasl_mech;			/* 1 PLAIN, 2 LOGIN */
	struct login_check *login;
	struct store_user *user;	/* after a good password */
	char owner[340];		/* lock owner id */
	int locked;
	int64_t lock_renewed;

	struct pop3_msg *msgs;		/* the snapshot taken at login */
	size_t nmsgs;
	struct pop3_stream *stream;
	struct store_req *req;		/* lock or QUIT in flight */

	void (*timer_fn)(struct pop3_session *);	/* what the conn timer is for */
};

/* session.c */
void pop3_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int socklen, void *arg);
void pop3_server_stop(struct pop3_server *srv);
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pop3_set_state(struct pop3_session *s, enum pop3_state st);
void pop3_busy(struct pop3_session *s);
void pop3_resume(struct pop3_session *s);
void pop3_close(struct pop3_session *s);
void pop3_set_timer(struct pop3_session *s, unsigned ms, void (*fn)(struct pop3_session *));
void pop3_start_tls(struct pop3_session *s);
int pop3_plaintext_ok(const struct pop3_session *s);
struct evbuffer *pop3_output(struct pop3_session *s);

/* commands.c */
void pop3_command(struct pop3_session *s, const char *line, size_t len);
void pop3_sasl_line(struct pop3_session *s, const char *line, size_t len);

/* mailbox.c */
void pop3_login(struct pop3_session *s, const char *name, const char *password);
void pop3_login_cancel(struct pop3_session *s);
int pop3_stream_open(struct pop3_session *s, struct pop3_msg *m, int top, unsigned long lines);
void pop3_stream_pump(struct pop3_session *s);
void pop3_quit(struct pop3_session *s);
void pop3_release(struct pop3_session *s);
void pop3_renew_lock(struct pop3_session *s);

#endif
