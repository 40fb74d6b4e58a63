/*
 * conn.h - one network connection of a daemon, whatever its protocol.
 *
 * A session (SMTP, POP3) embeds struct conn as its first member and gives
 * a table of callbacks.  The connection layer owns everything that is the
 * same for every protocol:
 *
 *   - reading with bounded memory: at most CONN_IN_MAX bytes of input are
 *     held (a read high-water mark, also on the socket below a TLS
 *     layer); input is taken up only while the session does not wait
 *     (conn_wait: a commit, a password check, a delay, a stream going
 *     out) and no more than CONN_OUT_HIGH bytes of output are unsent,
 *     counted at the socket, below any TLS layer; so a client that writes
 *     without reading meets TCP back-pressure;
 *   - fairness: input is handed to the session a few steps per loop turn,
 *     then the connection yields to the others;
 *   - command lines: CRLF-terminated, bounded, an over-long line refused
 *     as soon as the partial line shows it;
 *   - bad commands in a row, and logging a repeated error once;
 *   - the swap to TLS (STARTTLS, STLS);
 *   - one timer for deadlines and delays, and teardown that waits for the
 *     last reply and frees the session outside any callback.
 */
#ifndef UMBOX_CONN_H
#define UMBOX_CONN_H

#include <stddef.h>

#include <event2/util.h>
#include <openssl/ssl.h>

struct bufferevent;
struct event;
struct event_base;
struct evbuffer;
struct ip_entry;
struct server_loop;

#define CONN_IN_MAX	(64 * 1024)	/* input held per connection, at most */
#define CONN_OUT_HIGH	(256 * 1024)	/* unsent output that stops reading */
#define CONN_OUT_LOW	(64 * 1024)	/* ... and lets it go on again */
#define CONN_STEPS	8		/* input steps per loop turn, then yield */
#define CONN_BAD_MAX	20		/* bad commands in a row that close */
#define CONN_SKIP_MAX	(1024 * 1024)	/* one command line longer than this closes */
/*
 * An inbound TLS handshake (implicit TLS, STARTTLS, STLS) finishes within
 * this or the connection closes: a client holding its handshake open
 * otherwise keeps a connection slot for a whole command timeout.
 */
#define CONN_TLS_HANDSHAKE_SECS	30

struct conn;

enum conn_step {
	CONN_NEED_INPUT,	/* nothing more to do until more bytes arrive */
	CONN_CONTINUE,		/* one step done: there may be more */
};

struct conn_ops {
	/* Input is waiting: take one step (a command line, a slice of content). */
	enum conn_step (*input)(struct conn *c, struct evbuffer *in);
	/* Output fell to the low-water mark; may be NULL. */
	void (*writable)(struct conn *c);
	/*
	 * Outbound: the TCP connection is up (tls 0), or a TLS handshake
	 * finished (tls 1); may be NULL for inbound connections.
	 */
	void (*connected)(struct conn *c, int tls);
	/* The peer closed or the connection failed; the conn is freed next. */
	void (*gone)(struct conn *c, const char *why);
	/* A line was handled and the session waits for the next: arm the deadline. */
	void (*ready)(struct conn *c);
	/* SIGTERM: answer and close, or finish what is in flight first. */
	void (*shutdown)(struct conn *c);
	/* Release the session: the conn's own parts are already cleared. */
	void (*release)(struct conn *c);
};


struct conn {
	const struct conn_ops *ops;
	struct event_base *base;
	struct server_loop *loop;	/* inbound: the loop it lives on */
	struct conn *prev, *next;	/* the loop's connections */
	struct ip_entry *ip;		/* per-address counts (a /64 for IPv6) */
	unsigned port;			/* which of the server's listeners */
	char id[24];
	char peer[64];			/* "[1.2.3.4]:5678" */
	int loopback;
	struct bufferevent *bev;
	int tls;
	int tls_failed;			/* the handshake failed: flush its alert, then close */
	struct event *hs_timer;		/* inbound: the handshake's deadline, while it runs */

	struct event *timer;
	void (*timer_fn)(struct conn *c);
	/*
	 * What waits for the running callback to return (flush, resume,
	 * free): inbound connections wait in their loop's queue, outbound
	 * ones on an event of their own.
	 */
	unsigned deferred;
	struct conn *dq_next, **dq_prev;	/* dq_prev: NULL while not queued */
	struct event *defer_ev;
	struct evbuffer_cb_entry *out_cb;
	int direct;			/* a plain inbound socket: read and written by us */
	int write_on;			/* ... except while the kernel cannot take it all */
	int read_full;			/* direct reading paused: CONN_IN_MAX held */
	int waiting;			/* conn_wait: no input is taken */
	int eof;			/* the client shut its side: finish what it sent, then end */
	int closing;
	int freeing;
	unsigned close_polls;
	struct event *io_ev;		/* direct reading, then lingering to EOF */
	size_t lingered;

