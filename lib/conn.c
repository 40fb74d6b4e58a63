/*
 * conn.c - the connection layer shared by umbox-smtpd and umbox-pop3d:
 * bounded reading, back-pressure, fairness, command lines, TLS swap,
 * timers and teardown.  See conn.h.
 *
 * Input is taken up only while the session can use it: not while it
 * waits, not while its output backs up.  Meanwhile the input buffer fills
 * up to its read high-water mark (on the TLS layer and on the socket
 * below it) and reading stops there by itself: whatever more the client
 * sends stays in the kernel and in the client's send buffer, never in
 * ours.  Reading stays on, so a client that hangs up is noticed at once,
 * and waiting costs no system call.
 *
 * Output on a plain inbound socket is written directly: whatever one
 * callback queues (the replies to a pipelined batch, the answer to a
 * commit) goes out in one write when that callback returns, with no
 * epoll change and no wake-up of its own.  Only output the kernel cannot
 * take at once turns the bufferevent's write event on, until it drains.
 * Its input is read directly too, by an event of the connection's own:
 * one read(2) per wake-up, where the bufferevent would first ask the
 * kernel how much there is (an ioctl that takes the socket's lock).
 */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "iptable.h"
#include "listen.h"
#include "log.h"
#include "server.h"
#include "tls.h"
#include "util.h"

#define CONN_CLOSE_POLL_MS	20
#define CONN_CLOSE_POLLS	500	/* 10 s for the last reply to go out */
#define CONN_LINGER_SECS	2	/* then read and drop the client's last words */
#define CONN_LINGER_MAX		(1024 * 1024)

static void conn_process(struct conn *c);
static void conn_on_event(struct bufferevent *bev, short what, void *arg);
static void conn_read_resume(struct conn *c);

/* What waits for the running callback to return. */
enum {
	CONN_DO_FLUSH = 1,	/* direct writes: what was queued goes out */
	CONN_DO_RESUME = 2,	/* take up input again */
	CONN_DO_FREE = 4,	/* the last reference went */
};

/*
 * A loop's connections with deferred work, most recent first, run by one
 * event: an idle connection costs two pointers, not an event of its own.
 */
struct conn_deferq {
	struct event *ev;
	struct conn *head;
};

static void conn_on_deferred(evutil_socket_t fd, short what, void *arg);

static void
conn_dq_unlink(struct conn *c)
{
	if (c->dq_prev == NULL)
		return;
	*c->dq_prev = c->dq_next;
	if (c->dq_next)
		c->dq_next->dq_prev = c->dq_prev;
	c->dq_next = NULL;
	c->dq_prev = NULL;
}

static void
conn_dq_push(struct conn **head, struct conn *c)
{
	c->dq_next = *head;
	if (*head)
		(*head)->dq_prev = &c->dq_next;
	c->dq_prev = head;
	*head = c;
}

/*
 * Each connection queued when the event fired, once.  The list is taken
 * off the queue first: what the callbacks queue runs on the next turn,
 * and a connection freed meanwhile unlinks itself from either list.
 */
static void
conn_deferq_run(evutil_socket_t fd, short what, void *arg)
{
	struct conn_deferq *q = arg;
	struct conn *todo = q->head;

	q->head = NULL;
	if (todo)
		todo->dq_prev = &todo;
	while (todo) {
		struct conn *c = todo;

		conn_dq_unlink(c);
		conn_on_deferred(-1, 0, c);
	}
}

struct conn_deferq *
conn_deferq_new(struct event_base *base)
{
	struct conn_deferq *q = xcalloc(1, sizeof(*q));

	q->ev = event_new(base, -1, 0, conn_deferq_run, q);
	if (q->ev == NULL)
		fatal("cannot create an event");
	return q;
}

void
conn_deferq_free(struct conn_deferq **q)
{
	if (*q == NULL)
		return;
	event_free((*q)->ev);
	free(*q);
	*q = NULL;
}

static void
conn_defer(struct conn *c, unsigned what)
{
	c->deferred |= what;
	if (c->defer_ev) {
		event_active(c->defer_ev, 0, 0);
		return;
	}
	if (c->dq_prev == NULL) {
		struct conn_deferq *q = c->loop->deferq;

		if (q->head == NULL)
			event_active(q->ev, 0, 0);
		conn_dq_push(&q->head, c);
	}
}

