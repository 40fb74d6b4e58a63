/*
 * smtpd.h - umbox-smtpd's server and session state, shared by its files:
 *   main.c      the ports, the caps and the store for lib/server.c
 *   session.c   reading, replies, states, timeouts, STARTTLS
 *   commands.c  one function per SMTP command
 *   auth.c      AUTH PLAIN/LOGIN with password checks off the loop
 *   message.c   DATA/BDAT content into a spool, and the commit
 */
#ifndef UMBOX_SMTPD_H
#define UMBOX_SMTPD_H

#include <netinet/in.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "aliases/resolve.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/iptable.h"
#include "lib/listen.h"
#include "lib/server.h"
#include "lib/sasl.h"
#include "lib/worker.h"
#include "smtpd/data.h"
#include "aliases/deliver.h"
#include "aliases/queue.h"
#include "smtpd/parse.h"
#include "store/store.h"

#define SMTP_AUTH_FAILURES_MAX	3
#define SMTP_CMD_TIMEOUT	300	/* seconds: RFC 5321 §4.5.3.2 server timeout */
#define SMTP_DATA_TIMEOUT	180	/* RFC 5321 §4.5.3.2 data block: without progress */
#define SMTP_DATA_PROGRESS	(64 * 1024)	/* bytes that count as progress */
#define SMTP_DATA_MAX_TIME	3600	/* a whole DATA/BDAT transfer, at most */
#define SMTP_GREET_DELAY_MS	100	/* MX port: wait, and refuse early talkers */
#define SMTP_SPOOL_MEM		(1024 * 1024)	/* larger messages spool to a file */
#define SMTP_HOPS_MAX		50
/*
 * Times a message may have passed through this server (its own Received
 * fields, this one's included): more is a forwarding loop, perhaps one
 * that doubles at each pass (two aliases forwarding to each other through
 * outside servers), where the hop count alone would allow 2^50 copies.
 */
#define SMTP_PASSES_MAX		4
#define SMTP_RCPT_OVERSHOOT	1000	/* RCPTs past max_recipients that are not errors */

enum smtp_port_kind {
	SMTP_PORT_MX,		/* 25: mail for our domains */
	SMTP_PORT_SUBMISSION,	/* 587: AUTH required, STARTTLS */
	SMTP_PORT_SMTPS,	/* 465: implicit TLS, AUTH required */
};

/* The daemon: the shared server first, so a struct server * casts back. */
#define SMTP_LEAD_MAX	80	/* a longer first word is not a header field's name */

struct smtp_server {
	struct server srv;
	struct alias_resolver *resolvers;	/* one per loop: each reads through its loop's store */
	struct dns_resolver *dns;	/* the queue's and the MX guard's */
	struct queue_runner *queue;	/* outbound delivery and full mailboxes */
	struct guard_watch *guard;	/* the periodic MX guard */
	uint32_t next_qid;		/* per-process counter for queue IDs (atomic) */
	unsigned qid_pid;		/* the process's ID, as queue IDs carry it */
};

enum smtp_state {
	SMTP_S_GREETING,	/* banner not yet sent */
	SMTP_S_CONNECTED,	/* banner sent: HELO/EHLO expected */
	SMTP_S_READY,		/* after HELO/EHLO, no transaction */
	SMTP_S_MAIL,		/* MAIL accepted */
	SMTP_S_RCPT,		/* at least one RCPT accepted */
	SMTP_S_DATA,		/* reading DATA content */
	SMTP_S_BDAT,		/* reading a BDAT chunk */
	SMTP_S_AUTH,		/* reading a SASL response line */
};

struct smtp_rcpt {
	char *address;		/* as given (canonical form from the parser) */
	int local;		/* in one of our domains */
};

/* One mail transaction: MAIL to the end of DATA/BDAT or RSET. */
struct smtp_txn {
	struct addr sender;
	uint64_t declared_size;		/* SIZE=, 0 if none */
	int smtputf8;
	struct smtp_rcpt *rcpts;
	size_t nrcpts;
	size_t overshoot;		/* RCPTs refused for max_recipients */
	struct alias_result targets;	/* union of all recipients' final targets */