	unsigned bad;			/* bad commands in a row */
	int skip_line;			/* discarding the rest of an over-long line */
	size_t skipped;			/* ... and how much of it, up to CONN_SKIP_MAX */
	char *last_error;		/* the last error logged, and how often since */
	unsigned error_repeats;
};

/* One per event loop: the inbound connections with deferred work. */
struct conn_deferq;
struct conn_deferq *conn_deferq_new(struct event_base *base);
void conn_deferq_free(struct conn_deferq **q);

/*
 * Set up a connection on an accepted socket from sa (TLS from the first
 * byte if tls is set), holding ip's count, and link it into the loop.
 * Returns -1 if it cannot be set up: the socket is closed and ip put
 * back.
 */
struct sockaddr;
int conn_open(struct conn *c, struct server_loop *loop, const struct conn_ops *ops,
    evutil_socket_t fd, const struct sockaddr *sa, struct ip_entry *ip, int tls);

/*
 * An outbound connection to sa (the caller's id, for logs): connecting
 * starts at once; ops->connected or ops->gone follows.  Not linked into
 * any server.  -1 if it cannot even start (errno set).
 */
int conn_connect(struct conn *c, struct event_base *base, const struct conn_ops *ops,
    const struct sockaddr *sa, const char *id);
/*
 * Outbound STARTTLS (or implicit TLS right after connecting): the
 * handshake runs, then ops->connected(c, 1).  -1 if it cannot start.
 */
int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *host, int verify);

/*
 * Write what is queued now, not when the running callback returns: a
 * greeting, so that a burst of new sessions does not leave each one's
 * freed output buffer as a hole between the next ones' memory.
 */
void conn_send_now(struct conn *c);

/* The TLS version and suite, as "TLSv1.3 TLS_AES_128_GCM_SHA256" ("" without TLS). */
const char *conn_tls_info(struct conn *c, char *buf, size_t len);

/* Arm the one timer (replacing what it was armed for). */
void conn_set_timer(struct conn *c, unsigned ms, void (*fn)(struct conn *c));
void conn_cancel_timer(struct conn *c);

/*
 * The session waits (a commit, a password check, a delay): its timer is
 * cancelled (arm one after this for a delay) and no input is taken until
 * conn_go().
 */
void conn_wait(struct conn *c);
/* Take input again; what waited is taken up on the next loop turn. */
void conn_go(struct conn *c);
/* Output bytes not yet handed to the kernel, TLS layer included. */
size_t conn_unsent(const struct conn *c);
struct evbuffer *conn_output(struct conn *c);


/*
 * Line mode, one step: take the next command line (at most limit octets
 * with its CRLF, limit <= CONN_LINE_MAX) and hand it to on_line; an
 * over-long line is handed over as NULL, once, for the session to refuse.
 * Then, unless the session now waits or closes, ops->ready arms its
 * deadline for the next command.
 */
#define CONN_LINE_MAX	8192
enum conn_step conn_take_line(struct conn *c, struct evbuffer *in, size_t limit,
    void (*on_line)(struct conn *c, const char *line, size_t len));

/*
 * Count a reply: an error (a 4xx/5xx or -ERR) adds one to the bad
 * commands in a row, anything else resets the count.  Returns 1 when the
 * count reached CONN_BAD_MAX: the caller says goodbye and closes.
 */
int conn_count_reply(struct conn *c, int error);
/* Log an error reply, once for a run of identical ones. */
void conn_log_error(struct conn *c, const char *cmd, const char *text);

/*
 * Switch an inbound connection to TLS, with the server's current
 * context, after the reply to STARTTLS/STLS is queued: what the client
 * pipelined in the clear is thrown away.  -1 if TLS could not start (the
 * connection is then being freed).
 */
int conn_start_tls(struct conn *c);

/* Stop reading; free once the output is written, or after 10 s. */
void conn_close(struct conn *c);
/* Free on the next loop turn (the peer is gone). */
void conn_free_later(struct conn *c);
/* Free at once, unwritten output and all: only outside the conn's callbacks (shutdown). */
void conn_free_now(struct conn *c);

#endif