enum conn_line {
	CONN_LINE_MORE,		/* no complete line yet */
	CONN_LINE_OK,		/* a line (without CRLF) was copied out */
	CONN_LINE_TOO_LONG,	/* a line over the limit was thrown away: refuse it */
	CONN_LINE_ENDLESS,	/* one line ran past CONN_SKIP_MAX: no client sends that */
};

static int
conn_out_high(const struct conn *c)
{
	return conn_unsent(c) > CONN_OUT_HIGH;
}


/*
 * Hand the input to the session a step at a time: at most CONN_STEPS
 * per loop turn (then the rest waits for the next turn, behind every
 * other connection's events), and none while the session waits or its
 * output is backed up.
 */
static void
conn_process(struct conn *c)
{
	int starved = 0;	/* the session took all it could of what came */

	for (unsigned n = 0;; n++) {
		struct evbuffer *in;

		if (c->bev == NULL || c->waiting || c->closing || c->freeing || conn_out_high(c))
			break;
		in = bufferevent_get_input(c->bev);
		if (evbuffer_get_length(in) == 0) {
			starved = 1;
			break;
		}
		if (n == CONN_STEPS) {
			conn_defer(c, CONN_DO_RESUME);
			break;
		}
		if (c->ops->input(c, in) == CONN_NEED_INPUT) {
			starved = 1;
			break;
		}
	}
	if (c->eof && starved && !c->waiting && !c->closing && !c->freeing) {
		/* All the client sent before its EOF is done: its replies go, then it ends. */
		c->ops->gone(c, "disconnect");
		conn_close(c);
		return;
	}
	if (c->read_full)
		conn_read_resume(c);
}

/*
 * The client shut its side (a half-close: "QUIT" and then EOF, as
 * nc -N and some scripts do) while commands it sent are still to be
 * taken, or one is being answered: no more input, but what it sent is
 * done and answered, a QUIT's commit included.  1 if so; 0 if there is
 * nothing left, or the client had stopped reading its replies, and the
 * connection simply ends.
 */
static int
conn_half_closed(struct conn *c)
{
	/* Replies already backed up: a client that stopped reading, not one to answer. */
	if (c->loop == NULL || c->closing || c->freeing || c->bev == NULL || conn_out_high(c) ||
	    (!c->waiting && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0))
		return 0;
	c->eof = 1;
	c->read_full = 0;
	if (c->io_ev)
		event_del(c->io_ev);
	bufferevent_disable(c->bev, EV_READ);
	if (!c->waiting)
		conn_defer(c, CONN_DO_RESUME);
	return 1;
}

static void
conn_on_read(struct bufferevent *bev, void *arg)
{
	conn_process(arg);
}

/*
 * Direct reading: what the socket has, up to CONN_IN_MAX held; at that
 * mark reading pauses until the session has taken some (conn_process).
 */
#define CONN_READ_CHUNK		16384

static void
conn_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t held = evbuffer_get_length(in), want;
	char buf[CONN_READ_CHUNK];
	ssize_t n;

	if (held >= CONN_IN_MAX) {
		event_del(c->io_ev);
		c->read_full = 1;
		return;
	}
	want = CONN_IN_MAX - held < sizeof(buf) ? CONN_IN_MAX - held : sizeof(buf);
	do
		n = read(fd, buf, want);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		conn_on_event(c->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR),
		    c);
		return;
	}
	/* The bufferevent keeps its input's end frozen but while it reads itself. */
	evbuffer_unfreeze(in, 0);
	evbuffer_add(in, buf, (size_t)n);
	evbuffer_freeze(in, 0);
	conn_process(c);
}

static void
conn_read_resume(struct conn *c)
{
	if (!c->direct || c->closing || c->freeing || c->eof ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) >= CONN_IN_MAX)
		return;
	c->read_full = 0;
	event_add(c->io_ev, NULL);
}

/* The output went down to the low-water mark: stream on, read again. */
static void
conn_on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing || c->freeing)
		return;	/* conn_close watches the last bytes go */
	if (c->ops->writable)
		c->ops->writable(c);
	if (!c->closing && !c->freeing && !conn_out_high(c))
		conn_process(c);
	/* All written: back to direct writes. */
	if (c->direct && c->write_on && c->bev &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		c->write_on = 0;
		bufferevent_disable(c->bev, EV_WRITE);
	}
}

/*
 * Direct writes: one write of everything queued.  What the kernel did
 * not take is left to the write event; when all went, the session may
 * stream on and input held back by the output goes on next turn.
 */
