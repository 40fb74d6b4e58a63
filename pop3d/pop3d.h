/*
 * pop3d.h - umbox-pop3d's server and session state, shared by its files:
 *   main.c      the ports, the caps and the store for lib/server.c
 *   session.c   reading lines, replies, states, timeouts, STLS
 *   commands.c  one function per POP3 command, the command table
 *   mailbox.c   login completion (lock, snapshot), RETR/TOP streaming, QUIT
 */
#ifndef UMBOX_POP3D_H
#define UMBOX_POP3D_H

#include <pthread.h>
#include <stdatomic.h>
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
#include "lib/server.h"
#include "lib/worker.h"
#include "pop3d/parse.h"
#include "store/store.h"

#define POP3_AUTH_FAILURES_MAX	3
#define POP3_IDLE_TIMEOUT	600	/* RFC 1939 §3: at least 10 minutes */
#define POP3_LOCK_LEASE		1800	/* renewed while the session is active */
#define POP3_SLICE		(32 * 1024)	/* bytes read from the store per step */
#define POP3_SASL_LINE_MAX	8192	/* a SASL response line, CRLF included */

enum pop3_port_kind { POP3_PORT_PLAIN, POP3_PORT_TLS };

/* The daemon: the shared server first, so a struct server * casts back. */
struct pop3_stale_lock;

struct pop3_server {
	struct server srv;
	char owner_prefix[300];		/* "NAME:pid:" for lock owners (store_owner_name) */
	/* Locks whose release the store refused, for the next login to give back. */
	pthread_mutex_t stale_mu;
	struct pop3_stale_lock *stale;
	atomic_uint nstale;
};

enum pop3_state {
	POP3_S_AUTHORIZATION,
	POP3_S_SASL,		/* reading a SASL response line */
	POP3_S_TRANSACTION,
};

/* One mailbox entry as listed at login. */
struct pop3_msg {
	struct store_entry e;
	int deleted;
	int retrieved;
};

/* A RETR or TOP being streamed out. */
struct pop3_slice;

struct pop3_stream {
	struct pop3_msg *m;
	struct store_reader *r;		/* on the loop's own store (SQLite) */
	struct pop3_slice *slice;	/* else: read by the loop's readers */
	uint64_t offset;
	int line_start;		/* the next byte begins a line (dot-stuffing) */
	int top;		/* TOP: stop after the header and `lines` body lines */
	int in_body;
	unsigned long lines;
	int prev_cr;		/* for finding the empty line after the header */
	int empty_line;		/* the current line has been empty so far */
	int last_lf;		/* the last byte sent was LF */
	unsigned long n;	/* the message's number, for a refusal */
	char reply[48];		/* the +OK line, until the first bytes are in hand */
};

struct pop3_session {
	struct conn c;			/* first: conn callbacks cast back */
	struct server *server;
	struct server_loop *loop;	/* the session's: its store, writer, workers */
	enum pop3_state state;
	unsigned auth_failures;
	char last_cmd[8];

	char *user_name;		/* from USER, or the SASL LOGIN step */
	int sasl_mech;			/* 1 PLAIN, 2 LOGIN */
	struct login_check *login;
	struct store_user *user;	/* after a good password */
	char *owner;			/* lock owner id, from login on */
	int locked;
	int64_t lock_renewed;

	struct pop3_msg *msgs;		/* the snapshot taken at login */
	size_t nmsgs;
	struct pop3_stream *stream;
	struct pop3_slice *ahead;	/* messages read ahead of their RETR (PostgreSQL) */
	struct pop3_listing *listing;	/* the mailbox being listed after login */
	struct store_req *req;		/* lock or QUIT in flight */
	struct pop3_stale_lock *releasing;	/* closing once this release is done */

};

static inline struct pop3_server *
pop3_daemon(const struct pop3_session *s)
{
	return (struct pop3_server *)s->server;
}

/* session.c */
/* server_def.open: a session on an accepted socket. */
void pop3_session_open(struct server_loop *loop, unsigned port, evutil_socket_t fd,
    const struct sockaddr *sa, struct ip_entry *ip);
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pop3_set_state(struct pop3_session *s, enum pop3_state st);
void pop3_resume(struct pop3_session *s);
/*
 * The session waits for the store (store_wait_limit): if no answer comes
 * in time, the client is told to try again later and the session ends.
 */
void pop3_store_wait(struct pop3_session *s);
/*
 * The server ends the session (after its last reply): the reply goes at
 * once, and the connection closes once the mailbox's lock is given back
 * (or the store took too long), so that a client that logs in again as
 * soon as it sees the close never meets its own lock.
 */
void pop3_close(struct pop3_session *s);
void pop3_start_tls(struct pop3_session *s);
int pop3_plaintext_ok(const struct pop3_session *s);
struct evbuffer *pop3_output(struct pop3_session *s);

/* commands.c */
void pop3_command(struct pop3_session *s, const char *line, size_t len);
void pop3_sasl_line(struct pop3_session *s, const char *line, size_t len);

/* mailbox.c */
void pop3_login(struct pop3_session *s, const char *name, const char *password);
void pop3_login_cancel(struct pop3_session *s);
/*
 * RETR (top 0) or TOP message n: reply is its "+OK" line, sent with the
 * first bytes.  A message that cannot be read is refused instead; one
 * deleted since the login (umboxctl mail del) ends the session.
 */
void pop3_stream_open(struct pop3_session *s, struct pop3_msg *m, unsigned long n, int top,
    unsigned long lines, const char *reply);
void pop3_stream_pump(struct pop3_session *s);
/* The session goes away: the stream, and a listing or slice in flight, let go. */
void pop3_stream_free(struct pop3_session *s);
void pop3_ahead_free(struct pop3_session *s);
void pop3_listing_cancel(struct pop3_session *s);
void pop3_quit(struct pop3_session *s);
void pop3_release_lock(struct pop3_session *s);
/* The lock given back, then the connection closed (pop3_close); 0: no lock to give. */
int pop3_release_then_close(struct pop3_session *s);
/* The session goes before its release is done: the release no longer closes it. */
void pop3_release_forget(struct pop3_session *s);
void pop3_renew_lock(struct pop3_session *s);

#endif