	/* content */
	struct smtp_data data;
	int data_started;
	struct evbuffer *spool_mem;
	int spool_fd;			/* -1 until the message outgrows memory */
	uint64_t spool_len;
	char tail[2];			/* the last two bytes spooled */
	enum store_kind kind;		/* from X-Umbox-Kind, once header_read */
	unsigned passes;		/* our own Received fields, once header_read */
	int header_read;
	char lead[SMTP_LEAD_MAX];	/* the client's first bytes, while they may be a field name */
	size_t lead_len;
	int lead_done;			/* the first line is judged (header or not) */
	int spool_error;		/* writing the spool file failed (errno): 4xx at the end */
	uint64_t bdat_left;		/* bytes of the current BDAT chunk still to read */
	uint64_t bdat_chunk;		/* the current chunk's size, for its reply */
	int bdat_last;
	int bdat_discard;		/* chunk bytes are read and thrown away (503 after) */
	unsigned seq;			/* transaction number within the session */
	char qid[STORE_QID_MAX];	/* queue ID: Received: id, the 250 reply, the logs */
};

struct smtp_session {
	struct conn c;			/* first: conn callbacks cast back */
	struct server *server;
	struct server_loop *loop;	/* the session's: its store, writer, workers */
	enum smtp_port_kind kind;
	int trusted;			/* in trusted_networks */
	enum smtp_state state;
	char *helo;
	int esmtp;
	unsigned auth_failures;
	time_t data_started;		/* when the current DATA/BDAT transfer began */
	size_t data_progress;		/* content bytes since the deadline was last moved */
	char last_cmd[16];		/* verb of the command being answered, for logs */

	/* authentication */
	struct store_user *user;	/* NULL until AUTH succeeds */
	int auth_mech;			/* 1 PLAIN, 2 LOGIN while in SMTP_S_AUTH */
	char *auth_login;		/* LOGIN: the user name step */
	struct login_check *login;	/* a password check in flight */

	struct smtp_txn *txn;
	unsigned txn_seq;
	struct store_req *commit;	/* in flight */
	struct smtp_lookup *lookup;	/* MAIL or RCPT waiting for the store */
};

static inline struct smtp_server *
smtp_daemon(const struct smtp_session *s)
{
	return (struct smtp_server *)s->server;
}

/* Alias resolution for this session's loop. */
static inline struct alias_resolver *
smtp_resolver(const struct smtp_session *s)
{
	return &smtp_daemon(s)->resolvers[s->loop->index];
}

/* session.c */
/* server_def.open: a session on an accepted socket. */
void smtp_session_open(struct server_loop *loop, unsigned port, evutil_socket_t fd,
    const struct sockaddr *sa, struct ip_entry *ip);
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtp_set_state(struct smtp_session *s, enum smtp_state st);
void smtp_resume(struct smtp_session *s);
void smtp_start_tls(struct smtp_session *s);
int smtp_may_auth(const struct smtp_session *s);
int smtp_may_relay(const struct smtp_session *s);

/* commands.c */
void smtp_command(struct smtp_session *s, const char *line, size_t len);
void smtp_txn_free(struct smtp_txn **t);
/* The session goes away: its lookup in flight finishes without it. */
void smtp_lookup_cancel(struct smtp_session *s);

/* auth.c */
void smtp_auth_start(struct smtp_session *s, const char *arg, size_t len);
void smtp_auth_line(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_cancel(struct smtp_session *s);

/* message.c */
int smtp_message_begin(struct smtp_session *s, int bdat);
size_t smtp_message_feed(struct smtp_session *s, const char *buf, size_t len);
/* SIGTERM: the commit waited for is given the store's short limit from now. */
void smtp_commit_stopping(struct smtp_session *s);
void smtp_message_end(struct smtp_session *s);

#endif