static void
conn_flush(struct conn *c)
{
	struct evbuffer *out;
	int n;

	if (!c->direct || c->write_on || c->bev == NULL || c->freeing)
		return;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) == 0)
		return;
	/* The bufferevent keeps its output's start frozen but while it writes itself. */
	evbuffer_unfreeze(out, 1);
	do
		n = evbuffer_write(out, bufferevent_getfd(c->bev));
	while (n < 0 && errno == EINTR);
	evbuffer_freeze(out, 1);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		conn_on_event(c->bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR, c);
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		c->write_on = 1;
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	if (c->closing)
		return;
	if (c->ops->writable)
		c->ops->writable(c);
	if (!c->waiting && !c->closing && !c->freeing && c->bev &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		conn_defer(c, CONN_DO_RESUME);
}

/* Output was queued: it goes out when the running callback returns. */
static void
conn_on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;

	if (info->n_added > 0 && !c->write_on)
		conn_defer(c, CONN_DO_FLUSH);
}

/* TLS goes over the socket: what is queued goes first, then the write event does it all. */
static void
conn_direct_off(struct conn *c)
{
	if (!c->direct)
		return;
	conn_flush(c);
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
	c->out_cb = NULL;
	event_del(c->io_ev);
	c->read_full = 0;
	c->direct = 0;
	c->write_on = 0;
	c->deferred &= ~CONN_DO_FLUSH;
	bufferevent_enable(c->bev, EV_WRITE);
}

/* The handshake took too long: closed without a word (nothing is secure yet). */
static void
conn_on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char why[64];

	event_free(c->hs_timer);
	c->hs_timer = NULL;
	if (c->closing || c->freeing)
		return;
	snprintf(why, sizeof(why), "TLS handshake not finished within %d s",
	    CONN_TLS_HANDSHAKE_SECS);
	c->ops->gone(c, why);
	/* What waits for the TLS layer (an implicit-TLS greeting) never goes. */
	c->tls_failed = 1;
	conn_close(c);
}

/* An inbound handshake starts: its deadline. */
static void
conn_handshake_deadline(struct conn *c)
{
	struct timeval tv = { CONN_TLS_HANDSHAKE_SECS, 0 };

	if (c->loop == NULL || c->hs_timer)
		return;
	if ((c->hs_timer = evtimer_new(c->base, conn_on_handshake_timeout, c)) != NULL)
		evtimer_add(c->hs_timer, &tv);
}

static void
conn_handshake_done(struct conn *c)
{
	if (c->hs_timer) {
		event_free(c->hs_timer);
		c->hs_timer = NULL;
	}
}

static void
conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* The TCP connection (outbound), or a TLS handshake, finished. */
		SSL *ssl = bufferevent_openssl_get_ssl(bev);

		conn_handshake_done(c);
		if (ssl) {
			char info[128];

			log_info("%s: TLS established: %s", c->id, tls_describe(ssl, info, sizeof(info)));
		}
		if (c->ops->connected)
			c->ops->connected(c, ssl != NULL);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		struct bufferevent *under = bufferevent_get_underlying(bev);

		if (e)
			log_info("%s: TLS error: %s", c->id, ERR_reason_error_string(e));
		if (e && under && evbuffer_get_length(bufferevent_get_output(under)) > 0 &&
		    !c->closing && !c->freeing) {
			/* A refused STARTTLS handshake: the alert goes out before we close. */
			c->ops->gone(c, "TLS handshake failed");
			c->tls_failed = 1;
			conn_close(c);
			return;
		}
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && conn_half_closed(c))
		return;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (!c->closing && !c->freeing) {
			char why[160];
			int e = EVUTIL_SOCKET_ERROR();

			if (what & BEV_EVENT_EOF)
				snprintf(why, sizeof(why), "disconnect");
			else if (e)
				snprintf(why, sizeof(why), "connection error: %s",
				    evutil_socket_error_to_string(e));
			else if (c->tls)	/* OpenSSL's reason is logged above */
				snprintf(why, sizeof(why), "TLS error%s", c->hs_timer ?
				    " during the handshake" : "");
			else
				snprintf(why, sizeof(why), "connection error");
			c->ops->gone(c, why);
		}
		conn_free_later(c);
	}
}

static void
conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	void (*fn)(struct conn *) = c->timer_fn;

	c->timer_fn = NULL;
	if (fn)
		fn(c);
}

/* The last reference: free the session outside every callback. */
static void
conn_on_free(struct conn *c)
{
	if (c->error_repeats > 0)
		log_info("%s: the last error repeated %u more times", c->id, c->error_repeats);
	free(c->last_error);
	c->last_error = NULL;
	if (c->bev)
		bufferevent_free(c->bev);
	c->bev = NULL;
	event_free(c->timer);
	conn_handshake_done(c);
	if (c->defer_ev)
		event_free(c->defer_ev);
	conn_dq_unlink(c);
	if (c->io_ev)
		event_free(c->io_ev);
	if (c->loop)
		server_conn_gone(c->loop, c);
	c->ops->release(c);
}

/* Flush before taking more input; freeing ends everything. */
static void
conn_on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	unsigned todo = c->deferred;

	c->deferred = 0;
	if (todo & CONN_DO_FREE) {
		conn_on_free(c);
		return;
	}
	if (todo & CONN_DO_FLUSH)
		conn_flush(c);
	if (todo & CONN_DO_RESUME)
		conn_process(c);
}

/*
 * Watermarks and callbacks for the current bufferevent.  Under a TLS
 * filter the socket's own buffers get them too: its input is capped, and
 * its output high-water mark makes the filter keep what the socket cannot
 * take, so the filter's write callback means "the socket drained".
 */
static void
conn_bev_setup(struct conn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);

	bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_IN_MAX);
	bufferevent_setwatermark(c->bev, EV_WRITE, CONN_OUT_LOW, 0);
	if (under) {
		bufferevent_setwatermark(under, EV_READ, 0, CONN_IN_MAX);
		bufferevent_setwatermark(under, EV_WRITE, 0, CONN_OUT_LOW);
	}
	if (c->direct && !c->write_on) {
		/* A new bufferevent has reading and writing on: direct I/O wants them off. */
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		event_add(c->io_ev, NULL);
	} else
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* The TLS layer over the connection's bufferevent takes its place (NULL: it could not). */
static int
conn_swap_tls(struct conn *c, struct bufferevent *tls)
{
	if (tls == NULL) {
		log_err("%s: cannot start TLS", c->id);
		conn_free_later(c);
		return -1;
	}
	c->bev = tls;
	c->tls = 1;
	conn_bev_setup(c);
	return 0;
}

static void
conn_timer_new(struct conn *c)
{
	c->timer = evtimer_new(c->base, conn_on_timer, c);
}

int
conn_open(struct conn *c, struct server_loop *loop, const struct conn_ops *ops,
    evutil_socket_t fd, const struct sockaddr *sa, struct ip_entry *ip, int tls)
{
	struct server *srv = loop->srv;
	const char *prefix = srv->def->id_prefix;
	unsigned long long id = __atomic_add_fetch(&srv->next_id, 1, __ATOMIC_RELAXED);

	c->ops = ops;
	c->base = loop->base;
	c->ip = ip;
	snprintf(c->id, sizeof(c->id), "%s%0*llX", prefix, (int)(8 - strlen(prefix)), id);
	c->loopback = listen_peer(sa, c->peer, sizeof(c->peer));
	if (tls) {
		SSL_CTX *ctx = server_tls(srv);

		c->bev = ctx ? tls_bev_accept(loop->base, ctx, NULL, fd) : NULL;
		SSL_CTX_free(ctx);
		c->tls = 1;
	} else
		c->bev = bufferevent_socket_new(loop->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warn("%s: cannot set up a connection from %s", c->id, c->peer);
		server_conn_drop(loop, fd, &c->ip);
		return -1;
	}
	c->loop = loop;
	conn_timer_new(c);
	if (tls)
		conn_handshake_deadline(c);
	server_conn_add(loop, c);
	if (!tls) {
		int one = 1;

		/* Every flush is one write of whole replies: Nagle would only delay them. */
		if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->io_ev = event_new(loop->base, fd, EV_READ | EV_PERSIST, conn_on_readable, c);
		if (c->io_ev == NULL)
			fatal("cannot create an event");
		c->direct = 1;
		c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev), conn_on_output, c);
	}
	conn_bev_setup(c);
	return 0;
}

int
conn_connect(struct conn *c, struct event_base *base, const struct conn_ops *ops,
    const struct sockaddr *sa, const char *id)
{
	socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);

	c->ops = ops;
	c->base = base;
	snprintf(c->id, sizeof(c->id), "%s", id);
	listen_peer(sa, c->peer, sizeof(c->peer));
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		return -1;
	conn_timer_new(c);
	c->defer_ev = event_new(base, -1, 0, conn_on_deferred, c);
	conn_bev_setup(c);
	if (bufferevent_socket_connect(c->bev, sa, (int)len) != 0) {
		int e = errno;

		bufferevent_free(c->bev);
		c->bev = NULL;
		event_free(c->timer);
		event_free(c->defer_ev);
		errno = e;
		return -1;
	}
	return 0;
}

int
conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *host, int verify)
{
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	return conn_swap_tls(c, tls_bev_connect(c->base, ctx, c->bev, -1, host, verify));
}

void
conn_set_timer(struct conn *c, unsigned ms, void (*fn)(struct conn *))
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	c->timer_fn = fn;
	evtimer_add(c->timer, &tv);
}

void
conn_cancel_timer(struct conn *c)
{
	c->timer_fn = NULL;
	evtimer_del(c->timer);
}

void
conn_wait(struct conn *c)
{
	conn_cancel_timer(c);
	c->waiting = 1;
}

void
conn_go(struct conn *c)
{
	c->waiting = 0;
	if (c->freeing || c->closing)
		return;
	conn_defer(c, CONN_DO_RESUME);
}

size_t
conn_unsent(const struct conn *c)
{
	struct bufferevent *under;

	/*
	 * A failed TLS layer sends nothing more; only the socket's bytes
	 * count (none when TLS is on the socket itself: implicit TLS).
	 */
	if (c->tls_failed && c->bev) {
		under = bufferevent_get_underlying(c->bev);
		return under ? evbuffer_get_length(bufferevent_get_output(under)) : 0;
	}
	return tls_bev_unsent(c->bev);
}

struct evbuffer *
conn_output(struct conn *c)
{
	return bufferevent_get_output(c->bev);
}

/*
 * The next command line from in, without its CRLF, into buf (NUL
 * terminated; buf holds limit bytes).  A line ends only at CRLF; one
 * longer than limit octets with its CRLF is thrown away and reported
 * once, as soon as the partial line shows it.
 */
static enum conn_line
conn_get_line(struct conn *c, struct evbuffer *in, char *buf, size_t limit, size_t *len)
{
	size_t avail = evbuffer_get_length(in), eol;
	struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF_STRICT);

	if (p.pos < 0) {
		if (avail < limit)
			return CONN_LINE_MORE;
		/* Keep a trailing CR: it may start the CRLF that ends the line. */
		evbuffer_drain(in, avail - 1);
		if (c->skip_line) {
			c->skipped += avail - 1;
			return c->skipped > CONN_SKIP_MAX ? CONN_LINE_ENDLESS : CONN_LINE_MORE;
		}
		c->skip_line = 1;
		c->skipped = avail - 1;
		return CONN_LINE_TOO_LONG;
	}
	if (c->skip_line) {
		/* The end of a line already refused; then look again. */
		evbuffer_drain(in, (size_t)p.pos + eol);
		c->skip_line = 0;
		return conn_get_line(c, in, buf, limit, len);
	}
	if ((size_t)p.pos + 2 > limit) {
		evbuffer_drain(in, (size_t)p.pos + eol);
		return CONN_LINE_TOO_LONG;
	}
	evbuffer_remove(in, buf, (size_t)p.pos);
	evbuffer_drain(in, eol);
	buf[p.pos] = '\0';
	*len = (size_t)p.pos;
	return CONN_LINE_OK;
}

enum conn_step
conn_take_line(struct conn *c, struct evbuffer *in, size_t limit,
    void (*on_line)(struct conn *c, const char *line, size_t len))
{
	char line[CONN_LINE_MAX];
	size_t len = 0;

	if (limit > sizeof(line))
		limit = sizeof(line);
	switch (conn_get_line(c, in, line, limit, &len)) {
	case CONN_LINE_MORE:
		return CONN_NEED_INPUT;
	case CONN_LINE_ENDLESS:
		/* Refused once already; reading on would only burn the time it is sent in. */
		log_info("%s: a command line of over %u bytes: closing", c->id, CONN_SKIP_MAX);
		conn_close(c);
		return CONN_NEED_INPUT;
	case CONN_LINE_TOO_LONG:
		on_line(c, NULL, 0);
		break;
	case CONN_LINE_OK:
		on_line(c, line, len);
		break;
	}
	if (!c->waiting && !c->closing && !c->freeing && c->ops->ready)
		c->ops->ready(c);
	return CONN_CONTINUE;
}

int
conn_count_reply(struct conn *c, int error)
{
	if (!error) {
		c->bad = 0;
		return 0;
	}
	return ++c->bad >= CONN_BAD_MAX;
}

void
conn_send_now(struct conn *c)
{
	if (c->deferred & CONN_DO_FLUSH) {
		c->deferred &= ~CONN_DO_FLUSH;
		conn_flush(c);
	}
}

const char *
conn_tls_info(struct conn *c, char *buf, size_t len)
{
	SSL *ssl = c->tls && c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	if (ssl == NULL) {
		buf[0] = '\0';
		return buf;
	}
	return tls_describe(ssl, buf, len);
}

/* Kept only once a session has had an error: most never do. */
#define CONN_ERROR_KEEP		96

void
conn_log_error(struct conn *c, const char *cmd, const char *text)
{
	char line[CONN_ERROR_KEEP];

	snprintf(line, sizeof(line), "%s: %s", cmd, text);
	if (c->last_error && strcmp(line, c->last_error) == 0) {
		c->error_repeats++;
		return;
	}
	if (c->error_repeats > 0)
		log_info("%s: the last error repeated %u more times", c->id, c->error_repeats);
	c->error_repeats = 0;
	if (c->last_error == NULL)
		c->last_error = xmalloc(CONN_ERROR_KEEP);
	memcpy(c->last_error, line, sizeof(line));
	log_info("%s: %s: %s", c->id, cmd, text);
}

int
conn_start_tls(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	SSL_CTX *ctx = server_tls(c->loop->srv);
	struct bufferevent *tls;

	evbuffer_drain(in, evbuffer_get_length(in));
	c->skip_line = 0;
	conn_direct_off(c);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	tls = ctx ? tls_bev_accept(c->base, ctx, c->bev, -1) : NULL;
	SSL_CTX_free(ctx);
	if (conn_swap_tls(c, tls) != 0)
		return -1;
	conn_handshake_deadline(c);
	return 0;
}

void
conn_free_later(struct conn *c)
{
	if (c->freeing)
		return;
	c->freeing = 1;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evtimer_del(c->timer);
	if (c->io_ev)
		event_del(c->io_ev);
	c->deferred = 0;
	conn_defer(c, CONN_DO_FREE);
}

/*
 * Lingering: input the client sent before it saw our last reply is read
 * and dropped, so that closing with unread input does not reset the
 * connection (a reset would discard the replies still on their way to
 * the client).  Ends at the client's EOF, after CONN_LINGER_SECS, or
 * after CONN_LINGER_MAX bytes.
 */
static void
conn_on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char buf[16384];

	if (what & EV_TIMEOUT) {
		conn_free_later(c);
		return;
	}
	for (int i = 0; i < 8; i++) {
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r <= 0 || (c->lingered += (size_t)r) > CONN_LINGER_MAX) {
			conn_free_later(c);
			return;
		}
	}
}

static void
conn_linger(struct conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	struct timeval tv = { CONN_LINGER_SECS, 0 };

	/* First, so that a client that has seen our FIN finds its address free. */
	if (c->loop)
		server_conn_ip_release(c->loop, c);
	if (fd < 0 || shutdown(fd, SHUT_WR) != 0) {
		conn_free_later(c);
		return;
	}
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->io_ev) {
		event_del(c->io_ev);
		event_assign(c->io_ev, c->base, fd, EV_READ | EV_PERSIST, conn_on_linger, c);
	} else
		c->io_ev = event_new(c->base, fd, EV_READ | EV_PERSIST, conn_on_linger, c);
	event_add(c->io_ev, &tv);
}

void
conn_free_now(struct conn *c)
{
	c->deferred = 0;
	conn_on_free(c);
}

static void
conn_close_poll(struct conn *c)
{
	if (conn_unsent(c) == 0) {
		conn_linger(c);
		return;
	}
	if (++c->close_polls > CONN_CLOSE_POLLS) {
		conn_free_later(c);
		return;
	}
	conn_set_timer(c, CONN_CLOSE_POLL_MS, conn_close_poll);
}

void
conn_close(struct conn *c)
{
	if (c->closing || c->freeing)
		return;
	c->closing = 1;
	conn_flush(c);
	if (c->freeing)
		return;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
	if (c->io_ev)
		event_del(c->io_ev);
	c->deferred &= ~CONN_DO_RESUME;
	conn_close_poll(c);
}
